// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation-site workload: allocations from named functions at known
 * depths, from an always-inlined helper and from a shared library of our
 * own.  Writes the truth (live and allocated bytes per innermost user
 * function) to --truth FILE; optionally waits for a line on stdin first.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "truth.h"

long lib_alloc(int n, int size);

static void *keep[1024];
static int nkeep;

static inline void escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) void leaf_c(void)
{
	int i;

	/* 200 allocated, 100 freed: inuse 100000, alloc 200000 */
	for (i = 0; i < 200; i++) {
		void *p = malloc(1000);

		escape(p);
		if (i % 2)
			free(p);
		else
			keep[nkeep++] = p;
	}
}

__attribute__((noinline)) void middle_b(void)
{
	leaf_c();
	escape(keep);
}

__attribute__((noinline)) void outer_a(void)
{
	middle_b();
	escape(keep);
}

static inline __attribute__((always_inline)) void helper_inline(void)
{
	int i;

	for (i = 0; i < 5; i++)
		keep[nkeep++] = malloc(2000);
}

__attribute__((noinline)) void inline_host(void)
{
	helper_inline();
	escape(keep);
}

int main(int argc, char **argv)
{
	char buf[512], c;
	int n;

	if (argc > 2 && !strcmp(argv[1], "--wait")) {
		if (write(1, "ready\n", 6) != 6)
			return 1;
		while (read(0, &c, 1) == 1 && c != '\n')
			;
		argv++;
		argc--;
	}
	outer_a();
	inline_host();
	lib_alloc(7, 3000);
	if (argc > 2 && !strcmp(argv[1], "--truth")) {
		n = snprintf(buf, sizeof(buf),
			     "{\"pid\":%d,\"inuse\":{\"leaf_c\":100000,"
			     "\"helper_inline\":10000,\"lib_alloc\":21000},"
			     "\"alloc\":{\"leaf_c\":200000,"
			     "\"helper_inline\":10000,\"lib_alloc\":21000},"
			     "\"stack_leaf_c\":[\"leaf_c\",\"middle_b\","
			     "\"outer_a\",\"main\"]}\n", getpid());
		if (write_truth(argv[2], buf, n))
			return 1;
	}
	if (write(1, "done\n", 5) != 5)
		return 1;
	while (read(0, &c, 1) == 1)
		;
	return 0;
}
