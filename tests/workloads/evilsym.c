// SPDX-License-Identifier: GPL-2.0
/*
 * Workload whose allocating function has a hostile ELF symbol name: an
 * escape sequence, a ';' (the folded format's separator) and a byte
 * that is not UTF-8 (__asm__ label).  Every output must show the name
 * escaped, never send the raw bytes.
 *
 *   evilsym
 *
 * Allocates EVIL_BLOCKS blocks of EVIL_SIZE bytes through the function,
 * keeps them (a leak: they are live when it exits) and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVIL_BLOCKS	10
#define EVIL_SIZE	100000

/* the symbol, as nm prints it: evil ESC [31m;leak 0xff */
__attribute__((noinline)) void *evil_leak(size_t n)
	__asm__("\"evil\x1b[31m;leak\xff\"");

__attribute__((noinline)) void *evil_leak(size_t n)
{
	void *p = malloc(n);

	if (p)
		memset(p, 0x5a, n);
	return p;
}

int main(void)
{
	static void *keep[EVIL_BLOCKS];
	int i;

	for (i = 0; i < EVIL_BLOCKS; i++)
		if (!(keep[i] = evil_leak(EVIL_SIZE)))
			return 1;
	printf("allocated %d x %d\n", EVIL_BLOCKS, EVIL_SIZE);
	return 0;
}
