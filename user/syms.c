// SPDX-License-Identifier: GPL-2.0
/*
 * Symbolizer for user-space addresses, on elfutils libdwfl.
 *
 * Every ELF object gets its own Dwfl holding one module reported at its
 * link-time addresses (base 0, add_p_vaddr), so a module address is the
 * ELF virtual address and does not depend on where a process mapped the
 * file.  That is what lets one loaded libc serve every process: a
 * process only contributes a table of its executable mappings, each
 * with the load bias that turns a process address into an ELF address.
 *
 * Lookups are memoized per object and ELF address, because the tracer
 * symbolizes the same hot call sites over and over (every report, every
 * folded line) and dwarf_getscopes walks a whole CU per call.
 */
#define _GNU_SOURCE
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cfi.h"
#include "debuginfod.h"
#include "gobin.h"
#include "hashmap.h"
#include "procfs.h"
#include "syms.h"

#define CACHE_SLOTS	8192		/* power of two */
#define CACHE_MAX	(CACHE_SLOTS / 2) /* flush when half full */
#define MAX_INLINE	16		/* frames kept per cached address */
#define RELOAD_NS	(100ULL * 1000 * 1000)
#define KEY_MAX		64

struct syms_load {
	uint64_t offset, vaddr, filesz;
};

/* A memoized lookup; frames == NULL marks a free slot. */
struct syms_cent {
	uint64_t key;			/* vaddr << 1 | is_return_address */
	int n;
	struct syms_frame *frames;
};

struct syms_obj {
	int refs;
	uint64_t hash;
	size_t key_len;
	unsigned char key[KEY_MAX];
	char name[256];
	char build_id[41];
	Dwfl *dwfl;
	Dwfl_Module *mod;
	Dwfl_Callbacks cb;		/* dwfl keeps a pointer to it */
	char *debug_path;		/* and cb points here */
	bool has_dwarf;
	struct syms_load *loads;
	int nr_loads;
	struct syms_cent *cache;
	int cache_used;
	struct gobin *go;		/* a Go program: frames from pclntab */
	/*
	 * No local debug information, its build-id asked of debuginfod in
	 * the background: the file (a dup of fd) to load again with the
	 * debug file once it is in the client's cache.
	 */
	bool dbg_wait;
	int reload_fd;
	char *file_name;
	unsigned int dbg_seen;		/* dbgd__answers() last looked at */
	char *dbg_file;			/* what debuginfod fetched */
};

struct syms_map {
	uint64_t start, end, pgoff;
	uint64_t bias;			/* process address - ELF address */
	uint64_t ino;
	char *path;			/* as /proc/PID/maps shows it */
	bool deleted;			/* maps said " (deleted)" */
	struct syms_obj *obj;		/* NULL: no usable ELF behind it */
};

struct syms_proc {
	int pid;
	struct syms_map *maps;		/* sorted by start, no overlaps */
	int nr_maps;
	uint64_t loaded_ns;
	uint64_t read_ns;		/* start of the /proc read maps is from */
	bool loaded;
	/*
	 * Its maps could not be read (it exited): not tried again at each
	 * lookup.  Each frame of each site of thousands of exited rows
	 * (an exec storm) cost a failed open of /proc/PID/maps a refresh.
	 */
	bool gone;
};

struct syms {
	struct hashmap objs;		/* key hash -> obj (a multimap) */
	struct hashmap procs;		/* pid -> proc */
	int nr_objs;
	struct stat root;		/* our own "/", to spot chroots */
	struct dbgd *dbgd;		/* NULL: no DEBUGINFOD_URLS */
};

static uint64_t fnv1a(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Truncating copy; names longer than the frame fields are cut. */
static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = src ? strnlen(src, len - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

/* libstdc++'s demangler: C++ frames read as people write them */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

static void copy_func(char *dst, size_t len, const char *name)
{
	char *dem;
	int status = -1;

	if (name && name[0] == '_' && name[1] == 'Z') {
		dem = __cxa_demangle(name, NULL, NULL, &status);
		if (dem && !status) {
			copy_str(dst, len, dem);
			free(dem);
			return;
		}
		free(dem);
	}
	copy_str(dst, len, name);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* ---- ELF objects ------------------------------------------------------ */

static void obj_cache_flush(struct syms_obj *o)
{
	int i;

	if (!o->cache)
		return;
	for (i = 0; i < CACHE_SLOTS; i++) {
		free(o->cache[i].frames);
		o->cache[i].frames = NULL;
	}
	o->cache_used = 0;
}

/* Nothing more expected from debuginfod for o. */
static void obj_stop_wait(struct syms_obj *o)
{
	if (!o->dbg_wait)
		return;
	close(o->reload_fd);
	free(o->file_name);
	o->file_name = NULL;
	o->dbg_wait = false;
}

static void obj_destroy(struct syms_obj *o)
{
	obj_stop_wait(o);
	free(o->dbg_file);
	obj_cache_flush(o);
	free(o->cache);
	gobin__free(o->go);
	if (o->dwfl)
		dwfl_end(o->dwfl);
	free(o->debug_path);
	free(o->loads);
	free(o);
}

static void obj_put(struct syms *s, struct syms_obj *o)
{
	struct hashmap_entry *e;

	if (!o || --o->refs > 0)
		return;
	hashmap__for_each_key_entry(&s->objs, e, o->hash) {
		if (e->value == o) {
			hashmap__delete_entry(&s->objs, e);
			break;
		}
	}
	s->nr_objs--;
	obj_destroy(o);
}

/*
 * Identify the file behind fd: its GNU build-id, or when it has none the
 * inode and modification stamp, which is as good as it gets.
 */
static int obj_key(int fd, unsigned char *key, size_t *key_len, char *hex)
{
	const unsigned char *id;
	struct stat st;
	ssize_t n;
	Elf *elf;
	int i, err = 0;

	hex[0] = '\0';
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		err = -ENOEXEC;
		goto out;
	}
	n = dwelf_elf_gnu_build_id(elf, (const void **)&id);
	if (n > 0) {
		if (n > KEY_MAX - 1)
			n = KEY_MAX - 1;
		key[0] = 'b';
		memcpy(key + 1, id, n);
		*key_len = n + 1;
		for (i = 0; i < n && i < 20; i++)
			sprintf(hex + 2 * i, "%02x", id[i]);
		goto out;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		goto out;
	}
	key[0] = 'i';
	memcpy(key + 1, &st.st_dev, sizeof(st.st_dev));
	memcpy(key + 9, &st.st_ino, sizeof(st.st_ino));
	memcpy(key + 17, &st.st_size, sizeof(st.st_size));
	memcpy(key + 25, &st.st_mtim, sizeof(st.st_mtim));
	*key_len = 25 + sizeof(st.st_mtim);
out:
	if (elf)
		elf_end(elf);
	return err;
}

static int obj_read_loads(struct syms_obj *o)
{
	GElf_Phdr mem, *ph;
	Dwarf_Addr bias;
	size_t i, phnum;
	Elf *elf;

	elf = dwfl_module_getelf(o->mod, &bias);
	if (!elf || elf_getphdrnum(elf, &phnum))
		return -ENOEXEC;
	o->loads = calloc(phnum ? phnum : 1, sizeof(*o->loads));
	if (!o->loads)
		return -ENOMEM;
	for (i = 0; i < phnum; i++) {
		ph = gelf_getphdr(elf, i, &mem);
		if (!ph || ph->p_type != PT_LOAD)
			continue;
		o->loads[o->nr_loads].offset = ph->p_offset;
		o->loads[o->nr_loads].vaddr = ph->p_vaddr;
		o->loads[o->nr_loads].filesz = ph->p_filesz;
		o->nr_loads++;
	}
	return o->nr_loads ? 0 : -ENOEXEC;
}

/* find_local() finds the object a module belongs to in its userdata. */
static void set_userdata(Dwfl_Module *mod, struct syms_obj *o)
{
	void **ud = NULL;

	if (dwfl_module_info(mod, &ud, NULL, NULL, NULL, NULL, NULL, NULL) &&
	    ud)
		*ud = o;
}

/* Open prefix dir/name as a debug file; its path in *found. */
static int try_debug(const char *prefix, const char *dir, const char *name,
		     char **found)
{
	char *path;
	int fd;

	if (asprintf(&path, "%s%s/%s", prefix, dir, name) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		*found = path;
	else
		free(path);
	return fd;
}

/*
 * With DEBUGINFOD_URLS set, the symbolizer's own search for a debug file:
 * local files only, as dwfl_standard_find_debuginfo searches them (by
 * build-id under the debug directories; by .gnu_debuglink next to the
 * file, in its .debug/ and under each debug directory), or the file
 * debuginfod fetched for it in the background -- never the inline
 * download dwfl_standard_find_debuginfo would make (see debuginfod.h).
 */
static int find_local(Dwfl_Module *mod, void **userdata, const char *modname,
		      Dwarf_Addr base, const char *file_name,
		      const char *debuglink, GElf_Word crc, char **found)
{
	const struct syms_obj *o = *userdata;
	char dir[PATH_MAX], sub[PATH_MAX], *p, *e, *list;
	const char *rel;
	int fd;

	if (o && o->dbg_file) {
		fd = open(o->dbg_file, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			*found = strdup(o->dbg_file);
		return fd;
	}
	fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base,
					  file_name, debuglink, crc, found);
	if (fd >= 0 || !debuglink || !file_name || !o || !o->debug_path)
		return fd;
	snprintf(dir, sizeof(dir), "%s", file_name);
	p = strrchr(dir, '/');
	if (!p)
		return -1;
	*p = '\0';
	/* under a debug directory: the file's own path in its root */
	rel = dir;
	if (!strncmp(dir, "/proc/", 6) && strstr(dir, "/root/"))
		rel = strstr(dir, "/root/") + 5;
	list = strdup(o->debug_path);
	for (p = list; p && fd < 0; p = e) {
		e = strchr(p, ':');
		if (e)
			*e++ = '\0';
		if (!p[0]) {		/* next to the file, not itself */
			if (strcmp(debuglink, base_name(file_name)))
				fd = try_debug("", dir, debuglink, found);
		} else if (p[0] != '/') {	/* .debug/ beside it */
			snprintf(sub, sizeof(sub), "/%s", p);
			fd = try_debug(dir, sub, debuglink, found);
		} else {
			fd = try_debug(p, rel, debuglink, found);
		}
	}
	free(list);
	return fd;
}

/*
 * Load a new object from fd (consumed).  file_name is where debuglink
 * searches start; root is "/proc/PID/root" for a process with another
 * root, so its own /usr/lib/debug is searched by build-id too.  The
 * debug file is looked up right here and not lazily: the process, and
 * with it /proc/PID/root and map_files, may be gone by the time the
 * first address of this object is symbolized.
 */
static int obj_create(struct syms *s, int fd, const char *file_name,
		      const char *root, struct syms_obj **out)
{
	struct syms_obj *o;
	Dwarf_Addr bias;
	int err, again = -1;

	o = calloc(1, sizeof(*o));
	if (!o) {
		err = -ENOMEM;
		goto out_close;
	}
	if (root)
		err = asprintf(&o->debug_path,
			       ":.debug:/usr/lib/debug:%s/usr/lib/debug", root);
	else
		err = asprintf(&o->debug_path, ":.debug:/usr/lib/debug");
	if (err < 0) {
		o->debug_path = NULL;
		err = -ENOMEM;
		goto out_close;
	}
	o->cb.find_elf = dwfl_build_id_find_elf;
	o->cb.find_debuginfo = s->dbgd ? find_local :
			       dwfl_standard_find_debuginfo;
	o->cb.section_address = dwfl_offline_section_address;
	o->cb.debuginfo_path = &o->debug_path;
	copy_str(o->name, sizeof(o->name), base_name(file_name));
	/*
	 * Go programs name their frames in .gopclntab, which survives
	 * stripping and knows the inlined calls; not Go is no error.
	 */
	gobin__open_fd(fd, &o->go);

	o->dwfl = dwfl_begin(&o->cb);
	if (!o->dwfl) {
		err = -ENOMEM;
		goto out_close;
	}
	if (s->dbgd)
		again = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	dwfl_report_begin(o->dwfl);
	o->mod = dwfl_report_elf(o->dwfl, o->name, file_name, fd, 0, true);
	if (!o->mod) {
		err = -ENOEXEC;
		goto out_close;
	}
	fd = -1;	/* the module owns it now */
	set_userdata(o->mod, o);
	if (dwfl_report_end(o->dwfl, NULL, NULL)) {
		err = -ENOEXEC;
		goto out;
	}
	o->has_dwarf = dwfl_module_getdwarf(o->mod, &bias) != NULL;
	dwfl_module_getsymtab(o->mod);
	err = obj_read_loads(o);
	if (err)
		goto out;
	if (!o->has_dwarf && again >= 0 && !o->go) {
		o->file_name = strdup(file_name);
		if (o->file_name) {
			o->reload_fd = again;
			o->dbg_wait = true;
			again = -1;
		}
	}
	if (again >= 0)
		close(again);
	o->cache = calloc(CACHE_SLOTS, sizeof(*o->cache));
	if (!o->cache) {
		err = -ENOMEM;
		goto out;
	}
	*out = o;
	return 0;

out_close:
	if (fd >= 0)
		close(fd);
out:
	if (again >= 0)
		close(again);
	if (o)
		obj_destroy(o);
	return err;
}

/*
 * The debug file debuginfod had for o is in the client's cache now: load
 * the file again (the lookup takes it from the cache) and forget the
 * addresses memoized without names.
 */
static int obj_reload(struct syms *s, struct syms_obj *o)
{
	Dwfl_Module *mod;
	Dwarf_Addr bias;
	Dwfl *dwfl;
	int fd;

	fd = fcntl(o->reload_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	dwfl = dwfl_begin(&o->cb);
	if (!dwfl) {
		close(fd);
		return -ENOMEM;
	}
	dwfl_report_begin(dwfl);
	mod = dwfl_report_elf(dwfl, o->name, o->file_name, fd, 0, true);
	if (mod)
		set_userdata(mod, o);	/* find_local() opens o->dbg_file */
	else
		close(fd);
	if (!mod || dwfl_report_end(dwfl, NULL, NULL) ||
	    !dwfl_module_getdwarf(mod, &bias)) {
		dwfl_end(dwfl);
		return -ENOENT;
	}
	dwfl_module_getsymtab(mod);
	dwfl_end(o->dwfl);
	o->dwfl = dwfl;
	o->mod = mod;
	o->has_dwarf = true;
	obj_cache_flush(o);
	return 0;
}

/* Has debuginfod answered for o?  Cheap while no answer came in. */
static void obj_check_debug(struct syms *s, struct syms_obj *o)
{
	unsigned int n;

	if (!o->dbg_wait)
		return;
	n = dbgd__answers(s->dbgd);
	if (n == o->dbg_seen)
		return;
	o->dbg_seen = n;
	switch (dbgd__state(s->dbgd, o->build_id, &o->dbg_file)) {
	case DBGD_PENDING:
		return;
	case DBGD_ARRIVED:
		obj_reload(s, o);
		break;
	case DBGD_FAILED:
		break;
	}
	obj_stop_wait(o);
}

/* ---- process mappings ------------------------------------------------- */

static bool proc_has_own_root(struct syms *s, int pid)
{
	char path[320];
	struct stat st;

	if (procfs__path(path, sizeof(path), pid, "root/") || stat(path, &st))
		return false;
	return st.st_dev != s->root.st_dev || st.st_ino != s->root.st_ino;
}

/*
 * Open the file behind a mapping.  The path in maps is relative to the
 * process's root, so go through /proc/PID/root; if the file there is
 * not the mapped one any more (deleted, or replaced by an upgrade), the
 * mapped inode itself is still reachable through map_files (root only).
 */
static int map_open(int pid, const struct syms_map *m, const char *clean)
{
	struct procfs_map pm = { .start = m->start, .end = m->end };
	char path[PATH_MAX + 320];
	struct stat st;
	int fd;

	if (!m->deleted &&
	    !procfs__root_file(path, sizeof(path), pid, clean)) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (!fstat(fd, &st) && st.st_ino == m->ino)
				return fd;
			close(fd);
		}
	}
	fd = -1;
	if (!procfs__map_file(path, sizeof(path), pid, &pm))
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	/*
	 * The process is gone (a mapping from a MAPFILE record): the
	 * kernel gave the path from the root of all mounts, ours.
	 */
	fd = open(clean, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (!fstat(fd, &st) && st.st_ino == m->ino)
			return fd;
		close(fd);
	}
	return -ENOENT;
}

static int obj_get(struct syms *s, int pid, const struct syms_map *m,
		   bool own_root, struct syms_obj **out)
{
	unsigned char key[KEY_MAX];
	char clean[PATH_MAX], file_name[PATH_MAX + 320], root[320], hex[41];
	struct hashmap_entry *e;
	struct syms_obj *o;
	size_t key_len = 0;
	uint64_t hash;
	int fd, err;

	*out = NULL;
	copy_str(clean, sizeof(clean), m->path);
	fd = map_open(pid, m, clean);
	if (fd < 0)
		return fd;
	err = obj_key(fd, key, &key_len, hex);
	if (err)
		goto out_close;

	hash = fnv1a(key, key_len);
	hashmap__for_each_key_entry(&s->objs, e, hash) {
		o = e->value;
		if (o->key_len == key_len && !memcmp(o->key, key, key_len)) {
			o->refs++;
			*out = o;
			goto out_close;
		}
	}

	procfs__path(root, sizeof(root), pid, "root");
	snprintf(file_name, sizeof(file_name), "%s%s", own_root ? root : "",
		 clean);
	err = obj_create(s, fd, file_name, own_root ? root : NULL, &o);
	if (err)
		return err;
	memcpy(o->key, key, key_len);
	o->key_len = key_len;
	o->hash = hash;
	memcpy(o->build_id, hex, sizeof(hex));
	if (o->dbg_wait && (!o->build_id[0] ||
			    dbgd__request(s->dbgd, o->build_id)))
		obj_stop_wait(o);
	o->refs = 1;
	if (hashmap__append(&s->objs, hash, o)) {
		obj_destroy(o);
		return -ENOMEM;
	}
	s->nr_objs++;
	*out = o;
	return 0;

out_close:
	close(fd);
	return err;
}

/*
 * Load bias of a mapping: the PT_LOAD segment whose file range holds the
 * mapping's offset says which ELF address the mapping starts at.
 */
static uint64_t map_bias(const struct syms_obj *o, const struct syms_map *m)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	const struct syms_load *l;
	int i;

	for (i = 0; i < o->nr_loads; i++) {
		l = &o->loads[i];
		if ((l->offset & ~(page - 1)) <= m->pgoff &&
		    m->pgoff < l->offset + l->filesz)
			return m->start - m->pgoff - (l->vaddr - l->offset);
	}
	return m->start - m->pgoff;
}

static void maps_free(struct syms *s, struct syms_map *maps, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		obj_put(s, maps[i].obj);
		free(maps[i].path);
	}
	free(maps);
}

/* An unchanged mapping keeps its object without reopening the file. */
static struct syms_map *maps_find_same(struct syms_proc *p,
				       const struct syms_map *m)
{
	int i;

	for (i = 0; i < p->nr_maps; i++) {
		struct syms_map *o = &p->maps[i];

		if (o->start == m->start && o->end == m->end &&
		    o->pgoff == m->pgoff && o->ino == m->ino && o->obj &&
		    !strcmp(o->path, m->path))
			return o;
	}
	return NULL;
}

static int proc_load(struct syms *s, struct syms_proc *p,
		     struct procfs_maps *snap)
{
	struct syms_map *maps = NULL, *tmp, *old, m;
	struct procfs_maps *pm = snap;
	int i, n = 0, cap = 0, err = 0;
	bool own_root;

	if (!pm) {
		err = procfs__read_maps(p->pid, &pm);
		if (err) {
			if (err == -ENOENT || err == -ESRCH)
				p->gone = true;
			return err;
		}
	}
	p->gone = false;
	own_root = proc_has_own_root(s, p->pid);

	for (i = 0; i < pm->n; i++) {
		const struct procfs_map *x = &pm->m[i];

		/* Only code is ever symbolized; anonymous code (JITs) has
		 * nothing to look up, so it stays "[unknown]". */
		if (x->perms[2] != 'x' || !x->path[0])
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			tmp = realloc(maps, cap * sizeof(*maps));
			if (!tmp) {
				err = -ENOMEM;
				goto out;
			}
			maps = tmp;
		}
		memset(&m, 0, sizeof(m));
		m.start = x->start;
		m.end = x->end;
		m.pgoff = x->pgoff;
		m.ino = x->ino;
		m.deleted = x->deleted;
		m.path = strdup(x->path);
		if (!m.path) {
			err = -ENOMEM;
			goto out;
		}
		old = m.path[0] == '/' ? maps_find_same(p, &m) : NULL;
		if (old) {
			m.obj = old->obj;
			m.obj->refs++;
		} else if (m.path[0] == '/') {
			/* Not an ELF or unreadable: degrade, don't fail. */
			err = obj_get(s, p->pid, &m, own_root, &m.obj);
			if (err == -ENOMEM) {
				free(m.path);
				goto out;
			}
			err = 0;
		}
		if (m.obj)
			m.bias = map_bias(m.obj, &m);
		maps[n++] = m;
	}
	if (!n && p->nr_maps) {
		/*
		 * An exiting process (or a zombie) shows no mappings: keep
		 * what we knew, its stacks must still symbolize.
		 */
		p->loaded_ns = now_ns();
		goto out;
	}
	maps_free(s, p->maps, p->nr_maps);
	p->maps = maps;
	p->nr_maps = n;
	maps = NULL;
	n = 0;
	p->loaded = true;
	p->loaded_ns = now_ns();
	p->read_ns = pm->read_ns;
out:
	maps_free(s, maps, n);
	if (pm != snap)
		procfs__maps_put(pm);
	return err;
}

static void proc_free(struct syms *s, struct syms_proc *p);

static struct syms_proc *proc_find(struct syms *s, int pid)
{
	return hashmap__get(&s->procs, (uint32_t)pid);
}

/* pid's state, read from maps (NULL: /proc now) if not known yet. */
static int proc_get_maps(struct syms *s, int pid, struct procfs_maps *maps,
			 struct syms_proc **out)
{
	struct syms_proc *p;
	int err;

	p = proc_find(s, pid);
	if (p) {
		*out = p;
		return 0;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	err = proc_load(s, p, maps);
	/* gone: kept, known as such (see syms_proc) */
	if (err && !p->gone) {
		free(p);
		return err;
	}
	if (hashmap__add(&s->procs, (uint32_t)pid, p)) {
		proc_free(s, p);
		return -ENOMEM;
	}
	*out = p;
	return err;
}

static int proc_get(struct syms *s, int pid, struct syms_proc **out)
{
	return proc_get_maps(s, pid, NULL, out);
}

static struct syms_map *proc_addr_map(struct syms_proc *p, uint64_t addr)
{
	int lo = 0, hi = p->nr_maps - 1, mid;

	while (lo <= hi) {
		mid = lo + (hi - lo) / 2;
		if (addr < p->maps[mid].start)
			hi = mid - 1;
		else if (addr >= p->maps[mid].end)
			lo = mid + 1;
		else
			return &p->maps[mid];
	}
	return NULL;
}

/* ---- lookups ---------------------------------------------------------- */

static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name = NULL;

	/* Linkage names match the ELF symbols used for outer frames. */
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
		name = dwarf_formstring(&attr);
	if (!name && dwarf_attr_integrate(die, DW_AT_name, &attr))
		name = dwarf_formstring(&attr);
	return name;
}

static const char *cu_comp_dir(Dwarf_Die *cu)
{
	Dwarf_Attribute attr;

	return dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
}

/*
 * DWARF file names may be relative to the CU's compilation directory;
 * make them absolute when that fits, so pprof -list can find sources.
 */
static void set_file(struct syms_frame *f, const char *file,
		     const char *comp_dir)
{
	size_t dl, fl;

	if (!file)
		return;
	dl = comp_dir ? strlen(comp_dir) : 0;
	fl = strlen(file);
	if (file[0] == '/' || !dl || dl + 1 + fl >= sizeof(f->file)) {
		copy_str(f->file, sizeof(f->file), file);
		return;
	}
	memcpy(f->file, comp_dir, dl);
	f->file[dl] = '/';
	memcpy(f->file + dl + 1, file, fl + 1);
}

/* Where an inlined instance was called from, in its caller's terms. */
static void call_site(Dwarf_Die *die, const char **file, const char **comp,
		      int *line)
{
	Dwarf_Attribute attr;
	Dwarf_Files *files;
	Dwarf_Word val;
	Dwarf_Die cu;
	size_t nfiles;

	*file = NULL;
	*comp = NULL;
	*line = 0;
	if (dwarf_attr(die, DW_AT_call_line, &attr) &&
	    !dwarf_formudata(&attr, &val))
		*line = (int)val;
	if (!dwarf_attr(die, DW_AT_call_file, &attr) ||
	    dwarf_formudata(&attr, &val))
		return;
	/* The file index belongs to the CU holding the concrete DIE. */
	if (!dwarf_diecu(die, &cu, NULL, NULL) ||
	    dwarf_getsrcfiles(&cu, &files, &nfiles) || val >= nfiles)
		return;
	*file = dwarf_filesrc(files, val, NULL, NULL);
	*comp = cu_comp_dir(&cu);
}

static void frame_init(const struct syms_obj *o, struct syms_frame *f,
		       uint64_t vaddr)
{
	memset(f, 0, sizeof(*f));
	copy_str(f->module, sizeof(f->module), o->name);
	f->module_offset = vaddr;
	f->build_id_hash = o->hash;
}

static bool is_func(Dwarf_Die *die)
{
	int tag = dwarf_tag(die);

	return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine;
}

/*
 * Inline chain at pc: dwarf_getscopes finds the innermost function
 * scope, but above an inlined instance it continues in the abstract
 * definition, so the concrete callers come from dwarf_getscopes_die on
 * that innermost instance.  Each inlined instance's call_file/call_line
 * is the position in the frame that follows it.
 */
static int obj_inline_chain(struct syms_obj *o, uint64_t pc, uint64_t vaddr,
			    const char *sym, uint64_t sym_start,
			    struct syms_frame *fr, int max)
{
	Dwarf_Die *scopes = NULL, *chain = NULL, *cu;
	const char *file = NULL, *comp = NULL, *name;
	Dwfl_Line *dl;
	Dwarf_Addr bias;
	int i, ns, nc, n = 0, line = 0;

	cu = dwfl_module_addrdie(o->mod, pc, &bias);
	if (!cu)
		return 0;
	ns = dwarf_getscopes(cu, pc - bias, &scopes);
	for (i = 0; i < ns; i++)
		if (is_func(&scopes[i]))
			break;
	if (i >= ns)
		goto out;
	nc = dwarf_getscopes_die(&scopes[i], &chain);
	if (nc <= 0)
		goto out;

	dl = dwfl_module_getsrc(o->mod, pc);
	if (dl) {
		file = dwfl_lineinfo(dl, NULL, &line, NULL, NULL, NULL);
		comp = dwfl_line_comp_dir(dl);
	}

	for (i = 0; i < nc && n < max; i++) {
		struct syms_frame *f = &fr[n];

		if (!is_func(&chain[i]))
			continue;
		frame_init(o, f, vaddr);
		set_file(f, file, comp);
		f->line = file ? line : 0;
		n++;
		if (dwarf_tag(&chain[i]) == DW_TAG_inlined_subroutine) {
			f->inlined = true;
			copy_func(f->func, sizeof(f->func), die_name(&chain[i]));
			call_site(&chain[i], &file, &comp, &line);
			continue;
		}
		name = sym ? sym : die_name(&chain[i]);
		copy_func(f->func, sizeof(f->func), name);
		if (sym) {
			f->offset = vaddr - sym_start;
		} else {
			Dwarf_Addr low;

			if (!dwarf_lowpc(&chain[i], &low))
				f->offset = vaddr - (low + bias);
		}
		break;
	}
out:
	free(chain);
	free(scopes);
	return n;
}

/* Frames of a Go function from the pclntab; 0 if vaddr is in none. */
static int obj_go_lookup(struct syms_obj *o, uint64_t vaddr, bool ret,
			 struct syms_frame *fr, int max)
{
	struct gobin_frame gf[MAX_INLINE];
	int i, n;

	/* the whole chain, then the innermost max of it, as libdw's path */
	n = gobin__frames(o->go, vaddr, ret, gf, MAX_INLINE);
	if (n > max)
		n = max;
	for (i = 0; i < n; i++) {
		frame_init(o, &fr[i], vaddr);
		copy_str(fr[i].func, sizeof(fr[i].func), gf[i].func);
		copy_str(fr[i].file, sizeof(fr[i].file), gf[i].file);
		fr[i].line = gf[i].line;
		fr[i].inlined = gf[i].inlined;
		fr[i].go = true;
		fr[i].go_pc = gf[i].pc;
		if (!gf[i].inlined)
			fr[i].offset = vaddr - gf[i].entry;
	}
	return n;
}

static int obj_lookup(struct syms_obj *o, uint64_t vaddr, bool ret,
		      struct syms_frame *fr, int max)
{
	uint64_t pc = ret && vaddr ? vaddr - 1 : vaddr;
	const char *sym, *file;
	GElf_Off off = 0;
	GElf_Sym esym;
	Dwfl_Line *dl;
	int n = 0, line = 0;

	/* cgo: C code in a Go program falls through to libdw */
	if (o->go) {
		n = obj_go_lookup(o, vaddr, ret, fr, max);
		if (n > 0)
			return n;
	}

	sym = dwfl_module_addrinfo(o->mod, pc, &off, &esym, NULL, NULL, NULL);
	if (o->has_dwarf)
		n = obj_inline_chain(o, pc, vaddr, sym, pc - off, fr, max);
	if (n > 0)
		return n;

	/* No DWARF for pc: symbol table and maybe a line table. */
	frame_init(o, fr, vaddr);
	if (sym) {
		copy_func(fr->func, sizeof(fr->func), sym);
		fr->offset = vaddr - (pc - off);
	}
	dl = o->has_dwarf ? dwfl_module_getsrc(o->mod, pc) : NULL;
	file = dl ? dwfl_lineinfo(dl, NULL, &line, NULL, NULL, NULL) : NULL;
	if (file) {
		set_file(fr, file, dwfl_line_comp_dir(dl));
		fr->line = line;
	}
	return 1;
}

static int obj_resolve(struct syms_obj *o, uint64_t vaddr, bool ret,
		       struct syms_frame *out, int max)
{
	struct syms_frame tmp[MAX_INLINE];
	uint64_t key = vaddr << 1 | ret;
	struct syms_cent *e;
	unsigned int i;
	int n;

	/*
	 * The pclntab answers in a few hundred ns (bench: gosym), less
	 * than a cache fill, and a Go heap profile has more distinct PCs
	 * than the cache holds: Go frames skip it.
	 */
	if (o->go) {
		n = obj_go_lookup(o, vaddr, ret, out, max);
		if (n > 0)
			return n;
	}

	i = (unsigned int)fnv1a(&key, sizeof(key)) & (CACHE_SLOTS - 1);
	for (;; i = (i + 1) & (CACHE_SLOTS - 1)) {
		e = &o->cache[i];
		if (!e->frames)
			break;
		if (e->key == key)
			goto hit;
	}

	n = obj_lookup(o, vaddr, ret, tmp, MAX_INLINE);
	if (o->cache_used >= CACHE_MAX) {
		/* Crude, but bounded and rare: start over. */
		obj_cache_flush(o);
		i = (unsigned int)fnv1a(&key, sizeof(key)) & (CACHE_SLOTS - 1);
		e = &o->cache[i];
	}
	e->frames = malloc(n * sizeof(*tmp));
	if (!e->frames) {
		/* Uncached but still correct. */
		n = n < max ? n : max;
		memcpy(out, tmp, n * sizeof(*tmp));
		return n;
	}
	memcpy(e->frames, tmp, n * sizeof(*tmp));
	e->key = key;
	e->n = n;
	o->cache_used++;
hit:
	n = e->n < max ? e->n : max;
	memcpy(out, e->frames, n * sizeof(*out));
	return n;
}

static int resolve(struct syms *s, int pid, uint64_t addr, bool ret,
		   struct syms_frame *out, int max)
{
	struct syms_proc *p = NULL;
	struct syms_map *m = NULL;
	int err;

	if (!s || !out || max < 1)
		return -EINVAL;
	memset(out, 0, sizeof(*out));

	err = proc_get(s, pid, &p);
	if (err == -ENOMEM)
		return err;
	if (p) {
		m = proc_addr_map(p, addr);
		/* Maybe mapped since (dlopen): reread, but not per miss. */
		if (!m && !p->gone && now_ns() - p->loaded_ns > RELOAD_NS) {
			err = proc_load(s, p, NULL);
			if (err == -ENOMEM)
				return err;
			m = proc_addr_map(p, addr);
		}
	}
	if (!m)
		return 1;	/* "[unknown]" */
	if (!m->obj) {
		/* [vdso] or a file we could not read as ELF. */
		if (m->path[0] == '[')
			snprintf(out->module, sizeof(out->module), "%.*s",
				 (int)strcspn(m->path + 1, "]"), m->path + 1);
		else
			copy_str(out->module, sizeof(out->module),
				 base_name(m->path));
		out->module_offset = addr - m->start + m->pgoff;
		return 1;
	}
	obj_check_debug(s, m->obj);
	return obj_resolve(m->obj, addr - m->bias, ret, out, max);
}

/* ---- API -------------------------------------------------------------- */

struct syms *syms__new(void)
{
	struct syms *s;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	hashmap__init(&s->objs, NULL, NULL, NULL);
	hashmap__init(&s->procs, NULL, NULL, NULL);
	if (stat("/proc/self/root/", &s->root) && stat("/", &s->root)) {
		free(s);
		return NULL;
	}
	s->dbgd = dbgd__new();
	return s;
}

static void proc_free(struct syms *s, struct syms_proc *p)
{
	maps_free(s, p->maps, p->nr_maps);
	free(p);
}

void syms__free(struct syms *s)
{
	struct hashmap_entry *e, *tmp;
	size_t bkt;

	if (!s)
		return;
	hashmap__for_each_entry_safe(&s->procs, e, tmp, bkt)
		proc_free(s, e->value);
	hashmap__clear(&s->procs);
	hashmap__clear(&s->objs);
	dbgd__free(s->dbgd);
	free(s);
}

int syms__resolve(struct syms *s, int pid, uint64_t addr,
		  struct syms_frame *out, int max)
{
	return resolve(s, pid, addr, false, out, max);
}

int syms__resolve_ret(struct syms *s, int pid, uint64_t addr,
		      struct syms_frame *out, int max)
{
	return resolve(s, pid, addr, true, out, max);
}

/* runtime/pprof's pcDeck and hideRuntime, in one pass (see syms.h). */
int syms__go_stack(struct syms *syms, int pid, const uint64_t *in, int n,
		   uint64_t *out)
{
	struct syms_frame fr[MAX_INLINE], nx[1];
	int i, first, m = 0, nf, pos;

	for (first = 0; first < n; first++) {
		if (syms__resolve_ret(syms, pid, in[first], nx, 1) < 1 ||
		    !nx[0].go || strncmp(nx[0].func, "runtime.", 8))
			break;
	}
	if (first == n)
		first = 0;
	for (i = first; i < n; i++) {
		nf = syms__resolve_ret(syms, pid, in[i], fr, MAX_INLINE);
		/* pprof leaves out the goroutine's bottom frame */
		if (nf == 1 && fr[0].go && !strcmp(fr[0].func, "runtime.goexit"))
			continue;
		out[m++] = in[i];
		if (nf < 2 || !fr[0].go)
			continue;
		/* callers' marks in order; wrappers may have none */
		for (pos = 1; pos < nf && i + 1 < n; pos++) {
			if (syms__resolve_ret(syms, pid, in[i + 1], nx, 1) < 1 ||
			    !nx[0].go)
				break;
			if (nx[0].module_offset == fr[pos].go_pc + 1)
				i++;
		}
	}
	return m;
}

int syms__load_pid(struct syms *s, int pid, struct procfs_maps *maps)
{
	struct syms_proc *p;

	p = proc_find(s, pid);
	if (p)
		return proc_load(s, p, maps);
	return proc_get_maps(s, pid, maps, &p);
}

bool syms__has_image(struct syms *s, int pid, uint64_t gen)
{
	struct syms_proc *p = s ? proc_find(s, pid) : NULL;

	return p && p->read_ns && p->read_ns >= gen;
}

void syms__exec(struct syms *s, int pid, uint64_t gen)
{
	/*
	 * Records can be handled long after the fact (a backlog in the
	 * ring): the mappings may have been read since the exec already,
	 * by a refresh or the fork's work, and the process may be gone
	 * now.  Those are the new image's: keep them.
	 */
	if (!syms__has_image(s, pid, gen))
		syms__forget_pid(s, pid);
}

int syms__copy_pid(struct syms *s, int pid, int parent)
{
	struct syms_proc *pp = proc_find(s, parent), *p = proc_find(s, pid);
	int i;

	if (!pp || (p && !p->gone))
		return pp ? 0 : -ENOENT;
	if (p)		/* its own maps were unreadable: its parent's then */
		syms__forget_pid(s, pid);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->maps = calloc(pp->nr_maps ? pp->nr_maps : 1, sizeof(*p->maps));
	if (!p->maps) {
		free(p);
		return -ENOMEM;
	}
	for (i = 0; i < pp->nr_maps; i++) {
		p->maps[i] = pp->maps[i];
		p->maps[i].path = strdup(pp->maps[i].path);
		if (!p->maps[i].path) {
			maps_free(s, p->maps, i);
			free(p);
			return -ENOMEM;
		}
		if (p->maps[i].obj)
			p->maps[i].obj->refs++;
	}
	p->nr_maps = pp->nr_maps;
	p->loaded = true;
	if (hashmap__add(&s->procs, (uint32_t)pid, p)) {
		proc_free(s, p);
		return -ENOMEM;
	}
	return 0;
}

int syms__note_map(struct syms *s, int pid, uint64_t start, uint64_t end,
		   uint64_t pgoff, uint64_t ino, const char *path)
{
	struct syms_proc *p = proc_find(s, pid);
	struct syms_map m = {}, *tmp;
	int i, err;

	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->pid = pid;
		if (hashmap__add(&s->procs, (uint32_t)pid, p)) {
			free(p);
			return -ENOMEM;
		}
	}
	for (i = 0; i < p->nr_maps; i++)
		if (p->maps[i].start < end && start < p->maps[i].end)
			return 0;	/* known already, from /proc */
	m.start = start;
	m.end = end;
	m.pgoff = pgoff;
	m.ino = ino;
	m.path = strdup(path);
	if (!m.path)
		return -ENOMEM;
	err = obj_get(s, pid, &m, proc_has_own_root(s, pid), &m.obj);
	if (err == -ENOMEM) {
		free(m.path);
		return err;
	}
	if (m.obj)
		m.bias = map_bias(m.obj, &m);
	tmp = realloc(p->maps, (p->nr_maps + 1) * sizeof(*tmp));
	if (!tmp) {
		maps_free(s, &m, 1);
		return -ENOMEM;
	}
	p->maps = tmp;
	/* keep them sorted by start for the binary search */
	for (i = p->nr_maps; i > 0 && p->maps[i - 1].start > start; i--)
		p->maps[i] = p->maps[i - 1];
	p->maps[i] = m;
	p->nr_maps++;
	p->loaded = true;
	return 0;
}

void syms__forget_pid(struct syms *s, int pid)
{
	void *p;

	if (s && hashmap__delete(&s->procs, (uint32_t)pid, &p))
		proc_free(s, p);
}

void syms__format(const struct syms_frame *f, char *buf, size_t len)
{
	const char *file = base_name(f->file);

	if (!len)
		return;
	if (f->func[0] && f->inlined && f->file[0])
		snprintf(buf, len, "%s (%s:%d) [inlined]", f->func, file,
			 f->line);
	else if (f->func[0] && f->inlined)
		snprintf(buf, len, "%s [inlined]", f->func);
	else if (f->func[0] && f->file[0])
		snprintf(buf, len, "%s+0x%" PRIx64 " (%s:%d)", f->func,
			 f->offset, file, f->line);
	else if (f->func[0])
		snprintf(buf, len, "%s+0x%" PRIx64, f->func, f->offset);
	else if (f->module[0])
		snprintf(buf, len, "[%s+0x%" PRIx64 "]", f->module,
			 f->module_offset);
	else
		snprintf(buf, len, "[unknown]");
}

int syms__mappings(struct syms *s, int pid, struct syms_mapping *out,
		   int max)
{
	struct syms_proc *p;
	struct syms_map *m;
	int i, n = 0, err;

	if (!s || (!out && max))
		return -EINVAL;
	err = proc_get(s, pid, &p);
	if (err)
		return err;
	for (i = 0; i < p->nr_maps && n < max; i++) {
		m = &p->maps[i];
		memset(&out[n], 0, sizeof(out[n]));
		out[n].start = m->start;
		out[n].limit = m->end;
		out[n].file_offset = m->pgoff;
		copy_str(out[n].path, sizeof(out[n].path), m->path);
		if (m->obj)
			memcpy(out[n].build_id, m->obj->build_id,
			       sizeof(out[n].build_id));
		n++;
	}
	return n;
}

int syms__read_code(struct syms *s, int pid, uint64_t addr, void *buf,
		    size_t len)
{
	const struct syms_load *l;
	struct syms_proc *p;
	struct syms_map *m;
	const char *img;
	Dwarf_Addr bias;
	size_t size;
	uint64_t va, off;
	Elf *elf;
	int i, err;

	err = proc_get(s, pid, &p);
	if (err)
		return err;
	m = proc_addr_map(p, addr);
	if (!m || !m->obj)
		return -ENOENT;
	elf = dwfl_module_getelf(m->obj->mod, &bias);
	img = elf ? elf_rawfile(elf, &size) : NULL;
	if (!img)
		return -ENOEXEC;
	va = addr - m->bias;
	for (i = 0; i < m->obj->nr_loads; i++) {
		l = &m->obj->loads[i];
		if (va < l->vaddr || va >= l->vaddr + l->filesz)
			continue;
		off = va - l->vaddr + l->offset;
		if (off >= size)
			break;
		if (len > l->vaddr + l->filesz - va)
			len = l->vaddr + l->filesz - va;
		if (len > size - off)
			len = size - off;
		memcpy(buf, img + off, len);
		return len;
	}
	return -ENOENT;
}

int syms__plt_name(struct syms *s, int pid, uint64_t addr, char *buf,
		   size_t len)
{
	struct syms_proc *p;
	struct syms_map *m;
	unsigned char code[16];
	Elf_Scn *scn = NULL;
	Dwarf_Addr bias;
	uint64_t got;
	int32_t disp;
	size_t i = 0, j, cnt;
	GElf_Shdr sh;
	Elf *elf;
	int err;

	err = proc_get(s, pid, &p);
	if (err)
		return err;
	m = proc_addr_map(p, addr);
	if (!m || !m->obj || syms__read_code(s, pid, addr, code, sizeof(code))
	    != sizeof(code))
		return -ENOENT;
	/* [endbr64] [bnd] jmp *disp32(%rip) */
	if (!memcmp(code, "\xf3\x0f\x1e\xfa", 4))
		i = 4;
	if (code[i] == 0xf2)
		i++;
	if (code[i] != 0xff || code[i + 1] != 0x25)
		return -ENOENT;
	memcpy(&disp, code + i + 2, 4);
	got = addr - m->bias + i + 6 + disp;
	elf = dwfl_module_getelf(m->obj->mod, &bias);
	while (elf && (scn = elf_nextscn(elf, scn))) {
		Elf_Data *data, *syms;
		Elf_Scn *symscn;
		GElf_Shdr symsh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA ||
		    !sh.sh_entsize || !(data = elf_getdata(scn, NULL)))
			continue;
		symscn = elf_getscn(elf, sh.sh_link);
		syms = symscn ? elf_getdata(symscn, NULL) : NULL;
		if (!syms || !gelf_getshdr(symscn, &symsh))
			continue;
		cnt = sh.sh_size / sh.sh_entsize;
		for (j = 0; j < cnt; j++) {
			GElf_Rela r;
			GElf_Sym sym;
			const char *name;

			if (!gelf_getrela(data, j, &r) || r.r_offset != got ||
			    !gelf_getsym(syms, GELF_R_SYM(r.r_info), &sym))
				continue;
			name = elf_strptr(elf, symsh.sh_link, sym.st_name);
			if (!name)
				return -ENOENT;
			copy_str(buf, len, name);
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * A function no symbol names (static, in a stripped binary): the range
 * .eh_frame_hdr gives it (to the next function's start).
 */
static int fde_range(const struct syms_map *m, uint64_t addr,
		     uint64_t *start, uint64_t *size)
{
	uint64_t lo, hi;
	Dwarf_Addr bias;
	Elf *elf;
	int err;

	elf = dwfl_module_getelf(m->obj->mod, &bias);
	if (!elf)
		return -ENOEXEC;
	err = cfi__func_range(elf, addr - m->bias, &lo, &hi);
	if (err)
		return err;
	*start = lo + m->bias;
	*size = hi > lo ? hi - lo : 0;
	return 0;
}

int syms__func_range(struct syms *s, int pid, uint64_t addr, uint64_t *start,
		     uint64_t *size)
{
	struct syms_proc *p;
	struct syms_map *m;
	GElf_Off off = 0;
	GElf_Sym sym;
	int err;

	err = proc_get(s, pid, &p);
	if (err)
		return err;
	m = proc_addr_map(p, addr);
	if (!m || !m->obj)
		return -ENOENT;
	if (!dwfl_module_addrinfo(m->obj->mod, addr - m->bias, &off, &sym,
				  NULL, NULL, NULL))
		return fde_range(m, addr, start, size);
	*start = addr - off;
	*size = sym.st_size;
	return 0;
}

int syms__wait_debug(struct syms *s, int ms)
{
	return s ? dbgd__wait(s->dbgd, ms) : 0;
}

int syms__nr_objects(const struct syms *s)
{
	return s ? s->nr_objs : 0;
}
