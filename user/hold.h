/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Holding a process still for a capture, so that whatever kills memtrace
 * (SIGKILL of memtrace alone or of its whole process group included) can
 * never leave it stopped.
 *
 * Two holds, one after the other:
 *  - hold__freeze(): memtrace ptrace-seizes every thread and interrupts
 *    it.  Only the kernel holds the stop: when memtrace dies the tracees
 *    are released and run on.  The small artifact is written under it.
 *  - hold__gcore(): gdb must ptrace-attach itself and a process has one
 *    tracer, so the target is handed over: a watchdog is forked in its
 *    own session first (a kill of memtrace's process group does not
 *    reach it), the target is SIGSTOPped and detached, and the watchdog
 *    runs gcore in a process group of its own.  The watchdog is a child
 *    subreaper, so gdb stays its descendant even if the gcore script
 *    dies; it watches memtrace by pidfd.  Whatever ends first (gcore,
 *    the deadline, memtrace, a cancel, the target's exit) it kills
 *    gcore's group, reaps gdb (a dead gdb releases its tracee), sends
 *    SIGCONT until the target runs, removes a partial core, and reports.
 *    If the watchdog itself dies, memtrace kills gcore's group and
 *    resumes the target.
 */
#ifndef MT_HOLD_H
#define MT_HOLD_H

#include <stdbool.h>
#include <stdint.h>

struct hold;

/*
 * Stop every thread of pid under ptrace.  -EPERM: not allowed (a kernel
 * thread, memtrace itself, a process another tracer holds); -ESRCH: gone.
 * why gets a sentence for the operator on failure.
 */
int hold__freeze(int pid, int pidfd, struct hold **out, char *why,
		 size_t whylen);

/*
 * Hand the target over to gcore -o DIR/PREFIX PID, run by a watchdog;
 * artfd is the artifact directory (the partial core is removed there
 * when anything fails), logfd gcore's output (renamed from logname to
 * gcore.log by the watchdog if memtrace is gone).  A NULL h (not frozen:
 * the target was already stopped by someone else) runs gcore without
 * stopping it.  Returns 0 or -errno; *out is the running hold.
 */
int hold__gcore(struct hold **h, int pid, int pidfd, int artfd, int logfd,
		const char *logname, const char *prefix, const char *partial,
		double timeout_s);

/* Poll for readable: the gcore run has ended (or its watchdog died). */
int hold__fd(const struct hold *h);

/* Ask the watchdog to stop gcore now (SIGINT, SIGTERM, exit). */
void hold__cancel(struct hold *h);

enum hold_end {
	HOLD_RUNNING = 0,
	HOLD_GCORE_EXITED,	/* status: gcore's wait status */
	HOLD_TIMEOUT,
	HOLD_CANCELLED,
	HOLD_TARGET_EXITED,
	HOLD_WATCHDOG_DIED,
};

/*
 * After hold__fd() was readable: how the run ended.  HOLD_RUNNING if it
 * has not (a partial message); the target then still is held.
 */
enum hold_end hold__poll(struct hold *h, int *status);

/*
 * Let the target go, whatever state the hold is in: kill gcore's group,
 * detach, SIGCONT what we stopped, reap the watchdog.  Frees h.
 */
void hold__release(struct hold *h);

/* 'R', 'S', 'T', 't', ... of /proc/PID/stat; 0 if the process is gone. */
char hold__proc_state(int pid);

#endif /* MT_HOLD_H */
