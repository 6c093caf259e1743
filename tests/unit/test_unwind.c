// SPDX-License-Identifier: GPL-2.0
/*
 * Frameless allocator call sites (user/unwind.c) found in real ELF files:
 * the wrapper library built without frame pointers, the sites workload
 * built with them, and the system's libstdc++ (operator new).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "elfsym.h"
#include "unwind.h"

static char dir[4096];

static const struct unwind_site *site_in(const struct unwind_site *v, int n,
					 const char *lib, const char *fn)
{
	struct elfsym_func f;
	struct elfsym *e;
	int i;

	if (elfsym__open(lib, &e))
		return NULL;
	i = elfsym__find(e, fn, &f);
	elfsym__close(e);
	if (i)
		return NULL;
	for (i = 0; i < n; i++)
		if (v[i].ret > f.vaddr && v[i].ret <= f.vaddr + f.size)
			return &v[i];
	return NULL;
}

/* The signature is the file's code around the return address. */
static void check_sig(const char *lib, const struct unwind_site *s)
{
	unsigned char code[MT_FIX_SIG];
	int fd = open(lib, O_RDONLY);

	/* text is mapped at its file offset in these small libraries */
	ASSERT_TRUE(fd >= 0 && pread(fd, code, sizeof(code), s->ret - 16) ==
		    (ssize_t)sizeof(code));
	ASSERT_TRUE(!memcmp(code, s->sig, sizeof(code)));
	ASSERT_EQ(s->sig[MT_FIX_SIG / 2 - 5], 0xe8);	/* call rel32 */
	close(fd);
}

static void test_wrapper_library(void)
{
	const char *fns[] = { "xmalloc", "xcalloc", "xrealloc" };
	const struct unwind_site *s;
	struct unwind_site *v = NULL;
	char lib[4200];
	int n = 0, i;

	snprintf(lib, sizeof(lib), "%s/libmtwrap.so", dir);
	if (!ASSERT_EQ(unwind__file_sites(lib, &v, &n), 0))
		return;
	ASSERT_EQ(n, 4);
	/* sub $8,%rsp; call: the caller's return address at sp + 8 */
	for (i = 0; i < 3; i++) {
		s = site_in(v, n, lib, fns[i]);
		if (!ASSERT_TRUE(s))
			continue;
		ASSERT_EQ(s->ra_off, 8);
		ASSERT_EQ(s->fp_off, -1);
		check_sig(lib, s);
	}
	/* push %rbp; mov %rdi,%rbp; call: the caller's rbp at sp + 0 */
	s = site_in(v, n, lib, "xmalloc_rbp");
	if (ASSERT_TRUE(s)) {
		ASSERT_EQ(s->ra_off, 8);
		ASSERT_EQ(s->fp_off, 0);
		check_sig(lib, s);
	}
	free(v);
}

static void test_frame_pointers_need_nothing(void)
{
	struct unwind_site *v = NULL;
	char exe[4200];
	int n = -1;

	snprintf(exe, sizeof(exe), "%s/sites", dir);
	ASSERT_EQ(unwind__file_sites(exe, &v, &n), 0);
	ASSERT_EQ(n, 0);
	free(v);
}

static void test_operator_new(void)
{
	const char *lib = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
	const struct unwind_site *s;
	struct unwind_site *v = NULL;
	int n = 0;

	if (access(lib, R_OK)) {
		printf("skip test_operator_new: no %s\n", lib);
		return;
	}
	if (!ASSERT_EQ(unwind__file_sites(lib, &v, &n), 0))
		return;
	/* push %rbx; ...; call malloc@plt */
	s = site_in(v, n, lib, "_Znwm");
	if (ASSERT_TRUE(s)) {
		ASSERT_EQ(s->ra_off, 8);
		ASSERT_EQ(s->fp_off, -1);
	}
	free(v);
}

static void test_not_elf(void)
{
	struct unwind_site *v = NULL;
	int n = 0;

	ASSERT_EQ(unwind__file_sites("/proc/self/status", &v, &n), -ENOEXEC);
	ASSERT_EQ(unwind__file_sites("/nonexistent", &v, &n), -ENOENT);
}

int main(int argc, char **argv)
{
	const char *slash = strrchr(argv[0], '/');

	/* build/tests/test_unwind -> build/workloads */
	snprintf(dir, sizeof(dir), "%.*s/../workloads",
		 slash ? (int)(slash - argv[0]) : 1, slash ? argv[0] : ".");
	RUN_TEST(test_wrapper_library);
	RUN_TEST(test_frame_pointers_need_nothing);
	RUN_TEST(test_operator_new);
	RUN_TEST(test_not_elf);
	return test__finish();
}
