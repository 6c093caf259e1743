/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Heap profile output: gzipped profile.proto (go tool pprof, and every
 * viewer that reads pprof) and folded stacks (flamegraph.pl, speedscope).
 *
 * The profile has the four sample types of a Go heap profile,
 * alloc_objects/count, alloc_space/bytes, inuse_objects/count and
 * inuse_space/bytes (default inuse_space), so pprof's -sample_index and
 * its heap views work unchanged.  One file covers all traced processes:
 * every sample carries a numeric label "pid" and, when known, a string
 * label "comm" (pprof -tagfocus=pid=1234 or -tags to split them).
 *
 * Stacks are user return addresses from a frame-pointer walk at the
 * allocator entry: stack[0] is the return address into the caller of
 * malloc, so every frame, the first included, is symbolized as a return
 * address (syms__resolve_ret) and recorded in the profile as address - 1,
 * the last byte of the call instruction; that is also what pprof's own
 * symbolizer and -disasm need for frames left unresolved.
 *
 * Go stacks go through the same pprof__add()/folded__write(): pass the
 * PCs of a Go heap-profile bucket (runtime.mbuckets, "logical" return
 * PCs, one extra per inlined call) or of a frame-pointer walk, in
 * process addresses, leaf first.  Frames syms names from a Go pclntab
 * are shaped as runtime/pprof writes them: leading runtime.* frames
 * hidden (all kept when nothing else is left), runtime.goexit dropped,
 * and each inlined call a Line of its caller's Location, so go tool
 * pprof prints "main.inlA (inline)".  Values are written as given (the
 * caller applies pprof's sampling scale) and Period is set with
 * pprof__set_period() (the process's runtime.MemProfileRate).
 */
#ifndef MT_PPROF_H
#define MT_PPROF_H

#include <stdint.h>
#include <stdio.h>

struct syms;
struct pprof;

/* syms must outlive the pprof; it is used from pprof__add() on. */
struct pprof *pprof__new(struct syms *syms);
void pprof__free(struct pprof *p);

/*
 * Add one sample; identical stacks of one pid are merged by summing.
 * Returns 0 or a negative errno.
 */
int pprof__add(struct pprof *p, int pid, const uint64_t *stack, int nframes,
	       int64_t alloc_objects, int64_t alloc_bytes,
	       int64_t inuse_objects, int64_t inuse_bytes);

/*
 * Name pid's samples (label "comm").  Without it the name is read from
 * /proc/PID/comm when the pid is first added, if it is still alive.
 */
int pprof__set_comm(struct pprof *p, int pid, const char *comm);

/* Sampling period in bytes (profile.period); 1 when every call is seen. */
void pprof__set_period(struct pprof *p, int64_t period);

/*
 * When the profile starts (wall clock, ns since the epoch) and how long
 * it covers (ns): the tracing run, not the time taken to write it.
 * Without it, the time pprof__new() was called and the time since.
 */
void pprof__set_times(struct pprof *p, uint64_t start_real_ns,
		      uint64_t duration_ns);

/*
 * The executable of pid as it was invoked (a symlink, say
 * /usr/bin/redis-server -> redis-check-rdb): its mapping is named by
 * that path rather than the one the kernel resolved, so pprof's "File:"
 * reads as the command people ran.  Call before pid's first sample.
 */
int pprof__set_exe(struct pprof *p, int pid, const char *path);

/* Write gzipped profile.proto to path (via path.tmp + rename). */
int pprof__write(struct pprof *p, const char *path);

/*
 * One folded line, "comm;outer;...;inner value\n": frames outermost
 * first, inlined functions as frames of their own, unresolved frames as
 * "[module+0x...]"/"[unknown]", and ';', whitespace and control
 * characters in names replaced by '_'.  comm NULL or "" gives "pid_N".
 * Returns 0 or a negative errno.
 */
int folded__write(struct syms *syms, FILE *out, int pid, const char *comm,
		  const uint64_t *stack, int nframes, int64_t value);

#endif /* MT_PPROF_H */
