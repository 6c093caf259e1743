// SPDX-License-Identifier: GPL-2.0
/*
 * An exec storm: short-lived processes as fast as the machine makes them
 * (a build, a CGI server, a shell script gone wild).
 *
 *   execstorm COUNT WORKERS [PROGRAM]
 *
 * WORKERS processes each posix_spawn PROGRAM (default /bin/true) and wait
 * for it, until COUNT processes have run in all.  Prints
 * {"procs": N, "secs": S, "rate": N/S} when done.  Exit 1 if a spawn
 * failed.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long count, *left;
	int workers, i, status, bad = 0;
	char *prog = argc > 3 ? argv[3] : "/bin/true";
	char *args[] = { prog, NULL };
	double t0;

	if (argc < 3)
		return 2;
	count = atol(argv[1]);
	workers = atoi(argv[2]);
	if (count <= 0 || workers <= 0)
		return 2;
	/* the count the workers share: each takes one before each spawn */
	left = mmap(NULL, sizeof(*left), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (left == MAP_FAILED)
		return 1;
	*left = count;
	t0 = now();
	for (i = 0; i < workers; i++) {
		if (fork() == 0) {
			while (__atomic_fetch_sub(left, 1, __ATOMIC_RELAXED) > 0) {
				pid_t pid;

				if (posix_spawn(&pid, prog, NULL, NULL, args,
						environ) ||
				    waitpid(pid, &status, 0) != pid)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (i = 0; i < workers; i++)
		if (wait(&status) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			bad = 1;
	printf("{\"procs\": %ld, \"secs\": %.3f, \"rate\": %.0f}\n", count,
	       now() - t0, count / (now() - t0));
	return bad;
}
