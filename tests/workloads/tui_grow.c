// SPDX-License-Identifier: GPL-2.0
/*
 * Workload for the live-view tests: two named allocation sites with
 * known sizes, allocated only when told, so memtrace can be attached and
 * showing its table first.
 *
 *   tui_grow [BIG_MIB [SMALL_MIB [NAME]]]
 *
 * grow_big() holds BIG_MIB (default 8) MiB in 64 KiB blocks, grow_small()
 * SMALL_MIB (default 1) MiB in 4 KiB blocks.  NAME, if given, becomes the
 * process name (prctl), control characters included.  Allocation starts
 * on a line on stdin or on SIGUSR1; then "ready" is written to stdout and
 * the process sleeps until killed.  No stdio before that point, so the C
 * library allocates nothing the test does not expect.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	go = 1;
}

static void *blocks[4096];
static int nblocks;

__attribute__((noinline)) void grow_big(long mib)
{
	long i;

	for (i = 0; i < mib * 16 && nblocks < 4096; i++) {
		blocks[nblocks] = malloc(64 << 10);
		memset(blocks[nblocks++], 1, 64 << 10);
	}
}

__attribute__((noinline)) void grow_small(long mib)
{
	long i;

	for (i = 0; i < mib * 256 && nblocks < 4096; i++) {
		blocks[nblocks] = malloc(4 << 10);
		memset(blocks[nblocks++], 2, 4 << 10);
	}
}

/* Wait for a line on stdin or SIGUSR1, whichever comes first. */
static void wait_for_go(void)
{
	/* no SA_RESTART: the signal must end the read() */
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigset_t usr1, old;
	char c;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	while (!go) {
		ssize_t n = read(STDIN_FILENO, &c, 1);

		if (n == 1 && c == '\n')
			return;
		if (n == 0 || (n < 0 && !go))
			break;		/* EOF: only the signal is left */
	}
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	while (!go)
		sigsuspend(&old);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

int main(int argc, char **argv)
{
	long big = argc > 1 ? atol(argv[1]) : 8;
	long small = argc > 2 ? atol(argv[2]) : 1;

	if (argc > 3)
		prctl(PR_SET_NAME, argv[3], 0, 0, 0);
	wait_for_go();
	grow_big(big);
	grow_small(small);
	write(STDOUT_FILENO, "ready\n", 6);
	for (;;)
		pause();
}
