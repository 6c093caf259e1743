// SPDX-License-Identifier: GPL-2.0
/*
 * Pre-OOM evidence: cgroup fields of every row, threshold triggers, and
 * the capture itself (small artifact first, then a gcore core dump).
 *
 * A capture runs alongside the main loop rather than blocking it: the
 * target is SIGSTOPped, the small artifact is written at once (a few
 * milliseconds), then gcore runs as a child whose exit, the target's
 * exit and a deadline timer are all file descriptors in the main poll
 * set.  The target must never be left stopped, so before the SIGSTOP a
 * watchdog child is forked that blocks on a pipe; if memtrace dies in
 * any way (SIGKILL included) the pipe closes and the watchdog kills
 * gcore and sends SIGCONT.
 *
 * Everything goes under one root-owned, root-only directory opened once;
 * files are created with openat() on directory fds, O_NOFOLLOW|O_EXCL,
 * mode 0600, under ".tmp-" names that are renamed when complete.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "cgroup.h"
#include "dump.h"
#include "pprof.h"
#include "sites.h"
#include "syms.h"
#include "util.h"

#define DUMP_DEFAULT_DIR	"/var/lib/memtrace"
#define DUMP_MAX_CAPS		8	/* captures in flight at once */
#define DUMP_REPORT_SITES	10
#define DUMP_REPORT_FRAMES	16
#define DUMP_CG_RECHECK		5	/* refreshes between cgroup rereads */
#define DUMP_CG_KEEP		30	/* refreshes an unused cgroup is kept */
#define DUMP_STAT_MAX		(64 << 10)
#define DUMP_HOT_POLL_NS	20000000ULL	/* v2: poll usage near it */
#define DUMP_RESUME_WAIT_NS	3000000000ULL

/* One memory cgroup that holds at least one row. */
struct cgent {
	struct cg_limits lim;
	char path[512];		/* as in /proc/PID/cgroup */
	char name[128];		/* short container name, raw: rows, JSON */
	char shown[512];	/* name escaped: every text output */
	uint64_t read_seq;	/* refresh that last read it */
	uint64_t used_seq;	/* refresh that last saw a row in it */
	uint64_t prev_usage, prev_ns;
	double rate;		/* usage growth, bytes/s */
	uint64_t threshold;	/* 0 = no trigger */
	struct cg_watch *watch;
	bool nolimit_warned;	/* said once: --dump-at PCT% cannot fire */
	bool watch_warned;
	bool hot;		/* v2: may cross before the next refresh */
	char *stat_armed;	/* memory.stat when the trigger was armed */
	char *stat_last;	/* memory.stat at the last refresh */
};

/* What dump.c remembers about a pid between refreshes. */
struct pstate {
	int pid;
	char cgtext[1024];	/* raw /proc/PID/cgroup, to notice moves */
	struct cgent *cg;
	uint64_t seen_seq;
	int dumps;
	uint64_t last_dump_ns;
};

struct capture {
	bool active;
	int pid;
	int pidfd;		/* the target; pid reuse cannot fool a signal */
	int artfd;		/* the artifact directory */
	char name[256];		/* its final name */
	char comm[64];
	bool stopped;		/* we stopped it: we owe it a SIGCONT */
	pid_t gcore;		/* 0 = not running */
	int gcore_pidfd;
	int logfd;
	int wd_fd;		/* write end of the watchdog's pipe */
	pid_t wd_pid;
	uint64_t t_trigger, t_stop, t_gcore, deadline;
	int result;		/* 0 or -errno for dump__now() */
	char high_file[1100];	/* --slow-down: memory.high to restore */
	char high_saved[32];
	uint64_t high_set;	/* what we wrote there */
};

struct dump {
	struct app *app;
	char dir[PATH_MAX];
	char shown_dir[PATH_MAX];	/* escaped, for messages */
	int dirfd;		/* -1 until first needed */
	bool armed;		/* --dump-at given */
	bool write_oom;		/* post-mortems on OOM kills */
	int timerfd;
	uint64_t seq;
	char self_cg[1024];	/* our memory cgroup directory */
	struct cgent **cgs;
	int ncgs, capcgs;
	struct pstate *ps;
	int nps, capps;
	struct capture caps[DUMP_MAX_CAPS];
	bool gcore_warned;
	bool full_warned;	/* said: all DUMP_MAX_CAPS slots busy */
	char last_name[256];	/* artifact of the last capture_start() */
};

/* ---- small helpers -------------------------------------------------- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Keep [A-Za-z0-9._-] and make the rest '_': names go into file names. */
static void file_safe(const char *in, size_t inlen, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < inlen && in[i] && o + 1 < outlen; i++) {
		unsigned char c = in[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    (c == '.' && o))
			out[o++] = c;
		else
			out[o++] = '_';
	}
	out[o] = '\0';
	if (!o)
		snprintf(out, outlen, "_");
}

/* 'R', 'S', 'T', ... of /proc/PID/stat; 0 if the process is gone. */
static char proc_state(int pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	/* comm may hold ')' and spaces: the state follows the last ')' */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	return p[2] == 'Z' || p[2] == 'X' ? 0 : p[2];
}

static uint64_t smaps_field(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtoull(p + strlen(key), NULL, 10) << 10 : 0;
}

/*
 * SIGCONT until the process no longer shows as stopped.  A tracer that
 * is being killed (gdb after a timeout) keeps it in a trace stop ('t')
 * until the kernel detaches it; a SIGSTOP that gdb's attach queued can
 * surface right after that, so keep checking for a moment.
 */
static void resume_target(int pidfd, int pid)
{
	uint64_t deadline = now_ns() + DUMP_RESUME_WAIT_NS;
	int calm = 0;
	char st;

	while (calm < 3 && now_ns() < deadline) {
		if (pidfd_send_signal(pidfd, SIGCONT, NULL, 0) &&
		    errno == ESRCH)
			return;
		st = proc_state(pid);
		if (!st)
			return;
		calm = st == 'T' || st == 't' ? 0 : calm + 1;
		usleep(calm ? 1000 : 5000);
	}
}

/* ---- watchdog ------------------------------------------------------- */

struct wd_msg {
	char op;		/* 'g': gcore runs in pgid; 'd': done */
	int32_t pgid;
};

static void close_except(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 3)
		close_range(3, lo - 1, 0);
	if (hi > lo + 1)
		close_range(lo + 1, hi - 1, 0);
	close_range(hi + 1, ~0U, 0);
}

/*
 * The watchdog outlives memtrace only to undo the stop.  It ignores the
 * terminal's signals (a ^C aimed at memtrace must not take it along)
 * and holds nothing but the pipe and the target's pidfd: BPF links or
 * the ring buffer kept open here would outlive memtrace.
 */
static void __attribute__((noreturn)) watchdog_main(int rfd, int pidfd,
						     int pid)
{
	struct wd_msg m;
	int32_t pgid = 0;
	ssize_t n;

	close_except(rfd, pidfd);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "memtrace-wd");
	for (;;) {
		n = read(rfd, &m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n == sizeof(m) && m.op == 'g') {
			pgid = m.pgid;
			continue;
		}
		if (n == sizeof(m) && m.op == 'd')
			_exit(0);
		break;		/* EOF: memtrace is gone */
	}
	if (pgid > 0)
		kill(-pgid, SIGKILL);
	resume_target(pidfd, pid);
	fprintf(stderr, "memtrace-wd: memtrace died during the dump of pid "
		"%d; resumed it\n", pid);
	_exit(0);
}

static int watchdog_start(struct capture *c)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (!pid) {
		close(p[1]);
		watchdog_main(p[0], c->pidfd, c->pid);
	}
	close(p[0]);
	c->wd_fd = p[1];
	c->wd_pid = pid;
	return 0;
}

static void watchdog_tell(struct capture *c, char op, int32_t pgid)
{
	struct wd_msg m = { .op = op, .pgid = pgid };
	ssize_t n;

	if (c->wd_fd < 0)
		return;
	/* a dead watchdog cannot be helped: we resume the target ourselves */
	n = write(c->wd_fd, &m, sizeof(m));
	(void)n;
}

static void watchdog_stop(struct capture *c)
{
	if (c->wd_fd < 0)
		return;
	watchdog_tell(c, 'd', 0);
	close(c->wd_fd);
	c->wd_fd = -1;
	waitpid(c->wd_pid, NULL, 0);
	c->wd_pid = 0;
}

/* ---- the dump directory --------------------------------------------- */

/*
 * Cores hold secrets (keys, tokens, user data), and root writes here:
 * a directory that others can write or swap for a symlink would let them
 * read the cores or aim root's writes at any file.
 */
static int open_dir(struct dump *d)
{
	struct stat st;
	int fd, err;

	if (d->dirfd >= 0)
		return 0;
	if (lstat(d->shown_dir, &st) && errno == ENOENT &&
	    mkdir(d->shown_dir, 0700) && errno != EEXIST) {
		err = -errno;
		fprintf(stderr, "memtrace: dump dir %s: cannot create: %s\n",
			d->shown_dir, strerror(errno));
		return err;
	}
	if (lstat(d->shown_dir, &st)) {
		err = -errno;
		fprintf(stderr, "memtrace: dump dir %s: %s\n", d->shown_dir,
			strerror(errno));
		return err;
	}
	if (S_ISLNK(st.st_mode)) {
		fprintf(stderr, "memtrace: dump dir %s is a symlink; refusing "
			"(give the real directory)\n", d->shown_dir);
		return -ELOOP;
	}
	fd = open(d->shown_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "memtrace: dump dir %s: %s\n", d->shown_dir,
			strerror(errno));
		return err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		goto fail;
	}
	if (st.st_uid != 0 || (st.st_mode & 022)) {
		fprintf(stderr, "memtrace: dump dir %s is %s; refusing (cores "
			"hold secrets: use a root-owned directory, mode 0700)\n",
			d->shown_dir, st.st_uid ? "not owned by root"
					  : "writable by group or others");
		err = -EPERM;
		goto fail;
	}
	d->dirfd = fd;
	return 0;
fail:
	close(fd);
	return err;
}

/* A file being written in the artifact directory. */
struct afile {
	FILE *f;
	int dirfd;
	char tmp[300], name[256];
};

static int af_open(struct afile *a, int dirfd, const char *name)
{
	int fd;

	a->dirfd = dirfd;
	snprintf(a->name, sizeof(a->name), "%s", name);
	snprintf(a->tmp, sizeof(a->tmp), ".tmp-%s", name);
	fd = openat(dirfd, a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	a->f = fdopen(fd, "w");
	if (!a->f) {
		close(fd);
		unlinkat(dirfd, a->tmp, 0);
		return -ENOMEM;
	}
	return 0;
}

static int af_commit(struct afile *a)
{
	int err = 0;

	if (fflush(a->f) || ferror(a->f))
		err = errno ? -errno : -EIO;
	if (fclose(a->f) && !err)
		err = -errno;
	a->f = NULL;
	if (!err && renameat(a->dirfd, a->tmp, a->dirfd, a->name))
		err = -errno;
	if (err)
		unlinkat(a->dirfd, a->tmp, 0);
	return err;
}

static int write_buf(int dirfd, const char *name, const char *buf,
		     size_t len)
{
	struct afile a;
	int err = af_open(&a, dirfd, name);

	if (err)
		return err;
	fwrite(buf, 1, len, a.f);
	return af_commit(&a);
}

static int copy_file(int dirfd, const char *src, const char *name)
{
	char *buf = malloc(DUMP_STAT_MAX);
	int n, err;

	if (!buf)
		return -ENOMEM;
	n = read_file(src, buf, DUMP_STAT_MAX);
	err = n < 0 ? n : write_buf(dirfd, name, buf, n);
	free(buf);
	return err;
}

/* ---- cgroups -------------------------------------------------------- */

static struct pstate *pstate_get(struct dump *d, int pid, bool create)
{
	struct pstate *p;
	int i;

	for (i = 0; i < d->nps; i++)
		if (d->ps[i].pid == pid)
			return &d->ps[i];
	if (!create)
		return NULL;
	if (d->nps == d->capps) {
		int cap = d->capps ? d->capps * 2 : 64;

		p = realloc(d->ps, cap * sizeof(*p));
		if (!p)
			return NULL;
		d->ps = p;
		d->capps = cap;
	}
	p = &d->ps[d->nps++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	return p;
}

static struct cgent *cgent_get(struct dump *d, const struct cg_limits *lim)
{
	struct cgent *c, **n;
	int i;

	for (i = 0; i < d->ncgs; i++)
		if (!strcmp(d->cgs[i]->lim.dir, lim->dir))
			return d->cgs[i];
	if (d->ncgs == d->capcgs) {
		int cap = d->capcgs ? d->capcgs * 2 : 16;

		n = realloc(d->cgs, cap * sizeof(*n));
		if (!n)
			return NULL;
		d->cgs = n;
		d->capcgs = cap;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->lim = *lim;
	snprintf(c->path, sizeof(c->path), "%s", lim->path);
	snprintf(c->name, sizeof(c->name), "%s", lim->name);
	/* a cgroup's name is whoever created it's choice of bytes */
	sanitize(c->name, sizeof(c->name), c->shown, sizeof(c->shown));
	if (!c->shown[0])
		snprintf(c->shown, sizeof(c->shown), "/");
	c->read_seq = d->seq;	/* cg__limits() just read it */
	c->prev_usage = lim->usage;
	c->prev_ns = now_ns();
	d->cgs[d->ncgs++] = c;
	return c;
}

static void cgent_free(struct cgent *c)
{
	cg_watch__free(c->watch);
	free(c->stat_armed);
	free(c->stat_last);
	free(c);
}

static char *read_stat(const struct cgent *c)
{
	char *buf = malloc(DUMP_STAT_MAX);

	if (buf && cg__read_stat(c->lim.dir, buf, DUMP_STAT_MAX) < 0 &&
	    !buf[0]) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Once per refresh per cgroup: limits, usage rate, memory.stat. */
static void cgent_read(struct dump *d, struct cgent *c, uint64_t now)
{
	struct cg_limits lim;
	double dt;
	char *st;

	c->read_seq = d->seq;
	if (cg__limits_dir(c->lim.version, c->lim.dir, &lim))
		return;		/* gone: keep the last numbers */
	dt = (now - c->prev_ns) / 1e9;
	if (dt > 0.01) {
		c->rate = ((double)lim.usage - (double)c->prev_usage) / dt;
		c->prev_usage = lim.usage;
		c->prev_ns = now;
	}
	c->lim = lim;
	st = read_stat(c);
	if (st) {
		free(c->stat_last);
		c->stat_last = st;
	}
}

static uint64_t threshold_of(const struct dump *d, const struct cgent *c)
{
	const struct env *env = &d->app->env;
	uint64_t thr = 0, t;

	if (env->dump_at_bytes)
		thr = env->dump_at_bytes;
	if (env->dump_at_pct > 0 && c->lim.effective != CG_UNLIMITED) {
		t = c->lim.effective * (env->dump_at_pct / 100.0);
		thr = thr ? min_u64(thr, t) : t;
	}
	return thr;
}

/* (Re)arm the notification when the threshold changes. */
static void cgent_arm(struct dump *d, struct cgent *c)
{
	uint64_t thr = threshold_of(d, c);
	int err;

	if (!thr && d->app->env.dump_at_pct > 0 && !c->nolimit_warned) {
		c->nolimit_warned = true;
		fprintf(stderr, "memtrace: cgroup %s has no memory limit: "
			"--dump-at %.0f%% cannot trigger for its processes "
			"(use --dump-at BYTES)\n", c->shown,
			d->app->env.dump_at_pct);
	}
	if (thr == c->threshold)
		return;
	cg_watch__free(c->watch);
	c->watch = NULL;
	c->threshold = thr;
	if (!thr)
		return;
	/* after an OOM kill the cgroup is often gone: keep this one */
	free(c->stat_armed);
	c->stat_armed = read_stat(c);
	err = cg_watch__new(&c->lim, thr, &c->watch);
	if (err && !c->watch_warned) {
		c->watch_warned = true;
		fprintf(stderr, "memtrace: cgroup %s: no threshold "
			"notification (%s); checking at each refresh\n",
			c->shown, strerror(-err));
	}
}

static void fill_row(struct mt_row *r, const struct cgent *c)
{
	const struct cg_limits *l = &c->lim;

	snprintf(r->cgroup, sizeof(r->cgroup), "%s", c->name);
	r->cg_version = l->version;
	r->cg_usage = l->usage;
	r->cg_limit = l->effective == CG_UNLIMITED ? 0 : l->effective;
	r->cg_eta_s = -1;
	if (r->cg_limit && l->usage >= r->cg_limit)
		r->cg_eta_s = 0;
	else if (r->cg_limit && c->rate > 0)
		r->cg_eta_s = (r->cg_limit - l->usage) / c->rate;
}

/* Map a live row to its cgroup; /proc/PID/cgroup is the key. */
static void row_cgroup(struct dump *d, struct mt_row *r, struct pstate *p,
		       uint64_t now)
{
	char path[64], text[sizeof(p->cgtext)];
	struct cg_limits lim;
	int n;

	if (!p->cg || !p->cgtext[0] ||
	    (d->seq + r->pid) % DUMP_CG_RECHECK == 0) {
		snprintf(path, sizeof(path), "/proc/%d/cgroup", r->pid);
		n = read_file(path, text, sizeof(text));
		if (n > 0 && strcmp(text, p->cgtext)) {
			memcpy(p->cgtext, text, sizeof(text));
			p->cg = NULL;
			r->cgroup[0] = '\0';
			r->cg_version = 0;
			if (!cg__limits(NULL, NULL, r->pid, &lim)) {
				if (lim.version)
					p->cg = cgent_get(d, &lim);
				else
					snprintf(r->cgroup, sizeof(r->cgroup),
						 "%s", lim.name);
			}
		}
	}
	if (!p->cg)
		return;
	if (p->cg->read_seq != d->seq)
		cgent_read(d, p->cg, now);
	p->cg->used_seq = d->seq;
}

/* ---- timer ---------------------------------------------------------- */

static void timer_arm(struct dump *d)
{
	struct itimerspec its = { 0 };
	uint64_t next = UINT64_MAX;
	int i;

	if (d->timerfd < 0)
		return;
	for (i = 0; i < DUMP_MAX_CAPS; i++)
		if (d->caps[i].active && d->caps[i].gcore)
			next = min_u64(next, d->caps[i].deadline);
	for (i = 0; i < d->ncgs; i++)
		if (d->cgs[i]->hot)
			next = min_u64(next, now_ns() + DUMP_HOT_POLL_NS);
	if (next != UINT64_MAX) {
		its.it_value.tv_sec = next / 1000000000ULL;
		its.it_value.tv_nsec = next % 1000000000ULL;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(d->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- the capture ---------------------------------------------------- */

static bool find_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];
	const char *p, *e;

	if (!path)
		path = "/usr/bin:/bin";
	for (p = path; *p; p = *e ? e + 1 : e) {
		e = strchrnul(p, ':');
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)(e - p), p, prog);
		if (e > p && !access(buf, X_OK))
			return true;
	}
	return false;
}

static int make_artifact_dir(struct dump *d, struct capture *c,
			     const char *container, bool oom, char *tmp,
			     size_t tmplen)
{
	char ts[32], comm[40], cont[80], base[200];
	time_t now = time(NULL);
	struct tm tm;
	int i;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	file_safe(c->comm, strlen(c->comm), comm, sizeof(comm));
	file_safe(container, strlen(container), cont, sizeof(cont));
	snprintf(base, sizeof(base), "%s-%d-%s-%s%s", ts, c->pid, comm, cont,
		 oom ? "-oom" : "");
	for (i = 0; i < 100; i++) {
		struct stat st;

		if (i)
			snprintf(c->name, sizeof(c->name), "%s.%d", base, i);
		else
			snprintf(c->name, sizeof(c->name), "%s", base);
		snprintf(tmp, tmplen, ".tmp-%s", c->name);
		if (!fstatat(d->dirfd, c->name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (mkdirat(d->dirfd, tmp, 0700)) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		c->artfd = openat(d->dirfd, tmp, O_RDONLY | O_DIRECTORY |
				  O_NOFOLLOW | O_CLOEXEC);
		return c->artfd < 0 ? -errno : 0;
	}
	return -EEXIST;
}

static void report_sites(struct app *app, struct mt_row *r, FILE *f)
{
	char b[4][16], raw[600], frame[2400];
	int i, j, k, n;

	if (!r || !r->nsites) {
		fprintf(f, "\nAllocation sites: none recorded.  %s\n",
			app->env.mode == MODE_DUMP ?
			"memtrace dump PID has no tracing history, so the heap "
			"profile is empty; run memtrace -p PID --dump-at ... "
			"to record allocations before a capture." :
			"The process made no traced heap allocations (or was "
			"traced only briefly).");
		return;
	}
	n = r->nsites < DUMP_REPORT_SITES ? r->nsites : DUMP_REPORT_SITES;
	fprintf(f, "\nTop allocation sites by live bytes (%d of %d, as of "
		"the last refresh):\n", n, r->nsites);
	for (i = 0; i < n; i++) {
		const struct mt_site_row *s = &r->sites[i];
		char name[160], shown[640];

		sites__first_user_frame(app, r, s, name, sizeof(name));
		sanitize(name, sizeof(name), shown, sizeof(shown));
		human_bytes(b[0], sizeof(b[0]), s->live_bytes);
		human_bytes(b[1], sizeof(b[1]), s->growth_bps);
		human_bytes(b[2], sizeof(b[2]), s->alloc_bytes);
		fprintf(f, "\n#%d %s: %s live (%lld bytes) in %lld objects, "
			"%s%s/s, %s allocated in %llu calls\n", i + 1, shown,
			b[0], (long long)s->live_bytes,
			(long long)s->live_allocs, s->growth_bps >= 0 ? "+" : "",
			b[1], b[2], (unsigned long long)s->allocs);
		for (j = 0; j < s->nframes && j < DUMP_REPORT_FRAMES; j++) {
			struct syms_frame fr[8];

			k = syms__resolve_ret(app->syms, r->pid, s->stack[j],
					      fr, 8);
			while (k-- > 0) {
				syms__format(&fr[k], raw, sizeof(raw));
				sanitize(raw, sizeof(raw), frame,
					 sizeof(frame));
				fprintf(f, "    %#018llx %s\n",
					(unsigned long long)s->stack[j], frame);
			}
		}
	}
}

static void write_report(struct dump *d, struct capture *c,
			 struct mt_row *r, const struct cgent *cg,
			 const char *reason, bool oom)
{
	struct app *app = d->app;
	char b[8][16], ts[64], s[2048];
	time_t now = time(NULL);
	struct afile a;
	struct tm tm;

	if (af_open(&a, c->artfd, "report.txt"))
		return;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(a.f, "memtrace %s of pid %d (%s)\n\n", oom ?
		"OOM post-mortem" : "capture", c->pid, c->comm);
	fprintf(a.f, "Time:      %s\n", ts);
	fprintf(a.f, "Reason:    %s\n", reason);
	if (cg) {
		const struct cg_limits *l = &cg->lim;

		sanitize(cg->path, sizeof(cg->path), s, sizeof(s));
		fprintf(a.f, "Container: %s (cgroup v%d %s)\n", cg->shown,
			l->version, s);
		human_bytes(b[0], sizeof(b[0]), l->usage);
		human_bytes(b[1], sizeof(b[1]), l->effective);
		human_bytes(b[2], sizeof(b[2]), cg->threshold);
		human_bytes(b[3], sizeof(b[3]), cg->rate);
		fprintf(a.f, "Cgroup:    usage %s, limit %s, threshold %s, "
			"growing %s/s\n", b[0],
			l->effective == CG_UNLIMITED ? "none" : b[1],
			cg->threshold ? b[2] : "none", b[3]);
	} else if (r && r->cgroup[0]) {
		sanitize(r->cgroup, sizeof(r->cgroup), s, sizeof(s));
		fprintf(a.f, "Container: %s\n", s);
	} else {
		fprintf(a.f, "Container: (no memory cgroup found)\n");
	}
	if (r) {
		human_bytes(b[0], sizeof(b[0]), r->live_bytes);
		human_bytes(b[1], sizeof(b[1]), r->growth_bps);
		human_bytes(b[2], sizeof(b[2]), r->alloc_bps);
		human_bytes(b[3], sizeof(b[3]), r->free_bps);
		human_bytes(b[4], sizeof(b[4]), r->rss_bytes);
		human_bytes(b[5], sizeof(b[5]), r->mmap_bytes);
		human_bytes(b[6], sizeof(b[6]), r->brk_bytes);
		fprintf(a.f, "Process:   live heap %s (%lld bytes) in %lld "
			"objects, growth %s/s, alloc %s/s, free %s/s\n"
			"           rss %s, anonymous mmaps %s, brk heap %s%s%s\n",
			b[0], (long long)r->live_bytes,
			(long long)r->live_allocs, b[1], b[2], b[3], b[4],
			b[5], b[6], r->loss ? ", events lost: numbers may be "
			"low" : "", r->exited ? ", exited" : "");
	}
	report_sites(app, r, a.f);
	fprintf(a.f, "\nFiles: heap.pb.gz (go tool pprof -sample_index="
		"inuse_space heap.pb.gz), row.json, smaps_rollup, memory.stat, "
		"memory.events (v2; v1: memory.oom_control, memory.failcnt), "
		"trigger.txt%s\n", oom ? "" :
		", core.PID + core.txt when the core dump is done");
	af_commit(&a);
}

static void write_row_json(struct dump *d, struct capture *c,
			   struct mt_row *r)
{
	struct afile a;

	if (!r || af_open(&a, c->artfd, "row.json"))
		return;
	fprintf(a.f, "{\"pid\":%d,\"comm\":", r->pid);
	json_str(a.f, r->comm, sizeof(r->comm));
	fprintf(a.f, ",\"live_bytes\":%lld,\"live_allocs\":%lld,"
		"\"alloc_bytes\":%llu,\"allocs\":%llu,\"free_bytes\":%llu,"
		"\"frees\":%llu,\"mmap_bytes\":%llu,\"brk_bytes\":%llu,"
		"\"rss_bytes\":%llu,\"growth_bps\":%.1f,\"alloc_bps\":%.1f,"
		"\"free_bps\":%.1f,\"lost_events\":%llu,\"loss\":%s,"
		"\"exited\":%s,\"cgroup\":",
		(long long)r->live_bytes, (long long)r->live_allocs,
		(unsigned long long)r->cur.alloc_bytes,
		(unsigned long long)r->cur.allocs,
		(unsigned long long)r->cur.free_bytes,
		(unsigned long long)r->cur.frees,
		(unsigned long long)r->mmap_bytes,
		(unsigned long long)r->brk_bytes,
		(unsigned long long)r->rss_bytes, r->growth_bps, r->alloc_bps,
		r->free_bps, (unsigned long long)r->lost_events,
		r->loss ? "true" : "false", r->exited ? "true" : "false");
	json_str(a.f, r->cgroup, sizeof(r->cgroup));
	fprintf(a.f, ",\"cg_usage\":%llu,\"cg_limit\":%llu,\"cg_eta_s\":%.1f,"
		"\"cg_version\":%d,\"dumps\":%d",
		(unsigned long long)r->cg_usage,
		(unsigned long long)r->cg_limit, r->cg_eta_s, r->cg_version,
		r->dumps);
	{
		/* every site, not just --top-sites: this is the evidence */
		int keep = d->app->env.top_sites;

		d->app->env.top_sites = r->nsites;
		sites__json(d->app, r, a.f);
		d->app->env.top_sites = keep;
	}
	fputs("}\n", a.f);
	af_commit(&a);
}

static int write_pprof(struct dump *d, struct capture *c, struct mt_row *r)
{
	struct pprof *p;
	char path[128];
	int i, err = 0;

	p = pprof__new(d->app->syms);
	if (!p)
		return -ENOMEM;
	if (d->app->env.sample_bytes)
		pprof__set_period(p, d->app->env.sample_bytes);
	if (r) {
		pprof__set_comm(p, r->pid, r->comm);
		for (i = 0; i < r->nsites && !err; i++) {
			const struct mt_site_row *s = &r->sites[i];

			err = pprof__add(p, r->pid, s->stack, s->nframes,
					 s->allocs, s->alloc_bytes,
					 s->live_allocs, s->live_bytes);
		}
	}
	/* through the directory fd: pprof writes path.tmp, then renames */
	snprintf(path, sizeof(path), "/proc/self/fd/%d/heap.pb.gz", c->artfd);
	if (!err)
		err = pprof__write(p, path);
	if (!err)
		fchmodat(c->artfd, "heap.pb.gz", 0600, 0);
	pprof__free(p);
	return err;
}

static void write_cgroup_files(struct capture *c, const struct cgent *cg)
{
	static const char *const v1[] = {
		"memory.oom_control", "memory.failcnt",
		"memory.max_usage_in_bytes", "memory.usage_in_bytes",
		"memory.limit_in_bytes",
	};
	static const char *const v2[] = {
		"memory.events", "memory.events.local", "memory.current",
		"memory.max", "memory.high", "memory.pressure",
		"memory.swap.current",
	};
	const char *const *names = cg->lim.version == 1 ? v1 : v2;
	int i, n = cg->lim.version == 1 ? ARRAY_SIZE(v1) : ARRAY_SIZE(v2);
	char src[1200];

	snprintf(src, sizeof(src), "%s/memory.stat", cg->lim.dir);
	/* the cgroup may be gone (OOM): fall back to the cached copies */
	if (copy_file(c->artfd, src, "memory.stat") && cg->stat_last)
		write_buf(c->artfd, "memory.stat", cg->stat_last,
			  strlen(cg->stat_last));
	if (cg->stat_armed)
		write_buf(c->artfd, "memory.stat.armed", cg->stat_armed,
			  strlen(cg->stat_armed));
	for (i = 0; i < n; i++) {
		snprintf(src, sizeof(src), "%s/%s", cg->lim.dir, names[i]);
		copy_file(c->artfd, src, names[i]);
	}
}

static void write_trigger(struct dump *d, struct capture *c,
			  const struct cgent *cg, const char *reason,
			  const char *filter)
{
	char dir[2048];
	struct afile a;

	if (af_open(&a, c->artfd, "trigger.txt"))
		return;
	if (cg)
		sanitize(cg->lim.dir, sizeof(cg->lim.dir), dir, sizeof(dir));
	fprintf(a.f, "reason: %s\npid: %d\ncomm: %s\nwall_time: %.3f\n"
		"monotonic_ns: %llu\n", reason, c->pid, c->comm, now_wall(),
		(unsigned long long)c->t_trigger);
	if (c->t_stop)
		fprintf(a.f, "stopped_after_us: %.0f\n",
			(c->t_stop - c->t_trigger) / 1e3);
	else
		fprintf(a.f, "stopped: no\n");
	if (cg)
		fprintf(a.f, "cgroup: %s\ncgroup_version: %d\nusage: %llu\n"
			"limit: %llu\nthreshold: %llu\ngrowth_bps: %.0f\n",
			dir, cg->lim.version,
			(unsigned long long)cg->lim.usage,
			(unsigned long long)(cg->lim.effective == CG_UNLIMITED ?
					     0 : cg->lim.effective),
			(unsigned long long)cg->threshold, cg->rate);
	/* written last: how long the small artifact took from the trigger */
	fprintf(a.f, "small_artifact_ms: %.1f\n",
		(now_ns() - c->t_trigger) / 1e6);
	fprintf(a.f, "dump_at_pct: %.1f\ndump_at_bytes: %llu\n"
		"coredump_filter: %s\n", d->app->env.dump_at_pct,
		(unsigned long long)d->app->env.dump_at_bytes,
		filter[0] ? filter : "?");
	af_commit(&a);
}

static void core_note(struct capture *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void core_note(struct capture *c, const char *fmt, ...)
{
	struct afile a;
	va_list ap;

	if (af_open(&a, c->artfd, "core.txt"))
		return;
	va_start(ap, fmt);
	vfprintf(a.f, fmt, ap);
	va_end(ap);
	fputc('\n', a.f);
	af_commit(&a);
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = -1;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

/*
 * --slow-down (v2 only, off by default): lower memory.high a little
 * below memory.max while the dump runs, so the other processes of the
 * cgroup are throttled into reclaim instead of driving it into the OOM
 * killer before gcore is done.  Risks, hence opt-in: the whole cgroup
 * slows down (reclaim, swap, latency spikes) for the length of the dump;
 * if memtrace is SIGKILLed in between, the lowered memory.high stays
 * until someone restores it (the watchdog only resumes the process); and
 * whoever manages the cgroup (systemd, kubelet) may rewrite it meanwhile,
 * in which case ours is not restored over theirs.
 */
static void slow_down(struct capture *c, const struct cgent *cg)
{
	uint64_t max = cg->lim.max, high = cg->lim.high, want;
	char buf[32];

	if (cg->lim.version != 2 || max == CG_UNLIMITED)
		return;
	/* the kernel keeps whole pages: align, so we can recognise ours */
	want = (max - max / 32) & ~4095ULL;
	if (want < cg->lim.usage)
		want = cg->lim.usage;	/* never force reclaim below usage */
	if (want >= high || want >= max)
		return;
	snprintf(c->high_file, sizeof(c->high_file), "%s/memory.high",
		 cg->lim.dir);
	if (read_file(c->high_file, c->high_saved, sizeof(c->high_saved)) <= 0)
		goto none;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)want);
	if (write_str(c->high_file, buf))
		goto none;
	c->high_set = want;
	return;
none:
	c->high_file[0] = '\0';
}

static void slow_down_undo(struct capture *c)
{
	char cur[32];

	if (!c->high_file[0])
		return;
	/* someone else changed it since: theirs wins */
	if (read_file(c->high_file, cur, sizeof(cur)) > 0 &&
	    strtoull(cur, NULL, 10) == c->high_set)
		write_str(c->high_file, c->high_saved);
	c->high_file[0] = '\0';
}

/* The end of every capture, whatever happened: the target runs again. */
static void capture_end(struct dump *d, struct capture *c)
{
	if (c->gcore) {
		kill(-c->gcore, SIGKILL);
		waitpid(c->gcore, NULL, 0);
		c->gcore = 0;
	}
	if (c->stopped)
		resume_target(c->pidfd, c->pid);
	c->stopped = false;
	slow_down_undo(c);
	watchdog_stop(c);
	if (c->gcore_pidfd >= 0)
		close(c->gcore_pidfd);
	if (c->logfd >= 0) {
		close(c->logfd);
		renameat(c->artfd, ".tmp-gcore.log", c->artfd, "gcore.log");
	}
	if (c->artfd >= 0) {
		char tmp[64];

		snprintf(tmp, sizeof(tmp), ".tmp-core.%d", c->pid);
		unlinkat(c->artfd, tmp, 0);
		close(c->artfd);
	}
	if (c->pidfd >= 0)
		close(c->pidfd);
	c->gcore_pidfd = c->logfd = c->artfd = c->pidfd = -1;
	c->active = false;
	d->full_warned = false;
	timer_arm(d);
}

static void core_fail(struct dump *d, struct capture *c, int err,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void core_fail(struct dump *d, struct capture *c, int err,
		      const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "memtrace: pid %d: %s; small artifact in %s/%s\n",
		c->pid, msg, d->shown_dir, c->name);
	core_note(c, "core: %s", msg);
	c->result = err;
	capture_end(d, c);
}

/* Last non-empty line of gcore's log, for the message. */
static void log_tail(struct capture *c, char *out, size_t len)
{
	char buf[4096], *p, *line = NULL;
	ssize_t n;

	out[0] = '\0';
	n = pread(c->logfd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (p = strtok(buf, "\n"); p; p = strtok(NULL, "\n"))
		if (*p && !strstr(p, "warning:"))
			line = p;
	if (line)
		sanitize(line, strlen(line), out, len);
}

static bool log_has(struct capture *c, const char *what)
{
	char buf[16384];
	ssize_t n = pread(c->logfd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, what);
}

static void gcore_done(struct dump *d, struct capture *c)
{
	char tmp[64], final[64], tail[200], sz[16];
	double secs = (now_ns() - c->t_gcore) / 1e9;
	struct stat st;
	int status = 0;

	waitpid(c->gcore, &status, 0);
	c->gcore = 0;
	snprintf(tmp, sizeof(tmp), ".tmp-core.%d", c->pid);
	snprintf(final, sizeof(final), "core.%d", c->pid);
	log_tail(c, tail, sizeof(tail));
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		if (!proc_state(c->pid))
			core_fail(d, c, -ESRCH, "core failed: the process "
				  "exited during the dump");
		else if (WIFEXITED(status))
			core_fail(d, c, -EIO, "core failed: gcore exited %d%s%s",
				  WEXITSTATUS(status), tail[0] ? ": " : "",
				  tail);
		else
			core_fail(d, c, -EIO, "core failed: gcore killed by "
				  "signal %d", WTERMSIG(status));
		return;
	}
	if (fstatat(c->artfd, tmp, &st, AT_SYMLINK_NOFOLLOW) ||
	    !S_ISREG(st.st_mode) || !st.st_size) {
		core_fail(d, c, -EIO, "core failed: gcore wrote no core%s%s",
			  tail[0] ? ": " : "", tail);
		return;
	}
	/* gcore's script only checks that the file exists */
	if (log_has(c, "No space left") || log_has(c, "Failed to write")) {
		core_fail(d, c, -ENOSPC, "core failed: incomplete (%s)", tail);
		return;
	}
	fchmodat(c->artfd, tmp, 0600, 0);
	if (renameat(c->artfd, tmp, c->artfd, final)) {
		core_fail(d, c, -errno, "core failed: rename: %s",
			  strerror(errno));
		return;
	}
	human_bytes(sz, sizeof(sz), st.st_size);
	core_note(c, "core: %s (%lld bytes), gcore took %.2f s, process "
		  "held stopped %.2f s\nsince_trigger_s: %.3f", final,
		  (long long)st.st_size, secs,
		  c->t_stop ? (now_ns() - c->t_stop) / 1e9 : 0.0,
		  (now_ns() - c->t_trigger) / 1e9);
	fprintf(stderr, "memtrace: pid %d: core dump %s/%s/%s (%s, %.1f s)\n",
		c->pid, d->shown_dir, c->name, final, sz, secs);
	c->result = 0;
	capture_end(d, c);
}

static int gcore_start(struct dump *d, struct capture *c, uint64_t need)
{
	char prefix[128], pidstr[16], need_s[16], free_s[16];
	struct statvfs sv;
	uint64_t avail;
	pid_t pid;
	int fd;

	if (!fstatvfs(d->dirfd, &sv)) {
		avail = (uint64_t)sv.f_bavail * sv.f_frsize;
		if (avail < need) {
			human_bytes(need_s, sizeof(need_s), need);
			human_bytes(free_s, sizeof(free_s), avail);
			core_fail(d, c, -ENOSPC, "core skipped: needs ~%s, %s "
				  "free on %s", need_s, free_s, d->shown_dir);
			return -ENOSPC;
		}
	}
	if (!find_in_path("gcore")) {
		core_fail(d, c, -ENOENT, "core skipped: gcore not found in "
			  "PATH (install gdb)");
		return -ENOENT;
	}
	fd = openat(c->artfd, ".tmp-gcore.log", O_RDWR | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		core_fail(d, c, -errno, "core skipped: gcore.log: %s",
			  strerror(errno));
		return -EIO;
	}
	c->logfd = fd;
	/*
	 * Through the directory fd as well; gdb (root) resolves the magic
	 * link, so renames of the dump dir's parents cannot redirect it.
	 */
	snprintf(prefix, sizeof(prefix), "/proc/%d/fd/%d/.tmp-core",
		 getpid(), c->artfd);
	snprintf(pidstr, sizeof(pidstr), "%d", c->pid);
	c->t_gcore = now_ns();
	pid = fork();
	if (pid < 0) {
		core_fail(d, c, -errno, "core skipped: fork: %s",
			  strerror(errno));
		return -EIO;
	}
	if (!pid) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		/* own group: ^C is not for it, and the group dies as one */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		umask(077);
		if (null >= 0)
			dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close_range(3, ~0U, 0);
		signal(SIGPIPE, SIG_DFL);
		/*
		 * Default gcore honours /proc/PID/coredump_filter (gdb's
		 * use-coredump-filter is on); -a would dump everything.
		 */
		execlp("gcore", "gcore", "-o", prefix, pidstr, (char *)NULL);
		fprintf(stderr, "memtrace: exec gcore: %s\n", strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	c->gcore = pid;
	c->gcore_pidfd = pidfd_open(pid, 0);
	c->deadline = c->t_gcore + d->app->env.gcore_timeout * 1e9;
	watchdog_tell(c, 'g', pid);
	timer_arm(d);
	return 0;
}

/* Our memory cgroup holds the target's: gdb would be charged to it. */
static void check_own_cgroup(struct dump *d, const struct cgent *cg)
{
	size_t n;

	if (!cg || !d->self_cg[0] || d->gcore_warned)
		return;
	n = strlen(cg->lim.dir);
	if (strncmp(d->self_cg, cg->lim.dir, n) ||
	    (d->self_cg[n] && d->self_cg[n] != '/'))
		return;
	d->gcore_warned = true;
	fprintf(stderr, "memtrace: warning: memtrace runs inside %s, the "
		"target's memory cgroup: gdb's memory counts against its "
		"limit; run memtrace outside it\n", cg->shown);
}

/*
 * Start a capture of pid.  Returns 0 once the small artifact is written
 * (the core, if any, follows asynchronously), or -errno.
 */
static int capture_start(struct dump *d, int pid, const char *reason,
			 uint64_t t_trigger, bool oom)
{
	struct app *app = d->app;
	struct mt_row *r = table__get(app->table, pid);
	struct pstate *p = pstate_get(d, pid, false);
	struct cgent *cg = p ? p->cg : NULL;
	char tmp[300], path[64], smaps[4096], filter[32] = "";
	struct capture *c = NULL;
	bool core = app->env.dump_core && !oom;
	uint64_t need = 0;
	char st;
	int i, err;

	err = open_dir(d);
	if (err)
		return err;
	/* not a row we mapped yet (node mode, a fresh pid): look it up */
	if (!cg) {
		struct cg_limits lim;

		if (!cg__limits(NULL, NULL, pid, &lim) && lim.version) {
			cg = cgent_get(d, &lim);
			if (cg && !cg->stat_last)
				cg->stat_last = read_stat(cg);
		}
	}
	for (i = 0; i < DUMP_MAX_CAPS; i++) {
		if (d->caps[i].active && d->caps[i].pid == pid)
			return -EBUSY;
		if (!d->caps[i].active && !c)
			c = &d->caps[i];
	}
	if (!c) {
		/* once per busy spell, not at every refresh that retries */
		if (!d->full_warned)
			fprintf(stderr, "memtrace: pid %d: %d captures already "
				"running; skipped (said once until one ends)\n",
				pid, DUMP_MAX_CAPS);
		d->full_warned = true;
		return -EBUSY;
	}
	memset(c, 0, sizeof(*c));
	c->pidfd = c->artfd = c->gcore_pidfd = c->logfd = c->wd_fd = -1;
	c->pid = pid;
	c->t_trigger = t_trigger;
	if (r)
		sanitize(r->comm, sizeof(r->comm), c->comm, sizeof(c->comm));
	c->pidfd = pidfd_open(pid, 0);
	if (c->pidfd < 0 && !oom) {
		err = -errno;
		fprintf(stderr, "memtrace: pid %d: cannot capture: %s\n", pid,
			strerror(errno));
		return err;
	}
	c->active = true;
	if (!c->comm[0]) {
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		if (read_file(path, tmp, sizeof(tmp)) > 0)
			sanitize(tmp, strcspn(tmp, "\n"), c->comm,
				  sizeof(c->comm));
	}
	st = proc_state(pid);
	/*
	 * Hold it still so the core completes before the OOM killer acts:
	 * a stopped process charges no new memory.  One already stopped
	 * (^Z, a debugger) is left as found.  The watchdog comes first.
	 */
	if (core && st && st != 'T' && st != 't') {
		err = watchdog_start(c);
		if (err)
			fprintf(stderr, "memtrace: pid %d: no watchdog (%s): "
				"not stopping it for the dump\n", pid,
				strerror(-err));
		else if (!pidfd_send_signal(c->pidfd, SIGSTOP, NULL, 0))
			c->stopped = true;
		c->t_stop = c->stopped ? now_ns() : 0;
	}
	if (cg && cg->lim.dir[0])
		check_own_cgroup(d, cg);
	if (cg && core && app->env.dump_slow_down)
		slow_down(c, cg);

	err = make_artifact_dir(d, c, cg ? cg->name : r && r->cgroup[0] ?
				r->cgroup : "none", oom, tmp, sizeof(tmp));
	if (err) {
		fprintf(stderr, "memtrace: pid %d: cannot create the capture "
			"directory in %s: %s\n", pid, d->shown_dir, strerror(-err));
		c->result = err;
		capture_end(d, c);
		return err;
	}
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	if (read_file(path, smaps, sizeof(smaps)) > 0) {
		write_buf(c->artfd, "smaps_rollup", smaps, strlen(smaps));
		/* what the core will roughly take, with some headroom */
		need = smaps_field(smaps, "\nRss:") +
		       smaps_field(smaps, "\nSwap:") + (1 << 20);
	}
	snprintf(path, sizeof(path), "/proc/%d/coredump_filter", pid);
	if (read_file(path, filter, sizeof(filter)) > 0)
		filter[strcspn(filter, "\n")] = '\0';
	write_report(d, c, r, cg, reason, oom);
	write_pprof(d, c, r);
	write_row_json(d, c, r);
	if (cg)
		write_cgroup_files(c, cg);
	write_trigger(d, c, cg, reason, filter);
	if (renameat(d->dirfd, tmp, d->dirfd, c->name)) {
		err = -errno;
		fprintf(stderr, "memtrace: pid %d: %s/%s: %s\n", pid, d->shown_dir,
			tmp, strerror(errno));
		c->result = err;
		capture_end(d, c);
		return err;
	}
	if (p) {
		p->dumps++;
		p->last_dump_ns = now_ns();
	}
	if (r)
		r->dumps = p ? p->dumps : r->dumps + 1;
	snprintf(d->last_name, sizeof(d->last_name), "%s", c->name);
	if (oom) {
		capture_end(d, c);
		return 0;
	}
	fprintf(stderr, "memtrace: pid %d (%s) in %s: %s; capture in %s/%s%s\n",
		pid, c->comm, cg ? cg->shown : "-", reason, d->shown_dir, c->name,
		core ? ", core dump following" : "");
	if (!core) {
		capture_end(d, c);
		return 0;
	}
	gcore_start(d, c, need);
	return 0;
}

static bool eligible(struct dump *d, struct pstate *p)
{
	const struct env *env = &d->app->env;
	int i;

	if (p->dumps >= env->dump_max)
		return false;
	if (p->last_dump_ns &&
	    now_ns() - p->last_dump_ns < env->dump_cooldown * 1e9)
		return false;
	for (i = 0; i < DUMP_MAX_CAPS; i++)
		if (d->caps[i].active && d->caps[i].pid == p->pid)
			return false;
	return true;
}

/* Capture every traced process of the cgroup that may be captured. */
static void trigger(struct dump *d, struct cgent *cg, const char *how,
		    uint64_t t)
{
	char reason[256], b[3][16];
	int i;

	human_bytes(b[0], sizeof(b[0]), cg->lim.usage);
	human_bytes(b[1], sizeof(b[1]), cg->threshold);
	human_bytes(b[2], sizeof(b[2]), cg->lim.effective);
	snprintf(reason, sizeof(reason), "cgroup usage %s reached the "
		 "threshold %s (limit %s) [%s]", b[0], b[1],
		 cg->lim.effective == CG_UNLIMITED ? "none" : b[2], how);
	for (i = 0; i < d->nps; i++) {
		struct pstate *p = &d->ps[i];
		struct mt_row *r;

		if (p->cg != cg || !eligible(d, p))
			continue;
		r = table__get(d->app->table, p->pid);
		if (!r || r->exited)
			continue;
		capture_start(d, p->pid, reason, t, false);
	}
}

/* ---- API ------------------------------------------------------------ */

int dump__new(struct app *app, struct dump **out)
{
	const struct env *env = &app->env;
	struct cg_limits self;
	struct dump *d;
	size_t n;
	int err, i;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->app = app;
	d->dirfd = -1;
	for (i = 0; i < DUMP_MAX_CAPS; i++)
		d->caps[i].pidfd = -1;
	d->armed = env->dump_at_pct > 0 || env->dump_at_bytes > 0;
	d->write_oom = d->armed || env->dump_dir;
	snprintf(d->dir, sizeof(d->dir), "%s",
		 env->dump_dir ? env->dump_dir : DUMP_DEFAULT_DIR);
	/* "dir/" would make lstat() follow a symlink */
	n = strlen(d->dir);
	while (n > 1 && d->dir[n - 1] == '/')
		d->dir[--n] = '\0';
	sanitize(d->dir, n, d->shown_dir, sizeof(d->shown_dir));
	d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
				    TFD_CLOEXEC);
	if (d->timerfd < 0) {
		err = -errno;
		goto fail;
	}
	if (d->armed || env->dump_dir || env->mode == MODE_DUMP) {
		err = open_dir(d);
		if (err)
			goto fail;
	}
	if (!cg__limits(NULL, NULL, 0, &self) && self.version)
		snprintf(d->self_cg, sizeof(d->self_cg), "%s", self.dir);
	if ((d->armed || env->mode == MODE_DUMP) && env->dump_core &&
	    !find_in_path("gcore"))
		fprintf(stderr, "memtrace: warning: gcore not found in PATH "
			"(install gdb): captures will have no core dump\n");
	*out = d;
	return 0;
fail:
	dump__free(d);
	return err;
}

void dump__free(struct dump *d)
{
	int i;

	if (!d)
		return;
	for (i = 0; i < DUMP_MAX_CAPS; i++) {
		struct capture *c = &d->caps[i];

		if (!c->active)
			continue;
		fprintf(stderr, "memtrace: pid %d: core abandoned: memtrace is "
			"exiting; resumed it\n", c->pid);
		core_note(c, "core: abandoned, memtrace exited meanwhile");
		capture_end(d, c);
	}
	for (i = 0; i < d->ncgs; i++)
		cgent_free(d->cgs[i]);
	free(d->cgs);
	free(d->ps);
	if (d->timerfd >= 0)
		close(d->timerfd);
	if (d->dirfd >= 0)
		close(d->dirfd);
	free(d);
}

void dump__refresh(struct dump *d)
{
	struct table *t;
	uint64_t now = now_ns();
	int i, j;

	if (!d)
		return;
	t = d->app->table;
	d->seq++;
	for (i = 0; i < table__nr(t); i++) {
		struct mt_row *r = table__row(t, i);
		struct pstate *p = pstate_get(d, r->pid, true);

		if (!p)
			continue;
		p->seen_seq = d->seq;
		/* an exited row keeps what it last showed */
		if (!r->exited)
			row_cgroup(d, r, p, now);
		if (p->cg && !r->exited)
			fill_row(r, p->cg);
		r->dumps = p->dumps;
	}
	/* forget pids that left the table, cgroups nobody uses */
	for (i = 0; i < d->nps; i++)
		if (d->ps[i].seen_seq != d->seq)
			d->ps[i--] = d->ps[--d->nps];
	for (i = 0; i < d->ncgs; i++) {
		struct cgent *c = d->cgs[i];
		bool used = false;

		for (j = 0; j < d->nps && !used; j++)
			used = d->ps[j].cg == c;
		if (used || d->seq - c->used_seq < DUMP_CG_KEEP)
			continue;
		cgent_free(c);
		d->cgs[i--] = d->cgs[--d->ncgs];
	}
	if (!d->armed)
		return;
	for (i = 0; i < d->ncgs; i++) {
		struct cgent *c = d->cgs[i];

		if (c->read_seq != d->seq)
			continue;
		cgent_arm(d, c);
		c->hot = false;
		if (!c->threshold)
			continue;
		/* backstop: a missed or unsupported notification */
		if (c->lim.usage >= c->threshold) {
			trigger(d, c, "seen at refresh", now);
			continue;
		}
		/*
		 * v2 has no usage threshold notification: if the growth
		 * may cross it before the next refresh, poll usage fast.
		 */
		if (c->lim.version == 2 && c->rate > 0 &&
		    c->lim.usage + c->rate * d->app->env.delay * 2 >=
		    c->threshold)
			c->hot = true;
	}
	timer_arm(d);
}

int dump__pollfds(struct dump *d, struct pollfd *fds, int max)
{
	int i, n = 0;

	if (!d)
		return 0;
#define ADD(f, ev) do {					\
		if (n < max && (f) >= 0) {		\
			fds[n].fd = (f);		\
			fds[n].events = (ev);		\
			fds[n].revents = 0;		\
			n++;				\
		}					\
	} while (0)
	ADD(d->timerfd, POLLIN);
	for (i = 0; i < DUMP_MAX_CAPS; i++) {
		if (!d->caps[i].active)
			continue;
		ADD(d->caps[i].gcore_pidfd, POLLIN);
		ADD(d->caps[i].pidfd, POLLIN);
	}
	for (i = 0; i < d->ncgs; i++)
		if (d->cgs[i]->watch)
			ADD(cg_watch__fd(d->cgs[i]->watch), POLLIN);
#undef ADD
	return n;
}

static void hot_poll(struct dump *d, uint64_t now)
{
	char path[1200], buf[64];
	int i;

	for (i = 0; i < d->ncgs; i++) {
		struct cgent *c = d->cgs[i];

		if (!c->hot)
			continue;
		snprintf(path, sizeof(path), "%s/memory.current", c->lim.dir);
		if (read_file(path, buf, sizeof(buf)) <= 0)
			continue;
		c->lim.usage = strtoull(buf, NULL, 10);
		if (c->lim.usage >= c->threshold) {
			c->hot = false;
			trigger(d, c, "usage polled near the threshold", now);
		}
	}
}

void dump__on_ready(struct dump *d, int fd)
{
	uint64_t now = now_ns(), ticks;
	int i, ret;

	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (!d)
		return;
	/*
	 * The caller's poll set may be stale: an earlier fd of the same
	 * set can have ended a capture and a new one reused the number.
	 */
	if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLIN | POLLPRI)))
		return;
	if (fd == d->timerfd) {
		if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
			return;
		for (i = 0; i < DUMP_MAX_CAPS; i++) {
			struct capture *c = &d->caps[i];

			if (c->active && c->gcore && now >= c->deadline)
				core_fail(d, c, -ETIMEDOUT, "core failed: gcore "
					  "timed out after %.0f s and was "
					  "killed; process resumed",
					  d->app->env.gcore_timeout);
		}
		hot_poll(d, now);
		timer_arm(d);
		return;
	}
	for (i = 0; i < DUMP_MAX_CAPS; i++) {
		struct capture *c = &d->caps[i];

		if (!c->active)
			continue;
		if (fd == c->gcore_pidfd) {
			gcore_done(d, c);
			return;
		}
		if (fd == c->pidfd) {
			core_fail(d, c, -ESRCH, "core failed: the process "
				  "exited during the dump");
			return;
		}
	}
	for (i = 0; i < d->ncgs; i++) {
		struct cgent *c = d->cgs[i];

		if (!c->watch || cg_watch__fd(c->watch) != fd)
			continue;
		ret = cg_watch__consume(c->watch);
		if (ret > 0) {
			/* the usage the watcher saw, for the report */
			struct cg_limits lim;

			if (!cg__limits_dir(c->lim.version, c->lim.dir, &lim))
				c->lim = lim;
			trigger(d, c, c->lim.version == 1 ?
				"cgroup threshold event" :
				"cgroup memory.events/PSI event", now);
		}
		return;
	}
}

int dump__now(struct dump *d, int pid, const char *reason)
{
	struct pollfd fds[64];
	struct capture *c = NULL;
	int i, n, err;

	if (!d)
		return -EINVAL;
	err = capture_start(d, pid, reason, now_ns(), false);
	if (err || d->app->env.mode != MODE_DUMP)
		return err;
	for (i = 0; i < DUMP_MAX_CAPS; i++)
		if (d->caps[i].active && d->caps[i].pid == pid)
			c = &d->caps[i];
	/* memtrace dump PID exits after this: see the core through */
	while (c && c->active) {
		n = dump__pollfds(d, fds, ARRAY_SIZE(fds));
		if (poll(fds, n, 200) < 0 && errno != EINTR)
			break;
		for (i = 0; i < n; i++)
			if (fds[i].revents)
				dump__on_ready(d, fds[i].fd);
	}
	return c ? c->result : 0;
}

void dump__oom(struct dump *d, const struct mt_event *e)
{
	struct mt_row *r;
	struct pstate *p;
	const struct mt_site_row *top = NULL;
	char comm[64], site[160] = "", rate[16], where[PATH_MAX + 300] = "";
	char cont[512] = "-", shown[640];
	int i, err;

	if (!d)
		return;
	r = table__get(d->app->table, e->tgid);
	p = pstate_get(d, e->tgid, false);
	sanitize(e->comm, sizeof(e->comm), comm, sizeof(comm));
	if (p && p->cg)
		snprintf(cont, sizeof(cont), "%s", p->cg->shown);
	else if (r && r->cgroup[0])
		sanitize(r->cgroup, sizeof(r->cgroup), cont, sizeof(cont));
	if (r) {
		for (i = 0; i < r->nsites; i++)
			if (r->sites[i].growth_bps > 0 &&
			    (!top || r->sites[i].growth_bps > top->growth_bps))
				top = &r->sites[i];
		if (top)
			sites__first_user_frame(d->app, r, top, site,
						sizeof(site));
		sanitize(site, sizeof(site), shown, sizeof(shown));
	}
	if (d->write_oom) {
		err = capture_start(d, e->tgid, "OOM kill", now_ns(), true);
		if (!err)
			snprintf(where, sizeof(where), "; post-mortem in %s/%s",
				 d->shown_dir, d->last_name);
		else
			snprintf(where, sizeof(where), "; no post-mortem: %s",
				 strerror(-err));
	}
	if (top) {
		human_bytes(rate, sizeof(rate), top->growth_bps);
		fprintf(stderr, "memtrace: OOM kill of pid %u (%s) in %s; top "
			"growing site: %s (+%s/s)%s\n", e->tgid, comm, cont,
			shown, rate, where);
	} else {
		fprintf(stderr, "memtrace: OOM kill of pid %u (%s) in %s; no "
			"growing allocation site seen%s\n", e->tgid, comm, cont,
			where);
	}
}
