/* SPDX-License-Identifier: GPL-2.0 */
/*
 * debuginfod lookups off the refresh path.
 *
 * elfutils' own client (Debian's libdebuginfod1, loaded with dlopen as
 * libdwfl loads it) fetches a debug file by build-id over HTTP: seconds
 * on a slow or distant server.  libdwfl's dwfl_standard_find_debuginfo
 * would do that inline, inside the first symbolization of a file, and
 * the view would wait.  So with DEBUGINFOD_URLS set the symbolizer
 * searches local debug files itself (syms.c find_local), each missing
 * build-id is fetched once by a worker thread (into the client's cache),
 * and the symbolizer loads the file again with it when the answer is
 * in.  Meanwhile its frames show as addresses.
 */
#ifndef MT_DEBUGINFOD_H
#define MT_DEBUGINFOD_H


struct dbgd;

/* NULL when DEBUGINFOD_URLS is unset or empty, or no client library. */
struct dbgd *dbgd__new(void);
void dbgd__free(struct dbgd *d);
/* Fetch the debug file of this build-id (hex) in the background, once. */
int dbgd__request(struct dbgd *d, const char *build_id);

enum dbgd_state { DBGD_PENDING, DBGD_ARRIVED, DBGD_FAILED };
/*
 * Where the request of this build-id stands; when arrived, the debug
 * file's path (to free) in *path.
 */
enum dbgd_state dbgd__state(struct dbgd *d, const char *build_id,
			    char **path);
/* Wait up to ms for every request so far: 0, or -ETIMEDOUT. */
int dbgd__wait(struct dbgd *d, int ms);
/* Bumped at each answer: nothing to look at while it stays the same. */
unsigned int dbgd__answers(struct dbgd *d);

#endif /* MT_DEBUGINFOD_H */
