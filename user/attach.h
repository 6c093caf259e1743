/* SPDX-License-Identifier: GPL-2.0 */
/* Attaching the allocator uprobes to a process's C library. */
#ifndef MT_ATTACH_H
#define MT_ATTACH_H

#include <stdbool.h>
#include <stdint.h>

struct attach;
struct memtrace_bpf;

enum {
	ATTACH_VERBOSE	= 1 << 0,	/* say where each probe goes, and why */
	ATTACH_FLOOR	= 1 << 1,	/* empty programs (benchmark floor) */
	ATTACH_ENTRY	= 1 << 2,	/* probe function entries, no shifting */
	ATTACH_SESSION	= 1 << 3,	/* session uprobes for allocators */
};

/* Can this kernel load BPF_TRACE_UPROBE_SESSION programs? */
bool attach__session_supported(void);
#define MT_BPF_TRACE_UPROBE_SESSION 57	/* enum bpf_attach_type, 6.13+ */

int attach__new(struct memtrace_bpf *skel, unsigned int flags,
		struct attach **out);
void attach__free(struct attach *a);	/* detaches every probe */

/*
 * Probing is slow (the kernel visits every mapping of a library for each
 * new uprobe: seconds for one hundreds of processes map), so it runs on
 * a thread of its own, never on the main loop.  Per-process probes
 * belong to a row of the process registry, (pid, id): id is the row's,
 * never reused, so a reused pid never inherits another process's links.
 */
enum attach_op {
	/*
	 * Probe the allocators pid has mapped, for pid only: every file
	 * that defines malloc and free (its C library; a static executable
	 * with symbols; jemalloc, tcmalloc, ... linked in or preloaded).
	 * Idempotent.  0: at least one is probed; -ENOENT: none is mapped (a
	 * stripped static binary, or libc not loaded yet); -ESRCH: no such
	 * process.
	 */
	ATTACH_OP_PID,
	ATTACH_OP_NODE_LIB,	/* the same, node-wide (every process) */
	/*
	 * The file at path (inode ino), mapped as code by pid: probe it
	 * node-wide if it is an allocator, even when pid is gone already.
	 * 1: it is (now) probed; 0: not an allocator; -ENOENT: path is not
	 * that file here (another mount namespace).
	 */
	ATTACH_OP_FILE,
	ATTACH_OP_FORGET,	/* (see attach__forget) */
	ATTACH_OP_CALL,		/* internal: a synchronous call */
};

/* Queue a job for the attach thread; its result comes by attach__results. */
int attach__queue(struct attach *a, enum attach_op op, int pid, uint64_t id,
		  const char *path, uint64_t ino);

struct attach_result {
	enum attach_op op;
	int pid;
	uint64_t id;
	int err;
};

/* Finished jobs, oldest first, up to max; returns how many. */
int attach__results(struct attach *a, struct attach_result *res, int max);
/* Jobs queued or under way (the header's "attaching: N"). */
int attach__pending(struct attach *a);
/*
 * Row (pid, id) is forgotten: its attaches not begun are dropped, and
 * the probes held for it alone released (after one under way ends).
 */
void attach__forget(struct attach *a, int pid, uint64_t id);
/*
 * Before the loop runs: ATTACH_OP_PID for -p's pids, waited for (the
 * watchdog is told memtrace waits, not hangs).
 */
int attach__pid(struct attach *a, int pid, uint64_t id);
/*
 * Before CMD runs (node-wide probes, filtered in the kernel): every
 * allocator exe will call: itself if it defines malloc (static), its
 * LD_PRELOAD and directly linked libraries that do, and its C library
 * (path in libc, "" for a static executable).  -ENOENT: none found.
 * Waited for, like attach__pid.
 */
int attach__cmd(struct attach *a, const char *exe, int ref_pid, char *libc,
		size_t len);
int attach__nr_links(struct attach *a);
int attach__nr_libs(struct attach *a);

#endif /* MT_ATTACH_H */
