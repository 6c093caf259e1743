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

static void json_ctl(FILE *f, const struct goheap *g)
{
	if (!g->have_ctl && !g->rt.gc_controller) {
		fputs(",\"gogc\":null,\"gomemlimit\":null", f);
	} else {
		if (g->gogc < 0)
			fputs(",\"gogc\":\"off\"", f);
		else
			fprintf(f, ",\"gogc\":%d", g->gogc);
		fprintf(f, ",\"gomemlimit\":%lld", (long long)g->memlimit);
	}
	if (!g->have_ctl) {
		fputs(",\"heap_goal\":null,\"heap_live\":null,"
		      "\"heap_marked\":null,\"total_alloc\":null", f);
		return;
	}
	fprintf(f, ",\"heap_goal\":%llu,\"heap_live\":%llu,"
		"\"heap_marked\":%llu,\"total_alloc\":%llu,"
		"\"heap_alloc_bps\":%.1f",
		(unsigned long long)g->heap_goal,
		(unsigned long long)g->heap_live,
		(unsigned long long)g->heap_marked,
		(unsigned long long)g->total_alloc, g->heap_alloc_bps);
}

void gorow__json(struct app *app, struct mt_row *r, FILE *f)
{
	const struct goheap *g = r->go;
	const char *note;
	int i, n = 0;

	if (!g)
		return;
	fputs(",\"go\":{\"version\":", f);
	json_str(f, g->version, sizeof(g->version));
	fprintf(f, ",\"pie\":%s,\"profiling\":%s", g->pie ? "true" : "false",
		g->prof == GOHEAP_PROF_ON ? "true" : "false");
	note = goheap__note(g);
	fputs(",\"note\":", f);
	if (note)
		json_str(f, note, strlen(note));
	else
		fputs("null", f);
	fprintf(f, ",\"mem_profile_rate\":%lld,\"inuse_bytes\":%lld,"
		"\"inuse_objects\":%lld,\"alloc_bytes\":%lld,"
		"\"alloc_objects\":%lld,\"alloc_bps\":%.1f",
		(long long)g->rate, (long long)g->inuse_bytes,
		(long long)g->inuse_objects, (long long)g->alloc_bytes,
		(long long)g->alloc_objects, g->alloc_bps);
	if (g->have_cycle)
		fprintf(f, ",\"gc_cycles\":%u,\"gc_ps\":%.2f", g->cycle,
			g->gc_ps);
	else
		fputs(",\"gc_cycles\":null,\"gc_ps\":null", f);
	json_ctl(f, g);
	if (g->gc_probed)
		fprintf(f, ",\"gc_probed\":true,\"gc_starts\":%llu,"
			"\"stw_pauses\":%llu,\"stw_total_ns\":%llu,"
			"\"stw_last_ns\":%llu,\"stw_max_ns\":%llu",
			(unsigned long long)g->gc.gc_starts,
			(unsigned long long)g->gc.stw_count,
			(unsigned long long)g->gc.stw_total_ns,
			(unsigned long long)g->gc.stw_last_ns,
			(unsigned long long)g->gc.stw_max_ns);
	else
		fputs(",\"gc_probed\":false", f);
	fprintf(f, ",\"buckets\":%d,\"truncated\":%s,\"read_errors\":%llu",
		g->nsites, g->truncated ? "true" : "false",
		(unsigned long long)g->read_errors);
	fputs(",\"sites\":[", f);
	for (i = 0; i < r->nsites && n < app->env.top_sites; i++) {
		const struct mt_site_row *s = &r->sites[i];

		if (!s->go)
			continue;
		if (n++)
			fputc(',', f);
		fprintf(f, "{\"inuse_bytes\":%lld,\"inuse_objects\":%lld,"
			"\"alloc_bytes\":%llu,\"alloc_objects\":%llu,"
			"\"growth_bps\":%.1f,\"stack\":",
			(long long)s->live_bytes, (long long)s->live_allocs,
			(unsigned long long)s->alloc_bytes,
			(unsigned long long)s->allocs, s->growth_bps);
		sites__json_stack(app, r, s, f);
		fputc('}', f);
	}
	fputs("]}", f);
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

int gorow__write_unpublished(struct app *app, const struct mt_row *r,
			     int dirfd, const char *name)
{
	struct pprof *p = pprof__new(app->syms);
	char path[128];
	int err;

	if (!p)
		return -ENOMEM;
	if (r->go->rate > 0)
		pprof__set_period(p, r->go->rate);
	pprof__set_comm(p, r->pid, r->comm);
	err = gorow__pprof_add(p, r, true);
	/* through the directory fd: pprof writes path.tmp, then renames */
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
	if (!err)
		err = pprof__write(p, path);
	if (!err)
		fchmodat(dirfd, name, 0600, 0);
	pprof__free(p);
	return err;
}

int64_t gorow__rate(const struct mt_row *r)
{
	return r->go && r->go->rate > 0 ? r->go->rate : 0;
}

int64_t gorow__period(struct app *app)
{
	int i;

	for (i = 0; i < table__nr(app->table); i++)
		if (gorow__rate(table__row(app->table, i)))
			return gorow__rate(table__row(app->table, i));
	return 0;
}
