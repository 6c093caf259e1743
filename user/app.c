// SPDX-License-Identifier: GPL-2.0
/*
 * The steps of one refresh, shared by every view's loop (batch, JSON and
 * the live table): wait for events, read the maps, expire old rows.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <bpf/libbpf.h>

#include "app.h"
#include "attach.h"
#include "collect.h"
#include "budget.h"
#include "dump.h"
#include "follow.h"
#include "gorow.h"
#include "outq.h"
#include "sites.h"
#include "syms.h"
#include "util.h"
#include "watchdog.h"

#define APP_DRAIN_MS	50	/* longest a ring-buffer record waits */
#define APP_DRAIN_BUDGET_NS	(200 * 1000000ULL)	/* one drain, at most */
#define APP_WORK_BUDGET_NS	(100 * 1000000ULL)	/* queued work, a turn */

void app__reap_child(struct app *app)
{
	int status;

	if (!app->child || app->child_done)
		return;
	if (waitpid(app->child, &status, WNOHANG) == app->child) {
		app->child_done = true;
		app->child_status = status;
	}
}

/*
 * Row r's process is gone for good: every module forgets it, by pid and
 * generation.  The pid may already be a new process's.
 */
void app__forget_row(struct app *app, struct mt_row *r)
{
	collect__forget(app->collect, r->pid, r->gen);
	/* probes of its own: after an attach under way for it, in order */
	if (!app__node_probes(app) && (r->probed || r->attaching || r->exact))
		attach__forget(app->attach, r->pid, r->id);
	dump__forget(app->dump, r->pid, r->id);
	syms__forget_pid(app->syms, r->pid);
	table__remove(app->table, r->pid);
}

/*
 * The row of a process that starts now as (pid, gen): a row left by an
 * earlier process with that pid (exited, or of another generation when
 * its exit record was lost) is forgotten first; a reused pid is a new
 * process, never the old one resurrected.
 */
struct mt_row *app__row_new(struct app *app, int pid, uint64_t gen)
{
	struct mt_row *r = table__get(app->table, pid);

	if (r && (r->exited || (gen && r->gen && r->gen != gen)))
		app__forget_row(app, r);
	r = table__add(app->table, pid);
	if (r && gen && !r->gen)
		r->gen = r->syms_gen = gen;
	return r;
}

/* Exited rows stay visible for a few refreshes, then go. */
void app__expire_rows(struct app *app)
{
	int i;

	for (i = 0; i < table__nr(app->table); i++) {
		struct mt_row *r = table__row(app->table, i);

		/* its EXEC record was lost: read the new mappings ourselves */
		if (r->syms_stale && ++r->syms_stale > 3 && !r->exited) {
			syms__forget_pid(app->syms, r->pid);
			syms__load_pid(app->syms, r->pid, NULL);
			r->syms_gen = r->gen;
			r->syms_stale = 0;
		}
		if (!r->exited || (++r->gone_refreshes <= 3 && !r->reused))
			continue;
		if (app->env.mode == MODE_CMD && r->pid == app->child)
			continue;
		app__forget_row(app, r);
		i--;
	}
	collect__sweep(app->collect);
}

/*
 * The mappings of every new image, read at the refresh that first sees
 * it in the kernel's table: the EXEC record that also reads them may
 * wait behind a backlog in the ring until after the process is gone,
 * and a file on a mount only its namespace sees (a container's private
 * tmpfs) can then no longer be opened.  Read once per image: a read
 * since the image began (syms__has_image) is enough.
 */
#define NEW_IMAGES_BUDGET_NS	(100 * 1000 * 1000ull)

static void read_new_images(struct app *app)
{
	uint64_t end = now_ns() + NEW_IMAGES_BUDGET_NS;
	int i;

	/* an exec storm: the rest at the next refresh, the table on time */
	for (i = 0; i < table__nr(app->table) && now_ns() < end; i++) {
		struct mt_row *r = table__row(app->table, i);

		/*
		 * What the user named (-- CMD, -p, their children); node-wide
		 * only the rows made exact: the records read the rest, as
		 * reading every process of a node here would stall refreshes.
		 */
		if (r->exited || !r->gen ||
		    (app->env.mode == MODE_NODE && !r->exact) ||
		    syms__has_image(app->syms, r->pid, r->gen))
			continue;
		watchdog__beat();	/* one big ELF file may take a while */
		if (syms__load_pid(app->syms, r->pid, NULL) ||
		    !syms__has_image(app->syms, r->pid, r->gen))
			continue;
		/* its sites may be named now, EXEC record or not */
		r->syms_gen = r->gen;
		r->syms_stale = 0;
	}
}

void app__refresh_model(struct app *app)
{
	uint64_t now = now_ns();
	double secs = (now - app->prev_refresh_ns) / 1e9;

	follow__cgroup_poll(app);	/* --cgroup: members that joined */
	collect__procs(app->collect, app->table, now);
	read_new_images(app);
	budget__refresh(app);	/* probes' cost per row, --max-overhead */
	gorow__refresh(app, now);
	collect__sites(app->collect, app->table);
	collect__counters(app->collect, app->counters);
	collect__unwind(app->collect, app->unwind_stats);
	if (app->prev_refresh_ns && secs > 0)
		app->events_ps = (app->events - app->prev_events) / secs;
	app->prev_events = app->events;
	app->prev_refresh_ns = now;
	sites__top_names(app);
	if (app->dump)
		dump__refresh(app->dump);
}

/*
 * At exit: what the ring buffer still holds, a budgeted drain at a time
 * with a check-in between, for up to ms (node-wide, records keep coming).
 */
void app__drain(struct app *app, struct ring_buffer *rb, int ms)
{
	uint64_t end = now_ns() + ms * 1000000ull;
	int n;

	do {
		watchdog__beat();
		app->drain_until = now_ns() + APP_DRAIN_BUDGET_NS;
		n = ring_buffer__consume(rb);
		app->drain_until = 0;
	} while (n == -EAGAIN && now_ns() < end);
	watchdog__beat();
}

/*
 * Test hook (tests/integration/test_safety.py): MEMTRACE_FAULT_SPIN_AFTER
 * =SECS makes the loop spin, busy and never checking in again, SECS
 * after start: the watchdog must end it, busy or not.
 */
static void fault_spin(struct app *app)
{
	static double after = -1;
	const char *v;

	if (after < 0) {
		v = getenv("MEMTRACE_FAULT_SPIN_AFTER");
		after = v ? atof(v) : 0;
	}
	if (after <= 0 || now_ns() - app->start_ns < after * 1e9)
		return;
	for (;;)
		__asm__ volatile("" ::: "memory");
}

/*
 * Wait up to timeout_ms for ring-buffer records or a cgroup threshold
 * notification, and handle what came.  The ring buffer's own epoll fd
 * joins our poll set: libbpf's epoll must only ever hold its rings.
 */
static int poll_once(struct app *app, struct ring_buffer *rb, int timeout_ms,
		     int input_fd)
{
	int i, n = 1, nd = 0, err, need = 3 + dump__nr_pollfds(app->dump);
	struct pollfd *fds;

	fault_spin(app);
	watchdog__beat();	/* alive: the loop turns */
	/*
	 * As many fds as there are watched cgroups: a fixed set left the
	 * cgroups past its end unpolled, their thresholds unnoticed.
	 */
	if (need > app->cap_pollfds) {
		fds = realloc(app->pollfds, need * sizeof(*fds));
		if (!fds)
			return -ENOMEM;
		app->pollfds = fds;
		app->cap_pollfds = need;
	}
	fds = app->pollfds;
	/* mmap-family records arrive without a wake-up: drain every 50 ms */
	if (timeout_ms < 0 || timeout_ms > APP_DRAIN_MS)
		timeout_ms = APP_DRAIN_MS;
	fds[0].fd = ring_buffer__epoll_fd(rb);
	fds[0].events = POLLIN;
	if (app->dump)
		nd = dump__pollfds(app->dump, fds + 1, need - 3);
	n += nd;
	/*
	 * Output queued for a reader (batch, JSON): wake when the pipe has
	 * room, so megabytes of a big refresh go out at the reader's pace,
	 * not one pipe-full per turn of the loop (its caller pumps it).
	 */
	if (outq__queued(app->outq)) {
		fds[n].fd = outq__fd(app->outq);
		fds[n++].events = POLLOUT;
	}
	/* the view's input (the live table's keys) wakes the loop too */
	if (input_fd >= 0) {
		fds[n].fd = input_fd;
		fds[n++].events = POLLIN;
	}
	err = poll(fds, n, timeout_ms);
	if (err < 0)
		return errno == EINTR ? 0 : -errno;
	/*
	 * A storm of records (thousands of execs node-wide) must not hold
	 * the loop: the drain stops after a budget and the rest waits in
	 * the ring for the next turn, so refreshes and a signal still get
	 * their turn.
	 */
	app->drain_until = now_ns() + APP_DRAIN_BUDGET_NS;
	err = ring_buffer__consume(rb);
	app->drain_until = 0;
	if (err < 0 && err != -EINTR && err != -EAGAIN)
		return err;
	for (i = 1; i <= nd; i++)
		if (fds[i].revents)
			dump__on_ready(app->dump, fds[i].fd);
	/* what the records asked for: mappings read, probes handed over */
	app__work_run(app, APP_WORK_BUDGET_NS);
	return 0;
}

/*
 * The one main loop, for every view: wait for records, notifications
 * or the view's input; handle them and the queued work (poll_once);
 * let the view take its input and write its output (turn); refresh at
 * each interval.  Nothing in a turn blocks, so the watchdog hears from
 * the loop at every one.
 */
int app__run(struct app *app, struct ring_buffer *rb,
	     const struct app_view *v)
{
	uint64_t step = app->env.delay * 1e9, next = now_ns() + step;
	long done = 0, limit = app->env.iterations;
	int err = 0;

	while (!*app->exiting) {
		bool paused = v->paused && v->paused(v->ctx);
		uint64_t now = now_ns();
		int timeout = v->max_wait_ms;

		if (!paused)
			timeout = now >= next ? 0 : (next - now) / 1000000 + 1;
		if (v->max_wait_ms && timeout > v->max_wait_ms)
			timeout = v->max_wait_ms;
		if (timeout > 100 && app->env.mode == MODE_CMD)
			timeout = 100;	/* notice the command's exit soon */
		err = poll_once(app, rb, timeout, v->input_fd);
		if (err < 0)
			break;
		app__reap_child(app);
		if (app->child_done)
			break;
		err = v->turn ? v->turn(v->ctx) : 0;
		if (err)
			break;
		if (paused || now_ns() < next)
			continue;
		/* batch, JSON: main() prints the Nth table of -n N, the final */
		if (limit && v->last_is_final && done + 1 >= limit)
			break;
		next += step;
		if (next < now_ns())
			next = now_ns() + step;
		err = v->refresh(v->ctx);
		if (err)
			break;
		done++;
		if (limit && !v->last_is_final && done >= limit)
			break;
	}
	return err;
}

