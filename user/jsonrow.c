// SPDX-License-Identifier: GPL-2.0
/*
 * The one row schema (see jsonrow.h).  Everything a process put in its
 * name, its cgroup's name, its file paths and its symbols is untrusted:
 * all of it goes out through the emitter's escaped strings.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "gorow.h"
#include "json.h"
#include "jsonrow.h"
#include "sites.h"
#include "syms.h"
#include "watchdog.h"

#define JSONROW_MAX_INLINE	8	/* inlined frames per return address */

static void frame(struct json *j, const struct syms_frame *fr)
{
	char buf[600];

	json__obj(j);
	json__kstr(j, "func", fr->func, sizeof(fr->func));
	json__ku64(j, "offset", fr->offset);
	json__kstr(j, "module", fr->module, sizeof(fr->module));
	json__ku64(j, "module_offset", fr->module_offset);
	if (fr->file[0]) {
		json__kstr(j, "file", fr->file, sizeof(fr->file));
		json__ki64(j, "line", fr->line);
	}
	if (fr->inlined)
		json__kbool(j, "inlined", true);
	syms__format(fr, buf, sizeof(buf));
	json__kstr(j, "name", buf, sizeof(buf));
	json__obj_end(j);
}

void jsonrow__stack(struct json *j, struct app *app, struct mt_row *r,
		    const struct mt_site_row *s)
{
	uint64_t stk[MT_MAX_STACK];
	int i, k, n;

	/* a Go stack as pprof shows it: each inlined call listed once */
	n = syms__go_stack(app->syms, r->pid, s->stack,
			   s->nframes < MT_MAX_STACK ? s->nframes : MT_MAX_STACK,
			   stk);
	json__arr(j);
	for (i = 0; i < n; i++) {
		struct syms_frame fr[JSONROW_MAX_INLINE];
		int nf = syms__resolve_ret(app->syms, r->pid, stk[i], fr,
					   JSONROW_MAX_INLINE);

		for (k = 0; k < nf; k++)
			frame(j, &fr[k]);
	}
	json__arr_end(j);
}

static void sites(struct json *j, struct app *app, struct mt_row *r, int max)
{
	int i, n = r->nsites < max ? r->nsites : max;

	json__key(j, "sites");
	json__arr(j);
	for (i = 0; i < n; i++) {
		const struct mt_site_row *s = &r->sites[i];
		const char *kind = sites__kind(s);
		char name[300];

		json__obj(j);
		/* growth: an estimate from sampled page faults (node view) */
		json__kstr(j, "kind", kind, strlen(kind));
		/* named by the code that asked: see sites__first_user_frame */
		sites__first_user_frame(app, r, s, name, sizeof(name));
		json__kstr(j, "site", name, sizeof(name));
		json__kstr(j, "heap", s->go ? "go" : "c", 2);
		json__ki64(j, "live_bytes", s->live_bytes);
		json__ki64(j, "live_allocs", s->live_allocs);
		json__ku64(j, "alloc_bytes", s->alloc_bytes);
		json__ku64(j, "allocs", s->allocs);
		json__kdbl(j, "growth_bps", s->growth_bps, 1);
		json__key(j, "stack");
		jsonrow__stack(j, app, r, s);
		json__obj_end(j);
	}
	json__arr_end(j);
}

void jsonrow__write(struct json *j, struct app *app, struct mt_row *r,
		    int top_sites)
{
	watchdog__beat();	/* thousands of rows: progress, not a hang */

	json__obj(j);
	json__ki64(j, "pid", r->pid);
	json__kstr(j, "comm", r->comm, sizeof(r->comm));
	json__ki64(j, "live_bytes", r->live_bytes);
	json__ki64(j, "live_allocs", r->live_allocs);
	json__ki64(j, "peak_bytes", r->peak_bytes);
	json__ku64(j, "alloc_bytes", r->cur.alloc_bytes);
	json__ku64(j, "allocs", r->cur.allocs);
	json__ku64(j, "free_bytes", r->cur.free_bytes);
	json__ku64(j, "frees", r->cur.frees);
	json__ku64(j, "unmatched_frees", r->cur.unmatched_frees);
	json__ku64(j, "mmap_bytes", r->mmap_bytes);
	json__ku64(j, "brk_bytes", r->brk_bytes);
	json__ku64(j, "rss_bytes", r->rss_bytes);
	json__ku64(j, "rss_anon", r->rss_anon);
	json__ku64(j, "rss_file", r->rss_file);
	json__ku64(j, "rss_shmem", r->rss_shmem);
	json__ku64(j, "fault_bytes", r->cur.fault_bytes);
	json__kdbl(j, "fault_bps", r->fault_bps, 1);
	json__ku64(j, "page_faults", r->cur.page_faults);
	json__kdbl(j, "growth_bps", r->growth_bps, 1);
	json__kdbl(j, "alloc_bps", r->alloc_bps, 1);
	json__kdbl(j, "free_bps", r->free_bps, 1);
	json__kdbl(j, "allocs_ps", r->allocs_ps, 1);
	json__kdbl(j, "frees_ps", r->frees_ps, 1);
	json__kdbl(j, "page_faults_ps", r->pf_ps, 1);
	json__ku64(j, "lost_events", r->lost_events);
	json__ku64(j, "lost_sites", r->cur.lost_sites);
	json__kbool(j, "loss", r->loss);
	json__kbool(j, "sampled", r->cur.sampled);
	json__kbool(j, "probed", r->probed);
	json__kbool(j, "exact", r->probed);
	/* estimated share of its CPU time its probes cost; -1: n/a */
	json__kdbl(j, "probe_cost_pct", r->cost_pct, 1);
	json__kbool(j, "budget_stopped", r->budget_stopped);
	json__kbool(j, "exited", r->exited);
	if (r->exited)
		json__ki64(j, "exit_code", r->exit_code);
	json__kstr(j, "cgroup", r->cgroup, sizeof(r->cgroup));
	json__ku64(j, "cg_usage", r->cg_usage);
	json__ku64(j, "cg_limit", r->cg_limit);
	if (r->cg_limit)
		json__kdbl(j, "cg_limit_pct", r->cg_usage * 100.0 / r->cg_limit,
			   2);
	else
		json__knull(j, "cg_limit_pct");
	json__kdbl(j, "cg_eta_s", r->cg_eta_s, 1);
	json__ki64(j, "cg_version", r->cg_version);
	json__ki64(j, "dumps", r->dumps);
	if (top_sites > 0)
		sites(j, app, r, top_sites);
	gorow__json(j, app, r, top_sites);
	json__obj_end(j);
}
