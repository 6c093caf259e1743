/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The capture itself: hold the target still, write the small artifact
 * (report.txt, heap.pb.gz, row.json, smaps_rollup, the cgroup's files,
 * trigger.txt) into a new artifact directory, then run gcore under
 * hold.c's watchdog while the main loop goes on.  At most CAPTURE_MAX
 * captures run at once.
 */
#ifndef MT_CAPTURE_H
#define MT_CAPTURE_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#define CAPTURE_MAX	8	/* captures in flight at once */

struct app;
struct artdir;
struct captures;	/* the captures in flight */
struct capture;		/* one of them */
struct cgent;
struct mt_row;

/* gcore_needed: warn now if gcore is missing. */
int captures__new(struct app *app, struct artdir *dir, bool gcore_needed,
		  struct captures **out);
void captures__free(struct captures *cs);
/*
 * End every capture still running (the targets resume at once); the
 * first failure of any capture, 0 if none.
 */
int captures__stop(struct captures *cs);

/*
 * A free slot for a capture of pid, or NULL with *err = -EBUSY: pid is
 * being captured already, or every slot is busy (said once a spell).
 */
struct capture *captures__slot(struct captures *cs, int pid, int *err);
/*
 * Capture pid in slot c (the directory must be open); r and cg may be
 * NULL.  Returns 0 once the small artifact is written (the core, if
 * any, follows asynchronously), or -errno.  oom: a post-mortem, no core.
 */
int capture__run(struct capture *c, int pid, struct mt_row *r,
		 const struct cgent *cg, const char *reason,
		 uint64_t t_trigger, bool oom);

/* The watchdogs' fds of the cores in progress. */
int captures__pollfds(struct captures *cs, struct pollfd *fds, int max);
int captures__nr_pollfds(const struct captures *cs);
/* fd is readable: false if it is not one of ours. */
bool captures__on_ready(struct captures *cs, int fd);

/* The capture of pid in progress, or NULL. */
struct capture *captures__find(struct captures *cs, int pid);
/* Name of the last artifact written, under the dump directory. */
const char *captures__last_name(const struct captures *cs);
bool capture__active(const struct capture *c);
/* 0 or -errno: valid once it is no longer active. */
int capture__result(const struct capture *c);
/* Stop its core (signal sig asked for it); the target resumes. */
void capture__cancel(struct capture *c, int sig);

#endif /* MT_CAPTURE_H */
