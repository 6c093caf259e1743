/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pre-OOM evidence: watch each traced process's memory cgroup, and when
 * usage crosses --dump-at, capture the heap profile, the process's row,
 * smaps_rollup, the cgroup's memory.stat/events and a gcore core dump
 * into --dump-dir.  Also on demand ('d', `memtrace dump PID`) and as a
 * post-mortem when the OOM killer picks a traced process.
 */
#ifndef MT_DUMP_H
#define MT_DUMP_H

#include <poll.h>
#include <stdint.h>

struct app;
struct dump;
struct mt_event;

/* Armed when --dump-at or --dump-dir is given; reads app->env. */
int dump__new(struct app *app, struct dump **out);
void dump__free(struct dump *d);
/*
 * End every capture still running (the targets resume at once) and
 * return the first failure of any capture, 0 if none: a capture that
 * lost a file or its core fails memtrace's exit code.
 */
int dump__stop(struct dump *d);

/*
 * After each model refresh: fill every row's cgroup fields (cgroup,
 * cg_usage, cg_limit, cg_eta_s, cg_version), arm threshold watches for
 * new cgroups, and trigger on the growth backstop.
 */
void dump__refresh(struct dump *d);
/* The registry forgot row (pid, id): what was kept about it goes. */
void dump__forget(struct dump *d, int pid, uint64_t id);

/* File descriptors to poll for threshold notifications; returns count. */
int dump__pollfds(struct dump *d, struct pollfd *fds, int max);
/* How many dump__pollfds() may give at most, for sizing the set. */
int dump__nr_pollfds(const struct dump *d);
/* One of those fds is readable: consume it and capture if crossed. */
void dump__on_ready(struct dump *d, int fd);

/* Capture pid now; reason is recorded in the artifact. 0 or -errno. */
int dump__now(struct dump *d, int pid, const char *reason);

/* The OOM killer chose e->tgid: write its post-mortem. */
void dump__oom(struct dump *d, const struct mt_event *e);

#endif /* MT_DUMP_H */
