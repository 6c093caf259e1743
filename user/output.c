// SPDX-License-Identifier: GPL-2.0
/*
 * Batch (top -b style) and JSON Lines views.  Both render the same table
 * model; every string that came from a process is escaped on the way out.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "attach.h"
#include "cfi.h"
#include "collect.h"
#include "gorow.h"
#include "json.h"
#include "jsonrow.h"
#include "sites.h"
#include "util.h"

uint64_t output__lost(const struct app *app)
{
	const uint64_t *c = app->counters;

	return c[MT_CNT_RB_DROPS] + c[MT_CNT_BLOCKS_FULL] +
	       c[MT_CNT_INFLIGHT_FULL] + c[MT_CNT_PROCS_FULL] +
	       c[MT_CNT_ASLEEP];
}

/* The text columns every batch row has, escaped for a terminal. */
struct row_texts {
	char comm[80], site[160], cg[160], lim[16], eta[16], cost[48];
};

static void row_texts(const struct mt_row *r, struct row_texts *t)
{
	sanitize(r->comm, sizeof(r->comm), t->comm, sizeof(t->comm));
	sanitize(r->top_site, sizeof(r->top_site), t->site, sizeof(t->site));
	sanitize(r->cgroup, sizeof(r->cgroup), t->cg, sizeof(t->cg));
	if (r->cg_limit)
		snprintf(t->lim, sizeof(t->lim), "%.0f%%",
			 r->cg_usage * 100.0 / r->cg_limit);
	else
		t->lim[0] = '\0';
	human_secs(t->eta, sizeof(t->eta), r->cg_limit ? r->cg_eta_s : -1);
	/* what exact tracing costs it, or why it stopped */
	t->cost[0] = '\0';
	if (r->budget_stopped)
		snprintf(t->cost, sizeof(t->cost), " <over --max-overhead: "
			 "stopped>");
	else if (r->probed && r->cost_pct >= 0)
		snprintf(t->cost, sizeof(t->cost), " <probes %.0f%% cpu>",
			 r->cost_pct);
}

/*
 * The node view's rows: no allocator is probed, so the columns are what
 * costs nothing per allocation.  RSS and its split, heap (brk), mmap and
 * page faults are exact; FAULT/s and the growth site are estimates from
 * sampled page faults.  A row traced exactly on demand says so (EXACT)
 * and shows its live heap.
 */
static void batch_growth(struct app *app, FILE *f)
{
	int i, n = table__nr(app->table);
	char b[8][16], gline[256];

	fprintf(f, "node view: no allocator probes; RSS ANON FILE SHMEM HEAP "
		"MMAP PF/s exact; FAULT/s and GROWTH SITE are estimates from "
		"page faults sampled every %lluK\n",
		(unsigned long long)app->env.fault_sample >> 10);
	fprintf(f, "%7s %-16s %8s %8s %8s %8s %8s %8s %7s %8s %8s %5s %6s %-16s %s\n",
		"PID", "COMM", "RSS", "ANON", "FILE", "SHMEM", "HEAP", "MMAP",
		"PF/s", "FAULT/s", "LIVE", "LIM%", "TO-LIM", "CGROUP",
		"GROWTH SITE");
	for (i = 0; i < n; i++) {
		struct mt_row *r = table__row(app->table, i);
		struct row_texts t;

		row_texts(r, &t);
		human_bytes(b[0], sizeof(b[0]), r->rss_bytes);
		human_bytes(b[1], sizeof(b[1]), r->rss_anon);
		human_bytes(b[2], sizeof(b[2]), r->rss_file);
		human_bytes(b[3], sizeof(b[3]), r->rss_shmem);
		human_bytes(b[4], sizeof(b[4]), r->brk_bytes);
		human_bytes(b[5], sizeof(b[5]), r->mmap_bytes);
		human_bytes(b[6], sizeof(b[6]), r->fault_bps);
		/* a Go heap is read from its runtime: known without probes */
		if (r->probed || r->go)
			human_bytes(b[7], sizeof(b[7]), r->live_bytes);
		else
			snprintf(b[7], sizeof(b[7]), "-");
		fprintf(f, "%7d %-16s %8s %8s %8s %8s %8s %8s %7.0f %8s %8s %5s %6s %-16s %s%s%s%s\n",
			r->pid, t.comm, b[0], b[1], b[2], b[3], b[4], b[5],
			r->pf_ps, b[6], b[7], t.lim, t.eta, t.cg[0] ? t.cg : "-",
			t.site, r->probed ? " <exact>" : "", t.cost,
			r->exited ? " <exited>" : "");
		if (gorow__line(r, gline, sizeof(gline)))
			fprintf(f, "%7s %s\n", "", gline);
	}
	fputc('\n', f);
	fflush(f);
}

/*
 * How stacks were walked, in one line (the batch header, the live
 * table's): stacks and their mean depth, steps by CFI rule and by frame
 * pointer, steps blind (code with no CFI known: the frame pointer tried,
 * a caller may be missed; "pending" of them while a file's CFI was still
 * compiling), stacks cut at the depth limit, code mappings the kernel's
 * per-process table had no room for.  The same counters as JSON's
 * "unwind".  brief: the live table's short form.  0 when there is
 * nothing to say (no stacks, or --no-cfi: no counters).
 */
int output__unwind_line(const struct app *app, char *buf, size_t len,
			bool brief)
{
	const uint64_t *u = app->unwind_stats;
	double depth = u[MT_UW_STACKS] ?
		(double)u[MT_UW_FRAMES] / u[MT_UW_STACKS] : 0;

	buf[0] = '\0';
	if (!app->env.stacks)
		return 0;
	if (!app->cfi)
		return brief ? 0 : snprintf(buf, len, "stacks: by frame pointer "
					   "only (--no-cfi), not counted");
	if (brief)
		return snprintf(buf, len, "depth %.1f  blind %llu  cut %llu  "
				"maps-full %llu", depth,
				(unsigned long long)u[MT_UW_UNKNOWN],
				(unsigned long long)u[MT_UW_TRUNCATED],
				(unsigned long long)u[MT_UW_MAPS_FULL]);
	return snprintf(buf, len, "stacks: %llu  depth: %.1f  steps: cfi %llu "
			"fp %llu blind %llu (pending %llu)  truncated: %llu  "
			"maps full: %llu",
			(unsigned long long)u[MT_UW_STACKS], depth,
			(unsigned long long)u[MT_UW_CFI],
			(unsigned long long)u[MT_UW_FP],
			(unsigned long long)u[MT_UW_UNKNOWN],
			(unsigned long long)u[MT_UW_PENDING],
			(unsigned long long)u[MT_UW_TRUNCATED],
			(unsigned long long)u[MT_UW_MAPS_FULL]);
}

void output__batch(struct app *app, bool final)
{
	FILE *f = app->out;
	char tbuf[32], b[8][16], peak[16], gline[256], ubuf[256];
	time_t now = time(NULL);
	int i, n = table__nr(app->table);
	uint64_t lost = output__lost(app);

	strftime(tbuf, sizeof(tbuf), "%H:%M:%S", localtime(&now));
	fprintf(f, "memtrace - %s%s  procs: %d  events/s: %.0f  lost: %llu%s",
		tbuf, final ? " (final)" : "", n, app->events_ps,
		(unsigned long long)lost, lost ? " (numbers may be low)" : "");
	if (app->attaching)
		fprintf(f, "  attaching: %d processes to go", app->attaching);
	fputc('\n', f);
	if (output__unwind_line(app, ubuf, sizeof(ubuf), false))
		fprintf(f, "%s\n", ubuf);
	if (app__growth_view(app)) {
		batch_growth(app, f);
		return;
	}
	fprintf(f, "%7s %-16s %8s %8s %8s %8s %8s %8s %8s %8s %7s %5s %5s %6s %-16s %s\n",
		"PID", "COMM", "LIVE", "PEAK", "OBJS", "GROW/s", "ALLOC/s", "FREE/s",
		"MMAP", "RSS", "PF/s", "LOST", "LIM%", "TO-LIM", "CGROUP",
		"TOP SITE");
	for (i = 0; i < n; i++) {
		struct mt_row *r = table__row(app->table, i);
		struct row_texts t;

		row_texts(r, &t);
		human_bytes(b[0], sizeof(b[0]), r->live_bytes);
		human_bytes(peak, sizeof(peak), r->peak_bytes);
		human_bytes(b[1], sizeof(b[1]), r->growth_bps);
		human_bytes(b[2], sizeof(b[2]), r->alloc_bps);
		human_bytes(b[3], sizeof(b[3]), r->free_bps);
		human_bytes(b[4], sizeof(b[4]), r->mmap_bytes);
		human_bytes(b[5], sizeof(b[5]), r->rss_bytes);
		/* not cut to width: a cut could split an escape sequence */
		fprintf(f, "%7d %-16s %8s %8s %8lld %8s %8s %8s %8s %8s %7.0f %5llu%s%5s %6s %-16s %s%s%s\n",
			r->pid, t.comm, b[0], peak, (long long)r->live_allocs, b[1],
			b[2], b[3], b[4], b[5], r->pf_ps,
			(unsigned long long)r->lost_events,
			r->loss ? "!" : " ", t.lim, t.eta,
			t.cg[0] ? t.cg : "-", t.site, t.cost,
			r->exited ? " <exited>" : "");
		if (gorow__line(r, gline, sizeof(gline)))
			fprintf(f, "%7s %s\n", "", gline);
	}
	fputc('\n', f);
	/* -- CMD: what the command still held when it exited, and where */
	if (final && app->env.mode == MODE_CMD) {
		struct mt_row *r = table__get(app->table, app->child);

		if (r && r->exited)
			sites__print_held(app, r, f, 10);
	}
	fflush(f);
}

/*
 * How stacks were walked, never guessed: frames by CFI rule, by frame
 * pointer (code that keeps one), from code with no CFI known (frame
 * pointer tried: may skip a caller), stacks cut at the depth limit, and
 * code mappings a process table had no room for.
 */
static void unwind_json(struct app *app, struct json *j)
{
	const uint64_t *u = app->unwind_stats;
	struct cfi_stats cs;

	cfi__stats(app->cfi, &cs);
	json__key(j, "unwind");
	json__obj(j);
	json__kbool(j, "cfi", app->cfi);
	json__ku64(j, "stacks", u[MT_UW_STACKS]);
	json__ku64(j, "frames", u[MT_UW_FRAMES]);
	json__kdbl(j, "mean_depth", u[MT_UW_STACKS] ?
		   (double)u[MT_UW_FRAMES] / u[MT_UW_STACKS] : 0, 1);
	json__ku64(j, "cfi_steps", u[MT_UW_CFI]);
	json__ku64(j, "fp_steps", u[MT_UW_FP]);
	json__ku64(j, "unknown_steps", u[MT_UW_UNKNOWN]);
	json__ku64(j, "pending_steps", u[MT_UW_PENDING]);
	json__ku64(j, "signal_frames", u[MT_UW_SIGNAL]);
	json__ku64(j, "truncated", u[MT_UW_TRUNCATED]);
	json__ku64(j, "maps_full", u[MT_UW_MAPS_FULL]);
	json__ki64(j, "files", cs.files);
	json__ki64(j, "files_failed", cs.failed);
	json__ki64(j, "files_queued", cs.queued);
	json__ku64(j, "rows", cs.rows);
	json__ku64(j, "rows_max", cs.max_rows);
	json__kdbl(j, "compile_ms", cs.compile_ms, 1);
	json__obj_end(j);
}

void output__json(struct app *app, bool final)
{
	const uint64_t *c = app->counters;
	int i, n = table__nr(app->table);
	const char *view;
	struct json j;

	json__init(&j, app->out);
	json__obj(&j);
	json__kdbl(&j, "ts", now_wall(), 3);
	json__kstr(&j, "type", final ? "final" : "refresh", 7);
	/* growth: the node view, no allocator probe unless a row is exact */
	view = app__growth_view(app) ? "growth" : "exact";
	json__kstr(&j, "view", view, strlen(view));
	json__ku64(&j, "lost_events", output__lost(app));
	json__key(&j, "lost");
	json__obj(&j);
	json__ku64(&j, "ringbuf", c[MT_CNT_RB_DROPS]);
	json__ku64(&j, "blocks_full", c[MT_CNT_BLOCKS_FULL]);
	json__ku64(&j, "inflight_full", c[MT_CNT_INFLIGHT_FULL]);
	json__ku64(&j, "procs_full", c[MT_CNT_PROCS_FULL]);
	json__ku64(&j, "sites_full", c[MT_CNT_SITES_FULL]);
	json__ku64(&j, "stack_errors", c[MT_CNT_STACK_ERR]);
	json__ku64(&j, "asleep", c[MT_CNT_ASLEEP]);
	json__obj_end(&j);
	json__kdbl(&j, "events_ps", app->events_ps, 1);
	/* allocator files probed (per process or node-wide): 0 in the node
	 * view until a row is traced exactly */
	json__ku64(&j, "allocator_probes", attach__nr_libs(app->attach));
	/* one uprobe hit, measured at start: the unit of probe_cost_pct */
	json__kdbl(&j, "probe_floor_ns", app->floor_s * 1e9, 1);
	/* processes still waiting for their probes (the attach thread's) */
	json__ku64(&j, "attach_pending", app->attaching);
	unwind_json(app, &j);
	json__key(&j, "processes");
	json__arr(&j);
	for (i = 0; i < n; i++)
		jsonrow__write(&j, app, table__row(app->table, i),
			       app->env.top_sites);
	json__arr_end(&j);
	json__obj_end(&j);
	fputc('\n', app->out);
	fflush(app->out);
}

/*
 * The OOM killer chose a traced process: the event, and the victim's
 * last row in the row schema when it had one.
 */
void output__oom_json(struct app *app, const struct mt_event *e)
{
	struct mt_row *r = table__get(app->table, e->tgid);
	struct json j;

	json__init(&j, app->out);
	json__obj(&j);
	json__kdbl(&j, "ts", now_wall(), 3);
	json__kstr(&j, "type", "oom", 3);
	json__ku64(&j, "pid", e->tgid);
	json__kstr(&j, "comm", e->comm, sizeof(e->comm));
	json__ku64(&j, "uid", e->oom.uid);
	if (r) {
		json__key(&j, "row");
		jsonrow__write(&j, app, r, app->env.top_sites);
	}
	json__obj_end(&j);
	fputc('\n', app->out);
	fflush(app->out);
}
