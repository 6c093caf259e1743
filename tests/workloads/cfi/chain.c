// SPDX-License-Identifier: GPL-2.0
/*
 * A call chain built like a distribution's code, -O2 -fomit-frame-pointer:
 * main -> serve -> parse -> store -> xmalloc -> malloc, every step a real
 * call (noinline, no tail calls).  The stack memtrace reports for the
 * blocks must be that chain, in order; a frame-pointer walk sees at most
 * xmalloc's caller.  Built three ways (Makefile): all frameless; mixed
 * (serve and store keep frame pointers); with xmalloc in a shared library
 * of its own, reached through the PLT.  --signal also allocates from a
 * signal handler entered inside store (a signal frame on the way).
 * --deep N also allocates 5 blocks under N more frames of recursion
 * (stacks deeper than memtrace keeps: counted as truncated).
 *
 *   chain [--signal] [--wait] [--deep N] --truth FILE
 *
 * writes the truth, then waits for EOF on stdin; --wait: first waits for
 * a line on stdin (a tracer attaches meanwhile), and says "ready" after.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../truth.h"

#ifdef CHAIN_MIXED
#define FP __attribute__((optimize("no-omit-frame-pointer")))
#else
#define FP
#endif
#define STEP __attribute__((noinline, noclone))

#ifdef CHAIN_LIB
void *xmalloc(size_t n);
#else
/* a wrapper: passes the allocation through, as redis's zmalloc does */
STEP void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		abort();
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}
#endif

static void *keep[4096];
static int nkeep;
static long long held_store, held_signal, deep_allocs;
static volatile int want_signal;

/* calls that are not tail calls: something is done after each */
#define KEEP(p) do { keep[nkeep++] = (p); __asm__ volatile("" ::: "memory"); } while (0)

STEP void on_signal(int sig)
{
	KEEP(xmalloc(333));
	held_signal += 333;
}

FP STEP int store(const char *key, int n)
{
	char copy[64];
	int i;

	/* a frame of its own on the stack, and rbp used for data */
	snprintf(copy, sizeof(copy), "%s", key);
	for (i = 0; i < n; i++) {
		KEEP(xmalloc(100 + strlen(copy)));
		held_store += 100 + strlen(copy);
	}
	if (want_signal)
		raise(SIGUSR1);
	return i + copy[0];
}

STEP int parse(const char *line, int n)
{
	volatile char buf[200];
	int r;

	buf[0] = line[0];
	r = store(line, n);
	return r + buf[0];
}

STEP int dive(int d)
{
	volatile int here = d;	/* read after the call: a frame per level */

	if (d <= 0) {
		KEEP(xmalloc(77));
		deep_allocs++;
		return 1;
	}
	return dive(d - 1) + here;
}

FP STEP int serve(int rounds)
{
	int i, r = 0;

	for (i = 0; i < rounds; i++)
		r += parse("key:value", 10);
	return r;
}

int main(int argc, char **argv)
{
	const char *truth = NULL;
	char buf[1024], c;
	int i, n, r, wait = 0, deep = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--signal"))
			want_signal = 1;
		else if (!strcmp(argv[i], "--wait"))
			wait = 1;
		else if (!strcmp(argv[i], "--deep") && i + 1 < argc)
			deep = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--truth") && i + 1 < argc)
			truth = argv[++i];
	}
	signal(SIGUSR1, on_signal);
	while (wait && read(0, &c, 1) == 1 && c != '\n')
		;
	r = serve(20);
	for (i = 0; deep && i < 5; i++)
		r += dive(deep);
	if (wait && write(1, "ready\n", 6) != 6)
		return 1;
	if (truth) {
		n = snprintf(buf, sizeof(buf),
			     "{\"pid\":%d,\"r\":%d,"
			     "\"chain\":[\"xmalloc\",\"store\",\"parse\",\"serve\",\"main\"],"
			     "\"signal_chain\":[\"xmalloc\",\"on_signal\",\"store\",\"parse\",\"serve\",\"main\"],"
			     "\"held_store\":%lld,\"held_signal\":%lld,"
			     "\"allocs\":%lld,\"deep_allocs\":%lld}\n",
			     getpid(), r, held_store, held_signal,
			     (long long)nkeep, deep_allocs);
		if (write_truth(truth, buf, n))
			return 1;
	}
	while (read(0, &c, 1) == 1)
		;
	return 0;
}
