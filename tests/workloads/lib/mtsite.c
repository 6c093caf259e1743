// SPDX-License-Identifier: GPL-2.0
/* A shared library of the tests' own: allocations from inside a .so. */
#include <stdlib.h>

void *lib_keep[64];

__attribute__((noinline)) long lib_alloc(int n, int size)
{
	long total = 0;
	int i;

	for (i = 0; i < n && i < 64; i++) {
		lib_keep[i] = malloc(size);
		total += size;
	}
	return total;
}
