// SPDX-License-Identifier: GPL-2.0
/*
 * Reading a Go process's heap profile and GC state from its memory.
 *
 * The bucket list only ever grows at its head and buckets are never
 * freed, so each read walks only the buckets added since the last one
 * (their stacks never change and are read once) and then reads every
 * bucket's 128-byte memRecord with vectored process_vm_readv calls.
 * Nothing here stops the process: a read that races the runtime may see
 * a counter half updated; the cycle counter read before and after tells
 * when a GC published in between, and then the records are read again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "goheap.h"
#include "memtrace.h"
#include "procfs.h"
#include "util.h"

#define BUCKET_HDR	48	/* next, allnext, typ, hash, size, nstk */
#define MEMREC_LEN	128	/* active + future[3], 4 x u64 each */
#define MAX_NSTK	1024	/* GODEBUG=profstackdepth's maximum */
#define MAX_BUCKETS	(1 << 18)
#define IOV_BATCH	1024
#define READ_TRIES	3

/* An executable, opened once however many processes run it. */
struct gofile {
	dev_t dev;
	ino_t ino;
	struct gobin *bin;
	struct gobin_runtime rt;
	int rt_err;
	int refs;
	int nload;
	struct { uint64_t vaddr, off, filesz; bool exec; } load[8];
	struct gofile *next;
};

static struct gofile *files;

/* PT_LOAD segments: the load bias, and file offsets for uprobes. */
static void read_loads(struct gofile *f, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	GElf_Phdr ph;
	size_t i, n;
	Elf *e;

	if (fd < 0)
		return;
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (e && !elf_getphdrnum(e, &n)) {
		for (i = 0; i < n && f->nload < (int)ARRAY_SIZE(f->load); i++) {
			if (!gelf_getphdr(e, i, &ph) || ph.p_type != PT_LOAD)
				continue;
			f->load[f->nload].vaddr = ph.p_vaddr;
			f->load[f->nload].off = ph.p_offset;
			f->load[f->nload].filesz = ph.p_filesz;
			f->load[f->nload].exec = ph.p_flags & PF_X;
			f->nload++;
		}
	}
	elf_end(e);
	close(fd);
}

static struct gofile *file_get(int pid, int *err)
{
	char path[320];
	struct gofile *f;
	struct stat st;

	*err = procfs__path(path, sizeof(path), pid, "exe");
	if (*err)
		return NULL;
	if (stat(path, &st)) {
		*err = errno == ENOENT ? -ESRCH : -errno;
		return NULL;
	}
	for (f = files; f; f = f->next)
		if (f->dev == st.st_dev && f->ino == st.st_ino) {
			f->refs++;
			return f;
		}
	f = calloc(1, sizeof(*f));
	if (!f) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = gobin__open(path, &f->bin);
	if (*err) {
		free(f);
		return NULL;
	}
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->rt_err = gobin__runtime(f->bin, &f->rt);
	read_loads(f, path);
	f->refs = 1;
	f->next = files;
	files = f;
	return f;
}

static void file_put(const struct gobin *bin)
{
	struct gofile **pp, *f;

	for (pp = &files; (f = *pp); pp = &f->next) {
		if (f->bin != bin)
			continue;
		if (--f->refs)
			return;
		*pp = f->next;
		gobin__free(f->bin);
		free(f);
		return;
	}
}

bool goheap__is_go(int pid)
{
	struct gofile *f;
	int err;

	f = file_get(pid, &err);
	if (!f)
		return false;
	f->refs--;	/* kept cached for the goheap__open that follows */
	return true;
}

static struct gofile *file_of(const struct goheap *g)
{
	struct gofile *f;

	for (f = files; f; f = f->next)
		if (f->bin == g->bin)
			return f;
	return NULL;
}

/*
 * Where the segment at file offset 0 was mapped, minus its link-time
 * address.  The mapping is found by the file's device and inode, so a
 * path that differs in another mount namespace does not matter.
 */
static int load_bias(struct goheap *g, const struct gofile *f)
{
	struct procfs_maps *maps;
	uint64_t first = 0;
	int i, err;

	for (i = 0; i < f->nload; i++)
		if (f->load[i].off == 0) {
			first = f->load[i].vaddr;
			break;
		}
	err = procfs__read_maps(g->pid, &maps);
	if (err)
		return err;
	err = -ENOENT;
	for (i = 0; i < maps->n && err; i++) {
		const struct procfs_map *m = &maps->m[i];

		if (m->ino != f->ino || m->pgoff != 0 || m->dev != f->dev)
			continue;
		g->bias = m->start - (first & ~0xfffull);
		err = 0;
	}
	procfs__maps_put(maps);
	return err;
}

int goheap__open(int pid, struct goheap **out)
{
	struct goheap *g;
	struct gofile *f;
	int err;

	f = file_get(pid, &err);
	if (!f)
		return err;
	g = calloc(1, sizeof(*g));
	if (!g) {
		file_put(f->bin);
		return -ENOMEM;
	}
	g->pid = pid;
	g->bin = f->bin;
	g->gc_fd = -1;
	snprintf(g->version, sizeof(g->version), "%s", gobin__version(f->bin));
	g->vnum = gobin__version_num(f->bin);
	g->pie = gobin__pie(f->bin);
	g->rt = f->rt;
	g->prof = GOHEAP_PROF_UNKNOWN;
	g->gogc = -1;
	if (g->pie) {
		err = load_bias(g, f);
		if (err) {
			goheap__free(g);
			return err;
		}
	}
	*out = g;
	return f->rt_err ? -ENOENT : 0;
}

void goheap__free(struct goheap *g)
{
	int i;

	if (!g)
		return;
	for (i = 0; i < (int)ARRAY_SIZE(g->links); i++)
		bpf_link__destroy(g->links[i]);
	if (g->gc_fd >= 0) {
		uint32_t key = g->pid;

		bpf_map_delete_elem(g->gc_fd, &key);
	}
	for (i = 0; i < g->nsites; i++)
		free(g->sites[i].stk);
	free(g->sites);
	free(g->seen);
	file_put(g->bin);
	free(g);
}

/* Read len bytes at the process's link-time address addr (bias added). */
static int rd(const struct goheap *g, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len };
	struct iovec remote = { (void *)(uintptr_t)addr, len };
	ssize_t n = process_vm_readv(g->pid, &local, 1, &remote, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

static int rd_var(const struct goheap *g, uint64_t link_addr, void *buf,
		  size_t len)
{
	if (!link_addr)
		return -ENOENT;
	return rd(g, link_addr + g->bias, buf, len);
}

/* The set of buckets already known: stops the walk, and any loop. */
static bool seen_has(const struct goheap *g, uint64_t a)
{
	uint32_t i;

	if (!g->seen)
		return false;
	for (i = (a >> 4) & g->seen_mask; g->seen[i]; i = (i + 1) & g->seen_mask)
		if (g->seen[i] == a)
			return true;
	return false;
}

static int seen_add(struct goheap *g, uint64_t a)
{
	uint32_t i;

	if ((g->nseen + 1) * 2 > g->seen_mask) {
		uint32_t old = g->seen ? g->seen_mask + 1 : 0, j;
		uint32_t mask = old ? old * 2 - 1 : 1023;
		uint64_t *n = calloc(mask + 1, sizeof(*n)), *o = g->seen;

		if (!n)
			return -ENOMEM;
		g->seen = n;
		g->seen_mask = mask;
		g->nseen = 0;
		for (j = 0; j < old; j++)
			if (o[j])
				seen_add(g, o[j]);
		free(o);
	}
	for (i = (a >> 4) & g->seen_mask; g->seen[i]; i = (i + 1) & g->seen_mask)
		;
	g->seen[i] = a;
	g->nseen++;
	return 0;
}

/* Largest stack the runtime records for this version. */
static int max_nstk(const struct goheap *g)
{
	return g->vnum && g->vnum < 123 ? 32 : MAX_NSTK;
}

/*
 * Buckets added at the head since the last read, until a known one (or
 * the end).  A bucket that fails the checks ends the walk without
 * moving on: the next read tries again from the head.
 */
static int walk_new(struct goheap *g, uint64_t head)
{
	uint64_t b = head, hdr[BUCKET_HDR / 8 + 32];
	int err = 0;

	while (b && !seen_has(g, b)) {
		struct goheap_site *s;
		uint64_t nstk;

		if (g->nsites >= MAX_BUCKETS) {
			g->truncated = true;
			break;
		}
		/* header and (usually) the whole stack in one read */
		if (rd(g, b, hdr, sizeof(hdr)) && rd(g, b, hdr, BUCKET_HDR))
			return -EFAULT;
		nstk = hdr[5];
		if (hdr[2] != 1 || !nstk || nstk > (uint64_t)max_nstk(g) ||
		    (b & 7))
			return -EPROTO;
		if (array_grow(&g->sites, &g->cap_sites, g->nsites,
			       sizeof(g->sites[0])))
			return -ENOMEM;
		s = &g->sites[g->nsites];
		memset(s, 0, sizeof(*s));
		s->stk = malloc(nstk * sizeof(uint64_t));
		if (!s->stk)
			return -ENOMEM;
		if (nstk <= 32)
			memcpy(s->stk, &hdr[BUCKET_HDR / 8], nstk * 8);
		else if (rd(g, b + BUCKET_HDR, s->stk, nstk * 8)) {
			free(s->stk);
			return -EFAULT;
		}
		err = seen_add(g, b);
		if (err) {
			free(s->stk);
			return err;
		}
		s->bucket = b;
		s->size = hdr[4];
		s->nstk = nstk;
		g->nsites++;
		b = hdr[1];	/* allnext */
	}
	return 0;
}

/* Every bucket's memRecord, IOV_BATCH buckets per system call. */
static int read_records(struct goheap *g)
{
	static struct iovec local[IOV_BATCH], remote[IOV_BATCH];
	int i, j, n;

	for (i = 0; i < g->nsites; i += n) {
		ssize_t got;

		n = g->nsites - i < IOV_BATCH ? g->nsites - i : IOV_BATCH;
		for (j = 0; j < n; j++) {
			struct goheap_site *s = &g->sites[i + j];

			local[j].iov_base = s->rec;
			local[j].iov_len = MEMREC_LEN;
			remote[j].iov_base = (void *)(uintptr_t)(s->bucket +
					BUCKET_HDR + s->nstk * 8ull);
			remote[j].iov_len = MEMREC_LEN;
		}
		got = process_vm_readv(g->pid, local, n, remote, n, 0);
		if (got < 0)
			return -errno;
		if (got != (ssize_t)n * MEMREC_LEN)
			return -EFAULT;
	}
	return 0;
}

/*
 * mProfCycle = cycle << 1 | flushed since 1.19; mProf {u32 cycle; bool
 * flushed} before.  A version the buildinfo did not give is taken as new.
 */
static bool cycle_packed(const struct goheap *g)
{
	return !g->vnum || g->vnum >= 119;
}

static uint32_t cycle_of(const struct goheap *g, uint64_t raw)
{
	return cycle_packed(g) ? (uint32_t)raw >> 1 : (uint32_t)raw;
}

static int read_cycle(struct goheap *g, uint64_t *raw)
{
	uint64_t v = 0;
	int err = rd_var(g, g->rt.mprof_cycle, &v, cycle_packed(g) ? 4 : 8);

	*raw = v;
	return err;
}

void goheap__scale(int64_t count, int64_t bytes, int64_t rate,
		   int64_t *out_count, int64_t *out_bytes)
{
	double avg, scale;

	/* runtime/pprof's scaleHeapSample, operation for operation */
	if (!count || !bytes) {
		*out_count = *out_bytes = 0;
		return;
	}
	if (rate <= 1) {
		*out_count = count;
		*out_bytes = bytes;
		return;
	}
	avg = (double)bytes / (double)count;
	scale = 1 / (1 - exp(-avg / (double)rate));
	*out_count = (int64_t)((double)count * scale);
	*out_bytes = (int64_t)((double)bytes * scale);
}

/*
 * What runtime.MemProfile would return now: active plus the cycle's
 * future slot (it flushes that one itself; once flushed the slot is
 * zero), and, when no bucket has anything active yet (no GC so far),
 * all three future slots.
 */
static void publish(struct goheap *g, uint32_t cycle)
{
	uint32_t idx = cycle % 3;
	bool clear = true;
	int i, k;

	for (i = 0; i < g->nsites && clear; i++) {
		const uint64_t *r = g->sites[i].rec;

		if (r[0] + r[4 + idx * 4] || r[1] + r[4 + idx * 4 + 1])
			clear = false;
	}
	g->inuse_bytes = g->inuse_objects = 0;
	g->alloc_bytes = g->alloc_objects = 0;
	for (i = 0; i < g->nsites; i++) {
		struct goheap_site *s = &g->sites[i];
		uint64_t c[4];

		for (k = 0; k < 4; k++) {
			c[k] = s->rec[k] + s->rec[4 + idx * 4 + k];
			if (clear)
				c[k] = s->rec[k] + s->rec[4 + k] +
				       s->rec[8 + k] + s->rec[12 + k];
		}
		s->allocs = c[0];
		s->frees = c[1];
		s->alloc_bytes = c[2];
		s->free_bytes = c[3];
		goheap__scale(c[0], c[2], g->rate, &s->alloc_objects,
			      &s->alloc_space);
		goheap__scale((int64_t)(c[0] - c[1]), (int64_t)(c[2] - c[3]),
			      g->rate, &s->inuse_objects, &s->inuse_space);
		g->inuse_bytes += s->inuse_space;
		g->inuse_objects += s->inuse_objects;
		g->alloc_bytes += s->alloc_space;
		g->alloc_objects += s->alloc_objects;
	}
}

/*
 * runtime.gcController offsets per version (GO-FACTS.md; 1.17, 1.18 and
 * 1.20 were not measured and are left unknown rather than guessed).
 */
struct ctl_layout {
	int from, to;
	int heap_goal, heap_live, heap_marked, total_alloc, total_free;
};

static const struct ctl_layout ctl_layouts[] = {
	{ 119, 119, 104, 136, 184, 328, 336 },
	{ 121, 126, 72, 104, 152, 296, 304 },
};

static void read_ctl(struct goheap *g)
{
	const struct ctl_layout *l = NULL;
	uint8_t buf[344];
	size_t i;

	g->have_ctl = false;
	for (i = 0; i < ARRAY_SIZE(ctl_layouts); i++)
		if (g->vnum >= ctl_layouts[i].from && g->vnum <= ctl_layouts[i].to)
			l = &ctl_layouts[i];
	if (!g->rt.gc_controller)
		return;
	/* GOGC and GOMEMLIMIT sit at the front in every version */
	if (rd_var(g, g->rt.gc_controller, buf, l ? sizeof(buf) : 16))
		return;
	memcpy(&g->gogc, buf, 4);
	memcpy(&g->memlimit, buf + 8, 8);
	if (!l)
		return;
	memcpy(&g->heap_goal, buf + l->heap_goal, 8);
	memcpy(&g->heap_live, buf + l->heap_live, 8);
	memcpy(&g->heap_marked, buf + l->heap_marked, 8);
	memcpy(&g->total_alloc, buf + l->total_alloc, 8);
	memcpy(&g->total_free, buf + l->total_free, 8);
	g->have_ctl = true;
}

static void read_gc_probes(struct goheap *g)
{
	struct mt_go_gc v;
	uint32_t key = g->pid;

	if (g->gc_fd < 0 || bpf_map_lookup_elem(g->gc_fd, &key, &v))
		return;
	g->gc.gc_starts = v.gc_starts;
	g->gc.stw_count = v.stw_count;
	g->gc.stw_total_ns = v.stw_total_ns;
	g->gc.stw_last_ns = v.stw_last_ns;
	g->gc.stw_max_ns = v.stw_max_ns;
}

static int read_profile(struct goheap *g)
{
	uint64_t head, before, after;
	int err = 0, tries;

	if (rd_var(g, g->rt.mbuckets, &head, 8))
		return -EFAULT;
	err = walk_new(g, head);
	if (err == -ENOMEM)
		return err;
	if (err)
		g->read_errors++;	/* the known buckets are still read */
	for (tries = 0; tries < READ_TRIES; tries++) {
		if (read_cycle(g, &before))
			return -EFAULT;
		err = read_records(g);
		if (err)
			return err;
		if (read_cycle(g, &after))
			return -EFAULT;
		if (before == after)
			break;	/* no GC published while we read */
	}
	if (tries == READ_TRIES)
		g->read_errors++;
	g->cycle = cycle_of(g, after);
	g->have_cycle = true;
	publish(g, g->cycle);
	return 0;
}

int goheap__read(struct goheap *g, uint64_t ts)
{
	double secs = g->have_read && ts > g->ts ? (ts - g->ts) / 1e9 : 0;
	uint8_t disabled = 0;
	int err;

	if (kill(g->pid, 0) && errno == ESRCH)
		return -ESRCH;
	if (rd_var(g, g->rt.mem_profile_rate, &g->rate, 8))
		g->rate = -1;
	if (g->rt.disable_memprof)
		rd_var(g, g->rt.disable_memprof, &disabled, 1);
	read_ctl(g);
	read_gc_probes(g);
	if (g->rate < 0 || !g->rt.mbuckets)
		g->prof = GOHEAP_PROF_UNKNOWN;
	else if (disabled && !g->rate)
		g->prof = GOHEAP_PROF_COMPILED_OUT;
	else if (!g->rate)
		g->prof = GOHEAP_PROF_RATE_ZERO;
	else
		g->prof = GOHEAP_PROF_ON;
	if (g->rt.mbuckets && g->rt.mprof_cycle) {
		err = read_profile(g);
		if (err == -ESRCH || err == -ENOMEM)
			return err;
		if (err)
			g->read_errors++;
	} else if (g->rt.mprof_cycle) {
		uint64_t raw;

		if (!read_cycle(g, &raw)) {
			g->cycle = cycle_of(g, raw);
			g->have_cycle = true;
		}
	}
	if (secs > 0) {
		g->alloc_bps = g->alloc_bytes >= (int64_t)g->prev_alloc_bytes ?
			(g->alloc_bytes - g->prev_alloc_bytes) / secs : 0;
		g->heap_alloc_bps = g->have_ctl &&
			g->total_alloc >= g->prev_total_alloc ?
			(g->total_alloc - g->prev_total_alloc) / secs : 0;
		g->gc_ps = (uint32_t)(g->cycle - g->prev_cycle) / secs;
		g->prev_ts = g->ts;
	}
	g->prev_alloc_bytes = g->alloc_bytes;
	g->prev_total_alloc = g->total_alloc;
	g->prev_cycle = g->cycle;
	g->ts = ts;
	g->have_read = true;
	return 0;
}

/* File offset of a link-time code address, for a uprobe. */
static int64_t file_offset(const struct gofile *f, uint64_t vaddr)
{
	int i;

	for (i = 0; i < f->nload; i++)
		if (f->load[i].exec && vaddr >= f->load[i].vaddr &&
		    vaddr < f->load[i].vaddr + f->load[i].filesz)
			return vaddr - f->load[i].vaddr + f->load[i].off;
	return -1;
}

int goheap__attach_gc(struct goheap *g, int map_fd, struct bpf_program *start,
		      struct bpf_program *stop, struct bpf_program *restart)
{
	static const char *const fn[] = {
		"runtime.gcStart", "runtime.stopTheWorldWithSema",
		"runtime.startTheWorldWithSema",
	};
	struct bpf_program *progs[] = { start, stop, restart };
	const struct gofile *f = file_of(g);
	struct mt_go_gc zero = {};
	uint32_t key = g->pid;
	char path[320];
	size_t i;
	int err;

	if (!f)
		return -ENOENT;
	err = procfs__path(path, sizeof(path), g->pid, "exe");
	if (err)
		return err;
	/* the programs count only for pids with an entry */
	if (bpf_map_update_elem(map_fd, &key, &zero, BPF_ANY))
		return -errno;
	g->gc_fd = map_fd;
	for (i = 0; i < ARRAY_SIZE(fn); i++) {
		uint64_t addr = gobin__func(g->bin, fn[i], NULL);
		int64_t off = addr ? file_offset(f, addr) : -1;

		if (off < 0)
			return -ENOENT;
		/* entry probes only: see the header */
		g->links[i] = bpf_program__attach_uprobe(progs[i], false,
							 g->pid, path, off);
		if (!g->links[i]) {
			err = -errno;
			return err;
		}
	}
	g->gc_probed = true;
	return 0;
}

int goheap__set_rate(struct goheap *g, int64_t rate)
{
	struct iovec local = { &rate, sizeof(rate) };
	struct iovec remote;

	if (!g->rt.mem_profile_rate || rate <= 0)
		return -EINVAL;
	remote.iov_base = (void *)(uintptr_t)(g->rt.mem_profile_rate + g->bias);
	remote.iov_len = sizeof(rate);
	if (process_vm_writev(g->pid, &local, 1, &remote, 1, 0) !=
	    sizeof(rate))
		return -errno;
	return 0;
}

const char *goheap__note(const struct goheap *g)
{
	switch (g->prof) {
	case GOHEAP_PROF_ON:
		return NULL;
	case GOHEAP_PROF_COMPILED_OUT:
		return "heap profiling compiled out (the program does not "
		       "import runtime/pprof): MemProfileRate is 0, no "
		       "per-site heap; --go-enable-profiling switches it on";
	case GOHEAP_PROF_RATE_ZERO:
		return "heap profiling switched off by the program "
		       "(MemProfileRate = 0)";
	default:
		return "the runtime's heap profile was not found in this "
		       "binary";
	}
}
