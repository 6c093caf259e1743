// SPDX-License-Identifier: GPL-2.0
/*
 * ELF lookups that decide where allocator probes go (user/elfsym.c):
 * the libraries a program will load, found as the dynamic loader would,
 * and the malloc symbols of an allocator of its own.
 */
#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "elfsym.h"

static char dir[4096];

struct seen {
	char libs[8][4096];
	int n;
};

static int note_lib(const char *lib, void *ctx)
{
	struct seen *s = ctx;

	if (s->n < 8)
		snprintf(s->libs[s->n++], sizeof(s->libs[0]), "%s", lib);
	return 0;
}

static int stop_walk(const char *lib, void *ctx)
{
	return -ECANCELED;
}

/* DT_NEEDED in order, libmtalloc.so through RUNPATH $ORIGIN */
static void test_needed_runpath_origin(void)
{
	struct seen s = { .n = 0 };
	struct elfsym *e;
	char exe[4200], want[4300];

	snprintf(exe, sizeof(exe), "%s/allocs_mtalloc", dir);
	if (!ASSERT_EQ(elfsym__open(exe, &e), 0))
		return;
	ASSERT_EQ(elfsym__each_needed(e, exe, NULL, note_lib, &s), 0);
	ASSERT_EQ(s.n, 2);
	snprintf(want, sizeof(want), "%s/libmtalloc.so", dir);
	ASSERT_STREQ(s.libs[0], want);
	ASSERT_TRUE(strstr(s.libs[1], "/libc.so.6") != NULL);
	ASSERT_EQ(elfsym__each_needed(e, exe, NULL, stop_walk, NULL),
		  -ECANCELED);
	elfsym__close(e);
}

/* an allocator of its own defines the whole family; a workload none */
static void test_allocator_symbols(void)
{
	const char *fns[] = { "malloc", "free", "calloc", "realloc",
			      "posix_memalign", "memalign", "valloc" };
	struct elfsym_func f;
	struct elfsym *e;
	char path[4200];
	size_t i;

	snprintf(path, sizeof(path), "%s/libmtalloc.so", dir);
	if (!ASSERT_EQ(elfsym__open(path, &e), 0))
		return;
	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		ASSERT_EQ(elfsym__find(e, fns[i], &f), 0);
	elfsym__close(e);
	snprintf(path, sizeof(path), "%s/allocs", dir);
	if (!ASSERT_EQ(elfsym__open(path, &e), 0))
		return;
	ASSERT_EQ(elfsym__find(e, "malloc", &f), -ENOENT);
	elfsym__close(e);
}

/* a library with no dependencies of its own walks nothing */
static void test_no_needed(void)
{
	struct seen s = { .n = 0 };
	struct elfsym *e;
	char path[4200];

	snprintf(path, sizeof(path), "%s/libmtsite.so", dir);
	if (!ASSERT_EQ(elfsym__open(path, &e), 0))
		return;
	ASSERT_EQ(elfsym__each_needed(e, path, NULL, note_lib, &s), 0);
	/* libc only, if anything */
	ASSERT_TRUE(s.n <= 1);
	if (s.n)
		ASSERT_TRUE(strstr(s.libs[0], "libc.so") != NULL);
	elfsym__close(e);
}

int main(int argc, char **argv)
{
	const char *slash = strrchr(argv[0], '/');

	/* build/tests/test_elfsym -> build/workloads */
	snprintf(dir, sizeof(dir), "%.*s/../workloads",
		 slash ? (int)(slash - argv[0]) : 1, slash ? argv[0] : ".");
	RUN_TEST(test_needed_runpath_origin);
	RUN_TEST(test_allocator_symbols);
	RUN_TEST(test_no_needed);
	return test__finish();
}
