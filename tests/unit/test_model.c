// SPDX-License-Identifier: GPL-2.0
/* User-space logic without root: escaping, units, the table model,
 * anonymous-mapping ranges, probe-site choice. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "probesite.h"
#include "table.h"
#include "util.h"

static void test_sanitize(void)
{
	char out[128];

	sanitize("plain", 5, out, sizeof(out));
	ASSERT_STREQ(out, "plain");
	sanitize("a\x1b[2Jb", 6, out, sizeof(out));
	ASSERT_STREQ(out, "a\\x1b[2Jb");
	sanitize("tab\tnl\n\x7f", 9, out, sizeof(out));
	ASSERT_STREQ(out, "tab\\x09nl\\x0a\\x7f");
	sanitize("back\\slash", 10, out, sizeof(out));
	ASSERT_STREQ(out, "back\\\\slash");
	/* valid UTF-8 passes, C1 controls and broken sequences do not */
	sanitize("caf\xc3\xa9", 5, out, sizeof(out));
	ASSERT_STREQ(out, "caf\xc3\xa9");
	sanitize("\xc2\x9b" "31m", 5, out, sizeof(out));
	ASSERT_STREQ(out, "\\xc2\\x9b31m");
	sanitize("\xff\xfe", 2, out, sizeof(out));
	ASSERT_STREQ(out, "\\xff\\xfe");
	/* never cut inside an escape */
	sanitize("\x1b\x1b\x1b", 3, out, 9);
	ASSERT_STREQ(out, "\\x1b\\x1b");
}

/* Option values: ranges checked, nothing wraps, nothing infinite. */
static void test_parse_numbers(void)
{
	uint64_t u = 7;
	double r = 7;

	ASSERT_EQ(parse_uint("42", 0, 100, &u), 0);
	ASSERT_EQ(u, 42);
	ASSERT_EQ(parse_uint("18446744073709551616", 0, UINT64_MAX, &u),
		  -ERANGE);
	ASSERT_EQ(parse_uint("9223372036854775808", 0, INT64_MAX, &u),
		  -ERANGE);
	ASSERT_EQ(parse_uint("-1", 0, UINT64_MAX, &u), -EINVAL);
	ASSERT_EQ(parse_uint(" 1", 0, 10, &u), -EINVAL);
	ASSERT_EQ(parse_uint("1x", 0, 10, &u), -EINVAL);
	ASSERT_EQ(parse_uint("", 0, 10, &u), -EINVAL);
	ASSERT_EQ(parse_uint("0", 1, 10, &u), -ERANGE);
	ASSERT_EQ(u, 42);
	ASSERT_EQ(parse_real("0.25", 0, 1, &r), 0);
	ASSERT_TRUE(r == 0.25);
	ASSERT_EQ(parse_real("inf", 0, 1e300, &r), -EINVAL);
	ASSERT_EQ(parse_real("nan", 0, 1, &r), -EINVAL);
	ASSERT_EQ(parse_real("1e999", 0, 1e300, &r), -ERANGE);
	ASSERT_EQ(parse_real("-1", 0, 1, &r), -ERANGE);
	ASSERT_EQ(parse_size("512M", 4096, 1ull << 60, &u), 0);
	ASSERT_EQ(u, 512ull << 20);
	ASSERT_EQ(parse_size("1.5GiB", 4096, 1ull << 60, &u), 0);
	ASSERT_EQ(u, 3ull << 29);
	ASSERT_EQ(parse_size("1e99", 4096, 1ull << 60, &u), -ERANGE);
	ASSERT_EQ(parse_size("0.5", 0, 1ull << 60, &u), -EINVAL);
	ASSERT_EQ(parse_size("inf", 0, 1ull << 60, &u), -EINVAL);
	ASSERT_EQ(parse_size("16E", 0, UINT64_MAX, &u), -EINVAL);
	ASSERT_EQ(parse_size("K", 0, 1ull << 60, &u), -EINVAL);
}

static void test_human(void)
{
	char b[16];

	human_bytes(b, sizeof(b), 0);
	ASSERT_STREQ(b, "0");
	human_bytes(b, sizeof(b), 1023);
	ASSERT_STREQ(b, "1023");
	human_bytes(b, sizeof(b), 1536);
	ASSERT_STREQ(b, "1.5K");
	human_bytes(b, sizeof(b), 9 << 20);
	ASSERT_STREQ(b, "9.0M");
	human_bytes(b, sizeof(b), 300.0 * (1 << 30));
	ASSERT_STREQ(b, "300G");
	human_bytes(b, sizeof(b), -2048);
	ASSERT_STREQ(b, "-2.0K");
}

static void test_ranges(void)
{
	struct mt_row r = {};

	row__mmap(&r, 0x10000, 0x3000, 0x22);		/* anon */
	ASSERT_EQ(r.mmap_bytes, 0x3000);
	row__mmap(&r, 0x20000, 100, 0x22);		/* rounds to a page */
	ASSERT_EQ(r.mmap_bytes, 0x4000);
	row__munmap(&r, 0x11000, 0x1000);		/* punch a hole */
	ASSERT_EQ(r.mmap_bytes, 0x3000);
	ASSERT_EQ(r.nranges, 3);
	row__munmap(&r, 0x50000, 0x1000);		/* unknown: nothing */
	ASSERT_EQ(r.mmap_bytes, 0x3000);
	row__mmap(&r, 0x10000, 0x1000, 0x12);		/* file over anon */
	ASSERT_EQ(r.mmap_bytes, 0x2000);
	row__mremap(&r, 0x12000, 0x1000, 0x80000, 0x5000);
	ASSERT_EQ(r.mmap_bytes, 0x6000);
	row__mremap(&r, 0x90000, 0x1000, 0xa0000, 0x5000);	/* not ours */
	ASSERT_EQ(r.mmap_bytes, 0x6000);
	row__mmap(&r, 0x80000, 0x2000, 0x32);		/* MAP_FIXED anon */
	ASSERT_EQ(r.mmap_bytes, 0x6000);
	free(r.ranges);
}

static void test_rates_and_sort(void)
{
	struct table *t = table__new();
	struct mt_proc st = { .gen = 7, .alloc_bytes = 1000, .allocs = 10,
			      .free_bytes = 400, .frees = 4 };
	struct mt_row *a = table__add(t, 10), *b = table__add(t, 20);

	ASSERT_TRUE(a && b && table__add(t, 10) == a);
	table__set_stats(t, a, &st, 1000000000ull);
	ASSERT_EQ(a->live_bytes, 600);
	ASSERT_EQ(a->live_allocs, 6);
	st.alloc_bytes = 3000;
	st.allocs = 20;
	table__set_stats(t, a, &st, 3000000000ull);	/* 2 s later */
	ASSERT_EQ((long long)a->alloc_bps, 1000);
	ASSERT_EQ((long long)a->allocs_ps, 5);
	ASSERT_EQ((long long)a->growth_bps, 1000);
	/* exec: a new generation restarts rates */
	st.gen = 8;
	table__set_stats(t, a, &st, 4000000000ull);
	ASSERT_EQ((long long)a->alloc_bps, 0);
	ASSERT_TRUE(!a->have_prev);
	st.gen = 1;
	st.alloc_bytes = 99999;
	st.free_bytes = 0;
	table__set_stats(t, b, &st, 4000000000ull);
	table__sort(t, SORT_LIVE, false);
	ASSERT_EQ(table__row(t, 0)->pid, 20);
	table__sort(t, SORT_LIVE, true);
	ASSERT_EQ(table__row(t, 0)->pid, 10);
	b->rss_bytes = 1;
	a->rss_bytes = 5;
	table__sort(t, SORT_RSS, false);
	ASSERT_EQ(table__row(t, 0)->pid, 10);
	table__remove(t, 10);
	ASSERT_EQ(table__nr(t), 1);
	ASSERT_TRUE(table__get(t, 10) == NULL);
	table__free(t);
}

/*
 * Thousands of rows added and removed at random (an exec storm): each pid
 * finds its own row, and table__row() lists every row exactly once,
 * also while a loop removes the row it stands on.
 */
static void test_many_rows(void)
{
	enum { NPIDS = 5000 };
	static bool in[NPIDS];
	static unsigned char seen[NPIDS];
	struct table *t = table__new();
	unsigned int x = 12345;
	int op, i, n = 0, wrong = 0;

	for (op = 0; op < 60000; op++) {
		int pid;

		x = x * 1103515245 + 12345;
		pid = (x >> 8) % NPIDS;
		if (in[pid]) {
			table__remove(t, pid);
			in[pid] = false;
			n--;
		} else {
			if (!table__add(t, pid))
				wrong++;
			in[pid] = true;
			n++;
		}
	}
	for (i = 0; i < NPIDS; i++) {
		struct mt_row *r = table__get(t, i);

		if (in[i] != (r != NULL) || (r && r->pid != i))
			wrong++;
	}
	ASSERT_EQ(wrong, 0);
	ASSERT_EQ(table__nr(t), n);
	/* expire-style loop: remove every odd pid as it is met */
	for (i = 0; i < table__nr(t); i++) {
		struct mt_row *r = table__row(t, i);

		if (seen[r->pid]++)
			wrong++;
		if (r->pid % 2) {
			in[r->pid] = false;
			table__remove(t, r->pid);
			i--;
		}
	}
	for (i = 0; i < NPIDS; i++)
		if (in[i] != (table__get(t, i) != NULL) ||
		    (in[i] && !seen[i]) || (in[i] && i % 2))
			wrong++;
	ASSERT_EQ(wrong, 0);
	table__free(t);
}

static int cmp_site_live(const void *a, const void *b)
{
	const struct mt_site_row *x = a, *y = b;

	return (x->live_bytes < y->live_bytes) - (x->live_bytes > y->live_bytes);
}

/*
 * row__site() by index: 20,000 sites, each found again after the array
 * is sorted (as each refresh does) and none after a reset (exec).
 */
static void test_row_sites_indexed(void)
{
	struct table *t = table__new();
	struct mt_row *r = table__add(t, 42);
	int i, wrong = 0;

	for (i = 0; i < 20000; i++) {
		struct mt_site_row *s = row__site(r, 1000 + i * 7919ULL);

		if (!s || s->stack_id != 1000 + i * 7919ULL || s->live_bytes)
			wrong++;
		else
			s->live_bytes = i;
	}
	ASSERT_EQ(r->nsites, 20000);
	qsort(r->sites, r->nsites, sizeof(r->sites[0]), cmp_site_live);
	for (i = 0; i < 20000; i++) {
		struct mt_site_row *s = row__site(r, 1000 + i * 7919ULL);

		if (!s || s->live_bytes != i)
			wrong++;
	}
	ASSERT_EQ(wrong, 0);
	ASSERT_EQ(r->nsites, 20000);
	row__reset(r);
	ASSERT_TRUE(row__site(r, 1000)->live_bytes == 0);
	ASSERT_EQ(r->nsites, 1);
	table__free(t);
}

/*
 * The final table comes a few ms after the last refresh: its rates must
 * cover the last full interval, not 10 KB over 1 ms (10 MB/s).  Peak
 * live bytes are the highest seen.
 */
static void test_short_tail_rates_and_peak(void)
{
	struct table *t = table__new();
	struct mt_proc st = { .gen = 3, .alloc_bytes = 10000, .allocs = 1 };
	struct mt_row *a = table__add(t, 10), *b = table__add(t, 11);

	table__set_interval(t, 1000000000ull);
	table__set_stats(t, a, &st, 1000000000ull);
	st.alloc_bytes = 20000;
	table__set_stats(t, a, &st, 2000000000ull);
	ASSERT_EQ((long long)a->growth_bps, 10000);
	ASSERT_EQ(a->peak_bytes, 20000);
	st.alloc_bytes = 30000;			/* 1 ms later */
	table__set_stats(t, a, &st, 2001000000ull);
	ASSERT_TRUE(a->short_sample);
	ASSERT_EQ((long long)a->growth_bps, 19980);	/* 20000 B / 1.001 s */
	ASSERT_EQ(a->live_bytes, 30000);
	st.free_bytes = 25000;
	table__set_stats(t, a, &st, 3001000000ull);
	ASSERT_EQ(a->live_bytes, 5000);
	ASSERT_EQ(a->peak_bytes, 30000);
	ASSERT_EQ((long long)a->growth_bps, -25000);
	/* a tail after a single sample: no rate at all */
	st.free_bytes = 0;
	table__set_stats(t, b, &st, 1000000000ull);
	st.alloc_bytes = 40000;
	table__set_stats(t, b, &st, 1002000000ull);
	ASSERT_EQ((long long)b->growth_bps, 0);
	ASSERT_EQ((long long)b->alloc_bps, 0);
	table__free(t);
}

static void test_probesite(void)
{
	/* glibc free: test %rdi,%rdi; je; push %rbp -> the je (emulated) */
	static const uint8_t free_code[] = { 0x48, 0x85, 0xff, 0x0f, 0x84, 0xbf,
					     0, 0, 0, 0x55, 0x48, 0x8d };
	/* posix_memalign: cmpb $0,x(%rip); push %r12 */
	static const uint8_t pm_code[] = { 0x80, 0x3d, 1, 2, 3, 4, 0,
					   0x41, 0x54, 0x49, 0x89, 0xd4 };
	/* malloc: push %r12 at entry */
	static const uint8_t malloc_code[] = { 0x41, 0x54, 0x55, 0x53 };
	/*
	 * mov %rsi,%rax; mul %rdx (writes rdx:rax); push %rbp: skippable for
	 * a one-argument function, not for one whose third argument is rdx
	 */
	static const uint8_t mov_code[] = { 0x48, 0x89, 0xf0, 0x48, 0xf7, 0xe2,
					    0x55 };
	/* endbr64; push %rbp */
	static const uint8_t cet_code[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55 };
	/* sub $8,%rsp moves the stack pointer: entry it is */
	static const uint8_t sub_code[] = { 0x48, 0x83, 0xec, 0x08, 0x55 };
	/* tcmalloc's malloc: mov x(%rip),%rax; test %rax,%rax; jne */
	static const uint8_t tc_code[] = { 0x48, 0x8b, 0x05, 0x59, 0xab, 0, 0,
					   0x48, 0x85, 0xc0, 0x75, 0x75 };
	/* jemalloc's free: ten scratch-register instructions, then jne */
	static const uint8_t je_code[] = {
		0x48, 0x89, 0xf8,			/* mov %rdi,%rax */
		0x48, 0x8b, 0x15, 0x0e, 0x53, 0x0a, 0,	/* mov x(%rip),%rdx */
		0x48, 0x89, 0xf9,			/* mov %rdi,%rcx */
		0x48, 0xc1, 0xe8, 0x1a,			/* shr $0x1a,%rax */
		0x48, 0x81, 0xe1, 0, 0, 0, 0xc0,	/* and $..,%rcx */
		0x25, 0xf0, 0, 0, 0,			/* and $0xf0,%eax */
		0x64, 0x48, 0x03, 0x04, 0x25, 0, 0, 0, 0, /* add %fs:0,%rax */
		0x48, 0x01, 0xd0,			/* add %rdx,%rax */
		0x48, 0x3b, 0x88, 0xb0, 1, 0, 0,	/* cmp 0x1b0(%rax),%rcx */
		0x0f, 0x85, 0x8a, 0, 0, 0,		/* jne */
	};
	/* mov %rax,(%rdi) writes memory; mov %rax,%rdi an argument */
	static const uint8_t store_code[] = { 0x48, 0x89, 0x07, 0x55 };
	static const uint8_t arg_code[] = { 0x48, 0x89, 0xc7, 0x55 };
	struct probesite ps;

	ASSERT_EQ(probesite__choose(free_code, sizeof(free_code), 1, &ps), 1);
	ASSERT_EQ(ps.skip, 3);
	ASSERT_EQ(probesite__choose(pm_code, sizeof(pm_code), 3, &ps), 1);
	ASSERT_EQ(ps.skip, 7);
	ASSERT_EQ(probesite__choose(malloc_code, sizeof(malloc_code), 1, &ps), 0);
	ASSERT_EQ(ps.skip, 0);
	ASSERT_EQ(probesite__choose(mov_code, sizeof(mov_code), 3, &ps), 0);
	ASSERT_EQ(ps.skip, 0);
	ASSERT_TRUE(strstr(ps.why, "single-stepped") != NULL);
	ASSERT_EQ(probesite__choose(mov_code, sizeof(mov_code), 1, &ps), 1);
	ASSERT_EQ(ps.skip, 6);
	ASSERT_EQ(probesite__choose(cet_code, sizeof(cet_code), 1, &ps), 1);
	ASSERT_EQ(ps.skip, 4);
	ASSERT_EQ(probesite__choose(sub_code, sizeof(sub_code), 1, &ps), 0);
	ASSERT_EQ(ps.skip, 0);
	ASSERT_EQ(probesite__choose(tc_code, sizeof(tc_code), 1, &ps), 1);
	ASSERT_EQ(ps.skip, 10);
	ASSERT_EQ(probesite__choose(je_code, sizeof(je_code), 1, &ps), 1);
	ASSERT_EQ(ps.skip, sizeof(je_code) - 6);
	/* the same code where the second argument (rsi) matters: still fine */
	ASSERT_EQ(probesite__choose(je_code, sizeof(je_code), 2, &ps), 1);
	/* ... but not where the third (rdx, loaded above) does */
	ASSERT_EQ(probesite__choose(je_code, sizeof(je_code), 3, &ps), 0);
	ASSERT_EQ(probesite__choose(store_code, sizeof(store_code), 1, &ps), 0);
	ASSERT_EQ(probesite__choose(arg_code, sizeof(arg_code), 1, &ps), 0);
	ASSERT_EQ(probesite__choose(arg_code, sizeof(arg_code), 0, &ps), 1);
}

int main(void)
{
	RUN_TEST(test_sanitize);
	RUN_TEST(test_human);
	RUN_TEST(test_parse_numbers);
	RUN_TEST(test_ranges);
	RUN_TEST(test_rates_and_sort);
	RUN_TEST(test_short_tail_rates_and_peak);
	RUN_TEST(test_many_rows);
	RUN_TEST(test_row_sites_indexed);
	RUN_TEST(test_probesite);
	return test__finish();
}
