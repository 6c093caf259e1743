// SPDX-License-Identifier: GPL-2.0
/*
 * Ring-buffer load for `make bench`: anonymous mmap+munmap pairs as fast
 * as the kernel allows, each one a record memtrace must consume.
 *
 *   bench_mmap SECONDS
 *
 * Prints "pairs=N secs=S" at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2, t0 = now(), t;
	long pairs = 0;

	do {
		int i;

		for (i = 0; i < 1000; i++, pairs++) {
			void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p == MAP_FAILED)
				return 1;
			munmap(p, 4096);
		}
		t = now();
	} while (t - t0 < secs);
	printf("pairs=%ld secs=%.3f\n", pairs, t - t0);
	return 0;
}
