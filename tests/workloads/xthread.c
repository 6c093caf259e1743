// SPDX-License-Identifier: GPL-2.0
/*
 * Frees in one thread, the same addresses allocated again by another:
 * with one arena, blocks thread B frees beyond its tcache go to the
 * arena's fastbins, where thread A's next mallocs find them -- the last
 * one B freed first.  A then hands that block back to B, which frees it
 * again: the same address as B's last free, but a new, live block, freed
 * for real.  Writes the truth and whether that reuse happened.
 *
 *   xthread --truth FILE    (then waits for EOF on stdin)
 */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "truth.h"

#define N	32
#define SIZE	100

static void *blocks[N], *mine[5];
static void *last_freed, *handback;

/* the blocks escape: the compiler may not drop an unused malloc */
#define escape(p) __asm__ volatile("" : : "r"(p) : "memory")

static pthread_barrier_t freed, taken;

/* B stays alive while A allocates: its last free is still its own */
static void *b_main(void *arg)
{
	int i;

	for (i = 0; i < 5; i++)
		mine[i] = malloc(SIZE);
	escape(mine);
	for (i = 0; i < N; i++)
		free(blocks[i]);
	last_freed = blocks[N - 1];
	pthread_barrier_wait(&freed);
	pthread_barrier_wait(&taken);
	free(handback);
	return NULL;
}

int main(int argc, char **argv)
{
	char buf[256], c;
	pthread_t b;
	int i, n, reused = 0;

	if (argc < 3 || strcmp(argv[1], "--truth"))
		return 2;
	mallopt(M_ARENA_MAX, 1);
	for (i = 0; i < N; i++)
		blocks[i] = malloc(SIZE);
	escape(blocks);
	pthread_barrier_init(&freed, NULL, 2);
	pthread_barrier_init(&taken, NULL, 2);
	if (pthread_create(&b, NULL, b_main, NULL))
		return 1;
	pthread_barrier_wait(&freed);
	for (i = 0; i < N; i++) {
		blocks[i] = malloc(SIZE);
		if (blocks[i] == last_freed) {
			reused = 1;
			handback = blocks[i];
			blocks[i] = NULL;
		}
	}
	escape(blocks);
	pthread_barrier_wait(&taken);
	if (pthread_join(b, NULL))
		return 1;
	n = snprintf(buf, sizeof(buf), "{\"pid\":%d,\"live_bytes\":%d,"
		     "\"live_allocs\":%d,\"allocs\":%d,\"frees\":%d,"
		     "\"reused\":%s}\n", getpid(), (N + 5 - reused) * SIZE,
		     N + 5 - reused, 2 * N + 5, N + reused,
		     reused ? "true" : "false");
	if (write_truth(argv[2], buf, n))
		return 1;
	while (read(0, &c, 1) == 1)
		;
	return 0;
}
