// SPDX-License-Identifier: GPL-2.0
/*
 * Ring-buffer records: one switch on the record type updates the table.
 * Anything slower than that (reading mappings and ELF files, attaching
 * probes, post-mortems) is queued per row and run by the loop's turn
 * (app__work_run), under a time budget; probes are attached by the
 * attach thread.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "attach.h"
#include "collect.h"
#include "dump.h"
#include "goheap.h"
#include "gorow.h"
#include "syms.h"
#include "unwind.h"
#include "cfi.h"
#include "procfs.h"
#include "util.h"
#include "watchdog.h"

#define MT_PROT_EXEC		0x4
#define MT_MAP_ANONYMOUS	0x20

void app__warn_no_libc(struct app *app, struct mt_row *r)
{
	char comm[64];

	if (r->warned)
		return;
	r->warned = true;
	sanitize(r->comm, sizeof(r->comm), comm, sizeof(comm));
	/* a Go program's heap is its runtime's, read at every refresh */
	if (gorow__detect(app, r)) {
		if (app->env.verbose)
			fprintf(stderr, "memtrace: pid %d (%s): a Go program "
				"with no C library: its Go heap is read from "
				"the runtime, no C allocator is probed\n",
				r->pid, comm);
		return;
	}
	fprintf(stderr, "memtrace: warning: pid %d (%s): no C library mapped "
		"and no malloc/free symbols (stripped static binary?): heap "
		"calls are not traced, mmap/brk and page faults are\n",
		r->pid, comm);
}

/*
 * Frameless allocator callers matter to allocation stacks only: the node
 * view scans the processes it traces exactly, not every exec.
 */
static bool wants_unwind(const struct app *app, const struct mt_row *r)
{
	return app->unwind && (!app__growth_view(app) || r->exact);
}

/* Does row r get allocator probes of its own (or node-wide ones)? */
static bool wants_probe(const struct app *app, const struct mt_row *r)
{
	return !r->budget_stopped && (app__node_probes(app) ||
				      app->env.mode == MODE_PIDS || r->exact);
}

int app__prepare_exact(struct app *app, int pid, struct procfs_maps *maps)
{
	int err = collect__track(app->collect, pid, app->env.sample_bytes);

	if (err)
		return err;
	/* read its mappings while it lives: its stacks symbolize later */
	syms__load_pid(app->syms, pid, maps);
	if (app->unwind)
		unwind__scan_pid(app->unwind, pid, maps);
	cfi__scan_pid(app->cfi, pid, maps);
	return 0;
}

int app__trace_pid(struct app *app, int pid)
{
	struct mt_row *r = app__row_new(app, pid, 0);
	int err;

	if (!r)
		return -ENOMEM;
	if (r->probed)
		return 0;
	r->exact = true;
	if (!r->comm[0])
		procfs__read_comm(pid, r->comm, sizeof(r->comm));
	/* counted from now; mappings and probes in the loop's turn */
	err = collect__track(app->collect, pid, app->env.sample_bytes);
	if (err)
		return err;
	app__work(app, r, WORK_PREPARE | WORK_PROBE, 0);
	return 0;
}

/* Row r's own probes go (the node view's exact off, --max-overhead). */
static void unprobe(struct app *app, struct mt_row *r)
{
	attach__forget(app->attach, r->pid, r->id);
	r->work &= ~WORK_PROBE;
	r->exact = r->probed = false;
}

int app__set_exact(struct app *app, int pid, bool on)
{
	struct mt_row *r = table__get(app->table, pid);

	if (!r || r->exited)
		return -ESRCH;
	if (!on) {
		unprobe(app, r);
		return 0;
	}
	/* probed by the attach thread: the table keeps its pace meanwhile */
	r->exact = true;
	r->probe_fails = 0;
	app__work(app, r, WORK_PREPARE | WORK_PROBE, 0);
	return 0;
}

void app__work(struct app *app, struct mt_row *r, unsigned int work,
	       uint64_t delay_ns)
{
	if (!r->work) {
		/* one item per row: more work for it joins that one */
		if (array_grow(&app->work, &app->capwork, app->nwork,
			       sizeof(app->work[0])))
			return;
		app->work[app->nwork++] = (struct work_item){ r->pid, r->id };
		r->work_due = 0;
	}
	/* the soonest asked for: a new mapping should not wait a retry */
	if (!delay_ns)
		r->work_due = 0;
	else if (!r->work || r->work_due)
		r->work_due = now_ns() + delay_ns;
	r->work |= work;
}

/* Hand row r's probing to the attach thread; false: wait for one under way. */
static bool probe(struct app *app, struct mt_row *r)
{
	if (r->attaching)
		return false;
	if (attach__queue(app->attach, app__node_probes(app) ?
			  ATTACH_OP_NODE_LIB : ATTACH_OP_PID,
			  r->pid, r->id, NULL, 0))
		return false;
	r->attaching = true;
	return true;
}

/* Row r's mappings for the symbolizer, if asked for; the bits left. */
static unsigned int do_syms(struct app *app, struct mt_row *r,
			    unsigned int w, struct procfs_maps *maps)
{
	/* gone already: its code is where its parent's was */
	if ((w & WORK_SYMS_FORK) && syms__load_pid(app->syms, r->pid, maps))
		syms__copy_pid(app->syms, r->pid, r->ppid);
	else if (w & WORK_SYMS)
		syms__load_pid(app->syms, r->pid, maps);
	return w & ~(WORK_SYMS | WORK_SYMS_FORK);
}

/* Row r's queued work; returns what is left for a later turn. */
static unsigned int do_work(struct app *app, struct mt_row *r,
			    unsigned int w)
{
	struct procfs_maps *maps = NULL;

	/* pid's mappings, read once for all this turn does with them */
	if ((w & (WORK_PREPARE | WORK_SYMS | WORK_SYMS_FORK | WORK_UNWIND |
		  WORK_CFI)) && procfs__read_maps(r->pid, &maps))
		maps = NULL;
	if (w & WORK_PREPARE) {
		if (!r->exited)
			app__prepare_exact(app, r->pid, maps);
		w &= ~(WORK_PREPARE | WORK_SYMS | WORK_UNWIND | WORK_CFI);
	}
	w = do_syms(app, r, w, maps);
	if ((w & WORK_UNWIND) && wants_unwind(app, r))
		unwind__scan_pid(app->unwind, r->pid, maps);
	if (w & WORK_CFI)
		cfi__scan_pid(app->cfi, r->pid, maps);
	procfs__maps_put(maps);
	w &= WORK_PROBE;
	/* an exited process needs no probes; one that asks none neither */
	if (w && (r->exited || !wants_probe(app, r)))
		w = 0;
	if (w && probe(app, r))
		w = 0;
	return w;
}

/*
 * What the attach thread did.  A process whose C library is not mapped
 * yet (right after exec) is tried again at the next refreshes, a few
 * times, before it is said to have none.
 */
static void attach_results(struct app *app)
{
	struct attach_result res[64];
	int i, n;

	while ((n = attach__results(app->attach, res, ARRAY_SIZE(res))) > 0) {
		for (i = 0; i < n; i++) {
			struct mt_row *r = table__get(app->table, res[i].pid);
			int err = res[i].err;

			/* -- the node with --exact, at start: rows of those
			 * with an allocator (or a Go heap) */
			if (!r && !res[i].id && res[i].op == ATTACH_OP_NODE_LIB &&
			    (!err || goheap__is_go(res[i].pid))) {
				r = table__add(app->table, res[i].pid);
				if (r) {
					r->probed = !err;
					app__work(app, r, WORK_PREPARE, 0);
				}
				continue;
			}
			/* forgotten meanwhile, or the pid is another's now */
			if (!r || r->id != res[i].id)
				continue;
			if (res[i].op == ATTACH_OP_FILE) {
				if (err > 0)
					r->probed = true;
				continue;
			}
			r->attaching = false;
			/* its exact tracing was turned off meanwhile */
			if (!wants_probe(app, r))
				continue;
			if (!err) {
				r->probed = true;
				continue;
			}
			if (r->exited)
				continue;
			if (err == -ENOENT && ++r->probe_fails < 3) {
				app__work(app, r, WORK_PROBE,
					  app->env.delay * 1e9);
				continue;
			}
			if (err == -ENOENT && app->env.mode != MODE_NODE)
				app__warn_no_libc(app, r);
			else if (err != -ENOENT && err != -ESRCH)
				fprintf(stderr, "memtrace: pid %d: cannot "
					"attach: %s\n", r->pid,
					strerror(-err));
			if (app__growth_view(app))
				r->exact = false;
		}
	}
}

/*
 * At exit, before the final table: what is queued, and the attach
 * thread's last jobs (a short command's probes, found from the kernel's
 * records), waited for up to ms.
 */
void app__work_settle(struct app *app, int ms)
{
	uint64_t end = now_ns() + ms * 1000000ull;

	for (;;) {
		app__work_run(app, (uint64_t)ms * 1000000ull);
		if (!attach__pending(app->attach) || now_ns() > end)
			break;
		watchdog__beat();
		usleep(5000);
	}
	app__work_run(app, 0);
}

/*
 * OOM records: the post-mortem (a capture of the victim's cgroup and
 * sites) is no work for the ring-buffer callback.
 */
static void run_ooms(struct app *app)
{
	char comm[64];
	int i;

	for (i = 0; i < app->nooms; i++) {
		const struct mt_event *e = &app->ooms[i];

		/* dump__oom names the container and the top growing site */
		if (app->dump) {
			dump__oom(app->dump, e);
		} else {
			sanitize(e->comm, sizeof(e->comm), comm, sizeof(comm));
			fprintf(stderr, "memtrace: OOM killer chose pid %u "
				"(%s)\n", e->tgid, comm);
		}
		if (app->env.view == VIEW_JSON)
			output__oom_json(app, e);
	}
	app->nooms = 0;
}

/*
 * The queued work, oldest first, until the budget is spent: the rest
 * waits for the next turn, so refreshes keep their interval while a
 * storm of new processes is read and probed.  Work of a row forgotten
 * meanwhile (gone, its pid reused) is dropped.
 */
void app__work_run(struct app *app, uint64_t budget_ns)
{
	uint64_t now = now_ns(), end = now + budget_ns;
	int i, kept = 0, attaching = 0;

	attach_results(app);
	run_ooms(app);
	for (i = 0; i < app->nwork; i++) {
		struct work_item it = app->work[i];
		struct mt_row *r = table__get(app->table, it.pid);

		if (!r || r->id != it.id)
			continue;
		if (r->work_due <= now && now_ns() <= end)
			r->work = do_work(app, r, r->work);
		if (!r->work)
			continue;
		attaching += !!(r->work & WORK_PROBE);
		app->work[kept++] = it;
	}
	app->nwork = kept;
	app->attaching = attaching + attach__pending(app->attach);
}

/*
 * Code mapped from a file, with its path from the kernel: kept for the
 * symbolizer in case the process exits before its maps are read.
 */
static void on_mapfile(struct app *app, struct mt_row *r,
		       const struct mt_event *e)
{
	char path[MT_MAPFILE_COMPS * (MT_MAPFILE_COMP_LEN + 1) + 1];
	size_t len = 0;
	int i;

	if (e->mapfile.truncated || !e->mapfile.ncomp ||
	    e->mapfile.ncomp > MT_MAPFILE_COMPS)
		return;
	/* components come innermost first */
	for (i = e->mapfile.ncomp - 1; i >= 0; i--)
		len += snprintf(path + len, sizeof(path) - len, "/%.*s",
				MT_MAPFILE_COMP_LEN, e->mapfile.comp[i]);
	syms__note_map(app->syms, e->tgid, e->mapfile.start,
		       e->mapfile.start + e->mapfile.len, e->mapfile.pgoff,
		       e->mapfile.ino, path);
	/* the kernel maps it for the walk; its CFI is compiled here */
	cfi__note_file(app->cfi, path, e->mapfile.ino);
	/*
	 * Node-wide probes: a new allocator (another libc, jemalloc) is
	 * probed from the kernel's record even when the process that
	 * mapped it has exited before its /proc/PID/maps could be read.
	 */
	if (app__node_probes(app))
		attach__queue(app->attach, ATTACH_OP_FILE, e->tgid, r->id,
			      path, e->mapfile.ino);
}

static void on_exit_event(struct app *app, const struct mt_event *e)
{
	struct mt_row *r = table__get(app->table, e->tgid);
	struct mt_proc st;

	if (!r)
		return;
	mt_proc_sum(&e->exit.stats, &st);
	table__set_stats(app->table, r, &st, e->ts);
	r->exited = true;
	r->exit_code = e->exit.exit_code;
	r->exit_ts = e->ts;
	/* its own probes go now: the pid may soon be another's */
	if (!app__node_probes(app) && (r->probed || r->attaching))
		attach__forget(app->attach, r->pid, r->id);
}

#define EV_SIZE(member) \
	(offsetof(struct mt_event, member) + \
	 sizeof(((struct mt_event *)0)->member))

static size_t record_size(uint32_t type)
{
	switch (type) {
	case MT_EV_EXIT:
		return EV_SIZE(exit);
	case MT_EV_EXEC:
		return EV_SIZE(exec);
	case MT_EV_OOM:
		return EV_SIZE(oom);
	case MT_EV_FORK:
		return EV_SIZE(fork);
	case MT_EV_MAPFILE:
		return EV_SIZE(mapfile);
	default:
		return EV_SIZE(mm);
	}
}

/*
 * A forked child's code is its parent's as it is now, and "now" is this
 * record: by the child's turn in the queue the parent may have exec'd (a
 * shell's `$(...)` then `exec`), and /proc would give the new image's
 * maps.  So the parent's, as the records so far built them, are copied
 * at once (memory only); the child's own are read at its turn, and the
 * copy stays if it is gone.  WORK_SYMS_FORK: no parent's to copy yet.
 */
static unsigned int fork_syms(struct app *app, struct mt_row *r)
{
	return syms__copy_pid(app->syms, r->pid, r->ppid) ? WORK_SYMS_FORK :
							      WORK_SYMS;
}

static int handle_record(struct app *app, const struct mt_event *e,
			 size_t len)
{
	struct mt_row *r;
	bool code, probe;

	/* records are as long as their type needs: check before reading */
	if (len < offsetof(struct mt_event, mm) ||
	    len < record_size(e->type))
		return 0;
	app->events++;
	if (e->type == MT_EV_OOM) {
		/* its post-mortem is the loop's work (run_ooms) */
		if (array_grow(&app->ooms, &app->capooms, app->nooms,
			       sizeof(*e)))
			return -ENOMEM;
		memcpy(&app->ooms[app->nooms++], e, record_size(e->type));
		return 0;
	}
	if (e->type == MT_EV_EXIT) {
		on_exit_event(app, e);
		return 0;
	}
	if (e->type == MT_EV_FORK)
		r = app__row_new(app, e->tgid, e->fork.gen);
	else if (e->type == MT_EV_EXEC)
		r = app__row_new(app, e->tgid, 0);
	else
		r = table__add(app->table, e->tgid);
	if (!r)
		return -ENOMEM;
	switch (e->type) {
	case MT_EV_EXEC:
		/*
		 * The old image's sites and stacks are dead now; its blocks
		 * too (the kernel also drops those it meets again).
		 */
		if (e->exec.old_gen)
			collect__forget_gen(app->collect, e->tgid,
					    e->exec.old_gen);
		row__reset(r);
		r->syms_gen = e->exec.new_gen;
		r->syms_stale = 0;
		memcpy(r->comm, e->comm, MT_COMM_LEN);
		memcpy(r->exe, e->exec.filename, sizeof(r->exe));
		r->exe[sizeof(r->exe) - 1] = '\0';
		/*
		 * The kernel mapped the new executable: read it while alive
		 * (the loop's next turn), and the dynamic loader's CFI, which
		 * exec mapped without an mmap.  musl's loader is its libc and
		 * is mapped by exec itself: probe now; glibc shows up with an
		 * mmap a moment later.
		 */
		/* what a refresh read since the exec is kept (syms__exec) */
		syms__exec(app->syms, e->tgid, e->exec.new_gen);
		/*
		 * A fork not yet handled is over: copying the parent's maps
		 * now (the child gone before its turn) would put the shell's
		 * code over the kernel's records of the new image's.
		 */
		r->work &= ~WORK_SYMS_FORK;
		app__work(app, r, WORK_SYMS | WORK_UNWIND | WORK_CFI |
			  WORK_PROBE, 0);
		break;
	case MT_EV_FORK:
		r->ppid = e->ppid;
		memcpy(r->comm, e->comm, MT_COMM_LEN);
		/*
		 * MODE_CMD and node probes are node-wide: the child is
		 * covered.  -p probes are per process: a forked worker (no
		 * exec, so no mmap of its libc to notice) gets its own now;
		 * the kernel already counts it from the fork.
		 */
		r->probed = app__node_probes(app);
		/* the node view: a child of an exact row is exact too */
		if (app__growth_view(app)) {
			struct mt_row *pr = table__get(app->table, e->ppid);

			r->exact = pr && pr->exact;
		}
		app__work(app, r, fork_syms(app, r) |
			  (r->probed ? 0 : WORK_PROBE), 0);
		break;
	case MT_EV_MMAP:
		if (!e->mm.err)
			row__mmap(r, e->mm.ret, e->mm.len, e->mm.flags);
		/*
		 * New code mapped (ld.so, dlopen): read the mappings now,
		 * while the process lives, so its stacks still symbolize
		 * after it exits.
		 */
		code = !e->mm.err && (e->mm.prot & MT_PROT_EXEC) &&
		       !(e->mm.flags & MT_MAP_ANONYMOUS);
		/*
		 * An exec'd image maps its libc early: probe it at once.  Any
		 * new code may bring another allocator (jemalloc linked in,
		 * dlopen'd): looked for at each code mapping.
		 */
		probe = !r->exited && wants_probe(app, r) &&
			((!r->probed && r->attach_tries++ < 64) || code);
		if (code || probe)
			app__work(app, r, (code ? WORK_SYMS | WORK_UNWIND : 0) |
				  (probe ? WORK_PROBE : 0), 0);
		break;
	case MT_EV_MAPFILE:
		on_mapfile(app, r, e);
		/*
		 * The node view's record of a library's span (no syscall
		 * tracepoint, so no MMAP record follows): its segments are
		 * mapped over it within the same microseconds, read by the
		 * row's next turn; an exact row may have gained an allocator.
		 */
		if (app__growth_view(app) && !r->exited)
			app__work(app, r, WORK_SYMS | WORK_UNWIND |
				  (wants_probe(app, r) ? WORK_PROBE : 0), 0);
		break;
	case MT_EV_MUNMAP:
		if (!e->mm.err)
			row__munmap(r, e->mm.addr, e->mm.len);
		break;
	case MT_EV_MREMAP:
		if (!e->mm.err)
			row__mremap(r, e->mm.addr, e->mm.len, e->mm.ret,
				    e->mm.new_len);
		break;
	case MT_EV_BRK:
		r->cur_brk = e->mm.ret;
		break;
	}
	if (!r->comm[0])
		memcpy(r->comm, e->comm, MT_COMM_LEN);
	return 0;
}

int events__handle(void *ctx, void *data, size_t len)
{
	struct app *app = ctx;
	int err = handle_record(app, data, len);

	/* handled (and consumed); past the drain's budget: stop here */
	if (!err && app->drain_until && now_ns() > app->drain_until)
		return -EAGAIN;
	return err;
}
