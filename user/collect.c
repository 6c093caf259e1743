// SPDX-License-Identifier: GPL-2.0
/*
 * Map readers.  The kernel aggregates; at each refresh we read the small
 * per-process map, and the site map only when a view needs sites.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collect.h"
#include "gorow.h"
#include "hashmap.h"
#include "memtrace.skel.h"
#include "table.h"
#include "procfs.h"
#include "util.h"

#define BATCH 4096

struct collect {
	int procs_fd, sites_fd, stacks_fd, blocks_fd, counters_fd, uw_fd;
	struct mt_bucket *hot;	/* the small block table, mapped */
	size_t hot_len;
	uint32_t nbuckets;
	/*
	 * Images gone (exit, exec) whose blocks and sites await the sweep,
	 * by (tgid, gen), and their tgids: the sweep asks of every slot of
	 * the block table, thousands of entries after an exec storm.
	 */
	struct hashmap dead;		/* (tgid, gen) -> 1 */
	struct hashmap dead_tgids;	/* tgid -> 1 */
	int64_t *spilled;	/* the kernel's count of big-table blocks */
	bool mm_syscalls;	/* the mmap family traced at syscall exit */
	bool blocks;		/* allocator probes may have left blocks */
	struct bpf_link **mm_link;	/* the node view's mm_iter */
	struct mt_mm_rec *mms;		/* its records, this refresh */
	int nmms, capmms;
	struct hashmap mm_ix;		/* tgid -> index in mms + 1 */
	uint64_t page;
};

int collect__new(struct memtrace_bpf *skel, struct collect **out)
{
	struct collect *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	hashmap__init(&c->dead, NULL, NULL, NULL);
	hashmap__init(&c->dead_tgids, NULL, NULL, NULL);
	c->procs_fd = bpf_map__fd(skel->maps.procs);
	c->sites_fd = bpf_map__fd(skel->maps.sites);
	c->stacks_fd = bpf_map__fd(skel->maps.stacks);
	c->blocks_fd = bpf_map__fd(skel->maps.blocks);
	c->counters_fd = bpf_map__fd(skel->maps.counters);
	c->uw_fd = bpf_map__fd(skel->maps.uw_stats);
	c->spilled = (int64_t *)&skel->bss->spilled;
	c->mm_syscalls = skel->rodata->mm_syscalls;
	/* the node view has none until a row is traced exactly */
	c->blocks = c->mm_syscalls;
	c->mm_link = &skel->links.mm_iter;
	hashmap__init(&c->mm_ix, NULL, NULL, NULL);
	c->page = sysconf(_SC_PAGESIZE);
	/* the sweep frees slots in place, as the kernel does */
	c->nbuckets = bpf_map__max_entries(skel->maps.hot);
	c->hot_len = c->nbuckets * sizeof(struct mt_bucket);
	c->hot = mmap(NULL, c->hot_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		      bpf_map__fd(skel->maps.hot), 0);
	if (c->hot == MAP_FAILED) {
		int err = -errno;

		fprintf(stderr, "memtrace: cannot map the block table: %s\n",
			strerror(-err));
		free(c);
		return err;
	}
	*out = c;
	return 0;
}

void collect__free(struct collect *c)
{
	if (!c)
		return;
	munmap(c->hot, c->hot_len);
	hashmap__clear(&c->dead);
	hashmap__clear(&c->dead_tgids);
	hashmap__clear(&c->mm_ix);
	free(c->mms);
	free(c);
}

int collect__track(struct collect *c, int pid, uint64_t sample_bytes)
{
	struct mt_kproc p = { .gen = now_ns(), .sampled = sample_bytes };
	uint32_t key = pid;

	c->blocks = true;
	if (bpf_map_update_elem(c->procs_fd, &key, &p, BPF_NOEXIST) &&
	    errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * The node view: every process's heap and VmData in one read of the
 * kernel's task list (mm_iter) per refresh; /proc has the break only in
 * each process's maps.
 */
static void read_mms(struct collect *c)
{
	unsigned char buf[170 * sizeof(struct mt_mm_rec)];
	size_t have = 0, i;
	ssize_t n;
	int fd;

	c->nmms = 0;
	hashmap__clear(&c->mm_ix);
	if (c->mm_syscalls || !*c->mm_link)
		return;
	fd = bpf_iter_create(bpf_link__fd(*c->mm_link));
	if (fd < 0)
		return;
	while ((n = read(fd, buf + have, sizeof(buf) - have)) > 0) {
		have += n;
		for (i = 0; i + sizeof(struct mt_mm_rec) <= have;
		     i += sizeof(struct mt_mm_rec)) {
			if (array_grow(&c->mms, &c->capmms, c->nmms,
				       sizeof(*c->mms)))
				goto out;
			memcpy(&c->mms[c->nmms], buf + i, sizeof(*c->mms));
			if (hashmap__set(&c->mm_ix, c->mms[c->nmms].tgid,
					 (void *)(uintptr_t)(c->nmms + 1), NULL))
				goto out;
			c->nmms++;
		}
		/* a record split between two reads */
		memmove(buf, buf + i, have - i);
		have -= i;
	}
out:
	close(fd);
}

static const struct mt_mm_rec *mm_of(const struct collect *c, int pid)
{
	uintptr_t ix = (uintptr_t)hashmap__get(&c->mm_ix, pid);

	return ix && ix <= (uintptr_t)c->nmms ? &c->mms[ix - 1] : NULL;
}

/*
 * RSS by kind (anonymous: heap, stacks, anonymous mmaps; file-backed:
 * code, mapped files; shared memory), exact from the kernel's per-mm
 * counters, and the heap.  The node view also derives MMAP: it has no
 * mmap record, so the kernel's own count of private writable memory
 * (VmData: the heap, anonymous mmaps, a library's data) less the heap.
 */
static void read_proc_extras(struct collect *c, struct mt_row *r)
{
	const struct mt_mm_rec *m = mm_of(c, r->pid);
	struct procfs_status s = {};
	struct procfs_stat st;
	uint64_t data;

	/* one file for all of RSS: status has the total and its split */
	if (!procfs__read_status(r->pid, &s)) {
		r->rss_bytes = s.vm_rss;
		r->rss_anon = s.rss_anon;
		r->rss_file = s.rss_file;
		r->rss_shmem = s.rss_shmem;
	}
	data = s.vm_data;
	if (m) {
		r->start_brk = m->start_brk;
		r->cur_brk = m->brk;
		data = m->data_vm * c->page;
	} else if (!r->start_brk) {
		if (procfs__read_stat(r->pid, &st))
			return;
		r->start_brk = st.start_brk;
	}
	if (r->start_brk && r->cur_brk > r->start_brk)
		r->brk_bytes = r->cur_brk - r->start_brk;
	if (!c->mm_syscalls && data)
		r->mmap_bytes = data > r->brk_bytes ? data - r->brk_bytes : 0;
}

int collect__procs(struct collect *c, struct table *t, uint64_t ts)
{
	uint32_t key, next;
	struct mt_kproc kst;
	struct mt_proc st;
	bool first = true;

	read_mms(c);
	while (!bpf_map_get_next_key(c->procs_fd, first ? NULL : &key, &next)) {
		struct mt_row *r;

		first = false;
		key = next;
		if (bpf_map_lookup_elem(c->procs_fd, &key, &kst))
			continue;
		mt_proc_sum(&kst, &st);
		r = table__add(t, key);
		if (!r)
			return -ENOMEM;
		if (!r->comm[0]) {
			/* a process we have no event of yet (node mode) */
			procfs__read_comm(key, r->comm, sizeof(r->comm));
		}
		if (r->exited) {
			/* pid reused: the old row goes first, at once */
			if (kst.gen != r->gen)
				r->reused = true;
			continue;
		}
		table__set_stats(t, r, &st, ts);
		read_proc_extras(c, r);
	}
	return 0;
}

static int cmp_sites(const void *pa, const void *pb)
{
	const struct mt_site_row *a = pa, *b = pb;

	if (a->live_bytes != b->live_bytes)
		return a->live_bytes < b->live_bytes ? 1 : -1;
	if (a->alloc_bytes != b->alloc_bytes)
		return a->alloc_bytes < b->alloc_bytes ? 1 : -1;
	return a->stack_id < b->stack_id ? -1 : a->stack_id > b->stack_id;
}

static void site_fill(struct collect *c, struct mt_row *r,
		      const struct mt_site_key *key, const struct mt_site *val)
{
	struct mt_site_row *s = row__site(r, key->stack);
	struct mt_stack_key sk = {
		.tgid = key->tgid, .gen = key->gen, .hash = key->stack,
	};
	int j;

	if (!s)
		return;
	s->live_bytes = (int64_t)(val->alloc_bytes - val->free_bytes);
	s->live_allocs = (int64_t)(val->allocs - val->frees);
	s->alloc_bytes = val->alloc_bytes;
	s->allocs = val->allocs;
	if (s->nframes || !key->stack)
		return;
	/* a stack never changes under its hash: each is read once */
	if (bpf_map_lookup_elem(c->stacks_fd, &sk, s->stack))
		return;
	for (j = 0; j < MT_MAX_STACK && s->stack[j]; j++)
		;
	s->nframes = j;
}

static void sites_begin(struct mt_row *r)
{
	int i;

	/*
	 * Keep last refresh's live bytes per stack, for growth; after a
	 * short tail (see table__set_stats) the ones of the refresh before.
	 */
	for (i = 0; i < r->nsites; i++) {
		if (!r->short_sample)
			r->sites[i].prev_live = r->sites[i].live_bytes;
		r->sites[i].live_bytes = r->sites[i].live_allocs = 0;
		r->sites[i].alloc_bytes = r->sites[i].allocs = 0;
	}
}

static void sites_end(struct mt_row *r)
{
	double secs = r->prev_ts && r->cur_ts > r->prev_ts ?
		      (r->cur_ts - r->prev_ts) / 1e9 : 0;
	int i;

	for (i = 0; i < r->nsites; i++)
		r->sites[i].growth_bps = secs > 0 ?
			(r->sites[i].live_bytes - r->sites[i].prev_live) / secs : 0;
	/* qsort(NULL, 0, ...) is undefined (UBSan): a row with no sites */
	if (r->nsites)
		qsort(r->sites, r->nsites, sizeof(r->sites[0]), cmp_sites);
}

/*
 * One pass over the site map for all rows, in batches: a walk key by key
 * would cost two syscalls per site.
 */
int collect__sites(struct collect *c, struct table *t)
{
	static struct mt_site_key keys[BATCH];
	static struct mt_ksite vals[BATCH];
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct mt_row *last = NULL;
	uint32_t in_batch, out_batch;
	struct mt_site sum;
	bool first = true;
	int i, n = table__nr(t), err = 0;

	/* exited rows keep their sites until expired: they are the leaks */
	for (i = 0; i < n; i++)
		sites_begin(table__row(t, i));
	for (;;) {
		__u32 count = BATCH;

		err = bpf_map_lookup_batch(c->sites_fd, first ? NULL : &in_batch,
					   &out_batch, keys, vals, &count,
					   &opts);
		if (err && err != -ENOENT)
			break;
		for (i = 0; i < (int)count; i++) {
			struct mt_row *r = last && last->pid == (int)keys[i].tgid ?
					   last : table__get(t, keys[i].tgid);

			last = r;
			if (!r || keys[i].gen != (uint32_t)r->gen ||
			    r->syms_stale)
				continue;
			mt_site_sum(&vals[i], &sum);
			site_fill(c, r, &keys[i], &sum);
		}
		if (err) {	/* ENOENT: that was the last batch */
			err = 0;
			break;
		}
		in_batch = out_batch;
		first = false;
	}
	for (i = 0; i < n; i++) {
		struct mt_row *r = table__row(t, i);

		gorow__sites(r);	/* the Go runtime's own, if any */
		sites_end(r);
	}
	return err;
}

/* The stack walk's counts (per-CPU, summed); zeros without the map. */
int collect__unwind(struct collect *c, uint64_t out[MT_UW_MAX])
{
	int ncpu = libbpf_num_possible_cpus(), j;
	uint64_t *v;
	uint32_t i;

	memset(out, 0, MT_UW_MAX * sizeof(*out));
	if (ncpu <= 0 || c->uw_fd < 0)
		return 0;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < MT_UW_MAX; i++)
		if (!bpf_map_lookup_elem(c->uw_fd, &i, v))
			for (j = 0; j < ncpu; j++)
				out[i] += v[j];
	free(v);
	return 0;
}

int collect__counters(struct collect *c, uint64_t out[MT_CNT_MAX])
{
	uint32_t i;

	for (i = 0; i < MT_CNT_MAX; i++)
		if (bpf_map_lookup_elem(c->counters_fd, &i, &out[i]))
			out[i] = 0;
	return 0;
}

/* One image of pid is gone (exec replaced it): sweep its data. */
void collect__forget_gen(struct collect *c, int pid, uint32_t gen)
{
	if (!c)
		return;
	/* already there: fine; no memory: its data stays until exit */
	hashmap__add(&c->dead, hashmap__pair(pid, gen), (void *)1);
	hashmap__add(&c->dead_tgids, (uint32_t)pid, (void *)1);
}

/*
 * Process (pid, gen) is gone: its data goes at the next sweep, and its
 * kernel entry if one is left (the kernel drops it at exit; one made by
 * collect__track for a process that had already exited stays).  Only
 * that generation's entry: the pid may be a new process's by now, and
 * deleting its entry would silently stop tracing it.
 */
void collect__forget(struct collect *c, int pid, uint64_t gen)
{
	struct mt_kproc kst;
	uint32_t key = pid;

	if (!c)		/* no kernel side: the registry's unit tests */
		return;
	if (!bpf_map_lookup_elem(c->procs_fd, &key, &kst) && kst.gen == gen)
		bpf_map_delete_elem(c->procs_fd, &key);
	collect__forget_gen(c, pid, gen);
}

static bool is_dead(struct collect *c, uint32_t tgid, uint32_t gen)
{
	return hashmap__find(&c->dead, hashmap__pair(tgid, gen), NULL);
}

static bool has_dead_tgid(struct collect *c, uint32_t tgid)
{
	return hashmap__find(&c->dead_tgids, tgid, NULL);
}

/*
 * Delete blocks and sites of exited processes, one pass over each map.
 * The generation is compared too: a new process may already reuse the pid.
 * The next key is fetched before the current one is deleted, because a
 * missing key makes the kernel restart the walk from the beginning.
 */
int collect__sweep(struct collect *c)
{
	struct mt_block_key bk, bnext;
	struct mt_site_key sk, snext;
	struct mt_stack_key tk, tnext;
	struct mt_block b;
	uint32_t t, i;
	bool more;
	int n = 0;

	if (!c || !hashmap__size(&c->dead))
		return 0;
	/*
	 * The node view's exits (every process on the node) would each
	 * cost a pass over the block tables, a million empty buckets of
	 * the big one (a fifth of memtrace's time beside redis-benchmark):
	 * none while no row was ever traced exactly, or none spilled.
	 */
	if (!c->blocks)
		goto sites;
	for (t = 0; t < c->nbuckets; t++) {
		struct mt_bucket *bk = &c->hot[t];

		for (i = 0; i < MT_BUCKET_SLOTS; i++) {
			uint32_t tgid = __atomic_load_n(&bk->tgid[i],
							__ATOMIC_ACQUIRE);
			uint64_t addr = __atomic_load_n(&bk->addr[i],
							__ATOMIC_RELAXED);

			/* tgid 0: free, or being filled by the kernel */
			if (!tgid || !addr || !has_dead_tgid(c, tgid) ||
			    !is_dead(c, tgid, bk->gen[i]))
				continue;
			__atomic_store_n(&bk->tgid[i], 0, __ATOMIC_RELAXED);
			if (__atomic_compare_exchange_n(&bk->addr[i], &addr, 0,
							false, __ATOMIC_RELEASE,
							__ATOMIC_RELAXED))
				n++;
		}
	}
	more = __atomic_load_n(c->spilled, __ATOMIC_RELAXED) > 0 &&
	       !bpf_map_get_next_key(c->blocks_fd, NULL, &bk);
	while (more) {
		more = !bpf_map_get_next_key(c->blocks_fd, &bk, &bnext);
		if (has_dead_tgid(c, bk.tgid) &&
		    !bpf_map_lookup_elem(c->blocks_fd, &bk, &b) &&
		    is_dead(c, bk.tgid, b.gen) &&
		    !bpf_map_delete_elem(c->blocks_fd, &bk)) {
			n++;
			/*
			 * Keep the kernel's counts exact: left too high, every
			 * later lookup in that bucket would also search the
			 * big table.
			 */
			__atomic_fetch_sub(&c->hot[mt_bucket_of(bk.tgid, bk.addr,
					   c->nbuckets - 1)].spills, 1,
					   __ATOMIC_RELAXED);
			__atomic_fetch_sub(c->spilled, 1, __ATOMIC_RELAXED);
		}
		bk = bnext;
	}
sites:
	more = !bpf_map_get_next_key(c->sites_fd, NULL, &sk);
	while (more) {
		more = !bpf_map_get_next_key(c->sites_fd, &sk, &snext);
		if (is_dead(c, sk.tgid, sk.gen))
			bpf_map_delete_elem(c->sites_fd, &sk);
		sk = snext;
	}
	more = !bpf_map_get_next_key(c->stacks_fd, NULL, &tk);
	while (more) {
		more = !bpf_map_get_next_key(c->stacks_fd, &tk, &tnext);
		if (is_dead(c, tk.tgid, tk.gen))
			bpf_map_delete_elem(c->stacks_fd, &tk);
		tk = tnext;
	}
	hashmap__clear(&c->dead);
	hashmap__clear(&c->dead_tgids);
	return n;
}
