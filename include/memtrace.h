/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Records shared by the BPF programs (bpf/memtrace.bpf.c) and the loader.
 *
 * Every type here has fixed-width fields only, so one definition serves
 * both sides.  Allocation accounting is aggregated inside the kernel (the
 * per-process, per-block and per-site maps below): a malloc/free pair
 * never crosses to user space, which keeps the probe cost near the
 * uprobe floor.  The ring buffer carries the rarer events (process
 * lifecycle, mmap family, OOM victims), each starting with a type field.
 */
#ifndef MEMTRACE_H
#define MEMTRACE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
typedef __u8 u8;
typedef __s8 s8;
typedef __u16 u16;
typedef __u32 u32;
typedef __s16 s16;
typedef __s32 s32;
typedef __u64 u64;
typedef __s64 s64;
#endif

#define MT_COMM_LEN		16
#define MT_PATH_LEN		128
#define MT_MAX_STACK		32	/* user frames kept per allocation */

/* Which allocator entry point a probe belongs to. */
enum mt_fn {
	MT_FN_MALLOC = 0,
	MT_FN_CALLOC,
	MT_FN_REALLOC,
	MT_FN_REALLOCARRAY,
	MT_FN_FREE,
	MT_FN_POSIX_MEMALIGN,
	MT_FN_ALIGNED_ALLOC,
	MT_FN_MEMALIGN,
	MT_FN_VALLOC,
	MT_FN_PVALLOC,
	MT_FN_MAX,
};

/*
 * Per-process counters as user space sees them (summed over slots).
 * Live bytes/objects are derived: alloc - free, because frees are only
 * counted for blocks whose allocation was seen.  gen changes on exec so
 * blocks of the old image are recognised as stale.
 */
struct mt_proc {
	u64 gen;
	u64 alloc_bytes;
	u64 allocs;
	u64 free_bytes;
	u64 frees;
	u64 page_faults;
	u64 unmatched_frees;	/* frees of blocks allocated before tracing */
	u64 lost;		/* allocations not tracked (maps full) */
	u64 lost_sites;		/* allocations without a call-site stack */
	u64 lost_events;	/* ring-buffer records dropped for this pid */
	u64 sampled;		/* non-zero: counters are sampled estimates */
	u64 fault_bytes;	/* not-present user page faults x 4 KiB */
};

/*
 * The allocation counters are kept in MT_SLOTS copies, picked by CPU,
 * each on cache lines of its own (128-byte stride): threads of one
 * process allocating on different CPUs then never fight over one line.
 */
#define MT_SLOTS	4
struct mt_counts {
	u64 alloc_bytes;
	u64 allocs;
	u64 free_bytes;
	u64 frees;
	u64 pad[12];
};

/* The kernel's per-process entry, key = tgid. */
struct mt_kproc {
	u64 gen;
	u64 page_faults;
	u64 unmatched_frees;
	u64 lost;
	u64 lost_sites;
	u64 lost_events;
	u64 sampled;
	u64 fault_bytes;	/* node view: memory faulted in (estimate) */
	u64 map_bytes;		/* node view: anonymous mmap and brk growth */
	u64 last_brk;		/* the break after its last brk() */
	u64 pad[6];
	struct mt_counts c[MT_SLOTS];
};

/* mm_iter's record: a process's heap and VmData as its mm has them now. */
struct mt_mm_rec {
	u32 tgid;
	u32 pad;
	u64 start_brk;
	u64 brk;
	u64 data_vm;		/* VmData, pages: private writable */
};

/*
 * Where a process's shared-library allocators have their code (up to
 * MT_ALLOC_TEXTS ranges, [lo, hi)), filled by the loader.  A free() that
 * finds nothing, called from there, is the allocator's own housekeeping
 * (glibc frees every chunk of its per-thread cache through free() when a
 * thread exits): not an unmatched free of the program's.
 */
#define MT_ALLOC_TEXTS	4
struct mt_alloc_text {
	u64 lo[MT_ALLOC_TEXTS];
	u64 hi[MT_ALLOC_TEXTS];
};

struct mt_block_key {
	u32 tgid;
	u32 pad;
	u64 addr;
};

/* A live block in the big table.  size is the requested size. */
struct mt_block {
	u64 size;
	u64 weight;		/* bytes this block stands for when sampled */
	u64 stack;		/* stack hash, 0 = no stack */
	u32 gen;
	u32 pad;
};

/*
 * A bucket of the small block table: two cache lines, the first holding
 * what a lookup compares.  A slot is free while addr is 0; tgid is 0
 * while it is being filled or emptied.  cnt is the number of objects the
 * block stands for (1 unless sampled), weight its bytes.
 */
#define MT_BUCKET_SLOTS	3
struct mt_bucket {
	u64 addr[MT_BUCKET_SLOTS];
	u32 tgid[MT_BUCKET_SLOTS];
	u32 gen[MT_BUCKET_SLOTS];
	u32 cnt[MT_BUCKET_SLOTS];
	u32 spills;		/* its blocks in the big table (bucket full) */
	u64 stack[MT_BUCKET_SLOTS];
	u64 weight[MT_BUCKET_SLOTS];
	u64 pad[2];
};

/* The bucket of block (tgid, addr), for the kernel and the sweep alike. */
static inline u32 mt_bucket_of(u32 tgid, u64 addr, u32 mask)
{
	return (u32)((((addr >> 4) ^ ((u64)tgid << 40)) *
		      0x9e3779b97f4a7c15ULL) >> 32) & mask;
}

/*
 * A user stack, keyed by process image (tgid, generation) and a 64-bit
 * hash of its frames: no bucket collisions (unlike a stack-trace map,
 * which drops a stack whose bucket is taken), and the entries of an
 * exited process or a replaced image can be swept.  Stored once, when
 * the first site with that stack is made.
 */
struct mt_stack_key {
	u32 tgid;
	u32 gen;
	u64 hash;
};

/*
 * Three kinds of site share the site map, told apart by the stack hash's
 * low bits: allocator sites (exact tracing) have bit 0 set; the node
 * view's growth sites, user stacks sampled at page faults that bring in
 * new memory, end in binary 10; its map sites, stacks sampled at
 * anonymous mmap and brk growth (address space reserved, not yet
 * touched), in 00.  A growth or map sample stands for fault_sample_bytes.
 */
#define MT_SITE_GROWTH(h)	(((h) & 3) == 2)
#define MT_SITE_MAP(h)		((h) && !((h) & 3))
#define MT_GROWTH_NO_STACK	2	/* fault sample whose walk failed */
#define MT_MAP_NO_STACK		4	/* map sample whose walk failed */

/* Per allocation site (tgid, stack) key. */
struct mt_site_key {
	u32 tgid;
	u32 gen;
	u64 stack;		/* stack hash, 0 = no stack */
};

/* Per-site counters as user space sees them (summed over slots). */
struct mt_site {
	u64 alloc_bytes;
	u64 allocs;
	u64 free_bytes;
	u64 frees;
};

/* The kernel's per-site entry. */
struct mt_ksite {
	struct mt_counts c[MT_SLOTS];
};

/*
 * A caller of the allocator that keeps no frame pointer (libstdc++'s
 * operator new, glib's g_malloc, most xmalloc wrappers in distribution
 * builds): a frame-pointer walk from it skips its own caller, the
 * function that asked for the memory.  User space finds such call sites
 * in the ELF files a process maps and reads their frame layout from the
 * CFI (.eh_frame); the kernel recognises one by the code around the
 * return address, which is the same in every process that maps the
 * file, wherever it is mapped.
 */
#define MT_FIX_SIG	32	/* code bytes [ret - 16, ret + 16) */
struct mt_fix_key {
	u8 code[MT_FIX_SIG];
};

struct mt_fix {
	s16 ra_off;	/* caller's return address at sp + ra_off */
	s16 fp_off;	/* caller's frame pointer at sp + fp_off, -1: in rbp */
	u32 pad;
};
/* sp: the stack pointer right after the allocator returned */
#define MT_FIX_MAX_OFF	504	/* offsets fit the walk's first window */

/* The call sites looked up last, per thread (searched in full). */
#define MT_FIX_CACHE	8
struct mt_fix_slot {
	u64 ip;
	u32 tag;		/* image generation and table epoch */
	s16 ra_off;		/* -1: not a frameless call site */
	s16 fp_off;
};

/* Per-thread state of an allocator call in flight (entry -> return). */
struct mt_inflight {
	u64 size;
	u64 weight;		/* sampled at entry, else W_UNDECIDED */
	u64 arg;		/* realloc: old pointer; posix_memalign: memptr */
	u64 sp;			/* stack pointer at the outermost entry */
	u32 fn;
	u32 depth;		/* > 1: nested call inside the allocator */
	struct mt_fix_slot fix[MT_FIX_CACHE];
	u32 fix_next;		/* the slot to replace next */
	u32 pad;
	u64 last_free;		/* address of its last free, 0 after an allocation */
	/*
	 * realloc's old block, taken out of the tables (and its free
	 * accounted) at entry: the allocator may hand that address to
	 * another thread before realloc returns.  Put back if it fails.
	 */
	u64 old_weight;
	u64 old_stack;
	u32 old_gen;
	u32 old_cnt;
	u32 old_state;		/* MT_OLD_* */
	u32 sample_armed;	/* sample_left holds a drawn gap */
	s64 sample_left;	/* bytes left until the next sample */
};

enum mt_old_state {
	MT_OLD_NONE = 0,	/* no old block, or nothing to account */
	MT_OLD_TAKEN,		/* taken and its free accounted */
	MT_OLD_MISSING,		/* in neither table: unmatched if freed */
};

/*
 * Unwinding by CFI (.eh_frame), for code without frame pointers.
 *
 * User space compiles each executable file's CFI once (cfi.c) into rows
 * sorted by address, one rule per address range: where the canonical
 * frame address (CFA, the stack pointer before the call) is, and where
 * rbp was saved; the return address is always at CFA - 8 on x86-64.
 * The rows of every file sit in one array (cfi_rows), each file's as
 * one run, found by (device, inode) in cfi_files: shared by every
 * process that maps the file.  Per process, cfi_procs says which file
 * is mapped where; the kernel keeps it (exec, mmap, fork), user space
 * fills it for processes that ran before memtrace.
 */
enum mt_cfi_type {
	MT_CFI_NONE = 0,	/* no CFI here: frame pointers */
	MT_CFI_RSP,		/* CFA = rsp + off */
	MT_CFI_RBP,		/* CFA = rbp + off */
	MT_CFI_END,		/* return address undefined: outermost frame */
	MT_CFI_UNSUP,		/* a rule the kernel cannot follow (expression) */
	MT_CFI_SIGNAL,		/* signal trampoline: registers in a ucontext */
};

struct mt_cfi_row {
	u32 pc;			/* ELF address where this rule starts */
	u16 cfa_off;		/* CFA offset from rsp/rbp, in 8-byte units */
	u8 type;		/* enum mt_cfi_type */
	s8 rbp_off;		/* rbp saved at CFA + 8 * rbp_off; 0: unchanged */
};

struct mt_cfi_key {
	u64 ino;
	u32 dev;		/* the kernel's encoding: major << 20 | minor */
	u32 pad;
};

/* A compiled file: its rows are cfi_rows[first, first + nrows). */
#define MT_CFI_FP	1	/* every function keeps a frame pointer */
struct mt_cfi_file {
	u32 first;
	u32 nrows;
	u32 flags;
	u32 pad;
	s64 delta;		/* ELF address - file offset of its code */
};

/* One file-backed code mapping of a process. */
#define MT_CFI_MAPS	64
/*
 * pgoff with MT_CFI_SPAN: the node view's entry for a library's whole
 * span as ld.so first maps it (vaddr = pc - start), before its segments
 * are known; /proc's entries replace it.
 */
#define MT_CFI_SPAN	(1ULL << 63)
struct mt_cfi_map {
	u64 start, end, pgoff;
	struct mt_cfi_key key;
};

struct mt_cfi_proc {
	u32 n;
	u32 pad;
	struct mt_cfi_map m[MT_CFI_MAPS];
};

/* Stack-walk statistics (per-CPU array uw_stats), for every stack taken. */
enum mt_uw_stat {
	MT_UW_STACKS = 0,	/* stacks walked */
	MT_UW_FRAMES,		/* frames stored */
	MT_UW_CFI,		/* steps taken by a CFI rule */
	MT_UW_FP,		/* steps taken by frame pointer (code that keeps one) */
	MT_UW_UNKNOWN,		/* steps from code with no CFI known: frame pointer tried */
	MT_UW_PENDING,		/* of those, in a file whose CFI is still compiling */
	MT_UW_TRUNCATED,	/* stacks cut at MT_MAX_STACK frames */
	MT_UW_MAPS_FULL,	/* code mappings not entered: a process table full */
	MT_UW_SIGNAL,		/* signal frames crossed */
	MT_UW_MAX,
};

/* Global counters, index into the "counters" array map. */
enum mt_counter {
	MT_CNT_RB_DROPS = 0,	/* ring-buffer records lost */
	MT_CNT_BLOCKS_FULL,	/* block map full: allocation untracked */
	MT_CNT_SITES_FULL,	/* site map full */
	MT_CNT_STACK_ERR,	/* stack could not be captured */
	MT_CNT_INFLIGHT_FULL,	/* in-flight map full: call untracked */
	MT_CNT_PROCS_FULL,	/* process map full */
	MT_CNT_STALE,		/* blocks from a previous image (exec) */
	MT_CNT_ASLEEP,		/* calls let go: memtrace's heartbeat was stale */
	MT_CNT_MAX,
};

enum mt_event_type {
	MT_EV_EXEC = 1,
	MT_EV_EXIT,
	MT_EV_FORK,
	MT_EV_MMAP,
	MT_EV_MUNMAP,
	MT_EV_MREMAP,
	MT_EV_BRK,
	MT_EV_OOM,
	MT_EV_MAPFILE,
};

/*
 * MAPFILE: code mapped from a file, with the file's path as the kernel
 * knows it (dentry names, innermost first): a process that exits before
 * memtrace reads its /proc/PID/maps still has its stacks symbolized.
 */
#define MT_MAPFILE_COMPS	16
#define MT_MAPFILE_COMP_LEN	64

struct mt_event {
	u32 type;
	u32 tgid;
	u32 pid;
	u32 ppid;		/* FORK: parent tgid */
	u64 ts;			/* CLOCK_MONOTONIC ns */
	char comm[MT_COMM_LEN];
	union {
		struct {	/* MMAP, MUNMAP, MREMAP, BRK */
			u64 addr;	/* MREMAP: old address */
			u64 len;	/* MREMAP: old length */
			u64 ret;	/* result address (MMAP/MREMAP/BRK) */
			u64 new_len;	/* MREMAP */
			u64 flags;	/* MMAP flags */
			u64 prot;	/* MMAP protection */
			s64 err;	/* negative errno on failure */
		} mm;
		struct {	/* EXIT: final counters of the process */
			s32 exit_code;
			u32 pad;
			struct mt_kproc stats;
		} exit;
		struct {	/* EXEC */
			u64 old_gen;	/* the replaced image, 0 = none */
			u64 new_gen;
			char filename[MT_PATH_LEN];
		} exec;
		struct {	/* OOM */
			u32 uid;
			u64 total_vm_pages;
		} oom;
		struct {	/* FORK: the child's generation */
			u64 gen;
		} fork;
		struct {	/* MAPFILE */
			u64 start;
			u64 len;
			u64 pgoff;	/* file offset, bytes */
			u64 ino;
			u32 ncomp;	/* path components filled in */
			u32 truncated;	/* the path had more of them */
			char comp[MT_MAPFILE_COMPS][MT_MAPFILE_COMP_LEN];
		} mapfile;
	};
};


#ifndef __VMLINUX_H__
/* Sum the kernel's slots into the user-space view. */
static inline void mt_proc_sum(const struct mt_kproc *k, struct mt_proc *p)
{
	int i;

	p->gen = k->gen;
	p->page_faults = k->page_faults;
	p->unmatched_frees = k->unmatched_frees;
	p->lost = k->lost;
	p->lost_sites = k->lost_sites;
	p->lost_events = k->lost_events;
	p->sampled = k->sampled;
	p->fault_bytes = k->fault_bytes;
	p->alloc_bytes = p->allocs = p->free_bytes = p->frees = 0;
	for (i = 0; i < MT_SLOTS; i++) {
		p->alloc_bytes += k->c[i].alloc_bytes;
		p->allocs += k->c[i].allocs;
		p->free_bytes += k->c[i].free_bytes;
		p->frees += k->c[i].frees;
	}
}

static inline void mt_site_sum(const struct mt_ksite *k, struct mt_site *s)
{
	int i;

	s->alloc_bytes = s->allocs = s->free_bytes = s->frees = 0;
	for (i = 0; i < MT_SLOTS; i++) {
		s->alloc_bytes += k->c[i].alloc_bytes;
		s->allocs += k->c[i].allocs;
		s->free_bytes += k->c[i].free_bytes;
		s->frees += k->c[i].frees;
	}
}
#endif

/*
 * GC events of one Go process (key: tgid), counted by entry uprobes on
 * runtime.gcStart and the stop/start-the-world pair: a pause is the time
 * from the stop's entry to the start's entry.  Created by user space for
 * the processes it watches; the programs never add entries.
 */
struct mt_go_gc {
	u64 gc_starts;
	u64 stw_count;
	u64 stw_total_ns;
	u64 stw_last_ns;
	u64 stw_max_ns;
	u64 stop_ts;		/* entry of the stop in progress, 0 = none */
};

#endif /* MEMTRACE_H */
