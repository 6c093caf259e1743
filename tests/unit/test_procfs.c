// SPDX-License-Identifier: GPL-2.0
/*
 * procfs parsers on fixture trees laid out like /proc (procfs__set_root),
 * written here into a private mkdtemp() directory: hostile input (paths
 * with spaces, newlines and " (deleted)", a comm holding ") (" and
 * spaces, lines longer than a page, truncated files, a maps file of
 * 100,000 lines); then the real /proc/self against what this process
 * knows of itself (its own function's address, getppid(), its name).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "test.h"
#include "procfs.h"

static char base[64];

static void put(int pid, const char *what, const char *text, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d", base, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%d/%s", base, pid, what);
	f = fopen(path, "w");
	if (!f || fwrite(text, 1, len, f) != len) {
		perror(path);
		exit(2);
	}
	fclose(f);
}

#define PUT(pid, what, text) put(pid, what, text, sizeof(text) - 1)

static void test_maps_hostile(void)
{
	static const char text[] =
		"55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1312 /usr/bin/cat\n"
		"55d0c0a02000-55d0c0a07000 r-xp 00002000 fd:01 1312 /usr/bin/cat\n"
		"55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0 [heap]\n"
		"7f0000000000-7f0000001000 r-xp 00001000 103:02 77                         /tmp/a dir/with  spaces\n"
		"7f0000001000-7f0000002000 r-xp 00000000 00:2a 78                         /tmp/new\\012line.so (deleted)\n"
		"7f0000002000-7f0000003000 rw-p 00000000 00:00 0 \n"
		"7f0000003000-7f0000004000 rwxp 00000000 00:00 0\n"
		"garbage line\n"
		"7f0000004000-7f0000003000 r-xp 00000000 00:00 0 /end/before/start\n"
		"7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]\n"
		"7ffe00000000-7ffe00001000 r-xp 0000";	/* truncated */
	struct procfs_maps *m;
	const struct procfs_map *x;

	PUT(100, "maps", text);
	if (!ASSERT_EQ(procfs__read_maps(100, &m), 0))
		return;
	ASSERT_EQ(m->pid, 100);
	if (!ASSERT_EQ(m->n, 8))
		goto out;
	x = &m->m[1];
	ASSERT_EQ(x->start, 0x55d0c0a02000ULL);
	ASSERT_EQ(x->end, 0x55d0c0a07000ULL);
	ASSERT_EQ(x->pgoff, 0x2000);
	ASSERT_EQ(x->dev, makedev(0xfd, 1));
	ASSERT_EQ(x->ino, 1312);
	ASSERT_STREQ(x->perms, "r-xp");
	ASSERT_STREQ(x->path, "/usr/bin/cat");
	ASSERT_TRUE(procfs__map_is_code_file(x));
	ASSERT_TRUE(!procfs__map_is_code_file(&m->m[0]));
	ASSERT_STREQ(m->m[2].path, "[heap]");
	/* spaces inside the path are the path's; a wide major number */
	ASSERT_STREQ(m->m[3].path, "/tmp/a dir/with  spaces");
	ASSERT_EQ(m->m[3].dev, makedev(0x103, 2));
	ASSERT_TRUE(!m->m[3].deleted);
	/* the kernel's "\012" is the newline; " (deleted)" cut off */
	ASSERT_STREQ(m->m[4].path, "/tmp/new\nline.so");
	ASSERT_TRUE(m->m[4].deleted);
	ASSERT_STREQ(m->m[5].path, "");
	ASSERT_STREQ(m->m[6].path, "");
	ASSERT_TRUE(!procfs__map_is_code_file(&m->m[6]));
	ASSERT_STREQ(m->m[7].path, "[vdso]");
	ASSERT_TRUE(!procfs__map_is_code_file(&m->m[7]));
	/* a reference outlives the first put */
	ASSERT_TRUE(procfs__maps_get(m) == m);
	procfs__maps_put(m);
	ASSERT_STREQ(m->m[1].path, "/usr/bin/cat");
out:
	procfs__maps_put(m);
}

static void test_maps_long_and_huge(void)
{
	size_t n = 100000, len = 0, cap = n * 80 + 8192, i;
	char *text = malloc(cap), longpath[PATH_MAX];
	struct procfs_maps *m;

	/* one path of 4000 bytes: longer than any line buffer of old */
	longpath[0] = '/';
	memset(longpath + 1, 'p', 3999);
	longpath[4000] = '\0';
	len += snprintf(text + len, cap - len,
			"10000-11000 r-xp 00000000 08:01 5 %s\n", longpath);
	for (i = 0; i < n; i++)
		len += snprintf(text + len, cap - len,
				"%zx-%zx r--p 00000000 00:00 0 /lib/x%zu.so\n",
				0x100000 + i * 0x1000, 0x101000 + i * 0x1000,
				i);
	put(101, "maps", text, len);
	if (ASSERT_EQ(procfs__read_maps(101, &m), 0)) {
		ASSERT_EQ(m->n, n + 1);
		ASSERT_STREQ(m->m[0].path, longpath);
		ASSERT_STREQ(m->m[n].path, "/lib/x99999.so");
		ASSERT_EQ(m->m[n].start, 0x100000 + (n - 1) * 0x1000);
		procfs__maps_put(m);
	}
	free(text);
}

static void test_stat_hostile_comm(void)
{
	/* a process may name itself ") S 1 2 (" to fool a naive parser */
	static const char text[] =
		"4242 (a) S 1 (x ) ) R 77 4242 4242 0 -1 4194560 100 0 0 0 "
		"13 17 0 0 20 0 1 0 123456 2000000 300 18446744073709551615 "
		"1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 5000 6000 94000 "
		"140000 140100 140200 140300 0\n";
	struct procfs_stat st;

	PUT(102, "stat", text);
	if (!ASSERT_EQ(procfs__read_stat(102, &st), 0))
		return;
	ASSERT_STREQ(st.comm, "a) S 1 (x ) ");
	ASSERT_EQ(st.state, 'R');
	ASSERT_EQ(st.ppid, 77);
	ASSERT_EQ(st.flags, 4194560);
	ASSERT_EQ(st.utime, 13);
	ASSERT_EQ(st.stime, 17);
	ASSERT_EQ(st.starttime, 123456);
	ASSERT_EQ(st.start_brk, 94000);

	/* truncated before utime: an error, not zeros taken as data */
	PUT(103, "stat", "4243 (cut) S 1 2 3");
	ASSERT_EQ(procfs__read_stat(103, &st), -EINVAL);
	PUT(104, "stat", "4244 no parens S 1 2 3 4 5 6 7 8 9 10 11 12\n");
	ASSERT_EQ(procfs__read_stat(104, &st), -EINVAL);
	/* a gone process */
	ASSERT_EQ(procfs__read_stat(199, &st), -ESRCH);
}

static void test_status_statm_comm(void)
{
	static const char status[] =
		"Name:\tweird: name\n"
		"Umask:\t0022\n"
		"State:\tS (sleeping)\n"
		"Tgid:\t4242\n"
		"Ngid:\t0\n"
		"Pid:\t4243\n"
		"PPid:\t77\n"
		"TracerPid:\t99\n"
		"Uid:\t1000\t1001\t1002\t1003\n"
		"NSpid:\t4243\t12\t1\n"
		"RssAnon:\t    1024 kB\n"
		"RssFile:\t       8 kB\n"
		"RssShmem:\t       0 kB\n"
		"RssAnonX:\t 999 kB\n";
	struct procfs_status s;
	struct procfs_statm sm;
	long page = sysconf(_SC_PAGESIZE);
	char comm[16];

	PUT(105, "status", status);
	if (ASSERT_EQ(procfs__read_status(105, &s), 0)) {
		ASSERT_EQ(s.tgid, 4242);
		ASSERT_EQ(s.ppid, 77);
		ASSERT_EQ(s.tracer_pid, 99);
		ASSERT_EQ(s.uid[0], 1000);
		ASSERT_EQ(s.uid[3], 1003);
		ASSERT_EQ(s.nr_nspid, 3);
		ASSERT_EQ(s.nspid[2], 1);
		ASSERT_EQ(s.rss_anon, 1024 << 10);
		ASSERT_EQ(s.rss_file, 8 << 10);
		ASSERT_EQ(s.rss_shmem, 0);
	}
	/* a kernel thread: no Rss lines, no mm */
	PUT(106, "status", "Name:\tkworker\nTgid:\t2\nPPid:\t0\n");
	if (ASSERT_EQ(procfs__read_status(106, &s), 0)) {
		ASSERT_EQ(s.ppid, 0);
		ASSERT_EQ(s.rss_anon, 0);
		ASSERT_EQ(s.nr_nspid, 0);
	}

	PUT(105, "statm", "1000 200 30 4 0 50 0\n");
	if (ASSERT_EQ(procfs__read_statm(105, &sm), 0)) {
		ASSERT_EQ(sm.size, 1000 * page);
		ASSERT_EQ(sm.resident, 200 * page);
		ASSERT_EQ(sm.shared, 30 * page);
	}
	PUT(106, "statm", "1000");
	ASSERT_EQ(procfs__read_statm(106, &sm), -EINVAL);

	/* comm: the newline goes, a long one is cut and terminated */
	PUT(105, "comm", "a b) c\n");
	ASSERT_EQ(procfs__read_comm(105, comm, sizeof(comm)), 0);
	ASSERT_STREQ(comm, "a b) c");
	/* a name may hold a newline itself: only the kernel's goes */
	PUT(107, "comm", "a\nb\n");
	ASSERT_EQ(procfs__read_comm(107, comm, sizeof(comm)), 0);
	ASSERT_STREQ(comm, "a\nb");
	PUT(106, "comm", "0123456789abcdefXYZ\n");
	ASSERT_EQ(procfs__read_comm(106, comm, 8), 0);
	ASSERT_STREQ(comm, "0123456");
	ASSERT_EQ(procfs__read_comm(199, comm, sizeof(comm)), -ESRCH);
	ASSERT_STREQ(comm, "");
}

static void test_cgroup(void)
{
	static const char text[] =
		"12:cpu,cpuacct:/docker/abc\n"
		"4:memory:/docker/abc:with:colons\n"
		"bad line\n"
		"0::/system.slice/x.service";
	struct procfs_cgroup cg;

	PUT(107, "cgroup", text);
	if (!ASSERT_EQ(procfs__read_cgroup(107, &cg), 0))
		return;
	ASSERT_EQ(cg.n, 3);
	ASSERT_STREQ(cg.text, text);
	ASSERT_STREQ(procfs__cgroup_path(&cg, "memory"),
		     "/docker/abc:with:colons");
	ASSERT_STREQ(procfs__cgroup_path(&cg, "cpuacct"), "/docker/abc");
	ASSERT_STREQ(procfs__cgroup_path(&cg, NULL), "/system.slice/x.service");
	ASSERT_TRUE(!procfs__cgroup_path(&cg, "mem"));
	procfs__cgroup_free(&cg);
	ASSERT_EQ(procfs__read_cgroup(199, &cg), -ESRCH);
}

static void test_paths(void)
{
	struct procfs_map m = { .start = 0x1000, .end = 0x2000 };
	char buf[128];

	ASSERT_EQ(procfs__path(buf, sizeof(buf), 42, "maps"), 0);
	ASSERT_TRUE(!strncmp(buf, base, strlen(base)));
	ASSERT_STREQ(buf + strlen(base), "/42/maps");
	ASSERT_EQ(procfs__map_file(buf, sizeof(buf), 42, &m), 0);
	ASSERT_STREQ(buf + strlen(base), "/42/map_files/1000-2000");
	ASSERT_EQ(procfs__root_file(buf, sizeof(buf), 42, "/usr/lib/x.so"), 0);
	ASSERT_STREQ(buf + strlen(base), "/42/root/usr/lib/x.so");
	ASSERT_EQ(procfs__path(buf, 8, 42, "maps"), -ENAMETOOLONG);
}

static void test_pids(void)
{
	int *pids, n, i, seen = 0;
	char path[128];

	/* "self" and other names are no process */
	snprintf(path, sizeof(path), "%s/self", base);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/12x", base);
	mkdir(path, 0755);
	if (!ASSERT_EQ(procfs__pids(&pids, &n), 0))
		return;
	ASSERT_EQ(n, 8);
	for (i = 0; i < n; i++)
		if (pids[i] >= 100 && pids[i] <= 107)
			seen |= 1 << (pids[i] - 100);
	ASSERT_EQ(seen, 0xff);
	free(pids);
}

/* The real /proc: this process against what it knows of itself. */
static void test_self(void)
{
	uintptr_t here = (uintptr_t)&test_self;
	char exe[PATH_MAX], name[17] = "", comm[32];
	struct procfs_maps *m;
	struct procfs_stat st;
	struct procfs_status s;
	struct stat es;
	int i, found = 0;
	ssize_t n;

	procfs__set_root(NULL);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	stat(exe, &es);
	if (!ASSERT_EQ(procfs__read_maps(getpid(), &m), 0))
		return;
	for (i = 0; i < m->n; i++)
		if (m->m[i].start <= here && here < m->m[i].end) {
			found++;
			ASSERT_STREQ(m->m[i].path, exe);
			ASSERT_TRUE(procfs__map_is_code_file(&m->m[i]));
			ASSERT_EQ(m->m[i].ino, es.st_ino);
			ASSERT_EQ(m->m[i].dev, es.st_dev);
		}
	ASSERT_EQ(found, 1);
	for (i = 1; i < m->n; i++)
		ASSERT_TRUE(m->m[i - 1].start < m->m[i].start);
	procfs__maps_put(m);

	prctl(PR_SET_NAME, "pf) x (y", 0, 0, 0);
	prctl(PR_GET_NAME, name, 0, 0, 0);
	if (ASSERT_EQ(procfs__read_stat(getpid(), &st), 0)) {
		ASSERT_STREQ(st.comm, name);
		ASSERT_EQ(st.ppid, getppid());
		ASSERT_TRUE(st.state == 'R');
		ASSERT_TRUE(st.starttime > 0);
		ASSERT_TRUE(st.start_brk > 0);
	}
	ASSERT_EQ(procfs__read_comm(getpid(), comm, sizeof(comm)), 0);
	ASSERT_STREQ(comm, name);
	if (ASSERT_EQ(procfs__read_status(getpid(), &s), 0)) {
		ASSERT_EQ(s.tgid, getpid());
		ASSERT_EQ(s.ppid, getppid());
		ASSERT_EQ(s.uid[0], (int)getuid());
		ASSERT_TRUE(s.nr_nspid >= 1 && s.nspid[0] == getpid());
		ASSERT_TRUE(s.rss_anon > 0 && s.rss_file > 0);
	}
}

int main(void)
{
	char cmd[128];

	snprintf(base, sizeof(base), "/tmp/mt-procfs-XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 2;
	}
	procfs__set_root(base);
	RUN_TEST(test_maps_hostile);
	RUN_TEST(test_maps_long_and_huge);
	RUN_TEST(test_stat_hostile_comm);
	RUN_TEST(test_status_statm_comm);
	RUN_TEST(test_cgroup);
	RUN_TEST(test_paths);
	RUN_TEST(test_pids);
	RUN_TEST(test_self);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", base);
	return test__finish();
}
