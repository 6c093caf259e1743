/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Go runtime's own heap profile and GC state, read from a running Go
 * process with process_vm_readv: never stopped, never written to (except
 * by goheap__set_rate(), which the user asks for explicitly).
 *
 * The runtime keeps its sampled heap profile in runtime.mbuckets at all
 * times (../shared/GO-FACTS.md).  A read walks that list (bounded, loops
 * detected, torn reads tolerated), publishes each bucket's counts as
 * runtime.MemProfile would (the flush rule of memProfileInternal) and
 * scales them as runtime/pprof does (protomem.go), so the numbers are
 * the ones `go tool pprof` shows for /debug/pprof/heap at that moment.
 * "inuse" is therefore the heap as of the last completed GC.
 */
#ifndef MT_GOHEAP_H
#define MT_GOHEAP_H

#include <stdbool.h>
#include <stdint.h>

#include "gobin.h"

/* One bucket of the runtime's profile: one allocation stack and size. */
struct goheap_site {
	uint64_t bucket;	/* its address in the process: identity */
	uint64_t size;		/* object size the bucket counts */
	uint64_t *stk;		/* return pcs as the runtime recorded them */
	int nstk;
	/* as runtime.MemProfile returns them (published, unscaled) */
	uint64_t allocs, frees, alloc_bytes, free_bytes;
	/* scaled as pprof does: what /debug/pprof/heap shows */
	int64_t alloc_objects, alloc_space, inuse_objects, inuse_space;
	uint64_t rec[16];	/* raw memRecord: active, future[3] */
};

enum goheap_prof {
	GOHEAP_PROF_ON = 0,		/* the runtime samples allocations */
	GOHEAP_PROF_COMPILED_OUT,	/* runtime.disableMemoryProfiling */
	GOHEAP_PROF_RATE_ZERO,		/* MemProfileRate set to 0 */
	GOHEAP_PROF_UNKNOWN,		/* runtime variables not found */
};

/* GC events counted by the entry uprobes (include/memtrace.h). */
struct goheap_gc {
	uint64_t gc_starts, stw_count, stw_total_ns, stw_last_ns, stw_max_ns;
};

struct goheap {
	int pid;
	char version[32];		/* "go1.19.8", "" if unknown */
	int vnum;			/* 119 */
	bool pie;
	uint64_t bias;			/* load bias (PIE) */
	struct gobin_runtime rt;	/* link-time addresses */
	const struct gobin *bin;	/* shared, cached per file */

	enum goheap_prof prof;
	int64_t rate;			/* runtime.MemProfileRate */
	/* sums over the buckets, scaled as pprof does */
	int64_t inuse_bytes, inuse_objects, alloc_bytes, alloc_objects;

	/* runtime.gcController, where the version's layout is known */
	bool have_ctl;
	int32_t gogc;			/* gcPercent: -1 = GOGC=off */
	int64_t memlimit;		/* GOMEMLIMIT (math.MaxInt64: none) */
	uint64_t heap_goal;		/* GOGC's goal, gcPercentHeapGoal */
	uint64_t heap_live, heap_marked, total_alloc, total_free;

	bool have_cycle;
	uint32_t cycle;			/* GCs completed (= runtime.NumGC) */

	/* from the GC entry uprobes, if attached */
	bool gc_probed;
	struct goheap_gc gc;

	/* rates between the last two reads */
	double alloc_bps;		/* of alloc_space (published) */
	double heap_alloc_bps;		/* of gcController.totalAlloc */
	double gc_ps;			/* GC cycles per second */

	struct goheap_site *sites;
	int nsites, cap_sites;
	bool truncated;			/* bucket cap reached */
	uint64_t read_errors;		/* reads that failed or looked torn */
	uint64_t ts, prev_ts;		/* time of the last two reads (ns) */
	bool have_read;

	/* private */
	uint64_t prev_alloc_bytes, prev_total_alloc;
	uint32_t prev_cycle;
	uint64_t *seen;			/* bucket addresses, open addressing */
	uint32_t seen_mask, nseen;
	struct bpf_link *links[3];
	int gc_fd;			/* the BPF map of GC counts, or -1 */
};

/*
 * pid's executable is a Go program: read its runtime from now on.
 * -ENOEXEC: not Go; -ESRCH: gone; -ENOENT: Go, but the runtime's
 * variables were not found (the struct is still returned: what the
 * file says, version and all, is known).
 */
int goheap__open(int pid, struct goheap **out);
void goheap__free(struct goheap *g);
/* Is pid's executable a Go program?  (Cheap after the first of a file.) */
bool goheap__is_go(int pid);

/* One read of the profile and GC state at time ts (ns, monotonic). */
int goheap__read(struct goheap *g, uint64_t ts);

/*
 * Count GC starts and time stop-the-world pauses with entry uprobes on
 * the process's executable (never a return probe: Go's stack walker
 * kills a process whose return address was replaced).  map_fd is the
 * go_gc map; progs are go_gc_start, go_stw_stop, go_stw_start.
 */
struct bpf_program;
int goheap__attach_gc(struct goheap *g, int map_fd, struct bpf_program *start,
		      struct bpf_program *stop, struct bpf_program *restart);

/*
 * Write rate into runtime.MemProfileRate of the process: the runtime
 * samples allocations from then on.  A write into the target; only ever
 * on the user's explicit request (--go-enable-profiling).
 */
int goheap__set_rate(struct goheap *g, int64_t rate);

/* Why the runtime keeps no profile, for the row and JSON; NULL if it does. */
const char *goheap__note(const struct goheap *g);

/* Scale (count, bytes) as runtime/pprof does for a sampling rate. */
void goheap__scale(int64_t count, int64_t bytes, int64_t rate,
		   int64_t *out_count, int64_t *out_bytes);

#endif /* MT_GOHEAP_H */
