/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which processes -p and --cgroup mean: a process's existing descendants
 * (workers forked before memtrace started), and every member of a
 * cgroup, now and later.
 */
#ifndef MT_FOLLOW_H
#define MT_FOLLOW_H

struct app;

/* The live descendants of roots (not the roots), from /proc/PID/stat:
 * *out is malloc'ed, *n its length. */
int follow__descendants(const int *roots, int nroots, int **out, int *n);
/* The processes in the cgroup directory dir (its cgroup.procs). */
int follow__cgroup_pids(const char *dir, int **out, int *n);
/* --cgroup: start tracing members that joined since the last call. */
void follow__cgroup_poll(struct app *app);

#endif /* MT_FOLLOW_H */
