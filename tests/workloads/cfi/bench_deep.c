// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark workload for `make bench` (the CFI round): bench_tight's
 * malloc(SIZE)+free loop, called through 8 functions of their own, so
 * every allocation's stack has 10 frames to walk.  Built twice: without
 * frame pointers (walked by CFI) and with them (walked by frame pointer).
 *
 *   bench_deep[_fp] [-s SIZE] [-t MAX_SECS] [-w WARM_SECS] ITERS
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define escape(p) __asm__ volatile("" : : "r"(p) : "memory")
#define STEP __attribute__((noinline, noclone))

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

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
			return 2;
		}
	}
	if (optind != argc - 1 || (iters = strtol(argv[optind], NULL, 0)) <= 0)
		return 2;
	t0 = now();
	do
		l8(1000, size);
	while (now() - t0 < warm);
	t0 = now();
	while (done < iters) {
		long chunk = iters - done < 4096 ? iters - done : 4096;

		done += l8(chunk, size);
		if (max_secs > 0 && now() - t0 >= max_secs)
			break;
	}
	t1 = now();
	printf("ns_per_op=%.2f ops=%ld secs=%.4f\n",
	       (t1 - t0) * 1e9 / done, done, t1 - t0);
	return 0;
}
