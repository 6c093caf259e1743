// SPDX-License-Identifier: GPL-2.0
/*
 * make bench: how long memtrace takes to read a Go process's heap profile
 * (goheap.c) and to name every frame of it (the symbolizer), on a process
 * with many buckets.  Prints one JSON object.
 *
 *   goheap_bench PID
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goheap.h"
#include "syms.h"
#include "util.h"

static double ms_since(uint64_t t)
{
	return (now_ns() - t) / 1e6;
}

int main(int argc, char **argv)
{
	struct syms_frame fr[8];
	struct goheap *g = NULL;
	double first, second, sym_cold, sym_warm;
	struct syms *s;
	long frames = 0;
	int pid, i, j, pass, err;
	uint64_t t;

	if (argc != 2)
		return 2;
	pid = atoi(argv[1]);
	err = goheap__open(pid, &g);
	if (err) {
		fprintf(stderr, "goheap_bench: pid %d: %s\n", pid, strerror(-err));
		return 1;
	}
	t = now_ns();
	err = goheap__read(g, now_ns());
	first = ms_since(t);
	t = now_ns();
	err = err ? err : goheap__read(g, now_ns());
	second = ms_since(t);
	if (err) {
		fprintf(stderr, "goheap_bench: read: %s\n", strerror(-err));
		return 1;
	}
	s = syms__new();
	for (pass = 0; pass < 2; pass++) {
		t = now_ns();
		for (i = 0; i < g->nsites; i++)
			for (j = 0; j < g->sites[i].nstk; j++)
				frames += syms__resolve_ret(s, pid,
						g->sites[i].stk[j], fr, 8);
		if (pass)
			sym_warm = ms_since(t);
		else
			sym_cold = ms_since(t);
	}
	printf("{\"version\":\"%s\",\"buckets\":%d,\"first_read_ms\":%.2f,"
	       "\"read_ms\":%.2f,\"syms_cold_ms\":%.2f,\"syms_warm_ms\":%.2f,"
	       "\"frames\":%ld,\"read_errors\":%llu}\n", g->version, g->nsites,
	       first, second, sym_cold, sym_warm, frames / 2,
	       (unsigned long long)g->read_errors);
	syms__free(s);
	goheap__free(g);
	return 0;
}
