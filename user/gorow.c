// SPDX-License-Identifier: GPL-2.0
/* Go rows: the Go runtime's heap and GC folded into the process table. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <bpf/libbpf.h>

#include "app.h"
#include "goheap.h"
#include "gorow.h"
#include "json.h"
#include "jsonrow.h"
#include "memtrace.skel.h"
#include "pprof.h"
#include "sites.h"
#include "util.h"

static void go_open(struct app *app, struct mt_row *r)
{
	struct memtrace_bpf *skel = app->skel;
	struct goheap *g = NULL;
	int err;

	r->go_checked = true;
	err = goheap__open(r->pid, &g);
	if (err && err != -ENOENT)
		return;		/* not Go (ENOEXEC), or gone */
	r->go = g;
	if (err) {
		fprintf(stderr, "memtrace: pid %d: Go %s, but its runtime's "
			"heap profile was not found\n", r->pid,
			g->version[0] ? g->version : "(version unknown)");
		return;
	}
	if (app->env.verbose)
		fprintf(stderr, "memtrace: pid %d: Go program (%s%s), reading "
			"its runtime's heap profile\n", r->pid,
			g->version[0] ? g->version : "version unknown",
			g->pie ? ", PIE" : "");
	/*
	 * GC probes for the processes asked for (-p, CMD) only: node-wide,
	 * every short-lived Go tool would cost three attachments on the
	 * refresh path; the GC rate still comes from the cycle counter.
	 */
	if (skel && !app->env.floor && app->env.mode != MODE_NODE) {
		err = goheap__attach_gc(g, bpf_map__fd(skel->maps.go_gc),
					skel->progs.go_gc_start,
					skel->progs.go_stw_stop,
					skel->progs.go_stw_start);
		if (err && app->env.verbose)
			fprintf(stderr, "memtrace: pid %d: no GC probes: %s\n",
				r->pid, strerror(-err));
	}
}

/* --go-enable-profiling: once per process, and only when asked. */
static void go_enable(struct app *app, struct mt_row *r)
{
	struct goheap *g = r->go;
	int err;

	if (!app->env.go_enable_rate || g->rate != 0 || r->go_enabled)
		return;
	r->go_enabled = true;
	err = goheap__set_rate(g, app->env.go_enable_rate);
	fprintf(stderr, "memtrace: pid %d: %s runtime.MemProfileRate = %lld "
		"in the process%s%s\n", r->pid, err ? "could not write" :
		"wrote", (long long)app->env.go_enable_rate, err ? ": " : "",
		err ? strerror(-err) : "");
}

bool gorow__detect(struct app *app, struct mt_row *r)
{
	if (!r->go_checked)
		go_open(app, r);
	return r->go != NULL;
}

void gorow__refresh(struct app *app, uint64_t ts)
{
	int i;

	for (i = 0; i < table__nr(app->table); i++) {
		struct mt_row *r = table__row(app->table, i);
		struct goheap *g;
		uint64_t prev;
		double secs;

		if (r->exited)
			continue;
		if (!gorow__detect(app, r))
			continue;
		g = r->go;
		prev = g->ts;
		if (goheap__read(g, ts))
			continue;	/* gone: the last read stays */
		go_enable(app, r);
		/* fold in only over counters set at this refresh */
		if (r->cur_ts != ts)
			continue;
		secs = g->prev_ts && ts > prev ? (ts - prev) / 1e9 : 0;
		r->live_bytes += g->inuse_bytes;
		r->live_allocs += g->inuse_objects;
		if (r->live_bytes > r->peak_bytes)
			r->peak_bytes = r->live_bytes;
		r->alloc_bps += g->have_ctl ? g->heap_alloc_bps : g->alloc_bps;
		if (secs > 0)
			r->growth_bps += (g->inuse_bytes - r->go_prev_inuse) /
					 secs;
		r->go_prev_inuse = g->inuse_bytes;
	}
}

void gorow__sites(struct mt_row *r)
{
	struct goheap *g = r->go;
	int i;

	if (!g)
		return;
	for (i = 0; i < g->nsites; i++) {
		const struct goheap_site *gs = &g->sites[i];
		struct mt_site_row *s;
		int n;

		if (!gs->alloc_objects && !gs->inuse_objects)
			continue;	/* nothing published yet */
		s = row__site(r, gs->bucket);
		if (!s)
			return;
		s->go = true;
		s->live_bytes = gs->inuse_space;
		s->live_allocs = gs->inuse_objects;
		s->alloc_bytes = gs->alloc_space;
		s->allocs = gs->alloc_objects;
		if (s->nframes)
			continue;
		n = gs->nstk < MT_MAX_STACK ? gs->nstk : MT_MAX_STACK;
		memcpy(s->stack, gs->stk, n * sizeof(s->stack[0]));
		s->nframes = n;
	}
}

bool gorow__two_heaps(const struct mt_row *r)
{
	int i;

	if (!r->go)
		return false;
	for (i = 0; i < r->nsites; i++)
		if (!r->sites[i].go && r->sites[i].live_bytes > 0)
			return true;
	return false;
}

static void human_ns(char *buf, size_t len, uint64_t ns)
{
	if (ns < 10000)
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
	else if (ns < 10000000)
		snprintf(buf, len, "%lluus", (unsigned long long)ns / 1000);
	else
		snprintf(buf, len, "%llums", (unsigned long long)ns / 1000000);
}

bool gorow__line(const struct mt_row *r, char *buf, size_t len)
{
	const struct goheap *g = r->go;
	char inuse[16], rate[16], goal[16], lim[16], live[16], last[24];
	char max[24], gogc[16];
	const char *note;
	size_t n;

	buf[0] = '\0';
	if (!g)
		return false;
	human_bytes(inuse, sizeof(inuse), g->inuse_bytes);
	human_bytes(rate, sizeof(rate), g->have_ctl ? g->heap_alloc_bps :
			g->alloc_bps);
	human_bytes(live, sizeof(live), g->heap_live);
	if (g->gogc < 0)
		snprintf(gogc, sizeof(gogc), "off");
	else
		snprintf(gogc, sizeof(gogc), "%d", g->gogc);
	if (!g->have_ctl || g->heap_goal == UINT64_MAX)
		snprintf(goal, sizeof(goal), "%s", g->have_ctl ? "none" : "?");
	else
		human_bytes(goal, sizeof(goal), g->heap_goal);
	if (g->memlimit == INT64_MAX || (!g->have_ctl && !g->memlimit))
		snprintf(lim, sizeof(lim), "%s", g->memlimit ? "none" : "?");
	else
		human_bytes(lim, sizeof(lim), g->memlimit);
	note = goheap__note(g);
	if (note)
		n = snprintf(buf, len, "%s: no Go heap profile (%s); heap "
			     "live %s", g->version[0] ? g->version : "go",
			     g->prof == GOHEAP_PROF_COMPILED_OUT ?
			     "compiled out" : "rate 0",
			     g->have_ctl ? live : "?");
	else
		n = snprintf(buf, len, "%s: Go heap %s in use at last GC",
			     g->version[0] ? g->version : "go", inuse);
	if (n >= len)
		return true;
	n += snprintf(buf + n, len - n, ", alloc %s/s, GC %.1f/s", rate,
		      g->gc_ps);
	if (n < len && g->gc_probed && g->gc.stw_count) {
		human_ns(last, sizeof(last), g->gc.stw_last_ns);
		human_ns(max, sizeof(max), g->gc.stw_max_ns);
		n += snprintf(buf + n, len - n, ", STW last %s max %s", last,
			      max);
	}
	if (n < len)
		snprintf(buf + n, len - n, ", goal %s, GOGC %s, GOMEMLIMIT %s",
			 goal, gogc, lim);
	return true;
}

static void json_ctl(struct json *j, const struct goheap *g)
{
	if (!g->have_ctl && !g->rt.gc_controller) {
		json__knull(j, "gogc");
		json__knull(j, "gomemlimit");
	} else {
		if (g->gogc < 0)
			json__kstr(j, "gogc", "off", 3);
		else
			json__ki64(j, "gogc", g->gogc);
		json__ki64(j, "gomemlimit", g->memlimit);
	}
	if (!g->have_ctl) {
		json__knull(j, "heap_goal");
		json__knull(j, "heap_live");
		json__knull(j, "heap_marked");
		json__knull(j, "total_alloc");
		return;
	}
	json__ku64(j, "heap_goal", g->heap_goal);
	json__ku64(j, "heap_live", g->heap_live);
	json__ku64(j, "heap_marked", g->heap_marked);
	json__ku64(j, "total_alloc", g->total_alloc);
	json__kdbl(j, "heap_alloc_bps", g->heap_alloc_bps, 1);
}

void gorow__json(struct json *j, struct app *app, struct mt_row *r,
		 int top_sites)
{
	const struct goheap *g = r->go;
	const char *note;
	int i, n = 0;

	if (!g)
		return;
	json__key(j, "go");
	json__obj(j);
	json__kstr(j, "version", g->version, sizeof(g->version));
	json__kbool(j, "pie", g->pie);
	json__kbool(j, "profiling", g->prof == GOHEAP_PROF_ON);
	note = goheap__note(g);
	if (note)
		json__kstr(j, "note", note, strlen(note));
	else
		json__knull(j, "note");
	json__ki64(j, "mem_profile_rate", g->rate);
	json__ki64(j, "inuse_bytes", g->inuse_bytes);
	json__ki64(j, "inuse_objects", g->inuse_objects);
	json__ki64(j, "alloc_bytes", g->alloc_bytes);
	json__ki64(j, "alloc_objects", g->alloc_objects);
	json__kdbl(j, "alloc_bps", g->alloc_bps, 1);
	if (g->have_cycle) {
		json__ku64(j, "gc_cycles", g->cycle);
		json__kdbl(j, "gc_ps", g->gc_ps, 2);
	} else {
		json__knull(j, "gc_cycles");
		json__knull(j, "gc_ps");
	}
	json_ctl(j, g);
	json__kbool(j, "gc_probed", g->gc_probed);
	if (g->gc_probed) {
		json__ku64(j, "gc_starts", g->gc.gc_starts);
		json__ku64(j, "stw_pauses", g->gc.stw_count);
		json__ku64(j, "stw_total_ns", g->gc.stw_total_ns);
		json__ku64(j, "stw_last_ns", g->gc.stw_last_ns);
		json__ku64(j, "stw_max_ns", g->gc.stw_max_ns);
	}
	json__ki64(j, "buckets", g->nsites);
	json__kbool(j, "truncated", g->truncated);
	json__ku64(j, "read_errors", g->read_errors);
	json__key(j, "sites");
	json__arr(j);
	for (i = 0; i < r->nsites && n < top_sites; i++) {
		const struct mt_site_row *s = &r->sites[i];

		if (!s->go)
			continue;
		n++;
		json__obj(j);
		json__ki64(j, "inuse_bytes", s->live_bytes);
		json__ki64(j, "inuse_objects", s->live_allocs);
		json__ku64(j, "alloc_bytes", s->alloc_bytes);
		json__ku64(j, "alloc_objects", s->allocs);
		json__kdbl(j, "growth_bps", s->growth_bps, 1);
		json__key(j, "stack");
		jsonrow__stack(j, app, r, s);
		json__obj_end(j);
	}
	json__arr_end(j);
	json__obj_end(j);
}

int gorow__pprof_add(struct pprof *p, const struct mt_row *r, bool unpublished)
{
	const struct goheap *g = r->go;
	int i, k, err;

	if (!g)
		return 0;
	for (i = 0; i < g->nsites; i++) {
		const struct goheap_site *s = &g->sites[i];
		int64_t v[4];

		if (unpublished) {
			uint64_t c[4];

			/* active and every future slot: the next two GCs' view */
			for (k = 0; k < 4; k++)
				c[k] = s->rec[k] + s->rec[4 + k] + s->rec[8 + k] +
				       s->rec[12 + k];
			goheap__scale(c[0], c[2], g->rate, &v[0], &v[1]);
			goheap__scale((int64_t)(c[0] - c[1]),
				      (int64_t)(c[2] - c[3]), g->rate, &v[2],
				      &v[3]);
		} else {
			v[0] = s->alloc_objects;
			v[1] = s->alloc_space;
			v[2] = s->inuse_objects;
			v[3] = s->inuse_space;
		}
		if (!v[0] && !v[2])
			continue;
		err = pprof__add(p, r->pid, s->stk, s->nstk, v[0], v[1], v[2],
				 v[3]);
		if (err)
			return err;
	}
	return 0;
}

int64_t gorow__rate(const struct mt_row *r)
{
	return r->go && r->go->rate > 0 ? r->go->rate : 0;
}

