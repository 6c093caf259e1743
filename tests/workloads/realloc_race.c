// SPDX-License-Identifier: GPL-2.0
/*
 * realloc's old address handed to another thread before realloc returns,
 * deterministically, with the test allocator (lib/mtalloc.c) and its
 * hook inside realloc.
 *
 *   realloc_race --truth FILE            the race
 *   realloc_race --stale --truth FILE    a longjmp out of realloc
 *
 * Race: t1_work mallocs 100 bytes and reallocs them to 5000; inside
 * realloc, after the allocator freed the old block, the hook wakes
 * thread 2, whose t2_work mallocs 100 bytes (the same address, from the
 * allocator's free list) and keeps them; then realloc returns.  t1_fail
 * mallocs 200 bytes whose realloc to an impossible size fails (they stay
 * live); t1_zero mallocs 300 bytes and reallocs them to 0 (a free).
 * Truth per function: live bytes, allocs, frees.
 *
 * Stale: stale_alloc mallocs 10 blocks of 1000 and one of 64, which
 * realloc_deep reallocs; the hook longjmps out of realloc (its return
 * never comes), and run_stale frees the 10 blocks: all 11 are freed.
 *
 * Writes the truth and waits for EOF on stdin.  No stdio: nothing else
 * is allocated behind the truth's back.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "truth.h"

extern void (*mtalloc_realloc_hook)(void *old, void *new);

static int to_t2[2], from_t2[2];
static void *t2_block, *old_addr;
static void *keep[16];
static jmp_buf jb;

__attribute__((noinline)) static void t2_work(void)
{
	t2_block = malloc(100);
	__asm__ volatile("" : : "r"(t2_block) : "memory");
}

static void *t2_main(void *arg)
{
	char c;

	if (read(to_t2[0], &c, 1) != 1)
		return NULL;
	t2_work();
	if (write(from_t2[1], "x", 1) != 1)
		return NULL;
	return NULL;
}

/* Inside realloc: the old block is free; thread 2 gets it now. */
static void race_hook(void *old, void *new)
{
	char c;

	mtalloc_realloc_hook = NULL;
	old_addr = old;
	if (write(to_t2[1], "x", 1) != 1 || read(from_t2[0], &c, 1) != 1)
		abort();
}

__attribute__((noinline)) static void t1_work(void)
{
	void *p = malloc(100);

	__asm__ volatile("" : : "r"(p) : "memory");
	mtalloc_realloc_hook = race_hook;
	keep[0] = realloc(p, 5000);
}

__attribute__((noinline)) static void t1_fail(void)
{
	keep[1] = malloc(200);
	/* too big for the allocator: fails, the block stays */
	if (realloc(keep[1], (size_t)1 << 62))
		abort();
}

__attribute__((noinline)) static void t1_zero(void)
{
	void *p = malloc(300);

	__asm__ volatile("" : : "r"(p) : "memory");
	keep[2] = realloc(p, 0);
}

static void stale_hook(void *old, void *new)
{
	mtalloc_realloc_hook = NULL;
	longjmp(jb, 1);
}

__attribute__((noinline)) static void stale_alloc(void)
{
	int i;

	for (i = 0; i < 10; i++)
		keep[i] = malloc(1000);
	keep[10] = malloc(64);
}

__attribute__((noinline)) static void realloc_deep(void)
{
	mtalloc_realloc_hook = stale_hook;
	keep[11] = realloc(keep[10], 4000);
	abort();	/* the hook never returns */
}

__attribute__((noinline)) static void run_stale(void)
{
	int i;

	stale_alloc();
	if (!setjmp(jb))
		realloc_deep();
	/* the first allocator call since the longjmp: a free */
	for (i = 0; i < 10; i++)
		free(keep[i]);
}

int main(int argc, char **argv)
{
	bool stale = argc > 1 && !strcmp(argv[1], "--stale");
	const char *path = argv[argc - 1];
	pthread_t t2;
	char buf[512], c;
	int n;

	if (argc < 3 || strcmp(argv[argc - 2], "--truth"))
		return 2;
	if (stale) {
		run_stale();
		n = snprintf(buf, sizeof(buf), "{\"pid\":%d,\"stale_alloc\":"
			     "{\"live_bytes\":0,\"allocs\":11,\"frees\":11}}\n",
			     getpid());
	} else {
		if (pipe(to_t2) || pipe(from_t2) ||
		    pthread_create(&t2, NULL, t2_main, NULL))
			return 1;
		t1_work();
		pthread_join(t2, NULL);
		t1_fail();
		t1_zero();
		n = snprintf(buf, sizeof(buf), "{\"pid\":%d,\"reused\":%s,"
			     "\"t1_work\":{\"live_bytes\":5000,\"allocs\":2,"
			     "\"frees\":1},"
			     "\"t2_work\":{\"live_bytes\":100,\"allocs\":1,"
			     "\"frees\":0},"
			     "\"t1_fail\":{\"live_bytes\":200,\"allocs\":1,"
			     "\"frees\":0},"
			     "\"t1_zero\":{\"live_bytes\":0,\"allocs\":1,"
			     "\"frees\":1}}\n", getpid(),
			     t2_block == old_addr ? "true" : "false");
	}
	if (write_truth(path, buf, n))
		return 1;
	while (read(0, &c, 1) == 1)
		;
	return 0;
}
