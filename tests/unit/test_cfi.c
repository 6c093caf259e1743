// SPDX-License-Identifier: GPL-2.0
/*
 * CFI compiled into the kernel's rows (user/cfi.c), on real ELF files:
 * the chain workload built without frame pointers, the sites workload
 * built with them, and the system's C library.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "cfi.h"
#include "elfsym.h"
#include "util.h"

static char dir[4096];

static int compile(const char *name, struct cfi_table *t)
{
	char path[4200];
	int fd, err;

	if (name[0] == '/')
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = cfi__compile(fd, t);
	close(fd);
	return err;
}

static uint64_t func_addr(const char *name, const char *fn, uint64_t *size)
{
	struct elfsym_func f = {};
	struct elfsym *e;
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (elfsym__open(path, &e))
		return 0;
	if (elfsym__find(e, fn, &f))
		f.vaddr = 0;
	elfsym__close(e);
	*size = f.size;
	return f.vaddr;
}

static bool sorted(const struct cfi_table *t)
{
	uint32_t i;

	for (i = 1; i < t->nrows; i++)
		if (t->rows[i].pc <= t->rows[i - 1].pc)
			return false;
	return true;
}

/* -O2 -fomit-frame-pointer: every function's frame by rsp, rbp saved */
static void test_frameless_chain(void)
{
	const struct mt_cfi_row *r;
	struct cfi_table t;
	uint64_t store, size, pc;
	bool saved_rbp = false, deeper = false;

	if (!ASSERT_EQ(compile("chain", &t), 0))
		return;
	ASSERT_EQ(t.flags & MT_CFI_FP, 0);
	ASSERT_TRUE(t.frameless >= 4);	/* main serve parse store */
	ASSERT_TRUE(sorted(&t));
	ASSERT_TRUE(t.build_id[0]);
	store = func_addr("chain", "store", &size);
	if (!ASSERT_TRUE(store && size))
		goto out;
	/* at the entry the return address is on top: CFA = rsp + 8 */
	r = cfi__lookup(&t, store);
	if (ASSERT_TRUE(r)) {
		ASSERT_EQ(r->type, MT_CFI_RSP);
		ASSERT_EQ(r->cfa_off, 1);
		ASSERT_EQ(r->rbp_off, 0);
	}
	/* inside, it pushed registers (rbp among them) and made room */
	for (pc = store; pc < store + size; pc++) {
		r = cfi__lookup(&t, pc);
		if (!r || r->type != MT_CFI_RSP)
			continue;
		deeper |= r->cfa_off > 8;
		saved_rbp |= r->rbp_off < 0;
	}
	ASSERT_TRUE(deeper);
	ASSERT_TRUE(saved_rbp);
	/* past the last function there is no rule */
	r = cfi__lookup(&t, t.rows[t.nrows - 1].pc + 16);
	ASSERT_TRUE(r && r->type == MT_CFI_NONE);
out:
	cfi__table_free(&t);
}

/* -fno-omit-frame-pointer: the file is walked by frame pointer, no rows */
static void test_frame_pointer_file(void)
{
	struct cfi_table t;

	if (!ASSERT_EQ(compile("sites", &t), 0))
		return;
	ASSERT_EQ(t.flags & MT_CFI_FP, MT_CFI_FP);
	ASSERT_EQ(t.frameless, 0);
	cfi__table_free(&t);
	/* a mix: some functions keep one, the others need rows */
	if (!ASSERT_EQ(compile("chain_mixed", &t), 0))
		return;
	ASSERT_EQ(t.flags & MT_CFI_FP, 0);
	cfi__table_free(&t);
}

/* the C library: thousands of functions, its start marked outermost */
static void test_libc(void)
{
	static const char *const libcs[] = {
		"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
	};
	struct cfi_table t;
	uint32_t i, types[8] = {};
	uint64_t t0;
	int err = -ENOENT;
	size_t k;

	for (k = 0; k < ARRAY_SIZE(libcs) && err == -ENOENT; k++) {
		t0 = now_ns();
		err = compile(libcs[k], &t);
	}
	if (!ASSERT_EQ(err, 0))
		return;
	printf("# libc: %u rows, %u functions (%u frameless) in %.1f ms\n",
	       t.nrows, t.fdes, t.frameless, (now_ns() - t0) / 1e6);
	ASSERT_TRUE(t.nrows > 1000);
	ASSERT_TRUE(sorted(&t));
	for (i = 0; i < t.nrows; i++)
		if (t.rows[i].type < 8)
			types[t.rows[i].type]++;
	ASSERT_TRUE(types[MT_CFI_RSP] > 1000);
	ASSERT_TRUE(types[MT_CFI_SIGNAL] >= 1);	/* __restore_rt */
	cfi__table_free(&t);
}

static void test_not_elf(void)
{
	struct cfi_table t;
	char path[] = "/tmp/mt-cfi-XXXXXX";
	int fd = mkstemp(path);

	if (!ASSERT_TRUE(fd >= 0))
		return;
	ASSERT_EQ(write(fd, "#!/bin/sh\necho hi\n", 18), 18);
	ASSERT_EQ(cfi__compile(fd, &t), -ENOEXEC);
	close(fd);
	unlink(path);
}

int main(int argc, char **argv)
{
	const char *slash = strrchr(argv[0], '/');

	/* build/tests/test_cfi -> build/workloads */
	snprintf(dir, sizeof(dir), "%.*s/../workloads",
		 slash ? (int)(slash - argv[0]) : 1, slash ? argv[0] : ".");
	RUN_TEST(test_frameless_chain);
	RUN_TEST(test_frame_pointer_file);
	RUN_TEST(test_libc);
	RUN_TEST(test_not_elf);
	return test__finish();
}
