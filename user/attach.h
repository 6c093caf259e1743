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
 * Probe the allocators pid has mapped, for pid only: every file that
 * defines malloc and free (its C library; a static executable with
 * symbols; jemalloc, tcmalloc, ... linked in or preloaded).  Idempotent.
 * 0: at least one is probed; -ENOENT: none is mapped (a stripped static
 * binary, or libc not loaded yet); -ESRCH: no such process.
 */
int attach__pid(struct attach *a, int pid);
/* The same, node-wide: for every process that maps those files. */
int attach__node_lib(struct attach *a, int pid);
/*
 * The file at path (inode ino), mapped as code by some process: probe it
 * node-wide if it is an allocator.  Works when that process is gone
 * already.  1: it is (now) probed; 0: not an allocator; -ENOENT: path is
 * not that file here (another mount namespace).
 */
int attach__node_file(struct attach *a, const char *path, uint64_t ino);
/* Release the probes held for pid alone (it exited). */
void attach__forget_pid(struct attach *a, int pid);
/*
 * Before CMD runs (node-wide probes, filtered in the kernel): every
 * allocator exe will call: itself if it defines malloc (static), its
 * LD_PRELOAD and directly linked libraries that do, and its C library
 * (path in libc, "" for a static executable).  -ENOENT: none found.
 */
int attach__cmd(struct attach *a, const char *exe, int ref_pid, char *libc,
		size_t len);
int attach__nr_links(const struct attach *a);
int attach__nr_libs(const struct attach *a);

#endif /* MT_ATTACH_H */
