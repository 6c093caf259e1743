// SPDX-License-Identifier: GPL-2.0
/*
 * Cgroup monitoring and thresholds (see trigger.h).
 *
 * Per pid it remembers /proc/PID/cgroup (to notice moves) and how often
 * the process was captured; per cgroup the limits, the usage growth and
 * memory.stat (kept: after an OOM kill the cgroup is often gone).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "app.h"
#include "hashmap.h"
#include "procfs.h"
#include "trigger.h"
#include "util.h"

#define TRIGGER_CG_RECHECK	5	/* refreshes between cgroup rereads */
#define TRIGGER_CG_KEEP		30	/* refreshes an unused cgroup is kept */
#define TRIGGER_STAT_MAX	(64 << 10)
#define TRIGGER_HOT_POLL_NS	20000000ULL	/* v2: poll usage near it */

/*
 * What trigger.c remembers about a process between refreshes, for its
 * row (pid, id) of the registry, which says when it is forgotten
 * (trigger__forget): a reused pid starts afresh, never with another
 * process's dumps or cooldown.
 */
struct pstate {
	int pid;
	uint64_t id;
	char cgtext[1024];	/* raw /proc/PID/cgroup, to notice moves */
	struct cgent *cg;
	int dumps;
	uint64_t last_dump_ns;
};

struct trigger {
	struct app *app;
	bool armed;		/* --dump-at given */
	trigger_fire_fn fire;
	void *ctx;
	int timerfd;
	uint64_t seq;
	struct cgent **cgs;
	int ncgs, capcgs;
	struct pstate *ps;
	int nps, capps;
	/*
	 * Row id -> its place in ps, + 1: every row asks at each refresh,
	 * and an exec storm leaves thousands (a search made it quadratic).
	 */
	struct hashmap ps_ix;
};

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static struct pstate *pstate_get(struct trigger *t, int pid, bool create)
{
	struct mt_row *r = table__get(t->app->table, pid);
	struct pstate *p;
	uintptr_t i;

	if (!r)
		return NULL;
	i = (uintptr_t)hashmap__get(&t->ps_ix, r->id);
	if (i)
		return &t->ps[i - 1];
	if (!create)
		return NULL;
	if (t->nps == t->capps) {
		int cap = t->capps ? t->capps * 2 : 64;

		p = realloc(t->ps, cap * sizeof(*p));
		if (!p)
			return NULL;
		t->ps = p;
		t->capps = cap;
	}
	if (hashmap__add(&t->ps_ix, r->id, (void *)(uintptr_t)(t->nps + 1)))
		return NULL;
	p = &t->ps[t->nps++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->id = r->id;
	return p;
}

static struct cgent *cgent_get(struct trigger *t, const struct cg_limits *lim)
{
	struct cgent *c, **n;
	int i;

	for (i = 0; i < t->ncgs; i++)
		if (!strcmp(t->cgs[i]->lim.dir, lim->dir))
			return t->cgs[i];
	if (t->ncgs == t->capcgs) {
		int cap = t->capcgs ? t->capcgs * 2 : 16;

		n = realloc(t->cgs, cap * sizeof(*n));
		if (!n)
			return NULL;
		t->cgs = n;
		t->capcgs = cap;
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
	c->read_seq = t->seq;	/* cg__limits() just read it */
	c->prev_usage = lim->usage;
	c->prev_ns = now_ns();
	t->cgs[t->ncgs++] = c;
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
	char *buf = malloc(TRIGGER_STAT_MAX);

	if (buf && cg__read_stat(c->lim.dir, buf, TRIGGER_STAT_MAX) < 0 &&
	    !buf[0]) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Once per refresh per cgroup: limits, usage rate, memory.stat. */
static void cgent_read(struct trigger *t, struct cgent *c, uint64_t now)
{
	struct cg_limits lim;
	double dt;
	char *st;

	c->read_seq = t->seq;
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

static uint64_t threshold_of(const struct trigger *t, const struct cgent *c)
{
	const struct env *env = &t->app->env;
	uint64_t thr = 0, pct;

	if (env->dump_at_bytes)
		thr = env->dump_at_bytes;
	if (env->dump_at_pct > 0 && c->lim.effective != CG_UNLIMITED) {
		pct = c->lim.effective * (env->dump_at_pct / 100.0);
		thr = thr ? min_u64(thr, pct) : pct;
	}
	return thr;
}

/* (Re)arm the notification when the threshold changes. */
static void cgent_arm(struct trigger *t, struct cgent *c)
{
	uint64_t thr = threshold_of(t, c);
	int err;

	if (!thr && t->app->env.dump_at_pct > 0 && !c->nolimit_warned) {
		c->nolimit_warned = true;
		fprintf(stderr, "memtrace: cgroup %s has no memory limit: "
			"--dump-at %.0f%% cannot trigger for its processes "
			"(use --dump-at BYTES)\n", c->shown,
			t->app->env.dump_at_pct);
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
static void row_cgroup(struct trigger *t, struct mt_row *r, struct pstate *p,
		       uint64_t now)
{
	struct procfs_cgroup text;
	struct cg_limits lim;

	if ((!p->cg || !p->cgtext[0] ||
	     (t->seq + r->pid) % TRIGGER_CG_RECHECK == 0) &&
	    !procfs__read_cgroup(r->pid, &text)) {
		if (text.text[0] &&
		    strncmp(text.text, p->cgtext, sizeof(p->cgtext) - 1)) {
			snprintf(p->cgtext, sizeof(p->cgtext), "%s", text.text);
			p->cg = NULL;
			r->cgroup[0] = '\0';
			r->cg_version = 0;
			if (!cg__limits(NULL, NULL, r->pid, &lim)) {
				if (lim.version)
					p->cg = cgent_get(t, &lim);
				else
					snprintf(r->cgroup, sizeof(r->cgroup),
						 "%s", lim.name);
			}
		}
		procfs__cgroup_free(&text);
	}
	if (!p->cg)
		return;
	if (p->cg->read_seq != t->seq)
		cgent_read(t, p->cg, now);
	p->cg->used_seq = t->seq;
}

static void timer_arm(struct trigger *t)
{
	struct itimerspec its = { 0 };
	uint64_t next = UINT64_MAX;
	int i;

	if (t->timerfd < 0)
		return;
	for (i = 0; i < t->ncgs; i++)
		if (t->cgs[i]->hot)
			next = min_u64(next, now_ns() + TRIGGER_HOT_POLL_NS);
	if (next != UINT64_MAX) {
		its.it_value.tv_sec = next / 1000000000ULL;
		its.it_value.tv_nsec = next % 1000000000ULL;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(t->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Not captured too often: --dump-max, --dump-cooldown. */
static bool eligible(struct trigger *t, struct pstate *p)
{
	const struct env *env = &t->app->env;

	if (p->dumps >= env->dump_max)
		return false;
	if (p->last_dump_ns &&
	    now_ns() - p->last_dump_ns < env->dump_cooldown * 1e9)
		return false;
	return true;
}

/*
 * Capture every traced process of the cgroup that may be captured (one
 * already being captured is refused by the owner, silently).
 */
static void fire(struct trigger *t, struct cgent *cg, const char *how,
		 uint64_t when)
{
	char reason[256], b[3][16];
	int i;

	human_bytes(b[0], sizeof(b[0]), cg->lim.usage);
	human_bytes(b[1], sizeof(b[1]), cg->threshold);
	human_bytes(b[2], sizeof(b[2]), cg->lim.effective);
	snprintf(reason, sizeof(reason), "cgroup usage %s reached the "
		 "threshold %s (limit %s) [%s]", b[0], b[1],
		 cg->lim.effective == CG_UNLIMITED ? "none" : b[2], how);
	for (i = 0; i < t->nps; i++) {
		struct pstate *p = &t->ps[i];
		struct mt_row *r;

		if (p->cg != cg || !eligible(t, p))
			continue;
		r = table__get(t->app->table, p->pid);
		if (!r || r->id != p->id || r->exited)
			continue;
		t->fire(t->ctx, p->pid, reason, when);
	}
}

int trigger__new(struct app *app, bool armed, trigger_fire_fn fire_fn,
		 void *ctx, struct trigger **out)
{
	struct trigger *t;
	int err;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->app = app;
	hashmap__init(&t->ps_ix, NULL, NULL, NULL);
	t->armed = armed;
	t->fire = fire_fn;
	t->ctx = ctx;
	t->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
				    TFD_CLOEXEC);
	if (t->timerfd < 0) {
		err = -errno;
		free(t);
		return err;
	}
	*out = t;
	return 0;
}

void trigger__free(struct trigger *t)
{
	int i;

	if (!t)
		return;
	for (i = 0; i < t->ncgs; i++)
		cgent_free(t->cgs[i]);
	free(t->cgs);
	free(t->ps);
	hashmap__clear(&t->ps_ix);
	if (t->timerfd >= 0)
		close(t->timerfd);
	free(t);
}

void trigger__refresh(struct trigger *t)
{
	struct table *tab = t->app->table;
	uint64_t now = now_ns();
	int i, j;

	t->seq++;
	for (i = 0; i < table__nr(tab); i++) {
		struct mt_row *r = table__row(tab, i);
		struct pstate *p = pstate_get(t, r->pid, true);

		if (!p)
			continue;
		/* an exited row keeps what it last showed */
		if (!r->exited)
			row_cgroup(t, r, p, now);
		if (p->cg && !r->exited)
			fill_row(r, p->cg);
		r->dumps = p->dumps;
	}
	/* cgroups nobody uses (processes go by trigger__forget) */
	for (i = 0; i < t->ncgs; i++) {
		struct cgent *c = t->cgs[i];
		bool used = false;

		for (j = 0; j < t->nps && !used; j++)
			used = t->ps[j].cg == c;
		if (used || t->seq - c->used_seq < TRIGGER_CG_KEEP)
			continue;
		cgent_free(c);
		t->cgs[i--] = t->cgs[--t->ncgs];
	}
	if (!t->armed)
		return;
	for (i = 0; i < t->ncgs; i++) {
		struct cgent *c = t->cgs[i];

		if (c->read_seq != t->seq)
			continue;
		cgent_arm(t, c);
		c->hot = false;
		if (!c->threshold)
			continue;
		/* backstop: a missed or unsupported notification */
		if (c->lim.usage >= c->threshold) {
			fire(t, c, "seen at refresh", now);
			continue;
		}
		/*
		 * v2 has no usage threshold notification: if the growth
		 * may cross it before the next refresh, poll usage fast.
		 */
		if (c->lim.version == 2 && c->rate > 0 &&
		    c->lim.usage + c->rate * t->app->env.delay * 2 >=
		    c->threshold)
			c->hot = true;
	}
	timer_arm(t);
}

void trigger__rearm(struct trigger *t)
{
	timer_arm(t);
}

int trigger__pollfds(struct trigger *t, struct pollfd *fds, int max)
{
	int i, n = 0;

	if (n < max) {
		fds[n].fd = t->timerfd;
		fds[n].events = POLLIN;
		fds[n++].revents = 0;
	}
	for (i = 0; i < t->ncgs && n < max; i++) {
		if (!t->cgs[i]->watch)
			continue;
		fds[n].fd = cg_watch__fd(t->cgs[i]->watch);
		fds[n].events = POLLIN;
		fds[n++].revents = 0;
	}
	return n;
}

int trigger__nr_pollfds(const struct trigger *t)
{
	return 1 + t->ncgs;
}

static void hot_poll(struct trigger *t, uint64_t now)
{
	char path[1200], buf[64];
	int i;

	for (i = 0; i < t->ncgs; i++) {
		struct cgent *c = t->cgs[i];

		if (!c->hot)
			continue;
		snprintf(path, sizeof(path), "%s/memory.current", c->lim.dir);
		if (read_file(path, buf, sizeof(buf)) <= 0)
			continue;
		c->lim.usage = strtoull(buf, NULL, 10);
		if (c->lim.usage >= c->threshold) {
			c->hot = false;
			fire(t, c, "usage polled near the threshold", now);
		}
	}
}

bool trigger__on_ready(struct trigger *t, int fd)
{
	uint64_t now = now_ns(), ticks;
	int i, ret;

	if (fd == t->timerfd) {
		if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
			return true;
		hot_poll(t, now);
		timer_arm(t);
		return true;
	}
	for (i = 0; i < t->ncgs; i++) {
		struct cgent *c = t->cgs[i];

		if (!c->watch || cg_watch__fd(c->watch) != fd)
			continue;
		ret = cg_watch__consume(c->watch);
		if (ret > 0) {
			/* the usage the watcher saw, for the report */
			struct cg_limits lim;

			if (!cg__limits_dir(c->lim.version, c->lim.dir, &lim))
				c->lim = lim;
			fire(t, c, c->lim.version == 1 ?
			     "cgroup threshold event" :
			     "cgroup memory.events/PSI event", now);
		}
		return true;
	}
	return false;
}

const struct cgent *trigger__cgroup(struct trigger *t, int pid, bool lookup)
{
	struct pstate *p = pstate_get(t, pid, false);
	struct cgent *cg = p ? p->cg : NULL;
	struct cg_limits lim;

	/* not a row we mapped yet (node mode, a fresh pid): look it up */
	if (!cg && lookup && !cg__limits(NULL, NULL, pid, &lim) &&
	    lim.version) {
		cg = cgent_get(t, &lim);
		if (cg && !cg->stat_last)
			cg->stat_last = read_stat(cg);
	}
	return cg;
}

void trigger__forget(struct trigger *t, int pid, uint64_t id)
{
	uintptr_t i = t ? (uintptr_t)hashmap__get(&t->ps_ix, id) : 0;

	/* ids are never reused: the id names the row */
	if (!i || t->ps[i - 1].pid != pid)
		return;
	hashmap__delete(&t->ps_ix, id, NULL);
	/* the last entry takes its place */
	t->ps[i - 1] = t->ps[--t->nps];
	if (i - 1 < (uintptr_t)t->nps)
		hashmap__set(&t->ps_ix, t->ps[i - 1].id, (void *)i, NULL);
}

int trigger__count_dump(struct trigger *t, int pid)
{
	struct pstate *p = pstate_get(t, pid, false);

	if (!p)
		return -1;
	p->dumps++;
	p->last_dump_ns = now_ns();
	return p->dumps;
}
