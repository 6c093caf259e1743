/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The overhead budget of exact tracing: what the probes cost each traced
 * process, estimated from its probe hits times the uprobe floor measured
 * on this machine at start, as a share of the CPU time it used; with
 * --max-overhead PCT, exact tracing of a process over the budget stops.
 */
#ifndef MT_BUDGET_H
#define MT_BUDGET_H

struct app;
struct memtrace_bpf;

/*
 * The floor: one uprobe hit on an instruction the kernel emulates (as at
 * malloc's entry), timed on a function of memtrace's own with an empty
 * program, a few thousand times.  Seconds per hit; 0 if it failed.
 */
double budget__calibrate(struct memtrace_bpf *skel);
/* Each refresh: every probed row's cost; stop those over the budget. */
void budget__refresh(struct app *app);

#endif /* MT_BUDGET_H */
