// SPDX-License-Identifier: GPL-2.0
/*
 * debuginfod lookups in a worker thread (see debuginfod.h).
 *
 * Requests are few (one per file without local debug information) and
 * kept for the run in one array under a lock: the worker takes the
 * oldest queued one, fetches it with its own client (a client is not
 * shared between threads) and records the answer.
 */
#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debuginfod.h"

/* libdebuginfod's API (elfutils/debuginfod.h is in a -dev package) */
struct dbgd_api {
	debuginfod_client *(*begin)(void);
	void (*end)(debuginfod_client *c);
	int (*find_debuginfo)(debuginfod_client *c, const unsigned char *id,
			      int len, char **path);
};

struct dbgd_req {
	char build_id[41];
	char *path;		/* the debug file, in the client's cache */
	enum { REQ_QUEUED, REQ_FETCHING, REQ_ARRIVED, REQ_FAILED } state;
};

struct dbgd {
	struct dbgd_api api;
	void *so;
	pthread_t thread;
	bool running, stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct dbgd_req *reqs;
	int nr, cap;
	unsigned int answers;	/* read without the lock: atomics */
};

struct dbgd *dbgd__new(void)
{
	const char *urls = getenv("DEBUGINFOD_URLS");
	struct dbgd *d;

	if (!urls || !urls[0])
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->so = dlopen("libdebuginfod.so.1", RTLD_LAZY);
	if (!d->so)
		goto fail;
	d->api.begin = dlsym(d->so, "debuginfod_begin");
	d->api.end = dlsym(d->so, "debuginfod_end");
	d->api.find_debuginfo = dlsym(d->so, "debuginfod_find_debuginfo");
	if (!d->api.begin || !d->api.end || !d->api.find_debuginfo)
		goto fail;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	return d;
fail:
	if (d->so)
		dlclose(d->so);
	free(d);
	return NULL;
}

static void reqs_free(struct dbgd *d)
{
	int i;

	for (i = 0; i < d->nr; i++)
		free(d->reqs[i].path);
	free(d->reqs);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	dlclose(d->so);
	free(d);
}

void dbgd__free(struct dbgd *d)
{
	if (!d)
		return;
	if (d->running) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_cond_signal(&d->cond);
		pthread_mutex_unlock(&d->lock);
		/*
		 * A transfer in progress ends at DEBUGINFOD_TIMEOUT at the
		 * latest; memtrace is exiting, so it is not waited for.
		 */
		pthread_detach(d->thread);
		return;		/* the worker frees d */
	}
	reqs_free(d);
}

static int unhex(const char *hex, unsigned char *out, int max)
{
	int n = 0;

	for (; hex[0] && hex[1] && n < max; hex += 2) {
		char b[3] = { hex[0], hex[1], 0 };
		char *end;

		out[n++] = strtoul(b, &end, 16);
		if (*end)
			return -EINVAL;
	}
	return n;
}

static void *worker(void *arg)
{
	struct dbgd *d = arg;
	debuginfod_client *c = d->api.begin();
	unsigned char id[20];
	char bid[41], *path;
	int i, n, fd;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		for (i = 0; i < d->nr; i++)
			if (d->reqs[i].state == REQ_QUEUED)
				break;
		if (i == d->nr) {
			pthread_cond_wait(&d->cond, &d->lock);
			continue;
		}
		d->reqs[i].state = REQ_FETCHING;
		memcpy(bid, d->reqs[i].build_id, sizeof(bid));
		pthread_mutex_unlock(&d->lock);

		n = unhex(bid, id, sizeof(id));
		path = NULL;
		fd = c && n > 0 ? d->api.find_debuginfo(c, id, n, &path) : -1;
		if (fd >= 0)
			close(fd);

		pthread_mutex_lock(&d->lock);
		d->reqs[i].state = fd >= 0 && path ? REQ_ARRIVED : REQ_FAILED;
		d->reqs[i].path = path;
		__atomic_add_fetch(&d->answers, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&d->lock);
	if (c)
		d->api.end(c);
	/* stopped by dbgd__free, which left d to us */
	reqs_free(d);
	return NULL;
}

static struct dbgd_req *find(struct dbgd *d, const char *build_id)
{
	int i;

	for (i = 0; i < d->nr; i++)
		if (!strcmp(d->reqs[i].build_id, build_id))
			return &d->reqs[i];
	return NULL;
}

int dbgd__request(struct dbgd *d, const char *build_id)
{
	struct dbgd_req *r;
	int err = 0;

	if (!d || !build_id[0] || strlen(build_id) >= sizeof(r->build_id))
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	if (find(d, build_id))
		goto out;
	if (d->nr == d->cap) {
		int cap = d->cap ? d->cap * 2 : 16;

		r = realloc(d->reqs, cap * sizeof(*r));
		if (!r) {
			err = -ENOMEM;
			goto out;
		}
		d->reqs = r;
		d->cap = cap;
	}
	r = &d->reqs[d->nr++];
	strcpy(r->build_id, build_id);
	r->path = NULL;
	r->state = REQ_QUEUED;
	if (!d->running) {
		err = -pthread_create(&d->thread, NULL, worker, d);
		if (err) {
			d->nr--;
			goto out;
		}
		d->running = true;
	}
	pthread_cond_signal(&d->cond);
out:
	pthread_mutex_unlock(&d->lock);
	return err;
}

enum dbgd_state dbgd__state(struct dbgd *d, const char *build_id,
			    char **path)
{
	enum dbgd_state st = DBGD_FAILED;
	struct dbgd_req *r;

	if (!d)
		return st;
	pthread_mutex_lock(&d->lock);
	r = find(d, build_id);
	if (r && (r->state == REQ_QUEUED || r->state == REQ_FETCHING))
		st = DBGD_PENDING;
	else if (r && r->state == REQ_ARRIVED && (*path = strdup(r->path)))
		st = DBGD_ARRIVED;
	pthread_mutex_unlock(&d->lock);
	return st;
}

int dbgd__wait(struct dbgd *d, int ms)
{
	bool pending = true;
	int i;

	for (; d && ms >= 0; ms -= 20) {
		pthread_mutex_lock(&d->lock);
		for (i = 0, pending = false; i < d->nr && !pending; i++)
			pending = d->reqs[i].state == REQ_QUEUED ||
				  d->reqs[i].state == REQ_FETCHING;
		pthread_mutex_unlock(&d->lock);
		if (!pending)
			return 0;
		usleep(20000);
	}
	return d && pending ? -ETIMEDOUT : 0;
}

unsigned int dbgd__answers(struct dbgd *d)
{
	return d ? __atomic_load_n(&d->answers, __ATOMIC_ACQUIRE) : 0;
}
