// SPDX-License-Identifier: GPL-2.0
/*
 * Pre-OOM evidence: cgroup fields of every row, threshold triggers, and
 * the capture itself (small artifact first, then a gcore core dump).
 *
 * A capture runs alongside the main loop rather than blocking it: the
 * target is held still (hold.c: ptrace, then a watchdog in its own
 * session for gcore), the small artifact is written at once (a few
 * milliseconds), then gcore runs under the watchdog, whose report is a
 * file descriptor in the main poll set.  Whatever kills memtrace, the
 * target runs on: hold.h says how.
 *
 * Everything goes under one root-owned, root-only directory opened once;
 * files are created with openat() on directory fds, O_NOFOLLOW|O_EXCL,
 * mode 0600, under ".tmp-MEMTRACEPID-" names, written with checked
 * writes, fsynced and renamed when complete.  A file that could not be
 * written is named in the message and fails the capture; ".tmp-" names
 * of a memtrace that died are removed when the directory is next opened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <elf.h>
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
#include "gorow.h"
#include "hold.h"
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
#define DUMP_SMALL_ROOM		(1 << 20)	/* free space a capture needs */

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
	struct hold *hold;	/* the target held still; NULL: not held */
	bool gcore;		/* gcore runs under the hold's watchdog */
	int logfd;
	uint64_t t_trigger, t_stop, t_gcore;
	int result;		/* 0 or -errno for dump__now() */
	char lost[256];		/* files of the capture that were not written */
	int lost_err;
	int written;		/* files of the small artifact that were */
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
	int result;		/* first failure of any capture: the exit code */
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

static uint64_t smaps_field(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtoull(p + strlen(key), NULL, 10) << 10 : 0;
}

/* ---- the dump directory --------------------------------------------- */

/* A file or a directory of files (one level: artifacts have no more). */
static void remove_tree(int dirfd, const char *name)
{
	struct dirent *de;
	DIR *dir;
	int fd;

	if (!unlinkat(dirfd, name, 0) || errno != EISDIR)
		return;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	closedir(dir);
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* ".tmp-PID-..." of a memtrace that is gone (SIGKILLed mid-capture). */
static bool stale_tmp(const char *name)
{
	char *end;
	long pid;

	if (strncmp(name, ".tmp-", 5))
		return false;
	pid = strtol(name + 5, &end, 10);
	if (end == name + 5 || *end != '-' || pid <= 0 || pid > INT_MAX)
		return false;
	return kill(pid, 0) && errno == ESRCH;
}

/* Partial captures and cores of dead memtraces, in the dir and one down. */
static void clean_stale(struct dump *d)
{
	struct dirent *de, *de2;
	DIR *dir, *sub;
	int fd, n = 0;

	fd = openat(d->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		if (stale_tmp(de->d_name)) {
			remove_tree(d->dirfd, de->d_name);
			n++;
			continue;
		}
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		fd = openat(d->dirfd, de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		sub = fd >= 0 ? fdopendir(fd) : NULL;
		if (!sub) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((de2 = readdir(sub)))
			if (stale_tmp(de2->d_name) &&
			    !unlinkat(fd, de2->d_name, 0))
				n++;
		closedir(sub);
	}
	closedir(dir);
	if (n)
		fprintf(stderr, "memtrace: %s: removed %d partial file%s of "
			"captures whose memtrace died\n", d->shown_dir, n,
			n == 1 ? "" : "s");
}

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
	if (lstat(d->dir, &st) && errno == ENOENT &&
	    mkdir(d->dir, 0700) && errno != EEXIST) {
		err = -errno;
		fprintf(stderr, "memtrace: dump dir %s: cannot create: %s\n",
			d->shown_dir, strerror(errno));
		return err;
	}
	if (lstat(d->dir, &st)) {
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
	fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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
	clean_stale(d);
	return 0;
fail:
	close(fd);
	return err;
}

/* Prefix of everything not yet complete: whose it is, for the cleanup. */
static void tmp_name(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, ".tmp-%d-%s", (int)getpid(), name);
}

/* A file of the capture could not be written: say which, fail it. */
static void note_lost(struct capture *c, const char *name, int err)
{
	size_t n = strlen(c->lost);

	snprintf(c->lost + n, sizeof(c->lost) - n, "%s%s", n ? ", " : "",
		 name);
	if (!c->lost_err)
		c->lost_err = err;
}

/* A file being written in the artifact directory. */
struct afile {
	FILE *f;
	struct capture *c;
	char tmp[300], name[256];
};

static int af_open(struct afile *a, struct capture *c, const char *name)
{
	int fd, err;

	a->c = c;
	a->f = NULL;
	snprintf(a->name, sizeof(a->name), "%s", name);
	tmp_name(a->tmp, sizeof(a->tmp), name);
	fd = openat(c->artfd, a->tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		note_lost(c, name, err);
		return err;
	}
	a->f = fdopen(fd, "w");
	if (!a->f) {
		close(fd);
		unlinkat(c->artfd, a->tmp, 0);
		note_lost(c, name, -ENOMEM);
		return -ENOMEM;
	}
	return 0;
}

/* Written whole, on disk, then under its name: or gone and accounted. */
static int af_commit(struct afile *a)
{
	int err = 0, dirfd = a->c->artfd;

	errno = 0;
	if (fflush(a->f) || ferror(a->f))
		err = errno ? -errno : -EIO;
	if (!err && fsync(fileno(a->f)))
		err = -errno;
	if (fclose(a->f) && !err)
		err = -errno;
	a->f = NULL;
	if (!err && renameat(dirfd, a->tmp, dirfd, a->name))
		err = -errno;
	if (err) {
		unlinkat(dirfd, a->tmp, 0);
		note_lost(a->c, a->name, err);
	} else {
		a->c->written++;
	}
	return err;
}

static int write_buf(struct capture *c, const char *name, const char *buf,
		     size_t len)
{
	struct afile a;
	int err = af_open(&a, c, name);

	if (err)
		return err;
	fwrite(buf, 1, len, a.f);	/* a short write sets ferror() */
	return af_commit(&a);
}

/* 1 if src cannot be read (not a loss: v1 has no memory.pressure). */
static int copy_file(struct capture *c, const char *src, const char *name)
{
	char *buf = malloc(DUMP_STAT_MAX);
	int n, err;

	if (!buf) {
		note_lost(c, name, -ENOMEM);
		return -ENOMEM;
	}
	n = read_file(src, buf, DUMP_STAT_MAX);
	err = n < 0 ? 1 : write_buf(c, name, buf, n);
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
		tmp_name(tmp, tmplen, c->name);
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

	if (af_open(&a, c, "report.txt"))
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

	if (!r || af_open(&a, c, "row.json"))
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
	if (r && gorow__rate(r))
		pprof__set_period(p, gorow__rate(r));	/* a Go heap profile */
	if (r) {
		pprof__set_comm(p, r->pid, r->comm);
		for (i = 0; i < r->nsites && !err; i++) {
			const struct mt_site_row *s = &r->sites[i];

			if (s->go)
				continue;	/* whole stacks below */
			err = pprof__add(p, r->pid, s->stack, s->nframes,
					 s->allocs, s->alloc_bytes,
					 s->live_allocs, s->live_bytes);
		}
		if (!err)
			err = gorow__pprof_add(p, r, false);
	}
	/* through the directory fd: pprof writes path.tmp, then renames */
	snprintf(path, sizeof(path), "/proc/self/fd/%d/heap.pb.gz", c->artfd);
	if (!err)
		err = pprof__write(p, path);
	if (!err) {
		int fd = openat(c->artfd, "heap.pb.gz", O_RDONLY | O_NOFOLLOW |
				O_CLOEXEC);

		if (fd < 0 || fchmod(fd, 0600) || fsync(fd))
			err = -errno;
		if (fd >= 0)
			close(fd);
	}
	if (err)
		note_lost(c, "heap.pb.gz", err);
	else
		c->written++;
	pprof__free(p);
	/* Go: also what the next GCs will publish (allocations since the last) */
	if (!err && r && r->go)
		err = gorow__write_unpublished(d->app, r, c->artfd,
					       "go-heap-unpublished.pb.gz");
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
	if (copy_file(c, src, "memory.stat") == 1 && cg->stat_last)
		write_buf(c, "memory.stat", cg->stat_last,
			  strlen(cg->stat_last));
	if (cg->stat_armed)
		write_buf(c, "memory.stat.armed", cg->stat_armed,
			  strlen(cg->stat_armed));
	for (i = 0; i < n; i++) {
		snprintf(src, sizeof(src), "%s/%s", cg->lim.dir, names[i]);
		copy_file(c, src, names[i]);
	}
}

static void write_trigger(struct dump *d, struct capture *c,
			  const struct cgent *cg, const char *reason,
			  const char *filter)
{
	char dir[2048];
	struct afile a;

	if (af_open(&a, c, "trigger.txt"))
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

	if (af_open(&a, c, "core.txt"))
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
	char tmp[300];

	/* first of all: kills gcore and gdb, lets the target go */
	hold__release(c->hold);
	c->hold = NULL;
	c->gcore = false;
	slow_down_undo(c);
	if (c->logfd >= 0) {
		tmp_name(tmp, sizeof(tmp), "gcore.log");
		if (fsync(c->logfd) || renameat(c->artfd, tmp, c->artfd,
						 "gcore.log"))
			note_lost(c, "gcore.log", -errno);
		close(c->logfd);
	}
	if (c->artfd >= 0) {
		char core[64];

		snprintf(core, sizeof(core), "core.%d", c->pid);
		tmp_name(tmp, sizeof(tmp), core);
		unlinkat(c->artfd, tmp, 0);
		fsync(c->artfd);
		close(c->artfd);
	}
	if (c->pidfd >= 0)
		close(c->pidfd);
	c->logfd = c->artfd = c->pidfd = -1;
	if (c->lost[0]) {
		fprintf(stderr, "memtrace: pid %d: capture %s/%s is incomplete: "
			"could not write %s (%s)\n", c->pid, d->shown_dir,
			c->name, c->lost, strerror(-c->lost_err));
		if (!c->result)
			c->result = c->lost_err;
	}
	if (c->result && !d->result)
		d->result = c->result;
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
	/* the target first: the notes can wait, it should not */
	hold__release(c->hold);
	c->hold = NULL;
	core_note(c, "core: %s", msg);
	if (c->lost[0])
		fprintf(stderr, "memtrace: pid %d: %s\n", c->pid, msg);
	else
		fprintf(stderr, "memtrace: pid %d: %s; small artifact in "
			"%s/%s\n", c->pid, msg, d->shown_dir, c->name);
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

/*
 * Debian's gcore script checks only that the file exists: a gdb killed
 * mid-write leaves it exiting 0 with a truncated core.  A whole core is
 * an ELF core file whose every segment lies inside the file.
 */
static bool core_complete(int fd, off_t size)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int i;

	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_CORE ||
	    eh.e_phentsize != sizeof(ph) || !eh.e_phnum)
		return false;
	for (i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), eh.e_phoff + i * sizeof(ph)) !=
		    sizeof(ph))
			return false;
		if (ph.p_offset > (uint64_t)size ||
		    ph.p_filesz > (uint64_t)size - ph.p_offset)
			return false;
	}
	return true;
}

static void gcore_done(struct dump *d, struct capture *c, enum hold_end end,
		       int status)
{
	char tmp[300], final[64], tail[200], sz[16];
	double secs = (now_ns() - c->t_gcore) / 1e9;
	struct stat st;
	int fd;

	snprintf(final, sizeof(final), "core.%d", c->pid);
	tmp_name(tmp, sizeof(tmp), final);
	log_tail(c, tail, sizeof(tail));
	switch (end) {
	case HOLD_TIMEOUT:
		core_fail(d, c, -ETIMEDOUT, "core failed: gcore timed out after "
			  "%g s and was killed; process resumed",
			  d->app->env.gcore_timeout);
		return;
	case HOLD_WATCHDOG_DIED:
		core_fail(d, c, -EIO, "core failed: memtrace's watchdog died; "
			  "gcore killed, process resumed");
		return;
	case HOLD_CANCELLED:
		core_fail(d, c, -EINTR, "core cancelled; process resumed");
		return;
	case HOLD_TARGET_EXITED:
		core_fail(d, c, -ESRCH, "core failed: the process exited "
			  "during the dump");
		return;
	default:
		break;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		if (!hold__proc_state(c->pid))
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
	fd = openat(c->artfd, tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && !core_complete(fd, st.st_size)) {
		close(fd);
		core_fail(d, c, -EIO, "core failed: %s is truncated or not an "
			  "ELF core (gdb died?)%s%s", final, tail[0] ? ": " : "",
			  tail);
		return;
	}
	/* the watchdog has resumed the target: this may take a while */
	if (fd < 0 || fchmod(fd, 0600) || fsync(fd) ||
	    renameat(c->artfd, tmp, c->artfd, final)) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		core_fail(d, c, err, "core failed: %s: %s", final,
			  strerror(-err));
		return;
	}
	close(fd);
	human_bytes(sz, sizeof(sz), st.st_size);
	core_note(c, "core: %s (%lld bytes), gcore took %.2f s, process "
		  "held stopped %.2f s\nsince_trigger_s: %.3f", final,
		  (long long)st.st_size, secs,
		  c->t_stop ? (now_ns() - c->t_stop) / 1e9 : 0.0,
		  (now_ns() - c->t_trigger) / 1e9);
	fprintf(stderr, "memtrace: pid %d: core dump %s/%s/%s (%s, %.1f s)\n",
		c->pid, d->shown_dir, c->name, final, sz, secs);
	capture_end(d, c);
}

static int gcore_start(struct dump *d, struct capture *c, uint64_t need)
{
	char prefix[128], partial[300], core[64], need_s[16], free_s[16];
	char log[300];
	struct statvfs sv;
	uint64_t avail;
	int fd, err;

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
	tmp_name(log, sizeof(log), "gcore.log");
	fd = openat(c->artfd, log, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		note_lost(c, "gcore.log", err);
		core_fail(d, c, err, "core skipped: gcore.log: %s",
			  strerror(-err));
		return err;
	}
	c->logfd = fd;
	/*
	 * Through the directory fd as well; gdb (root) resolves the magic
	 * link, so renames of the dump dir's parents cannot redirect it.
	 * gcore appends ".PID".
	 */
	snprintf(core, sizeof(core), "core.%d", c->pid);
	tmp_name(partial, sizeof(partial), core);
	snprintf(prefix, sizeof(prefix), "/proc/%d/fd/%d/.tmp-%d-core",
		 getpid(), c->artfd, getpid());
	c->t_gcore = now_ns();
	err = hold__gcore(&c->hold, c->pid, c->pidfd, c->artfd, fd, log,
			  prefix, partial, d->app->env.gcore_timeout);
	if (err) {
		core_fail(d, c, err, "core skipped: cannot start gcore: %s",
			  strerror(-err));
		return err;
	}
	c->gcore = true;
	return 0;
}

/*
 * Fault injection (tests/integration/test_faults.py): a pause of the
 * environment variable's milliseconds at this point of a capture, so a
 * test can kill memtrace there.  Unset, as in production, it costs one
 * getenv() per capture.
 */
static void fault_pause(const char *var)
{
	const char *v = getenv(var);
	uint64_t ms;

	if (v && !parse_uint(v, 1, 60000, &ms))
		usleep(ms * 1000);
}

/*
 * pid descends from a watchdog of ours (gdb, the gcore script): its
 * capture would stop the very gdb that holds another target.  A command
 * memtrace runs (-- CMD) is our child too, and may be captured.
 */
static bool own_helper(int pid)
{
	char path[64], buf[512], comm[32], *p;
	int i, ppid;

	for (i = 0; i < 64 && pid > 1; i++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (read_file(path, buf, sizeof(buf)) <= 0)
			return false;
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 2, "%*c %d", &ppid) != 1)
			return false;
		if (ppid == getpid()) {
			snprintf(path, sizeof(path), "/proc/%d/comm", pid);
			/* memtrace-hold (ours), memtrace-wd (the dead-man
			 * switch); a command we run is neither */
			return read_file(path, comm, sizeof(comm)) > 0 &&
			       (!strncmp(comm, "memtrace-hold", 13) ||
				!strncmp(comm, "memtrace-wd", 11));
		}
		pid = ppid;
	}
	return false;
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
	char tmp[300], path[64], smaps[4096], filter[32] = "", why[256];
	struct capture *c = NULL;
	bool core = app->env.dump_core && !oom;
	struct statvfs sv;
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
	/* an attempt counts, failed or not: no retry at every refresh */
	if (p) {
		p->dumps++;
		p->last_dump_ns = now_ns();
	}
	if (r)
		r->dumps = p ? p->dumps : r->dumps + 1;
	memset(c, 0, sizeof(*c));
	c->pidfd = c->artfd = c->logfd = -1;
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
	if (pid == getpid() || own_helper(pid)) {
		fprintf(stderr, "memtrace: pid %d: not captured: it is %s\n",
			pid, pid == getpid() ? "memtrace itself" :
			"a helper memtrace started (watchdog, gcore or gdb)");
		c->result = -EPERM;
		capture_end(d, c);
		return -EPERM;
	}
	/* the small artifact first: without room for it, nothing at all */
	if (!fstatvfs(d->dirfd, &sv) &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < DUMP_SMALL_ROOM) {
		human_bytes(tmp, sizeof(tmp), (double)sv.f_bavail * sv.f_frsize);
		fprintf(stderr, "memtrace: pid %d: no capture: %s has %s free, "
			"a capture needs %d MiB besides the core\n", pid,
			d->shown_dir, tmp, DUMP_SMALL_ROOM >> 20);
		c->result = -ENOSPC;
		capture_end(d, c);
		return -ENOSPC;
	}
	st = hold__proc_state(pid);
	/*
	 * Hold it still so the core completes before the OOM killer acts:
	 * a stopped process charges no new memory.  One already stopped
	 * (^Z, a debugger) is left as found.
	 */
	if (core && st && st != 'T' && st != 't') {
		err = hold__freeze(pid, c->pidfd, &c->hold, why, sizeof(why));
		if (err) {
			fprintf(stderr, "memtrace: pid %d (%s): cannot hold it "
				"still for a capture: %s\n", pid, c->comm, why);
			c->result = err;
			capture_end(d, c);
			return err;
		}
		c->t_stop = now_ns();
	}
	if (cg && cg->lim.dir[0])
		check_own_cgroup(d, cg);
	if (cg && core && app->env.dump_slow_down)
		slow_down(c, cg);

	err = make_artifact_dir(d, c, cg ? cg->name : r && r->cgroup[0] ?
				r->cgroup : "none", oom, tmp, sizeof(tmp));
	if (err) {
		fprintf(stderr, "memtrace: pid %d: cannot create the capture "
			"directory in %s: %s\n", pid, d->shown_dir,
			strerror(-err));
		c->result = err;
		capture_end(d, c);
		return err;
	}
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	if (read_file(path, smaps, sizeof(smaps)) > 0) {
		write_buf(c, "smaps_rollup", smaps, strlen(smaps));
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
	fault_pause("MEMTRACE_FAULT_HOLD_MS");	/* held, files not renamed */
	if (!c->written) {
		fprintf(stderr, "memtrace: pid %d: no capture: nothing could be "
			"written in %s (%s)\n", pid, d->shown_dir,
			strerror(-c->lost_err));
		c->result = c->lost_err ? c->lost_err : -EIO;
		c->lost[0] = '\0';	/* said */
		remove_tree(d->dirfd, tmp);
		capture_end(d, c);
		return c->result;
	}
	if (fsync(c->artfd) || renameat(d->dirfd, tmp, d->dirfd, c->name)) {
		err = -errno;
		fprintf(stderr, "memtrace: pid %d: no capture: %s/%s: %s\n", pid,
			d->shown_dir, c->name, strerror(errno));
		c->result = err;
		c->lost[0] = '\0';
		remove_tree(d->dirfd, tmp);
		capture_end(d, c);
		return err;
	}
	fsync(d->dirfd);
	snprintf(d->last_name, sizeof(d->last_name), "%s", c->name);
	if (oom) {
		capture_end(d, c);
		return c->result;
	}
	fprintf(stderr, "memtrace: pid %d (%s) in %s: %s; capture in %s/%s%s\n",
		pid, c->comm, cg ? cg->shown : "-", reason, d->shown_dir,
		c->name, core ? ", core dump following" : "");
	if (!core) {
		capture_end(d, c);
		return c->result;
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

int dump__stop(struct dump *d)
{
	int i;

	if (!d)
		return 0;
	for (i = 0; i < DUMP_MAX_CAPS; i++)
		if (d->caps[i].active)
			core_fail(d, &d->caps[i], -EINTR, "core abandoned: "
				  "memtrace is exiting; process resumed");
	return d->result;
}

void dump__free(struct dump *d)
{
	int i;

	if (!d)
		return;
	dump__stop(d);
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
		/* the watchdog watches gcore, the deadline and the target */
		ADD(hold__fd(d->caps[i].hold), POLLIN);
	}
	for (i = 0; i < d->ncgs; i++)
		if (d->cgs[i]->watch)
			ADD(cg_watch__fd(d->cgs[i]->watch), POLLIN);
#undef ADD
	return n;
}

/* The most fds dump__pollfds() gives now: callers size their set. */
int dump__nr_pollfds(const struct dump *d)
{
	return d ? 1 + 2 * DUMP_MAX_CAPS + d->ncgs : 0;
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
		hot_poll(d, now);
		timer_arm(d);
		return;
	}
	for (i = 0; i < DUMP_MAX_CAPS; i++) {
		struct capture *c = &d->caps[i];

		if (!c->active)
			continue;
		if (c->gcore && fd == hold__fd(c->hold)) {
			enum hold_end end = hold__poll(c->hold, &ret);

			if (end != HOLD_RUNNING)
				gcore_done(d, c, end, ret);
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
		/* SIGINT, SIGTERM: the target goes first, the exit code says */
		if (d->app->exiting && *d->app->exiting) {
			core_fail(d, c, -EINTR, "core cancelled by signal %d; "
				  "process resumed", (int)*d->app->exiting);
			break;
		}
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
