/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal unit-test harness shared by tests/unit/test_*.c.
 *
 * Each test binary prints one "ok NAME" / "not ok NAME: why" line per
 * check and a closing "N passed, N failed" line that tests/run.py adds up.
 * ASSERT_* return bool so a test can bail out with a precise message.
 */
#ifndef MT_TEST_H
#define MT_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <inttypes.h>

static int test__passed;
static int test__failed;

static inline bool test__check(bool cond, const char *file, int line,
			       const char *what)
{
	if (cond) {
		test__passed++;
		return true;
	}
	test__failed++;
	printf("not ok %s:%d: %s\n", file, line, what);
	return false;
}

#define ASSERT_TRUE(c) test__check(!!(c), __FILE__, __LINE__, #c)
#define ASSERT_EQ(a, b) ({						\
	long long __a = (long long)(a), __b = (long long)(b);		\
	bool __ok = test__check(__a == __b, __FILE__, __LINE__,		\
				#a " == " #b);				\
	if (!__ok)							\
		printf("    got %lld, want %lld\n", __a, __b);		\
	__ok; })
#define ASSERT_STREQ(a, b) ({						\
	const char *__a = (a), *__b = (b);				\
	bool __ok = test__check(__a && __b && !strcmp(__a, __b),	\
				__FILE__, __LINE__, #a " eq " #b);	\
	if (!__ok)							\
		printf("    got \"%s\", want \"%s\"\n",		\
		       __a ? __a : "(null)", __b ? __b : "(null)");	\
	__ok; })

#define RUN_TEST(fn) do {						\
	int __f = test__failed;						\
	fn();								\
	printf("%s %s\n", __f == test__failed ? "ok" : "not ok", #fn);	\
} while (0)

static inline int test__finish(void)
{
	printf("%d passed, %d failed\n", test__passed, test__failed);
	return test__failed ? 1 : 0;
}

#endif /* MT_TEST_H */
