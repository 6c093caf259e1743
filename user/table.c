// SPDX-License-Identifier: GPL-2.0
/* The process table model: rows, derived rates, sorting, mmap ranges. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goheap.h"
#include "hashmap.h"
#include "table.h"
#include "util.h"

/*
 * Rows in an array (the views' order, set by table__sort) and by pid in
 * a hash map: a record storm looks a row up per record, and a linear
 * search there was most of memtrace's time with thousands of rows.
 */
struct table {
	struct mt_row **rows;
	int nr, cap;
	struct hashmap by_pid;		/* pid -> row */
	uint64_t next_id;
	uint64_t interval_ns;
};

static uint64_t page_size(void)
{
	static uint64_t ps;

	if (!ps)
		ps = sysconf(_SC_PAGESIZE);
	return ps;
}

struct table *table__new(void)
{
	struct table *t = calloc(1, sizeof(struct table));

	if (t)
		hashmap__init(&t->by_pid, NULL, NULL, NULL);
	return t;
}

static void row_free(struct mt_row *r)
{
	free(r->ranges);
	free(r->sites);
	hashmap__free(r->site_ix);
	goheap__free(r->go);
	free(r);
}

void table__free(struct table *t)
{
	int i;

	if (!t)
		return;
	for (i = 0; i < t->nr; i++)
		row_free(t->rows[i]);
	free(t->rows);
	hashmap__clear(&t->by_pid);
	free(t);
}

struct mt_row *table__get(struct table *t, int pid)
{
	return hashmap__get(&t->by_pid, (uint32_t)pid);
}

struct mt_row *table__add(struct table *t, int pid)
{
	struct mt_row *r = table__get(t, pid);

	if (r)
		return r;
	if (array_grow(&t->rows, &t->cap, t->nr, sizeof(t->rows[0])))
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (hashmap__add(&t->by_pid, (uint32_t)pid, r)) {
		free(r);
		return NULL;
	}
	r->pid = pid;
	r->id = ++t->next_id;
	r->cg_eta_s = -1;
	r->cost_pct = -1;
	r->idx = t->nr;
	t->rows[t->nr++] = r;
	return r;
}

/*
 * The last row takes the removed one's place: the order is the views'
 * business (they sort before drawing), and a loop over table__row()
 * that removes row i looks at row i again.
 */
void table__remove(struct table *t, int pid)
{
	struct mt_row *r;
	void *v;

	if (!hashmap__delete(&t->by_pid, (uint32_t)pid, &v))
		return;
	r = v;
	t->rows[r->idx] = t->rows[--t->nr];
	t->rows[r->idx]->idx = r->idx;
	row_free(r);
}

int table__nr(const struct table *t)
{
	return t->nr;
}

struct mt_row *table__row(struct table *t, int i)
{
	return i >= 0 && i < t->nr ? t->rows[i] : NULL;
}

void table__set_interval(struct table *t, uint64_t ns)
{
	t->interval_ns = ns;
}

static double rate(uint64_t now, uint64_t before, double secs)
{
	return secs > 0 && now >= before ? (now - before) / secs : 0;
}

void table__set_stats(struct table *t, struct mt_row *r,
		      const struct mt_proc *st, uint64_t ts)
{
	double secs;

	if (r->gen != st->gen) {
		/* a new image (exec) or a new process: rates start over */
		if (r->gen && st->gen != r->syms_gen)
			r->syms_stale = 1;
		r->gen = st->gen;
		r->cur_ts = r->prev_ts = 0;
		r->peak_bytes = 0;
		r->alloc_bps = r->free_bps = r->growth_bps = 0;
		r->allocs_ps = r->frees_ps = r->pf_ps = r->fault_bps = 0;
	}
	/*
	 * A tail much shorter than the refresh interval (the final table a
	 * few ms after the last one, a process's exit) would turn a few
	 * bytes into a huge rate: measure from the sample before instead,
	 * over the last full interval plus that tail; with no such sample
	 * the rates are 0.
	 */
	r->short_sample = r->cur_ts && ts >= r->cur_ts &&
			  ts - r->cur_ts < t->interval_ns / 2;
	if (r->short_sample) {
		r->have_prev = r->prev_ts != 0;
	} else {
		r->have_prev = r->cur_ts != 0;
		r->prev = r->cur;
		r->prev_ts = r->cur_ts;
	}
	r->cur = *st;
	r->cur_ts = ts;
	r->live_bytes = (int64_t)(st->alloc_bytes - st->free_bytes);
	r->live_allocs = (int64_t)(st->allocs - st->frees);
	if (r->live_bytes > r->peak_bytes)
		r->peak_bytes = r->live_bytes;
	r->lost_events = st->lost + st->lost_events;
	r->loss = r->lost_events != 0;
	if (!r->have_prev) {
		r->alloc_bps = r->free_bps = r->growth_bps = 0;
		r->allocs_ps = r->frees_ps = r->pf_ps = 0;
		return;
	}
	secs = (r->cur_ts - r->prev_ts) / 1e9;
	r->alloc_bps = rate(st->alloc_bytes, r->prev.alloc_bytes, secs);
	r->free_bps = rate(st->free_bytes, r->prev.free_bytes, secs);
	r->allocs_ps = rate(st->allocs, r->prev.allocs, secs);
	r->frees_ps = rate(st->frees, r->prev.frees, secs);
	r->pf_ps = rate(st->page_faults, r->prev.page_faults, secs);
	r->fault_bps = rate(st->fault_bytes, r->prev.fault_bytes, secs);
	r->growth_bps = secs > 0 ? (r->live_bytes -
		(int64_t)(r->prev.alloc_bytes - r->prev.free_bytes)) / secs : 0;
}

static enum mt_sort sort_key;
static bool sort_rev;

static double limit_frac(const struct mt_row *r)
{
	return r->cg_limit ? (double)r->cg_usage / r->cg_limit : -1;
}

static int cmp_rows(const void *pa, const void *pb)
{
	const struct mt_row *a = *(struct mt_row * const *)pa;
	const struct mt_row *b = *(struct mt_row * const *)pb;
	double va, vb;
	int c;

	switch (sort_key) {
	case SORT_GROWTH: va = row__growth(a); vb = row__growth(b); break;
	case SORT_ALLOC_RATE: va = a->alloc_bps; vb = b->alloc_bps; break;
	case SORT_RSS: va = a->rss_bytes; vb = b->rss_bytes; break;
	case SORT_LIMIT: va = limit_frac(a); vb = limit_frac(b); break;
	case SORT_PID: va = -a->pid; vb = -b->pid; break;
	default: va = a->live_bytes; vb = b->live_bytes; break;
	}
	/* descending by default; pid breaks ties so the order is stable */
	c = va < vb ? 1 : va > vb ? -1 : (a->pid > b->pid) - (a->pid < b->pid);
	return sort_rev ? -c : c;
}

void table__sort(struct table *t, enum mt_sort key, bool reverse)
{
	int i;

	sort_key = key;
	sort_rev = reverse;
	qsort(t->rows, t->nr, sizeof(t->rows[0]), cmp_rows);
	for (i = 0; i < t->nr; i++)
		t->rows[i]->idx = i;
}

const char *table__sort_name(enum mt_sort key)
{
	static const char *const names[] = {
		[SORT_LIVE] = "live", [SORT_GROWTH] = "growth",
		[SORT_ALLOC_RATE] = "alloc/s", [SORT_RSS] = "rss",
		[SORT_LIMIT] = "limit%", [SORT_PID] = "pid",
	};

	return key < SORT_MAX ? names[key] : "?";
}

/* ---- anonymous mapping ranges ------------------------------------------ */

static uint64_t page_up(uint64_t v)
{
	return (v + page_size() - 1) & ~(page_size() - 1);
}

static void ranges_total(struct mt_row *r)
{
	uint64_t sum = 0;
	int i;

	for (i = 0; i < r->nranges; i++)
		sum += r->ranges[i].end - r->ranges[i].start;
	r->mmap_bytes = sum;
}

/* Remove [start, end) from the set; returns bytes removed. */
static uint64_t ranges_cut(struct mt_row *r, uint64_t start, uint64_t end)
{
	uint64_t cut = 0;
	int i;

	for (i = 0; i < r->nranges; i++) {
		struct mt_range *g = &r->ranges[i];
		uint64_t lo, hi;

		if (g->end <= start || g->start >= end)
			continue;
		lo = g->start > start ? g->start : start;
		hi = g->end < end ? g->end : end;
		cut += hi - lo;
		if (g->start < start && g->end > end) {
			/* punch a hole: split in two */
			struct mt_range tail = { end, g->end };

			g->end = start;
			if (array_grow(&r->ranges, &r->cap_ranges, r->nranges,
				       sizeof(r->ranges[0])))
				return cut;
			r->ranges[r->nranges++] = tail;
		} else if (g->start < start) {
			g->end = start;
		} else if (g->end > end) {
			g->start = end;
		} else {
			r->ranges[i--] = r->ranges[--r->nranges];
		}
	}
	return cut;
}

static void ranges_add(struct mt_row *r, uint64_t start, uint64_t end)
{
	ranges_cut(r, start, end);
	if (array_grow(&r->ranges, &r->cap_ranges, r->nranges,
		       sizeof(r->ranges[0])))
		return;
	r->ranges[r->nranges].start = start;
	r->ranges[r->nranges].end = end;
	r->nranges++;
}

#define MT_MAP_ANONYMOUS 0x20

void row__mmap(struct mt_row *r, uint64_t addr, uint64_t len, uint64_t flags)
{
	uint64_t end = addr + page_up(len);

	/* a file mapping placed over anonymous memory replaces it */
	if (flags & MT_MAP_ANONYMOUS)
		ranges_add(r, addr, end);
	else
		ranges_cut(r, addr, end);
	ranges_total(r);
}

void row__munmap(struct mt_row *r, uint64_t addr, uint64_t len)
{
	ranges_cut(r, addr, addr + page_up(len));
	ranges_total(r);
}

void row__mremap(struct mt_row *r, uint64_t old, uint64_t old_len,
		 uint64_t new_addr, uint64_t new_len)
{
	/* only memory we saw mapped anonymously is followed */
	if (ranges_cut(r, old, old + page_up(old_len)))
		ranges_add(r, new_addr, new_addr + page_up(new_len));
	ranges_total(r);
}

void row__reset(struct mt_row *r)
{
	r->nranges = 0;
	r->mmap_bytes = 0;
	r->nsites = 0;
	r->have_prev = false;
	r->cur_ts = r->prev_ts = 0;
	r->start_brk = r->cur_brk = r->brk_bytes = 0;
	r->probed = false;
	r->attach_tries = r->probe_fails = 0;
	r->warned = false;
	memset(&r->cur, 0, sizeof(r->cur));
	r->live_bytes = r->live_allocs = r->peak_bytes = 0;
	goheap__free(r->go);
	r->go = NULL;
	r->go_checked = r->go_enabled = false;
	r->go_prev_inuse = 0;
}

/* (Re)build the index of r's sites: stack id -> index + 1. */
static int site_index(struct mt_row *r)
{
	int i;

	if (!r->site_ix) {
		r->site_ix = hashmap__new(NULL, NULL, NULL);
		if (!r->site_ix)
			return -ENOMEM;
	}
	hashmap__clear(r->site_ix);
	for (i = 0; i < r->nsites; i++)
		if (hashmap__add(r->site_ix, r->sites[i].stack_id,
				 (void *)(uintptr_t)(i + 1)))
			return -ENOMEM;
	return 0;
}

/*
 * The site of r with this stack id.  Asked for every site of every row
 * at each refresh: a search of the row's sites made that quadratic in
 * them (a process with 10,000 sites took seconds a refresh).  The index
 * goes stale when the sites are sorted or reset; an entry is checked
 * against the array, and a miss or a stale entry rebuilds it.
 */
static struct mt_site_row *site_find(struct mt_row *r, uint64_t stack_id)
{
	int pass, i;

	for (pass = 0; pass < 2; pass++) {
		uintptr_t ix = r->site_ix ?
			(uintptr_t)hashmap__get(r->site_ix, stack_id) : 0;

		if (ix && ix <= (uintptr_t)r->nsites &&
		    r->sites[ix - 1].stack_id == stack_id)
			return &r->sites[ix - 1];
		/* same count, same ids (a sort moves them): truly new */
		if (!ix && r->site_ix &&
		    hashmap__size(r->site_ix) == (size_t)r->nsites)
			return NULL;
		if (site_index(r))
			break;
	}
	/* no memory for the index: search */
	for (i = 0; i < r->nsites; i++)
		if (r->sites[i].stack_id == stack_id)
			return &r->sites[i];
	return NULL;
}

struct mt_site_row *row__site(struct mt_row *r, uint64_t stack_id)
{
	struct mt_site_row *s = site_find(r, stack_id);

	if (s)
		return s;
	if (array_grow(&r->sites, &r->cap_sites, r->nsites,
		       sizeof(r->sites[0])))
		return NULL;
	s = &r->sites[r->nsites];
	memset(s, 0, sizeof(*s));
	s->stack_id = stack_id;
	r->nsites++;
	if (r->site_ix && hashmap__add(r->site_ix, stack_id,
				       (void *)(uintptr_t)r->nsites))
		hashmap__clear(r->site_ix);	/* rebuilt at the next miss */
	return s;
}
