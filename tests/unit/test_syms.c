// SPDX-License-Identifier: GPL-2.0
/*
 * Symbolizer tests against live fixture processes (see fixtures/).
 *
 * Needs gcc, strip, objcopy and readelf at run time, and root for the
 * chroot and deleted-file (map_files) cases.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <time.h>

#include "test.h"
#include "fixtures/fixture.h"
#include "syms.h"

#define MAXF 16

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static void test_exe_function(void)
{
	struct syms_frame fr[MAXF];
	struct fixture_proc fp;
	char path[128], buf[512];
	struct syms *s;
	int n;

	snprintf(path, sizeof(path), "%s/mtfix", fixture_dir);
	if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp)))
		return;
	s = syms__new();
	ASSERT_TRUE(s);
	n = syms__resolve(s, fp.pid, fp.outer_fn, fr, MAXF);
	ASSERT_EQ(n, 1);
	ASSERT_STREQ(fr[0].func, "outer_fn");
	ASSERT_EQ(fr[0].offset, 0);
	ASSERT_STREQ(base(fr[0].file), "mtfix_main.c");
	ASSERT_EQ(fr[0].line, fp.outer_fn_line);
	ASSERT_STREQ(fr[0].module, "mtfix");
	ASSERT_TRUE(!fr[0].inlined);
	syms__format(&fr[0], buf, sizeof(buf));
	snprintf(path, sizeof(path), "outer_fn+0x0 (mtfix_main.c:%d)",
		 fp.outer_fn_line);
	ASSERT_STREQ(buf, path);

	n = syms__resolve(s, fp.pid, fp.lib_fn, fr, MAXF);
	ASSERT_EQ(n, 1);
	ASSERT_STREQ(fr[0].func, "mtfix_lib_fn");
	ASSERT_EQ(fr[0].offset, 0);
	ASSERT_STREQ(base(fr[0].file), "mtfix_lib.c");
	ASSERT_EQ(fr[0].line, fp.lib_fn_line);
	ASSERT_STREQ(fr[0].module, "libmtfix.so");
	syms__free(s);
	fixture__kill(&fp);
}

/* A return address into inlined code: inline chain with call lines. */
static void check_chain(struct syms *s, struct fixture_proc *fp,
			const uint64_t *ra, const int *line,
			const char *inl, const char *fn, const char *file)
{
	struct syms_frame fr[MAXF];
	char want[256], buf[512];
	int n;

	n = syms__resolve_ret(s, fp->pid, ra[0], fr, MAXF);
	if (!ASSERT_EQ(n, 2))
		return;
	ASSERT_STREQ(fr[0].func, inl);
	ASSERT_TRUE(fr[0].inlined);
	ASSERT_STREQ(base(fr[0].file), file);
	ASSERT_EQ(fr[0].line, line[0]);
	ASSERT_STREQ(fr[1].func, fn);
	ASSERT_TRUE(!fr[1].inlined);
	ASSERT_STREQ(base(fr[1].file), file);
	ASSERT_EQ(fr[1].line, line[1]);
	ASSERT_TRUE(fr[1].offset > 0 && fr[1].offset < 0x100);
	ASSERT_EQ(fr[0].module_offset, fr[1].module_offset);

	syms__format(&fr[0], buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s (%s:%d) [inlined]", inl, file,
		 line[0]);
	ASSERT_STREQ(buf, want);
	syms__format(&fr[1], buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s+0x%" PRIx64 " (%s:%d)", fn,
		 fr[1].offset, file, line[1]);
	ASSERT_STREQ(buf, want);

	/* max smaller than the chain: innermost frames first. */
	n = syms__resolve_ret(s, fp->pid, ra[0], fr, 1);
	ASSERT_EQ(n, 1);
	ASSERT_STREQ(fr[0].func, inl);

	n = syms__resolve_ret(s, fp->pid, ra[1], fr, MAXF);
	ASSERT_EQ(n, 1);
	ASSERT_STREQ(fr[0].func, "main");
	ASSERT_STREQ(base(fr[0].file), "mtfix_main.c");
	ASSERT_EQ(fr[0].line, line[2]);
}

static void test_inline_chain(void)
{
	struct fixture_proc fp;
	char path[128];
	struct syms *s;

	snprintf(path, sizeof(path), "%s/mtfix", fixture_dir);
	if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp)))
		return;
	s = syms__new();
	check_chain(s, &fp, fp.exe_ra, fp.exe_line, "inl_helper", "outer_fn",
		    "mtfix_main.c");
	check_chain(s, &fp, fp.lib_ra, fp.lib_line, "lib_inl",
		    "mtfix_lib_fn", "mtfix_lib.c");
	syms__free(s);
	fixture__kill(&fp);
}

static void test_unknown(void)
{
	struct syms_frame fr[MAXF];
	struct fixture_proc fp;
	char path[128], buf[128];
	struct syms *s;
	int n;

	snprintf(path, sizeof(path), "%s/mtfix", fixture_dir);
	if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp)))
		return;
	s = syms__new();
	n = syms__resolve(s, fp.pid, 0x10, fr, MAXF);
	ASSERT_EQ(n, 1);
	ASSERT_STREQ(fr[0].func, "");
	ASSERT_STREQ(fr[0].module, "");
	syms__format(&fr[0], buf, sizeof(buf));
	ASSERT_STREQ(buf, "[unknown]");

	/* A pid that never existed is not an error either. */
	n = syms__resolve_ret(s, 0x3fffffff, fp.outer_fn, fr, MAXF);
	ASSERT_EQ(n, 1);
	syms__format(&fr[0], buf, sizeof(buf));
	ASSERT_STREQ(buf, "[unknown]");

	ASSERT_EQ(syms__resolve(s, fp.pid, fp.outer_fn, fr, 0), -EINVAL);
	syms__free(s);
	fixture__kill(&fp);
}

/* No symbols, no DWARF: "[module+0xELF_ADDRESS]". */
static void test_stripped(void)
{
	struct syms_frame fr[MAXF], ref[MAXF];
	struct fixture_proc fp;
	char path[128], buf[256], want[256];
	struct syms *s;
	int n;

	/* Reference ELF address from the unstripped twin. */
	snprintf(path, sizeof(path), "%s/mtfix", fixture_dir);
	if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp)))
		return;
	s = syms__new();
	n = syms__resolve_ret(s, fp.pid, fp.exe_ra[0], ref, MAXF);
	ASSERT_EQ(n, 2);
	syms__free(s);
	fixture__kill(&fp);

	/* Fresh syms: the twin shares its build-id and would be reused. */
	snprintf(path, sizeof(path), "%s/mtfix_stripped", fixture_dir);
	if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp)))
		return;
	s = syms__new();
	n = syms__resolve_ret(s, fp.pid, fp.exe_ra[0], fr, MAXF);
	ASSERT_EQ(n, 1);
	ASSERT_STREQ(fr[0].func, "");
	ASSERT_STREQ(fr[0].module, "mtfix_stripped");
	ASSERT_EQ(fr[0].module_offset, ref[0].module_offset);
	syms__format(&fr[0], buf, sizeof(buf));
	snprintf(want, sizeof(want), "[mtfix_stripped+0x%" PRIx64 "]",
		 ref[0].module_offset);
	ASSERT_STREQ(buf, want);
	/* The library next to it is not stripped. */
	n = syms__resolve(s, fp.pid, fp.lib_fn, fr, MAXF);
	ASSERT_STREQ(fr[0].func, "mtfix_lib_fn");
	syms__free(s);
	fixture__kill(&fp);
}

/* The mapped file is gone: map_files still reaches it. */
static void test_deleted(void)
{
	struct syms_frame fr[MAXF];
	struct fixture_proc fp;
	char path[128];
	struct syms *s;
	int n;

	if (geteuid()) {
		printf("skip test_deleted: map_files needs root\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/mtfix_del", fixture_dir);
	if (!ASSERT_TRUE(!fixture__sh("cp %s/mtfix %s", fixture_dir, path)))
		return;
	if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp)))
		return;
	unlink(path);
	s = syms__new();
	n = syms__resolve_ret(s, fp.pid, fp.exe_ra[0], fr, MAXF);
	ASSERT_EQ(n, 2);
	ASSERT_STREQ(fr[0].func, "inl_helper");
	ASSERT_EQ(fr[0].line, fp.exe_line[0]);
	ASSERT_STREQ(fr[1].module, "mtfix_del");
	syms__free(s);
	fixture__kill(&fp);
}

/*
 * A chrooted process: its paths only make sense under /proc/PID/root,
 * and its binary's DWARF is in a separate file under the chroot's own
 * /usr/lib/debug/.build-id/.
 */
static void test_chroot_debug_file(void)
{
	struct syms_frame fr[MAXF];
	struct fixture_proc fp;
	char root[128];
	const char *d = fixture_dir;
	struct syms *s;
	int n;

	if (geteuid()) {
		printf("skip test_chroot_debug_file: chroot needs root\n");
		return;
	}
	snprintf(root, sizeof(root), "%s/root", d);
	if (!ASSERT_TRUE(!fixture__sh(
		"set -e; r=%s; mkdir -p $r; "
		"interp=$(readelf -l %s/mtfix | "
		"  sed -n 's/.*interpreter: \\(.*\\)]/\\1/p'); "
		"mkdir -p $r$(dirname $interp); cp -L $interp $r$interp; "
		"mkdir -p $r/lib; "
		"cp -L $(gcc -print-file-name=libc.so.6) $r/lib/libc.so.6; "
		"cp %s/libmtfix.so $r/lib/; "
		"objcopy --only-keep-debug %s/mtfix %s/mtfix.debug; "
		"strip -g -o $r/mtfix %s/mtfix; "
		"id=$(readelf -n %s/mtfix | sed -n 's/.*Build ID: //p'); "
		"dir=$r/usr/lib/debug/.build-id/$(echo $id | cut -c1-2); "
		"mkdir -p $dir; "
		"cp %s/mtfix.debug $dir/$(echo $id | cut -c3-).debug",
		root, d, d, d, d, d, d, d)))
		return;
	if (!ASSERT_TRUE(!fixture__spawn("/mtfix", root, &fp)))
		return;
	s = syms__new();
	n = syms__resolve_ret(s, fp.pid, fp.exe_ra[0], fr, MAXF);
	ASSERT_EQ(n, 2);
	ASSERT_STREQ(fr[0].func, "inl_helper");
	ASSERT_EQ(fr[0].line, fp.exe_line[0]);
	ASSERT_STREQ(fr[1].func, "outer_fn");
	ASSERT_EQ(fr[1].line, fp.exe_line[1]);
	ASSERT_STREQ(base(fr[1].file), "mtfix_main.c");
	ASSERT_STREQ(fr[1].module, "mtfix");
	/* libmtfix.so and libc.so.6 also come from the chroot. */
	n = syms__resolve(s, fp.pid, fp.lib_fn, fr, MAXF);
	ASSERT_STREQ(fr[0].func, "mtfix_lib_fn");
	syms__free(s);
	fixture__kill(&fp);
}

/* .gnu_debuglink to a file in .debug/ next to the binary. */
static void test_debuglink(void)
{
	struct syms_frame fr[MAXF];
	struct fixture_proc fp;
	const char *d = fixture_dir;
	char path[128];
	struct syms *s;
	int n;

	snprintf(path, sizeof(path), "%s/mtfix_dl", d);
	if (!ASSERT_TRUE(!fixture__sh(
		"set -e; cd %s; "
		"objcopy --only-keep-debug mtfix mtfix_dl.debug; "
		"objcopy --strip-debug --add-gnu-debuglink=mtfix_dl.debug "
		"mtfix mtfix_dl; mkdir -p .debug; mv mtfix_dl.debug .debug/",
		d)))
		return;
	if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp)))
		return;
	s = syms__new();
	n = syms__resolve_ret(s, fp.pid, fp.exe_ra[0], fr, MAXF);
	ASSERT_EQ(n, 2);
	ASSERT_STREQ(fr[0].func, "inl_helper");
	ASSERT_EQ(fr[1].line, fp.exe_line[1]);
	syms__free(s);
	fixture__kill(&fp);
}

/* Many processes of one binary share the loaded objects. */
static void test_shared_objects(void)
{
	struct fixture_proc fp[3];
	struct syms_frame fr[MAXF];
	char path[128];
	struct syms *s;
	int i, first = 0;

	snprintf(path, sizeof(path), "%s/mtfix", fixture_dir);
	s = syms__new();
	for (i = 0; i < 3; i++) {
		if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp[i])))
			break;
		syms__resolve_ret(s, fp[i].pid, fp[i].exe_ra[0], fr, MAXF);
		ASSERT_STREQ(fr[1].func, "outer_fn");
		if (!i)
			first = syms__nr_objects(s);
	}
	/* mtfix, libmtfix.so, libc, ld.so at least, never per process. */
	ASSERT_TRUE(first >= 4);
	ASSERT_EQ(syms__nr_objects(s), first);
	for (i = 0; i < 3; i++) {
		syms__forget_pid(s, fp[i].pid);
		fixture__kill(&fp[i]);
	}
	ASSERT_EQ(syms__nr_objects(s), 0);
	syms__free(s);
}

/* Stacks of an exited process still symbolize until forgotten. */
static void test_exited(void)
{
	struct syms_frame fr[MAXF];
	struct fixture_proc fp;
	char path[128], buf[128];
	struct syms *s;
	int n, pid;

	snprintf(path, sizeof(path), "%s/mtfix", fixture_dir);
	if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp)))
		return;
	s = syms__new();
	ASSERT_EQ(syms__load_pid(s, fp.pid, NULL), 0);
	pid = fp.pid;
	fixture__kill(&fp);
	n = syms__resolve_ret(s, pid, fp.lib_ra[0], fr, MAXF);
	ASSERT_EQ(n, 2);
	ASSERT_STREQ(fr[0].func, "lib_inl");
	ASSERT_EQ(fr[1].line, fp.lib_line[1]);
	syms__forget_pid(s, pid);
	n = syms__resolve_ret(s, pid, fp.lib_ra[0], fr, MAXF);
	ASSERT_EQ(n, 1);
	syms__format(&fr[0], buf, sizeof(buf));
	ASSERT_STREQ(buf, "[unknown]");
	syms__free(s);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * An EXEC record handled after the process is gone (a backlog in the
 * ring): mappings read since that exec are the new image's and must
 * stay; mappings read before a later exec are dropped.
 */
static void test_exec_record_late(void)
{
	struct syms_frame fr[MAXF];
	struct fixture_proc fp;
	char path[128], buf[128];
	uint64_t exec_gen, read_after;
	struct syms *s;
	int n, pid;

	snprintf(path, sizeof(path), "%s/mtfix", fixture_dir);
	exec_gen = mono_ns();		/* the fixture execs after this */
	if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp)))
		return;
	s = syms__new();
	ASSERT_EQ(syms__load_pid(s, fp.pid, NULL), 0);	/* a refresh */
	read_after = mono_ns();
	ASSERT_TRUE(syms__has_image(s, fp.pid, exec_gen));
	ASSERT_TRUE(!syms__has_image(s, fp.pid, read_after));
	pid = fp.pid;
	fixture__kill(&fp);
	/* the record comes now: the process cannot be read any more */
	syms__exec(s, pid, exec_gen);
	syms__load_pid(s, pid, NULL);	/* its queued work: fails, gone */
	n = syms__resolve_ret(s, pid, fp.lib_ra[0], fr, MAXF);
	ASSERT_EQ(n, 2);
	ASSERT_STREQ(fr[0].func, "lib_inl");
	/* an exec after the read: what was read is the old image's */
	syms__exec(s, pid, read_after);
	n = syms__resolve_ret(s, pid, fp.lib_ra[0], fr, MAXF);
	ASSERT_EQ(n, 1);
	syms__format(&fr[0], buf, sizeof(buf));
	ASSERT_STREQ(buf, "[unknown]");
	syms__free(s);
}

static void test_mappings(void)
{
	struct syms_mapping maps[64];
	struct fixture_proc fp;
	bool exe = false, lib = false;
	char path[128];
	struct syms *s;
	int i, n;

	snprintf(path, sizeof(path), "%s/mtfix", fixture_dir);
	if (!ASSERT_TRUE(!fixture__spawn(path, NULL, &fp)))
		return;
	s = syms__new();
	n = syms__mappings(s, fp.pid, maps, 64);
	ASSERT_TRUE(n >= 4);
	for (i = 0; i < n; i++) {
		if (maps[i].start <= fp.outer_fn &&
		    fp.outer_fn < maps[i].limit) {
			exe = true;
			ASSERT_STREQ(maps[i].path, path);
			ASSERT_EQ(strlen(maps[i].build_id), 40);
			ASSERT_TRUE(maps[i].file_offset > 0);
		}
		if (maps[i].start <= fp.lib_fn && fp.lib_fn < maps[i].limit)
			lib = !strcmp(base(maps[i].path), "libmtfix.so");
	}
	ASSERT_TRUE(exe);
	ASSERT_TRUE(lib);
	/* Special mappings degrade to "[vdso+0x...]". */
	for (i = 0; i < n; i++) {
		struct syms_frame fr[MAXF];
		char buf[128];

		if (strcmp(maps[i].path, "[vdso]"))
			continue;
		ASSERT_EQ(syms__resolve(s, fp.pid, maps[i].start + 0x10, fr,
					MAXF), 1);
		syms__format(&fr[0], buf, sizeof(buf));
		ASSERT_STREQ(buf, "[vdso+0x10]");
	}
	ASSERT_EQ(syms__mappings(s, fp.pid, maps, 1), 1);
	syms__free(s);
	fixture__kill(&fp);
}

static void test_format(void)
{
	struct syms_frame f;
	char buf[64];

	memset(&f, 0, sizeof(f));
	syms__format(&f, buf, sizeof(buf));
	ASSERT_STREQ(buf, "[unknown]");
	strcpy(f.module, "libfoo.so");
	f.module_offset = 0x1234;
	syms__format(&f, buf, sizeof(buf));
	ASSERT_STREQ(buf, "[libfoo.so+0x1234]");
	strcpy(f.func, "foo");
	f.offset = 0x1a;
	syms__format(&f, buf, sizeof(buf));
	ASSERT_STREQ(buf, "foo+0x1a");
	strcpy(f.file, "/src/dir/file.c");
	f.line = 42;
	syms__format(&f, buf, sizeof(buf));
	ASSERT_STREQ(buf, "foo+0x1a (file.c:42)");
	syms__format(&f, buf, 4);
	ASSERT_STREQ(buf, "foo");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	RUN_TEST(test_format);
	if (fixture__build()) {
		printf("not ok fixture build\n");
		fixture__cleanup();
		return 1;
	}
	RUN_TEST(test_exe_function);
	RUN_TEST(test_inline_chain);
	RUN_TEST(test_unknown);
	RUN_TEST(test_stripped);
	RUN_TEST(test_deleted);
	RUN_TEST(test_chroot_debug_file);
	RUN_TEST(test_debuglink);
	RUN_TEST(test_shared_objects);
	RUN_TEST(test_exited);
	RUN_TEST(test_exec_record_late);
	RUN_TEST(test_mappings);
	fixture__cleanup();
	return test__finish();
}
