// SPDX-License-Identifier: GPL-2.0
/*
 * Sampling workload: many blocks from two sites of very different block
 * sizes, all kept live; the truth goes to --truth FILE.  Waits for EOF on
 * stdin before exiting so the tracer can read its final state.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "truth.h"

#define NSMALL	200000
#define SMALL	256
#define NBIG	600
#define BIG	(100 * 1024)

static void *small[NSMALL], *big[NBIG];

/* keep the compiler from dropping mallocs whose results nobody reads */
static inline void escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) void small_site(void)
{
	int i;

	for (i = 0; i < NSMALL; i++)
		small[i] = malloc(SMALL + (i % 16));
	escape(small);
}

__attribute__((noinline)) void big_site(void)
{
	int i;

	for (i = 0; i < NBIG; i++)
		big[i] = malloc(BIG);
	escape(big);
}

int main(int argc, char **argv)
{
	long long sb = 0;
	char buf[256], c;
	int i, n;

	small_site();
	big_site();
	for (i = 0; i < NSMALL; i++)
		sb += SMALL + (i % 16);
	if (argc > 2 && !strcmp(argv[1], "--truth")) {
		n = snprintf(buf, sizeof(buf), "{\"pid\":%d,\"small_site\":%lld,"
			     "\"big_site\":%lld}\n", getpid(), sb,
			     (long long)NBIG * BIG);
		if (write_truth(argv[2], buf, n))
			return 1;
	}
	while (read(0, &c, 1) == 1)
		;
	return 0;
}
