// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark workload for `make bench`: a mixed, allocator-heavy program.
 *
 *   bench_mixed [-T THREADS] [-l LIVE] [-t MAX_SECS] [-w WARM_SECS]
 *               [-r SEED] [-S FILE] ITERS
 *
 * Each thread keeps LIVE/THREADS blocks live (default 10000 in all) and,
 * after filling them untimed, does its share of ITERS operations: pick a
 * random slot and either realloc() its block to a new size (20%) or free
 * it and allocate a new one with malloc (55%), calloc (15%) or
 * posix_memalign (10%).  One operation is therefore one allocation plus
 * the free it replaces, the same unit as bench_tight's malloc+free pair.
 *
 * Sizes run from 16 B to 64 KiB: a size class 16 << k (k = 0..12) is
 * drawn with weight 2^(-k/2), then a size uniformly within the class
 * (calloc stays at or below 2 KiB).  Allocations are made from four site
 * functions reached through 1, 3, 6 or 12 levels of recursion (weights
 * 4:3:2:1), so there are 16 allocation stacks of different depths and
 * weights.  The PRNG is deterministic: with one thread and no -t, two runs
 * end holding exactly the same blocks from the same stacks.
 *
 * Prints one machine-readable line:
 *   ns_per_op=N wall_ns_per_op=N ops=N secs=S threads=T live=L
 * ns_per_op is thread-seconds per operation (wall time x threads / ops):
 * equal to the single-thread figure if threads do not slow each other.
 *
 * -t stops each thread once MAX_SECS have passed (checked every 1024 ops).
 * -w: untimed operations for WARM_SECS after the fill, before timing (the
 * fill already warms the allocator; this is for tracers that stall the
 * program while they start up).  Warm-up changes the live set: do not use
 * it where two runs must end with the same blocks.
 * -S FILE: write "start PID" to FILE and wait for SIGUSR1 before filling;
 * after the timed phase write "ready PID LIVE_BLOCKS" and wait for SIGUSR1
 * again (for a tracer's memory to be measured).  The program exits without
 * freeing its blocks, so a tracer's final report shows the whole live set.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define escape(p) __asm__ volatile("" : : "r"(p) : "memory")

struct worker {
	pthread_t th;
	uint64_t rng;
	void **slot;
	long nslots, iters, done;
};

static double max_secs, warm_secs;
static double t_start, t_warm_end;
static pthread_barrier_t go;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*: deterministic, cheap, good enough for slot picking */
static inline uint64_t rnd(struct worker *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 0x2545F4914F6CDD1DULL;
}

/* cumulative weights of class k, 2^(-k/2) scaled by 1000 */
static const unsigned class_cum[13] = {
	1000, 1707, 2207, 2561, 2811, 2988, 3113, 3201, 3264, 3308, 3339,
	3361, 3377,
};

static size_t pick_size(struct worker *w, int max_class)
{
	unsigned r = rnd(w) % class_cum[max_class];
	size_t base, sz;
	int k = 0;

	while (class_cum[k] <= r)
		k++;
	base = (size_t)16 << k;
	sz = base + rnd(w) % base;
	return sz > 65536 ? 65536 : sz;
}

/* The four allocation sites; noinline so each is its own frame. */
static __attribute__((noinline)) void *site_malloc(size_t n)
{
	void *p = malloc(n);

	escape(p);
	return p;
}

static __attribute__((noinline)) void *site_calloc(size_t n)
{
	void *p = calloc(1, n);

	escape(p);
	return p;
}

static __attribute__((noinline)) void *site_memalign(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 64, n))
		p = NULL;
	escape(p);
	return p;
}

static __attribute__((noinline)) void *site_realloc(void *old, size_t n)
{
	void *p = realloc(old, n);

	escape(p);
	return p;
}

enum { K_MALLOC, K_CALLOC, K_MEMALIGN, K_REALLOC };

/*
 * Recursion helper: DEPTH frames of descend() above the site.  The escape
 * after the call keeps it from becoming a tail call (no frame).
 */
static __attribute__((noinline)) void *descend(int depth, int kind,
					       void *old, size_t n)
{
	void *p;

	if (depth > 1)
		p = descend(depth - 1, kind, old, n);
	else if (kind == K_MALLOC)
		p = site_malloc(n);
	else if (kind == K_CALLOC)
		p = site_calloc(n);
	else if (kind == K_MEMALIGN)
		p = site_memalign(n);
	else
		p = site_realloc(old, n);
	escape(p);
	return p;
}

static int pick_depth(struct worker *w)
{
	static const int depth[10] = { 1, 1, 1, 1, 3, 3, 3, 6, 6, 12 };

	return depth[rnd(w) % 10];
}

static void *new_block(struct worker *w)
{
	unsigned r = rnd(w) % 80;
	int depth = pick_depth(w);

	if (r < 55)
		return descend(depth, K_MALLOC, NULL, pick_size(w, 12));
	if (r < 70)
		return descend(depth, K_CALLOC, NULL, pick_size(w, 7));
	return descend(depth, K_MEMALIGN, NULL, pick_size(w, 12));
}

static void one_op(struct worker *w)
{
	long i = rnd(w) % w->nslots;
	void *p;

	if (rnd(w) % 100 < 20) {
		int depth = pick_depth(w);

		p = descend(depth, K_REALLOC, w->slot[i], pick_size(w, 12));
		if (p)
			w->slot[i] = p;
		return;
	}
	free(w->slot[i]);
	w->slot[i] = new_block(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	long i;

	for (i = 0; i < w->nslots; i++)
		w->slot[i] = new_block(w);
	pthread_barrier_wait(&go);	/* main sets t_warm_end */
	pthread_barrier_wait(&go);
	while (now() < t_warm_end)
		for (i = 0; i < 1024; i++)
			one_op(w);
	pthread_barrier_wait(&go);	/* main takes t_start */
	pthread_barrier_wait(&go);
	while (w->done < w->iters) {
		long n = w->iters - w->done < 1024 ? w->iters - w->done : 1024;

		for (i = 0; i < n; i++)
			one_op(w);
		w->done += n;
		if (max_secs > 0 && now() - t_start >= max_secs)
			break;
	}
	return NULL;
}

static void sync_write(const char *path, const char *line)
{
	char tmp[4096];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, strlen(line)) < 0) {
		perror(path);
		exit(1);
	}
	close(fd);
	if (rename(tmp, path)) {
		perror(path);
		exit(1);
	}
}

static void sync_wait(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigwait(&set, &sig);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_mixed [-T THREADS] [-l LIVE] "
		"[-t MAX_SECS] [-w WARM_SECS] [-r SEED] [-S SYNCFILE] ITERS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long iters, live = 10000, ops = 0;
	int threads = 1, c, i;
	uint64_t seed = 0x6d656d7472616365ULL;
	const char *syncf = NULL;
	struct worker *w;
	char line[128];
	sigset_t set;
	double secs;

	while ((c = getopt(argc, argv, "T:l:t:w:r:S:")) != -1) {
		switch (c) {
		case 'T':
			threads = atoi(optarg);
			break;
		case 'l':
			live = strtol(optarg, NULL, 0);
			break;
		case 't':
			max_secs = strtod(optarg, NULL);
			break;
		case 'w':
			warm_secs = strtod(optarg, NULL);
			break;
		case 'r':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'S':
			syncf = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || threads < 1 || live < threads)
		usage();
	iters = strtol(argv[optind], NULL, 0);
	if (iters <= 0)
		usage();

	/* SIGUSR1 is taken with sigwait(); threads inherit the mask */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (syncf) {
		snprintf(line, sizeof(line), "start %d\n", getpid());
		sync_write(syncf, line);
		sync_wait();
	}

	w = calloc(threads, sizeof(*w));
	pthread_barrier_init(&go, NULL, threads + 1);
	for (i = 0; i < threads; i++) {
		w[i].rng = seed + 0x9E3779B97F4A7C15ULL * (i + 1);
		w[i].nslots = live / threads;
		w[i].slot = calloc(w[i].nslots, sizeof(void *));
		w[i].iters = iters / threads;
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i])) {
			perror("pthread_create");
			return 1;
		}
	}
	pthread_barrier_wait(&go);	/* everyone filled */
	t_warm_end = now() + warm_secs;
	pthread_barrier_wait(&go);
	pthread_barrier_wait(&go);	/* everyone warm */
	t_start = now();
	pthread_barrier_wait(&go);
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].th, NULL);
		ops += w[i].done;
	}
	secs = now() - t_start;
	printf("ns_per_op=%.2f wall_ns_per_op=%.2f ops=%ld secs=%.4f "
	       "threads=%d live=%ld\n", secs * 1e9 * threads / ops,
	       secs * 1e9 / ops, ops, secs, threads, live);
	fflush(stdout);
	if (syncf) {
		snprintf(line, sizeof(line), "ready %d %ld\n", getpid(),
			 live / threads * threads);
		sync_write(syncf, line);
		sync_wait();
	}
	return 0;	/* blocks stay live: the tracer's final report has them */
}
