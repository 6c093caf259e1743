/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Memory cgroup discovery, limits and threshold notification.
 *
 * Works on cgroup v1, v2 and hybrid layouts.  A process's memory cgroup
 * is taken from the v1 hierarchy that carries the memory controller when
 * one is mounted (hybrid systems bind memory there), otherwise from the
 * cgroup2 hierarchy if memory is enabled on it.
 *
 * Paths in /proc/PID/cgroup and the root field of /proc/self/mountinfo
 * are both relative to the reader's cgroup namespace root, so mapping
 * one onto the other works in the init namespace and inside a namespace
 * whose cgroupfs was mounted from within it.  Ancestors above the
 * namespace root are invisible, so their limits cannot be folded into
 * cg_limits.effective there; a cgroup outside the reader's namespace
 * ("/../..") is reported as not found.
 */
#ifndef MT_CGROUP_H
#define MT_CGROUP_H

#include <stddef.h>
#include <stdint.h>

/* Value of a limit field that means "no limit". */
#define CG_UNLIMITED	UINT64_MAX

/* Snapshot of one memory cgroup; plain data, safe to copy. */
struct cg_limits {
	int version;		/* 1 or 2, 0 = no memory cgroup found */
	char path[512];		/* cgroup path as in /proc/PID/cgroup */
	char dir[1024];		/* absolute directory on the mounted hierarchy */
	char name[128];		/* short readable container name */
	uint64_t usage;		/* v2 memory.current, v1 memory.usage_in_bytes */
	uint64_t high;		/* v2 memory.high, CG_UNLIMITED for none / v1 */
	uint64_t max;		/* v2 memory.max, v1 memory.limit_in_bytes */
	uint64_t soft;		/* v1 memory.soft_limit_in_bytes */
	uint64_t effective;	/* min(high, max) over cgroup and ancestors */
	uint64_t events_oom;	/* v2 "oom"; v1 under_oom (a 0/1 state) */
	uint64_t events_oom_kill;
	uint64_t events_high;	/* v2 only */
	uint64_t events_max;	/* v2 "max"; v1 memory.failcnt */
};

/*
 * Fill @out for process @pid (0 = self).  @cgroot_v1 / @cgroot_v2 are the
 * mount points of the v1 memory hierarchy and the cgroup2 hierarchy; when
 * both are NULL they are found in /proc/self/mountinfo, otherwise exactly
 * the given ones are used (NULL or "" = that version is absent).
 * Returns 0 (out->version == 0 when no memory cgroup was found) or -errno.
 */
int cg__limits(const char *cgroot_v1, const char *cgroot_v2, int pid,
	       struct cg_limits *out);

/* As cg__limits() with both inputs injectable: a mountinfo-format file
 * and a /proc/PID/cgroup-format file. */
int cg__limits_at(const char *mountinfo, const char *proc_cgroup,
		  struct cg_limits *out);

/* Read the memory cgroup at @dir directly; out->path stays empty and the
 * name is derived from @dir. */
int cg__limits_dir(int version, const char *dir, struct cg_limits *out);

/* Copy memory.stat of @dir into @buf (NUL-terminated).  Returns the byte
 * count, -ENOBUFS if it did not fit (@buf then holds a prefix) or -errno. */
int cg__read_stat(const char *dir, char *buf, size_t len);

/* Short container name for a cgroup path, e.g. "docker:3f2a9c0b1d4e",
 * "k8s:pod1234abcd/3f2a9c0b1d4e", "nginx.service", "/".  Returns @buf. */
const char *cg__name_from_path(const char *path, char *buf, size_t len);

/*
 * Threshold watcher.  Poll cg_watch__fd() for POLLIN, then call
 * cg_watch__consume(), which acknowledges the event and reports whether
 * usage is at or above the threshold right now.
 *
 * v1 uses a kernel usage threshold (cgroup.event_control), which fires on
 * crossing in either direction.  v2 has no usage threshold, so the fd
 * fires on memory.events changes (high/max/oom) and, where possible, on a
 * memory.pressure PSI trigger; callers that need exact crossing on v2
 * must also poll with a timeout.
 */
struct cg_watch;

/* Event sources a watcher ended up using (see cg_watch__sources()). */
enum {
	CG_WATCH_EVENTFD	= 1 << 0,	/* v1 usage threshold */
	CG_WATCH_INOTIFY	= 1 << 1,	/* v2 memory.events */
	CG_WATCH_PSI		= 1 << 2,	/* v2 memory.pressure trigger */
};

int cg_watch__new(const struct cg_limits *lim, uint64_t threshold,
		  struct cg_watch **out);
int cg_watch__fd(const struct cg_watch *w);
int cg_watch__consume(struct cg_watch *w);
unsigned int cg_watch__sources(const struct cg_watch *w);
void cg_watch__free(struct cg_watch *w);

#endif /* MT_CGROUP_H */
