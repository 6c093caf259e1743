// SPDX-License-Identifier: GPL-2.0
/*
 * memtrace BPF side: allocator uprobes, mmap-family syscalls, page faults,
 * process lifecycle and OOM victims.
 *
 * Allocation accounting happens here, in maps the loader reads at each
 * refresh, rather than by streaming every malloc/free to user space: at
 * millions of calls per second the ring buffer and its consumer would
 * cost more than the uprobe itself.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "memtrace.h"

#define ENOENT 2
#define E2BIG 7
#define EEXIST 17

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile bool trace_all = false;	/* create a process entry on demand */
const volatile bool want_stacks = true;
const volatile u64 sample_bytes = 0;	/* 0: every allocation is exact */
const volatile u32 self_tgid = 0;	/* memtrace itself: never traced */
const volatile u64 ringbuf_wake_bytes = 1 << 20;	/* backlog that wakes */
/*
 * The dead-man switch (user/watchdog.h): memtrace writes heartbeat_ns at
 * each turn of its loop.  Older than stale_ns, memtrace is hung or
 * stopped: the programs do nothing until its watchdog ends it (only
 * closing the links spares a traced call the trap itself).
 */
volatile u64 heartbeat_ns;
const volatile u64 stale_ns = 0;	/* 0: no watchdog */

/* Node view: one user stack per this many bytes faulted in; 0 = off. */
const volatile u64 fault_sample_bytes = 0;
/*
 * The mmap family is traced at syscall exit (exact: every call, with its
 * result).  Off in the node view: while any syscall tracepoint is on,
 * every syscall of every process on the node takes the kernel's slow
 * path (getppid 113 -> 150 ns here), a cost that follows the syscall
 * rate, not memory growth.  The node view reads the break at page faults
 * and sees mmaps where the kernel places them (vm_unmapped_area).
 */
const volatile bool mm_syscalls = true;

/* Zeroed templates for new entries: too big for the 512-byte BPF stack. */
const struct mt_kproc zero_proc = {};
const struct mt_ksite zero_site = {};

/* This CPU's copy of the allocation counters. */
static __always_inline u32 slot(void)
{
	return bpf_get_smp_processor_id() & (MT_SLOTS - 1);
}



struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);	/* resized by the loader */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct mt_kproc);
} procs SEC(".maps");

/*
 * Per-thread state lives in task storage: reaching it is a pointer walk
 * from the current task, much cheaper than hashing the thread id on
 * every allocator call, and it goes away with the thread.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mt_inflight);
} inflight SEC(".maps");

/*
 * Live blocks go to a bucketized table first (hot) and only when their
 * bucket is full to a hash table (blocks).  A block is in exactly one.
 *
 * Finding the block a free() names is the costliest step of tracing: the
 * address is random, so each lookup is a cache miss.  A hash table pays
 * two or more (bucket array, then the element, which it allocates and
 * frees with each block, under a bucket lock); with a 10,000-block live
 * set that was ~280 ns per free.  A hot bucket is 128 bytes, cache-line
 * aligned (the array is mmapable, so its values start on a page), and
 * holds everything about its blocks: one miss, no allocation, and slots
 * taken and given back with compare-and-swap on the address.  The array
 * is mmapable for the loader's sweep too, which frees slots the same way.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1 << 14);	/* buckets; resized by the loader */
	__type(key, u32);
	__type(value, struct mt_bucket);
} hot SEC(".maps");

const volatile u32 hot_mask = (1 << 14) - 1;	/* buckets - 1 */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct mt_alloc_text);
} alloc_text SEC(".maps");

/* Inodes of the allocator files memtrace probes (filled by the loader). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, u8);
} alloc_inodes SEC(".maps");

/* The big maps are not preallocated: memory follows what is tracked. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct mt_block_key);
	__type(value, struct mt_block);
} blocks SEC(".maps");

/*
 * Blocks in the big table: entered less deleted, by the kernel here and
 * by user space's sweep of exited processes (a statistic; lookups go by
 * the count of their own bucket).
 */
volatile s64 spilled;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);
	__type(key, struct mt_site_key);
	__type(value, struct mt_ksite);
} sites SEC(".maps");

struct mt_stack {
	u64 ips[MT_MAX_STACK];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 17);
	__type(key, struct mt_stack_key);
	__type(value, struct mt_stack);
} stacks SEC(".maps");

/*
 * The CFI walk's state lives in a map value, not on the BPF stack: the
 * verifier then knows nothing of its values from one bpf_loop() step to
 * the next and checks a step once, instead of following every window
 * offset and table index it could take through 32 frames.  It is the
 * thread's own (in stack_buf), not per-CPU: the walk calls helpers that
 * read user memory, and a tracing program may be preempted between two
 * of them on a preemptible kernel (PREEMPT_DYNAMIC can be made full at
 * boot), when another thread's walk on this CPU would overwrite it.
 */
struct cfi_state {
	u64 ip, sp, bp;
	u64 base, valid;	/* the window of stack memory in w->win */
	u64 h;
	u32 n;
	u32 exact;		/* ip is an exact pc (frame 0, after a signal) */
	u32 map;		/* the mapping looked up last, + 1 */
	u32 first, nrows, flags;	/* its file */
	s64 delta;
	u64 cfi, fp, unknown, pending, signal;
	u64 pc;			/* lookups: the pc, and what they found */
	u32 mn, mfound;
	u32 lo, hi, va;
};

/*
 * Scratch space for one stack walk (too big for the BPF stack): the
 * frames found, and a window of user stack memory read in one go.
 *
 * Per thread, not per CPU: uprobe programs run with migration disabled
 * but preemptible, so another thread on this CPU could walk its own
 * stack into a per-CPU buffer between this walk and the store of its
 * frames, and a site would keep the wrong frames for good.
 */
#define MT_WINDOW 512

/*
 * What cfi_find() found for a pc, per thread: a hot allocation site's
 * stack is the same pcs walk after walk, and each costs a search of the
 * process's mappings and a binary search of its file's rows (~15 steps)
 * otherwise.  An entry is checked against the mapping it names before
 * use: a mapping replaced since (dlopen, exec, /proc's rescan) misses.
 */
#define MT_PCC		64
#define MT_PCC_ROW	1	/* row is the rule for pc */
#define MT_PCC_FP	2	/* the file keeps frame pointers */
struct mt_pcc {
	u64 pc;
	u64 ino;
	u32 dev;
	u32 row;
	u16 map;		/* index in the process's table */
	u16 kind;
	u32 pad;
};

struct mt_walk {
	struct mt_stack st;
	u8 win[MT_WINDOW + 16];	/* +16: a frame read at the last offset */
	struct cfi_state cfi;	/* the CFI walk (cfi_capture) */
	struct mt_pcc pcc[MT_PCC];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mt_walk);
} stack_buf SEC(".maps");

/* Frameless allocator call sites, filled by user space (unwind.c). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);
	__type(key, struct mt_fix_key);
	__type(value, struct mt_fix);
} fixups SEC(".maps");

/*
 * Bumped by user space each time it adds call sites, so that threads
 * look again at the sites they cached as plain; 0: the table is empty.
 */
volatile u32 fix_epoch;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MT_CNT_MAX);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

/* Exponential sample gaps (bytes), filled by the loader when sampling. */
#define MT_SAMPLE_TABLE 4096
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MT_SAMPLE_TABLE);
	__type(key, u32);
	__type(value, u64);
} sample_gaps SEC(".maps");

/*
 * Weight of a sampled block of size s: s / (1 - exp(-s/N)), tabulated by
 * the loader at s = i * N / 64 (BPF has no floating point) and
 * interpolated; beyond 16 N the weight is s itself to within 1e-7.
 */
#define MT_WEIGHT_STEPS 64
#define MT_WEIGHT_TABLE (16 * MT_WEIGHT_STEPS + 2)
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MT_WEIGHT_TABLE);
	__type(key, u32);
	__type(value, u64);
} sample_w SEC(".maps");



static __always_inline void count(u32 idx)
{
	u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* memtrace has not checked in for stale_ns: do nothing (see stale_ns). */
static __always_inline bool asleep(void)
{
	/* signed: memtrace sets it ahead before a long attach */
	if (!stale_ns || (s64)(bpf_ktime_get_ns() - heartbeat_ns) <=
			 (s64)stale_ns)
		return false;
	count(MT_CNT_ASLEEP);
	return true;
}

/* A fresh entry for tgid (a new process or a new image after exec). */
static __always_inline struct mt_kproc *proc_new(u32 tgid, u64 flags)
{
	struct mt_kproc *p;

	if (bpf_map_update_elem(&procs, &tgid, &zero_proc, flags))
		return NULL;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (p) {
		p->gen = bpf_ktime_get_ns();
		p->sampled = sample_bytes;
	}
	return p;
}

static __always_inline struct mt_kproc *proc_get(u32 tgid)
{
	struct mt_kproc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (p || !trace_all || tgid == self_tgid)
		return p;
	p = proc_new(tgid, BPF_NOEXIST);
	if (!p) {
		/* lost a race with another thread, or the map is full */
		p = bpf_map_lookup_elem(&procs, &tgid);
		if (!p)
			count(MT_CNT_PROCS_FULL);
	}
	return p;
}

/*
 * Bytes-based Poisson sampling: each thread counts down a random,
 * exponentially distributed number of bytes; the allocation that crosses
 * zero is sampled.  A block of size s is then sampled with probability
 * 1 - exp(-s/N) whatever came before it, so the loader can rescale.
 * Returns the weight (bytes the block stands for), W_SKIP = not sampled;
 * without sampling, the size itself (0 for malloc(0), which still counts).
 */
static __always_inline u64 scaled_weight(u64 size)
{
	u64 x = size * MT_WEIGHT_STEPS, rem, *w0, *w1;
	u32 i;

	if (size >= 16 * sample_bytes)
		return size;
	i = x / sample_bytes;
	rem = x % sample_bytes;
	w0 = bpf_map_lookup_elem(&sample_w, &i);
	i++;
	w1 = bpf_map_lookup_elem(&sample_w, &i);
	if (!w0 || !w1)
		return size;
	return *w0 + (*w1 - *w0) * rem / sample_bytes;
}

/* sample_weight() results that are not weights */
#define W_SKIP		(~0ULL)		/* not sampled */
#define W_UNDECIDED	(~0ULL - 1)	/* not decided at entry */

/*
 * The countdown is the thread's own, in its task storage: no map of
 * threads that could fill up (when one did, every allocation of a
 * thread left out was counted in full, silently) and nothing to delete
 * when the thread exits.
 */
static __always_inline u64 sample_weight(struct mt_inflight *in, u64 size)
{
	u32 r;
	u64 *gap;

	if (!sample_bytes)
		return size;
	if (!in->sample_armed) {
		r = bpf_get_prandom_u32() % MT_SAMPLE_TABLE;
		gap = bpf_map_lookup_elem(&sample_gaps, &r);
		in->sample_left = gap ? *gap : sample_bytes;
		in->sample_armed = 1;
	}
	in->sample_left -= size;
	if (in->sample_left > 0)
		return W_SKIP;
	/* draw the next gap; several samples may fit in one huge block */
	r = bpf_get_prandom_u32() % MT_SAMPLE_TABLE;
	gap = bpf_map_lookup_elem(&sample_gaps, &r);
	in->sample_left = gap ? *gap : sample_bytes;
	return scaled_weight(size);
}

static __always_inline void realloc_take(struct mt_inflight *in, u32 tgid,
					 u64 addr);

/*
 * Entry of an allocating function.  A nested call (calloc -> malloc in
 * some libcs, reallocarray -> realloc, realloc(NULL) -> malloc) only
 * bumps the depth, so each block is counted once, by the outermost call.
 */
static __always_inline int alloc_enter(struct pt_regs *ctx, u32 fn, u64 size,
				       u64 arg, bool session)
{
	struct task_struct *task = bpf_get_current_task_btf();
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32;
	struct mt_inflight *in;
	u64 weight = W_UNDECIDED;

	in = bpf_task_storage_get(&inflight, task, NULL, 0);
	/*
	 * An entry whose outer frame is gone (the thread left the
	 * allocator by longjmp or was cancelled) must not swallow the calls
	 * that follow: the stack grows down, so a stack pointer above the
	 * recorded one is a new call.  A session probe skips the nested
	 * call's return outright; a uretprobe runs it, so count depth.
	 */
	if (in && in->depth && PT_REGS_SP(ctx) <= in->sp) {
		if (session)
			return 1;
		in->depth++;
		return 0;
	}
	if ((!trace_all || tgid == self_tgid) &&
	    !bpf_map_lookup_elem(&procs, &tgid))
		return 1;
	if (!in) {
		in = bpf_task_storage_get(&inflight, task, NULL,
					  BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!in) {
			struct mt_kproc *p = proc_get(tgid);

			count(MT_CNT_INFLIGHT_FULL);
			if (p)
				__sync_fetch_and_add(&p->lost, 1);
			return 1;
		}
	}
	/*
	 * With sampling, a session probe decides at entry: an unsampled
	 * allocation then costs no return probe at all.  realloc must
	 * always return here, its old block may be a sampled one.
	 */
	if (session && sample_bytes && fn != MT_FN_REALLOC &&
	    fn != MT_FN_REALLOCARRAY) {
		weight = sample_weight(in, size);
		if (weight == W_SKIP)
			return 1;
	}
	in->size = size;
	in->weight = weight;
	in->last_free = 0;
	in->arg = arg;
	in->sp = PT_REGS_SP(ctx);
	in->fn = fn;
	in->depth = 1;
	in->old_state = MT_OLD_NONE;
	if (fn == MT_FN_REALLOC && arg)
		realloc_take(in, tgid, arg);
	return 0;
}

/* Objects a block stands for: 1, or weight/size rounded when sampled. */
static __always_inline u64 obj_weight(u64 size, u64 weight)
{
	if (!sample_bytes || !size || weight <= size)
		return 1;
	return (weight + size / 2) / size;
}

/* The bucket of block (tgid, addr): a multiplicative hash of both. */
static __always_inline struct mt_bucket *bucket_of(u32 tgid, u64 addr)
{
	u32 i = mt_bucket_of(tgid, addr, hot_mask);

	return bpf_map_lookup_elem(&hot, &i);
}

/* Into or out of the big table: counted per bucket, and in all. */
static __always_inline void spill_count(struct mt_bucket *bk, int d)
{
	__sync_fetch_and_add(&bk->spills, d);
	__sync_fetch_and_add(&spilled, d);
}

/* The slot of (tgid, addr) in bk, or MT_BUCKET_SLOTS. */
static __always_inline u32 slot_find(const struct mt_bucket *bk, u32 tgid,
				     u64 addr)
{
	u32 i;

	for (i = 0; i < MT_BUCKET_SLOTS; i++)
		if (bk->addr[i] == addr && bk->tgid[i] == tgid)
			break;
	return i;
}

/* A block as taken out of its table. */
struct taken {
	u64 weight;		/* bytes it stands for */
	u64 stack;
	u32 gen;
	u32 cnt;		/* objects; 0: nothing to account */
};

/*
 * Take block (tgid, addr) out of its table into t.  False if it is in
 * neither table: never seen, or freed already.  A racing double free
 * finds it too, but only one of the two gets a count to account.
 */
static __always_inline bool block_take(u32 tgid, u64 addr, struct taken *t)
{
	struct mt_block_key k = { .tgid = tgid, .addr = addr };
	struct mt_bucket *bk = bucket_of(tgid, addr);
	struct mt_block *b;
	u32 i = MT_BUCKET_SLOTS;

	if (bk)
		i = slot_find(bk, tgid, addr);
	if (bk && i < MT_BUCKET_SLOTS) {
		/* read it all before the slot can be taken again */
		t->gen = bk->gen[i];
		t->cnt = bk->cnt[i];
		t->stack = bk->stack[i];
		t->weight = bk->weight[i];
		bk->tgid[i] = 0;
		if (__sync_val_compare_and_swap(&bk->addr[i], addr, 0) != addr)
			t->cnt = 0;
		return true;
	}
	if (bk && bk->spills && (b = bpf_map_lookup_elem(&blocks, &k))) {
		t->gen = b->gen;
		t->cnt = obj_weight(b->size, b->weight);
		t->stack = b->stack;
		t->weight = b->weight;
		if (bpf_map_delete_elem(&blocks, &k))
			t->cnt = 0;
		else
			spill_count(bk, -1);
		return true;
	}
	return false;
}

/*
 * Account the free of a taken block to its process and site; undo (a
 * realloc that failed after its block was taken) takes it back.  False
 * if there was nothing to account (a stale or doubly freed block).
 */
static __always_inline bool block_account(struct mt_kproc *p, u32 tgid,
					  const struct taken *t, bool undo)
{
	struct mt_site_key sk = { .tgid = tgid, .gen = t->gen,
				  .stack = t->stack };
	u64 size = t->weight, cnt = t->cnt;
	struct mt_ksite *s;
	u32 i;

	if (!cnt)
		return false;
	if (t->gen != (u32)p->gen) {
		/* left over from the image before an exec */
		if (!undo)
			count(MT_CNT_STALE);
		return false;
	}
	if (undo) {
		size = -size;
		cnt = -cnt;
	}
	i = slot();
	__sync_fetch_and_add(&p->c[i].free_bytes, size);
	__sync_fetch_and_add(&p->c[i].frees, cnt);
	s = bpf_map_lookup_elem(&sites, &sk);
	if (s) {
		__sync_fetch_and_add(&s->c[i].free_bytes, size);
		__sync_fetch_and_add(&s->c[i].frees, cnt);
	}
	return true;
}

/*
 * A block is freed: take it out of its table, account it to its site.
 * False if it is in neither table: never seen, or freed already; the
 * caller decides whether that is an unmatched free.
 */
static __always_inline bool block_free(struct mt_kproc *p, u32 tgid, u64 addr)
{
	struct taken t;

	if (!block_take(tgid, addr, &t))
		return false;
	block_account(p, tgid, &t, false);
	return true;
}

/*
 * A free of a block in neither table: an unmatched free (of a block from
 * before tracing, or a double free), unless sampling left it unseen on
 * purpose or it is not the program's (see free_enter, mt_alloc_text).
 */
static __always_inline void unmatched_free(struct mt_kproc *p)
{
	if (!sample_bytes)
		__sync_fetch_and_add(&p->unmatched_frees, 1);
}

/*
 * Enter block b (cnt objects) at (tgid, addr): a free slot of its bucket,
 * else the big table.  A slot is taken by compare-and-swap of its
 * address from 0 and published by its tgid, written last: nobody looks
 * for this block before malloc has returned it, and the loader's sweep
 * leaves slots with tgid 0 alone.
 */
static __always_inline long block_insert(struct mt_kproc *p, u32 tgid, u64 addr,
					 const struct mt_block *b, u32 cnt)
{
	struct mt_block_key k = { .tgid = tgid, .addr = addr };
	struct mt_bucket *bk = bucket_of(tgid, addr);
	long err;
	u32 i;

	if (!bk)
		return -ENOENT;
	/* only a bucket that overflowed has blocks in the big table */
	if (slot_find(bk, tgid, addr) < MT_BUCKET_SLOTS ||
	    (bk->spills && bpf_map_lookup_elem(&blocks, &k)))
		block_free(p, tgid, addr);
	for (i = 0; i < MT_BUCKET_SLOTS; i++) {
		if (bk->addr[i] ||
		    __sync_val_compare_and_swap(&bk->addr[i], 0, addr))
			continue;
		bk->gen[i] = b->gen;
		bk->cnt[i] = cnt;
		bk->stack[i] = b->stack;
		bk->weight[i] = b->weight;
		bk->tgid[i] = tgid;
		return 0;
	}
	err = bpf_map_update_elem(&blocks, &k, b, BPF_NOEXIST);
	if (err == -EEXIST)	/* entered meanwhile by a racing thread */
		err = bpf_map_update_elem(&blocks, &k, b, BPF_EXIST);
	else if (!err)
		spill_count(bk, 1);
	return err;
}

/*
 * realloc's old block leaves the tables at realloc's entry, not at its
 * return: inside realloc the allocator frees it, and another thread may
 * be handed that address (and enter its new block) before realloc
 * returns; dropping the old block then would drop the other thread's.
 * Its free is accounted now and undone if realloc fails.
 */
static __always_inline void realloc_take(struct mt_inflight *in, u32 tgid,
					 u64 addr)
{
	struct mt_kproc *p = proc_get(tgid);
	struct taken t;

	if (!p)
		return;
	if (!block_take(tgid, addr, &t)) {
		in->old_state = MT_OLD_MISSING;
		return;
	}
	if (!block_account(p, tgid, &t, false))
		return;
	in->old_weight = t.weight;
	in->old_stack = t.stack;
	in->old_gen = t.gen;
	in->old_cnt = t.cnt;
	in->old_state = MT_OLD_TAKEN;
}

/* realloc failed: its old block is live still, as it was. */
static __always_inline void realloc_restore(struct mt_kproc *p, u32 tgid,
					    struct mt_inflight *in)
{
	struct taken t = {
		.weight = in->old_weight, .stack = in->old_stack,
		.gen = in->old_gen, .cnt = in->old_cnt,
	};
	struct mt_block b = {
		.size = t.cnt ? t.weight / t.cnt : t.weight,
		.weight = t.weight, .stack = t.stack, .gen = t.gen,
	};

	if (block_insert(p, tgid, in->arg, &b, t.cnt)) {
		/* no room to put it back: it stays counted as freed */
		count(MT_CNT_BLOCKS_FULL);
		__sync_fetch_and_add(&p->lost, 1);
		return;
	}
	block_account(p, tgid, &t, true);
}

/*
 * Walk the user stack (frame pointers), hash it (FNV-1a over the frames)
 * and store it once per process.  Returns the hash, 0 on failure.
 */
struct walk_ctx {
	struct mt_walk *w;
	u64 fp, ip, base, valid, h;
	u32 n;			/* frames stored so far */
};

/*
 * One frame of the walk, run by bpf_loop() so the verifier checks it
 * once rather than once per frame and per path.  Each user read costs
 * far more than copying a few hundred bytes, and the frames of nested
 * calls sit close together, so a window of the stack is read at once
 * and the frames inside it are walked; a new read happens only when the
 * next frame lies outside.
 */
static long walk_frame(u32 i, void *vctx)
{
	struct walk_ctx *c = vctx;
	struct mt_walk *w = c->w;
	u64 off, next, idx = c->n;

	if (!w || idx >= MT_MAX_STACK || !c->ip)
		return 1;
	/* keep the mask: clang would drop it, the verifier needs it */
	barrier_var(idx);
	w->st.ips[idx & (MT_MAX_STACK - 1)] = c->ip;
	c->h ^= c->ip;
	c->h *= 0x100000001b3ULL;
	c->n = idx + 1;
	c->ip = 0;
	if (!c->fp || (c->fp & 7))
		return 1;
	off = c->fp - c->base;
	if (c->fp < c->base || off + 16 > c->valid) {
		c->base = c->fp;
		off = 0;
		c->valid = MT_WINDOW;
		/* near the top of the stack a whole window may fault */
		if (bpf_probe_read_user(w->win, MT_WINDOW, (void *)c->fp)) {
			c->valid = 16;
			if (bpf_probe_read_user(w->win, 16, (void *)c->fp))
				return 1;
		}
	}
	off &= MT_WINDOW - 1;
	c->ip = *(u64 *)(w->win + off + 8);
	next = *(u64 *)(w->win + off);
	/* the stack grows down: a caller's frame is always higher */
	c->fp = next > c->fp ? next : 0;
	return 0;
}

/*
 * Walk the user stack (frame pointers) into this thread's scratch buffer
 * and hash it (FNV-1a over the frames).  Returns the hash, 0 on failure.
 * The frames are stored (stack_store) only when the hash makes a new
 * site: a known site already has them, and skipping that lookup is one
 * hash-map walk less per allocation.
 */
/*
 * The frame layout at the return address c->ip, if it is a known
 * frameless call site; the answer is cached per thread, so a loop that
 * allocates from one place reads the code around it once.
 */
static __always_inline struct mt_fix_slot *fix_find(struct walk_ctx *c,
						    struct mt_inflight *in,
						    u32 tag)
{
	struct mt_fix_slot *fs;
	struct mt_fix_key key;
	struct mt_fix *f;
	u32 i;

	/*
	 * Searched in full, not indexed by address: a loop allocating from
	 * a handful of places must never have two of them evict each other.
	 */
	for (i = 0; i < MT_FIX_CACHE; i++) {
		fs = &in->fix[i];
		if (fs->ip == c->ip && fs->tag == tag)
			return fs->ra_off < 0 ? NULL : fs;
	}
	fs = &in->fix[in->fix_next++ & (MT_FIX_CACHE - 1)];
	fs->ip = c->ip;
	fs->tag = tag;
	fs->ra_off = -1;
	fs->fp_off = -1;
	if (bpf_probe_read_user(&key, sizeof(key),
				(void *)(c->ip - MT_FIX_SIG / 2)))
		return NULL;
	f = bpf_map_lookup_elem(&fixups, &key);
	if (!f || f->ra_off < 0 || f->ra_off > MT_FIX_MAX_OFF ||
	    f->fp_off > MT_FIX_MAX_OFF)
		return NULL;
	fs->ra_off = f->ra_off;
	fs->fp_off = f->fp_off;
	return fs;
}

/*
 * Frame 0 is in a function without a frame pointer: its caller's return
 * address (and frame pointer, if it saved rbp) sit at known offsets
 * above the stack pointer.  Store frame 0, then go on from the caller.
 */
static __always_inline void fix_frame0(struct walk_ctx *c,
				       struct mt_inflight *in, u32 tag)
{
	struct mt_fix_slot *fs;
	u64 sp, ra, fp;
	u32 off;

	if (!fix_epoch || !in->sp)
		return;
	fs = fix_find(c, in, tag);
	if (!fs)
		return;
	/* the stack pointer after the return: the entry's, less the ret */
	sp = in->sp + 8;
	if (bpf_probe_read_user(c->w->win, MT_WINDOW, (void *)sp))
		return;
	off = fs->ra_off;
	ra = *(u64 *)(c->w->win + (off & (MT_WINDOW - 1)));
	fp = c->fp;
	if (fs->fp_off >= 0) {
		off = fs->fp_off;
		fp = *(u64 *)(c->w->win + (off & (MT_WINDOW - 1)));
	}
	c->base = sp;
	c->valid = MT_WINDOW;
	c->w->st.ips[0] = c->ip;
	c->h ^= c->ip;
	c->h *= 0x100000001b3ULL;
	c->n = 1;
	c->ip = ra;
	c->fp = fp;
}

/* ---- unwinding by CFI ------------------------------------------------- */

/*
 * For code without frame pointers (most of a distribution's binaries)
 * the walk follows the rules user space compiled from each file's
 * .eh_frame (see struct mt_cfi_row); code that keeps frame pointers, and
 * code whose CFI is not known, is walked by frame pointer as before.
 */
const volatile bool cfi_on = false;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 21);	/* resized by the loader */
	__type(key, u32);
	__type(value, struct mt_cfi_row);
} cfi_rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct mt_cfi_key);
	__type(value, struct mt_cfi_file);
} cfi_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct mt_cfi_proc);
} cfi_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MT_UW_MAX);
	__type(key, u32);
	__type(value, u64);
} uw_stats SEC(".maps");

const struct mt_cfi_proc zero_cfi_proc = {};

static __always_inline void uw_add(u32 idx, u64 v)
{
	u64 *p = bpf_map_lookup_elem(&uw_stats, &idx);

	if (p && v)
		*p += v;	/* this CPU's own slot: no atomics */
}

/* The kernel's device number of the file, as user space encodes it too. */
static __always_inline void cfi_key_of(struct file *f, struct mt_cfi_key *k)
{
	k->ino = BPF_CORE_READ(f, f_inode, i_ino);
	k->dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	k->pad = 0;
}

/*
 * tgid mapped code from file f at [start, end): enter it in the
 * process's table, replacing what was mapped there before.
 */
static __always_inline void cfi_map_add(u32 tgid, u64 start, u64 end,
					u64 pgoff, struct file *f)
{
	struct mt_cfi_proc *cp;
	struct mt_cfi_map *m;
	u32 i, n;

	if (!cfi_on || !f)
		return;
	cp = bpf_map_lookup_elem(&cfi_procs, &tgid);
	if (!cp) {
		bpf_map_update_elem(&cfi_procs, &tgid, &zero_cfi_proc,
				    BPF_NOEXIST);
		cp = bpf_map_lookup_elem(&cfi_procs, &tgid);
		if (!cp) {
			uw_add(MT_UW_MAPS_FULL, 1);
			return;
		}
	}
	n = cp->n;
	for (i = 0; i < MT_CFI_MAPS; i++) {
		if (i >= n)
			break;
		m = &cp->m[i];
		if (m->start < end && start < m->end)
			break;
	}
	if (i >= MT_CFI_MAPS) {
		uw_add(MT_UW_MAPS_FULL, 1);
		return;
	}
	m = &cp->m[i];
	m->start = start;
	m->end = end;
	m->pgoff = pgoff;
	cfi_key_of(f, &m->key);
	if (i >= n)
		cp->n = i + 1;
}

struct cfi_ctx {
	struct mt_walk *w;
	struct cfi_state *s;
	struct mt_cfi_proc *cp;
};

/* 8 bytes of user stack at addr, through the window. */
static __always_inline int cfi_read(struct cfi_ctx *c, u64 addr, u64 *out)
{
	struct cfi_state *s = c->s;
	u64 off = addr - s->base;

	if (addr < s->base || off + 8 > s->valid) {
		s->base = addr;
		off = 0;
		s->valid = MT_WINDOW;
		if (bpf_probe_read_user(c->w->win, MT_WINDOW, (void *)addr)) {
			s->valid = 8;
			if (bpf_probe_read_user(c->w->win, 8, (void *)addr)) {
				s->valid = 0;
				return -1;
			}
		}
	}
	off &= MT_WINDOW - 1;
	*out = *(u64 *)(c->w->win + off);
	return 0;
}

/* bpf_loop() steps of the lookups below: checked once, not unrolled. */
static long map_step(u32 i, void *vctx)
{
	struct cfi_ctx *c = vctx;
	struct cfi_state *s = c->s;
	struct mt_cfi_map *m;

	if (i >= s->mn || i >= MT_CFI_MAPS || !c->cp)
		return 1;
	m = &c->cp->m[i];
	if (s->pc >= m->start && s->pc < m->end) {
		s->mfound = i + 1;
		return 1;
	}
	return 0;
}

/* the last row at or below va: rows are sorted by pc */
static long row_step(u32 i, void *vctx)
{
	struct cfi_ctx *c = vctx;
	struct cfi_state *s = c->s;
	struct mt_cfi_row *r;
	u32 mid;

	if (s->lo + 1 >= s->hi)
		return 1;
	mid = s->lo + (s->hi - s->lo) / 2;
	r = bpf_map_lookup_elem(&cfi_rows, &mid);
	if (!r) {
		s->hi = s->lo;	/* not found */
		return 1;
	}
	if (r->pc <= s->va)
		s->lo = mid;
	else
		s->hi = mid;
	return 0;
}

static __always_inline u32 pcc_slot(u64 pc)
{
	return (pc ^ (pc >> 7) ^ (pc >> 15)) & (MT_PCC - 1);
}

/* pc's entry, if still true of the process's table. */
static __always_inline struct mt_pcc *pcc_get(struct cfi_ctx *c,
					      struct mt_cfi_proc *cp, u64 pc)
{
	struct mt_pcc *e = &c->w->pcc[pcc_slot(pc)];
	struct mt_cfi_map *m;
	u32 mi = e->map;

	if (e->pc != pc || !e->kind || mi >= MT_CFI_MAPS || mi >= cp->n)
		return NULL;
	m = &cp->m[mi];
	if (pc < m->start || pc >= m->end || m->key.ino != e->ino ||
	    m->key.dev != e->dev)
		return NULL;
	return e;
}

static __always_inline void pcc_put(struct cfi_ctx *c, u64 pc,
				    const struct mt_cfi_map *m, u32 mi,
				    u16 kind, u32 row)
{
	struct mt_pcc *e = &c->w->pcc[pcc_slot(pc)];

	e->pc = pc;
	e->ino = m->key.ino;
	e->dev = m->key.dev;
	e->map = mi;
	e->kind = kind;
	e->row = row;
}

/* The rule for pc: NULL when none (no mapping, no file, a gap). */
static __always_inline struct mt_cfi_row *cfi_find(struct cfi_ctx *c, u64 pc)
{
	struct mt_cfi_proc *cp = c->cp;
	struct cfi_state *s = c->s;
	struct mt_pcc *e;
	struct mt_cfi_file *fi;
	struct mt_cfi_map *m = NULL;
	struct mt_cfi_row *r;
	u32 i;
	u64 va;

	if (!cp)
		return NULL;
	e = pcc_get(c, cp, pc);
	if (e) {
		if (e->kind == MT_PCC_FP) {
			/* as a lookup would leave it: this file, by FP */
			s->map = e->map + 1;
			s->flags = MT_CFI_FP;
			return NULL;
		}
		i = e->row;
		r = bpf_map_lookup_elem(&cfi_rows, &i);
		if (r) {
			/* the next pc looks its file up again */
			s->map = 0;
			return r;
		}
	}
	i = s->map - 1;
	if (s->map && i < MT_CFI_MAPS) {
		m = &cp->m[i];
		if (pc < m->start || pc >= m->end)
			m = NULL;
	}
	if (!m) {
		s->pc = pc;
		s->mn = cp->n;
		s->mfound = 0;
		bpf_loop(MT_CFI_MAPS, map_step, c, 0);
		i = s->mfound - 1;
		if (!s->mfound || i >= MT_CFI_MAPS) {
			s->map = 0;
			return NULL;
		}
		m = &cp->m[i];
		fi = bpf_map_lookup_elem(&cfi_files, &m->key);
		if (!fi) {
			s->map = 0;
			s->pending++;
			return NULL;
		}
		s->map = i + 1;
		s->first = fi->first;
		s->nrows = fi->nrows;
		s->flags = fi->flags;
		s->delta = fi->delta;
	}
	if (s->flags & MT_CFI_FP) {
		pcc_put(c, pc, m, s->map - 1, MT_PCC_FP, 0);
		return NULL;
	}
	/* a library's whole span, mapped from offset 0: vaddr as is */
	if (m->pgoff & MT_CFI_SPAN)
		va = pc - m->start + (m->pgoff & ~MT_CFI_SPAN);
	else
		va = pc - m->start + m->pgoff + s->delta;
	if (va >> 32 || !s->nrows)
		return NULL;
	s->lo = s->first;
	s->hi = s->first + s->nrows;
	s->va = va;
	bpf_loop(32, row_step, c, 0);
	if (s->hi <= s->lo)
		return NULL;
	i = s->lo;
	r = bpf_map_lookup_elem(&cfi_rows, &i);
	if (!r || r->pc > (u32)va)
		return NULL;
	pcc_put(c, pc, m, s->map - 1, MT_PCC_ROW, i);
	return r;
}

/*
 * One frame: store it, then find the caller's registers by the CFI rule
 * at pc, or by frame pointer where the code keeps one or none is known.
 * Run by bpf_loop(), so the verifier checks it once.
 */
static long cfi_frame(u32 i, void *vctx)
{
	struct cfi_ctx *c = vctx;
	struct cfi_state *s = c->s;
	struct mt_walk *w = c->w;
	u64 idx = s->n, pc, cfa, ra = 0, bp, sp;
	struct mt_cfi_row *r;
	u8 type;
	s8 k;

	if (!w || !s || idx >= MT_MAX_STACK || !s->ip)
		return 1;
	barrier_var(idx);
	w->st.ips[idx & (MT_MAX_STACK - 1)] = s->ip;
	s->h ^= s->ip;
	s->h *= 0x100000001b3ULL;
	s->n = idx + 1;
	/* a return address points after the call: look up the call itself */
	pc = s->exact ? s->ip : s->ip - 1;
	s->exact = 0;
	s->ip = 0;
	r = cfi_find(c, pc);
	type = r ? r->type : MT_CFI_NONE;
	if (type == MT_CFI_END)
		return 1;
	if (type == MT_CFI_RSP || type == MT_CFI_RBP) {
		cfa = (type == MT_CFI_RSP ? s->sp : s->bp) +
		      ((u64)r->cfa_off << 3);
		k = r->rbp_off;
		bp = s->bp;
		if (k && cfi_read(c, cfa + (s64)k * 8, &bp))
			return 1;
		if (cfi_read(c, cfa - 8, &ra) || cfa <= s->sp)
			return 1;
		s->cfi++;
		s->ip = ra;
		s->sp = cfa;
		s->bp = bp;
		return 0;
	}
	if (type == MT_CFI_SIGNAL) {
		/*
		 * The kernel's signal frame: at the trampoline the stack
		 * holds a ucontext, its saved registers 40 bytes in
		 * (r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip);
		 * the interrupted pc is exact, not a return address.
		 */
		sp = s->sp;
		if (cfi_read(c, sp + 40 + 10 * 8, &bp) ||
		    cfi_read(c, sp + 40 + 16 * 8, &ra) ||
		    cfi_read(c, sp + 40 + 15 * 8, &cfa))
			return 1;
		s->signal++;
		s->ip = ra;
		s->sp = cfa;
		s->bp = bp;
		s->exact = 1;
		return 0;
	}
	/* frame pointers: [bp] = caller's bp, [bp + 8] = return address */
	if (!r && s->map && (s->flags & MT_CFI_FP))
		s->fp++;
	else
		s->unknown++;
	bp = s->bp;
	if (!bp || (bp & 7) || bp < s->sp || cfi_read(c, bp + 8, &ra) ||
	    cfi_read(c, bp, &s->bp))
		return 1;
	s->ip = ra;
	s->sp = bp + 16;
	/* the stack grows down: a caller's frame is always higher */
	if (s->bp <= bp)
		s->bp = 0;
	return 0;
}

static __always_inline u64 cfi_capture(struct pt_regs *ctx,
				       struct mt_inflight *in)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct cfi_ctx c = {};
	struct cfi_state *s;
	int i;

	c.w = bpf_task_storage_get(&stack_buf, bpf_get_current_task_btf(),
				   NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c.w)
		return 0;
	s = c.s = &c.w->cfi;
	__builtin_memset(s, 0, sizeof(*s));
	c.cp = bpf_map_lookup_elem(&cfi_procs, &tgid);
	s->h = 0xcbf29ce484222325ULL;
	/*
	 * At the allocator's return (or a page fault): the code's own
	 * registers, its pc exact.
	 */
	s->ip = PT_REGS_IP(ctx);
	s->sp = in && in->sp ? in->sp + 8 : PT_REGS_SP(ctx);
	s->bp = PT_REGS_FP(ctx);
	s->exact = 1;
	bpf_loop(MT_MAX_STACK, cfi_frame, &c, 0);
	uw_add(MT_UW_STACKS, 1);
	uw_add(MT_UW_FRAMES, s->n);
	uw_add(MT_UW_CFI, s->cfi);
	uw_add(MT_UW_FP, s->fp);
	uw_add(MT_UW_UNKNOWN, s->unknown);
	uw_add(MT_UW_PENDING, s->pending);
	uw_add(MT_UW_SIGNAL, s->signal);
	if (s->n >= MT_MAX_STACK && s->ip)
		uw_add(MT_UW_TRUNCATED, 1);
	if (!s->n)
		return 0;
	for (i = 0; i < MT_MAX_STACK; i++)
		if (i >= s->n)
			c.w->st.ips[i] = 0;
	return s->h | 1;
}

static __always_inline u64 stack_capture(struct pt_regs *ctx,
					 struct mt_inflight *in, u32 tag)
{
	struct walk_ctx c = {};
	int i;

	if (cfi_on)
		return cfi_capture(ctx, in);
	c.w = bpf_task_storage_get(&stack_buf, bpf_get_current_task_btf(),
				   NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c.w)
		return 0;
	c.h = 0xcbf29ce484222325ULL;
	c.ip = PT_REGS_IP(ctx);
	c.fp = PT_REGS_FP(ctx);
	if (in)
		fix_frame0(&c, in, tag);
	bpf_loop(MT_MAX_STACK, walk_frame, &c, 0);
	if (!c.n)
		return 0;
	/* the stored value must not carry frames of an earlier walk */
	for (i = 0; i < MT_MAX_STACK; i++)
		if (i >= c.n)
			c.w->st.ips[i] = 0;
	return c.h | 1;	/* never 0, which means "no stack" */
}

/* The frames of this thread's last stack_capture(), under hash. */
static __always_inline bool stack_store(const struct mt_site_key *sk)
{
	struct mt_stack_key key = {
		.tgid = sk->tgid, .gen = sk->gen, .hash = sk->stack,
	};
	struct mt_walk *w;

	w = bpf_task_storage_get(&stack_buf, bpf_get_current_task_btf(),
				 NULL, 0);
	if (!w)
		return false;
	/* EEXIST: another CPU stored it first */
	return bpf_map_update_elem(&stacks, &key, &w->st, BPF_NOEXIST) != -E2BIG;
}

/*
 * The site of a new block, created on first sight.  A stack whose frames
 * cannot be stored (stacks map full) is counted under "no stack" rather
 * than as a site nobody can name.  NULL: the sites map is full.
 */
static __always_inline struct mt_ksite *site_get(struct mt_kproc *p,
						 struct mt_site_key *sk)
{
	struct mt_ksite *s;

	s = bpf_map_lookup_elem(&sites, sk);
	if (s)
		return s;
	if (sk->stack && !stack_store(sk)) {
		count(MT_CNT_STACK_ERR);
		__sync_fetch_and_add(&p->lost_sites, 1);
		sk->stack = 0;
		s = bpf_map_lookup_elem(&sites, sk);
		if (s)
			return s;
	}
	if (bpf_map_update_elem(&sites, sk, &zero_site, BPF_NOEXIST) == -E2BIG) {
		count(MT_CNT_SITES_FULL);
		__sync_fetch_and_add(&p->lost_sites, 1);
	}
	return bpf_map_lookup_elem(&sites, sk);
}

static __always_inline void block_alloc(struct pt_regs *ctx, struct mt_kproc *p,
					struct mt_inflight *in, u64 id, u64 addr,
					u64 size, u64 weight)
{
	struct mt_site_key sk = { .tgid = id >> 32 };
	struct mt_block b = {};
	struct mt_ksite *s;
	u64 cnt;
	u32 i;

	if (weight == W_UNDECIDED)
		weight = sample_weight(in, size);
	if (weight == W_SKIP)
		return;
	if (want_stacks) {
		sk.stack = stack_capture(ctx, in,
					 (u32)p->gen + fix_epoch * 0x9e3779b9);
		if (!sk.stack) {
			count(MT_CNT_STACK_ERR);
			__sync_fetch_and_add(&p->lost_sites, 1);
		}
	}
	sk.gen = p->gen;
	s = site_get(p, &sk);
	b.size = size;
	b.weight = weight;
	b.gen = sk.gen;
	b.stack = sk.stack;
	cnt = obj_weight(size, weight);
	if (block_insert(p, sk.tgid, addr, &b,
			 cnt > 0xffffffff ? 0xffffffff : cnt)) {
		count(MT_CNT_BLOCKS_FULL);
		__sync_fetch_and_add(&p->lost, 1);
		return;
	}
	i = slot();
	__sync_fetch_and_add(&p->c[i].alloc_bytes, weight);
	__sync_fetch_and_add(&p->c[i].allocs, cnt);
	if (s) {
		__sync_fetch_and_add(&s->c[i].alloc_bytes, weight);
		__sync_fetch_and_add(&s->c[i].allocs, cnt);
	}
}

static __always_inline int alloc_return(struct pt_regs *ctx, u64 ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u64 newp = 0;
	struct mt_inflight *in;
	struct mt_kproc *p;
	u32 tgid = id >> 32;
	int rc;

	in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), NULL, 0);
	if (!in || !in->depth)
		return 0;
	if (in->depth > 1) {
		in->depth--;
		return 0;
	}
	p = proc_get(tgid);
	if (!p)
		goto out;
	switch (in->fn) {
	case MT_FN_POSIX_MEMALIGN:
		rc = (int)ret;
		if (rc == 0 && !bpf_probe_read_user(&newp, sizeof(newp),
						    (void *)in->arg))
			block_alloc(ctx, p, in, id, newp, in->size,
				    in->weight);
		break;
	case MT_FN_REALLOC:
	case MT_FN_REALLOCARRAY:
		/*
		 * realloc frees the old block when it returns a new one, and
		 * when it is asked for 0 bytes (glibc returns NULL then): its
		 * entry took it already.  On failure (NULL for a non-zero
		 * size) the old block stays: put back.
		 */
		if (ret || in->size == 0) {
			if (in->old_state == MT_OLD_MISSING)
				unmatched_free(p);
		} else if (in->old_state == MT_OLD_TAKEN) {
			realloc_restore(p, tgid, in);
		}
		in->old_state = MT_OLD_NONE;
		if (ret)
			block_alloc(ctx, p, in, id, ret, in->size, in->weight);
		break;
	default:
		if (ret)
			block_alloc(ctx, p, in, id, ret, in->size, in->weight);
		break;
	}
out:
	in->depth = 0;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(alloc_exit, void *retp)
{
	return alloc_return(ctx, (u64)retp);
}

/*
 * n * size, or ~0 when it overflows: the call then fails, and the size
 * must not read as 0, which would make reallocarray look like a free.
 * (BPF has no 128-bit multiply.)
 */
static __always_inline u64 mul_or_max(u64 n, u64 size)
{
	u64 limit = ~0ULL;

	/* hide the pattern from clang, which would turn it into __multi3 */
	barrier_var(limit);
	if (n && size > limit / n)
		return ~0ULL;
	return n * size;
}

/* Arguments by allocator function, for both probe flavours. */
static __always_inline int enter_fn(struct pt_regs *ctx, u32 fn, bool session)
{
	u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx);
	u64 a3 = PT_REGS_PARM3(ctx);

	if (asleep())
		return 1;

	switch (fn) {
	case MT_FN_MALLOC:
	case MT_FN_VALLOC:
	case MT_FN_PVALLOC:
		/* valloc, pvalloc: the requested size, not the rounded one */
		return alloc_enter(ctx, fn, a1, 0, session);
	case MT_FN_CALLOC:
		return alloc_enter(ctx, fn, mul_or_max(a1, a2), 0, session);
	case MT_FN_REALLOC:
		return alloc_enter(ctx, fn, a2, a1, session);
	case MT_FN_REALLOCARRAY:
		return alloc_enter(ctx, MT_FN_REALLOC, mul_or_max(a2, a3), a1,
				   session);
	case MT_FN_POSIX_MEMALIGN:
		return alloc_enter(ctx, fn, a3, a1, session);
	case MT_FN_ALIGNED_ALLOC:
	case MT_FN_MEMALIGN:
		/* memalign and aligned_alloc take (alignment, size) */
		return alloc_enter(ctx, fn, a2, 0, session);
	}
	return 1;
}

SEC("uprobe")
int malloc_enter(struct pt_regs *ctx)
{
	return enter_fn(ctx, MT_FN_MALLOC, false);
}

SEC("uprobe")
int calloc_enter(struct pt_regs *ctx)
{
	return enter_fn(ctx, MT_FN_CALLOC, false);
}

SEC("uprobe")
int realloc_enter(struct pt_regs *ctx)
{
	return enter_fn(ctx, MT_FN_REALLOC, false);
}

SEC("uprobe")
int reallocarray_enter(struct pt_regs *ctx)
{
	return enter_fn(ctx, MT_FN_REALLOCARRAY, false);
}

SEC("uprobe")
int posix_memalign_enter(struct pt_regs *ctx)
{
	return enter_fn(ctx, MT_FN_POSIX_MEMALIGN, false);
}

SEC("uprobe")
int memalign_enter(struct pt_regs *ctx)
{
	return enter_fn(ctx, MT_FN_MEMALIGN, false);
}

SEC("uprobe")
int valloc_enter(struct pt_regs *ctx)
{
	return enter_fn(ctx, MT_FN_VALLOC, false);
}

/*
 * Session probes (uprobe_multi, BPF_TRACE_UPROBE_SESSION): one program
 * for entry and return; the entry returns non-zero to skip the return
 * probe for calls that need none (untraced process, nested call,
 * unsampled allocation).  The function comes from the attach cookie.
 * Loaded only when the kernel has them (the loader checks first).
 */
extern bool bpf_session_is_return(void) __ksym __weak;

SEC("kprobe")
int alloc_session(struct pt_regs *ctx)
{
	if (bpf_session_is_return())
		return alloc_return(ctx, PT_REGS_RC(ctx));
	return enter_fn(ctx, bpf_get_attach_cookie(ctx), true);
}

SEC("kprobe")
int floor_session(struct pt_regs *ctx)
{
	return 0;
}

/*
 * Was free() called from an allocator's own code (mt_alloc_text)?  Read
 * only for frees that found nothing: the return address is at the stack
 * pointer, which the probe site keeps as at entry.
 */
static __always_inline bool allocator_caller(struct pt_regs *ctx, u32 tgid)
{
	struct mt_alloc_text *t = bpf_map_lookup_elem(&alloc_text, &tgid);
	u64 ra;
	int i;

	if (!t || bpf_probe_read_user(&ra, sizeof(ra), (void *)PT_REGS_SP(ctx)))
		return false;
	for (i = 0; i < MT_ALLOC_TEXTS; i++)
		if (ra >= t->lo[i] && ra < t->hi[i])
			return true;
	return false;
}

SEC("uprobe")
int BPF_KPROBE(free_enter, u64 addr)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32;
	struct mt_inflight *in;
	struct mt_kproc *p;
	bool repeat = false;

	if (!addr || asleep())
		return 0;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return 0;
	/*
	 * A free inside realloc (realloc(p, 0) calls free) is accounted by
	 * realloc, which took the old block at its entry; here it would
	 * only be counted twice as unmatched.
	 */
	in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), NULL,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	/*
	 * Only a free deeper on the stack than the call in flight is inside
	 * it.  One from higher up means that call is over without its
	 * return probe (the thread left it by longjmp): forget it, or
	 * every free until the thread's next allocation would be ignored.
	 */
	if (in && in->depth) {
		if (PT_REGS_SP(ctx) <= in->sp)
			return 0;
		in->depth = 0;
	}
	/*
	 * The thread's last free again, of a block no longer in the tables,
	 * is a free() wrapper (a preloaded hook's) passing the call on to
	 * the C library's, both probed: one free, not a second, unmatched
	 * one.  A block that is live again (another thread was given the
	 * address since) is freed as usual.
	 */
	if (in) {
		repeat = in->last_free == addr;
		in->last_free = addr;
	}
	if (!block_free(p, tgid, addr) && !repeat &&
	    !allocator_caller(ctx, tgid))
		unmatched_free(p);
	return 0;
}

/* ---- process lifecycle ------------------------------------------------ */

/*
 * Records are as long as their type needs (an EXIT record carries the
 * whole per-process entry, an mmap record a few words), so the frequent
 * ones stay small.
 */
#define MT_EV_SIZE(member) \
	(__builtin_offsetof(struct mt_event, member) + \
	 sizeof(((struct mt_event *)0)->member))

static __always_inline struct mt_event *event_new(u32 type, u32 tgid,
						  struct mt_kproc *p, u32 size)
{
	struct mt_event *e;

	e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e) {
		count(MT_CNT_RB_DROPS);
		if (p)
			__sync_fetch_and_add(&p->lost_events, 1);
		return NULL;
	}
	e->type = type;
	e->tgid = tgid;
	e->pid = (u32)bpf_get_current_pid_tgid();
	e->ppid = 0;
	e->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

/*
 * Scratch for a MAPFILE path walk (too big for the BPF stack), per
 * thread like the stack walk's: a preempted walk must not find another
 * thread's path in its buffer.
 */
struct mt_pathbuf {
	char comp[MT_MAPFILE_COMPS][MT_MAPFILE_COMP_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mt_pathbuf);
} path_buf SEC(".maps");

struct path_ctx {
	struct mt_pathbuf *buf;
	struct dentry *d;
	struct vfsmount *vmnt;
	struct mount *m;
	u32 n;
	u32 done;		/* reached the root */
};

/*
 * One step up, as d_path() goes: to the parent dentry, or at the root of
 * a mount to where that mount sits.  Run by bpf_loop() so the verifier
 * checks one step rather than every path through all of them.
 */
static long path_step(u32 i, void *vctx)
{
	struct path_ctx *c = vctx;
	/* locals: CO-RE relocations apply to kernel types only */
	struct vfsmount *vmnt = c->vmnt;
	struct dentry *d = c->d, *parent;
	struct mount *m = c->m, *mparent;
	const unsigned char *name;
	u32 n = c->n;

	if (!c->buf)
		return 1;
	if (d == BPF_CORE_READ(vmnt, mnt_root)) {
		mparent = BPF_CORE_READ(m, mnt_parent);
		if (mparent == m) {
			c->done = 1;
			return 1;
		}
		c->d = BPF_CORE_READ(m, mnt_mountpoint);
		c->m = mparent;
		c->vmnt = &mparent->mnt;
		return 0;
	}
	parent = BPF_CORE_READ(d, d_parent);
	if (parent == d) {
		c->done = 1;
		return 1;
	}
	if (n >= MT_MAPFILE_COMPS)
		return 1;
	name = BPF_CORE_READ(d, d_name.name);
	bpf_probe_read_kernel_str(c->buf->comp[n & (MT_MAPFILE_COMPS - 1)],
				  MT_MAPFILE_COMP_LEN, name);
	c->n = n + 1;
	c->d = parent;
	return 0;
}

/*
 * The file behind fd of the current process, mapped at [start, start +
 * len) from offset pgoff, with its path (no bpf_d_path() for tracepoints).
 */
static __always_inline void mapfile_event(u32 tgid, struct mt_kproc *p,
					  u64 start, u64 len, u64 pgoff,
					  struct file *f)
{
	struct path_ctx c = {};
	struct mt_event *e;

	if (!f)
		return;
	c.buf = bpf_task_storage_get(&path_buf, bpf_get_current_task_btf(),
				     NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c.buf)
		return;
	c.d = BPF_CORE_READ(f, f_path.dentry);
	c.vmnt = BPF_CORE_READ(f, f_path.mnt);
	c.m = container_of(c.vmnt, struct mount, mnt);
	/* components plus mount crossings */
	bpf_loop(2 * MT_MAPFILE_COMPS, path_step, &c, 0);
	e = event_new(MT_EV_MAPFILE, tgid, p, MT_EV_SIZE(mapfile));
	if (!e)
		return;
	e->mapfile.start = start;
	e->mapfile.len = len;
	e->mapfile.pgoff = pgoff;
	e->mapfile.ino = BPF_CORE_READ(f, f_inode, i_ino);
	e->mapfile.ncomp = c.n;
	e->mapfile.truncated = !c.done;
	__builtin_memcpy(e->mapfile.comp, c.buf->comp, sizeof(e->mapfile.comp));
	bpf_ringbuf_submit(e, 0);
}

/* The file behind descriptor fd of the current process. */
/*
 * Code of an allocator library mapped by tgid: note where it is, at once,
 * for allocator_caller(); a thread may exit (and glibc empty its cache
 * through free()) before the loader could read /proc/PID/maps.
 */
static __always_inline void alloc_text_add(u32 tgid, struct file *f,
					   u64 start, u64 len)
{
	u64 ino = BPF_CORE_READ(f, f_inode, i_ino);
	struct mt_alloc_text *t, zero = {};
	int i;

	if (!bpf_map_lookup_elem(&alloc_inodes, &ino))
		return;
	t = bpf_map_lookup_elem(&alloc_text, &tgid);
	if (!t) {
		bpf_map_update_elem(&alloc_text, &tgid, &zero, BPF_NOEXIST);
		t = bpf_map_lookup_elem(&alloc_text, &tgid);
		if (!t)
			return;
	}
	for (i = 0; i < MT_ALLOC_TEXTS; i++) {
		if (t->hi[i] && t->lo[i] != start)
			continue;
		t->lo[i] = start;
		t->hi[i] = start + len;
		return;
	}
}

static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct file **fds, *f = NULL;

	if (fd < 0 || fd >= BPF_CORE_READ(t, files, fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(t, files, fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

struct vma_info {
	u64 start, end, pgoff;
	struct file *file;
};

static long vma_cb(struct task_struct *task, struct vm_area_struct *vma,
		   struct vma_info *vi)
{
	vi->start = vma->vm_start;
	vi->end = vma->vm_end;
	vi->pgoff = vma->vm_pgoff << 12;
	vi->file = vma->vm_file;
	return 0;
}

/*
 * The new executable's code, mapped by exec itself (no mmap record): the
 * mapping that holds mm->start_code.
 */
static __always_inline void exe_mapfile(u32 tgid, struct mt_kproc *p)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct vma_info vi = {};
	u64 code = BPF_CORE_READ(t, mm, start_code);

	if (!code || bpf_find_vma(t, code, vma_cb, &vi, 0) || !vi.file)
		return;
	cfi_map_add(tgid, vi.start, vi.end, vi.pgoff, vi.file);
	mapfile_event(tgid, p, vi.start, vi.end - vi.start, vi.pgoff, vi.file);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct mt_kproc *p = bpf_map_lookup_elem(&procs, &tgid);
	struct mt_event *e;
	const char *fn;
	u64 old_gen;

	if (!p && (!trace_all || tgid == self_tgid))
		return 0;
	old_gen = p ? p->gen : 0;
	/* the old image's allocators are unmapped, and all its code */
	bpf_map_delete_elem(&alloc_text, &tgid);
	bpf_map_delete_elem(&cfi_procs, &tgid);
	/*
	 * The old image's heap is gone: start a new generation so its
	 * blocks and sites are recognised as stale.
	 */
	p = proc_new(tgid, BPF_ANY);
	if (!p)
		count(MT_CNT_PROCS_FULL);
	e = event_new(MT_EV_EXEC, tgid, p, MT_EV_SIZE(exec));
	if (!e)
		return 0;
	e->exec.old_gen = old_gen;
	e->exec.new_gen = p ? p->gen : 0;
	fn = BPF_CORE_READ(bprm, filename);
	bpf_probe_read_kernel_str(e->exec.filename, sizeof(e->exec.filename),
				  fn);
	bpf_ringbuf_submit(e, 0);
	exe_mapfile(tgid, p);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	u32 ptgid = BPF_CORE_READ(parent, tgid);
	u32 ctgid = BPF_CORE_READ(child, tgid);
	struct mt_alloc_text *t;
	struct mt_cfi_proc *cp;
	struct mt_kproc *p, *c;
	struct mt_event *e;

	if (ptgid == ctgid)
		return 0;	/* a new thread, not a new process */
	p = bpf_map_lookup_elem(&procs, &ptgid);
	if (!p)
		return 0;
	/*
	 * A child of a traced process is traced from its first
	 * allocation: it inherits the probes' breakpoints with its copy of
	 * the parent's memory, and its counters start empty.
	 */
	c = proc_new(ctgid, BPF_ANY);
	if (!c)
		count(MT_CNT_PROCS_FULL);
	/* and a copy of its mappings: its allocators are where they were */
	t = bpf_map_lookup_elem(&alloc_text, &ptgid);
	if (t)
		bpf_map_update_elem(&alloc_text, &ctgid, t, BPF_ANY);
	cp = bpf_map_lookup_elem(&cfi_procs, &ptgid);
	if (cp && bpf_map_update_elem(&cfi_procs, &ctgid, cp, BPF_ANY))
		uw_add(MT_UW_MAPS_FULL, 1);
	e = event_new(MT_EV_FORK, ctgid, p, MT_EV_SIZE(fork));
	if (!e)
		return 0;
	e->pid = ctgid;
	e->ppid = ptgid;
	/* which process this is: the pid alone may be a reused one */
	e->fork.gen = c ? c->gen : 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task, bool group_dead)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = BPF_CORE_READ(task, tgid);
	struct mt_kproc *p;
	struct mt_event *e;

	/* per-thread state dies with the thread (task storage by itself) */
	if (!group_dead)
		return 0;
	bpf_map_delete_elem(&alloc_text, &tgid);
	bpf_map_delete_elem(&cfi_procs, &tgid);
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return 0;
	e = event_new(MT_EV_EXIT, tgid, p, MT_EV_SIZE(exit));
	if (e) {
		__builtin_memcpy(&e->exit.stats, p, sizeof(e->exit.stats));
		e->exit.exit_code = BPF_CORE_READ(task, exit_code);
		bpf_ringbuf_submit(e, 0);
	}
	/*
	 * The entry goes now so a new process reusing the pid starts
	 * clean; the loader sweeps this tgid's blocks and sites.
	 */
	bpf_map_delete_elem(&procs, &tgid);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(on_oom_victim, struct task_struct *task, u32 uid)
{
	u32 tgid = BPF_CORE_READ(task, tgid);
	struct mt_kproc *p = bpf_map_lookup_elem(&procs, &tgid);
	struct mt_event *e;

	/* reported for every process: an OOM kill is always worth seeing */
	e = event_new(MT_EV_OOM, tgid, p, MT_EV_SIZE(oom));
	if (!e)
		return 0;
	e->pid = BPF_CORE_READ(task, pid);
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	e->oom.uid = uid;
	e->oom.total_vm_pages = BPF_CORE_READ(task, mm, total_vm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

#define MT_PAGE		4096
#define X86_PF_PROT_	0x1	/* arch/x86/include/asm/trap_pf.h */

/*
 * Node view: who brings new memory in.  A fault on a page that was not
 * present is what grows a process's RSS (first touch of heap, stack,
 * anonymous or file mappings), whatever allocator or none led to it;
 * its user stack is the code path that touched the memory.  One stack
 * per fault_sample_bytes of such faults (systematic sampling on the
 * process's own count, so exactly one thread takes each sample), each
 * standing for that many bytes: the cost follows memory growth, never
 * the allocation rate.  A huge page counts as one page: an estimate.
 */
static __always_inline void growth_sample(struct pt_regs *regs,
					  struct mt_kproc *p, u32 tgid,
					  u64 *count, u64 bytes, u64 kind)
{
	struct mt_site_key sk = { .tgid = tgid, .gen = p->gen };
	struct mt_ksite *s;
	u64 old, n;
	u32 i;

	old = __sync_fetch_and_add(count, bytes);
	/* samples whose boundary this growth crossed */
	n = (old + bytes) / fault_sample_bytes - old / fault_sample_bytes;
	if (!n)
		return;
	sk.stack = (stack_capture(regs, NULL, 0) & ~3ULL) | kind;
	if (!sk.stack)
		sk.stack = MT_MAP_NO_STACK;
	s = site_get(p, &sk);
	if (!s)
		return;
	i = slot();
	__sync_fetch_and_add(&s->c[i].alloc_bytes, n * fault_sample_bytes);
	__sync_fetch_and_add(&s->c[i].allocs, n);
}

static __always_inline void fault_sample(struct pt_regs *regs,
					 struct mt_kproc *p, u32 tgid)
{
	growth_sample(regs, p, tgid, &p->fault_bytes, MT_PAGE,
		      MT_GROWTH_NO_STACK);
}

/*
 * Node view: the heap's growth without a syscall tracepoint.  A break
 * moved up is followed at once by the first touch of the new memory
 * (malloc writes the new chunk's header), so the fault after a brk()
 * sees the new break, and its stack is the one that grew the heap.
 * The break is read from the mm here, once per fault.  Threads race for
 * last_brk: only the one that moves it takes the sample.
 */
static __always_inline void brk_sample(struct pt_regs *regs,
				       struct mt_kproc *p, u32 tgid)
{
	u64 brk = bpf_get_current_task_btf()->mm->brk;
	u64 old = p->last_brk;

	if (brk == old ||
	    __sync_val_compare_and_swap(&p->last_brk, old, brk) != old)
		return;
	/* the first one seen is where it stood: no growth of ours */
	if (old && brk > old)
		growth_sample(regs, p, tgid, &p->map_bytes, brk - old, 0);
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(on_page_fault, unsigned long address, struct pt_regs *regs,
	     unsigned long error_code)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct mt_kproc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (!p)
		return 0;
	__sync_fetch_and_add(&p->page_faults, 1);
	if (fault_sample_bytes && !(error_code & X86_PF_PROT_) && !asleep()) {
		if (!mm_syscalls)
			brk_sample(regs, p, tgid);
		fault_sample(regs, p, tgid);
	}
	return 0;
}

/* ---- mmap family -------------------------------------------------------- */

#define NR_MMAP		9
#define NR_MUNMAP	11
#define NR_BRK		12
#define NR_MREMAP	25
#define TS_COMPAT_	0x0002	/* arch/x86/include/asm/thread_info.h */
#define PROT_EXEC_	0x4	/* uapi values; those headers would clash */
#define MAP_ANONYMOUS_	0x20

/*
 * One program, at syscall exit: the saved user registers still hold the
 * arguments (only ax changes), so no sys_enter program and no map carry
 * them across the call.  The raw syscall tracepoint runs after every
 * syscall on the node (among them the uretprobe syscall that ends each
 * traced malloc): the number is checked before anything else.
 */
/*
 * Node view: who reserves address space, the other half of growth.  An
 * anonymous mmap or a brk that moves the break up is sampled as page
 * faults are (per fault_sample_bytes of the process's own count); the
 * memory is not touched yet, so these map sites stay apart from the
 * growth sites of page faults.
 */
static __always_inline void map_sample(struct pt_regs *regs, long ret,
				       u32 type, struct mt_kproc *p, u32 tgid)
{
	u64 len = 0;

	if (ret < 0 && ret > -4096)
		return;
	if (type == MT_EV_MMAP && (regs->r10 & MAP_ANONYMOUS_)) {
		len = regs->si;
	} else if (type == MT_EV_BRK) {
		/* brk(0) asks; only a break that moved up grew the heap */
		if (p->last_brk && (u64)ret > p->last_brk)
			len = ret - p->last_brk;
		p->last_brk = ret;
	}
	if (len)
		growth_sample(regs, p, tgid, &p->map_bytes, len, 0);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;
	struct mt_kproc *p;
	struct mt_event *e;
	u32 tgid, type;

	switch (nr) {
	case NR_MMAP:
		type = MT_EV_MMAP;
		break;
	case NR_MUNMAP:
		type = MT_EV_MUNMAP;
		break;
	case NR_MREMAP:
		type = MT_EV_MREMAP;
		break;
	case NR_BRK:
		type = MT_EV_BRK;
		break;
	default:
		return 0;
	}
	/* a 32-bit syscall (TS_COMPAT) has other numbers: 9 is link there */
	if (bpf_get_current_task_btf()->thread_info.status & TS_COMPAT_)
		return 0;
	if (asleep())
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return 0;
	if (fault_sample_bytes)
		map_sample(regs, ret, type, p, tgid);
	e = event_new(type, tgid, p, MT_EV_SIZE(mm));
	if (!e)
		return 0;
	e->mm.addr = regs->di;
	e->mm.len = regs->si;
	e->mm.new_len = type == MT_EV_MREMAP ? regs->dx : 0;
	e->mm.flags = type == MT_EV_MMAP ? regs->r10 : 0;
	e->mm.prot = type == MT_EV_MMAP ? regs->dx : 0;
	e->mm.ret = ret;
	e->mm.err = (ret < 0 && ret > -4096) ? ret : 0;
	/* code from a file: where it came from, while the fd is still open */
	if (type == MT_EV_MMAP && !e->mm.err && (e->mm.prot & PROT_EXEC_) &&
	    !(e->mm.flags & MAP_ANONYMOUS_)) {
		struct file *f = fd_file(regs->r8);
		struct vma_info vi = {};

		/* the mapping's own file (an overlay's real one), as at exec */
		if (cfi_on && !bpf_find_vma(bpf_get_current_task_btf(), ret,
					    vma_cb, &vi, 0) && vi.file)
			cfi_map_add(tgid, vi.start, vi.end, vi.pgoff, vi.file);
		mapfile_event(tgid, p, ret, regs->si, regs->r9, f);
		if (f)
			alloc_text_add(tgid, f, ret, regs->si);
	}
	/*
	 * mmap-family records can come by the hundred thousand per second:
	 * waking the reader for each would cost more than the record.  The
	 * reader drains at least every 50 ms; wake it early only when a
	 * backlog builds up.
	 */
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) <
			      ringbuf_wake_bytes ? BPF_RB_NO_WAKEUP :
			      BPF_RB_FORCE_WAKEUP);
	return 0;
}

#define MAP_SHARED_	0x01

/*
 * A file whose CFI is compiled (code, with rows or frame pointers): a
 * span of anything else (a data file mapped from offset 0) would only
 * take a slot of the process's table.
 */
static __always_inline bool cfi_span_known(struct file *f)
{
	struct mt_cfi_key k;
	struct mt_cfi_file *fi;

	cfi_key_of(f, &k);
	fi = bpf_map_lookup_elem(&cfi_files, &k);
	return fi && (fi->nrows || (fi->flags & MT_CFI_FP));
}

/*
 * Node view: the mmap calls whose address the kernel picks (no MAP_FIXED,
 * no free hint): get_unmapped_area() reports each placement, in the
 * calling thread, whose saved registers still hold mmap's arguments.  It
 * runs only when address space is placed, not at every syscall; the
 * break is followed at page faults (brk_sample()).
 *  - anonymous: address space reserved, sampled as map sites;
 *  - a file mapped privately from offset 0 (how ld.so and dlopen() map
 *    a library: its whole span first, then its segments over it with
 *    MAP_FIXED) or as code: where it is and what it is, for the
 *    symbolizer and the unwinder, even if the process soon exits.
 *    Shared data files (a database's) are not code: left alone.
 */
SEC("tp_btf/vm_unmapped_area")
int BPF_PROG(on_unmapped_area, unsigned long addr,
	     struct vm_unmapped_area_info *info)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *regs;
	struct mt_kproc *p;
	struct file *f;
	u64 flags, prot;
	u32 tgid;

	if (mm_syscalls || (addr & (MT_PAGE - 1)))
		return 0;	/* traced at syscall exit; or an error */
	if (t->thread_info.status & TS_COMPAT_)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs || regs->orig_ax != NR_MMAP || asleep())
		return 0;	/* exec's loader, shmat, mremap: not mmap */
	tgid = bpf_get_current_pid_tgid() >> 32;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return 0;
	flags = regs->r10;
	prot = regs->dx;
	if (flags & MAP_ANONYMOUS_) {
		if (fault_sample_bytes)
			growth_sample(regs, p, tgid, &p->map_bytes, regs->si,
				      0);
		return 0;
	}
	if ((flags & MAP_SHARED_) || (regs->r9 && !(prot & PROT_EXEC_)))
		return 0;
	f = fd_file(regs->r8);
	/*
	 * For the unwinder at once (a process that faults memory in as it
	 * starts would otherwise wait for its maps to be read): ld.so maps
	 * a library's span so that its vaddr 0 lands at addr, and puts each
	 * segment at its vaddr within it.  Replaced by what /proc shows.
	 */
	if (!regs->r9 && cfi_on && f && cfi_span_known(f))
		cfi_map_add(tgid, addr, addr + regs->si, MT_CFI_SPAN, f);
	mapfile_event(tgid, p, addr, regs->si, regs->r9, f);
	if (f)
		alloc_text_add(tgid, f, addr, regs->si);
	return 0;
}

/*
 * Node view: every process's heap and VmData in one pass over the tasks,
 * run by memtrace at each refresh in its own time (no brk record in the
 * node view).  RSS stays with /proc/PID/status: it adds the counters'
 * per-CPU remainders, which this kernel gives BPF no way to reach
 * (no per-CPU type tags in BTF, no data symbols in kallsyms).
 */
SEC("iter/task")
int mm_iter(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	struct mt_mm_rec r = {};
	struct mm_struct *mm;

	if (!t || t->pid != t->tgid)
		return 0;	/* one record a process, from its leader */
	mm = t->mm;
	if (!mm)
		return 0;	/* a kernel thread, or exiting */
	r.tgid = t->tgid;
	r.brk = BPF_CORE_READ(mm, brk);
	r.start_brk = BPF_CORE_READ(mm, start_brk);
	r.data_vm = BPF_CORE_READ(mm, data_vm);
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

/*
 * The floor for `make bench`: empty programs at exactly the sites the
 * real ones use, i.e. what the kernel's uprobe machinery alone costs.
 */
SEC("uprobe")
int floor_enter(struct pt_regs *ctx)
{
	return 0;
}

SEC("uretprobe")
int floor_exit(struct pt_regs *ctx)
{
	return 0;
}

/*
 * Go GC events, from entry uprobes only: a uretprobe rewrites the return
 * address and Go's stack walker then kills the process.  The
 * stop-the-world pair is timed entry to entry; only one stop can be in
 * progress per process.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct mt_go_gc);
} go_gc SEC(".maps");

SEC("uprobe")
int go_gc_start(struct pt_regs *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct mt_go_gc *g = bpf_map_lookup_elem(&go_gc, &tgid);

	if (g)
		__sync_fetch_and_add(&g->gc_starts, 1);
	return 0;
}

SEC("uprobe")
int go_stw_stop(struct pt_regs *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct mt_go_gc *g = bpf_map_lookup_elem(&go_gc, &tgid);

	if (g)
		g->stop_ts = bpf_ktime_get_ns();
	return 0;
}

SEC("uprobe")
int go_stw_start(struct pt_regs *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct mt_go_gc *g = bpf_map_lookup_elem(&go_gc, &tgid);
	u64 d;

	if (!g || !g->stop_ts)
		return 0;
	d = bpf_ktime_get_ns() - g->stop_ts;
	g->stop_ts = 0;
	g->stw_count++;
	g->stw_total_ns += d;
	g->stw_last_ns = d;
	if (d > g->stw_max_ns)
		g->stw_max_ns = d;
	return 0;
}
