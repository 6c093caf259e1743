/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The process table: one model shared by the batch, JSON and live views.
 * It holds no terminal code; views read rows and render them.
 */
#ifndef MT_TABLE_H
#define MT_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "memtrace.h"

struct goheap;
struct hashmap;

struct mt_range {
	uint64_t start, end;
};

/* One allocation site of one process. */
struct mt_site_row {
	uint64_t stack_id;		/* stack hash, 0 = no stack */
	int64_t live_bytes, live_allocs;
	uint64_t alloc_bytes, allocs;
	int64_t prev_live;		/* live bytes at the previous refresh */
	double growth_bps;
	uint64_t stack[MT_MAX_STACK];
	int nframes;
	bool go;			/* from the Go runtime's profile (gorow.c) */
};

struct mt_row {
	int pid;
	int idx;			/* its place in the table (table.c's) */
	uint64_t id;		/* the registry's: unlike the pid, never reused */
	int ppid;
	char comm[MT_COMM_LEN + 1];	/* raw bytes: untrusted */
	char exe[MT_PATH_LEN];		/* as exec'd ("" unknown), for pprof */
	uint64_t gen;
	/*
	 * The image the symbolizer has the mappings of (from the EXEC
	 * record; 0: the one seen first).  While a new image's record is
	 * still on its way, its sites wait: symbolized against the old
	 * mappings they would read as nonsense for good.
	 */
	uint64_t syms_gen;
	int syms_stale;		/* refreshes waited for that record */
	struct mt_proc cur;		/* latest counters */
	struct mt_proc prev;		/* counters at the previous refresh */
	uint64_t cur_ts, prev_ts;
	bool have_prev;

	/* derived at each refresh */
	int64_t live_bytes, live_allocs;
	/*
	 * Highest live_bytes seen, sampled at each refresh and at exit (not
	 * in the kernel: a per-process maximum there would need one shared
	 * counter per allocation, the line the per-CPU slots avoid).
	 */
	int64_t peak_bytes;
	/* rates were measured over a short tail (final refresh, exit) */
	bool short_sample;
	double growth_bps, alloc_bps, free_bps, allocs_ps, frees_ps, pf_ps;
	uint64_t rss_bytes;
	uint64_t rss_anon, rss_file, rss_shmem;	/* /proc/PID/status */
	double fault_bps;		/* bytes faulted in per second */
	uint64_t mmap_bytes;		/* anonymous mappings made while traced */
	uint64_t brk_bytes;		/* heap grown through brk */
	uint64_t lost_events;		/* records lost for this process */
	bool loss;			/* numbers may be off: see lost_* */

	/* state */
	bool exited;
	int exit_code;
	uint64_t exit_ts;
	int gone_refreshes;		/* refreshes shown since exit */
	bool probed;			/* allocator probes on its libc */
	bool exact;			/* node view: exact tracing asked for */
	bool budget_stopped;		/* --max-overhead ended its tracing */
	unsigned int work;		/* queued work (app.h WORK_*) */
	uint64_t work_due;		/* not before (ns), 0: at once */
	bool attaching;			/* an attach job for it is under way */
	int probe_fails;		/* attach found no allocator yet */
	double cost_pct;		/* probes' share of its CPU, <0 = n/a */
	double cpu_prev;		/* its CPU seconds at the last refresh */
	uint64_t hits_prev;		/* probe hits then */
	bool warned;
	int attach_tries;
	bool reused;			/* exited, and its pid is another's now */

	struct mt_range *ranges;	/* live anonymous mmaps */
	int nranges, cap_ranges;
	uint64_t start_brk, cur_brk;

	/* allocation sites, filled on demand (sort: live bytes desc) */
	struct mt_site_row *sites;
	int nsites, cap_sites;
	struct hashmap *site_ix;	/* row__site's index of them */

	/* filled by trigger.c from the process's memory cgroup */
	char cgroup[128];		/* short container/cgroup name */
	uint64_t cg_usage;		/* cgroup memory usage */
	uint64_t cg_limit;		/* limit that applies, 0 = none */
	double cg_eta_s;		/* predicted seconds to limit, <0 = n/a */
	int cg_version;			/* 1, 2, 0 = not found */
	int dumps;			/* captures taken of this process */
	char top_site[128];

	/* a Go program: its runtime's heap and GC, owned by the row */
	struct goheap *go;
	bool go_checked;		/* executable looked at since exec */
	int64_t go_prev_inuse;		/* Go inuse at the previous read */
	bool go_enabled;		/* --go-enable-profiling was applied */
};

enum mt_sort {
	SORT_LIVE = 0,
	SORT_GROWTH,
	SORT_ALLOC_RATE,
	SORT_RSS,
	SORT_LIMIT,
	SORT_PID,
	SORT_MAX,
};

struct table;

struct table *table__new(void);
void table__free(struct table *t);
struct mt_row *table__get(struct table *t, int pid);
struct mt_row *table__add(struct table *t, int pid);
void table__remove(struct table *t, int pid);
int table__nr(const struct table *t);
struct mt_row *table__row(struct table *t, int i);

/*
 * Refresh interval (ns): a sample taken less than half of one after the
 * previous (the final table, a process's exit) keeps the rates of the
 * last full interval instead of measuring over those few milliseconds.
 */
void table__set_interval(struct table *t, uint64_t ns);
/* Fresh counters for pid at time ts (ns); rates use the previous ones. */
void table__set_stats(struct table *t, struct mt_row *r,
		      const struct mt_proc *st, uint64_t ts);
/* Finish a refresh: rates for rows whose counters did not move, etc. */
void table__sort(struct table *t, enum mt_sort key, bool reverse);
const char *table__sort_name(enum mt_sort key);

/* mmap-family bookkeeping (addresses/lengths as the syscalls saw them) */
void row__mmap(struct mt_row *r, uint64_t addr, uint64_t len, uint64_t flags);
void row__munmap(struct mt_row *r, uint64_t addr, uint64_t len);
void row__mremap(struct mt_row *r, uint64_t old, uint64_t old_len,
		 uint64_t new_addr, uint64_t new_len);
/*
 * Growth per second: of the live heap where allocations are traced, else
 * of the memory faulted in (the node view's estimate).
 */
static inline double row__growth(const struct mt_row *r)
{
	return r->cur.allocs ? r->growth_bps : r->fault_bps;
}

/* New image after exec: everything about the old one is gone. */
void row__reset(struct mt_row *r);
/* The site of r with this stack id, added (zeroed) if new; NULL: no memory. */
struct mt_site_row *row__site(struct mt_row *r, uint64_t stack_id);

#endif /* MT_TABLE_H */
