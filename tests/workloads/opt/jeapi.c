// SPDX-License-Identifier: GPL-2.0
/*
 * jemalloc's own API, called directly (as Rust's jemallocator and some
 * C++ code bases do): mallocx, rallocx, sdallocx, dallocx.  Linked
 * against Debian's libjemalloc.so.2 (built only where it is installed).
 * Everything is allocated in work(); writes the truth and exits.
 *
 *   jeapi --truth FILE
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../truth.h"

#define MALLOCX_ZERO	0x40

void *mallocx(size_t size, int flags);
void *rallocx(void *ptr, size_t size, int flags);
void sdallocx(void *ptr, size_t size, int flags);
void dallocx(void *ptr, int flags);

static void *keep[11];

__attribute__((noinline)) static int work(void)
{
	int i;

	for (i = 0; i < 10; i++)
		keep[i] = mallocx(100, 0);
	keep[10] = mallocx(4096, MALLOCX_ZERO);
	keep[0] = rallocx(keep[0], 300, 0);	/* frees 100, holds 300 */
	sdallocx(keep[1], 100, 0);
	dallocx(keep[2], 0);
	keep[1] = keep[2] = NULL;
	for (i = 0; i < 11; i++)
		if (i != 1 && i != 2 && !keep[i])
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	char buf[256];
	int n;

	if (argc < 3 || strcmp(argv[1], "--truth") || work())
		return 2;
	n = snprintf(buf, sizeof(buf), "{\"work\":{\"live_bytes\":%d,"
		     "\"live_allocs\":%d,\"alloc_bytes\":%d,\"allocs\":%d,"
		     "\"free_bytes\":%d,\"frees\":%d}}\n",
		     300 + 7 * 100 + 4096, 9, 1000 + 4096 + 300, 12, 300, 3);
	return write_truth(argv[2], buf, n) ? 1 : 0;
}
