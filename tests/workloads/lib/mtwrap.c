// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation wrappers built the way distributions build libraries:
 * -O2 -fomit-frame-pointer (see the Makefile), so none keeps a frame
 * pointer and a frame-pointer walk from them would skip their caller.
 * Each checks the result after the call, so the call cannot become a
 * tail jump.  xmalloc_rbp also uses rbp for data across the call, as
 * such code may: the walk must take the caller's rbp from the stack.
 */
#include <stdlib.h>

void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		abort();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p)
		abort();
	return p;
}

void *xrealloc(void *old, size_t n)
{
	void *p = realloc(old, n);

	if (!p)
		abort();
	return p;
}

void *xmalloc_rbp(size_t n)
{
	void *p;

	/* rbp holds something else than a frame pointer at the call */
	__asm__ volatile("mov %%rdi, %%rbp" : : "D"(n) : "rbp");
	p = malloc(n);
	__asm__ volatile("" : : : "rbp");
	if (!p)
		abort();
	return p;
}
