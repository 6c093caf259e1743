// SPDX-License-Identifier: GPL-2.0
/*
 * Allocations through frameless wrappers (lib/mtwrap.c, built without
 * frame pointers) and through the C library's own strdup: each caller
 * must show up as the frame under the wrapper, with exact bytes.
 *
 *   wrap --truth FILE    writes the truth, then waits for EOF on stdin
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "truth.h"

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *old, size_t n);
void *xmalloc_rbp(size_t n);

static void *keep[512];
static int nkeep;

static inline void escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) void via_xmalloc(void)
{
	int i;

	for (i = 0; i < 100; i++)
		keep[nkeep++] = xmalloc(1000);
	escape(keep);
}

__attribute__((noinline)) void via_xcalloc(void)
{
	int i;

	for (i = 0; i < 50; i++)
		keep[nkeep++] = xcalloc(10, 200);
	escape(keep);
}

__attribute__((noinline)) void via_xrealloc(void)
{
	int i;

	for (i = 0; i < 20; i++)
		keep[nkeep++] = xrealloc(NULL, 3000);
	escape(keep);
}

__attribute__((noinline)) void via_xmalloc_rbp(void)
{
	int i;

	for (i = 0; i < 30; i++)
		keep[nkeep++] = xmalloc_rbp(700);
	escape(keep);
}

__attribute__((noinline)) void via_strdup(void)
{
	static const char s[] = "forty-nine bytes, counting the final NUL byte...";
	int i;

	for (i = 0; i < 40; i++)
		keep[nkeep++] = strdup(s);
	escape(keep);
}

int main(int argc, char **argv)
{
	char buf[1024], c;
	int n;

	via_xmalloc();
	via_xcalloc();
	via_xrealloc();
	via_xmalloc_rbp();
	via_strdup();
	if (argc > 2 && !strcmp(argv[1], "--truth")) {
		n = snprintf(buf, sizeof(buf),
			     "{\"pid\":%d,\"inuse\":{"
			     "\"via_xmalloc\":100000,\"via_xcalloc\":100000,"
			     "\"via_xrealloc\":60000,\"via_xmalloc_rbp\":21000,"
			     "\"via_strdup\":%zu},"
			     "\"wrapper\":{\"via_xmalloc\":\"xmalloc\","
			     "\"via_xcalloc\":\"xcalloc\","
			     "\"via_xrealloc\":\"xrealloc\","
			     "\"via_xmalloc_rbp\":\"xmalloc_rbp\","
			     "\"via_strdup\":\"strdup\"}}\n",
			     getpid(), 40 * (strlen(keep[nkeep - 1]) + 1));
		if (write_truth(argv[2], buf, n))
			return 1;
	}
	while (read(0, &c, 1) == 1)
		;
	return 0;
}
