// SPDX-License-Identifier: GPL-2.0
/*
 * Uprobe attachment.
 *
 * Probes go on the C library file the process really maps, opened via
 * /proc/PID/root (containers see their own libc) or /proc/PID/map_files
 * (the file was replaced or deleted since).  The kernel keys uprobes by
 * inode, so one library is probed once node-wide, or once per pid when
 * only some processes are traced (then other processes pay nothing).
 */
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "attach.h"
#include "elfsym.h"
#include "probesite.h"
#include "procfs.h"
#include "memtrace.h"
#include "memtrace.skel.h"
#include "util.h"
#include "watchdog.h"

struct target {
	int pid;		/* -1: node-wide */
	uint64_t id;		/* the row it was attached for (0: node-wide) */
	dev_t dev;
	ino_t ino;
	struct bpf_link **links;
	int nlinks;
	int session_fd;		/* uprobe_multi session link, -1 = none */
};

/* A file looked at once: does it define the allocator? */
struct seen_obj {
	dev_t dev;
	ino_t ino;
	bool alloc;
};

/*
 * One piece of work for the attach thread.  Queued by the main loop,
 * done in order (a FORGET queued after an attach of the same row runs
 * after it), handed back on the done list.
 */
struct job {
	struct job *next;
	enum attach_op op;
	int pid;
	uint64_t id;
	char *path;		/* ATTACH_OP_FILE */
	uint64_t ino;
	int err;
	/* a synchronous call (attach__call): its function and argument */
	int (*fn)(struct attach *a, void *arg);
	void *arg;
	bool sync, done;
};

struct attach {
	struct memtrace_bpf *skel;
	unsigned int flags;
	/* the attach thread's alone once it runs: */
	struct target *targets;
	int nr, cap;
	struct seen_obj *seen;
	int nseen, capseen;

	/* shared with the main loop, under lock */
	pthread_mutex_t lock;
	pthread_cond_t more;	/* the thread: a job was queued */
	pthread_cond_t done_cv;	/* attach__call: its job is done */
	struct job *todo, **todo_tail;
	struct job *done, **done_tail;
	int pending;		/* queued or running */
	int nlinks_pub, nlibs_pub;
	bool stop, started, exited;
	pthread_t thread;
};

/* One allocator entry point: which programs serve it. */
struct probe_fn {
	const char *name;
	int enter;		/* which classic entry program */
	bool ret;		/* needs a return probe */
	int fn;			/* enum mt_fn: the session probe's cookie */
	int nargs;		/* argument registers its programs read */
};

enum { P_MALLOC, P_CALLOC, P_REALLOC, P_REALLOCARRAY, P_FREE, P_POSIX_MEMALIGN,
       P_MEMALIGN, P_VALLOC };

static const struct probe_fn probe_fns[] = {
	{ "malloc",	P_MALLOC,	  true,  MT_FN_MALLOC, 1 },
	{ "calloc",	P_CALLOC,	  true,  MT_FN_CALLOC, 2 },
	{ "realloc",	P_REALLOC,	  true,  MT_FN_REALLOC, 2 },
	{ "reallocarray", P_REALLOCARRAY, true,  MT_FN_REALLOCARRAY, 3 },
	{ "free",	P_FREE,		  false, MT_FN_FREE, 1 },
	{ "posix_memalign", P_POSIX_MEMALIGN, true, MT_FN_POSIX_MEMALIGN, 3 },
	{ "aligned_alloc", P_MEMALIGN,	  true,  MT_FN_ALIGNED_ALLOC, 2 },
	{ "memalign",	P_MEMALIGN,	  true,  MT_FN_MEMALIGN, 2 },
	{ "valloc",	P_VALLOC,	  true,  MT_FN_VALLOC, 1 },
	{ "pvalloc",	P_VALLOC,	  true,  MT_FN_PVALLOC, 1 },
	/*
	 * jemalloc's own API (mallocx(size, flags), rallocx(ptr, size,
	 * flags), sdallocx(ptr, size, flags), dallocx(ptr, flags)) and C23's
	 * sized frees: the same semantics as malloc, realloc and free.
	 */
	{ "mallocx",	P_MALLOC,	  true,  MT_FN_MALLOC, 1 },
	{ "rallocx",	P_REALLOC,	  true,  MT_FN_REALLOC, 2 },
	{ "sdallocx",	P_FREE,		  false, MT_FN_FREE, 1 },
	{ "dallocx",	P_FREE,		  false, MT_FN_FREE, 1 },
	{ "free_sized",	P_FREE,		  false, MT_FN_FREE, 1 },
	{ "free_aligned_sized", P_FREE,	  false, MT_FN_FREE, 1 },
	/*
	 * C++ operator new and delete, probed only where malloc is defined
	 * too: an allocator that brings its own (tcmalloc, jemalloc) serves
	 * them without going through its malloc and free.  libstdc++'s call
	 * malloc and free, which are probed.  Every new takes the size
	 * first, every delete the pointer (sized and aligned ones included).
	 */
	{ "_Znwm",	P_MALLOC,	  true,  MT_FN_MALLOC, 1 },
	{ "_Znam",	P_MALLOC,	  true,  MT_FN_MALLOC, 1 },
	{ "_ZnwmRKSt9nothrow_t", P_MALLOC, true, MT_FN_MALLOC, 1 },
	{ "_ZnamRKSt9nothrow_t", P_MALLOC, true, MT_FN_MALLOC, 1 },
	{ "_ZnwmSt11align_val_t", P_MALLOC, true, MT_FN_MALLOC, 1 },
	{ "_ZnamSt11align_val_t", P_MALLOC, true, MT_FN_MALLOC, 1 },
	{ "_ZnwmSt11align_val_tRKSt9nothrow_t", P_MALLOC, true, MT_FN_MALLOC, 1 },
	{ "_ZnamSt11align_val_tRKSt9nothrow_t", P_MALLOC, true, MT_FN_MALLOC, 1 },
	{ "_ZdlPv",	P_FREE,		  false, MT_FN_FREE, 1 },
	{ "_ZdaPv",	P_FREE,		  false, MT_FN_FREE, 1 },
	{ "_ZdlPvm",	P_FREE,		  false, MT_FN_FREE, 1 },
	{ "_ZdaPvm",	P_FREE,		  false, MT_FN_FREE, 1 },
	{ "_ZdlPvRKSt9nothrow_t", P_FREE, false, MT_FN_FREE, 1 },
	{ "_ZdaPvRKSt9nothrow_t", P_FREE, false, MT_FN_FREE, 1 },
	{ "_ZdlPvSt11align_val_t", P_FREE, false, MT_FN_FREE, 1 },
	{ "_ZdaPvSt11align_val_t", P_FREE, false, MT_FN_FREE, 1 },
	{ "_ZdlPvmSt11align_val_t", P_FREE, false, MT_FN_FREE, 1 },
	{ "_ZdaPvmSt11align_val_t", P_FREE, false, MT_FN_FREE, 1 },
	{ "_ZdlPvSt11align_val_tRKSt9nothrow_t", P_FREE, false, MT_FN_FREE, 1 },
	{ "_ZdaPvSt11align_val_tRKSt9nothrow_t", P_FREE, false, MT_FN_FREE, 1 },
};

static struct bpf_program *enter_prog(struct memtrace_bpf *s, int which)
{
	switch (which) {
	case P_MALLOC: return s->progs.malloc_enter;
	case P_CALLOC: return s->progs.calloc_enter;
	case P_REALLOC: return s->progs.realloc_enter;
	case P_REALLOCARRAY: return s->progs.reallocarray_enter;
	case P_FREE: return s->progs.free_enter;
	case P_POSIX_MEMALIGN: return s->progs.posix_memalign_enter;
	case P_MEMALIGN: return s->progs.memalign_enter;
	default: return s->progs.valloc_enter;
	}
}

static void target_release(struct target *t)
{
	int i;

	if (t->session_fd >= 0)
		close(t->session_fd);
	t->session_fd = -1;
	for (i = 0; i < t->nlinks; i++)
		bpf_link__destroy(t->links[i]);
	free(t->links);
	t->links = NULL;
	t->nlinks = 0;
}

static bool is_libc_name(const char *base)
{
	return !strncmp(base, "libc.so", 7) || !strncmp(base, "libc-2.", 7) ||
	       !strncmp(base, "ld-musl-", 8) || !strncmp(base, "libc.musl-", 10);
}

/*
 * A mapping of code from a file, as a path we can open: through pid's
 * root (containers see their own files); a replaced or deleted file
 * only through map_files.  False for anything else.
 */
static bool code_file(const struct procfs_maps *maps, int i, char *path,
		      size_t len)
{
	const struct procfs_map *m = &maps->m[i];

	if (!procfs__map_is_code_file(m))
		return false;
	if (m->deleted)
		return !procfs__map_file(path, len, maps->pid, m);
	return !procfs__root_file(path, len, maps->pid, m->path);
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The C library pid maps, as a path we can open. */
static int find_libc(int pid, char *path, size_t len)
{
	struct procfs_maps *maps;
	int i, err = procfs__read_maps(pid, &maps);

	if (err)
		return err;
	err = -ENOENT;
	for (i = 0; i < maps->n && err; i++)
		if (is_libc_name(base_name(maps->m[i].path)) &&
		    code_file(maps, i, path, len))
			err = 0;
	procfs__maps_put(maps);
	return err;
}

/*
 * The C library an executable will load, before it runs: musl's dynamic
 * loader is its libc; for anything else, the libc of process ref_pid.
 */
static int exe_libc(const char *exe, int ref_pid, char *path, size_t len)
{
	struct elfsym *es;
	char interp[PATH_MAX];
	const char *base;

	if (!elfsym__open(exe, &es)) {
		int err = elfsym__interp(es, interp, sizeof(interp));

		elfsym__close(es);
		base = strrchr(interp, '/');
		if (!err && base && is_libc_name(base + 1)) {
			snprintf(path, len, "%s", interp);
			return 0;
		}
	}
	return find_libc(ref_pid, path, len);
}

static struct target *target_find(struct attach *a, int pid, uint64_t id,
				  dev_t dev, ino_t ino)
{
	int i;

	for (i = 0; i < a->nr; i++) {
		struct target *t = &a->targets[i];

		if (t->pid == pid && t->id == id && t->dev == dev &&
		    t->ino == ino)
			return t;
	}
	return NULL;
}

static int link_add(struct target *t, struct bpf_link *l)
{
	struct bpf_link **n = realloc(t->links, (t->nlinks + 1) * sizeof(*n));

	if (!n) {
		bpf_link__destroy(l);
		return -ENOMEM;
	}
	t->links = n;
	t->links[t->nlinks++] = l;
	return 0;
}

static int attach_one(struct attach *a, struct target *t, const char *path,
		      const struct probe_fn *pf, uint64_t off)
{
	bool floor = a->flags & ATTACH_FLOOR;
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	struct bpf_link *l;
	int err;

	l = bpf_program__attach_uprobe_opts(floor ? a->skel->progs.floor_enter :
					    enter_prog(a->skel, pf->enter),
					    t->pid, path, off, &uo);
	if (!l)
		return -errno;
	err = link_add(t, l);
	if (err || !pf->ret)
		return err;
	uo.retprobe = true;
	l = bpf_program__attach_uprobe_opts(floor ? a->skel->progs.floor_exit :
					    a->skel->progs.alloc_exit, t->pid,
					    path, off, &uo);
	if (!l)
		return -errno;
	return link_add(t, l);
}

/*
 * The uprobe_multi part of union bpf_attr (kernel 6.6+), spelled out
 * here: Debian 12's UAPI headers and libbpf 1.1 predate it.
 */
struct link_create_uprobe_multi {
	uint32_t prog_fd;
	uint32_t target_fd;
	uint32_t attach_type;
	uint32_t flags;
	uint64_t path;
	uint64_t offsets;
	uint64_t ref_ctr_offsets;
	uint64_t cookies;
	uint32_t cnt;
	uint32_t um_flags;
	uint32_t pid;
	uint32_t pad;
};

static int session_attach(struct attach *a, struct target *t, const char *path,
			  const uint64_t *offs, const uint64_t *cookies, int n)
{
	struct bpf_program *prog = a->flags & ATTACH_FLOOR ?
				   a->skel->progs.floor_session :
				   a->skel->progs.alloc_session;
	struct link_create_uprobe_multi attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_fd = bpf_program__fd(prog);
	attr.attach_type = MT_BPF_TRACE_UPROBE_SESSION;
	attr.path = (uint64_t)(uintptr_t)path;
	attr.offsets = (uint64_t)(uintptr_t)offs;
	attr.cookies = (uint64_t)(uintptr_t)cookies;
	attr.cnt = n;
	attr.pid = t->pid > 0 ? t->pid : 0;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	if (fd < 0)
		return -errno;
	t->session_fd = fd;
	return 0;
}

bool attach__session_supported(void)
{
	static const struct bpf_insn ret0[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts,
		    .expected_attach_type = MT_BPF_TRACE_UPROBE_SESSION);
	int fd;

	fd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "mt_probe", "GPL", ret0,
			   ARRAY_SIZE(ret0), &opts);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/*
 * Attach every allocator function the library at path (st: its stat, which
 * identifies the target) has; a missing one is skipped.
 */
static int attach_lib(struct attach *a, int pid, uint64_t id,
		      const char *path, const struct stat *st)
{
	uint64_t done[ARRAY_SIZE(probe_fns)], offs[ARRAY_SIZE(probe_fns)];
	uint64_t cookies[ARRAY_SIZE(probe_fns)];
	struct elfsym *es = NULL;
	char shown[PATH_MAX];	/* path, from the target's maps: escaped */
	int nsess = 0;
	struct target *t;
	int err, i, j, ndone = 0, nprobed = 0;

	if (target_find(a, pid, id, st->st_dev, st->st_ino))
		return 0;
	t = realloc(a->targets, (a->nr + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	a->targets = t;
	t = &a->targets[a->nr++];
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->id = id;
	t->dev = st->st_dev;
	t->ino = st->st_ino;
	t->session_fd = -1;

	sanitize(path, strlen(path), shown, sizeof(shown));
	err = elfsym__open(path, &es);
	if (err)
		goto out;
	for (i = 0; i < (int)ARRAY_SIZE(probe_fns); i++) {
		const struct probe_fn *pf = &probe_fns[i];
		struct elfsym_func fn;
		struct probesite ps;
		uint8_t code[PROBESITE_WINDOW];
		int n;

		if (elfsym__find(es, pf->name, &fn))
			continue;
		/* aligned_alloc is often an alias of memalign: probe once */
		for (j = 0; j < ndone && done[j] != fn.file_off; j++)
			;
		if (j < ndone)
			continue;
		done[ndone++] = fn.file_off;
		n = elfsym__read(es, fn.file_off, code, sizeof(code));
		if (n > 0 && fn.size && (uint64_t)n > fn.size)
			n = fn.size;
		if ((a->flags & ATTACH_ENTRY) || n <= 0 ||
		    probesite__choose(code, n, pf->nargs, &ps) < 0) {
			ps.skip = 0;
			snprintf(ps.why, sizeof(ps.why), "entry%s",
				 a->flags & ATTACH_ENTRY ? " (--entry-probes)" : "");
		}
		if (a->flags & ATTACH_VERBOSE)
			fprintf(stderr, "memtrace: %s: %s+%u: %s%s\n", shown,
				pf->name, ps.skip, ps.why,
				(a->flags & ATTACH_SESSION) && pf->ret ?
				" [session]" : "");
		if ((a->flags & ATTACH_SESSION) && pf->ret) {
			offs[nsess] = fn.file_off + ps.skip;
			cookies[nsess++] = pf->fn;
			nprobed++;
			continue;
		}
		err = attach_one(a, t, path, pf, fn.file_off + ps.skip);
		if (err) {
			fprintf(stderr, "memtrace: %s: cannot probe %s: %s\n",
				shown, pf->name, strerror(-err));
			goto out;
		}
		nprobed++;
	}
	if (nsess) {
		err = session_attach(a, t, path, offs, cookies, nsess);
		if (err) {
			fprintf(stderr, "memtrace: %s: cannot attach session "
				"uprobes: %s\n", shown, strerror(-err));
			goto out;
		}
	}
	err = nprobed ? 0 : -ENOENT;
out:
	elfsym__close(es);
	if (err) {
		target_release(t);
		a->nr--;
	}
	return err;
}

/*
 * Is the file one a process calls malloc and free in: the C library, an
 * allocator linked in or preloaded (jemalloc, tcmalloc, mimalloc, ...)
 * or a static executable with symbols?  Whatever defines both is probed;
 * the answer is kept per file, as every process maps the same few.
 */
static bool is_allocator(struct attach *a, const char *path,
			 const struct stat *st)
{
	struct elfsym_func fn;
	struct elfsym *es;
	bool yes = false;
	int i;

	for (i = 0; i < a->nseen; i++)
		if (a->seen[i].dev == st->st_dev && a->seen[i].ino == st->st_ino)
			return a->seen[i].alloc;
	if (!elfsym__open(path, &es)) {
		yes = !elfsym__find(es, "malloc", &fn) &&
		      !elfsym__find(es, "free", &fn);
		elfsym__close(es);
	}
	if (!array_grow(&a->seen, &a->capseen, a->nseen, sizeof(*a->seen)))
		a->seen[a->nseen++] = (struct seen_obj){
			.dev = st->st_dev, .ino = st->st_ino, .alloc = yes,
		};
	/* the kernel notes where such a file is mapped (alloc_text_add) */
	if (yes) {
		uint64_t ino = st->st_ino;
		uint8_t one = 1;

		bpf_map_update_elem(bpf_map__fd(a->skel->maps.alloc_inodes),
				    &ino, &one, BPF_ANY);
	}
	return yes;
}

/* Probe path for target if it is an allocator: 1 probed, 0 not one. */
static int attach_if_allocator(struct attach *a, int target, uint64_t id,
			       const char *path)
{
	struct stat st;
	int err;

	if (stat(path, &st) || !S_ISREG(st.st_mode) ||
	    !is_allocator(a, path, &st))
		return 0;
	err = attach_lib(a, target, id, path, &st);
	return err == -ENOENT ? 0 : err ? err : 1;
}

/*
 * Probe every allocator pid maps (see is_allocator), for target: pid
 * itself, or -1 for every process mapping the same file.  Idempotent.
 * 0: at least one is probed; -ENOENT: none is mapped (yet, or a static
 * binary without symbols); -ESRCH: no such process.
 */
static int scan_pid(struct attach *a, int pid, int target, uint64_t id)
{
	char path[PATH_MAX + 64], exe[PATH_MAX + 16] = "";
	struct mt_alloc_text text = {};
	int i, err, found = 0, fail = 0, nt = 0;
	struct procfs_maps *maps;
	uint32_t key = pid;
	ssize_t n;

	/* a snapshot of the thread's own: the loop's are not shared here */
	err = procfs__read_maps(pid, &maps);
	if (err)
		return err;
	if (!procfs__path(path, sizeof(path), pid, "exe")) {
		n = readlink(path, exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
	}
	for (i = 0; i < maps->n; i++) {
		const struct procfs_map *m = &maps->m[i];

		/* code only: every allocator has exactly one such mapping */
		if (!code_file(maps, i, path, sizeof(path)))
			continue;
		err = attach_if_allocator(a, target, id, path);
		if (err < 0)
			fail = err;
		if (err <= 0)
			continue;
		found++;
		/*
		 * Where its code is, for the kernel to tell the allocator's
		 * own frees from the program's; not a static executable's,
		 * which is the program too.
		 */
		/* exe may end in " (deleted)", the map's path not */
		if (strncmp(m->path, exe, strlen(m->path)) &&
		    nt < MT_ALLOC_TEXTS) {
			text.lo[nt] = m->start;
			text.hi[nt++] = m->end;
		}
	}
	procfs__maps_put(maps);
	if (nt)
		bpf_map_update_elem(bpf_map__fd(a->skel->maps.alloc_text), &key,
				    &text, BPF_ANY);
	if (found)
		return 0;
	return fail ? fail : -ENOENT;
}

/* A code file some process mapped: probe it node-wide if an allocator. */
static int node_file(struct attach *a, const char *path, uint64_t ino)
{
	struct stat st;

	/* another mount namespace's file may not be this one: leave it */
	if (stat(path, &st) || st.st_ino != ino)
		return -ENOENT;
	return attach_if_allocator(a, -1, 0, path);
}

/* Release the probes held for one row (pid, id) alone. */
static void forget_row(struct attach *a, int pid, uint64_t id)
{
	int i;

	for (i = 0; i < a->nr; i++) {
		if (a->targets[i].pid != pid || a->targets[i].id != id)
			continue;
		target_release(&a->targets[i]);
		a->targets[i] = a->targets[--a->nr];
		i--;
	}
}

struct cmd_ctx {
	struct attach *a;
	char *libc;
	size_t len;
	int found;
};

static int cmd_lib(const char *lib, void *vctx)
{
	struct cmd_ctx *c = vctx;
	const char *base = strrchr(lib, '/');
	int err;

	err = attach_if_allocator(c->a, -1, 0, lib);
	if (err <= 0)
		return err;
	/* not a linker script named libc.so (musl's is its loader) */
	if (base && is_libc_name(base + 1) && !c->libc[0])
		snprintf(c->libc, c->len, "%s", lib);
	c->found++;
	return 0;
}

static int cmd_attach(struct attach *a, const char *exe, int ref_pid,
		      char *libc, size_t len)
{
	struct cmd_ctx c = { .a = a, .libc = libc, .len = len };
	const char *preload = getenv("LD_PRELOAD");
	char interp[PATH_MAX], name[PATH_MAX];
	struct elfsym *es = NULL;
	int err;

	libc[0] = '\0';
	/* the executable itself: static, or defining its own allocator */
	err = attach_if_allocator(a, -1, 0, exe);
	if (err < 0)
		return err;
	c.found = err;
	err = 0;
	if (elfsym__open(exe, &es))
		es = NULL;
	if (es && !elfsym__interp(es, interp, sizeof(interp)) && !interp[0])
		goto out;	/* static: no library will be loaded */
	/* preloaded libraries come first in the loader's search order */
	while (preload && *preload && !err) {
		size_t n = strcspn(preload, " :");

		snprintf(name, sizeof(name), "%.*s", (int)n, preload);
		preload += n + (preload[n] != '\0');
		if (n && strchr(name, '/'))
			err = cmd_lib(name, &c);
	}
	/* the libraries it links against directly (jemalloc, libc, ...) */
	if (es && !err)
		err = elfsym__each_needed(es, exe, NULL, cmd_lib, &c);
	/* musl's loader is its C library; else the one memtrace uses */
	if (!libc[0] && !err && !exe_libc(exe, ref_pid, libc, len))
		err = cmd_lib(libc, &c);
out:
	elfsym__close(es);
	if (err)
		return err;
	return c.found ? 0 : -ENOENT;
}

/* ---- the attach thread --------------------------------------------- */

/*
 * Registering a uprobe on a library hundreds of processes map takes the
 * kernel a second or more (it visits every mapping): done here, never
 * on the main loop, which keeps draining records and refreshing.  The
 * thread alone touches targets and seen; libbpf attach calls on the
 * loaded programs are safe beside the main thread, which only reads
 * maps.
 */
static void run_job(struct attach *a, struct job *j)
{
	switch (j->op) {
	case ATTACH_OP_PID:
		j->err = scan_pid(a, j->pid, j->pid, j->id);
		break;
	case ATTACH_OP_NODE_LIB:
		j->err = scan_pid(a, j->pid, -1, 0);
		break;
	case ATTACH_OP_FILE:
		j->err = node_file(a, j->path, j->ino);
		break;
	case ATTACH_OP_FORGET:
		forget_row(a, j->pid, j->id);
		j->err = 0;
		break;
	case ATTACH_OP_CALL:
		j->err = j->fn(a, j->arg);
		break;
	}
}

static void publish(struct attach *a)
{
	int i, n = 0;

	for (i = 0; i < a->nr; i++)
		n += a->targets[i].nlinks;
	a->nlinks_pub = n;
	a->nlibs_pub = a->nr;
}

static void job_free(struct job *j)
{
	free(j->path);
	free(j);
}

/*
 * The main thread waits for the attach thread (lock held): a tenth of a
 * second at a time, checking in with the watchdog between, since it is
 * waiting, not hung.
 */
static void wait_beating(struct attach *a)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 100 * 1000 * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&a->done_cv, &a->lock, &ts);
	pthread_mutex_unlock(&a->lock);
	watchdog__beat();
	pthread_mutex_lock(&a->lock);
}

static void *worker(void *arg)
{
	struct attach *a = arg;
	struct job *j;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->todo && !a->stop)
			pthread_cond_wait(&a->more, &a->lock);
		if (a->stop)
			break;
		j = a->todo;
		a->todo = j->next;
		if (!a->todo)
			a->todo_tail = &a->todo;
		pthread_mutex_unlock(&a->lock);
		run_job(a, j);
		pthread_mutex_lock(&a->lock);
		publish(a);
		a->pending--;
		if (j->sync) {
			j->done = true;
			pthread_cond_broadcast(&a->done_cv);
		} else if (j->op == ATTACH_OP_FORGET) {
			job_free(j);
		} else {
			j->next = NULL;
			*a->done_tail = j;
			a->done_tail = &j->next;
		}
	}
	a->exited = true;
	pthread_cond_broadcast(&a->done_cv);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int attach__new(struct memtrace_bpf *skel, unsigned int flags,
		struct attach **out)
{
	struct attach *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return -ENOMEM;
	a->skel = skel;
	a->flags = flags;
	a->todo_tail = &a->todo;
	a->done_tail = &a->done;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->more, NULL);
	pthread_cond_init(&a->done_cv, NULL);
	err = -pthread_create(&a->thread, NULL, worker, a);
	if (err) {
		free(a);
		return err;
	}
	a->started = true;
	*out = a;
	return 0;
}

#define RELEASERS	8

struct releaser {
	struct attach *a;
	int first;		/* targets first, first + RELEASERS, ... */
};

static void *release_some(void *arg)
{
	struct releaser *r = arg;
	int i;

	for (i = r->first; i < r->a->nr; i += RELEASERS) {
		struct target *t = &r->a->targets[i];

		while (t->nlinks) {
			bpf_link__destroy(t->links[--t->nlinks]);
			watchdog__beat();
		}
		target_release(t);
		watchdog__beat();
	}
	return NULL;
}

/*
 * Each link's detach visits every mapping of its file again (a second
 * or more under load for a libc the whole node maps) and then waits for
 * the kernel's grace periods: one link after another, 150 -p targets
 * took 49 s to let go, their processes paying the probes meanwhile.
 * Several threads share the waits.  Progress is said to the watchdog
 * link by link.
 */
static void release_all(struct attach *a)
{
	struct releaser r[RELEASERS];
	pthread_t th[RELEASERS];
	bool started[RELEASERS] = {};
	int i, n = a->nr < RELEASERS ? a->nr : RELEASERS;

	for (i = 0; i < n; i++) {
		r[i] = (struct releaser){ .a = a, .first = i };
		/* a thread that cannot start: its share done here */
		started[i] = i && !pthread_create(&th[i], NULL, release_some,
						  &r[i]);
	}
	for (i = 0; i < n; i++)
		if (!started[i])
			release_some(&r[i]);
	for (i = 0; i < n; i++)
		if (started[i])
			pthread_join(th[i], NULL);
}

void attach__free(struct attach *a)
{
	struct job *j;

	if (!a)
		return;
	/* what is queued is dropped; a job under way ends first */
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->more);
	while (a->started && !a->exited)
		wait_beating(a);
	pthread_mutex_unlock(&a->lock);
	if (a->started)
		pthread_join(a->thread, NULL);
	while ((j = a->todo)) {
		a->todo = j->next;
		job_free(j);
	}
	while ((j = a->done)) {
		a->done = j->next;
		job_free(j);
	}
	release_all(a);
	free(a->targets);
	free(a->seen);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->more);
	pthread_cond_destroy(&a->done_cv);
	free(a);
}

static void push(struct attach *a, struct job *j)
{
	j->next = NULL;
	*a->todo_tail = j;
	a->todo_tail = &j->next;
	a->pending++;
	pthread_cond_signal(&a->more);
}

int attach__queue(struct attach *a, enum attach_op op, int pid, uint64_t id,
		  const char *path, uint64_t ino)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->op = op;
	j->pid = pid;
	j->id = id;
	j->ino = ino;
	if (path && !(j->path = strdup(path))) {
		free(j);
		return -ENOMEM;
	}
	pthread_mutex_lock(&a->lock);
	push(a, j);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

void attach__forget(struct attach *a, int pid, uint64_t id)
{
	struct job **pp, *j;

	pthread_mutex_lock(&a->lock);
	/* its attaches not begun yet are dropped: the process is gone */
	for (pp = &a->todo; (j = *pp);) {
		if (j->pid == pid && j->id == id &&
		    !j->sync && j->op != ATTACH_OP_FORGET) {
			*pp = j->next;
			a->pending--;
			job_free(j);
			continue;
		}
		pp = &j->next;
	}
	a->todo_tail = pp;
	pthread_mutex_unlock(&a->lock);
	/* one under way, or done: its links go after it, in order */
	attach__queue(a, ATTACH_OP_FORGET, pid, id, NULL, 0);
}

int attach__results(struct attach *a, struct attach_result *res, int max)
{
	struct job *j;
	int n = 0;

	if (!a)
		return 0;
	pthread_mutex_lock(&a->lock);
	while (n < max && (j = a->done)) {
		a->done = j->next;
		if (!a->done)
			a->done_tail = &a->done;
		res[n++] = (struct attach_result){
			.op = j->op, .pid = j->pid, .id = j->id, .err = j->err,
		};
		job_free(j);
	}
	pthread_mutex_unlock(&a->lock);
	return n;
}

int attach__pending(struct attach *a)
{
	int n;

	if (!a)
		return 0;
	pthread_mutex_lock(&a->lock);
	n = a->pending;
	pthread_mutex_unlock(&a->lock);
	return n;
}

/*
 * Run fn on the attach thread and wait for it, checking in with the
 * watchdog meanwhile: the main thread waits, it is not hung.  Used
 * before the loop starts (-p's pids, -- CMD's allocators).
 */
static int call(struct attach *a, int (*fn)(struct attach *, void *),
		void *arg)
{
	struct job j = { .op = ATTACH_OP_CALL, .fn = fn, .arg = arg,
			 .sync = true };

	pthread_mutex_lock(&a->lock);
	push(a, &j);
	while (!j.done)
		wait_beating(a);
	pthread_mutex_unlock(&a->lock);
	return j.err;
}

struct pid_arg {
	int pid;
	uint64_t id;
};

static int call_pid(struct attach *a, void *arg)
{
	struct pid_arg *p = arg;

	return scan_pid(a, p->pid, p->pid, p->id);
}

int attach__pid(struct attach *a, int pid, uint64_t id)
{
	struct pid_arg p = { pid, id };

	return call(a, call_pid, &p);
}

struct cmd_arg {
	const char *exe;
	int ref_pid;
	char *libc;
	size_t len;
};

static int call_cmd(struct attach *a, void *arg)
{
	struct cmd_arg *c = arg;

	return cmd_attach(a, c->exe, c->ref_pid, c->libc, c->len);
}

int attach__cmd(struct attach *a, const char *exe, int ref_pid, char *libc,
		size_t len)
{
	struct cmd_arg c = { exe, ref_pid, libc, len };

	return call(a, call_cmd, &c);
}

int attach__nr_links(struct attach *a)
{
	int n;

	pthread_mutex_lock(&a->lock);
	n = a->nlinks_pub;
	pthread_mutex_unlock(&a->lock);
	return n;
}

int attach__nr_libs(struct attach *a)
{
	int n;

	pthread_mutex_lock(&a->lock);
	n = a->nlibs_pub;
	pthread_mutex_unlock(&a->lock);
	return n;
}
