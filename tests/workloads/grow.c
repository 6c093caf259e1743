// SPDX-License-Identifier: GPL-2.0
/*
 * Workload for the pre-OOM capture tests: grows steadily through one
 * named function, grow_leak(), until something (the OOM killer, a test)
 * stops it.
 *
 *   grow [--wait] [--step-mib N] [--interval-ms N] [--max-mib N]
 *
 * Prints "pid N" first.  With --wait it then waits for a line on stdin
 * before allocating, so memtrace can attach and see every allocation.
 * Each step mallocs N MiB (default 4) and touches every page, so the
 * memory is charged to its cgroup at once.  --max-mib stops growing
 * there and sleeps until killed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) void *grow_leak(size_t bytes)
{
	char *p = malloc(bytes);

	if (p)
		memset(p, 0x5a, bytes);
	return p;
}

int main(int argc, char **argv)
{
	long step = 4, interval = 50, max = 0, total = 0;
	int wait = 0, i;
	char line[16];

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--wait"))
			wait = 1;
		else if (!strcmp(argv[i], "--step-mib") && i + 1 < argc)
			step = atol(argv[++i]);
		else if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc)
			interval = atol(argv[++i]);
		else if (!strcmp(argv[i], "--max-mib") && i + 1 < argc)
			max = atol(argv[++i]);
	}
	printf("pid %d\n", getpid());
	fflush(stdout);
	if (wait && !fgets(line, sizeof(line), stdin))
		return 1;
	for (;;) {
		if (!max || total + step <= max) {
			if (!grow_leak(step << 20))
				return 3;
			total += step;
		}
		usleep(interval * 1000);
	}
}
