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
#include "memtrace.h"
#include "memtrace.skel.h"
#include "util.h"
#include "watchdog.h"

/* What the watchdog allows for one attach call (see watchdog__busy). */
#define ATTACH_BUSY_SECS	30

struct target {
	int pid;		/* -1: node-wide */
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

struct attach {
	struct memtrace_bpf *skel;
	unsigned int flags;
	struct target *targets;
	int nr, cap;
	struct seen_obj *seen;
	int nseen, capseen;
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

int attach__new(struct memtrace_bpf *skel, unsigned int flags,
		struct attach **out)
{
	struct attach *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->skel = skel;
	a->flags = flags;
	*out = a;
	return 0;
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

void attach__free(struct attach *a)
{
	int i;

	if (!a)
		return;
	for (i = 0; i < a->nr; i++)
		target_release(&a->targets[i]);
	free(a->targets);
	free(a->seen);
	free(a);
}

static bool is_libc_name(const char *base)
{
	return !strncmp(base, "libc.so", 7) || !strncmp(base, "libc-2.", 7) ||
	       !strncmp(base, "ld-musl-", 8) || !strncmp(base, "libc.musl-", 10);
}

/* One code mapping of a file, from a line of /proc/PID/maps. */
struct code_map {
	unsigned long start, end;
	const char *file;	/* as the process sees it */
	const char *base;	/* its base name */
};

/*
 * One line of /proc/PID/maps: if it maps code from a file, that file as
 * a path we can open (through pid's root: containers see their own
 * files; a replaced or deleted file only through map_files) in path.
 * Returns false for anything else.
 */
static bool maps_code_file(char *line, int pid, char *path, size_t len,
			   struct code_map *m)
{
	char *file = strchr(line, '/');
	char perms[8];
	size_t n;

	if (!file || sscanf(line, "%lx-%lx %7s", &m->start, &m->end,
			    perms) != 3 || perms[2] != 'x')
		return false;
	n = strlen(file);
	if (n && file[n - 1] == '\n')
		file[--n] = '\0';
	m->file = file;
	m->base = strrchr(file, '/') + 1;
	if (n > 10 && !strcmp(file + n - 10, " (deleted)"))
		snprintf(path, len, "/proc/%d/map_files/%lx-%lx", pid,
			 m->start, m->end);
	else
		snprintf(path, len, "/proc/%d/root%s", pid, file);
	return true;
}

/* The C library pid maps, as a path we can open. */
static int find_libc(int pid, char *path, size_t len)
{
	char maps[64], line[PATH_MAX + 128];
	struct code_map m;
	int err = -ENOENT;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	f = fopen(maps, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (err && fgets(line, sizeof(line), f))
		if (maps_code_file(line, pid, path, len, &m) &&
		    is_libc_name(m.base))
			err = 0;
	fclose(f);
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

static struct target *target_find(struct attach *a, int pid, dev_t dev,
				  ino_t ino)
{
	int i;

	for (i = 0; i < a->nr; i++) {
		struct target *t = &a->targets[i];

		if (t->pid == pid && t->dev == dev && t->ino == ino)
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
static int attach_lib(struct attach *a, int pid, const char *path,
		      const struct stat *st)
{
	uint64_t done[ARRAY_SIZE(probe_fns)], offs[ARRAY_SIZE(probe_fns)];
	uint64_t cookies[ARRAY_SIZE(probe_fns)];
	struct elfsym *es = NULL;
	char shown[PATH_MAX];	/* path, from the target's maps: escaped */
	int nsess = 0;
	struct target *t;
	int err, i, j, ndone = 0, nprobed = 0;

	if (target_find(a, pid, st->st_dev, st->st_ino))
		return 0;
	t = realloc(a->targets, (a->nr + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	a->targets = t;
	t = &a->targets[a->nr++];
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->dev = st->st_dev;
	t->ino = st->st_ino;
	t->session_fd = -1;

	sanitize(path, strlen(path), shown, sizeof(shown));
	err = elfsym__open(path, &es);
	if (err)
		goto out;
	for (i = 0; i < (int)ARRAY_SIZE(probe_fns); i++) {
		const struct probe_fn *pf = &probe_fns[i];

		/*
		 * A probe on a library hundreds of processes map takes the
		 * kernel a second or more to attach (it visits every mapping):
		 * the watchdog allows for it.
		 */
		watchdog__busy(ATTACH_BUSY_SECS);
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
		watchdog__busy(ATTACH_BUSY_SECS);
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
	watchdog__beat();	/* done: the usual allowance again */
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
static int attach_if_allocator(struct attach *a, int target, const char *path)
{
	struct stat st;
	int err;

	if (stat(path, &st) || !S_ISREG(st.st_mode) ||
	    !is_allocator(a, path, &st))
		return 0;
	err = attach_lib(a, target, path, &st);
	return err == -ENOENT ? 0 : err ? err : 1;
}

/*
 * Probe every allocator pid maps (see is_allocator), for target: pid
 * itself, or -1 for every process mapping the same file.  Idempotent.
 * 0: at least one is probed; -ENOENT: none is mapped (yet, or a static
 * binary without symbols); -ESRCH: no such process.
 */
static int scan_pid(struct attach *a, int pid, int target)
{
	char maps[64], line[PATH_MAX + 128], path[PATH_MAX + 64];
	char exe[PATH_MAX + 16] = "";
	struct mt_alloc_text text = {};
	int err, found = 0, fail = 0, nt = 0;
	uint32_t key = pid;
	struct code_map m;
	ssize_t n;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/exe", pid);
	n = readlink(maps, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	f = fopen(maps, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (fgets(line, sizeof(line), f)) {
		/* code only: every allocator has exactly one such mapping */
		if (!maps_code_file(line, pid, path, sizeof(path), &m))
			continue;
		err = attach_if_allocator(a, target, path);
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
		if (strcmp(m.file, exe) && nt < MT_ALLOC_TEXTS) {
			text.lo[nt] = m.start;
			text.hi[nt++] = m.end;
		}
	}
	fclose(f);
	if (nt)
		bpf_map_update_elem(bpf_map__fd(a->skel->maps.alloc_text), &key,
				    &text, BPF_ANY);
	if (found)
		return 0;
	return fail ? fail : -ENOENT;
}

int attach__node_file(struct attach *a, const char *path, uint64_t ino)
{
	struct stat st;

	/* another mount namespace's file may not be this one: leave it */
	if (stat(path, &st) || st.st_ino != ino)
		return -ENOENT;
	return attach_if_allocator(a, -1, path);
}

int attach__pid(struct attach *a, int pid)
{
	return scan_pid(a, pid, pid);
}

int attach__node_lib(struct attach *a, int pid)
{
	return scan_pid(a, pid, -1);
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

	err = attach_if_allocator(c->a, -1, lib);
	if (err <= 0)
		return err;
	/* not a linker script named libc.so (musl's is its loader) */
	if (base && is_libc_name(base + 1) && !c->libc[0])
		snprintf(c->libc, c->len, "%s", lib);
	c->found++;
	return 0;
}

int attach__cmd(struct attach *a, const char *exe, int ref_pid, char *libc,
		size_t len)
{
	struct cmd_ctx c = { .a = a, .libc = libc, .len = len };
	const char *preload = getenv("LD_PRELOAD");
	char interp[PATH_MAX], name[PATH_MAX];
	struct elfsym *es = NULL;
	int err;

	libc[0] = '\0';
	/* the executable itself: static, or defining its own allocator */
	err = attach_if_allocator(a, -1, exe);
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

void attach__forget_pid(struct attach *a, int pid)
{
	int i;

	for (i = 0; i < a->nr; i++) {
		if (a->targets[i].pid != pid)
			continue;
		target_release(&a->targets[i]);
		a->targets[i] = a->targets[--a->nr];
		i--;
	}
}

int attach__nr_links(const struct attach *a)
{
	int i, n = 0;

	for (i = 0; i < a->nr; i++)
		n += a->targets[i].nlinks;
	return n;
}

int attach__nr_libs(const struct attach *a)
{
	return a->nr;
}
