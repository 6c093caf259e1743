// SPDX-License-Identifier: GPL-2.0
/*
 * The capture itself: hold the target still, write the small artifact
 * (report, heap profile, row, smaps_rollup, the cgroup's files, the
 * trigger), then a gcore core dump.
 *
 * A capture runs alongside the main loop rather than blocking it: the
 * target is held still (hold.c: ptrace, then a watchdog in its own
 * session for gcore), the small artifact is written at once (a few
 * milliseconds), then gcore runs under the watchdog, whose report is a
 * file descriptor in the main poll set.  Whatever kills memtrace, the
 * target runs on: hold.h says how.  Files go through artifact.c.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "artifact.h"
#include "capture.h"
#include "gorow.h"
#include "hold.h"
#include "json.h"
#include "jsonrow.h"
#include "pprof.h"
#include "procfs.h"
#include "sites.h"
#include "syms.h"
#include "trigger.h"
#include "util.h"

#define CAPTURE_REPORT_SITES	10
#define CAPTURE_REPORT_FRAMES	16
#define CAPTURE_SMALL_ROOM	(1 << 20)	/* free space a capture needs */

struct capture {
	struct captures *cs;
	bool active;
	int pid;
	int pidfd;		/* the target; pid reuse cannot fool a signal */
	struct artifact *art;	/* its directory; NULL until created */
	char comm[64];
	struct hold *hold;	/* the target held still; NULL: not held */
	bool gcore;		/* gcore runs under the hold's watchdog */
	int logfd;
	uint64_t t_trigger, t_stop, t_gcore;
	int result;		/* 0 or -errno for dump__now() */
	char high_file[1100];	/* --slow-down: memory.high to restore */
	char high_saved[32];
	uint64_t high_set;	/* what we wrote there */
};

struct captures {
	struct app *app;
	struct artdir *dir;
	char self_cg[1024];	/* our memory cgroup directory */
	struct capture caps[CAPTURE_MAX];
	bool gcore_warned;
	int result;		/* first failure of any capture: the exit code */
	bool full_warned;	/* said: all CAPTURE_MAX slots busy */
	char last_name[256];	/* artifact of the last capture__run() */
};

static uint64_t smaps_field(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtoull(p + strlen(key), NULL, 10) << 10 : 0;
}

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
	n = r->nsites < CAPTURE_REPORT_SITES ? r->nsites : CAPTURE_REPORT_SITES;
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
		for (j = 0; j < s->nframes && j < CAPTURE_REPORT_FRAMES; j++) {
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

static void write_report(struct captures *cs, struct capture *c,
			 struct mt_row *r, const struct cgent *cg,
			 const char *reason, bool oom)
{
	struct app *app = cs->app;
	char b[8][16], ts[64], s[2048];
	time_t now = time(NULL);
	struct afile a;
	struct tm tm;

	if (afile__open(&a, c->art, "report.txt"))
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
	afile__commit(&a);
}

/* The row in the --json schema, with every site: this is the evidence. */
static void write_row_json(struct captures *cs, struct capture *c,
			   struct mt_row *r)
{
	struct afile a;
	struct json j;

	if (!r || afile__open(&a, c->art, "row.json"))
		return;
	json__init(&j, a.f);
	jsonrow__write(&j, cs->app, r, r->nsites);
	fputc('\n', a.f);
	afile__commit(&a);
}

/* Written through the directory fd: the builder writes name.tmp, renames. */
static int write_profile(struct captures *cs, struct capture *c,
			 struct mt_row *r, unsigned flags, const char *name)
{
	int dirfd = artifact__fd(c->art), fd, err;
	char path[128];

	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
	err = sites__pprof(cs->app, &r, r ? 1 : 0, flags, path);
	if (!err) {
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchmod(fd, 0600) || fsync(fd))
			err = -errno;
		if (fd >= 0)
			close(fd);
	}
	if (err)
		artifact__lost(c->art, name, err);
	else
		artifact__count(c->art);
	return err;
}

static int write_pprof(struct captures *cs, struct capture *c,
		       struct mt_row *r)
{
	int err = write_profile(cs, c, r, 0, "heap.pb.gz");

	/* Go: also what the next GCs will publish (allocations since the last) */
	if (!err && r && r->go)
		err = write_profile(cs, c, r, SITES_PPROF_GO_UNPUBLISHED,
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
	if (artifact__copy(c->art, src, "memory.stat") == 1 && cg->stat_last)
		artifact__write(c->art, "memory.stat", cg->stat_last,
			  strlen(cg->stat_last));
	if (cg->stat_armed)
		artifact__write(c->art, "memory.stat.armed", cg->stat_armed,
			  strlen(cg->stat_armed));
	for (i = 0; i < n; i++) {
		snprintf(src, sizeof(src), "%s/%s", cg->lim.dir, names[i]);
		artifact__copy(c->art, src, names[i]);
	}
}

static void write_trigger(struct captures *cs, struct capture *c,
			  const struct cgent *cg, const char *reason,
			  const char *filter)
{
	char dir[2048];
	struct afile a;

	if (afile__open(&a, c->art, "trigger.txt"))
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
		"coredump_filter: %s\n", cs->app->env.dump_at_pct,
		(unsigned long long)cs->app->env.dump_at_bytes,
		filter[0] ? filter : "?");
	afile__commit(&a);
}

static void core_note(struct capture *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void core_note(struct capture *c, const char *fmt, ...)
{
	struct afile a;
	va_list ap;

	if (!c->art || afile__open(&a, c->art, "core.txt"))
		return;
	va_start(ap, fmt);
	vfprintf(a.f, fmt, ap);
	va_end(ap);
	fputc('\n', a.f);
	afile__commit(&a);
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
/* The end of every capture, whatever happened: the target runs again. */
static void capture_end(struct captures *cs, struct capture *c)
{
	const char *lost = c->art ? artifact__lost_names(c->art) : "";
	int artfd = c->art ? artifact__fd(c->art) : -1;
	char tmp[300];

	/* first of all: kills gcore and gdb, lets the target go */
	hold__release(c->hold);
	c->hold = NULL;
	c->gcore = false;
	slow_down_undo(c);
	if (c->logfd >= 0) {
		artifact__tmp_name(tmp, sizeof(tmp), "gcore.log");
		if (fsync(c->logfd) || renameat(artfd, tmp, artfd,
						 "gcore.log"))
			artifact__lost(c->art, "gcore.log", -errno);
		close(c->logfd);
	}
	if (artfd >= 0) {
		char core[64];

		snprintf(core, sizeof(core), "core.%d", c->pid);
		artifact__tmp_name(tmp, sizeof(tmp), core);
		unlinkat(artfd, tmp, 0);
	}
	if (c->pidfd >= 0)
		close(c->pidfd);
	c->logfd = c->pidfd = -1;
	if (lost[0]) {
		fprintf(stderr, "memtrace: pid %d: capture %s/%s is incomplete: "
			"could not write %s (%s)\n", c->pid,
			artdir__shown(cs->dir), artifact__name(c->art), lost,
			strerror(-artifact__lost_err(c->art)));
		if (!c->result)
			c->result = artifact__lost_err(c->art);
	}
	artifact__free(c->art);
	c->art = NULL;
	if (c->result && !cs->result)
		cs->result = c->result;
	c->active = false;
	cs->full_warned = false;
}

static void core_fail(struct captures *cs, struct capture *c, int err,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void core_fail(struct captures *cs, struct capture *c, int err,
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
	if (artifact__lost_names(c->art)[0])
		fprintf(stderr, "memtrace: pid %d: %s\n", c->pid, msg);
	else
		fprintf(stderr, "memtrace: pid %d: %s; small artifact in "
			"%s/%s\n", c->pid, msg, artdir__shown(cs->dir), artifact__name(c->art));
	c->result = err;
	capture_end(cs, c);
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

static void gcore_done(struct captures *cs, struct capture *c, enum hold_end end,
		       int status)
{
	char tmp[300], final[64], tail[200], sz[16];
	double secs = (now_ns() - c->t_gcore) / 1e9;
	struct stat st;
	int fd;

	snprintf(final, sizeof(final), "core.%d", c->pid);
	artifact__tmp_name(tmp, sizeof(tmp), final);
	log_tail(c, tail, sizeof(tail));
	switch (end) {
	case HOLD_TIMEOUT:
		core_fail(cs, c, -ETIMEDOUT, "core failed: gcore timed out after "
			  "%g s and was killed; process resumed",
			  cs->app->env.gcore_timeout);
		return;
	case HOLD_WATCHDOG_DIED:
		core_fail(cs, c, -EIO, "core failed: memtrace's watchdog died; "
			  "gcore killed, process resumed");
		return;
	case HOLD_CANCELLED:
		core_fail(cs, c, -EINTR, "core cancelled; process resumed");
		return;
	case HOLD_TARGET_EXITED:
		core_fail(cs, c, -ESRCH, "core failed: the process exited "
			  "during the dump");
		return;
	default:
		break;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		if (!hold__proc_state(c->pid))
			core_fail(cs, c, -ESRCH, "core failed: the process "
				  "exited during the dump");
		else if (WIFEXITED(status))
			core_fail(cs, c, -EIO, "core failed: gcore exited %d%s%s",
				  WEXITSTATUS(status), tail[0] ? ": " : "",
				  tail);
		else
			core_fail(cs, c, -EIO, "core failed: gcore killed by "
				  "signal %d", WTERMSIG(status));
		return;
	}
	if (fstatat(artifact__fd(c->art), tmp, &st, AT_SYMLINK_NOFOLLOW) ||
	    !S_ISREG(st.st_mode) || !st.st_size) {
		core_fail(cs, c, -EIO, "core failed: gcore wrote no core%s%s",
			  tail[0] ? ": " : "", tail);
		return;
	}
	/* gcore's script only checks that the file exists */
	if (log_has(c, "No space left") || log_has(c, "Failed to write")) {
		core_fail(cs, c, -ENOSPC, "core failed: incomplete (%s)", tail);
		return;
	}
	fd = openat(artifact__fd(c->art), tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && !core_complete(fd, st.st_size)) {
		close(fd);
		core_fail(cs, c, -EIO, "core failed: %s is truncated or not an "
			  "ELF core (gdb died?)%s%s", final, tail[0] ? ": " : "",
			  tail);
		return;
	}
	/* the watchdog has resumed the target: this may take a while */
	if (fd < 0 || fchmod(fd, 0600) || fsync(fd) ||
	    renameat(artifact__fd(c->art), tmp, artifact__fd(c->art), final)) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		core_fail(cs, c, err, "core failed: %s: %s", final,
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
		c->pid, artdir__shown(cs->dir), artifact__name(c->art), final, sz, secs);
	capture_end(cs, c);
}

static int gcore_start(struct captures *cs, struct capture *c, uint64_t need)
{
	char prefix[128], partial[300], core[64], need_s[16], free_s[16];
	char log[300];
	uint64_t avail;
	int fd, err;

	if (!artdir__avail(cs->dir, &avail)) {
		if (avail < need) {
			human_bytes(need_s, sizeof(need_s), need);
			human_bytes(free_s, sizeof(free_s), avail);
			core_fail(cs, c, -ENOSPC, "core skipped: needs ~%s, %s "
				  "free on %s", need_s, free_s, artdir__shown(cs->dir));
			return -ENOSPC;
		}
	}
	if (!find_in_path("gcore")) {
		core_fail(cs, c, -ENOENT, "core skipped: gcore not found in "
			  "PATH (install gdb)");
		return -ENOENT;
	}
	artifact__tmp_name(log, sizeof(log), "gcore.log");
	fd = openat(artifact__fd(c->art), log, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		artifact__lost(c->art, "gcore.log", err);
		core_fail(cs, c, err, "core skipped: gcore.log: %s",
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
	artifact__tmp_name(partial, sizeof(partial), core);
	snprintf(prefix, sizeof(prefix), "/proc/%d/fd/%d/.tmp-%d-core",
		 getpid(), artifact__fd(c->art), getpid());
	c->t_gcore = now_ns();
	err = hold__gcore(&c->hold, c->pid, c->pidfd, artifact__fd(c->art), fd, log,
			  prefix, partial, cs->app->env.gcore_timeout);
	if (err) {
		core_fail(cs, c, err, "core skipped: cannot start gcore: %s",
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
	struct procfs_stat st;
	int i;

	for (i = 0; i < 64 && pid > 1; i++) {
		if (procfs__read_stat(pid, &st))
			return false;
		if (st.ppid == getpid())
			/* memtrace-hold (ours), memtrace-wd (the dead-man
			 * switch); a command we run is neither */
			return !strncmp(st.comm, "memtrace-hold", 13) ||
			       !strncmp(st.comm, "memtrace-wd", 11);
		pid = st.ppid;
	}
	return false;
}

/* Our memory cgroup holds the target's: gdb would be charged to it. */
static void check_own_cgroup(struct captures *cs, const struct cgent *cg)
{
	size_t n;

	if (!cg || !cs->self_cg[0] || cs->gcore_warned)
		return;
	n = strlen(cg->lim.dir);
	if (strncmp(cs->self_cg, cg->lim.dir, n) ||
	    (cs->self_cg[n] && cs->self_cg[n] != '/'))
		return;
	cs->gcore_warned = true;
	fprintf(stderr, "memtrace: warning: memtrace runs inside %s, the "
		"target's memory cgroup: gdb's memory counts against its "
		"limit; run memtrace outside it\n", cg->shown);
}

struct capture *captures__slot(struct captures *cs, int pid, int *err)
{
	struct capture *c = NULL;
	int i;

	for (i = 0; i < CAPTURE_MAX; i++) {
		if (cs->caps[i].active && cs->caps[i].pid == pid) {
			*err = -EBUSY;
			return NULL;
		}
		if (!cs->caps[i].active && !c)
			c = &cs->caps[i];
	}
	if (!c) {
		/* once per busy spell, not at every refresh that retries */
		if (!cs->full_warned)
			fprintf(stderr, "memtrace: pid %d: %d captures already "
				"running; skipped (said once until one ends)\n",
				pid, CAPTURE_MAX);
		cs->full_warned = true;
		*err = -EBUSY;
		return NULL;
	}
	return c;
}

int capture__run(struct capture *c, int pid, struct mt_row *r,
		 const struct cgent *cg, const char *reason,
		 uint64_t t_trigger, bool oom)
{
	struct captures *cs = c->cs;	/* set by captures__new() */
	struct app *app = cs->app;
	char tmp[300], path[64], smaps[4096], filter[32] = "", why[256];
	bool core = app->env.dump_core && !oom;
	uint64_t need = 0, avail;
	char st;
	int err;

	memset(c, 0, sizeof(*c));
	c->cs = cs;
	c->pidfd = c->logfd = -1;
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
	if (!c->comm[0] && !procfs__read_comm(pid, tmp, sizeof(tmp)))
		sanitize(tmp, strlen(tmp), c->comm, sizeof(c->comm));
	if (pid == getpid() || own_helper(pid)) {
		fprintf(stderr, "memtrace: pid %d: not captured: it is %s\n",
			pid, pid == getpid() ? "memtrace itself" :
			"a helper memtrace started (watchdog, gcore or gdb)");
		c->result = -EPERM;
		capture_end(cs, c);
		return -EPERM;
	}
	/* the small artifact first: without room for it, nothing at all */
	if (!artdir__avail(cs->dir, &avail) && avail < CAPTURE_SMALL_ROOM) {
		human_bytes(tmp, sizeof(tmp), avail);
		fprintf(stderr, "memtrace: pid %d: no capture: %s has %s free, "
			"a capture needs %d MiB besides the core\n", pid,
			artdir__shown(cs->dir), tmp, CAPTURE_SMALL_ROOM >> 20);
		c->result = -ENOSPC;
		capture_end(cs, c);
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
			capture_end(cs, c);
			return err;
		}
		c->t_stop = now_ns();
	}
	if (cg && cg->lim.dir[0])
		check_own_cgroup(cs, cg);
	if (cg && core && app->env.dump_slow_down)
		slow_down(c, cg);

	err = artifact__new(cs->dir, pid, c->comm, cg ? cg->name :
			    r && r->cgroup[0] ? r->cgroup : "none", oom,
			    &c->art);
	if (err) {
		fprintf(stderr, "memtrace: pid %d: cannot create the capture "
			"directory in %s: %s\n", pid, artdir__shown(cs->dir),
			strerror(-err));
		c->result = err;
		capture_end(cs, c);
		return err;
	}
	if (!procfs__path(path, sizeof(path), pid, "smaps_rollup") &&
	    read_file(path, smaps, sizeof(smaps)) > 0) {
		artifact__write(c->art, "smaps_rollup", smaps, strlen(smaps));
		/* what the core will roughly take, with some headroom */
		need = smaps_field(smaps, "\nRss:") +
		       smaps_field(smaps, "\nSwap:") + (1 << 20);
	}
	if (!procfs__path(path, sizeof(path), pid, "coredump_filter") &&
	    read_file(path, filter, sizeof(filter)) > 0)
		filter[strcspn(filter, "\n")] = '\0';
	write_report(cs, c, r, cg, reason, oom);
	write_pprof(cs, c, r);
	write_row_json(cs, c, r);
	if (cg)
		write_cgroup_files(c, cg);
	write_trigger(cs, c, cg, reason, filter);
	fault_pause("MEMTRACE_FAULT_HOLD_MS");	/* held, files not renamed */
	if (!artifact__written(c->art)) {
		err = artifact__lost_err(c->art);
		fprintf(stderr, "memtrace: pid %d: no capture: nothing could be "
			"written in %s (%s)\n", pid, artdir__shown(cs->dir),
			strerror(-err));
		c->result = err ? err : -EIO;
		artifact__forget_lost(c->art);	/* said */
		artifact__discard(c->art);
		capture_end(cs, c);
		return c->result;
	}
	err = artifact__publish(c->art);
	if (err) {
		fprintf(stderr, "memtrace: pid %d: no capture: %s/%s: %s\n", pid,
			artdir__shown(cs->dir), artifact__name(c->art),
			strerror(-err));
		c->result = err;
		artifact__forget_lost(c->art);
		artifact__discard(c->art);
		capture_end(cs, c);
		return err;
	}
	snprintf(cs->last_name, sizeof(cs->last_name), "%s",
		 artifact__name(c->art));
	if (oom) {
		capture_end(cs, c);
		return c->result;
	}
	fprintf(stderr, "memtrace: pid %d (%s) in %s: %s; capture in %s/%s%s\n",
		pid, c->comm, cg ? cg->shown : "-", reason,
		artdir__shown(cs->dir), artifact__name(c->art),
		core ? ", core dump following" : "");
	if (!core) {
		capture_end(cs, c);
		return c->result;
	}
	gcore_start(cs, c, need);
	return 0;
}

int captures__new(struct app *app, struct artdir *dir, bool gcore_needed,
		  struct captures **out)
{
	struct cg_limits self;
	struct captures *cs;
	int i;

	*out = NULL;
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	cs->app = app;
	cs->dir = dir;
	for (i = 0; i < CAPTURE_MAX; i++) {
		cs->caps[i].cs = cs;
		cs->caps[i].pidfd = cs->caps[i].logfd = -1;
	}
	if (!cg__limits(NULL, NULL, 0, &self) && self.version)
		snprintf(cs->self_cg, sizeof(cs->self_cg), "%s", self.dir);
	if (gcore_needed && app->env.dump_core && !find_in_path("gcore"))
		fprintf(stderr, "memtrace: warning: gcore not found in PATH "
			"(install gdb): captures will have no core dump\n");
	*out = cs;
	return 0;
}

int captures__stop(struct captures *cs)
{
	int i;

	if (!cs)
		return 0;
	for (i = 0; i < CAPTURE_MAX; i++)
		if (cs->caps[i].active)
			core_fail(cs, &cs->caps[i], -EINTR, "core abandoned: "
				  "memtrace is exiting; process resumed");
	return cs->result;
}

void captures__free(struct captures *cs)
{
	if (!cs)
		return;
	captures__stop(cs);
	free(cs);
}

int captures__pollfds(struct captures *cs, struct pollfd *fds, int max)
{
	int i, n = 0, fd;

	for (i = 0; i < CAPTURE_MAX && n < max; i++) {
		if (!cs->caps[i].active)
			continue;
		/* the watchdog watches gcore, the deadline and the target */
		fd = hold__fd(cs->caps[i].hold);
		if (fd < 0)
			continue;
		fds[n].fd = fd;
		fds[n].events = POLLIN;
		fds[n++].revents = 0;
	}
	return n;
}

int captures__nr_pollfds(const struct captures *cs)
{
	(void)cs;
	return 2 * CAPTURE_MAX;
}

bool captures__on_ready(struct captures *cs, int fd)
{
	int i, ret;

	for (i = 0; i < CAPTURE_MAX; i++) {
		struct capture *c = &cs->caps[i];

		if (!c->active)
			continue;
		if (c->gcore && fd == hold__fd(c->hold)) {
			enum hold_end end = hold__poll(c->hold, &ret);

			if (end != HOLD_RUNNING)
				gcore_done(cs, c, end, ret);
			return true;
		}
	}
	return false;
}

struct capture *captures__find(struct captures *cs, int pid)
{
	int i;

	for (i = 0; i < CAPTURE_MAX; i++)
		if (cs->caps[i].active && cs->caps[i].pid == pid)
			return &cs->caps[i];
	return NULL;
}

const char *captures__last_name(const struct captures *cs)
{
	return cs->last_name;
}

bool capture__active(const struct capture *c)
{
	return c->active;
}

int capture__result(const struct capture *c)
{
	return c->result;
}

void capture__cancel(struct capture *c, int sig)
{
	core_fail(c->cs, c, -EINTR, "core cancelled by signal %d; process "
		  "resumed", sig);
}
