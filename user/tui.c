// SPDX-License-Identifier: GPL-2.0
/*
 * The live view: a top-like table of the traced processes, with a
 * drill-down into one process's allocation sites and into the full stack
 * of one site.
 *
 * The view owns no model logic.  Each refresh runs the steps every view
 * shares (app__refresh_model, app__expire_rows), then the table is sorted
 * and drawn.  Rows are found again by pid on every frame and never kept
 * by pointer: a refresh or a ring-buffer record may free or move them.
 *
 * Everything that came from a traced process (names, cgroups, symbols)
 * goes through sanitize(), and is then cut to its column by display
 * width, so neither escape sequences nor wide characters can move the
 * cursor or spill into the next column.
 */
#define _GNU_SOURCE
#define NCURSES_WIDECHAR 1
#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "app.h"
#include "dump.h"
#include "gorow.h"
#include "sites.h"
#include "syms.h"
#include "table.h"
#include "tui.h"
#include "util.h"

/* Last: it defines a macro for every terminfo capability name. */
#include <term.h>

#define HDR_LINES	3	/* two summary lines and the column titles */
#define STATUS_SECS	4	/* how long a status message stays up */
#define MAX_POLL_MS	100	/* longest wait for events before keys */
#define MAX_INLINE	8	/* inlined frames per return address */
#define KEY_ESC		27

/* flags for put() */
#define P_RIGHT		1	/* right-align the text in its field */
#define P_PAD		2	/* fill the field: its attribute shows */

enum tui_screen {
	SCR_TABLE,		/* one row per process */
	SCR_SITES,		/* allocation sites of one process */
	SCR_STACK,		/* the full stack of one site */
};

enum col_id {
	C_PID, C_COMM, C_CGROUP, C_TRACE, C_LIVE, C_GROW, C_ALLOC, C_FREE,
	C_MMAP, C_RSS, C_ANON, C_FLT, C_PF, C_COST, C_LIM, C_ETA, C_SITE,
	C_MAX,
};

struct col {
	const char *title;
	int width;		/* preferred width (TOP SITE: minimum) */
	int min;		/* narrowest it may get before it is dropped */
	int prio;		/* higher stays longer on a narrow terminal */
	bool right;
	enum mt_sort sort;	/* key this column sorts by, or SORT_MAX */
};

/*
 * PID, COMM and LIVE always stay.  The rest go lowest priority first when
 * the terminal is too narrow for their preferred widths; 80 columns keep
 * growth, alloc rate, RSS, limit % and a short top site.
 */
static const struct col cols[C_MAX] = {
	[C_PID]    = { "PID",       8,  8, 100, true,  SORT_PID },
	[C_COMM]   = { "COMM",     16,  6,  95, false, SORT_MAX },
	[C_CGROUP] = { "CGROUP",   16,  8,  10, false, SORT_MAX },
	/* the node view: which rows are traced exactly (key e) */
	[C_TRACE]  = { "TRACE",     5,  5,  88, false, SORT_MAX },
	[C_LIVE]   = { "LIVE",      7,  7,  90, true,  SORT_LIVE },
	[C_GROW]   = { "GROW/s",    7,  7,  85, true,  SORT_GROWTH },
	[C_ALLOC]  = { "ALLOC/s",   7,  7,  70, true,  SORT_ALLOC_RATE },
	[C_FREE]   = { "FREE/s",    7,  7,  30, true,  SORT_MAX },
	[C_MMAP]   = { "MMAP",      7,  7,  40, true,  SORT_MAX },
	[C_RSS]    = { "RSS",       7,  7,  80, true,  SORT_RSS },
	/* the node view: anonymous RSS, bytes faulted in per second */
	[C_ANON]   = { "ANON",      7,  7,  75, true,  SORT_MAX },
	[C_FLT]    = { "FLT/s",     7,  7,  65, true,  SORT_MAX },
	[C_PF]     = { "PF/s",      6,  6,  20, true,  SORT_MAX },
	/* exact rows: the probes' estimated share of the process's CPU */
	[C_COST]   = { "PROBE%",    6,  6,  25, true,  SORT_MAX },
	[C_LIM]    = { "LIM%",      5,  5,  60, true,  SORT_LIMIT },
	[C_ETA]    = { "TO-LIM",    6,  6,  35, true,  SORT_MAX },
	[C_SITE]   = { "TOP SITE", 10, 10,  50, false, SORT_MAX },
};

struct stack_line {
	char text[600];
	bool dim;		/* module annotations, inlined frames */
};

struct tui {
	struct app *app;
	enum tui_screen scr;
	enum mt_sort key;
	bool reverse, paused, help, quit;

	/* process table: the selection is a pid, so it follows re-sorts */
	int *vis;		/* table indices of rows passing the filter */
	int nvis, capvis;
	int sel, top, sel_pid;
	int width[C_MAX];	/* 0: column not shown at this width */

	/* sites of one process; the selection follows the stack id */
	int site_pid;
	uint64_t site_id;	/* stack hash of the selected site, -1 = none */
	int site_sel, site_top;

	/* the expanded stack, resolved once when it is opened */
	struct stack_line *st;
	int nst, st_top;
	char st_name[256];

	/* '/' filter, applied while it is typed; Esc restores the old one */
	char filter[64], old_filter[64];
	bool prompting;

	char status[256];
	uint64_t status_until;

	uint64_t mem_total, mem_avail;
	time_t refreshed;

	/* stderr of the process while curses owns the terminal */
	int err_fd, saved_err;
	char errlog[8192];
	size_t nerrlog;

	SCREEN *screen;
	FILE *in;
	char *old_locale;
	wchar_t ellipsis;
};

/* ---- crash and terminal restore ----------------------------------------- */

static const int crash_sigs[] = { SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL };
static struct sigaction old_crash[ARRAY_SIZE(crash_sigs)];
static volatile sig_atomic_t crash_err_fd = -1;

/*
 * endwin() is not async-signal-safe, but the process is dying anyway and
 * a shell left without echo costs the user more than the risk.  The
 * handler was reset on entry (SA_RESETHAND) and does not block its own
 * signal (SA_NODEFER), so raise() ends the process the default way, core
 * dump included.
 */
static void on_crash(int sig)
{
	endwin();
	if (crash_err_fd >= 0)
		dup2(crash_err_fd, STDERR_FILENO);
	raise(sig);
}

static void crash_handlers(bool on)
{
	struct sigaction sa = {
		.sa_handler = on_crash,
		.sa_flags = SA_RESETHAND | SA_NODEFER,
	};
	size_t i;

	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(crash_sigs); i++) {
		if (on)
			sigaction(crash_sigs[i], &sa, &old_crash[i]);
		else
			sigaction(crash_sigs[i], &old_crash[i], NULL);
	}
}

/* ---- stderr capture ----------------------------------------------------- */

/*
 * Warnings from the other modules (a static binary, a probe that failed)
 * and from libbpf go to stderr.  Written straight to the terminal they
 * would scribble over the screen, so while curses runs stderr is a pipe:
 * the newest line shows in the status line, and the whole log is written
 * out again once the terminal is restored.
 */
static void capture_begin(struct tui *t)
{
	int p[2];

	fflush(stderr);
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return;
	t->saved_err = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (t->saved_err < 0 || dup2(p[1], STDERR_FILENO) < 0) {
		if (t->saved_err >= 0)
			close(t->saved_err);
		t->saved_err = -1;
		close(p[0]);
		close(p[1]);
		return;
	}
	close(p[1]);
	t->err_fd = p[0];
	crash_err_fd = t->saved_err;
}

static void set_status(struct tui *t, const char *msg)
{
	snprintf(t->status, sizeof(t->status), "%s", msg);
	t->status_until = now_ns() + STATUS_SECS * 1000000000ull;
}

static void log_append(struct tui *t, const char *buf, size_t n)
{
	size_t cap = sizeof(t->errlog);

	if (n >= cap) {
		buf += n - cap;
		n = cap;
		t->nerrlog = 0;
	} else if (t->nerrlog + n > cap) {
		size_t drop = t->nerrlog + n - cap;

		memmove(t->errlog, t->errlog + drop, t->nerrlog - drop);
		t->nerrlog -= drop;
	}
	memcpy(t->errlog + t->nerrlog, buf, n);
	t->nerrlog += n;
}

/* Returns true if something new was written to stderr. */
static bool capture_drain(struct tui *t)
{
	char buf[1024], line[256];
	size_t end, start;
	bool got = false;
	ssize_t n;

	if (t->err_fd < 0)
		return false;
	while ((n = read(t->err_fd, buf, sizeof(buf))) > 0) {
		log_append(t, buf, n);
		got = true;
	}
	if (!got || !t->nerrlog)
		return got;
	/* the last line, without its newline */
	end = t->nerrlog;
	if (t->errlog[end - 1] == '\n')
		end--;
	for (start = end; start && t->errlog[start - 1] != '\n'; start--)
		;
	sanitize(t->errlog + start, end - start, line, sizeof(line));
	set_status(t, line);
	return true;
}

static void capture_end(struct tui *t)
{
	ssize_t n;
	size_t off = 0;

	if (t->err_fd < 0)
		return;
	capture_drain(t);
	fflush(stderr);
	crash_err_fd = -1;
	dup2(t->saved_err, STDERR_FILENO);
	close(t->saved_err);
	close(t->err_fd);
	t->err_fd = t->saved_err = -1;
	while (off < t->nerrlog) {
		n = write(STDERR_FILENO, t->errlog + off, t->nerrlog - off);
		if (n <= 0)
			break;
		off += n;
	}
}

/* ---- formatting --------------------------------------------------------- */

static void fmt_count(char *buf, size_t len, double v)
{
	if (v < 0)
		v = 0;
	if (v < 100000)
		snprintf(buf, len, "%.0f", v);
	else if (v < 1e7)
		snprintf(buf, len, "%.0fk", v / 1e3);
	else if (v < 1e10)
		snprintf(buf, len, "%.0fM", v / 1e6);
	else
		snprintf(buf, len, "%.0fG", v / 1e9);
}

static void fmt_elapsed(char *buf, size_t len, double secs)
{
	unsigned int s = secs > 0 && secs < 4e9 ? (unsigned int)secs : 0;

	if (s >= 86400)
		snprintf(buf, len, "%ud%02uh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%uh%02um", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%um%02us", s / 60, s % 60);
	else
		snprintf(buf, len, "%us", s);
}

/*
 * Print s in a field of w columns at (y, x), clipped to the screen.  s is
 * sanitized text (valid UTF-8, no controls), but the locale may not be
 * UTF-8 and characters may be wide, so it is measured by display width:
 * whatever does not fit is cut and marked with an ellipsis.  Returns the
 * columns the text took, padding excluded.
 */
static int put(const struct tui *t, int y, int x, int w, const char *s,
	       int flags)
{
	wchar_t wc, ws[256];
	signed char cw[256];
	size_t len = strlen(s), k;
	mbstate_t mbs;
	int n = 0, width = 0, pad;
	bool cut = false;

	if (x + w > COLS)
		w = COLS - x;
	if (w <= 0 || y < 0 || y >= LINES)
		return 0;
	memset(&mbs, 0, sizeof(mbs));
	while (len) {
		int c;

		k = mbrtowc(&wc, s, len, &mbs);
		if (k == (size_t)-1 || k == (size_t)-2 || !k) {
			/* not a character in this locale: one '?' per byte */
			memset(&mbs, 0, sizeof(mbs));
			wc = L'?';
			k = 1;
		}
		c = wcwidth(wc);
		/* a combining mark must not attach to the previous field */
		if (c < 0 || (!c && !n)) {
			wc = L'?';
			c = 1;
		}
		if (width + c > w || n == (int)ARRAY_SIZE(ws) - 2) {
			cut = true;
			break;
		}
		ws[n] = wc;
		cw[n++] = c;
		width += c;
		s += k;
		len -= k;
	}
	if (cut) {
		while (n && width + 1 > w)
			width -= cw[--n];
		ws[n++] = t->ellipsis;
		width++;
	}
	ws[n] = L'\0';
	pad = (flags & (P_PAD | P_RIGHT)) ? w - width : 0;
	move(y, x);
	if (flags & P_RIGHT)
		for (; pad > 0; pad--)
			addch(' ');
	addnwstr(ws, n);
	for (; pad > 0; pad--)
		addch(' ');
	return width;
}

/* Fill line y with spaces in the current attribute. */
static void fill_line(int y)
{
	int x;

	move(y, 0);
	for (x = 0; x < COLS; x++)
		addch(' ');
}

/* ---- model access ------------------------------------------------------- */

static void read_meminfo(struct tui *t)
{
	char buf[4096], *p;

	if (read_file("/proc/meminfo", buf, sizeof(buf)) < 0)
		return;
	p = strstr(buf, "MemTotal:");
	if (p)
		t->mem_total = strtoull(p + 9, NULL, 10) << 10;
	p = strstr(buf, "MemAvailable:");
	if (p)
		t->mem_avail = strtoull(p + 13, NULL, 10) << 10;
}

static void refresh_model(struct tui *t)
{
	app__refresh_model(t->app);
	app__expire_rows(t->app);
	read_meminfo(t);
	t->refreshed = time(NULL);
}

static bool row_matches(const struct tui *t, const struct mt_row *r)
{
	char buf[256];

	if (!t->filter[0])
		return true;
	/* match what is on screen, so typing "\x1b" finds an escaped name */
	sanitize(r->comm, sizeof(r->comm), buf, sizeof(buf));
	if (strcasestr(buf, t->filter))
		return true;
	sanitize(r->cgroup, sizeof(r->cgroup), buf, sizeof(buf));
	return strcasestr(buf, t->filter) != NULL;
}

static int table_page(void)
{
	return LINES - HDR_LINES - 1 > 1 ? LINES - HDR_LINES - 1 : 1;
}

static int sites_page(void)
{
	return LINES - HDR_LINES - 2 > 1 ? LINES - HDR_LINES - 2 : 1;
}

/* Keep sel visible in a page of rows, and the page as full as it can be. */
static void scroll_to(int sel, int n, int page, int *top)
{
	if (sel < *top)
		*top = sel;
	if (sel >= *top + page)
		*top = sel - page + 1;
	if (*top > n - page)
		*top = n - page;
	if (*top < 0)
		*top = 0;
}

/*
 * Sort, filter and find the selected pid again.  A selected process that
 * is gone (or filtered out) leaves the selection where it was on screen.
 */
static void build_vis(struct tui *t)
{
	struct table *tb = t->app->table;
	int i, n = table__nr(tb);

	table__sort(tb, t->key, t->reverse);
	if (n > t->capvis) {
		int *v = realloc(t->vis, n * sizeof(*v));

		if (v) {
			t->vis = v;
			t->capvis = n;
		}
	}
	if (n > t->capvis)
		n = t->capvis;	/* out of memory: show what fits */
	t->nvis = 0;
	for (i = 0; i < n; i++)
		if (row_matches(t, table__row(tb, i)))
			t->vis[t->nvis++] = i;
	for (i = 0; i < t->nvis; i++) {
		if (table__row(tb, t->vis[i])->pid == t->sel_pid) {
			t->sel = i;
			break;
		}
	}
	if (i == t->nvis) {
		if (t->sel >= t->nvis)
			t->sel = t->nvis - 1;
		if (t->sel < 0)
			t->sel = 0;
		t->sel_pid = t->nvis ? table__row(tb, t->vis[t->sel])->pid : 0;
	}
	scroll_to(t->sel, t->nvis, table_page(), &t->top);
}

static struct mt_row *site_row(struct tui *t)
{
	return table__get(t->app->table, t->site_pid);
}

static void fix_site_sel(struct tui *t, struct mt_row *r)
{
	int i;

	for (i = 0; i < r->nsites; i++) {
		if (r->sites[i].stack_id == t->site_id) {
			t->site_sel = i;
			break;
		}
	}
	if (i == r->nsites) {
		if (t->site_sel >= r->nsites)
			t->site_sel = r->nsites - 1;
		if (t->site_sel < 0)
			t->site_sel = 0;
		t->site_id = r->nsites ? r->sites[t->site_sel].stack_id :
			     (uint64_t)-1;
	}
	scroll_to(t->site_sel, r->nsites, sites_page(), &t->site_top);
}

/* ---- layout ------------------------------------------------------------- */

/*
 * Columns that fit in COLS: drop the lowest-priority ones until the
 * preferred widths fit, then shrink COMM if even that is too wide, and
 * give what is left to TOP SITE.
 */
static void layout(struct tui *t)
{
	int i, used, avail = COLS;

	for (i = 0; i < C_MAX; i++)
		t->width[i] = cols[i].width;
	/* alloc and free rates mean nothing where no allocator is probed */
	if (app__growth_view(t->app))
		t->width[C_ALLOC] = t->width[C_FREE] = 0;
	else
		t->width[C_TRACE] = t->width[C_ANON] = t->width[C_FLT] = 0;
	for (;;) {
		int low = -1;

		used = -1;
		for (i = 0; i < C_MAX; i++)
			if (t->width[i])
				used += t->width[i] + 1;
		if (used <= avail)
			break;
		for (i = 0; i < C_MAX; i++)
			if (t->width[i] && cols[i].prio < 90 &&
			    (low < 0 || cols[i].prio < cols[low].prio))
				low = i;
		if (low < 0)
			break;
		t->width[low] = 0;
	}
	if (used > avail) {
		int shrink = used - avail;

		if (shrink > cols[C_COMM].width - cols[C_COMM].min)
			shrink = cols[C_COMM].width - cols[C_COMM].min;
		t->width[C_COMM] -= shrink;
		used -= shrink;
	}
	if (t->width[C_SITE] && used < avail)
		t->width[C_SITE] += avail - used;
}

/* ---- drawing ------------------------------------------------------------ */

static void draw_header(struct tui *t)
{
	struct app *app = t->app;
	struct table *tb = app->table;
	char buf[256], a[16], b[16], tm[16], since[16], el[32], ubuf[160];
	uint64_t lost = output__lost(app);
	time_t start = app->start_wall;
	int i, x, procs = 0;

	for (i = 0; i < table__nr(tb); i++)
		if (!table__row(tb, i)->exited)
			procs++;
	strftime(tm, sizeof(tm), "%H:%M:%S", localtime(&t->refreshed));
	strftime(since, sizeof(since), "%H:%M:%S", localtime(&start));
	fmt_elapsed(el, sizeof(el), now_wall() - app->start_wall);
	human_bytes(a, sizeof(a), t->mem_total - t->mem_avail);
	human_bytes(b, sizeof(b), t->mem_total);

	attron(A_BOLD);
	x = put(t, 0, 0, COLS, "memtrace", 0);
	attroff(A_BOLD);
	snprintf(buf, sizeof(buf),
		 " %s  mem %s/%s  procs %d  events/s %.0f  lost ",
		 tm, a, b, procs, app->events_ps);
	x += put(t, 0, x, COLS - x, buf, 0);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)lost);
	if (lost)
		attron(A_REVERSE | A_BOLD | COLOR_PAIR(1));
	x += put(t, 0, x, COLS - x, buf, 0);
	attroff(A_REVERSE | A_BOLD | COLOR_PAIR(1));
	if (lost)
		x += put(t, 0, x, COLS - x, " (numbers may be low)", 0);
	/* probes still being attached, a few processes per refresh */
	if (app->attaching) {
		snprintf(buf, sizeof(buf), "  attaching %d", app->attaching);
		put(t, 0, x, COLS - x, buf, 0);
	}

	x = 0;
	if (t->paused) {
		attron(A_REVERSE | A_BOLD);
		x = put(t, 1, 0, COLS, "PAUSED", 0);
		attroff(A_REVERSE | A_BOLD);
		x += put(t, 1, x, COLS - x, " ", 0);
	}
	snprintf(buf, sizeof(buf),
		 "%s since %s (%s)  refresh %gs  sort %s%s",
		 app__growth_view(app) ? "node view (no allocator probes; "
		 "e: exact)" : "tracing", since, el,
		 app->env.delay, table__sort_name(t->key),
		 t->reverse ? " (reversed)" : "");
	x += put(t, 1, x, COLS - x, buf, 0);
	if (t->filter[0]) {
		char f[160];

		sanitize(t->filter, sizeof(t->filter), f, sizeof(f));
		snprintf(buf, sizeof(buf), "  filter \"%s\" (%d shown)", f,
			 t->nvis);
		x += put(t, 1, x, COLS - x, buf, 0);
	}
	/* how stacks were walked: their depth and what was lost */
	if (output__unwind_line(app, ubuf, sizeof(ubuf), true)) {
		snprintf(buf, sizeof(buf), "  stacks %s", ubuf);
		put(t, 1, x, COLS - x, buf, 0);
	}
}

static void row_text(const struct tui *t, const struct mt_row *r, int c,
		     char *buf, size_t len)
{
	bool growth = app__growth_view(t->app);

	switch (c) {
	case C_TRACE:
		snprintf(buf, len, "%s", r->probed ? "exact" :
			 r->exact ? "..." : "");
		break;
	case C_ANON:
		human_bytes(buf, len, r->rss_anon);
		break;
	case C_COST:
		if (r->budget_stopped)
			snprintf(buf, len, "stop");
		else if (r->probed && r->cost_pct >= 0)
			snprintf(buf, len, "%.0f%%", r->cost_pct);
		else
			buf[0] = '\0';
		break;
	case C_FLT:
		human_bytes(buf, len, r->fault_bps);
		break;
	case C_PID:
		/* '!': records were lost for it, its numbers may be low */
		snprintf(buf, len, "%7d%c", r->pid, r->loss ? '!' : ' ');
		break;
	case C_COMM:
		sanitize(r->comm, sizeof(r->comm), buf, len);
		break;
	case C_CGROUP:
		sanitize(r->cgroup, sizeof(r->cgroup), buf, len);
		break;
	case C_LIVE:
		/*
		 * The node view knows the live heap of exact rows only, and
		 * of Go programs (read from their runtime, no probe needed)
		 */
		if (growth && !r->probed && !r->cur.allocs && !r->go)
			snprintf(buf, len, "-");
		else
			human_bytes(buf, len, r->live_bytes);
		break;
	case C_GROW:
		human_bytes(buf, len, row__growth(r));
		break;
	case C_ALLOC:
		human_bytes(buf, len, r->alloc_bps);
		break;
	case C_FREE:
		human_bytes(buf, len, r->free_bps);
		break;
	case C_MMAP:
		human_bytes(buf, len, r->mmap_bytes);
		break;
	case C_RSS:
		human_bytes(buf, len, r->rss_bytes);
		break;
	case C_PF:
		fmt_count(buf, len, r->pf_ps);
		break;
	case C_LIM:
		if (r->cg_limit)
			snprintf(buf, len, "%.0f%%",
				 r->cg_usage * 100.0 / r->cg_limit);
		else
			buf[0] = '\0';
		break;
	case C_ETA:
		/* predicted time until the cgroup limit at current growth */
		human_secs(buf, len, r->cg_limit ? r->cg_eta_s : -1);
		break;
	default:
		sanitize(r->top_site, sizeof(r->top_site), buf, len);
		break;
	}
}

static void draw_table(struct tui *t)
{
	struct table *tb = t->app->table;
	char buf[320];
	int c, i, x, y;

	layout(t);
	attron(A_REVERSE);
	fill_line(2);
	for (c = 0, x = 0; c < C_MAX; c++) {
		int w = t->width[c];

		if (!w)
			continue;
		if (c == C_PID)
			w--;	/* title over the digits, not the '!' */
		if (cols[c].sort == t->key && t->key != SORT_PID)
			attron(A_BOLD);
		put(t, 2, x, w, cols[c].title, cols[c].right ? P_RIGHT : 0);
		attroff(A_BOLD);
		x += t->width[c] + 1;
	}
	attroff(A_REVERSE);

	if (!t->nvis) {
		put(t, HDR_LINES, 0, COLS, t->filter[0] ?
		    "  no process matches the filter (/ to change it)" :
		    "  no traced process yet", 0);
		return;
	}
	for (i = t->top, y = HDR_LINES; i < t->nvis && y < LINES - 1;
	     i++, y++) {
		struct mt_row *r = table__row(tb, t->vis[i]);
		attr_t a = A_NORMAL;

		if (r->exited)
			a |= A_DIM;
		if (i == t->sel)
			a |= A_REVERSE;
		attrset(a);
		if (i == t->sel)
			fill_line(y);
		for (c = 0, x = 0; c < C_MAX; c++) {
			if (!t->width[c])
				continue;
			row_text(t, r, c, buf, sizeof(buf));
			put(t, y, x, t->width[c], buf,
			    cols[c].right ? P_RIGHT | P_PAD : P_PAD);
			x += t->width[c] + 1;
		}
		attrset(A_NORMAL);
	}
}

static void site_title(struct tui *t, struct mt_row *r, int y)
{
	char comm[80], live[16], buf[512], go[256];

	sanitize(r->comm, sizeof(r->comm), comm, sizeof(comm));
	human_bytes(live, sizeof(live), r->live_bytes);
	/* a Go row: its runtime's heap and GC on the same line */
	gorow__line(r, go, sizeof(go));
	snprintf(buf, sizeof(buf), "PID %d  %s  live %s in %lld objects%s%s%s",
		 r->pid, comm, live, (long long)r->live_allocs,
		 r->exited ? "  (exited)" : "", go[0] ? "  | " : "", go);
	attron(A_BOLD);
	put(t, y, 0, COLS, buf, 0);
	attroff(A_BOLD);
}

static void draw_sites(struct tui *t)
{
	struct mt_row *r = site_row(t);
	char b[5][16], name[256], clean[320], buf[448];
	int i, y;

	if (!r)
		return;
	fix_site_sel(t, r);
	site_title(t, r, 2);
	attron(A_REVERSE);
	fill_line(3);
	put(t, 3, 0, COLS, "   LIVE    OBJS   ALLOC  ALLOCS  GROW/s  SITE", 0);
	attroff(A_REVERSE);
	if (!r->nsites) {
		put(t, 4, 0, COLS, t->app->env.stacks ?
		    "  no live allocation sites (yet)" :
		    "  no allocation sites: stacks are off (--no-stacks)", 0);
		return;
	}
	for (i = t->site_top, y = 4; i < r->nsites && y < LINES - 1;
	     i++, y++) {
		const struct mt_site_row *s = &r->sites[i];

		sites__first_user_frame(t->app, r, s, name, sizeof(name));
		if (s->go && gorow__two_heaps(r))
			strncat(name, " [go]", sizeof(name) - strlen(name) - 1);
		/* the node view's estimates: memory faulted in, or reserved */
		if (strcmp(sites__kind(s), "alloc"))
			strncat(name, strcmp(sites__kind(s), "map") ?
				" [faulted in]" : " [mapped]",
				sizeof(name) - strlen(name) - 1);
		sanitize(name, sizeof(name), clean, sizeof(clean));
		human_bytes(b[0], sizeof(b[0]), s->live_bytes);
		fmt_count(b[1], sizeof(b[1]), s->live_allocs);
		human_bytes(b[2], sizeof(b[2]), s->alloc_bytes);
		fmt_count(b[3], sizeof(b[3]), s->allocs);
		human_bytes(b[4], sizeof(b[4]), s->growth_bps);
		snprintf(buf, sizeof(buf), "%7s %7s %7s %7s %7s  %s",
			 b[0], b[1], b[2], b[3], b[4], clean);
		if (i == t->site_sel) {
			attron(A_REVERSE);
			fill_line(y);
		}
		put(t, y, 0, COLS, buf, 0);
		attroff(A_REVERSE);
	}
}

static void draw_stack(struct tui *t)
{
	struct mt_row *r = site_row(t);
	const struct mt_site_row *s = NULL;
	char b[4][16], buf[400];
	int i, y;

	if (r) {
		site_title(t, r, 2);
		for (i = 0; i < r->nsites; i++)
			if (r->sites[i].stack_id == t->site_id)
				s = &r->sites[i];
	}
	if (s) {
		human_bytes(b[0], sizeof(b[0]), s->live_bytes);
		human_bytes(b[1], sizeof(b[1]), s->alloc_bytes);
		human_bytes(b[2], sizeof(b[2]), s->growth_bps);
		fmt_count(b[3], sizeof(b[3]), s->allocs);
		snprintf(buf, sizeof(buf), "%s: live %s in %lld objects, "
			 "%s allocated in %s calls, growth %s/s", t->st_name,
			 b[0], (long long)s->live_allocs, b[1], b[3], b[2]);
	} else {
		snprintf(buf, sizeof(buf), "%s: no live memory any more",
			 t->st_name);
	}
	attron(A_REVERSE);
	fill_line(3);
	put(t, 3, 0, COLS, buf, 0);
	attroff(A_REVERSE);
	if (t->st_top > t->nst - sites_page())
		t->st_top = t->nst - sites_page();
	if (t->st_top < 0)
		t->st_top = 0;
	for (i = t->st_top, y = 4; i < t->nst && y < LINES - 1; i++, y++) {
		if (t->st[i].dim)
			attron(A_DIM);
		put(t, y, 0, COLS, t->st[i].text, 0);
		attroff(A_DIM);
	}
}

static const char *const help_text[] = {
	"memtrace live view",
	"",
	"l g a r m      sort by live, growth, alloc rate, RSS, limit %",
	"R              reverse the sort order",
	"Up/Down, j/k   move (PgUp/PgDn, Home/End)",
	"Enter, Right   open a process's sites / a site's stack",
	"Esc, Left, BS  go back",
	"/              filter by command or cgroup (empty: clear)",
	"p              pause / resume refreshing",
	"d              dump the selected process now",
	"e              node view: exact tracing of the selected process",
	"               on/off (probes its malloc and free; TRACE says so)",
	"?              this help",
	"q, Ctrl-C      quit",
	"",
	"PID!  events were lost for it: its numbers may be low",
	"dim   the process has exited (shown 3 more refreshes)",
	"PROBE% what exact tracing costs it: probe hits x the uprobe cost",
	"      measured at start, as a share of its CPU time (stop: over",
	"      --max-overhead, no longer traced)",
	"node view: RSS ANON MMAP PF/s exact; GROW/s FLT/s TOP SITE of",
	"      rows not traced exactly: estimates from sampled page faults",
	"MMAP  node view: private writable memory outside the heap (VmData",
	"      less the heap); -p, CMD, --exact: anonymous mmaps since start",
	"",
	"any key closes this help",
};

static void draw_help(struct tui *t)
{
	int i, w = 0, h = ARRAY_SIZE(help_text) + 2;
	WINDOW *win;

	for (i = 0; i < (int)ARRAY_SIZE(help_text); i++)
		if ((int)strlen(help_text[i]) > w)
			w = strlen(help_text[i]);
	w += 4;
	if (w > COLS)
		w = COLS;
	if (h > LINES)
		h = LINES;
	win = newwin(h, w, (LINES - h) / 2, (COLS - w) / 2);
	if (!win)
		return;
	werase(win);
	box(win, 0, 0);
	for (i = 0; i < (int)ARRAY_SIZE(help_text) && i + 1 < h - 1; i++)
		mvwaddnstr(win, i + 1, 2, help_text[i], w - 4);
	wnoutrefresh(win);
	delwin(win);
}

static void draw_status(struct tui *t)
{
	static const char *const hints[] = {
		[SCR_TABLE] = "Enter sites  / filter  l g a r m sort  "
			      "R reverse  p pause  d dump  e exact  ? help  q quit",
		[SCR_SITES] = "Enter stack  Esc back  Up/Down select  "
			      "? help  q quit",
		[SCR_STACK] = "Up/Down scroll  Esc back  ? help  q quit",
	};
	int y = LINES - 1, x;

	if (t->prompting) {
		char f[160];

		sanitize(t->filter, sizeof(t->filter), f, sizeof(f));
		x = put(t, y, 0, COLS, "filter (command or cgroup): ", 0);
		x += put(t, y, x, COLS - x, f, 0);
		move(y, x < COLS ? x : COLS - 1);
		curs_set(1);
		return;
	}
	curs_set(0);
	if (t->status[0] && now_ns() < t->status_until) {
		attron(A_BOLD);
		put(t, y, 0, COLS, t->status, 0);
		attroff(A_BOLD);
		return;
	}
	attron(A_DIM);
	put(t, y, 0, COLS, hints[t->scr], 0);
	attroff(A_DIM);
}

static void draw(struct tui *t)
{
	erase();
	if (LINES < HDR_LINES + 3 || COLS < 40) {
		put(t, 0, 0, COLS, "terminal too small for memtrace", 0);
		wnoutrefresh(stdscr);
		doupdate();
		return;
	}
	build_vis(t);
	if (t->scr != SCR_TABLE && !site_row(t)) {
		/* expired while we looked at it */
		t->scr = SCR_TABLE;
		set_status(t, "the process is gone");
	}
	draw_header(t);
	if (t->scr == SCR_TABLE)
		draw_table(t);
	else if (t->scr == SCR_SITES)
		draw_sites(t);
	else
		draw_stack(t);
	draw_status(t);
	wnoutrefresh(stdscr);
	if (t->help)
		draw_help(t);
	doupdate();
}

/* ---- stack expansion ---------------------------------------------------- */

static int add_line(struct tui *t, int *cap, bool dim, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int add_line(struct tui *t, int *cap, bool dim, const char *fmt, ...)
{
	va_list ap;

	if (t->nst == *cap) {
		int n = *cap ? *cap * 2 : 64;
		struct stack_line *l = realloc(t->st, n * sizeof(*l));

		if (!l)
			return -ENOMEM;
		t->st = l;
		*cap = n;
	}
	va_start(ap, fmt);
	vsnprintf(t->st[t->nst].text, sizeof(t->st[0].text), fmt, ap);
	va_end(ap);
	t->st[t->nst++].dim = dim;
	return 0;
}

/*
 * Resolve the selected site's stack now, once: the lines stay on screen
 * even if the site is freed or the process exits while we look at it.
 * Inlined frames of one return address share its number.
 */
static int open_stack(struct tui *t)
{
	struct mt_row *r = site_row(t);
	const struct mt_site_row *s;
	struct syms_frame fr[MAX_INLINE];
	char raw[600], txt[600], mod[300], name[256];
	uint64_t stk[MT_MAX_STACK];
	int i, j, n, nstk, cap = 0, err = 0;

	if (!r || !r->nsites)
		return -ENOENT;
	fix_site_sel(t, r);
	s = &r->sites[t->site_sel];
	t->nst = 0;
	t->st_top = 0;
	free(t->st);
	t->st = NULL;
	sites__first_user_frame(t->app, r, s, name, sizeof(name));
	sanitize(name, sizeof(name), t->st_name, sizeof(t->st_name));
	if (!s->stack_id || !s->nframes)
		err = add_line(t, &cap, false, "  no stack was recorded for "
			       "this site (stack map full, or --no-stacks)");
	/* a Go stack as pprof shows it: each inlined call listed once */
	nstk = syms__go_stack(t->app->syms, r->pid, s->stack,
			      s->nframes < MT_MAX_STACK ? s->nframes :
			      MT_MAX_STACK, stk);
	for (i = 0; i < nstk && !err; i++) {
		n = syms__resolve_ret(t->app->syms, r->pid, stk[i], fr,
				      MAX_INLINE);
		if (n <= 0) {
			err = add_line(t, &cap, false,
				       "#%-3d 0x%012llx  [unknown]", i,
				       (unsigned long long)stk[i]);
			continue;
		}
		for (j = 0; j < n && !err; j++) {
			syms__format(&fr[j], raw, sizeof(raw));
			sanitize(raw, sizeof(raw), txt, sizeof(txt));
			mod[0] = '\0';
			/* unresolved frames already name their module */
			if (fr[j].func[0] && fr[j].module[0]) {
				char m[256];

				sanitize(fr[j].module, sizeof(fr[j].module), m,
					 sizeof(m));
				snprintf(mod, sizeof(mod), "  [%s]", m);
			}
			if (!j)
				err = add_line(t, &cap, false,
					       "#%-3d 0x%012llx  %s%s", i,
					       (unsigned long long)stk[i],
					       txt, mod);
			else
				err = add_line(t, &cap, true, "%20s  %s%s", "",
					       txt, mod);
		}
	}
	return err;
}

/* ---- keys --------------------------------------------------------------- */

static bool is_enter(int ch)
{
	return ch == '\n' || ch == '\r' || ch == KEY_ENTER;
}

static bool is_back(int ch)
{
	return ch == KEY_ESC || ch == KEY_BACKSPACE || ch == 127 || ch == 8 ||
	       ch == KEY_LEFT;
}

/* New position for a list selection, or -1 if ch is not a move key. */
static int move_key(int ch, int cur, int n, int page)
{
	switch (ch) {
	case KEY_UP: case 'k': cur--; break;
	case KEY_DOWN: case 'j': cur++; break;
	case KEY_PPAGE: cur -= page; break;
	case KEY_NPAGE: cur += page; break;
	case KEY_HOME: cur = 0; break;
	case KEY_END: cur = n - 1; break;
	default: return -1;
	}
	if (cur >= n)
		cur = n - 1;
	return cur < 0 ? 0 : cur;
}

static void prompt_key(struct tui *t, int ch)
{
	size_t len = strlen(t->filter);

	if (is_enter(ch)) {
		t->prompting = false;
	} else if (ch == KEY_ESC) {
		memcpy(t->filter, t->old_filter, sizeof(t->filter));
		t->prompting = false;
	} else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
		/* one character, not one byte, of UTF-8 */
		while (len &&
		       ((unsigned char)t->filter[len - 1] & 0xc0) == 0x80)
			len--;
		if (len)
			len--;
		t->filter[len] = '\0';
	} else if (ch == 21) {		/* Ctrl-U */
		t->filter[0] = '\0';
	} else if (ch >= ' ' && ch < 256 && ch != 127 &&
		   len + 1 < sizeof(t->filter)) {
		t->filter[len] = ch;
		t->filter[len + 1] = '\0';
	}
}

static void set_sort(struct tui *t, enum mt_sort key)
{
	if (t->key != key)
		t->reverse = false;
	t->key = key;
}

static void table_key(struct tui *t, int ch)
{
	int n;

	build_vis(t);
	n = move_key(ch, t->sel, t->nvis, table_page());
	if (n >= 0 && t->nvis) {
		t->sel = n;
		t->sel_pid = table__row(t->app->table, t->vis[n])->pid;
	} else if ((is_enter(ch) || ch == KEY_RIGHT) && t->sel_pid) {
		t->scr = SCR_SITES;
		t->site_pid = t->sel_pid;
		t->site_id = -1;
		t->site_sel = t->site_top = 0;
	} else if (ch == KEY_ESC && t->filter[0]) {
		t->filter[0] = '\0';
	}
}

static void sites_key(struct tui *t, int ch)
{
	struct mt_row *r = site_row(t);
	int n;

	if (is_back(ch)) {
		t->scr = SCR_TABLE;
		t->sel_pid = t->site_pid;
		return;
	}
	if (!r)
		return;
	fix_site_sel(t, r);
	n = move_key(ch, t->site_sel, r->nsites, sites_page());
	if (n >= 0 && r->nsites) {
		t->site_sel = n;
		t->site_id = r->sites[n].stack_id;
	} else if ((is_enter(ch) || ch == KEY_RIGHT) && r->nsites) {
		if (open_stack(t))
			set_status(t, "cannot show the stack: out of memory");
		else
			t->scr = SCR_STACK;
	}
}

static void stack_key(struct tui *t, int ch)
{
	int page = sites_page(), n;

	if (is_back(ch)) {
		t->scr = SCR_SITES;
		return;
	}
	/* scroll: the "selection" is the first line shown */
	n = move_key(ch, t->st_top, t->nst - page + 1, page);
	if (n >= 0)
		t->st_top = n;
}

static void dump_selected(struct tui *t)
{
	int err, pid = t->scr == SCR_TABLE ? t->sel_pid : t->site_pid;
	char msg[128];

	if (!t->app->dump) {
		set_status(t, "dump: capture is not available");
		return;
	}
	if (!pid)
		return;
	/* a capture (gcore) can take a while: say so before it starts */
	snprintf(msg, sizeof(msg), "dump: capturing pid %d...", pid);
	set_status(t, msg);
	draw(t);
	err = dump__now(t->app->dump, pid, "asked for in the live view");
	if (err)
		snprintf(msg, sizeof(msg), "dump: pid %d: %s", pid,
			 strerror(-err));
	else
		snprintf(msg, sizeof(msg), "dump: pid %d: capture started",
			 pid);
	set_status(t, msg);
}

/* The node view: exact tracing of the selected process, on or off. */
static void toggle_exact(struct tui *t)
{
	int err, pid = t->scr == SCR_TABLE ? t->sel_pid : t->site_pid;
	struct mt_row *r = table__get(t->app->table, pid);
	char msg[160];

	if (!app__growth_view(t->app)) {
		set_status(t, "e: every traced process is traced exactly "
			   "already (-p, -- CMD or --exact)");
		return;
	}
	if (!r || r->exited)
		return;
	/* probed by the attach thread: the table goes on meanwhile */
	err = app__set_exact(t->app, pid, !r->exact);
	if (err)
		snprintf(msg, sizeof(msg), "exact: pid %d: %s", pid,
			 strerror(-err));
	else
		snprintf(msg, sizeof(msg), "exact tracing of pid %d %s", pid,
			 r->exact ? "on: probing its allocators (TRACE says "
			 "exact once they are in)" :
			 "off: its probes are gone");
	set_status(t, msg);
}

static void on_key(struct tui *t, int ch)
{
	if (ch == KEY_RESIZE)
		return;		/* draw() lays out for the new size */
	if (t->prompting) {
		prompt_key(t, ch);
		return;
	}
	if (t->help) {
		t->help = false;
		return;
	}
	switch (ch) {
	case 'q':
	case 'Q':
		t->quit = true;
		return;
	case '?':
		t->help = true;
		return;
	case 'p':
		t->paused = !t->paused;
		return;
	case 'l': set_sort(t, SORT_LIVE); return;
	case 'g': set_sort(t, SORT_GROWTH); return;
	case 'a': set_sort(t, SORT_ALLOC_RATE); return;
	case 'r': set_sort(t, SORT_RSS); return;
	case 'm': set_sort(t, SORT_LIMIT); return;
	case 'R':
		t->reverse = !t->reverse;
		return;
	case '/':
		memcpy(t->old_filter, t->filter, sizeof(t->filter));
		t->prompting = true;
		t->scr = SCR_TABLE;
		return;
	case 'd':
		dump_selected(t);
		return;
	case 'e':
		toggle_exact(t);
		return;
	}
	if (t->scr == SCR_TABLE)
		table_key(t, ch);
	else if (t->scr == SCR_SITES)
		sites_key(t, ch);
	else
		stack_key(t, ch);
}

/* ---- terminal setup ----------------------------------------------------- */

static int term_open(struct tui *t)
{
	const char *term = getenv("TERM");
	const char *cup;
	char clean[64];

	if (!term || !*term || !strcmp(term, "dumb"))
		goto fail;
	/* keys come from the terminal even when stdin is redirected */
	t->in = isatty(STDIN_FILENO) ? stdin : fopen("/dev/tty", "re");
	if (!t->in)
		goto fail;
	/* unlike initscr(), newterm() returns instead of exiting on error */
	t->screen = newterm(NULL, stdout, t->in);
	if (!t->screen)
		goto fail;
	cup = tigetstr("cup");
	if (!cup || cup == (char *)-1) {
		endwin();
		delscreen(t->screen);
		t->screen = NULL;
		goto fail;
	}
	cbreak();		/* not raw(): Ctrl-C must still raise SIGINT */
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);	/* a lone Esc means "back": answer it now */
	curs_set(0);
	if (has_colors()) {
		start_color();
		use_default_colors();
		init_pair(1, COLOR_RED, -1);
	}
	t->ellipsis = MB_CUR_MAX > 1 && wcwidth(L'\u2026') == 1 ?
		      L'\u2026' : L'~';
	return 0;
fail:
	if (t->in && t->in != stdin)
		fclose(t->in);
	t->in = NULL;
	sanitize(term ? term : "(unset)", term ? strlen(term) : 7, clean,
		 sizeof(clean));
	fprintf(stderr, "memtrace: cannot start the live view (TERM=%s): "
		"falling back to --batch\n", clean);
	return TUI_FALLBACK;
}

static void term_close(struct tui *t)
{
	endwin();
	crash_handlers(false);
	delscreen(t->screen);
	t->screen = NULL;
	if (t->in && t->in != stdin)
		fclose(t->in);
	t->in = NULL;
}

/* ---- main loop ---------------------------------------------------------- */

/*
 * The live table in the one main loop (app__run): the terminal's input
 * is in its poll set, keys are taken and the screen drawn each turn.
 */
static int tui_turn(void *ctx)
{
	struct tui *t = ctx;
	bool dirty = capture_drain(t);
	int ch;

	while ((ch = getch()) != ERR) {
		on_key(t, ch);
		dirty = true;
	}
	if (t->quit)
		return 1;
	/* a status message timing out needs a frame too */
	if (t->status[0] && now_ns() >= t->status_until) {
		t->status[0] = '\0';
		dirty = true;
	}
	if (dirty)
		draw(t);
	return 0;
}

static int tui_refresh(void *ctx)
{
	struct tui *t = ctx;

	refresh_model(t);
	draw(t);
	return 0;
}

static bool tui_paused(void *ctx)
{
	return ((struct tui *)ctx)->paused;
}

static int run(struct tui *t, struct ring_buffer *rb)
{
	const struct app_view v = {
		.ctx = t,
		.input_fd = fileno(t->in),
		.max_wait_ms = MAX_POLL_MS,
		.paused = tui_paused,
		.turn = tui_turn,
		.refresh = tui_refresh,
	};
	int err = app__run(t->app, rb, &v);

	return err < 0 ? err : 0;
}

int tui__run(struct app *app, struct ring_buffer *rb)
{
	struct tui t = {
		.app = app,
		.key = SORT_LIVE,
		.site_id = -1,
		.err_fd = -1,
		.saved_err = -1,
	};
	const char *loc;
	int err;

	/* wide characters need the user's locale; numbers stay "1.5M" */
	loc = setlocale(LC_ALL, NULL);
	t.old_locale = loc ? strdup(loc) : NULL;
	setlocale(LC_ALL, "");
	setlocale(LC_NUMERIC, "C");

	err = term_open(&t);
	if (err)
		goto out;
	crash_handlers(true);
	capture_begin(&t);
	/* a first look right away, rather than a blank screen for -d secs */
	refresh_model(&t);
	draw(&t);
	err = run(&t, rb);
	term_close(&t);
	capture_end(&t);
	if (err)
		fprintf(stderr, "memtrace: ring buffer: %s\n", strerror(-err));
out:
	if (t.old_locale)
		setlocale(LC_ALL, t.old_locale);
	free(t.old_locale);
	free(t.vis);
	free(t.st);
	return err;
}
