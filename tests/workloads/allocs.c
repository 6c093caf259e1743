// SPDX-License-Identifier: GPL-2.0
/*
 * Ground-truth workload: calls every allocator entry point from named
 * functions and writes exactly what it allocated, freed and still holds
 * as JSON to the file named by --truth.  It uses no stdio, so the C
 * library allocates nothing behind our back.
 *
 *   allocs [--truth FILE] [--wait] [--threads N] [--free-all] [--exit-code N]
 *
 * --wait: allocate a few "old" blocks, then block until a line arrives
 *         on stdin (so a tracer can attach), free the old blocks (frees
 *         the tracer must ignore) and do the work; after writing the
 *         truth, wait for EOF on stdin and exit.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "truth.h"
#include <fcntl.h>

struct truth {
	long long live_bytes, live_allocs, alloc_bytes, allocs;
	long long free_bytes, frees, unmatched;
	long long site_bytes[8];
};

static struct truth T;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

enum { S_MALLOC, S_CALLOC, S_REALLOC, S_MEMALIGN, S_THREAD, S_NSITES };
static const char *site_names[] = {
	"site_malloc", "site_calloc", "site_realloc", "site_memalign",
	"thread_main",
};

static void got(int site, long long size)
{
	pthread_mutex_lock(&lock);
	T.alloc_bytes += size;
	T.allocs++;
	T.live_bytes += size;
	T.live_allocs++;
	T.site_bytes[site] += size;
	pthread_mutex_unlock(&lock);
}

static void dropped(int site, long long size)
{
	pthread_mutex_lock(&lock);
	T.free_bytes += size;
	T.frees++;
	T.live_bytes -= size;
	T.live_allocs--;
	T.site_bytes[site] -= size;
	pthread_mutex_unlock(&lock);
}

static inline void escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static void *keep[4096];
static int nkeep;

static void hold(void *p)
{
	pthread_mutex_lock(&lock);
	keep[nkeep++] = p;
	pthread_mutex_unlock(&lock);
}

__attribute__((noinline)) void site_malloc(void)
{
	int i;

	for (i = 0; i < 100; i++)
		hold(malloc(1000 + i)), got(S_MALLOC, 1000 + i);
	/* churn: allocated and freed, only totals move */
	for (i = 0; i < 1000; i++) {
		void *p = malloc(64);

		/* without this the compiler deletes the malloc/free pair */
		escape(p);
		got(S_MALLOC, 64);
		free(p);
		dropped(S_MALLOC, 64);
	}
	free(NULL);		/* ignored */
	/* a large block, served by mmap inside malloc */
	hold(malloc(1 << 20));
	got(S_MALLOC, 1 << 20);
}

__attribute__((noinline)) void site_calloc(void)
{
	int i;

	for (i = 0; i < 10; i++)
		hold(calloc(10, 30)), got(S_CALLOC, 300);
	/* overflowing calloc fails and allocates nothing */
	size_t huge = SIZE_MAX / 2;

	escape(&huge);
	if (calloc(huge, 4))
		_exit(90);
}

__attribute__((noinline)) void site_realloc(void)
{
	void *p, *q;

	p = malloc(100);
	escape(p);
	got(S_REALLOC, 100);
	p = realloc(p, 5000);		/* free 100 + alloc 5000 */
	dropped(S_REALLOC, 100);
	got(S_REALLOC, 5000);
	p = realloc(p, 6000);
	dropped(S_REALLOC, 5000);
	got(S_REALLOC, 6000);
	hold(p);
	q = realloc(NULL, 300);		/* a malloc; glibc calls malloc inside */
	got(S_REALLOC, 300);
	hold(q);
	q = malloc(77);
	escape(q);
	got(S_REALLOC, 77);
	q = realloc(q, 0);		/* frees; glibc returns NULL, musl */
	dropped(S_REALLOC, 77);	/* a new zero-sized block */
	if (q) {
		got(S_REALLOC, 0);
		hold(q);
	}
	q = reallocarray(NULL, 10, 40);	/* 400 */
	got(S_REALLOC, 400);
	hold(q);
	/* failing reallocarray leaves everything as it was */
	size_t huge = SIZE_MAX / 2;

	escape(&huge);
	if (reallocarray(p, huge, 4))
		_exit(92);
}

__attribute__((noinline)) void site_memalign(void)
{
	void *p;

	if (posix_memalign(&p, 64, 1000))
		_exit(93);
	got(S_MEMALIGN, 1000);
	hold(p);
	hold(aligned_alloc(64, 512));
	got(S_MEMALIGN, 512);
	hold(memalign(128, 256));
	got(S_MEMALIGN, 256);
	hold(valloc(100));
	got(S_MEMALIGN, 100);
#ifdef __GLIBC__
	/* pvalloc is glibc's alone */
	hold(pvalloc(200));
	got(S_MEMALIGN, 200);
#endif
	/* an invalid alignment fails with EINVAL, nothing allocated */
	if (!posix_memalign(&p, 3, 100))
		_exit(94);
}

static void *thread_main(void *arg)
{
	int i;

	for (i = 0; i < 200; i++) {
		void *p = malloc(32 + i);

		escape(p);
		got(S_THREAD, 32 + i);
		if (i % 2) {
			free(p);
			dropped(S_THREAD, 32 + i);
		} else {
			hold(p);
		}
	}
	return arg;
}

__attribute__((noinline)) void thread_work(int n)
{
	pthread_t t[16];
	int i;

	for (i = 0; i < n && i < 16; i++)
		pthread_create(&t[i], NULL, thread_main, NULL);
	for (i = 0; i < n && i < 16; i++)
		pthread_join(t[i], NULL);
}

static void save_truth(const char *path)
{
	char buf[2048];
	int i, n;

	n = snprintf(buf, sizeof(buf),
		     "{\"pid\":%d,\"live_bytes\":%lld,\"live_allocs\":%lld,"
		     "\"alloc_bytes\":%lld,\"allocs\":%lld,\"free_bytes\":%lld,"
		     "\"frees\":%lld,\"unmatched_frees\":%lld,\"sites\":{",
		     getpid(), T.live_bytes, T.live_allocs, T.alloc_bytes,
		     T.allocs, T.free_bytes, T.frees, T.unmatched);
	for (i = 0; i < S_NSITES; i++)
		n += snprintf(buf + n, sizeof(buf) - n, "%s\"%s\":%lld",
			      i ? "," : "", site_names[i], T.site_bytes[i]);
	n += snprintf(buf + n, sizeof(buf) - n, "}}\n");
	if (write_truth(path, buf, n))
		_exit(95);
}

static void wait_line(void)
{
	char c;

	while (read(0, &c, 1) == 1 && c != '\n')
		;
}

int main(int argc, char **argv)
{
	const char *truth = NULL;
	int i, threads = 2, wait = 0, free_all = 0, code = 0;
	void *old[10];

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--truth") && i + 1 < argc)
			truth = argv[++i];
		else if (!strcmp(argv[i], "--wait"))
			wait = 1;
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--free-all"))
			free_all = 1;
		else if (!strcmp(argv[i], "--exit-code") && i + 1 < argc)
			code = atoi(argv[++i]);
	}
	if (wait) {
		for (i = 0; i < 10; i++)
			old[i] = malloc(4000);
		if (write(1, "ready\n", 6) != 6)
			return 96;
		wait_line();
		for (i = 0; i < 10; i++)
			free(old[i]);	/* allocated before tracing */
		T.unmatched = 10;
	}
	site_malloc();
	site_calloc();
	site_realloc();
	site_memalign();
	thread_work(threads);
	if (free_all) {
		for (i = 0; i < nkeep; i++)
			free(keep[i]);
		nkeep = 0;
		T.free_bytes += T.live_bytes;
		T.frees += T.live_allocs;
		T.live_bytes = T.live_allocs = 0;
		memset(T.site_bytes, 0, sizeof(T.site_bytes));
	}
	if (truth)
		save_truth(truth);
	if (write(1, "done\n", 5) != 5)
		return 96;
	if (wait)
		wait_line();
	return code;
}
