// SPDX-License-Identifier: GPL-2.0
/*
 * Pre-OOM evidence, the owner of three rooms (dump.h is the door):
 * trigger.c watches the cgroups and says when to capture, capture.c
 * captures, artifact.c owns the dump directory and its files.  This
 * file wires them together: which pid to capture when, how often, and
 * the post-mortem of an OOM kill.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "artifact.h"
#include "capture.h"
#include "dump.h"
#include "sites.h"
#include "trigger.h"
#include "util.h"

#define DUMP_DEFAULT_DIR	"/var/lib/memtrace"

struct dump {
	struct app *app;
	struct artdir *dir;
	struct trigger *trigger;
	struct captures *caps;
	bool write_oom;		/* post-mortems on OOM kills */
};

/* Capture pid: count the attempt, then the capture itself. */
static int start(struct dump *d, int pid, const char *reason,
		 uint64_t t_trigger, bool oom)
{
	struct mt_row *r = table__get(d->app->table, pid);
	const struct cgent *cg;
	struct capture *c;
	int err, dumps;

	err = artdir__open(d->dir);
	if (err)
		return err;
	cg = trigger__cgroup(d->trigger, pid, true);
	c = captures__slot(d->caps, pid, &err);
	if (!c)
		return err;
	/* an attempt counts, failed or not: no retry at every refresh */
	dumps = trigger__count_dump(d->trigger, pid);
	if (r)
		r->dumps = dumps >= 0 ? dumps : r->dumps + 1;
	err = capture__run(c, pid, r, cg, reason, t_trigger, oom);
	trigger__rearm(d->trigger);
	return err;
}

static void on_trigger(void *ctx, int pid, const char *reason,
		       uint64_t t_trigger)
{
	start(ctx, pid, reason, t_trigger, false);
}

int dump__new(struct app *app, struct dump **out)
{
	const struct env *env = &app->env;
	bool armed = env->dump_at_pct > 0 || env->dump_at_bytes > 0;
	struct dump *d;
	int err;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->app = app;
	d->write_oom = armed || env->dump_dir;
	err = artdir__new(env->dump_dir ? env->dump_dir : DUMP_DEFAULT_DIR,
			  &d->dir);
	if (!err)
		err = trigger__new(app, armed, on_trigger, d, &d->trigger);
	if (err)
		goto fail;
	if (armed || env->dump_dir || env->mode == MODE_DUMP) {
		err = artdir__open(d->dir);
		if (err)
			goto fail;
	}
	err = captures__new(app, d->dir, armed || env->mode == MODE_DUMP,
			    &d->caps);
	if (err)
		goto fail;
	*out = d;
	return 0;
fail:
	dump__free(d);
	return err;
}

int dump__stop(struct dump *d)
{
	int err;

	if (!d)
		return 0;
	err = captures__stop(d->caps);
	trigger__rearm(d->trigger);
	return err;
}

void dump__free(struct dump *d)
{
	if (!d)
		return;
	captures__free(d->caps);
	trigger__free(d->trigger);
	artdir__free(d->dir);
	free(d);
}

void dump__refresh(struct dump *d)
{
	if (d)
		trigger__refresh(d->trigger);
}

void dump__forget(struct dump *d, int pid, uint64_t id)
{
	if (d)
		trigger__forget(d->trigger, pid, id);
}

int dump__pollfds(struct dump *d, struct pollfd *fds, int max)
{
	int n;

	if (!d)
		return 0;
	n = trigger__pollfds(d->trigger, fds, max);
	return n + captures__pollfds(d->caps, fds + n, max - n);
}

/* The most fds dump__pollfds() gives now: callers size their set. */
int dump__nr_pollfds(const struct dump *d)
{
	return d ? trigger__nr_pollfds(d->trigger) +
		   captures__nr_pollfds(d->caps) : 0;
}

void dump__on_ready(struct dump *d, int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (!d)
		return;
	/*
	 * The caller's poll set may be stale: an earlier fd of the same
	 * set can have ended a capture and a new one reused the number.
	 */
	if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLIN | POLLPRI)))
		return;
	if (trigger__on_ready(d->trigger, fd))
		return;
	if (captures__on_ready(d->caps, fd))
		trigger__rearm(d->trigger);
}

int dump__now(struct dump *d, int pid, const char *reason)
{
	struct pollfd fds[64];
	struct capture *c;
	int i, n, err;

	if (!d)
		return -EINVAL;
	err = start(d, pid, reason, now_ns(), false);
	if (err || d->app->env.mode != MODE_DUMP)
		return err;
	c = captures__find(d->caps, pid);
	/* memtrace dump PID exits after this: see the core through */
	while (c && capture__active(c)) {
		/* SIGINT, SIGTERM: the target goes first, the exit code says */
		if (d->app->exiting && *d->app->exiting) {
			capture__cancel(c, (int)*d->app->exiting);
			break;
		}
		n = dump__pollfds(d, fds, ARRAY_SIZE(fds));
		if (poll(fds, n, 200) < 0 && errno != EINTR)
			break;
		for (i = 0; i < n; i++)
			if (fds[i].revents)
				dump__on_ready(d, fds[i].fd);
	}
	return c ? capture__result(c) : 0;
}

void dump__oom(struct dump *d, const struct mt_event *e)
{
	const struct mt_site_row *top = NULL;
	const struct cgent *cg;
	struct mt_row *r;
	char comm[64], site[160] = "", rate[16], where[PATH_MAX + 300] = "";
	char cont[512] = "-", shown[640];
	int i, err;

	if (!d)
		return;
	r = table__get(d->app->table, e->tgid);
	cg = trigger__cgroup(d->trigger, e->tgid, false);
	sanitize(e->comm, sizeof(e->comm), comm, sizeof(comm));
	if (cg)
		snprintf(cont, sizeof(cont), "%s", cg->shown);
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
		err = start(d, e->tgid, "OOM kill", now_ns(), true);
		if (!err)
			snprintf(where, sizeof(where), "; post-mortem in %s/%s",
				 artdir__shown(d->dir),
				 captures__last_name(d->caps));
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
