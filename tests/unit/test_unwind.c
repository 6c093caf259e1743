// SPDX-License-Identifier: GPL-2.0
/*
 * Frameless allocator call sites (user/unwind.c) found in real ELF files:
 * the wrapper library built without frame pointers, the sites workload
 * built with them, and the system's libstdc++ (operator new).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test.h"
#include "elfsym.h"
#include "unwind.h"
#include "util.h"

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

/*
 * Scan the file in a child: a read out of the image is a crash there,
 * reported here, not the end of the whole test binary.
 */
static bool scan_survives(const char *path)
{
	struct unwind_site *v = NULL;
	int n = 0, status;
	pid_t pid = fork();

	if (pid == 0) {
		unwind__file_sites(path, &v, &n);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	if (WIFSIGNALED(status))
		printf("    killed by signal %d\n", WTERMSIG(status));
	return WIFEXITED(status) && !WEXITSTATUS(status);
}

/*
 * A hostile program-header table: offsets and sizes whose sum wraps past
 * 2^64 back into the file, or points far outside it.  The root tracer
 * scans every code file a container maps: none may make it read outside
 * the file.  Each executable PT_LOAD and each section header of the
 * wrapper library gets every hostile pair, plus random ones.
 */
static void test_hostile_headers(void)
{
	static const uint64_t pairs[][2] = {
		{ ~0ULL - 0xff, 0x200 },	/* sum wraps to 0x100 */
		{ 1ULL << 63, 1ULL << 63 },	/* sum wraps to 0 */
		{ 0x40, ~0ULL },		/* size alone wraps */
		{ 0x10000000, 0x1000 },		/* past the end */
	};
	char lib[4200], tmp[] = "/tmp/mt-fuzz-elf.XXXXXX";
	unsigned char *img;
	struct stat st;
	Elf64_Ehdr *eh;
	int fd, i, k, tried = 0;

	snprintf(lib, sizeof(lib), "%s/libmtwrap.so", dir);
	fd = open(lib, O_RDONLY);
	if (!ASSERT_TRUE(fd >= 0 && !fstat(fd, &st)))
		return;
	img = malloc(st.st_size);
	ASSERT_TRUE(img && read(fd, img, st.st_size) == st.st_size);
	close(fd);
	eh = (Elf64_Ehdr *)img;
	srand(42);
	for (i = 0; i < eh->e_phnum + eh->e_shnum; i++) {
		Elf64_Phdr *ph = (Elf64_Phdr *)(img + eh->e_phoff) + i;
		Elf64_Shdr *sh = (Elf64_Shdr *)(img + eh->e_shoff) +
				 (i - eh->e_phnum);
		uint64_t *off, *size, save_off, save_size;

		if (i < eh->e_phnum) {
			if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
				continue;
			off = &ph->p_offset;
			size = &ph->p_filesz;
		} else {
			off = &sh->sh_offset;
			size = &sh->sh_size;
		}
		save_off = *off;
		save_size = *size;
		for (k = 0; k < (int)ARRAY_SIZE(pairs) + 8; k++) {
			if (k < (int)ARRAY_SIZE(pairs)) {
				*off = pairs[k][0];
				*size = pairs[k][1];
			} else {
				*off = ((uint64_t)rand() << 33) ^ rand();
				*size = ~0ULL - *off + 1 + rand() % 4096;
			}
			fd = mkstemp(tmp);
			if (!ASSERT_TRUE(fd >= 0))
				goto out;
			ASSERT_TRUE(write(fd, img, st.st_size) == st.st_size);
			close(fd);
			if (!ASSERT_TRUE(scan_survives(tmp)))
				printf("    header %d: offset %#llx size %#llx\n",
				       i, (unsigned long long)*off,
				       (unsigned long long)*size);
			unlink(tmp);
			strcpy(tmp, "/tmp/mt-fuzz-elf.XXXXXX");
			tried++;
		}
		*off = save_off;
		*size = save_size;
	}
	ASSERT_TRUE(tried > 0);
out:
	free(img);
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
	RUN_TEST(test_hostile_headers);
	return test__finish();
}
