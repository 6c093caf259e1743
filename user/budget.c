// SPDX-License-Identifier: GPL-2.0
/* The overhead budget of exact tracing (budget.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "app.h"
#include "attach.h"
#include "budget.h"
#include "memtrace.skel.h"
#include "procfs.h"
#include "util.h"

#define CALIB_CALLS	2000

/*
 * Probed in calibration.  It starts as malloc's entry does, with a push
 * the kernel emulates; a compiler would make an empty function a lone
 * ret, which is single-stepped and costs several times more.
 */
#ifdef __x86_64__
void budget_calib_target(void);
__asm__(".text\n"
	".globl budget_calib_target\n"
	".type budget_calib_target, @function\n"
	"budget_calib_target:\n"
	"	push %rbp\n"
	"	pop %rbp\n"
	"	ret\n"
	".size budget_calib_target, .-budget_calib_target\n");
#else
__attribute__((noinline)) void budget_calib_target(void)
{
	__asm__ volatile("" ::: "memory");
}
#endif

/* The file offset of code at addr in our own executable. */
static long self_offset(uintptr_t addr)
{
	struct procfs_maps *maps;
	long ret = procfs__read_maps(0, &maps);
	int i;

	if (ret)
		return ret;
	ret = -ENOENT;
	for (i = 0; i < maps->n && ret < 0; i++)
		if (addr >= maps->m[i].start && addr < maps->m[i].end)
			ret = addr - maps->m[i].start + maps->m[i].pgoff;
	procfs__maps_put(maps);
	return ret;
}

static double time_calls(void)
{
	uint64_t t0 = now_ns();
	int i;

	for (i = 0; i < CALIB_CALLS; i++)
		budget_calib_target();
	return (now_ns() - t0) / 1e9;
}

double budget__calibrate(struct memtrace_bpf *skel)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	long off = self_offset((uintptr_t)budget_calib_target);
	struct bpf_link *l;
	double bare, probed;

	if (off < 0)
		return 0;
	bare = time_calls();
	/* our own pid only: nobody else pays for it */
	l = bpf_program__attach_uprobe_opts(skel->progs.floor_enter, getpid(),
					    "/proc/self/exe", off, &uo);
	if (!l)
		return 0;
	time_calls();			/* the first hits settle the probe */
	probed = time_calls();
	bpf_link__destroy(l);
	return probed > bare ? (probed - bare) / CALIB_CALLS : 0;
}

/* utime + stime of pid, in seconds. */
static double cpu_secs(int pid)
{
	struct procfs_stat st;

	if (procfs__read_stat(pid, &st))
		return -1;
	return (double)(st.utime + st.stime) / sysconf(_SC_CLK_TCK);
}

/*
 * A probed allocation pays an entry and a return probe, a free one entry
 * probe: each about the floor (the programs themselves add ~10%).
 */
static void row_cost(struct app *app, struct mt_row *r)
{
	double cpu = cpu_secs(r->pid), used, spent;

	r->cost_pct = -1;
	if (cpu < 0 || !r->probed || !app->floor_s) {
		r->cpu_prev = cpu;
		r->hits_prev = r->cur.allocs * 2 + r->cur.frees;
		return;
	}
	used = cpu - r->cpu_prev;
	spent = (r->cur.allocs * 2 + r->cur.frees - r->hits_prev) *
		app->floor_s;
	if (r->cpu_prev > 0 && used > 0)
		r->cost_pct = spent >= used ? 100 : spent * 100 / used;
	else if (r->cpu_prev > 0 && spent > 0)
		r->cost_pct = 100;	/* ticks too coarse to see yet */
	else if (r->cpu_prev > 0)
		r->cost_pct = 0;
	r->cpu_prev = cpu;
	r->hits_prev = r->cur.allocs * 2 + r->cur.frees;
}

/*
 * Over budget: its per-process probes go (node-wide ones, of --exact and
 * -- CMD, serve every process at once and cannot go for one).
 */
static void over_budget(struct app *app, struct mt_row *r)
{
	char comm[64];

	if (app__node_probes(app) || r->budget_stopped)
		return;
	r->budget_stopped = true;
	attach__forget(app->attach, r->pid, r->id);
	r->probed = r->exact = false;
	sanitize(r->comm, sizeof(r->comm), comm, sizeof(comm));
	fprintf(stderr, "memtrace: pid %d (%s): exact tracing cost %.0f%% of "
		"its CPU time, over --max-overhead %g%%: stopped; its heap "
		"numbers stay as they were\n", r->pid, comm, r->cost_pct,
		app->env.max_overhead);
}

void budget__refresh(struct app *app)
{
	int i;

	for (i = 0; i < table__nr(app->table); i++) {
		struct mt_row *r = table__row(app->table, i);

		if (r->exited)
			continue;
		row_cost(app, r);
		if (app->env.max_overhead > 0 &&
		    r->cost_pct > app->env.max_overhead)
			over_budget(app, r);
	}
}
