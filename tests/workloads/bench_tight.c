// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark workload for `make bench`: the tightest allocator loop there
 * is, malloc(SIZE) then free() of the same block, ITERS times.  One
 * operation is one malloc+free pair.  Prints one machine-readable line:
 *
 *   ns_per_op=123.4 ops=1000000 secs=0.123
 *
 *   bench_tight [-s SIZE] [-t MAX_SECS] [-w WARM_SECS] ITERS
 *
 * -t stops early once MAX_SECS have passed (checked every 4096 pairs), so
 * a slow tracer cannot make one run take minutes; ns_per_op is over the
 * pairs actually done.  Untimed pairs warm up first: 1000, and more until
 * WARM_SECS have passed (lazy binding, first-hit uprobe costs, the
 * allocator's tcache, and tracers that stall the program while they
 * start up -- heaptrack does, for a few hundred ms).
 *
 * Built with -DBENCH_DEEP (tests/workloads/cfi/bench_deep.c), the same loop
 * is called through 8 functions of their own, so every allocation's stack
 * has 10 frames to walk (the CFI round of `make bench`).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The block escapes into "memory": the compiler cannot drop the pair. */
#define escape(p) __asm__ volatile("" : : "r"(p) : "memory")

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define STEP static __attribute__((noinline, noclone, used))

STEP long pairs(long n, size_t size)
{
	long i;

	for (i = 0; i < n; i++) {
		void *p = malloc(size);

		escape(p);
		free(p);
	}
	return n;
}

#ifdef BENCH_DEEP
/* each level keeps a frame (a local the compiler cannot drop) */
#define LEVEL(name, next)						\
	STEP long name(long n, size_t size)				\
	{								\
		volatile long pad[2] = { n, 0 };			\
		long r = next(n, size);					\
		return r + pad[1];					\
	}
LEVEL(l1, pairs)
LEVEL(l2, l1)
LEVEL(l3, l2)
LEVEL(l4, l3)
LEVEL(l5, l4)
LEVEL(l6, l5)
LEVEL(l7, l6)
LEVEL(l8, l7)
#define ENTRY l8
#else
#define ENTRY pairs
#endif

static void usage(void)
{
	fprintf(stderr, "usage: bench_tight [-s SIZE] [-t MAX_SECS] "
		"[-w WARM_SECS] ITERS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	size_t size = 32;
	double max_secs = 0, warm = 0, t0, t1;
	long iters, done = 0;
	int c;

	while ((c = getopt(argc, argv, "s:t:w:")) != -1) {
		switch (c) {
		case 's':
			size = strtoul(optarg, NULL, 0);
			break;
		case 't':
			max_secs = strtod(optarg, NULL);
			break;
		case 'w':
			warm = strtod(optarg, NULL);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	iters = strtol(argv[optind], NULL, 0);
	if (iters <= 0)
		usage();

	t0 = now();
	do
		ENTRY(1000, size);
	while (now() - t0 < warm);
	t0 = now();
	while (done < iters) {
		long chunk = iters - done < 4096 ? iters - done : 4096;

		done += ENTRY(chunk, size);
		if (max_secs > 0 && now() - t0 >= max_secs)
			break;
	}
	t1 = now();
	printf("ns_per_op=%.2f ops=%ld secs=%.4f\n",
	       (t1 - t0) * 1e9 / done, done, t1 - t0);
	return 0;
}
