// SPDX-License-Identifier: GPL-2.0
/*
 * A server that forks its workers before any tracer starts (nginx,
 * postgres, gunicorn): memtrace -p of the parent must cover them.
 *
 *   prefork [N]
 *
 * Forks N (default 3) workers, then prints "ready PID..." with their
 * pids, in one line.  On SIGUSR1 worker i (from 0) allocates (i + 1) * 10 blocks of
 * 1000 bytes from worker_alloc() and holds them; the parent allocates
 * nothing.  Everyone runs until killed (the parent takes its workers
 * along on SIGTERM).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

static volatile sig_atomic_t go;
static void *volatile held[1000];

static void on_usr1(int sig)
{
	go = 1;
}

__attribute__((noinline)) static void worker_alloc(int n)
{
	int i;

	for (i = 0; i < n; i++)
		held[i] = malloc(1000);
}

static void worker(int i)
{
	while (!go)
		pause();
	worker_alloc((i + 1) * 10);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	int i, n = argc > 1 ? atoi(argv[1]) : 3;
	struct sigaction sa = { .sa_handler = on_usr1 };

	sigaction(SIGUSR1, &sa, NULL);
	printf("ready");
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			worker(i);
		}
		printf(" %d", pid);
	}
	printf("\n");
	fflush(stdout);
	for (;;)
		pause();
}
