// SPDX-License-Identifier: GPL-2.0
/*
 * Workload for the node view: memory that grows through two named
 * functions which touch it themselves (no libc call in between), so the
 * user stack at each page fault starts in them.
 *
 *   touch [BIG_MIB [SMALL_MIB]]
 *
 * Prints "pid N", then for each line on stdin maps BIG_MIB (default 32)
 * MiB and touches every page in touch_big(), maps SMALL_MIB (default 4)
 * MiB and touches it in touch_small(), and prints "touched TOTAL_MIB".
 * "malloc N" on stdin instead calls malloc/free N times and prints
 * "done"; "rate MS" calls them for MS milliseconds and prints "rate R",
 * pairs per second: a speed the tests compare with and without memtrace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) void touch_big(volatile char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i += 4096)
		p[i] = 1;
}

__attribute__((noinline)) void touch_small(volatile char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i += 4096)
		p[i] = 2;
}

/* the compiler must not fold malloc/free pairs away */
static void *volatile sink;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* not inlined: mmap's wrapper is a leaf, the walk from it starts here */
__attribute__((noinline)) static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	/* 4 KiB pages: one fault per page, as the test counts them */
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

int main(int argc, char **argv)
{
	size_t big = (argc > 1 ? atol(argv[1]) : 32) << 20;
	size_t small = (argc > 2 ? atol(argv[2]) : 4) << 20;
	size_t total = 0;
	char line[64];

	printf("pid %d\n", getpid());
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "rate ", 5)) {
			/* malloc/free pairs per second over N ms */
			double t0 = now(), secs = atol(line + 5) / 1e3, t;
			long n = 0, i;

			do {
				for (i = 0; i < 64; i++) {
					sink = malloc(64);
					free(sink);
				}
				n += 64;
				t = now();
			} while (t - t0 < secs);
			printf("rate %.0f\n", n / (t - t0));
			fflush(stdout);
			continue;
		}
		if (!strncmp(line, "malloc ", 7)) {
			long i, n = atol(line + 7);

			for (i = 0; i < n; i++) {
				sink = malloc(64);
				free(sink);
			}
			printf("done\n");
			fflush(stdout);
			continue;
		}
		touch_big(map(big), big);
		touch_small(map(small), small);
		total += big + small;
		printf("touched %zu\n", total >> 20);
		fflush(stdout);
	}
	return 0;
}
