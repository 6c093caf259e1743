// SPDX-License-Identifier: GPL-2.0
/*
 * A syscall loop for `make bench`: prints "ready"; each line "rate MS"
 * calls getppid() (raw, no libc cache) for MS milliseconds and prints
 * "rate R", calls a second.  It allocates nothing: what a tracer costs
 * it is what the tracer costs every syscall on the node (a syscall
 * tracepoint puts them all on the kernel's slow path).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	char line[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		double t0, t, ms;
		long n = 0;
		int i;

		if (strncmp(line, "rate ", 5))
			continue;
		ms = atof(line + 5);
		t0 = t = now();
		while (t - t0 < ms / 1000) {
			for (i = 0; i < 1000; i++)
				syscall(SYS_getppid);
			n += 1000;
			t = now();
		}
		printf("rate %.0f\n", n / (t - t0));
	}
	return 0;
}
