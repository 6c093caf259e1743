/* SPDX-License-Identifier: GPL-2.0 */
/* Allocation sites: naming them, and writing them out (pprof, folded). */
#ifndef MT_SITES_H
#define MT_SITES_H

#include <stdbool.h>
#include <stdio.h>

struct app;
struct mt_row;
struct mt_site_row;

/* Fill each row's top_site with the top site's first non-allocator frame. */
void sites__top_names(struct app *app);
/* The top sites r still holds, with stacks: the leak report at exit. */
void sites__print_held(struct app *app, struct mt_row *r, FILE *f, int max);
/*
 * The one heap-profile builder (--pprof, a capture's heap.pb.gz, a Go
 * process's unpublished allocations): the rows' C sites by stack, their
 * Go sites whole, each row's comm and executable naming its samples;
 * period --sample-bytes, or a Go row's MemProfileRate.  Written to path
 * (path.tmp, then renamed).  0 or -errno.
 */
#define SITES_PPROF_RUN			1	/* times: the whole run */
#define SITES_PPROF_GO_UNPUBLISHED	2	/* Go: since the last GC only */
int sites__pprof(struct app *app, struct mt_row *const *rows, int nrows,
		 unsigned flags, const char *path);
/* --pprof / --folded files, if asked for. */
int sites__write_profiles(struct app *app);
/* Innermost frame of a site's stack that is not an allocator wrapper. */
int sites__first_user_frame(struct app *app, struct mt_row *r,
			    const struct mt_site_row *s, char *buf, size_t len);

/*
 * What a site is: "alloc" (allocator calls, exact), "growth" (page faults
 * sampled in the node view) or "map" (anonymous mmap and brk sampled).
 */
const char *sites__kind(const struct mt_site_row *s);

#endif /* MT_SITES_H */
