// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for user/cgroup.c.
 *
 * Parsing, naming and the v2 watcher run against fake cgroupfs-shaped
 * trees under a private mkdtemp() directory.  The v1 watcher is tested
 * for real, but only inside a child cgroup created below the memory
 * cgroup this test already runs in, which is removed again at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "cgroup.h"

#define ID64	"3f2a9c0b1d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a"
#define ID12	"3f2a9c0b1d4e"
#define UID	"1234abcd-ef01-2345-6789-abcdef012345"
#define UID_	"1234abcd_ef01_2345_6789_abcdef012345"
#define MiB	(1024ULL * 1024)

static char base[64];	/* mkdtemp() root for all fake trees */

/* ---- helpers ------------------------------------------------------ */

static bool put(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	ssize_t len = strlen(text);
	bool ok;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return false;
	ok = write(fd, text, len) == len;
	return !close(fd) && ok;
}

static bool get(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* mkdir -p below base; returns the full path in a static buffer. */
static const char *mk(const char *rel)
{
	static char path[PATH_MAX];
	char *p;

	snprintf(path, sizeof(path), "%s/%s", base, rel);
	for (p = path + strlen(base) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	mkdir(path, 0755);
	return path;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void fake_v2(const char *dir, const char *ctrl, const char *cur,
		    const char *high, const char *max)
{
	put(dir, "cgroup.controllers", ctrl);
	put(dir, "memory.current", cur);
	put(dir, "memory.high", high);
	put(dir, "memory.max", max);
	put(dir, "memory.events",
	    "low 0\nhigh 3\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n");
	put(dir, "memory.stat", "anon 4096\nfile 8192\n");
}

static void fake_v1(const char *dir, const char *usage, const char *limit,
		    const char *soft, const char *hier)
{
	put(dir, "memory.usage_in_bytes", usage);
	put(dir, "memory.limit_in_bytes", limit);
	put(dir, "memory.soft_limit_in_bytes", soft);
	put(dir, "memory.use_hierarchy", hier);
	put(dir, "memory.failcnt", "5\n");
	put(dir, "memory.oom_control",
	    "oom_kill_disable 0\nunder_oom 1\noom_kill 4\n");
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLPRI };

	return poll(&p, 1, ms) == 1 && (p.revents & (POLLIN | POLLPRI));
}

/* ---- naming ------------------------------------------------------- */

static void name_is(const char *path, const char *want)
{
	char buf[128];

	ASSERT_STREQ(cg__name_from_path(path, buf, sizeof(buf)), want);
}

static void test_name_docker(void)
{
	name_is("/docker/" ID64, "docker:" ID12);
	name_is("/system.slice/docker-" ID64 ".scope", "docker:" ID12);
	/* sub-cgroups made inside the container still name it */
	name_is("/docker/" ID64 "/init.scope", "docker:" ID12);
	/* the daemon itself is a plain systemd unit */
	name_is("/system.slice/docker.service", "docker.service");
}

static void test_name_k8s(void)
{
	name_is("/kubepods/burstable/pod" UID "/" ID64,
		"k8s:pod1234abcd/" ID12);
	name_is("/kubepods/pod" UID "/" ID64, "k8s:pod1234abcd/" ID12);
	name_is("/kubepods.slice/kubepods-burstable.slice/"
		"kubepods-burstable-pod" UID_ ".slice/cri-containerd-" ID64
		".scope", "k8s:pod1234abcd/" ID12);
	name_is("/kubepods.slice/kubepods-besteffort.slice/"
		"kubepods-besteffort-pod" UID_ ".slice/crio-" ID64 ".scope",
		"k8s:pod1234abcd/" ID12);
	name_is("/kubepods.slice/kubepods-pod" UID_ ".slice/docker-" ID64
		".scope", "k8s:pod1234abcd/" ID12);
	name_is("/kubepods.slice/kubepods-burstable.slice/"
		"kubepods-burstable-pod" UID_ ".slice", "k8s:pod1234abcd");
	/* QoS level without a pod: fall back to the leaf */
	name_is("/kubepods/burstable", "burstable");
}

static void test_name_containerd_podman(void)
{
	name_is("/default/" ID64, "containerd:" ID12);
	name_is("/system.slice/cri-containerd-" ID64 ".scope",
		"containerd:" ID12);
	name_is("/system.slice/crio-" ID64 ".scope", "crio:" ID12);
	name_is("/machine.slice/libpod-" ID64 ".scope", "podman:" ID12);
	name_is("/machine.slice/libpod-conmon-" ID64 ".scope", "podman:" ID12);
	name_is("/user.slice/user-1000.slice/user@1000.service/user.slice/"
		"libpod-" ID64 ".scope/container", "podman:" ID12);
	name_is("/libpod_parent/libpod-" ID64, "podman:" ID12);
}

static void test_name_systemd_fallback(void)
{
	char small[8];

	name_is("/system.slice/nginx.service", "nginx.service");
	name_is("/user.slice/user-1000.slice/session-3.scope",
		"session-3.scope");
	name_is("/user.slice", "user.slice");
	name_is("/process_api/c6967f76", "c6967f76");
	name_is("/a/b/", "b");
	name_is("/docker-compose.scope", "docker-compose.scope");
	name_is("/", "/");
	name_is("", "/");
	name_is(NULL, "/");
	/* truncated, but always terminated */
	ASSERT_STREQ(cg__name_from_path("/docker/" ID64, small, sizeof(small)),
		     "docker:");
}

/* ---- limits from fake trees --------------------------------------- */

static void test_limits_v2_fake(void)
{
	struct cg_limits l;
	const char *d;

	d = mk("v2/root");
	put(d, "cgroup.controllers", "cpu memory pids\n");
	put(d, "memory.stat", "anon 0\n");
	fake_v2(mk("v2/root/a"), "memory\n", "2097152\n", "max\n",
		"1073741824\n");
	fake_v2(mk("v2/root/a/b"), "memory\n", "4096\n", "max\n", "max\n");
	fake_v2(mk("v2/root/a/c"), "memory\n", "4096\n", "268435456\n",
		"max\n");
	fake_v2(mk("v2/root/n"), "memory\n", "4096\n", "max\n", "max\n");
	fake_v2(mk("v2/root/n/m"), "memory\n", "4096\n", "max\n", "max\n");

	ASSERT_EQ(cg__limits_dir(2, mk("v2/root/a"), &l), 0);
	ASSERT_EQ(l.version, 2);
	ASSERT_EQ(l.usage, 2 * MiB);
	ASSERT_TRUE(l.high == CG_UNLIMITED);
	ASSERT_EQ(l.max, 1024 * MiB);
	ASSERT_TRUE(l.soft == CG_UNLIMITED);
	ASSERT_EQ(l.effective, 1024 * MiB);
	ASSERT_EQ(l.events_high, 3);
	ASSERT_EQ(l.events_max, 2);
	ASSERT_EQ(l.events_oom, 1);
	ASSERT_EQ(l.events_oom_kill, 1);
	ASSERT_STREQ(l.name, "a");
	ASSERT_STREQ(l.path, "");

	/* no limit of its own: the parent's applies */
	ASSERT_EQ(cg__limits_dir(2, mk("v2/root/a/b"), &l), 0);
	ASSERT_TRUE(l.max == CG_UNLIMITED);
	ASSERT_EQ(l.effective, 1024 * MiB);

	/* memory.high below the ancestors' max wins */
	ASSERT_EQ(cg__limits_dir(2, mk("v2/root/a/c"), &l), 0);
	ASSERT_EQ(l.high, 256 * MiB);
	ASSERT_EQ(l.effective, 256 * MiB);

	/* no limit anywhere up the chain */
	ASSERT_EQ(cg__limits_dir(2, mk("v2/root/n/m"), &l), 0);
	ASSERT_TRUE(l.max == CG_UNLIMITED);
	ASSERT_TRUE(l.high == CG_UNLIMITED);
	ASSERT_TRUE(l.effective == CG_UNLIMITED);

	/* root cgroup: no memory.current/max, still readable */
	ASSERT_EQ(cg__limits_dir(2, mk("v2/root"), &l), 0);
	ASSERT_EQ(l.usage, 0);
	ASSERT_TRUE(l.effective == CG_UNLIMITED);

	ASSERT_EQ(cg__limits_dir(2, mk("v2/none"), &l), -ENOENT);
	ASSERT_EQ(l.version, 0);
	ASSERT_EQ(cg__limits_dir(3, mk("v2/root/a"), &l), -EINVAL);
}

static void test_limits_v1_fake(void)
{
	struct cg_limits l;

	/* 0x7ffffffffffff000 is how v1 spells "unlimited" */
	fake_v1(mk("v1"), "1048576\n", "9223372036854771712\n",
		"9223372036854771712\n", "1\n");
	fake_v1(mk("v1/x"), "65536\n", "67108864\n", "33554432\n", "1\n");
	fake_v1(mk("v1/x/y"), "4096\n", "9223372036854771712\n",
		"9223372036854771712\n", "1\n");
	fake_v1(mk("v1/flat"), "0\n", "16777216\n", "9223372036854771712\n",
		"0\n");
	fake_v1(mk("v1/flat/q"), "0\n", "9223372036854771712\n",
		"9223372036854771712\n", "0\n");

	ASSERT_EQ(cg__limits_dir(1, mk("v1"), &l), 0);
	ASSERT_EQ(l.version, 1);
	ASSERT_TRUE(l.max == CG_UNLIMITED);
	ASSERT_TRUE(l.soft == CG_UNLIMITED);
	ASSERT_TRUE(l.effective == CG_UNLIMITED);

	ASSERT_EQ(cg__limits_dir(1, mk("v1/x"), &l), 0);
	ASSERT_EQ(l.usage, 65536);
	ASSERT_EQ(l.max, 64 * MiB);
	ASSERT_EQ(l.soft, 32 * MiB);
	ASSERT_TRUE(l.high == CG_UNLIMITED);
	ASSERT_EQ(l.effective, 64 * MiB);
	ASSERT_EQ(l.events_max, 5);
	ASSERT_EQ(l.events_oom, 1);
	ASSERT_EQ(l.events_oom_kill, 4);
	ASSERT_EQ(l.events_high, 0);

	ASSERT_EQ(cg__limits_dir(1, mk("v1/x/y"), &l), 0);
	ASSERT_TRUE(l.max == CG_UNLIMITED);
	ASSERT_EQ(l.effective, 64 * MiB);

	/* parent without use_hierarchy does not limit its children */
	ASSERT_EQ(cg__limits_dir(1, mk("v1/flat/q"), &l), 0);
	ASSERT_TRUE(l.effective == CG_UNLIMITED);
}

static void test_read_stat(void)
{
	char buf[64], small[8];
	const char *d = mk("stat");

	put(d, "memory.stat", "cache 4096\nrss 8192\n");
	ASSERT_EQ(cg__read_stat(d, buf, sizeof(buf)), 20);
	ASSERT_STREQ(buf, "cache 4096\nrss 8192\n");
	ASSERT_EQ(cg__read_stat(d, small, sizeof(small)), -ENOBUFS);
	ASSERT_STREQ(small, "cache 4");
	ASSERT_EQ(cg__read_stat(mk("stat/none"), buf, sizeof(buf)), -ENOENT);
}

/* ---- discovery from fake mountinfo + /proc/PID/cgroup ------------- */

static bool mountinfo(const char *name, const char *lines)
{
	return put(base, name, lines);
}

/* Two calls may feed one function call, so rotate two buffers. */
static const char *at(const char *name)
{
	static char path[2][PATH_MAX];
	static int i;

	i ^= 1;
	snprintf(path[i], sizeof(path[i]), "%s/%s", base, name);
	return path[i];
}

static void test_discover_hybrid_v1(void)
{
	char mi[4096], want[PATH_MAX];
	struct cg_limits l;

	fake_v1(mk("mnt/v1mem"), "0\n", "9223372036854771712\n",
		"9223372036854771712\n", "1\n");
	fake_v1(mk("mnt/v1mem/docker"), "0\n", "9223372036854771712\n",
		"9223372036854771712\n", "1\n");
	fake_v1(mk("mnt/v1mem/docker/" ID64), "1024\n", "67108864\n",
		"9223372036854771712\n", "1\n");
	put(mk("mnt/unified"), "cgroup.controllers", "hugetlb\n");
	snprintf(mi, sizeof(mi),
		 "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw\n"
		 "32 31 0:29 / %s/mnt/cpu rw,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct\n"
		 "35 31 0:32 / %s/mnt/v1mem rw,relatime shared:9 - cgroup cgroup rw,memory\n"
		 "41 31 0:38 / %s/mnt/unified rw,relatime - cgroup2 cgroup2 rw\n",
		 base, base, base);
	mountinfo("mi-hybrid", mi);
	put(base, "pc-docker", "5:cpu,cpuacct:/docker/" ID64 "\n"
	    "4:memory:/docker/" ID64 "\n1:name=systemd:/docker/" ID64 "\n"
	    "0::/docker/" ID64 "\n");

	ASSERT_EQ(cg__limits_at(at("mi-hybrid"), at("pc-docker"), &l), 0);
	ASSERT_EQ(l.version, 1);
	ASSERT_STREQ(l.path, "/docker/" ID64);
	snprintf(want, sizeof(want), "%s/mnt/v1mem/docker/" ID64, base);
	ASSERT_STREQ(l.dir, want);
	ASSERT_STREQ(l.name, "docker:" ID12);
	ASSERT_EQ(l.max, 64 * MiB);
	ASSERT_EQ(l.usage, 1024);

	/* explicit root: our real cgroup path is not in the fake tree */
	ASSERT_EQ(cg__limits(at("mnt/v1mem"), "", 0, &l), 0);
	ASSERT_EQ(l.version, 0);
	ASSERT_EQ(cg__limits_at(at("mi-hybrid"), at("no-such-file"), &l),
		  -ENOENT);
}

static void test_discover_v2(void)
{
	char mi[4096], want[PATH_MAX];
	struct cg_limits l;
	const char *d;

	/* mount point with a space, escaped as \040 in mountinfo */
	d = mk("mnt/v2 sp");
	put(d, "cgroup.controllers", "cpu io memory pids\n");
	put(d, "memory.stat", "anon 0\n");
	put(mk("mnt/v2 sp/system.slice"), "cgroup.controllers", "memory\n");
	fake_v2(mk("mnt/v2 sp/system.slice/nginx.service"), "cpu memory\n",
		"8192\n", "max\n", "134217728\n");
	/* memory not enabled below nginx.service: charged to the unit */
	put(mk("mnt/v2 sp/system.slice/nginx.service/worker"),
	    "cgroup.controllers", "cpu\n");
	snprintf(mi, sizeof(mi),
		 "41 31 0:38 / %s/mnt/v2\\040sp rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
		 base);
	mountinfo("mi-v2", mi);
	/* a stale v1 memory line without a v1 mount must not matter */
	put(base, "pc-nginx", "4:memory:/system.slice/nginx.service\n"
	    "0::/system.slice/nginx.service\n");
	put(base, "pc-worker", "0::/system.slice/nginx.service/worker\n");

	ASSERT_EQ(cg__limits_at(at("mi-v2"), at("pc-nginx"), &l), 0);
	ASSERT_EQ(l.version, 2);
	snprintf(want, sizeof(want), "%s/mnt/v2 sp/system.slice/nginx.service",
		 base);
	ASSERT_STREQ(l.dir, want);
	ASSERT_STREQ(l.name, "nginx.service");
	ASSERT_EQ(l.max, 128 * MiB);
	ASSERT_EQ(l.effective, 128 * MiB);
	ASSERT_EQ(l.usage, 8192);

	ASSERT_EQ(cg__limits_at(at("mi-v2"), at("pc-worker"), &l), 0);
	ASSERT_EQ(l.version, 2);
	ASSERT_STREQ(l.dir, want);
	ASSERT_STREQ(l.path, "/system.slice/nginx.service/worker");
}

static void test_discover_none_and_ns(void)
{
	char mi[4096], want[PATH_MAX];
	struct cg_limits l;

	/* v2 only, memory controller not available at all */
	put(mk("mnt/nomem"), "cgroup.controllers", "cpu pids\n");
	put(mk("mnt/nomem/app"), "cgroup.controllers", "cpu\n");
	snprintf(mi, sizeof(mi),
		 "41 31 0:38 / %s/mnt/nomem rw - cgroup2 cgroup2 rw\n", base);
	mountinfo("mi-nomem", mi);
	put(base, "pc-app", "0::/app\n");
	ASSERT_EQ(cg__limits_at(at("mi-nomem"), at("pc-app"), &l), 0);
	ASSERT_EQ(l.version, 0);
	ASSERT_TRUE(l.effective == CG_UNLIMITED);
	ASSERT_STREQ(l.name, "app");
	ASSERT_STREQ(l.dir, "");

	/*
	 * A mount whose root is a sub-cgroup (bind mount, or a mount done
	 * outside our namespace): strip the root from the path.
	 */
	put(mk("mnt/ns"), "cgroup.controllers", "memory\n");
	fake_v2(mk("mnt/ns/app"), "memory\n", "4096\n", "max\n", "max\n");
	snprintf(mi, sizeof(mi),
		 "50 31 0:38 /docker/" ID64 " %s/mnt/ns rw - cgroup2 cgroup2 rw\n",
		 base);
	mountinfo("mi-ns", mi);
	put(base, "pc-ns", "0::/docker/" ID64 "/app\n");
	put(base, "pc-out", "0::/other\n");
	put(base, "pc-up", "0::/../../system.slice\n");
	ASSERT_EQ(cg__limits_at(at("mi-ns"), at("pc-ns"), &l), 0);
	ASSERT_EQ(l.version, 2);
	snprintf(want, sizeof(want), "%s/mnt/ns/app", base);
	ASSERT_STREQ(l.dir, want);
	ASSERT_STREQ(l.name, "docker:" ID12);
	ASSERT_EQ(cg__limits_at(at("mi-ns"), at("pc-out"), &l), 0);
	ASSERT_EQ(l.version, 0);
	ASSERT_EQ(cg__limits_at(at("mi-ns"), at("pc-up"), &l), 0);
	ASSERT_EQ(l.version, 0);
}

/* ---- v2 watcher against a fake tree ------------------------------- */

static void test_watch_v2_fake(void)
{
	struct cg_watch *w = NULL;
	struct cg_limits l;
	char buf[64];
	const char *d;
	int fd;

	d = mk("watch/cg");
	fake_v2(d, "memory\n", "1000\n", "max\n", "max\n");
	/* a plain file: the PSI trigger must be skipped, not written */
	put(d, "memory.pressure", "");
	if (!ASSERT_EQ(cg__limits_dir(2, d, &l), 0))
		return;
	if (!ASSERT_EQ(cg_watch__new(&l, 4096, &w), 0))
		return;
	ASSERT_EQ(cg_watch__sources(w), CG_WATCH_INOTIFY);
	fd = cg_watch__fd(w);
	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(!readable(fd, 0));

	/* an event below the threshold wakes us, consume says "not yet" */
	put(d, "memory.events", "low 0\nhigh 4\nmax 2\noom 1\noom_kill 1\n");
	ASSERT_TRUE(readable(fd, 1000));
	ASSERT_EQ(cg_watch__consume(w), 0);
	ASSERT_TRUE(!readable(fd, 0));

	/* usage alone is not watched on v2; the next event reports it */
	put(d, "memory.current", "8192\n");
	ASSERT_TRUE(!readable(fd, 0));
	put(d, "memory.events", "low 0\nhigh 5\nmax 2\noom 1\noom_kill 1\n");
	ASSERT_TRUE(readable(fd, 1000));
	ASSERT_EQ(cg_watch__consume(w), 1);
	ASSERT_TRUE(!readable(fd, 0));
	ASSERT_TRUE(get(d, "memory.pressure", buf, sizeof(buf)));
	ASSERT_STREQ(buf, "");
	cg_watch__free(w);
	w = NULL;

	/*
	 * A real PSI file takes the trigger.  No v2 memcg can be created
	 * here, so borrow the system-wide one, which has the same syntax
	 * and goes away with the fd.
	 */
	d = mk("watch/psi");
	fake_v2(d, "memory\n", "1000\n", "max\n", "max\n");
	if (!access("/proc/pressure/memory", W_OK) &&
	    !symlinkat("/proc/pressure/memory", AT_FDCWD,
		       at("watch/psi/memory.pressure"))) {
		ASSERT_EQ(cg__limits_dir(2, d, &l), 0);
		if (ASSERT_EQ(cg_watch__new(&l, 4096, &w), 0)) {
			ASSERT_EQ(cg_watch__sources(w),
				  CG_WATCH_INOTIFY | CG_WATCH_PSI);
			ASSERT_EQ(cg_watch__consume(w), 0);
		}
		cg_watch__free(w);
		w = NULL;
	} else {
		printf("# skip PSI: /proc/pressure/memory not writable\n");
	}

	/* bad input */
	ASSERT_EQ(cg_watch__new(&l, 0, &w), -EINVAL);
	l.version = 0;
	ASSERT_EQ(cg_watch__new(&l, 4096, &w), -EINVAL);
	ASSERT_EQ(cg__limits_dir(2, mk("watch/psi"), &l), 0);
	snprintf(l.dir, sizeof(l.dir), "%s", mk("watch/none"));
	ASSERT_EQ(cg_watch__new(&l, 4096, &w), -ENOENT);
	ASSERT_TRUE(w == NULL);
	cg_watch__free(NULL);
}

/* ---- real cgroup v1 ----------------------------------------------- */

#define V1_MOUNT	"/sys/fs/cgroup/memory"

/* Our own memory cgroup directory, from the "memory" line. */
static bool own_v1_memcg(char *dir, size_t len)
{
	char line[1024], path[PATH_MAX];
	bool found = false;
	FILE *fp;

	fp = fopen("/proc/self/cgroup", "re");
	if (!fp)
		return false;
	while (!found && fgets(line, sizeof(line), fp)) {
		char *ctrl = strchr(line, ':'), *p;

		if (!ctrl || !(p = strchr(++ctrl, ':')))
			continue;
		*p++ = '\0';
		p[strcspn(p, "\n")] = '\0';
		if (!strcmp(ctrl, "memory")) {
			snprintf(dir, len, "%s%s", V1_MOUNT,
				 strcmp(p, "/") ? p : "");
			found = true;
		}
	}
	fclose(fp);
	if (!found || snprintf(path, sizeof(path), "%s/cgroup.event_control",
			       dir) >= (int)sizeof(path))
		return false;
	return !access(path, W_OK);
}

static bool move_to(const char *dir, pid_t pid)
{
	char num[32];

	snprintf(num, sizeof(num), "%d\n", pid);
	return put(dir, "cgroup.procs", num);
}

/* Send every task left in @dir back to @home (only after a failure). */
static void evacuate(const char *dir, const char *home)
{
	char buf[4096], *p, *save;

	if (!get(dir, "cgroup.procs", buf, sizeof(buf)))
		return;
	for (p = strtok_r(buf, "\n", &save); p; p = strtok_r(NULL, "\n", &save))
		move_to(home, atoi(p));
}

static bool rmdir_retry(const char *dir)
{
	int i;

	/* A just-reaped task can keep a v1 cgroup busy for a moment. */
	for (i = 0; i < 50; i++) {
		if (!rmdir(dir) || errno == ENOENT)
			return true;
		usleep(20000);
	}
	return false;
}

static void child_main(int go, int done)
{
	size_t len = 16 * MiB;
	char c;
	char *p;

	if (read(go, &c, 1) != 1)
		_exit(1);
	p = malloc(len);
	if (!p)
		_exit(1);
	memset(p, 0xa5, len);
	/* Keep the compiler from dropping a buffer nobody reads. */
	__asm__ volatile("" : : "r"(p) : "memory");
	if (write(done, "x", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static void test_v1_real(void)
{
	char own[1024], tdir[2048], ndir[PATH_MAX];
	int go[2] = { -1, -1 }, done[2] = { -1, -1 };
	struct cg_limits ownl, l;
	struct cg_watch *w = NULL;
	bool made_t = false, made_n = false;
	uint64_t want_eff;
	pid_t child = -1;
	char c;

	if (geteuid() || !own_v1_memcg(own, sizeof(own))) {
		printf("# skip v1: no writable v1 memory cgroup\n");
		return;
	}
	snprintf(tdir, sizeof(tdir), "%s/mt-test-%d", own, getpid());
	snprintf(ndir, sizeof(ndir), "%s/nested", tdir);
	if (!ASSERT_EQ(cg__limits_dir(1, own, &ownl), 0))
		return;

	/* our own cgroup, found through mountinfo + /proc/self/cgroup */
	ASSERT_EQ(cg__limits(NULL, NULL, 0, &l), 0);
	ASSERT_EQ(l.version, 1);
	ASSERT_STREQ(l.dir, own);

	if (!ASSERT_EQ(mkdir(tdir, 0755), 0))
		goto out;
	made_t = true;
	if (!ASSERT_EQ(mkdir(ndir, 0755), 0))
		goto out;
	made_n = true;

	/* fresh cgroup: no limit of its own, inherits ours */
	ASSERT_EQ(cg__limits_dir(1, tdir, &l), 0);
	ASSERT_TRUE(l.max == CG_UNLIMITED);
	ASSERT_TRUE(l.effective == ownl.effective);

	if (!ASSERT_TRUE(put(tdir, "memory.limit_in_bytes", "67108864")))
		goto out;
	want_eff = ownl.effective < 64 * MiB ? ownl.effective : 64 * MiB;
	ASSERT_EQ(cg__limits_dir(1, tdir, &l), 0);
	ASSERT_EQ(l.version, 1);
	ASSERT_EQ(l.max, 64 * MiB);
	ASSERT_EQ(l.effective, want_eff);

	/* nested cgroup without a limit: the parent's 64M applies */
	ASSERT_EQ(cg__limits_dir(1, ndir, &l), 0);
	ASSERT_TRUE(l.max == CG_UNLIMITED);
	ASSERT_EQ(l.effective, want_eff);

	ASSERT_EQ(cg__limits_dir(1, tdir, &l), 0);
	if (!ASSERT_EQ(cg_watch__new(&l, 8 * MiB, &w), 0))
		goto out;
	ASSERT_EQ(cg_watch__sources(w), CG_WATCH_EVENTFD);
	ASSERT_TRUE(!readable(cg_watch__fd(w), 0));

	if (pipe2(go, O_CLOEXEC) || pipe2(done, O_CLOEXEC))
		goto out;
	child = fork();
	if (!child) {
		close(go[1]);
		close(done[0]);
		child_main(go[0], done[1]);
	}
	if (!ASSERT_TRUE(child > 0))
		goto out;
	if (!ASSERT_TRUE(move_to(tdir, child)))
		goto out;
	if (!ASSERT_EQ(write(go[1], "g", 1), 1))
		goto out;

	/* the kernel threshold fires while the child touches 16 MiB */
	ASSERT_TRUE(readable(cg_watch__fd(w), 1000));
	ASSERT_EQ(cg_watch__consume(w), 1);
	ASSERT_TRUE(readable(done[0], 2000) && read(done[0], &c, 1) == 1);

	ASSERT_EQ(cg__limits(NULL, NULL, child, &l), 0);
	ASSERT_EQ(l.version, 1);
	ASSERT_STREQ(l.dir, tdir);
	ASSERT_EQ(l.max, 64 * MiB);
	ASSERT_EQ(l.effective, want_eff);
	ASSERT_TRUE(l.usage >= 8 * MiB);
	ASSERT_TRUE(strlen(l.path) > 0 &&
		    !strcmp(l.dir + strlen(V1_MOUNT), l.path));

	ASSERT_TRUE(move_to(ndir, child));
	ASSERT_EQ(cg__limits(NULL, NULL, child, &l), 0);
	ASSERT_STREQ(l.dir, ndir);
	ASSERT_STREQ(l.name, "nested");
	ASSERT_TRUE(l.max == CG_UNLIMITED);
	ASSERT_EQ(l.effective, want_eff);
out:
	cg_watch__free(w);
	if (child > 0) {
		move_to(own, child);
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (made_n) {
		evacuate(ndir, own);
		ASSERT_TRUE(rmdir_retry(ndir));
	}
	if (made_t) {
		evacuate(tdir, own);
		ASSERT_TRUE(rmdir_retry(tdir));
		ASSERT_TRUE(access(tdir, F_OK) && errno == ENOENT);
	}
	if (go[0] >= 0) {
		close(go[0]);
		close(go[1]);
	}
	if (done[0] >= 0) {
		close(done[0]);
		close(done[1]);
	}
}

int main(void)
{
	int ret;

	snprintf(base, sizeof(base), "/tmp/mt-cgtest-XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	RUN_TEST(test_name_docker);
	RUN_TEST(test_name_k8s);
	RUN_TEST(test_name_containerd_podman);
	RUN_TEST(test_name_systemd_fallback);
	RUN_TEST(test_limits_v2_fake);
	RUN_TEST(test_limits_v1_fake);
	RUN_TEST(test_read_stat);
	RUN_TEST(test_discover_hybrid_v1);
	RUN_TEST(test_discover_v2);
	RUN_TEST(test_discover_none_and_ns);
	RUN_TEST(test_watch_v2_fake);
	RUN_TEST(test_v1_real);
	ret = test__finish();
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return ret;
}
