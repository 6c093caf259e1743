// SPDX-License-Identifier: GPL-2.0
/*
 * A parent that forks a worker without exec, as servers do: the worker
 * allocates a known amount after a pause and writes the truth.
 *
 *   forker --truth FILE
 *
 * Prints "ready PID" and waits for a line on stdin, then forks.  The
 * worker sleeps 0.5 s (a tracer following forks has attached by then),
 * allocates 100 blocks of 1000 bytes from worker_alloc(), writes
 * {"pid": WORKER, "live_bytes": 100000, "live_allocs": 100} and waits for
 * EOF on stdin; the parent waits for the worker.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "truth.h"

static void *keep[100];

__attribute__((noinline)) static void worker_alloc(void)
{
	int i;

	for (i = 0; i < 100; i++)
		keep[i] = malloc(1000);
	__asm__ volatile("" : : "r"(keep) : "memory");
}

int main(int argc, char **argv)
{
	char buf[256], c;
	int n;
	pid_t pid;

	if (argc < 3 || strcmp(argv[1], "--truth"))
		return 2;
	n = snprintf(buf, sizeof(buf), "ready %d\n", getpid());
	if (write(1, buf, n) != n)
		return 1;
	while (read(0, &c, 1) == 1 && c != '\n')
		;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid > 0) {
		waitpid(pid, NULL, 0);
		return 0;
	}
	usleep(500000);
	worker_alloc();
	n = snprintf(buf, sizeof(buf), "{\"pid\":%d,\"live_bytes\":100000,"
		     "\"live_allocs\":100}\n", getpid());
	if (write_truth(argv[2], buf, n))
		return 1;
	while (read(0, &c, 1) == 1)
		;
	return 0;
}
