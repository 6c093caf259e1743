// SPDX-License-Identifier: GPL-2.0
/*
 * Go symbolization cost for `make bench` (tools/bench/gosym_bench.py):
 * opening a Go executable's pclntab, then N distinct PCs (one in the
 * middle of each of N functions spread over the table) resolved with
 * their inlined frames, directly (gobin__frames) and through the
 * symbolizer (syms__resolve_ret, first pass cold: the object is opened
 * then; second pass from its cache).  Prints one JSON line.
 *
 *   gosym_bench GO_EXECUTABLE [N]
 */
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gobin.h"
#include "syms.h"

#define RUNS	5
#define FAKE_PID 0x3ffffff0	/* no such process: mappings come from us */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* The executable segment, to map it for the symbolizer as ld.so would. */
static int text_segment(const char *path, GElf_Phdr *out)
{
	int fd = open(path, O_RDONLY), err = -1;
	size_t i, n;
	Elf *elf;

	elf_version(EV_CURRENT);
	elf = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
	if (elf && !elf_getphdrnum(elf, &n))
		for (i = 0; i < n && err; i++)
			if (gelf_getphdr(elf, i, out) && out->p_type == PT_LOAD &&
			    (out->p_flags & PF_X))
				err = 0;
	if (elf)
		elf_end(elf);
	if (fd >= 0)
		close(fd);
	return err;
}

int main(int argc, char **argv)
{
	double open_ms[RUNS], direct_ms[RUNS], cold_ms[RUNS], warm_ms[RUNS];
	struct gobin_frame gf[16];
	struct syms_frame sf[16];
	uint64_t *pcs;
	GElf_Phdr text;
	long frames = 0;
	int i, r, n, nf, want;
	struct gobin *g;
	struct stat st;
	double t;

	if (argc < 2 || stat(argv[1], &st)) {
		fprintf(stderr, "usage: gosym_bench GO_EXECUTABLE [N]\n");
		return 2;
	}
	want = argc > 2 ? atoi(argv[2]) : 10000;
	for (r = 0; r < RUNS; r++) {
		t = now_ms();
		if (gobin__open(argv[1], &g)) {
			fprintf(stderr, "gosym_bench: %s: not a Go program\n",
				argv[1]);
			return 1;
		}
		open_ms[r] = now_ms() - t;
		if (r < RUNS - 1)
			gobin__free(g);
	}
	nf = gobin__nr_funcs(g);
	if (want > nf)
		want = nf;
	pcs = calloc(want, sizeof(*pcs));
	for (i = n = 0; i < want; i++) {
		const char *name;
		uint64_t entry, end;

		if (gobin__func_at(g, (int)((long)i * nf / want), &name, &entry,
				   &end) || end <= entry)
			continue;
		/* a return address: past the first byte */
		pcs[n++] = entry + (end - entry) / 2 + 1;
	}
	if (text_segment(argv[1], &text))
		return 1;
	for (r = 0; r < RUNS; r++) {
		t = now_ms();
		for (i = 0, frames = 0; i < n; i++)
			frames += gobin__frames(g, pcs[i], true, gf, 16);
		direct_ms[r] = now_ms() - t;
	}
	for (r = 0; r < RUNS; r++) {
		struct syms *s = syms__new();

		/* the text as if mapped where it links (no bias) */
		t = now_ms();
		syms__note_map(s, FAKE_PID, text.p_vaddr & ~0xfffull,
			       text.p_vaddr + text.p_memsz,
			       text.p_offset & ~0xfffull, st.st_ino, argv[1]);
		for (i = 0; i < n; i++)
			syms__resolve_ret(s, FAKE_PID, pcs[i], sf, 16);
		cold_ms[r] = now_ms() - t;
		t = now_ms();
		for (i = 0; i < n; i++)
			syms__resolve_ret(s, FAKE_PID, pcs[i], sf, 16);
		warm_ms[r] = now_ms() - t;
		syms__free(s);
	}
	/* every PC must have resolved, or the timing means nothing */
	for (i = 0, r = 0; i < n; i++)
		r += gobin__frames(g, pcs[i], true, gf, 16) > 0;
	if (r != n)
		fprintf(stderr, "gosym_bench: %d of %d PCs unresolved\n",
			n - r, n);
	printf("{\"file\":\"%s\",\"version\":\"%s\",\"size\":%lld,"
	       "\"funcs\":%d,\"pcs\":%d,\"frames\":%ld,\"open_ms\":%.3f,"
	       "\"frames_ms\":%.3f,\"syms_cold_ms\":%.3f,\"syms_warm_ms\":%.3f}\n",
	       argv[1], gobin__version(g), (long long)st.st_size, nf, n, frames,
	       median(open_ms, RUNS), median(direct_ms, RUNS),
	       median(cold_ms, RUNS), median(warm_ms, RUNS));
	gobin__free(g);
	free(pcs);
	return 0;
}
