/* SPDX-License-Identifier: GPL-2.0 */
/*
 * procfs: the one reader of /proc/PID/{maps,stat,statm,status,comm,cgroup}.
 *
 * Each file has one parser here, filling a plain struct; every other
 * module asks procfs instead of opening the file itself.  Everything is
 * untrusted input (a process names itself, and names its files): comm
 * may hold ')' and spaces, paths may hold spaces, a newline (the kernel
 * shows it as "\012") or end in " (deleted)"; lines may be longer than
 * any fixed buffer.  Functions return 0 or a negative errno; -ESRCH when
 * the process is gone.  stat, statm, status and comm are read without
 * malloc (a watchdog child forked from threaded memtrace reads them).
 *
 * A maps snapshot is read once per event (an exec, a code mapping) and
 * handed to every module that needs it -- attach, symbols, unwinding,
 * CFI -- instead of each re-reading and re-parsing the file.  Snapshots
 * are reference counted: a module that keeps one takes a reference.
 *
 * The root ("/proc") can be changed for tests: unit tests read fixture
 * trees laid out like /proc (ROOT/PID/maps, ...), without root.
 */
#ifndef MT_PROCFS_H
#define MT_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One line of /proc/PID/maps. */
struct procfs_map {
	uint64_t start, end, pgoff;
	dev_t dev;
	uint64_t ino;
	char perms[5];		/* "r-xp" */
	bool deleted;		/* the path ended in " (deleted)" (cut off) */
	const char *path;	/* "" (anonymous), "[heap]", "/usr/lib/..."; a
				 * "\012" the kernel wrote is a '\n' again */
};

/* A whole /proc/PID/maps, in file order (sorted by start). */
struct procfs_maps {
	int pid;
	int n;
	struct procfs_map *m;
	int refs;
	uint64_t read_ns;	/* CLOCK_MONOTONIC just before the read: an
				 * image exec'd before it is the one shown */
	char *text;		/* the file as read; paths point into it */
};

/*
 * Fields of /proc/PID/stat that memtrace uses; comm is what stands
 * between the first '(' and the last ')'.
 */
struct procfs_stat {
	char comm[64];
	char state;		/* 'R', 'S', 'Z', ... */
	int ppid;
	unsigned long flags;	/* PF_* (PF_KTHREAD 0x00200000) */
	unsigned long long utime, stime;	/* clock ticks */
	unsigned long long starttime;		/* ticks after boot */
	unsigned long long start_brk;		/* 0: not shown (no mm) */
};

/* /proc/PID/statm, in bytes. */
struct procfs_statm {
	uint64_t size, resident, shared;
};

#define PROCFS_NSPID_MAX	8

/* /proc/PID/status; sizes in bytes, -1 / 0 for a line not present. */
struct procfs_status {
	int tgid, ppid, tracer_pid;
	int uid[4];		/* real, effective, saved, filesystem */
	int nspid[PROCFS_NSPID_MAX];	/* outermost first */
	int nr_nspid;
	uint64_t rss_anon, rss_file, rss_shmem;
	uint64_t vm_data;	/* VmData: private writable, bytes */
	uint64_t vm_rss;	/* VmRSS, bytes */
};

/* One line of /proc/PID/cgroup: "ID:CONTROLLERS:PATH". */
struct procfs_cgroup_line {
	int id;			/* 0 with controllers "": cgroup v2 */
	char *controllers;	/* "memory", "cpu,cpuacct", "" */
	char *path;		/* may itself hold ':' */
};

struct procfs_cgroup {
	char *text;		/* the file as read (to notice a move) */
	struct procfs_cgroup_line *lines;
	int n;
};

/* Read from root instead of "/proc" (tests); NULL restores "/proc". */
void procfs__set_root(const char *root);
/* ROOT/PID/what into buf ("/proc/42/map_files"); pid 0 is "self". */
int procfs__path(char *buf, size_t len, int pid, const char *what);
/* The file of a mapping, as mapped: ROOT/PID/map_files/START-END. */
int procfs__map_file(char *buf, size_t len, int pid,
		     const struct procfs_map *m);
/* A path as pid sees it, through its root: ROOT/PID/root/PATH. */
int procfs__root_file(char *buf, size_t len, int pid, const char *path);

/* Every process (numeric entry of the root), malloc'd in *out. */
int procfs__pids(int **out, int *n);

/* maps: a new snapshot (refs 1) in *out; pid 0 reads our own. */
int procfs__read_maps(int pid, struct procfs_maps **out);
/* The same parser on text (pid 0). */
int procfs__parse_maps(const char *text, size_t len, struct procfs_maps **out);
struct procfs_maps *procfs__maps_get(struct procfs_maps *maps);
void procfs__maps_put(struct procfs_maps *maps);
/* Executable and backed by a file (not anonymous, [vdso], ...). */
bool procfs__map_is_code_file(const struct procfs_map *m);

int procfs__read_stat(int pid, struct procfs_stat *out);
int procfs__parse_stat(const char *text, struct procfs_stat *out);
int procfs__read_statm(int pid, struct procfs_statm *out);
int procfs__read_status(int pid, struct procfs_status *out);
int procfs__parse_status(const char *text, struct procfs_status *out);
/* comm without its newline, always terminated; "" on error. */
int procfs__read_comm(int pid, char *buf, size_t len);

/* cgroup: pid 0 reads /proc/self/cgroup. */
int procfs__read_cgroup(int pid, struct procfs_cgroup *out);
int procfs__read_cgroup_file(const char *file, struct procfs_cgroup *out);
void procfs__cgroup_free(struct procfs_cgroup *cg);
/* The path of the v1 line with controller; NULL: of the v2 line ("0::"). */
const char *procfs__cgroup_path(const struct procfs_cgroup *cg,
				const char *controller);

#endif /* MT_PROCFS_H */
