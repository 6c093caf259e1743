// SPDX-License-Identifier: GPL-2.0
/*
 * The event-to-model state machine (events.c, the (pid, generation)
 * registry in app.c) driven by synthetic ring-buffer records, without
 * root or a kernel side: fork, exit, pid reuse, a lost exit record,
 * records too short to read.
 */
#include <stddef.h>
#include <stdlib.h>

#include "test.h"
#include "app.h"
#include "syms.h"
#include "table.h"
#include "trigger.h"

/* pids no process has: the symbolizer finds nothing to read */
#define PID	4190001
#define PARENT	4190000

static struct app *app_new(void)
{
	struct app *app = calloc(1, sizeof(*app));

	app->env.mode = MODE_CMD;	/* node-wide probes: nothing to attach */
	app->table = table__new();
	app->syms = syms__new();
	return app;
}

static void app_free(struct app *app)
{
	table__free(app->table);
	syms__free(app->syms);
	free(app);
}

static int send(struct app *app, uint32_t type, int tgid, uint64_t gen)
{
	struct mt_event e = { .type = type, .tgid = tgid, .pid = tgid };

	memcpy(e.comm, "synthetic", 10);
	if (type == MT_EV_FORK) {
		e.ppid = PARENT;
		e.fork.gen = gen;
	} else if (type == MT_EV_EXIT) {
		e.exit.stats.gen = gen;
		e.exit.stats.c[0].alloc_bytes = 1000;
		e.exit.stats.c[0].allocs = 1;
	} else if (type == MT_EV_MMAP) {
		e.mm.ret = 0x7f0000000000ULL;
		e.mm.len = 8192;
		e.mm.flags = 0x22;	/* MAP_PRIVATE | MAP_ANONYMOUS */
	}
	return events__handle(app, &e, sizeof(e));
}

static void test_fork_then_exit(void)
{
	struct app *app = app_new();
	struct mt_row *r;

	ASSERT_EQ(send(app, MT_EV_FORK, PID, 111), 0);
	r = table__get(app->table, PID);
	if (!ASSERT_TRUE(r))
		goto out;
	ASSERT_EQ(r->gen, 111);
	ASSERT_EQ(r->ppid, PARENT);
	ASSERT_TRUE(!r->exited);
	ASSERT_EQ(send(app, MT_EV_EXIT, PID, 111), 0);
	ASSERT_TRUE(r->exited);
	ASSERT_EQ(r->cur.alloc_bytes, 1000);
out:
	app_free(app);
}

/* A reused pid is a new row: the dead one is not resurrected. */
static void test_pid_reuse_after_exit(void)
{
	struct app *app = app_new();
	struct mt_row *r;

	send(app, MT_EV_FORK, PID, 111);
	send(app, MT_EV_MMAP, PID, 0);
	send(app, MT_EV_EXIT, PID, 111);
	ASSERT_EQ(send(app, MT_EV_FORK, PID, 222), 0);
	ASSERT_EQ(table__nr(app->table), 1);
	r = table__get(app->table, PID);
	if (ASSERT_TRUE(r)) {
		ASSERT_TRUE(!r->exited);
		ASSERT_EQ(r->gen, 222);
		ASSERT_EQ(r->cur.alloc_bytes, 0);
		ASSERT_EQ(r->nranges, 0);	/* the old process's mmap */
	}
	app_free(app);
}

/* Its exit record was lost: a fork of another generation replaces it. */
static void test_lost_exit_record(void)
{
	struct app *app = app_new();
	struct mt_row *r;

	send(app, MT_EV_FORK, PID, 111);
	send(app, MT_EV_MMAP, PID, 0);
	send(app, MT_EV_FORK, PID, 333);
	r = table__get(app->table, PID);
	if (ASSERT_TRUE(r)) {
		ASSERT_EQ(r->gen, 333);
		ASSERT_EQ(r->nranges, 0);
	}
	/* the same generation again (a duplicate) keeps the row */
	send(app, MT_EV_MMAP, PID, 0);
	send(app, MT_EV_FORK, PID, 333);
	r = table__get(app->table, PID);
	if (ASSERT_TRUE(r))
		ASSERT_EQ(r->nranges, 1);
	app_free(app);
}

/* An expired row goes; a reused pid's exited row goes at once. */
static void test_expiry(void)
{
	struct app *app = app_new();
	struct mt_row *r;
	int i;

	send(app, MT_EV_FORK, PID, 111);
	send(app, MT_EV_EXIT, PID, 111);
	for (i = 0; i < 3; i++) {
		app__expire_rows(app);
		ASSERT_TRUE(table__get(app->table, PID));
	}
	app__expire_rows(app);
	ASSERT_TRUE(!table__get(app->table, PID));

	send(app, MT_EV_FORK, PID, 111);
	send(app, MT_EV_EXIT, PID, 111);
	r = table__get(app->table, PID);
	if (ASSERT_TRUE(r))
		r->reused = true;	/* what collect__procs says */
	app__expire_rows(app);
	ASSERT_TRUE(!table__get(app->table, PID));
	app_free(app);
}

/*
 * A reused pid starts afresh: the capture count (and cooldown) kept for
 * the dead process is not the new one's, and the dead row's queued work
 * is dropped, not run for the new process.
 */
static void test_reused_pid_starts_afresh(void)
{
	struct app *app = app_new();
	struct trigger *t = NULL;
	struct mt_row *r;
	uint64_t id_a;

	if (!ASSERT_EQ(trigger__new(app, false, NULL, NULL, &t), 0))
		goto out;
	ASSERT_EQ(send(app, MT_EV_FORK, PID, 111), 0);
	r = table__get(app->table, PID);
	if (!ASSERT_TRUE(r))
		goto out;
	id_a = r->id;
	ASSERT_EQ(app->nwork, 1);	/* its mappings, queued */
	trigger__refresh(t);		/* its state, made at a refresh */
	ASSERT_EQ(trigger__count_dump(t, PID), 1);
	ASSERT_EQ(trigger__count_dump(t, PID), 2);
	ASSERT_EQ(send(app, MT_EV_EXIT, PID, 111), 0);
	ASSERT_EQ(send(app, MT_EV_FORK, PID, 222), 0);
	r = table__get(app->table, PID);
	if (!ASSERT_TRUE(r))
		goto out;
	ASSERT_TRUE(r->id != id_a);
	ASSERT_EQ(app->nwork, 2);	/* the dead row's item, and B's */
	trigger__refresh(t);
	ASSERT_EQ(trigger__count_dump(t, PID), 1);
	/* the dead row's item is dropped; B's is run */
	app__work_run(app, 1000000000ull);
	ASSERT_EQ(app->nwork, 0);
	ASSERT_EQ(r->work, 0);
	/* told by the registry: what was kept for B goes */
	trigger__forget(t, PID, r->id);
	ASSERT_EQ(trigger__count_dump(t, PID), -1);
	trigger__refresh(t);
	ASSERT_EQ(trigger__count_dump(t, PID), 1);
out:
	trigger__free(t);
	app_free(app);
}

/* A record shorter than its type needs is dropped, never read past. */
static void test_short_records(void)
{
	struct app *app = app_new();
	struct mt_event e = { .type = MT_EV_FORK, .tgid = PID };

	ASSERT_EQ(events__handle(app, &e, offsetof(struct mt_event, mm)), 0);
	ASSERT_TRUE(!table__get(app->table, PID));
	ASSERT_EQ(events__handle(app, &e, 4), 0);
	ASSERT_EQ(app->events, 0);
	app_free(app);
}

int main(void)
{
	RUN_TEST(test_fork_then_exit);
	RUN_TEST(test_pid_reuse_after_exit);
	RUN_TEST(test_lost_exit_record);
	RUN_TEST(test_expiry);
	RUN_TEST(test_short_records);
	RUN_TEST(test_reused_pid_starts_afresh);
	return test__finish();
}
