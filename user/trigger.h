/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Cgroup monitoring and thresholds: which memory cgroup each row is in
 * (the row's cgroup fields), its usage and growth, the --dump-at
 * threshold armed as a notification (v1 eventfd, v2 events/PSI), a fast
 * usage poll near it, and a backstop at each refresh.  A crossing asks
 * the owner (dump.c) to capture each eligible process of the cgroup.
 */
#ifndef MT_TRIGGER_H
#define MT_TRIGGER_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "cgroup.h"

struct app;
struct trigger;

/*
 * One memory cgroup that holds at least one row.  Written only by
 * trigger.c; a capture reads it for its report and cgroup files.
 */
struct cgent {
	struct cg_limits lim;
	char path[512];		/* as in /proc/PID/cgroup */
	char name[128];		/* short container name, raw: rows, JSON */
	char shown[512];	/* name escaped: every text output */
	uint64_t read_seq;	/* refresh that last read it */
	uint64_t used_seq;	/* refresh that last saw a row in it */
	uint64_t prev_usage, prev_ns;
	double rate;		/* usage growth, bytes/s */
	uint64_t threshold;	/* 0 = no trigger */
	struct cg_watch *watch;
	bool nolimit_warned;	/* said once: --dump-at PCT% cannot fire */
	bool watch_warned;
	bool hot;		/* v2: may cross before the next refresh */
	char *stat_armed;	/* memory.stat when the trigger was armed */
	char *stat_last;	/* memory.stat at the last refresh */
};

/* Asked to capture pid; reason is said in the artifact. */
typedef void (*trigger_fire_fn)(void *ctx, int pid, const char *reason,
				uint64_t t_trigger);

/* armed: --dump-at given (thresholds); otherwise only cgroup fields. */
int trigger__new(struct app *app, bool armed, trigger_fire_fn fire,
		 void *ctx, struct trigger **out);
void trigger__free(struct trigger *t);

/*
 * After each model refresh: fill every row's cgroup fields (cgroup,
 * cg_usage, cg_limit, cg_eta_s, cg_version, dumps), arm thresholds of
 * new cgroups, fire on the growth backstop.
 */
void trigger__refresh(struct trigger *t);

/* Its fds to poll (the fast-poll timer, the threshold watches). */
int trigger__pollfds(struct trigger *t, struct pollfd *fds, int max);
int trigger__nr_pollfds(const struct trigger *t);
/* fd is readable: false if it is not one of ours. */
bool trigger__on_ready(struct trigger *t, int fd);
/* Re-arm the fast-poll timer for the cgroups near their threshold. */
void trigger__rearm(struct trigger *t);

/*
 * The cgroup of pid: the one its row was mapped to or, with lookup,
 * read from /proc now (node mode, a fresh pid).  NULL if none.
 */
const struct cgent *trigger__cgroup(struct trigger *t, int pid, bool lookup);
/*
 * A capture of pid is attempted (failed or not, it counts: no retry at
 * every refresh).  Returns its count of attempts, or -1 if pid has no
 * row known here.
 */
int trigger__count_dump(struct trigger *t, int pid);
/* The registry forgot row (pid, id): what was kept about it goes. */
void trigger__forget(struct trigger *t, int pid, uint64_t id);

#endif /* MT_TRIGGER_H */
