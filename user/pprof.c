// SPDX-License-Identifier: GPL-2.0
/*
 * pprof heap profile writer and folded-stack output.
 *
 * The profile is assembled in memory (interned strings, functions,
 * mappings, locations and samples, each deduplicated through a small
 * open-addressing index) and only encoded at pprof__write(): protobuf
 * needs every string in string_table and every id settled before the
 * bytes are laid out, and a tracer dumps a profile far less often than
 * it adds to one.
 *
 * The protobuf encoding is done by hand, following
 * github.com/google/pprof/proto/profile.proto; it only needs varints
 * and length-delimited fields, and a generator would be a heavier
 * dependency than this file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "hashmap.h"
#include "pprof.h"
#include "procfs.h"
#include "syms.h"
#include "util.h"

#define MAX_INLINE	16		/* frames per address */
#define MAX_MAPPINGS	4096		/* executable mappings per process */

/* profile.proto field numbers */
enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10,
	PROFILE_PERIOD_TYPE = 11,
	PROFILE_PERIOD = 12,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,

	VALUETYPE_TYPE = 1,
	VALUETYPE_UNIT = 2,

	SAMPLE_LOCATION_ID = 1,
	SAMPLE_VALUE = 2,
	SAMPLE_LABEL = 3,

	LABEL_KEY = 1,
	LABEL_STR = 2,
	LABEL_NUM = 3,

	MAPPING_ID = 1,
	MAPPING_MEMORY_START = 2,
	MAPPING_MEMORY_LIMIT = 3,
	MAPPING_FILE_OFFSET = 4,
	MAPPING_FILENAME = 5,
	MAPPING_BUILD_ID = 6,
	MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8,
	MAPPING_HAS_LINE_NUMBERS = 9,
	MAPPING_HAS_INLINE_FRAMES = 10,

	LOCATION_ID = 1,
	LOCATION_MAPPING_ID = 2,
	LOCATION_ADDRESS = 3,
	LOCATION_LINE = 4,

	LINE_FUNCTION_ID = 1,
	LINE_LINE = 2,

	FUNCTION_ID = 1,
	FUNCTION_NAME = 2,
	FUNCTION_SYSTEM_NAME = 3,
	FUNCTION_FILENAME = 4,
};

enum { WIRE_VARINT = 0, WIRE_BYTES = 2 };

#define NR_VALUES 4

/* ---- growable byte buffer with protobuf primitives -------------------- */

struct pb {
	unsigned char *buf;
	size_t len, cap;
	bool oom;			/* sticky, checked once at the end */
};

static void pb_put(struct pb *b, const void *data, size_t n)
{
	unsigned char *nbuf;
	size_t ncap;

	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n)
			ncap *= 2;
		nbuf = realloc(b->buf, ncap);
		if (!nbuf) {
			b->oom = true;
			return;
		}
		b->buf = nbuf;
		b->cap = ncap;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
}

static void pb_varint(struct pb *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (v & 0x7f) | (v > 0x7f ? 0x80 : 0);
		v >>= 7;
	} while (v);
	pb_put(b, tmp, n);
}

/* Scalar field; zero is the proto3 default and is left out. */
static void pb_uint(struct pb *b, int field, uint64_t v)
{
	if (!v)
		return;
	pb_varint(b, (uint64_t)field << 3 | WIRE_VARINT);
	pb_varint(b, v);
}

static void pb_bytes(struct pb *b, int field, const void *data, size_t n)
{
	pb_varint(b, (uint64_t)field << 3 | WIRE_BYTES);
	pb_varint(b, n);
	pb_put(b, data, n);
}

/* Embedded message: sub was encoded on its own, sub->len is known. */
static void pb_msg(struct pb *b, int field, struct pb *sub)
{
	if (sub->oom)
		b->oom = true;
	pb_bytes(b, field, sub->buf, sub->len);
	sub->len = 0;
}

/* Packed repeated varints (int64 values are sign-extended to 64 bits). */
static void pb_packed(struct pb *b, int field, struct pb *tmp,
		      const uint64_t *v, int n)
{
	int i;

	if (!n)
		return;
	for (i = 0; i < n; i++)
		pb_varint(tmp, v[i]);
	pb_msg(b, field, tmp);
}

/* ---- dedup index: content hash -> item numbers (a multimap) ---------- */

static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (!h)
		h = 0xcbf29ce484222325ULL;
	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void index_free(struct hashmap *ix)
{
	hashmap__clear(ix);
}

static int index_insert(struct hashmap *ix, uint64_t hash, uint32_t item)
{
	return hashmap__append(ix, hash, (void *)(uintptr_t)item);
}

struct pprof;
typedef bool (*pp_eq_fn)(const struct pprof *p, uint32_t item,
			 const void *key);

/* The item equal to key among those of its hash, or -1. */
static long index_find(const struct hashmap *ix, uint64_t hash, pp_eq_fn eq,
		       const struct pprof *p, const void *key)
{
	struct hashmap_entry *e;

	hashmap__for_each_key_entry(ix, e, hash)
		if (eq(p, (uintptr_t)e->value, key))
			return (uintptr_t)e->value;
	return -1;
}

/* Make room for one more element in a malloc'd array. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *na;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	na = realloc(*arr, ncap * elem);
	if (!na)
		return -ENOMEM;
	*arr = na;
	*cap = ncap;
	return 0;
}

/* ---- the profile ------------------------------------------------------ */

struct pp_line {
	uint64_t func_id;
	int64_t line;
};

struct pp_func {
	int64_t name, file;		/* string table indexes */
};

struct pp_loc {
	uint64_t mapping_id, address;
	int pid;			/* keys unmapped addresses only */
	int nr_lines;
	struct pp_line *lines;
};

/* An emitted pprof mapping: a process mapping that some location uses. */
struct pp_map {
	const struct syms_mapping *m;	/* in its pp_proc */
	int64_t file, build_id;
	size_t nr_locs, with_func;	/* locations, those with a function */
	size_t nr_lines, with_file, with_line;
};

struct pp_proc {
	int pid;
	int64_t comm;			/* string index, 0 if unknown */
	struct syms_mapping *maps;
	uint64_t *map_ids;		/* pprof mapping id, 0 = unused yet */
	int nr_maps;
};

struct pp_sample {
	int pid;
	int nr_locs;
	uint64_t *locs;			/* location ids, leaf first */
	int64_t values[NR_VALUES];
};

struct pprof {
	struct syms *syms;
	int64_t period;
	uint64_t start_real_ns, start_mono_ns, duration_ns;
	struct pp_exe {
		int pid;
		char *path;
	} *exes;
	size_t nr_exes, cap_exes;

	char **strs;
	size_t nr_strs, cap_strs;
	struct hashmap str_ix;

	struct pp_func *funcs;
	size_t nr_funcs, cap_funcs;
	struct hashmap func_ix;

	struct pp_loc *locs;
	size_t nr_locs, cap_locs;
	struct hashmap loc_ix;

	struct pp_map *maps;
	size_t nr_maps, cap_maps;

	struct pp_proc *procs;
	size_t nr_procs, cap_procs;
	struct hashmap proc_ix;

	struct pp_sample *samples;
	size_t nr_samples, cap_samples;
	struct hashmap sample_ix;

	/* fixed strings */
	int64_t s_types[NR_VALUES], s_units[NR_VALUES];
	int64_t s_space, s_bytes, s_pid, s_comm;
};

static bool str_eq(const struct pprof *p, uint32_t item, const void *key)
{
	return !strcmp(p->strs[item], key);
}

/* Interned string index, or a negative errno. */
static int64_t str_intern(struct pprof *p, const char *s)
{
	uint64_t h = hash_bytes(0, s, strlen(s));
	long i = index_find(&p->str_ix, h, str_eq, p, s);
	char *dup;

	if (i >= 0)
		return i;
	if (grow((void **)&p->strs, &p->cap_strs, p->nr_strs,
		 sizeof(*p->strs)))
		return -ENOMEM;
	dup = strdup(s);
	if (!dup)
		return -ENOMEM;
	if (index_insert(&p->str_ix, h, p->nr_strs)) {
		free(dup);
		return -ENOMEM;
	}
	p->strs[p->nr_strs] = dup;
	return p->nr_strs++;
}

/*
 * Interned as every other output shows it: symbol names and paths are
 * the traced program's bytes (an ELF symbol can hold an escape
 * sequence), and pprof prints them to a terminal.
 */
static int64_t str_intern_shown(struct pprof *p, const char *s)
{
	size_t len = strlen(s), cap = len * 4 + 1;	/* \xNN per byte */
	char stack[512], *buf = cap <= sizeof(stack) ? stack : malloc(cap);
	int64_t ret;

	if (!buf)
		return -ENOMEM;
	sanitize(s, len, buf, cap);
	ret = str_intern(p, buf);
	if (buf != stack)
		free(buf);
	return ret;
}

static bool func_eq(const struct pprof *p, uint32_t item, const void *key)
{
	const struct pp_func *a = &p->funcs[item], *b = key;

	return a->name == b->name && a->file == b->file;
}

/* Function id (index + 1) for (name, file), or a negative errno. */
static int64_t func_get(struct pprof *p, const char *name, const char *file)
{
	struct pp_func key;
	uint64_t h;
	long i;

	key.name = str_intern_shown(p, name);
	key.file = str_intern_shown(p, file);
	if (key.name < 0 || key.file < 0)
		return -ENOMEM;
	h = hash_bytes(0, &key, sizeof(key));
	i = index_find(&p->func_ix, h, func_eq, p, &key);
	if (i >= 0)
		return i + 1;
	if (grow((void **)&p->funcs, &p->cap_funcs, p->nr_funcs,
		 sizeof(*p->funcs)) ||
	    index_insert(&p->func_ix, h, p->nr_funcs))
		return -ENOMEM;
	p->funcs[p->nr_funcs++] = key;
	return p->nr_funcs;
}

static bool proc_eq(const struct pprof *p, uint32_t item, const void *key)
{
	return p->procs[item].pid == *(const int *)key;
}

/* The file at path, as seen from pid's root when it is still there. */
static int stat_in(int pid, const char *path, struct stat *st)
{
	char buf[4200];

	if (path[0] == '/' &&
	    !procfs__root_file(buf, sizeof(buf), pid, path) && !stat(buf, st))
		return 0;
	return stat(path, st);
}

/* Name pid's executable mapping by the path it was invoked as. */
static void exe_rename(struct pprof *p, int pid, struct syms_mapping *maps,
		       int n)
{
	struct stat want, st;
	const char *path = NULL;
	size_t i;
	int j;

	for (i = 0; i < p->nr_exes && !path; i++)
		if (p->exes[i].pid == pid)
			path = p->exes[i].path;
	if (!path || stat_in(pid, path, &want))
		return;
	/* anyone's bytes: a name with control characters is not shown */
	for (i = 0; path[i]; i++)
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
			return;
	for (j = 0; j < n; j++) {
		if (maps[j].path[0] != '/' || !strcmp(maps[j].path, path) ||
		    stat_in(pid, maps[j].path, &st) || st.st_dev != want.st_dev ||
		    st.st_ino != want.st_ino)
			continue;
		snprintf(maps[j].path, sizeof(maps[j].path), "%s", path);
	}
}

int pprof__set_exe(struct pprof *p, int pid, const char *path)
{
	char *dup;

	if (!p || !path || !path[0])
		return -EINVAL;
	dup = strdup(path);
	if (!dup || grow((void **)&p->exes, &p->cap_exes, p->nr_exes,
			 sizeof(*p->exes))) {
		free(dup);
		return -ENOMEM;
	}
	p->exes[p->nr_exes].pid = pid;
	p->exes[p->nr_exes].path = dup;
	p->nr_exes++;
	return 0;
}

void pprof__set_times(struct pprof *p, uint64_t start_real_ns,
		      uint64_t duration_ns)
{
	if (!p)
		return;
	p->start_real_ns = start_real_ns;
	p->duration_ns = duration_ns;
}

/* A process name is anyone's bytes: the label gets the escaped form. */
static int64_t intern_comm(struct pprof *p, const char *comm)
{
	return str_intern_shown(p, comm);
}

/*
 * First sample of a pid: take a snapshot of its executable mappings
 * (what the symbolizer knows, so it also works after the process left).
 */
static int proc_get(struct pprof *p, int pid, struct pp_proc **out)
{
	uint64_t h = hash_bytes(0, &pid, sizeof(pid));
	long i = index_find(&p->proc_ix, h, proc_eq, p, &pid);
	struct syms_mapping *maps, *small;
	uint64_t *ids = NULL;
	int64_t comm_idx = 0;
	struct pp_proc *pr;
	char comm[64];
	int n, err = -ENOMEM;

	if (i >= 0) {
		*out = &p->procs[i];
		return 0;
	}
	maps = calloc(MAX_MAPPINGS, sizeof(*maps));
	if (!maps)
		goto err;
	n = syms__mappings(p->syms, pid, maps, MAX_MAPPINGS);
	if (n == -ENOMEM)
		goto err;
	if (n < 0)
		n = 0;		/* gone: its addresses stay unmapped */
	exe_rename(p, pid, maps, n);
	small = realloc(maps, (n ? n : 1) * sizeof(*maps));
	if (small)
		maps = small;
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!ids)
		goto err;
	procfs__read_comm(pid, comm, sizeof(comm));
	if (comm[0]) {
		comm_idx = intern_comm(p, comm);
		if (comm_idx < 0)
			goto err;
	}
	if (grow((void **)&p->procs, &p->cap_procs, p->nr_procs,
		 sizeof(*p->procs)) ||
	    index_insert(&p->proc_ix, h, p->nr_procs))
		goto err;
	pr = &p->procs[p->nr_procs++];
	pr->pid = pid;
	pr->comm = comm_idx;
	pr->maps = maps;
	pr->map_ids = ids;
	pr->nr_maps = n;
	*out = pr;
	return 0;
err:
	free(ids);
	free(maps);
	return err;
}

/* pprof mapping id for the process mapping holding addr, 0 if none. */
static int64_t map_get(struct pprof *p, struct pp_proc *pr, uint64_t addr,
		       struct pp_map **out)
{
	struct syms_mapping *m = NULL;
	struct pp_map *pm;
	int i;

	*out = NULL;
	for (i = 0; i < pr->nr_maps; i++) {
		if (addr >= pr->maps[i].start && addr < pr->maps[i].limit) {
			m = &pr->maps[i];
			break;
		}
	}
	if (!m)
		return 0;
	if (pr->map_ids[i]) {
		*out = &p->maps[pr->map_ids[i] - 1];
		return pr->map_ids[i];
	}
	if (grow((void **)&p->maps, &p->cap_maps, p->nr_maps,
		 sizeof(*p->maps)))
		return -ENOMEM;
	pm = &p->maps[p->nr_maps];
	memset(pm, 0, sizeof(*pm));
	pm->m = m;
	pm->file = str_intern_shown(p, m->path);
	pm->build_id = str_intern(p, m->build_id);
	if (pm->file < 0 || pm->build_id < 0)
		return -ENOMEM;
	pr->map_ids[i] = ++p->nr_maps;
	*out = pm;
	return pr->map_ids[i];
}

static bool loc_eq(const struct pprof *p, uint32_t item, const void *key)
{
	const struct pp_loc *a = &p->locs[item], *b = key;

	return a->mapping_id == b->mapping_id && a->address == b->address &&
	       a->pid == b->pid;
}

/* Location id for return address ra in pr, or a negative errno. */
static int64_t loc_get(struct pprof *p, struct pp_proc *pr, uint64_t ra)
{
	struct syms_frame fr[MAX_INLINE];
	struct pp_loc key, *l;
	struct pp_map *pm;
	int64_t mid, fid;
	int i, n;
	uint64_t h;
	long idx;

	memset(&key, 0, sizeof(key));
	key.address = ra ? ra - 1 : 0;
	mid = map_get(p, pr, key.address, &pm);
	if (mid < 0)
		return mid;
	key.mapping_id = mid;
	/* Without a mapping the address only means something per pid. */
	key.pid = mid ? 0 : pr->pid;
	h = hash_bytes(0, &key.mapping_id, sizeof(key.mapping_id));
	h = hash_bytes(h, &key.address, sizeof(key.address));
	h = hash_bytes(h, &key.pid, sizeof(key.pid));
	idx = index_find(&p->loc_ix, h, loc_eq, p, &key);
	if (idx >= 0)
		return idx + 1;

	n = syms__resolve_ret(p->syms, pr->pid, ra, fr, MAX_INLINE);
	if (n < 0)
		return n;
	key.lines = calloc(n, sizeof(*key.lines));
	if (!key.lines)
		return -ENOMEM;
	/* Innermost first, the order pprof wants Line entries in. */
	for (i = 0; i < n; i++) {
		char addr[300];
		const char *name = fr[i].func;

		/*
		 * An address in a file without symbols is a function of its
		 * own, "[memcached+0x11d1d]": left without one, pprof lumps
		 * every such frame of the file into a single "[memcached]".
		 */
		if (!name[0] && fr[i].module[0]) {
			syms__format(&fr[i], addr, sizeof(addr));
			name = addr;
		}
		if (!name[0])
			continue;
		fid = func_get(p, name, fr[i].file);
		if (fid < 0)
			goto err;
		key.lines[key.nr_lines].func_id = fid;
		key.lines[key.nr_lines].line = fr[i].line;
		key.nr_lines++;
		if (pm) {
			pm->nr_lines++;
			pm->with_file += !!fr[i].file[0];
			pm->with_line += fr[i].line > 0;
		}
	}
	if (pm) {
		pm->nr_locs++;
		pm->with_func += key.nr_lines > 0;
	}
	if (grow((void **)&p->locs, &p->cap_locs, p->nr_locs,
		 sizeof(*p->locs)) ||
	    index_insert(&p->loc_ix, h, p->nr_locs))
		goto err;
	l = &p->locs[p->nr_locs++];
	*l = key;
	return p->nr_locs;
err:
	free(key.lines);
	return -ENOMEM;
}

struct sample_key {
	int pid;
	int nr_locs;
	const uint64_t *locs;
};

static bool sample_eq(const struct pprof *p, uint32_t item, const void *key)
{
	const struct pp_sample *a = &p->samples[item];
	const struct sample_key *b = key;

	return a->pid == b->pid && a->nr_locs == b->nr_locs &&
	       !memcmp(a->locs, b->locs, b->nr_locs * sizeof(*b->locs));
}

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

struct pprof *pprof__new(struct syms *syms)
{
	static const char *const types[NR_VALUES] = {
		"alloc_objects", "alloc_space", "inuse_objects", "inuse_space",
	};
	static const char *const units[NR_VALUES] = {
		"count", "bytes", "count", "bytes",
	};
	struct pprof *p;
	int i;

	if (!syms)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->syms = syms;
	p->period = 1;
	p->start_real_ns = clock_ns(CLOCK_REALTIME);
	p->start_mono_ns = clock_ns(CLOCK_MONOTONIC);
	/* string_table[0] must be "". */
	if (str_intern(p, "") != 0)
		goto err;
	for (i = 0; i < NR_VALUES; i++) {
		p->s_types[i] = str_intern(p, types[i]);
		p->s_units[i] = str_intern(p, units[i]);
		if (p->s_types[i] < 0 || p->s_units[i] < 0)
			goto err;
	}
	p->s_space = str_intern(p, "space");
	p->s_bytes = str_intern(p, "bytes");
	p->s_pid = str_intern(p, "pid");
	p->s_comm = str_intern(p, "comm");
	if (p->s_space < 0 || p->s_bytes < 0 || p->s_pid < 0 || p->s_comm < 0)
		goto err;
	return p;
err:
	pprof__free(p);
	return NULL;
}

void pprof__free(struct pprof *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nr_strs; i++)
		free(p->strs[i]);
	free(p->strs);
	index_free(&p->str_ix);
	free(p->funcs);
	index_free(&p->func_ix);
	for (i = 0; i < p->nr_locs; i++)
		free(p->locs[i].lines);
	free(p->locs);
	index_free(&p->loc_ix);
	free(p->maps);
	for (i = 0; i < p->nr_procs; i++) {
		free(p->procs[i].maps);
		free(p->procs[i].map_ids);
	}
	free(p->procs);
	index_free(&p->proc_ix);
	for (i = 0; i < p->nr_exes; i++)
		free(p->exes[i].path);
	free(p->exes);
	for (i = 0; i < p->nr_samples; i++)
		free(p->samples[i].locs);
	free(p->samples);
	index_free(&p->sample_ix);
	free(p);
}

int pprof__set_comm(struct pprof *p, int pid, const char *comm)
{
	struct pp_proc *pr;
	int64_t s;
	int err;

	if (!p || !comm)
		return -EINVAL;
	err = proc_get(p, pid, &pr);
	if (err)
		return err;
	s = intern_comm(p, comm);
	if (s < 0)
		return (int)s;
	pr->comm = s;
	return 0;
}

void pprof__set_period(struct pprof *p, int64_t period)
{
	if (p)
		p->period = period;
}

int pprof__add(struct pprof *p, int pid, const uint64_t *stack, int nframes,
	       int64_t alloc_objects, int64_t alloc_bytes,
	       int64_t inuse_objects, int64_t inuse_bytes)
{
	const int64_t v[NR_VALUES] = {
		alloc_objects, alloc_bytes, inuse_objects, inuse_bytes,
	};
	struct sample_key key;
	struct pp_sample *s;
	struct pp_proc *pr;
	uint64_t *locs, h;
	int64_t id;
	int i, err;
	long idx;

	if (!p || nframes < 0 || (nframes && !stack))
		return -EINVAL;
	err = proc_get(p, pid, &pr);
	if (err)
		return err;
	locs = calloc(nframes ? nframes : 1, sizeof(*locs));
	if (!locs)
		return -ENOMEM;
	/* Go's shape of the stack, written in place over locs */
	nframes = syms__go_stack(p->syms, pid, stack, nframes, locs);
	for (i = 0; i < nframes; i++) {
		id = loc_get(p, pr, locs[i]);
		if (id < 0) {
			err = (int)id;
			goto out;
		}
		locs[i] = id;
	}

	key.pid = pid;
	key.nr_locs = nframes;
	key.locs = locs;
	h = hash_bytes(0, &pid, sizeof(pid));
	h = hash_bytes(h, locs, nframes * sizeof(*locs));
	idx = index_find(&p->sample_ix, h, sample_eq, p, &key);
	if (idx >= 0) {
		for (i = 0; i < NR_VALUES; i++)
			p->samples[idx].values[i] += v[i];
		goto out;
	}
	if (grow((void **)&p->samples, &p->cap_samples, p->nr_samples,
		 sizeof(*p->samples)) ||
	    index_insert(&p->sample_ix, h, p->nr_samples)) {
		err = -ENOMEM;
		goto out;
	}
	s = &p->samples[p->nr_samples++];
	s->pid = pid;
	s->nr_locs = nframes;
	s->locs = locs;
	memcpy(s->values, v, sizeof(v));
	return 0;
out:
	free(locs);
	return err;
}

static struct pp_proc *proc_of(struct pprof *p, int pid)
{
	uint64_t h = hash_bytes(0, &pid, sizeof(pid));
	long i = index_find(&p->proc_ix, h, proc_eq, p, &pid);

	return i >= 0 ? &p->procs[i] : NULL;
}

static void encode_value_type(struct pb *out, int field, struct pb *sub,
			      int64_t type, int64_t unit)
{
	pb_uint(sub, VALUETYPE_TYPE, type);
	pb_uint(sub, VALUETYPE_UNIT, unit);
	pb_msg(out, field, sub);
}

static void encode_samples(struct pprof *p, struct pb *out, struct pb *sub,
			   struct pb *tmp)
{
	struct pp_sample *s;
	struct pp_proc *pr;
	size_t i;

	for (i = 0; i < p->nr_samples; i++) {
		s = &p->samples[i];
		pb_packed(sub, SAMPLE_LOCATION_ID, tmp, s->locs, s->nr_locs);
		pb_packed(sub, SAMPLE_VALUE, tmp, (const uint64_t *)s->values,
			  NR_VALUES);
		pb_uint(tmp, LABEL_KEY, p->s_pid);
		pb_uint(tmp, LABEL_NUM, (uint64_t)(int64_t)s->pid);
		pb_msg(sub, SAMPLE_LABEL, tmp);
		pr = proc_of(p, s->pid);
		if (pr && pr->comm) {
			pb_uint(tmp, LABEL_KEY, p->s_comm);
			pb_uint(tmp, LABEL_STR, pr->comm);
			pb_msg(sub, SAMPLE_LABEL, tmp);
		}
		pb_msg(out, PROFILE_SAMPLE, sub);
	}
}

/*
 * The has_* flags tell pprof which mappings are fully symbolized; a
 * mapping with any unresolved location is left for pprof's own
 * symbolizer (e.g. run later against unstripped binaries).
 */
static void encode_mappings(struct pprof *p, struct pb *out, struct pb *sub)
{
	bool funcs, files, lines;
	struct pp_map *m;
	size_t i;

	for (i = 0; i < p->nr_maps; i++) {
		m = &p->maps[i];
		funcs = m->nr_locs && m->with_func == m->nr_locs;
		files = funcs && m->with_file == m->nr_lines;
		lines = funcs && m->with_line == m->nr_lines;
		pb_uint(sub, MAPPING_ID, i + 1);
		pb_uint(sub, MAPPING_MEMORY_START, m->m->start);
		pb_uint(sub, MAPPING_MEMORY_LIMIT, m->m->limit);
		pb_uint(sub, MAPPING_FILE_OFFSET, m->m->file_offset);
		pb_uint(sub, MAPPING_FILENAME, m->file);
		pb_uint(sub, MAPPING_BUILD_ID, m->build_id);
		pb_uint(sub, MAPPING_HAS_FUNCTIONS, funcs);
		pb_uint(sub, MAPPING_HAS_FILENAMES, files);
		pb_uint(sub, MAPPING_HAS_LINE_NUMBERS, lines);
		/* inline chains are always expanded where there is DWARF */
		pb_uint(sub, MAPPING_HAS_INLINE_FRAMES, lines);
		pb_msg(out, PROFILE_MAPPING, sub);
	}
}

static void encode_locations(struct pprof *p, struct pb *out, struct pb *sub,
			     struct pb *tmp)
{
	struct pp_loc *l;
	size_t i;
	int j;

	for (i = 0; i < p->nr_locs; i++) {
		l = &p->locs[i];
		pb_uint(sub, LOCATION_ID, i + 1);
		pb_uint(sub, LOCATION_MAPPING_ID, l->mapping_id);
		pb_uint(sub, LOCATION_ADDRESS, l->address);
		for (j = 0; j < l->nr_lines; j++) {
			pb_uint(tmp, LINE_FUNCTION_ID, l->lines[j].func_id);
			pb_uint(tmp, LINE_LINE, l->lines[j].line);
			pb_msg(sub, LOCATION_LINE, tmp);
		}
		pb_msg(out, PROFILE_LOCATION, sub);
	}
}

static void encode(struct pprof *p, struct pb *out)
{
	struct pb sub = { 0 }, tmp = { 0 };
	size_t i;
	int k;

	for (k = 0; k < NR_VALUES; k++)
		encode_value_type(out, PROFILE_SAMPLE_TYPE, &sub,
				  p->s_types[k], p->s_units[k]);
	encode_samples(p, out, &sub, &tmp);
	encode_mappings(p, out, &sub);
	encode_locations(p, out, &sub, &tmp);
	for (i = 0; i < p->nr_funcs; i++) {
		pb_uint(&sub, FUNCTION_ID, i + 1);
		pb_uint(&sub, FUNCTION_NAME, p->funcs[i].name);
		pb_uint(&sub, FUNCTION_SYSTEM_NAME, p->funcs[i].name);
		pb_uint(&sub, FUNCTION_FILENAME, p->funcs[i].file);
		pb_msg(out, PROFILE_FUNCTION, &sub);
	}
	/* Every entry, "" included: the index is the reference. */
	for (i = 0; i < p->nr_strs; i++)
		pb_bytes(out, PROFILE_STRING_TABLE, p->strs[i],
			 strlen(p->strs[i]));
	pb_uint(out, PROFILE_TIME_NANOS, p->start_real_ns);
	pb_uint(out, PROFILE_DURATION_NANOS, p->duration_ns ? p->duration_ns :
		clock_ns(CLOCK_MONOTONIC) - p->start_mono_ns);
	encode_value_type(out, PROFILE_PERIOD_TYPE, &sub, p->s_space,
			  p->s_bytes);
	pb_uint(out, PROFILE_PERIOD, (uint64_t)p->period);
	/* inuse_space, like a Go heap profile */
	pb_uint(out, PROFILE_DEFAULT_SAMPLE_TYPE, p->s_types[3]);
	if (sub.oom || tmp.oom)
		out->oom = true;
	free(sub.buf);
	free(tmp.buf);
}

int pprof__write(struct pprof *p, const char *path)
{
	struct pb out = { 0 };
	char tmp[PATH_MAX + 16] = "";
	size_t off, chunk;
	gzFile gz = NULL;
	int err = 0, fd;

	if (!p || !path)
		return -EINVAL;
	encode(p, &out);
	if (out.oom) {
		err = -ENOMEM;
		goto out;
	}
	fd = tmpfile_beside(path, tmp, sizeof(tmp));
	if (fd < 0) {
		err = fd;
		tmp[0] = '\0';
		goto out;
	}
	gz = gzdopen(fd, "wb");
	if (!gz) {
		close(fd);
		err = -ENOMEM;
		goto out;
	}
	for (off = 0; off < out.len; off += chunk) {
		chunk = out.len - off > (1U << 30) ? (1U << 30) : out.len - off;
		if (gzwrite(gz, out.buf + off, (unsigned int)chunk) <= 0) {
			err = -EIO;
			goto out;
		}
	}
	err = gzclose(gz) == Z_OK ? 0 : -EIO;
	gz = NULL;
	if (!err && rename(tmp, path))
		err = -errno;
out:
	if (gz)
		gzclose(gz);
	if (err && tmp[0])
		unlink(tmp);
	free(out.buf);
	return err;
}

/* ---- folded stacks ---------------------------------------------------- */

/* Names become single folded tokens: no separators, no whitespace. */
static void put_sanitized(struct pb *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, len = strlen(s), n;
	char c;

	while (i < len) {
		n = utf8_len(u + i, len - i);
		if (n > 1) {		/* a whole character: kept */
			pb_put(b, s + i, n);
			i += n;
			continue;
		}
		/* separators, controls and bytes that are not UTF-8 */
		c = s[i];
		if (c == ';' || u[i] <= ' ' || u[i] == 0x7f || !n)
			c = '_';
		pb_put(b, &c, 1);
		i++;
	}
}

int folded__write(struct syms *syms, FILE *out, int pid, const char *comm,
		  const uint64_t *stack, int nframes, int64_t value)
{
	struct syms_frame fr[MAX_INLINE];
	struct pb line = { 0 };
	uint64_t *go = NULL;
	char buf[600];
	int i, j, n, err = 0;

	if (!syms || !out || nframes < 0 || (nframes && !stack))
		return -EINVAL;
	go = malloc((nframes ? nframes : 1) * sizeof(*go));
	if (!go)
		return -ENOMEM;
	nframes = syms__go_stack(syms, pid, stack, nframes, go);
	stack = go;
	if (comm && comm[0]) {
		put_sanitized(&line, comm);
	} else {
		snprintf(buf, sizeof(buf), "pid_%d", pid);
		put_sanitized(&line, buf);
	}
	/* Outermost first; within an address the real function first. */
	for (i = nframes - 1; i >= 0; i--) {
		n = syms__resolve_ret(syms, pid, stack[i], fr, MAX_INLINE);
		if (n < 0) {
			err = n;
			goto out;
		}
		for (j = n - 1; j >= 0; j--) {
			pb_put(&line, ";", 1);
			if (fr[j].func[0]) {
				put_sanitized(&line, fr[j].func);
			} else {
				syms__format(&fr[j], buf, sizeof(buf));
				put_sanitized(&line, buf);
			}
		}
	}
	snprintf(buf, sizeof(buf), " %" PRId64 "\n", value);
	pb_put(&line, buf, strlen(buf));
	if (line.oom) {
		err = -ENOMEM;
		goto out;
	}
	if (fwrite(line.buf, 1, line.len, out) != line.len)
		err = -EIO;
out:
	free(line.buf);
	free(go);
	return err;
}
