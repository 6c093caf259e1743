/* SPDX-License-Identifier: GPL-2.0 */
/* Options and the state the main loop's modules share. */
#ifndef MT_APP_H
#define MT_APP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "memtrace.h"
#include "table.h"

enum mt_mode {
	MODE_NODE = 0,		/* every process on the node */
	MODE_PIDS,		/* -p PID[,PID...] */
	MODE_CMD,		/* -- CMD [ARGS] */
	MODE_DUMP,		/* memtrace dump PID: capture now, exit */
};

enum mt_view {
	VIEW_TUI = 0,
	VIEW_BATCH,
	VIEW_JSON,
};

#define MT_MAX_PIDS 256

struct env {
	enum mt_mode mode;
	enum mt_view view;
	int pids[MT_MAX_PIDS];
	int npids;
	char **cmd;
	double delay;		/* refresh interval, seconds */
	long iterations;	/* -n: stop after N refreshes, 0 = forever */
	bool stacks;
	uint64_t sample_bytes;
	int top_sites;
	const char *pprof_path;
	const char *folded_path;
	const char *output_path;
	uint64_t ringbuf_bytes;
	uint64_t max_blocks;
	uint64_t hot_blocks;	/* of which in the small table */
	bool verbose;
	bool floor;		/* --bench-floor: empty programs, same sites */
	bool entry_probes;	/* --entry-probes: no probe-site shifting */
	bool no_session;	/* --no-session: classic return probes */
	bool exact;		/* --exact: node-wide allocator probes */
	double watchdog;	/* --watchdog SECS without a heartbeat; 0 = off */
	const char *cgroup_path;	/* --cgroup DIR: its members, now and later */
	double max_overhead;	/* --max-overhead PCT of a process's CPU; 0 = none */
	uint64_t fault_sample;	/* node view: bytes faulted per stack */
	bool no_cfi;		/* --no-cfi: frame pointers only */

	/* pre-OOM capture (dump.c) */
	const char *dump_dir;	/* --dump-dir, default /var/lib/memtrace */
	double dump_at_pct;	/* --dump-at PCT% of memory.high or limit */
	uint64_t dump_at_bytes;	/* --dump-at BYTES (K/M/G suffixes) */
	bool dump_core;		/* gcore as well (default on; --no-core) */
	int dump_max;		/* --dump-max: dumps per process */
	double dump_cooldown;	/* --dump-cooldown SECS between dumps */
	double gcore_timeout;	/* --gcore-timeout SECS */
	bool dump_slow_down;	/* --slow-down: v2 memory.high nudge */

	/* Go programs (gorow.c) */
	int64_t go_enable_rate;	/* --go-enable-profiling: rate to write, 0 = never */
};

/*
 * Work the ring-buffer callback queues for a row instead of doing it
 * (events.c): reading files and attaching take too long to run while
 * records wait.  The loop runs it under a time budget each turn; the
 * attaching itself is done by the attach thread.
 */
enum {
	WORK_SYMS	= 1 << 0,	/* read its mappings, for symbols */
	WORK_SYMS_FORK	= 1 << 1,	/* the same; gone: its parent's */
	WORK_UNWIND	= 1 << 2,	/* frameless call sites of its code */
	WORK_CFI	= 1 << 3,	/* the CFI of its code */
	WORK_PREPARE	= 1 << 4,	/* app__prepare_exact */
	WORK_PROBE	= 1 << 5,	/* probe its allocators */
};

/* A row with queued work; the row's id tells a reused pid apart. */
struct work_item {
	int pid;
	uint64_t id;
};

struct attach;
struct pollfd;
struct collect;
struct syms;
struct dump;
struct procfs_maps;

struct app {
	struct env env;
	struct memtrace_bpf *skel;
	struct attach *attach;
	struct collect *collect;
	struct table *table;
	struct syms *syms;
	struct unwind *unwind;	/* frameless allocator callers; NULL: no stacks */
	struct cfi *cfi;	/* .eh_frame unwinding; NULL: frame pointers only */
	uint64_t unwind_stats[MT_UW_MAX];	/* the kernel's walk counts */
	struct dump *dump;	/* NULL unless pre-OOM capture is armed */
	FILE *out;		/* the views write here (outq's stream) */
	FILE *out_file;		/* stdout or -o FILE itself */
	struct outq *outq;	/* batch/JSON: never blocks on a slow reader */
	uint64_t start_ns;
	double start_wall;
	uint64_t counters[MT_CNT_MAX];
	uint64_t events, prev_events;
	double events_ps;
	uint64_t prev_refresh_ns;
	bool session;		/* allocator probes are session uprobes */
	double floor_s;		/* one uprobe hit here, measured at start */
	pid_t child;		/* MODE_CMD: the command */
	char cmd_log[64];	/* its output, while the live view has the tty */
	bool child_done;
	int child_status;
	struct work_item *work;	/* rows with queued work (events.c) */
	int nwork, capwork;
	int attaching;		/* rows waiting for probes: the header's */
	struct mt_event *ooms;	/* OOM records, their post-mortems queued */
	int nooms, capooms;
	volatile sig_atomic_t *exiting;	/* the signal that ends the run */
	uint64_t drain_until;	/* ns: a turn's drain stops after this */
	struct pollfd *pollfds;	/* a turn's poll set, as big as it needs */
	int cap_pollfds;
};

/*
 * Allocator probes that cover every process mapping a library (the node
 * with --exact, and -- CMD, whose children are filtered in the kernel),
 * rather than per-process ones (-p, and the node view's exact rows).
 */
static inline bool app__node_probes(const struct app *app)
{
	return app->env.mode == MODE_CMD ||
	       (app->env.mode == MODE_NODE && app->env.exact);
}

/* The node view: no allocator probe unless a row asks for one. */
static inline bool app__growth_view(const struct app *app)
{
	return app->env.mode == MODE_NODE && !app->env.exact;
}

/* main.c: the steps of one refresh, shared by every view's loop */
void app__refresh_model(struct app *app);	/* read maps, rates, sites */
void app__expire_rows(struct app *app);		/* drop long-exited rows */
void app__reap_child(struct app *app);		/* MODE_CMD: did it exit? */
/* The process registry's two transitions (pid, generation): */
struct mt_row *app__row_new(struct app *app, int pid, uint64_t gen);
void app__forget_row(struct app *app, struct mt_row *r);
struct ring_buffer;
/* A view plugged into the one main loop (app__run). */
struct app_view {
	void *ctx;		/* the callbacks' */
	int input_fd;		/* polled with the rest; -1: none */
	int max_wait_ms;	/* longest wait in one turn; 0: the interval */
	bool last_is_final;	/* -n N: the Nth table is main()'s final one */
	bool (*paused)(void *ctx);	/* no refreshes meanwhile; NULL: never */
	/* each turn: input taken, output written; nonzero ends the loop */
	int (*turn)(void *ctx);
	/* the interval is up: refresh and show; nonzero ends the loop */
	int (*refresh)(void *ctx);
};
/*
 * Run the loop until a signal, the command's exit, -n, or a callback
 * ends it.  Returns a callback's nonzero value, or -errno of the ring
 * buffer's poll.
 */
int app__run(struct app *app, struct ring_buffer *rb,
	     const struct app_view *v);
/* At exit: drain what is left, for up to ms. */
void app__drain(struct app *app, struct ring_buffer *rb, int ms);

/* events.c: ring-buffer records -> table, and work queued */
int events__handle(void *ctx, void *data, size_t len);
/* Queue work for row r, due in delay_ns (0: at the next turn). */
void app__work(struct app *app, struct mt_row *r, unsigned int work,
	       uint64_t delay_ns);
/* Run queued work for up to budget_ns; take the attach thread's results. */
void app__work_run(struct app *app, uint64_t budget_ns);
/* At exit: the queued work and the attach thread's, waited for up to ms. */
void app__work_settle(struct app *app, int ms);
/*
 * The node view: exact tracing of pid (its allocators probed for it
 * alone, its children too) on or off.  Blocks seen so far stay counted.
 */
int app__set_exact(struct app *app, int pid, bool on);
/*
 * -p's descendants, --cgroup's members: trace one more pid exactly.  Its
 * row is there at once; it is probed by the attach thread.
 */
int app__trace_pid(struct app *app, int pid);
/* Before probing pid exactly: its counters, mappings and unwind sites. */
int app__prepare_exact(struct app *app, int pid, struct procfs_maps *maps);
/* Once per row: its process maps no C library, say what that means. */
void app__warn_no_libc(struct app *app, struct mt_row *r);

/* output.c: batch and JSON views of the table */
void output__batch(struct app *app, bool final);
void output__json(struct app *app, bool final);
void output__oom_json(struct app *app, const struct mt_event *e);
uint64_t output__lost(const struct app *app);
int output__unwind_line(const struct app *app, char *buf, size_t len,
			bool brief);

#endif /* MT_APP_H */
