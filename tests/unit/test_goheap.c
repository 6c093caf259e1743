// SPDX-License-Identifier: GPL-2.0
/*
 * goheap__scale() against runtime/pprof's scaleHeapSample: the expected
 * values were printed by that function (copied into a Go program, run
 * with Go 1.19 and 1.23: identical), so the C library's exp() must give
 * the same truncated integers as Go's math.Exp.
 */
#include <errno.h>
#include <unistd.h>

#include "goheap.h"
#include "test.h"

static const struct {
	int64_t count, bytes, rate, want_count, want_bytes;
} cases[] = {
	{ 1, 262144, 524288, 2, 666237 },
	{ 38, 9961472, 524288, 96, 25317022 },
	{ 2050, 2099200, 524288, 1050625, 1075840341 },
	{ 5461, 524336, 524288, 29822521, 2863398944 },
	{ 4497, 18419712, 524288, 577867, 2366944983 },
	{ 7, 336, 4096, 600, 28840 },
	{ 3, 3145728, 524288, 3, 3638089 },
	{ 100, 1600, 1, 100, 1600 },		/* rate 1: every allocation */
	{ 0, 5, 512, 0, 0 },			/* no count: nothing */
	{ 12345, 987654321, 65536, 17510, 1400933774 },
};

static void test_scale_as_pprof(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t c, b;

		goheap__scale(cases[i].count, cases[i].bytes, cases[i].rate,
			      &c, &b);
		ASSERT_EQ(c, cases[i].want_count);
		ASSERT_EQ(b, cases[i].want_bytes);
	}
}

static void test_not_go(void)
{
	struct goheap *g = NULL;

	/* this test binary is C: turned away, nothing allocated */
	ASSERT_EQ(goheap__open(getpid(), &g), -ENOEXEC);
	ASSERT_TRUE(g == NULL);
	ASSERT_TRUE(!goheap__is_go(getpid()));
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	RUN_TEST(test_scale_as_pprof);
	RUN_TEST(test_not_go);
	return test__finish();
}
