// SPDX-License-Identifier: GPL-2.0
/*
 * A pid used twice, on purpose: child A allocates and exits, then a
 * second child B is forked with A's pid (the kernel's next pid set
 * through /proc/sys/kernel/ns_last_pid, retried if another process on
 * the node takes it first).  B waits, allocates a known amount and
 * keeps it.
 *
 *   pidreuse --truth FILE [--wait SECS]
 *
 * B sleeps SECS (default 1.5) before allocating: long enough for a
 * tracer to expire A's row meanwhile.  It then allocates 64 blocks of
 * 65536 bytes, writes {"pid": B, "reused": true|false, "tries": N,
 * "live_bytes": 4194304, "live_allocs": 64, "allocs": 64} and waits for
 * EOF on stdin.  Needs root for ns_last_pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "truth.h"

#define NBLOCKS	64
#define BLOCK	65536

static void *keep[NBLOCKS];

__attribute__((noinline)) static void b_alloc(void)
{
	int i;

	for (i = 0; i < NBLOCKS; i++)
		keep[i] = malloc(BLOCK);
	__asm__ volatile("" : : "r"(keep) : "memory");
}

__attribute__((noinline)) static void a_alloc(void)
{
	keep[0] = malloc(12345);
	__asm__ volatile("" : : "r"(keep) : "memory");
}

/* Fork with pid want: returns 0 in the child, its pid in the parent. */
static pid_t fork_as(pid_t want, int *tries)
{
	char buf[32];
	int fd, n;
	pid_t pid = -1;

	fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
	for (*tries = 1; *tries <= 2000; (*tries)++) {
		if (fd >= 0) {
			n = snprintf(buf, sizeof(buf), "%d", want - 1);
			if (pwrite(fd, buf, n, 0) != n)
				break;
		}
		pid = fork();
		if (pid <= 0 || pid == want || fd < 0)
			break;
		/* someone else took it: this one goes, try again */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (fd >= 0)
		close(fd);
	return pid;
}

int main(int argc, char **argv)
{
	double wait = 1.5;
	char buf[256], c;
	pid_t a, b;
	int n, tries = 0;

	if (argc < 3 || strcmp(argv[1], "--truth"))
		return 2;
	if (argc >= 5 && !strcmp(argv[3], "--wait"))
		wait = atof(argv[4]);
	a = fork();
	if (a < 0)
		return 1;
	if (a == 0) {
		a_alloc();
		_exit(0);
	}
	waitpid(a, NULL, 0);
	b = fork_as(a, &tries);
	if (b < 0)
		return 1;
	if (b > 0) {
		waitpid(b, NULL, 0);
		return 0;
	}
	/* a failed try's child lands here too, killed before it runs far */
	usleep(wait * 1e6);
	b_alloc();
	n = snprintf(buf, sizeof(buf), "{\"pid\":%d,\"reused\":%s,\"tries\":%d,"
		     "\"live_bytes\":%d,\"live_allocs\":%d,\"allocs\":%d}\n",
		     getpid(), getpid() == a ? "true" : "false", tries,
		     NBLOCKS * BLOCK, NBLOCKS, NBLOCKS);
	if (write_truth(argv[2], buf, n))
		return 1;
	while (read(0, &c, 1) == 1)
		;
	return 0;
}
