// SPDX-License-Identifier: GPL-2.0
/* chain's xmalloc in a library of its own, reached through the PLT. */
#include <stdlib.h>

__attribute__((noinline)) void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		abort();
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}
