/* SPDX-License-Identifier: GPL-2.0 */
/* Attaching the allocator uprobes to a process's C library. */
#ifndef MT_ATTACH_H
#define MT_ATTACH_H

#include <stdbool.h>

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
 * Probe the C library pid has mapped, for pid only.  Idempotent: returns
 * 0 when that library is already probed for pid.  -ENOENT: pid maps no
 * C library (static binary, or libc not loaded yet); -ESRCH: no such
 * process.
 */
int attach__pid(struct attach *a, int pid);
/* Probe the C library at path (in our mount namespace) for pid. */
int attach__pid_path(struct attach *a, int pid, const char *path);
/* Probe pid's C library for every process that maps it (node-wide). */
int attach__node_lib(struct attach *a, int pid);
/* Release the probes held for pid alone (it exited). */
void attach__forget_pid(struct attach *a, int pid);
/* Find the C library mapped by pid; fills an openable path. */
int attach__find_libc(int pid, char *path, size_t len);
/*
 * The C library an executable will load, before it runs: musl's dynamic
 * loader is its libc; for anything else, the libc of process ref_pid.
 */
int attach__exe_libc(const char *exe, int ref_pid, char *path, size_t len);
int attach__nr_links(const struct attach *a);
int attach__nr_libs(const struct attach *a);

#endif /* MT_ATTACH_H */
