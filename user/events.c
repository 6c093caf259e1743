// SPDX-License-Identifier: GPL-2.0
/* Ring-buffer records: one switch on the record type updates the table. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "attach.h"
#include "collect.h"
#include "dump.h"
#include "gorow.h"
#include "syms.h"
#include "unwind.h"
#include "cfi.h"
#include "util.h"
#include "watchdog.h"

#define MT_PROT_EXEC		0x4
#define MT_MAP_ANONYMOUS	0x20

void app__pending_add(struct app *app, int pid)
{
	int i;

	for (i = 0; i < app->npending; i++)
		if (app->pending[i] == pid)
			return;
	if (array_grow(&app->pending, &app->cappending, app->npending,
		       sizeof(app->pending[0])))
		return;
	app->pending[app->npending++] = pid;
}

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
 * Probe the allocators of pid (its C library, or whatever else defines
 * malloc and free).  Right after exec the library is not mapped yet, so
 * a pid may wait here until an mmap shows it, up to a few refreshes.
 */
/*
 * Frameless allocator callers matter to allocation stacks only: the node
 * view scans the processes it traces exactly, not every exec.
 */
static bool wants_unwind(const struct app *app, const struct mt_row *r)
{
	return app->unwind && (!app__growth_view(app) || r->exact);
}

static int try_probe(struct app *app, int pid)
{
	struct mt_row *r = table__get(app->table, pid);
	int err;

	if (app__node_probes(app))
		err = attach__node_lib(app->attach, pid);
	else if (app->env.mode == MODE_PIDS || (r && r->exact))
		err = attach__pid(app->attach, pid);
	else
		return 0;	/* the node view probes no allocator */
	if (r && !err)
		r->probed = true;
	return err;
}

int app__prepare_exact(struct app *app, int pid)
{
	int err = collect__track(app->collect, pid, app->env.sample_bytes);

	if (err)
		return err;
	/* read its mappings while it lives: its stacks symbolize later */
	syms__load_pid(app->syms, pid);
	if (app->unwind)
		unwind__scan_pid(app->unwind, pid);
	cfi__scan_pid(app->cfi, pid);
	return 0;
}

int app__trace_pid(struct app *app, int pid)
{
	struct mt_row *r = app__row_new(app, pid, 0);
	char path[64];
	int err, n;

	if (!r)
		return -ENOMEM;
	if (r->probed)
		return 0;
	r->exact = true;
	if (!r->comm[0]) {
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		n = read_file(path, r->comm, sizeof(r->comm));
		if (n > 0 && r->comm[n - 1] == '\n')
			r->comm[n - 1] = '\0';
	}
	/* counted from now; mappings and probes at the next refresh's turn */
	err = collect__track(app->collect, pid, app->env.sample_bytes);
	if (err)
		return err;
	r->prep_pending = true;
	app__pending_add(app, pid);
	return 0;
}

int app__set_exact(struct app *app, int pid, bool on)
{
	struct mt_row *r = table__get(app->table, pid);
	int err;

	if (!r || r->exited)
		return -ESRCH;
	if (!on) {
		attach__forget_pid(app->attach, pid);
		r->exact = r->probed = false;
		return 0;
	}
	r->exact = true;
	err = app__prepare_exact(app, pid);
	if (err)
		return err;
	err = try_probe(app, pid);
	if (err == -ENOENT)
		app__warn_no_libc(app, r);
	if (err)
		r->exact = false;
	return err;
}

/*
 * Attaching takes the kernel a while per process (it visits every mapping
 * of the library): a refresh spends at most this long on it, so the
 * first table comes at once and later ones keep their interval while a
 * cgroup of hundreds of processes is being probed.
 */
#define PENDING_BUDGET_NS	(200 * 1000 * 1000ull)

void app__pending_run(struct app *app)
{
	int i, err;

	uint64_t end = now_ns() + PENDING_BUDGET_NS;

	for (i = 0; i < app->npending; i++) {
		int pid = app->pending[i];
		struct mt_row *r = table__get(app->table, pid);

		/* the rest waits for the next turn: the table keeps its pace */
		if (now_ns() > end)
			break;
		watchdog__beat();
		if (r && r->prep_pending) {
			r->prep_pending = false;
			app__prepare_exact(app, pid);
		}
		err = try_probe(app, pid);
		if (err == -ENOENT && r && !r->exited && ++r->attach_tries < 3)
			continue;	/* not mapped yet: try again later */
		if (err == -ENOENT && r && !r->exited &&
		    app->env.mode != MODE_NODE)
			app__warn_no_libc(app, r);
		else if (err && err != -ENOENT && err != -ESRCH)
			fprintf(stderr, "memtrace: pid %d: cannot attach: %s\n",
				pid, strerror(-err));
		app->pending[i--] = app->pending[--app->npending];
	}
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
	if (app__node_probes(app) &&
	    attach__node_file(app->attach, path, e->mapfile.ino) > 0)
		r->probed = true;
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
	if (!app__node_probes(app))
		attach__forget_pid(app->attach, e->tgid);
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

static int handle_record(struct app *app, const struct mt_event *e,
			 size_t len)
{
	struct mt_row *r;

	/* records are as long as their type needs: check before reading */
	if (len < offsetof(struct mt_event, mm) ||
	    len < record_size(e->type))
		return 0;
	app->events++;
	if (e->type == MT_EV_OOM) {
		char comm[64];

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
		/* the kernel mapped the new executable: read it while alive */
		syms__forget_pid(app->syms, e->tgid);
		syms__load_pid(app->syms, e->tgid);
		if (wants_unwind(app, r))
			unwind__scan_pid(app->unwind, e->tgid);
		/* the dynamic loader, which exec mapped without an mmap */
		cfi__scan_pid(app->cfi, e->tgid);
		/*
		 * musl's loader is its libc and is mapped by exec itself:
		 * probe now; glibc shows up with an mmap a moment later.
		 */
		if (try_probe(app, e->tgid))
			app__pending_add(app, e->tgid);
		break;
	case MT_EV_FORK:
		r->ppid = e->ppid;
		memcpy(r->comm, e->comm, MT_COMM_LEN);
		/* gone already: its code is where its parent's was */
		if (syms__load_pid(app->syms, e->tgid))
			syms__copy_pid(app->syms, e->tgid, e->ppid);
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
		if (!r->probed && try_probe(app, e->tgid))
			app__pending_add(app, e->tgid);
		break;
	case MT_EV_MMAP:
		if (!e->mm.err)
			row__mmap(r, e->mm.ret, e->mm.len, e->mm.flags);
		/*
		 * New code mapped (ld.so, dlopen): read the mappings now,
		 * while the process lives, so its stacks still symbolize
		 * after it exits.
		 */
		if (!e->mm.err && (e->mm.prot & MT_PROT_EXEC) &&
		    !(e->mm.flags & MT_MAP_ANONYMOUS)) {
			syms__load_pid(app->syms, e->tgid);
			if (wants_unwind(app, r))
				unwind__scan_pid(app->unwind, e->tgid);
		}
		/*
		 * An exec'd image maps its libc early: probe it at once.  Any
		 * new code may bring another allocator (jemalloc linked in,
		 * dlopen'd): looked for at each code mapping.
		 */
		if (!r->exited &&
		    ((!r->probed && r->attach_tries++ < 64) ||
		     (!e->mm.err && (e->mm.prot & MT_PROT_EXEC) &&
		      !(e->mm.flags & MT_MAP_ANONYMOUS))) &&
		    try_probe(app, e->tgid) && !r->probed)
			app__pending_add(app, e->tgid);
		break;
	case MT_EV_MAPFILE:
		on_mapfile(app, r, e);
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
