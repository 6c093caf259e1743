// SPDX-License-Identifier: GPL-2.0
/*
 * Memory cgroup discovery, limits and threshold notification.
 * See cgroup.h for the model; notes on kernel behaviour are inline.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "procfs.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC	0x63677270
#endif
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC	0x9fa0
#endif

/*
 * v1 has no "max" keyword: an unlimited cgroup reports PAGE_COUNTER_MAX
 * pages in bytes (0x7ffffffffffff000 on 4K pages).  Nobody configures a
 * real limit of 4 EiB, so anything from 2^62 up means "none".
 */
#define CG_V1_UNLIMITED_MIN	(1ULL << 62)

/*
 * PSI trigger: 150ms of "some" stall within a 1s window.  Without
 * CAP_SYS_RESOURCE the kernel only accepts windows that are multiples
 * of 2s, so fall back to the same 15% ratio over 2s.
 */
#define CG_PSI_TRIGGER		"some 150000 1000000"
#define CG_PSI_TRIGGER_UNPRIV	"some 300000 2000000"

struct cg_mount {
	char point[PATH_MAX];	/* where it is mounted, "" = not mounted */
	char root[PATH_MAX];	/* cgroup the mount shows as its top */
};

struct cg_mounts {
	struct cg_mount v1;	/* the v1 hierarchy carrying "memory" */
	struct cg_mount v2;
};

struct cg_watch {
	int version;
	int fd;			/* what the caller polls */
	int evfd;		/* v1 */
	int inofd;		/* v2 */
	int psifd;		/* v2, optional */
	unsigned int sources;
	uint64_t threshold;
	char usage_file[PATH_MAX];
};

static int join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(dst, src, n + 1);
	return 0;
}

/* Read a whole (small) file; -ENOBUFS if it does not fit in @buf. */
static int read_file(const char *path, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	char extra;
	int fd, err = 0;

	if (!len)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < len - 1) {
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		if (!n)
			break;
		got += n;
	}
	/* Full buffer: one more byte tells truncation from an exact fit. */
	if (got == len - 1 && read(fd, &extra, 1) > 0)
		err = -ENOBUFS;
out:
	buf[got] = '\0';
	close(fd);
	return err ? err : (int)got;
}

static int parse_u64(const char *s, uint64_t *val)
{
	unsigned long long v;
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	if (!strncmp(s, "max", 3)) {
		end = (char *)s + 3;
		v = CG_UNLIMITED;
	} else {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno)
			return -errno;
	}
	if (*end && !isspace((unsigned char)*end))
		return -EINVAL;
	*val = v;
	return 0;
}

static int read_u64(const char *dir, const char *name, uint64_t *val)
{
	char path[PATH_MAX], buf[64];
	int err;

	err = join(path, sizeof(path), dir, name);
	if (err)
		return err;
	err = read_file(path, buf, sizeof(buf));
	if (err < 0)
		return err;
	return parse_u64(buf, val);
}

/* Optional file: a missing one leaves @val at its default. */
static int read_u64_opt(const char *dir, const char *name, uint64_t *val)
{
	int err = read_u64(dir, name, val);

	return err == -ENOENT ? 0 : err;
}

/* Look up "key value" lines (memory.events, memory.oom_control). */
static int read_keyed(const char *dir, const char *name,
		      const char *const *keys, uint64_t *const *vals, int nkeys)
{
	char path[PATH_MAX], buf[1024], *line, *save;
	size_t klen;
	int err, i;

	err = join(path, sizeof(path), dir, name);
	if (err)
		return err;
	err = read_file(path, buf, sizeof(buf));
	if (err == -ENOENT)
		return 0;
	if (err < 0 && err != -ENOBUFS)
		return err;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		for (i = 0; i < nkeys; i++) {
			klen = strlen(keys[i]);
			if (!strncmp(line, keys[i], klen) && line[klen] == ' ')
				parse_u64(line + klen + 1, vals[i]);
		}
	}
	return 0;
}

static bool file_exists(const char *dir, const char *name)
{
	char path[PATH_MAX];

	return !join(path, sizeof(path), dir, name) && !access(path, F_OK);
}

/* Strip the last component in place; false once at "/" or "". */
static bool to_parent(char *dir)
{
	char *slash = strrchr(dir, '/');

	if (!slash || (slash == dir && !dir[1]))
		return false;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return true;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t v1_limit(uint64_t v)
{
	return v >= CG_V1_UNLIMITED_MIN ? CG_UNLIMITED : v;
}

/*
 * The kernel enforces every ancestor's limit on a descendant's charges,
 * so the limit that will actually bite is the minimum along the chain.
 * The walk stops where the limit file disappears: above the hierarchy's
 * mount point (v1) or at the root cgroup, which has no memory.max (v2).
 */
static int ancestors_effective(int version, const char *dir, uint64_t *eff)
{
	const char *limfile = version == 1 ? "memory.limit_in_bytes"
					   : "memory.max";
	char cur[PATH_MAX];
	uint64_t high, max, hier;
	int err;

	err = copy_str(cur, sizeof(cur), dir);
	if (err)
		return err;
	while (to_parent(cur) && file_exists(cur, limfile)) {
		high = max = CG_UNLIMITED;
		if (version == 1) {
			/*
			 * A v1 child is charged to its parent only if the
			 * parent has use_hierarchy set (always, since 5.x);
			 * without it the child is a separate tree.
			 */
			hier = 1;
			err = read_u64_opt(cur, "memory.use_hierarchy", &hier);
			if (err)
				return err;
			if (!hier)
				break;
			err = read_u64(cur, limfile, &max);
			max = v1_limit(max);
		} else {
			err = read_u64(cur, limfile, &max);
			if (!err)
				err = read_u64_opt(cur, "memory.high", &high);
		}
		if (err)
			return err;
		*eff = min_u64(*eff, min_u64(high, max));
	}
	return 0;
}

static int read_limits_v1(const char *dir, struct cg_limits *out)
{
	static const char *const keys[] = { "under_oom", "oom_kill" };
	uint64_t *const vals[] = { &out->events_oom, &out->events_oom_kill };
	int err;

	/* usage_in_bytes exists in every v1 memcg, the root included. */
	err = read_u64(dir, "memory.usage_in_bytes", &out->usage);
	if (!err)
		err = read_u64_opt(dir, "memory.limit_in_bytes", &out->max);
	if (!err)
		err = read_u64_opt(dir, "memory.soft_limit_in_bytes",
				   &out->soft);
	if (!err)
		err = read_u64_opt(dir, "memory.failcnt", &out->events_max);
	if (!err)
		err = read_keyed(dir, "memory.oom_control", keys, vals, 2);
	out->max = v1_limit(out->max);
	out->soft = v1_limit(out->soft);
	return err;
}

static int read_limits_v2(const char *dir, struct cg_limits *out)
{
	static const char *const keys[] = { "oom", "oom_kill", "high", "max" };
	uint64_t *const vals[] = { &out->events_oom, &out->events_oom_kill,
				   &out->events_high, &out->events_max };
	int err;

	/*
	 * The root cgroup has memory.stat but no memory.current/max/high;
	 * accept it with zero usage and no limits rather than failing.
	 */
	err = read_u64(dir, "memory.current", &out->usage);
	if (err == -ENOENT && file_exists(dir, "memory.stat"))
		err = 0;
	if (!err)
		err = read_u64_opt(dir, "memory.high", &out->high);
	if (!err)
		err = read_u64_opt(dir, "memory.max", &out->max);
	if (!err)
		err = read_keyed(dir, "memory.events", keys, vals, 4);
	return err;
}

static void limits_init(struct cg_limits *out)
{
	memset(out, 0, sizeof(*out));
	out->high = CG_UNLIMITED;
	out->max = CG_UNLIMITED;
	out->soft = CG_UNLIMITED;
	out->effective = CG_UNLIMITED;
}

/* Fill everything but path and name from a known memcg directory. */
static int read_limits(int version, const char *dir, struct cg_limits *out)
{
	struct stat st;
	int err;

	if (version != 1 && version != 2)
		return -EINVAL;
	if (stat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	err = copy_str(out->dir, sizeof(out->dir), dir);
	if (err)
		return err;
	err = version == 1 ? read_limits_v1(dir, out)
			   : read_limits_v2(dir, out);
	if (err)
		return err;
	out->effective = min_u64(out->high, out->max);
	err = ancestors_effective(version, dir, &out->effective);
	if (err)
		return err;
	out->version = version;
	return 0;
}

int cg__limits_dir(int version, const char *dir, struct cg_limits *out)
{
	int err;

	if (!dir || !out)
		return -EINVAL;
	limits_init(out);
	err = read_limits(version, dir, out);
	if (err) {
		limits_init(out);
		return err;
	}
	cg__name_from_path(dir, out->name, sizeof(out->name));
	return 0;
}

int cg__read_stat(const char *dir, char *buf, size_t len)
{
	char path[PATH_MAX];
	int err;

	if (!dir || !buf || !len)
		return -EINVAL;
	err = join(path, sizeof(path), dir, "memory.stat");
	if (err)
		return err;
	return read_file(path, buf, len);
}

/* ---- discovery ---------------------------------------------------- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

static bool has_token(const char *list, const char *tok, const char *seps)
{
	size_t n = strlen(tok);
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, seps);

		if (len == n && !strncmp(p, tok, n))
			return true;
		p += len;
		p += strspn(p, seps);
	}
	return false;
}

static void set_mount(struct cg_mount *m, const char *root, const char *point)
{
	/*
	 * Several mounts of one hierarchy (bind mounts, containers) are
	 * common; the first one showing the whole namespace wins, else the
	 * first one seen.
	 */
	if (m->point[0] && !strcmp(m->root, "/"))
		return;
	if (m->point[0] && strcmp(root, "/"))
		return;
	if (copy_str(m->point, sizeof(m->point), point) ||
	    copy_str(m->root, sizeof(m->root), root))
		m->point[0] = '\0';
}

/*
 * Line format (proc(5)): id parent maj:min root mountpoint options
 * [optional fields...] - fstype source superoptions
 */
static int find_mounts(const char *mountinfo, struct cg_mounts *m)
{
	char *line = NULL, *f[6], *fstype, *super, *sep, *save;
	size_t cap = 0;
	FILE *fp;
	int i;

	memset(m, 0, sizeof(*m));
	fp = fopen(mountinfo, "re");
	if (!fp)
		return -errno;
	while (getline(&line, &cap, fp) > 0) {
		line[strcspn(line, "\n")] = '\0';
		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		memset(f, 0, sizeof(f));
		f[0] = strtok_r(line, " ", &save);
		for (i = 1; i < 6 && f[i - 1]; i++)
			f[i] = strtok_r(NULL, " ", &save);
		if (!f[0] || !f[4])
			continue;
		fstype = strtok_r(sep + 3, " ", &save);
		strtok_r(NULL, " ", &save);	/* source */
		super = strtok_r(NULL, " ", &save);
		if (!fstype)
			continue;
		unescape(f[3]);
		unescape(f[4]);
		if (!strcmp(fstype, "cgroup2"))
			set_mount(&m->v2, f[3], f[4]);
		else if (!strcmp(fstype, "cgroup") && super &&
			 has_token(super, "memory", ","))
			set_mount(&m->v1, f[3], f[4]);
	}
	free(line);
	fclose(fp);
	return 0;
}

/* Pick the v1 memory path and the v2 path out of /proc/PID/cgroup. */
static int parse_proc_cgroup(const char *file, char *v1, char *v2, size_t len)
{
	struct procfs_cgroup cg;
	const char *p;
	int err;

	v1[0] = v2[0] = '\0';
	err = procfs__read_cgroup_file(file, &cg);
	if (err)
		return err;
	p = procfs__cgroup_path(&cg, NULL);
	if (p)
		copy_str(v2, len, p);
	p = procfs__cgroup_path(&cg, "memory");
	if (p)
		copy_str(v1, len, p);
	procfs__cgroup_free(&cg);
	return 0;
}

/* Map a namespace-relative cgroup path onto a mount of its hierarchy. */
static int map_path(const struct cg_mount *m, const char *path,
		    char *dir, size_t len)
{
	const char *rest = path;
	size_t rlen;
	int n;

	if (!m->point[0] || path[0] != '/')
		return -ENOENT;
	/* Outside the reader's cgroup namespace: no mount can show it. */
	if (strstr(path, "/..") || strstr(path, " (deleted)"))
		return -ENOENT;
	if (strcmp(m->root, "/")) {
		rlen = strlen(m->root);
		if (strncmp(path, m->root, rlen) ||
		    (path[rlen] && path[rlen] != '/'))
			return -ENOENT;
		rest = path + rlen;
	}
	if (!strcmp(rest, "/"))
		rest = "";
	n = snprintf(dir, len, "%s%s", m->point, rest);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * On v2 a cgroup only has its own memcg if memory is listed in its
 * cgroup.controllers (enabled by the parent's subtree_control); if not,
 * its pages are charged to the nearest ancestor that has one.  Walk up
 * to that ancestor, giving up at the mount point.
 */
static int v2_memcg_dir(const char *point, char *dir)
{
	char path[PATH_MAX], buf[512];
	int err;

	for (;;) {
		err = join(path, sizeof(path), dir, "cgroup.controllers");
		if (err)
			return err;
		err = read_file(path, buf, sizeof(buf));
		if (err >= 0 && has_token(buf, "memory", " \n"))
			return 0;
		if (!strcmp(dir, point) || !to_parent(dir))
			return -ENOENT;
	}
}

static int resolve(const struct cg_mounts *m, const char *proc_cgroup,
		   struct cg_limits *out)
{
	char p1[sizeof(out->path)], p2[sizeof(out->path)], dir[PATH_MAX];
	const char *path = NULL;
	int version = 0, err;

	limits_init(out);
	err = parse_proc_cgroup(proc_cgroup, p1, p2, sizeof(p1));
	if (err)
		return err;
	if (p1[0] && !map_path(&m->v1, p1, dir, sizeof(dir)) &&
	    !access(dir, F_OK)) {
		version = 1;
		path = p1;
	} else if (p2[0] && !map_path(&m->v2, p2, dir, sizeof(dir)) &&
		   !v2_memcg_dir(m->v2.point, dir)) {
		version = 2;
		path = p2;
	}
	if (!version) {
		/* Not an error; the path still names the container. */
		path = p1[0] ? p1 : p2;
		if (!copy_str(out->path, sizeof(out->path), path) && path[0])
			cg__name_from_path(path, out->name, sizeof(out->name));
		return 0;
	}

	err = read_limits(version, dir, out);
	if (err)
		goto fail;
	err = copy_str(out->path, sizeof(out->path), path);
	if (err)
		goto fail;
	cg__name_from_path(path, out->name, sizeof(out->name));
	return 0;
fail:
	limits_init(out);
	return err;
}

int cg__limits_at(const char *mountinfo, const char *proc_cgroup,
		  struct cg_limits *out)
{
	struct cg_mounts *m;
	int err;

	if (!mountinfo || !proc_cgroup || !out)
		return -EINVAL;
	/* Two PATH_MAX pairs: keep them off the stack. */
	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	err = find_mounts(mountinfo, m);
	if (!err)
		err = resolve(m, proc_cgroup, out);
	free(m);
	return err;
}

int cg__limits(const char *cgroot_v1, const char *cgroot_v2, int pid,
	       struct cg_limits *out)
{
	struct cg_mounts *m;
	char file[320];
	int err = 0;

	if (!out || pid < 0)
		return -EINVAL;
	/* pid 0: /proc/self/cgroup */
	err = procfs__path(file, sizeof(file), pid, "cgroup");
	if (err)
		return err;
	if (!cgroot_v1 && !cgroot_v2)
		return cg__limits_at("/proc/self/mountinfo", file, out);

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	/* Caller-given roots are taken to show the whole hierarchy. */
	if (cgroot_v1 && cgroot_v1[0])
		err = copy_str(m->v1.point, sizeof(m->v1.point), cgroot_v1);
	if (!err && cgroot_v2 && cgroot_v2[0])
		err = copy_str(m->v2.point, sizeof(m->v2.point), cgroot_v2);
	strcpy(m->v1.root, "/");
	strcpy(m->v2.root, "/");
	if (!err)
		err = resolve(m, file, out);
	free(m);
	return err;
}

/* ---- container naming --------------------------------------------- */

#define CG_SHORT_ID	12
#define CG_POD_ID	8
#define CG_MAX_COMPS	64

struct comp {
	const char *s;
	size_t len;
};

static bool all_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return n > 0;
}

static bool comp_prefix(const struct comp *c, const char *pfx)
{
	size_t n = strlen(pfx);

	return c->len > n && !strncmp(c->s, pfx, n);
}

static bool comp_suffix(const struct comp *c, const char *sfx)
{
	size_t n = strlen(sfx);

	return c->len > n && !strncmp(c->s + c->len - n, sfx, n);
}

static bool comp_is(const struct comp *c, const char *s)
{
	return c->len == strlen(s) && !strncmp(c->s, s, c->len);
}

/*
 * "<prefix>[conmon-]<hex id>[.scope]" -> id.  conmon is podman's/CRI-O's
 * per-container monitor; it is named after the container it watches.
 */
static bool scoped_id(const struct comp *c, const char *pfx, struct comp *id)
{
	if (!comp_prefix(c, pfx))
		return false;
	id->s = c->s + strlen(pfx);
	id->len = c->len - strlen(pfx);
	if (comp_suffix(c, ".scope"))
		id->len -= strlen(".scope");
	if (id->len > 7 && !strncmp(id->s, "conmon-", 7)) {
		id->s += 7;
		id->len -= 7;
	}
	return id->len >= CG_SHORT_ID && all_hex(id->s, id->len);
}

static size_t short_len(const struct comp *id)
{
	return id->len < CG_SHORT_ID ? id->len : CG_SHORT_ID;
}

/* Container engines that name one cgroup per container. */
static const char *container_id(const struct comp *c, const struct comp *prev,
				struct comp *id)
{
	static const struct {
		const char *pfx, *engine;
	} scopes[] = {
		{ "docker-", "docker" },
		{ "cri-containerd-", "containerd" },
		{ "crio-", "crio" },
		{ "libpod-", "podman" },
	};
	size_t i;

	for (i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++)
		if (scoped_id(c, scopes[i].pfx, id))
			return scopes[i].engine;
	/*
	 * cgroupfs driver: docker uses /docker/<64 hex>; containerd uses
	 * /<namespace>/<64 hex> for anything else.
	 */
	if (c->len == 64 && all_hex(c->s, c->len)) {
		*id = *c;
		if (prev && comp_is(prev, "docker"))
			return "docker";
		return "containerd";
	}
	return NULL;
}

/* "pod<uid>" (cgroupfs) or "kubepods-<qos>-pod<uid>.slice" (systemd). */
static bool pod_uid(const struct comp *c, struct comp *uid)
{
	const char *p;
	size_t n;

	if (comp_prefix(c, "pod")) {
		p = c->s + 3;
	} else if (comp_suffix(c, ".slice")) {
		for (p = c->s + c->len - 4; p > c->s; p--)
			if (!strncmp(p, "-pod", 4))
				break;
		if (p == c->s)
			return false;
		p += 4;
	} else {
		return false;
	}
	/* The first UUID group identifies a pod well enough for humans. */
	for (n = 0; p + n < c->s + c->len && n < CG_POD_ID; n++)
		if (p[n] == '-' || p[n] == '_' || p[n] == '.')
			break;
	uid->s = p;
	uid->len = n;
	return n > 0;
}

static int split(const char *path, struct comp *comps)
{
	int n = 0;

	while (*path && n < CG_MAX_COMPS) {
		size_t len;

		path += strspn(path, "/");
		len = strcspn(path, "/");
		if (!len)
			break;
		comps[n].s = path;
		comps[n].len = len;
		n++;
		path += len;
	}
	return n;
}

static bool name_k8s(const char *path, const struct comp *c, int n,
		     char *buf, size_t len)
{
	struct comp uid, id;
	int i;

	if (!strstr(path, "kubepods"))
		return false;
	for (i = 0; i < n; i++) {
		if (!pod_uid(&c[i], &uid))
			continue;
		if (i + 1 >= n) {
			snprintf(buf, len, "k8s:pod%.*s", (int)uid.len, uid.s);
			return true;
		}
		if (container_id(&c[i + 1], &c[i], &id)) {
			id.len = short_len(&id);
		} else {
			/* Unknown runtime: show the raw component. */
			id = c[i + 1];
			if (all_hex(id.s, id.len))
				id.len = short_len(&id);
		}
		snprintf(buf, len, "k8s:pod%.*s/%.*s", (int)uid.len, uid.s,
			 (int)id.len, id.s);
		return true;
	}
	return false;
}

const char *cg__name_from_path(const char *path, char *buf, size_t len)
{
	struct comp c[CG_MAX_COMPS], id;
	const char *engine;
	int n, i;

	if (!buf || !len)
		return buf;
	n = path ? split(path, c) : 0;
	if (!n) {
		snprintf(buf, len, "/");
		return buf;
	}
	if (name_k8s(path, c, n, buf, len))
		return buf;
	/*
	 * Search from the leaf up: a container may create sub-cgroups of
	 * its own (e.g. systemd inside docker), and the engine's cgroup
	 * still names it best.
	 */
	for (i = n - 1; i >= 0; i--) {
		engine = container_id(&c[i], i ? &c[i - 1] : NULL, &id);
		if (engine) {
			snprintf(buf, len, "%s:%.*s", engine,
				 (int)short_len(&id), id.s);
			return buf;
		}
	}
	/* systemd units and everything else: the leaf is the best name. */
	snprintf(buf, len, "%.*s", (int)c[n - 1].len, c[n - 1].s);
	return buf;
}

/* ---- threshold watcher -------------------------------------------- */

static int watch_v1(struct cg_watch *w, const char *dir)
{
	char path[PATH_MAX], cmd[64];
	int ufd = -1, cfd = -1, err, n;

	w->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->evfd < 0)
		return -errno;
	ufd = open(w->usage_file, O_RDONLY | O_CLOEXEC);
	if (ufd < 0) {
		err = -errno;
		goto out;
	}
	err = join(path, sizeof(path), dir, "cgroup.event_control");
	if (err)
		goto out;
	cfd = open(path, O_WRONLY | O_CLOEXEC);
	if (cfd < 0) {
		err = -errno;
		goto out;
	}
	n = snprintf(cmd, sizeof(cmd), "%d %d %" PRIu64, w->evfd, ufd,
		     w->threshold);
	/*
	 * The kernel takes its own references to the eventfd and the
	 * memcg, so both helper fds can go once this write succeeds; the
	 * registration lives until the eventfd is closed or the cgroup is
	 * removed (which also signals the eventfd).
	 */
	errno = 0;
	if (write(cfd, cmd, n) != n) {
		err = errno ? -errno : -EIO;
		goto out;
	}
	w->fd = w->evfd;
	w->sources = CG_WATCH_EVENTFD;
out:
	if (cfd >= 0)
		close(cfd);
	if (ufd >= 0)
		close(ufd);
	return err;
}

/*
 * Only a real PSI file accepts triggers.  A plain file (a fake tree in a
 * test, a copied hierarchy) would happily store the text and then poll
 * as always-ready, so check the filesystem before writing anything.
 * procfs is allowed too: /proc/pressure/memory takes the same syntax.
 */
static bool psi_arm(int fd, const char *trigger)
{
	/* The kernel parses up to the NUL, so send it along. */
	size_t n = strlen(trigger) + 1;

	return write(fd, trigger, n) == (ssize_t)n;
}

static int psi_open(const char *dir)
{
	char path[PATH_MAX];
	struct statfs sfs;
	int fd;

	if (join(path, sizeof(path), dir, "memory.pressure"))
		return -1;
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstatfs(fd, &sfs) ||
	    (sfs.f_type != CGROUP2_SUPER_MAGIC &&
	     sfs.f_type != PROC_SUPER_MAGIC))
		goto fail;
	/* A rejected trigger leaves the fd unarmed, so a retry is fine. */
	if (psi_arm(fd, CG_PSI_TRIGGER) ||
	    (errno == EINVAL && psi_arm(fd, CG_PSI_TRIGGER_UNPRIV)))
		return fd;
fail:
	close(fd);
	return -1;
}

static int watch_v2(struct cg_watch *w, const char *dir)
{
	struct epoll_event ev = { 0 };
	char path[PATH_MAX];
	int err;

	err = join(path, sizeof(path), dir, "memory.events");
	if (err)
		return err;
	w->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->inofd < 0)
		return -errno;
	/* cgroupfs raises IN_MODIFY whenever a memory.events count moves. */
	if (inotify_add_watch(w->inofd, path, IN_MODIFY) < 0)
		return -errno;
	w->sources = CG_WATCH_INOTIFY;
	/* PSI is a bonus: read-only or PSI-less systems still work. */
	w->psifd = psi_open(dir);

	/* Two sources, one fd for the caller: an epoll set. */
	w->fd = epoll_create1(EPOLL_CLOEXEC);
	if (w->fd < 0)
		return -errno;
	ev.events = EPOLLIN;
	ev.data.fd = w->inofd;
	if (epoll_ctl(w->fd, EPOLL_CTL_ADD, w->inofd, &ev))
		return -errno;
	if (w->psifd >= 0) {
		ev.events = EPOLLPRI;
		ev.data.fd = w->psifd;
		if (epoll_ctl(w->fd, EPOLL_CTL_ADD, w->psifd, &ev))
			return -errno;
		w->sources |= CG_WATCH_PSI;
	}
	return 0;
}

int cg_watch__new(const struct cg_limits *lim, uint64_t threshold,
		  struct cg_watch **out)
{
	struct cg_watch *w;
	int err;

	if (!lim || !out || !threshold || !lim->dir[0] ||
	    (lim->version != 1 && lim->version != 2))
		return -EINVAL;
	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = w->evfd = w->inofd = w->psifd = -1;
	w->version = lim->version;
	w->threshold = threshold;
	err = join(w->usage_file, sizeof(w->usage_file), lim->dir,
		   lim->version == 1 ? "memory.usage_in_bytes"
				     : "memory.current");
	if (err)
		goto fail;
	err = lim->version == 1 ? watch_v1(w, lim->dir)
				: watch_v2(w, lim->dir);
	if (err)
		goto fail;
	*out = w;
	return 0;
fail:
	cg_watch__free(w);
	return err;
}

int cg_watch__fd(const struct cg_watch *w)
{
	return w ? w->fd : -EINVAL;
}

unsigned int cg_watch__sources(const struct cg_watch *w)
{
	return w ? w->sources : 0;
}

int cg_watch__consume(struct cg_watch *w)
{
	char buf[4096]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	char num[64];
	uint64_t val;
	ssize_t n;
	int err;

	if (!w)
		return -EINVAL;
	if (w->version == 1) {
		n = read(w->evfd, &val, sizeof(val));
		if (n < 0 && errno != EAGAIN)
			return -errno;
	} else {
		/*
		 * Drain inotify so the epoll set stops reporting it.  A PSI
		 * event needs no ack: its poll hook clears it when the
		 * caller's poll() looks at the epoll set.
		 */
		do {
			n = read(w->inofd, buf, sizeof(buf));
		} while (n > 0);
		if (n < 0 && errno != EAGAIN)
			return -errno;
	}
	/* Whatever woke us, the answer is the usage right now. */
	err = read_file(w->usage_file, num, sizeof(num));
	if (err < 0)
		return err;
	err = parse_u64(num, &val);
	if (err)
		return err;
	return val >= w->threshold;
}

void cg_watch__free(struct cg_watch *w)
{
	if (!w)
		return;
	/* Closing the eventfd is what unregisters a v1 threshold. */
	if (w->fd >= 0 && w->fd != w->evfd)
		close(w->fd);
	if (w->evfd >= 0)
		close(w->evfd);
	if (w->inofd >= 0)
		close(w->inofd);
	if (w->psifd >= 0)
		close(w->psifd);
	free(w);
}
