// SPDX-License-Identifier: GPL-2.0
/*
 * Unwinding by CFI: .eh_frame compiled into rows for the kernel's walk,
 * by a worker thread (see cfi.h).
 *
 * The functions a file describes are listed, sorted, by its
 * .eh_frame_hdr search table; libdw's CFI reader gives the frame state
 * at an address and the range it holds for (dwarf_frame_info), so each
 * function is compiled by stepping from one range to the next: one row
 * per change of rule, none of DWARF's expression machinery in the
 * kernel.  A rule the kernel cannot follow (a CFA computed by an
 * expression, as in PLT stubs) becomes an UNSUP row: the walk falls
 * back to the frame pointer there and counts it.
 */
#define _GNU_SOURCE
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "memtrace.h"
#include "memtrace.skel.h"
#include "cfi.h"
#include "elfsym.h"
#include "procfs.h"
#include "util.h"

#define DW_REG_RBP	6
#define DW_REG_RSP	7
#define DW_REG_RA	16

/* ---- compiling one file ----------------------------------------------- */

/* A value of the .eh_frame_hdr encodings binutils and lld write. */
static int hdr_read(const unsigned char **p, const unsigned char *end,
		    uint8_t enc, uint64_t here, uint64_t hdr, uint64_t *out)
{
	int64_t v;

	switch (enc & 0x0f) {
	case DW_EH_PE_udata4:
		if (*p + 4 > end)
			return -EINVAL;
		v = (uint32_t)((*p)[0] | (*p)[1] << 8 | (*p)[2] << 16 |
			       (uint32_t)(*p)[3] << 24);
		*p += 4;
		break;
	case DW_EH_PE_sdata4:
		if (*p + 4 > end)
			return -EINVAL;
		v = (int32_t)((*p)[0] | (*p)[1] << 8 | (*p)[2] << 16 |
			      (uint32_t)(*p)[3] << 24);
		*p += 4;
		break;
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8:
		if (*p + 8 > end)
			return -EINVAL;
		memcpy(&v, *p, 8);
		*p += 8;
		break;
	default:
		return -ENOTSUP;
	}
	switch (enc & 0x70) {
	case 0:
		break;
	case DW_EH_PE_pcrel:
		v += here;
		break;
	case DW_EH_PE_datarel:
		v += hdr;
		break;
	default:
		return -ENOTSUP;
	}
	*out = v;
	return 0;
}

/* .eh_frame_hdr's table of (function start, FDE), sorted by start. */
struct hdr_table {
	const unsigned char *data, *table, *end;
	uint64_t addr;		/* of the section */
	uint64_t count;
	uint8_t enc;		/* of the entries */
};

static int hdr_table(Elf *elf, struct hdr_table *t)
{
	const unsigned char *p, *end;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	uint64_t ptr;
	Elf_Data *d = NULL;
	GElf_Shdr sh;
	uint8_t penc, cenc;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return -ENOEXEC;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name && !strcmp(name, ".eh_frame_hdr")) {
			d = elf_getdata(scn, NULL);
			break;
		}
	}
	if (!d || !d->d_buf || d->d_size < 8)
		return -ENOENT;
	p = d->d_buf;
	end = p + d->d_size;
	if (p[0] != 1)
		return -ENOTSUP;
	penc = p[1];
	cenc = p[2];
	t->enc = p[3];
	p += 4;
	if (hdr_read(&p, end, penc, sh.sh_addr + 4, sh.sh_addr, &ptr) ||
	    hdr_read(&p, end, cenc, 0, sh.sh_addr, &t->count) ||
	    t->count > (size_t)(end - p))
		return -ENOTSUP;
	t->data = d->d_buf;
	t->table = p;
	t->end = end;
	t->addr = sh.sh_addr;
	return 0;
}

/* The function start of entry i of the table. */
static int hdr_start(const struct hdr_table *t, uint64_t i, uint64_t *start)
{
	size_t esz = (t->enc & 0x0f) == DW_EH_PE_udata8 ||
		     (t->enc & 0x0f) == DW_EH_PE_sdata8 ? 16 : 8;
	const unsigned char *p = t->table + i * esz;

	if (i >= t->count || p + esz > t->end)
		return -EINVAL;
	return hdr_read(&p, t->end, t->enc, t->addr + (p - t->data), t->addr,
			start);
}

/* The start addresses of the functions .eh_frame_hdr lists, sorted. */
static int fde_starts(Elf *elf, uint64_t **out, size_t *n)
{
	struct hdr_table t;
	uint64_t *v;
	size_t i;
	int err;

	err = hdr_table(elf, &t);
	if (err)
		return err;
	v = calloc(t.count ? t.count : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < t.count; i++)
		if (hdr_start(&t, i, &v[i]))
			break;
	*out = v;
	*n = i;
	return 0;
}

int cfi__func_range(Elf *elf, uint64_t va, uint64_t *start, uint64_t *end)
{
	uint64_t lo = 0, hi, mid, pc;
	struct hdr_table t;
	int err;

	err = hdr_table(elf, &t);
	if (err)
		return err;
	hi = t.count;
	/* the last entry starting at or below va */
	while (lo + 1 < hi) {
		mid = lo + (hi - lo) / 2;
		err = hdr_start(&t, mid, &pc);
		if (err)
			return err;
		if (pc <= va)
			lo = mid;
		else
			hi = mid;
	}
	err = hdr_start(&t, lo, start);
	if (err || *start > va)
		return err ? err : -ENOENT;
	/* up to the next function; the last one's end is unknown (0) */
	if (hdr_start(&t, lo + 1, end))
		*end = 0;
	return 0;
}

/* Offset k from "[call_frame_cfa, plus k]" forms; false otherwise. */
static bool cfa_relative(const Dwarf_Op *ops, size_t nops, int64_t *k)
{
	if (nops < 1 || ops[0].atom != DW_OP_call_frame_cfa)
		return false;
	if (nops == 1) {
		*k = 0;
		return true;
	}
	if (nops == 2 && ops[1].atom == DW_OP_plus_uconst) {
		*k = (int64_t)ops[1].number;
		return true;
	}
	if (nops == 3 && ops[1].atom == DW_OP_consts &&
	    ops[2].atom == DW_OP_plus) {
		*k = (int64_t)ops[1].number;
		return true;
	}
	return false;
}

/* The kernel's form of the frame state fr (pc filled in by the caller). */
static void frame_rule(Dwarf_Frame *fr, bool signal, struct mt_cfi_row *r)
{
	Dwarf_Op mem[3], *ops;
	size_t nops;
	int64_t off, k;
	int reg;

	r->type = MT_CFI_UNSUP;
	r->cfa_off = 0;
	r->rbp_off = 0;
	if (signal) {
		r->type = MT_CFI_SIGNAL;
		return;
	}
	if (!dwarf_frame_register(fr, DW_REG_RA, mem, &ops, &nops) &&
	    nops == 0 && ops == mem) {
		r->type = MT_CFI_END;	/* _start, thread entry: no caller */
		return;
	}
	if (dwarf_frame_cfa(fr, &ops, &nops) || nops != 1)
		return;
	/* libdw spells "reg + N" as bregx(reg, N); bregN(off) is the same */
	if (ops[0].atom == DW_OP_bregx) {
		reg = ops[0].number;
		off = (int64_t)ops[0].number2;
	} else if (ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31) {
		reg = ops[0].atom - DW_OP_breg0;
		off = (int64_t)ops[0].number;
	} else {
		return;
	}
	if ((reg != DW_REG_RSP && reg != DW_REG_RBP) || off < 8 || (off & 7) ||
	    off / 8 > UINT16_MAX)
		return;
	if (dwarf_frame_register(fr, DW_REG_RBP, mem, &ops, &nops))
		return;
	if (nops) {
		/* saved at CFA + k; anything else (kept in a register) not */
		if (!cfa_relative(ops, nops, &k) || !k || (k & 7) ||
		    k / 8 < INT8_MIN || k / 8 > INT8_MAX)
			return;
		r->rbp_off = k / 8;
	}
	r->type = reg == DW_REG_RSP ? MT_CFI_RSP : MT_CFI_RBP;
	r->cfa_off = off / 8;
}

static int row_add(struct cfi_table *t, int *cap, uint64_t pc,
		   const struct mt_cfi_row *rule)
{
	struct mt_cfi_row *last = t->nrows ? &t->rows[t->nrows - 1] : NULL;

	/* a rule that does not change needs no row of its own */
	if (last && last->type == rule->type &&
	    last->cfa_off == rule->cfa_off && last->rbp_off == rule->rbp_off)
		return 0;
	if (last && last->pc == (uint32_t)pc) {
		*last = *rule;
		last->pc = pc;
		return 0;
	}
	if (array_grow(&t->rows, cap, t->nrows, sizeof(*t->rows)))
		return -ENOMEM;
	t->rows[t->nrows] = *rule;
	t->rows[t->nrows].pc = pc;
	t->nrows++;
	return 0;
}

static void read_build_id(Elf *elf, char *hex)
{
	const unsigned char *id;
	ssize_t n = dwelf_elf_gnu_build_id(elf, (const void **)&id);
	int i;

	hex[0] = '\0';
	for (i = 0; i < n && i < 20; i++)
		sprintf(hex + 2 * i, "%02x", id[i]);
}

/*
 * Step through one function from pc: a row per range of one rule.
 * Returns where its description ends (pc when there is none).
 */
static int compile_fde(struct cfi_table *t, int *cap, Dwarf_CFI *cfi,
		       uint64_t pc, uint64_t *endp, bool *rbp_based,
		       bool *rsp_frame)
{
	struct mt_cfi_row rule;
	Dwarf_Addr start, end;
	Dwarf_Frame *fr;
	bool signal;
	int err = 0;

	*endp = pc;
	while (!dwarf_cfi_addrframe(cfi, pc, &fr)) {
		signal = false;
		if (dwarf_frame_info(fr, &start, &end, &signal) < 0 ||
		    end <= pc || end - pc > (1ULL << 31)) {
			free(fr);
			break;
		}
		frame_rule(fr, signal, &rule);
		free(fr);
		/* PLT stubs compute their CFA: they are no caller frames */
		if (rule.type == MT_CFI_RBP || rule.type == MT_CFI_UNSUP)
			*rbp_based = true;
		/* it moved the stack pointer: it may call from there */
		if (rule.type == MT_CFI_RSP && rule.cfa_off > 1)
			*rsp_frame = true;
		err = row_add(t, cap, pc, &rule);
		if (err)
			break;
		pc = end;
		*endp = end;
	}
	return err;
}

int cfi__compile(int fd, struct cfi_table *t)
{
	static const struct mt_cfi_row none = { .type = MT_CFI_NONE };
	uint64_t *starts = NULL, pc = 0, end, first;
	Dwarf_CFI *cfi = NULL;
	size_t nph, n = 0, i;
	int cap = 0, err;
	Elf *elf;
	GElf_Ehdr eh;

	memset(t, 0, sizeof(*t));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	err = -ENOEXEC;
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    eh.e_machine != EM_X86_64 || elf_getphdrnum(elf, &nph))
		goto out;
	read_build_id(elf, t->build_id);
	for (i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD &&
		    (ph.p_flags & PF_X)) {
			t->delta = (int64_t)(ph.p_vaddr - ph.p_offset);
			break;
		}
	}
	err = fde_starts(elf, &starts, &n);
	if (err)
		goto out;
	cfi = dwarf_getcfi_elf(elf);
	err = -ENOENT;
	if (!cfi)
		goto out;
	err = 0;
	t->flags = MT_CFI_FP;
	for (i = 0; i < n && !err; i++) {
		bool rbp_based = false, rsp_frame = false;

		first = starts[i];
		if (first < pc)
			continue;	/* described already */
		if (first >= (1ULL << 32)) {
			err = -E2BIG;	/* rows hold 32-bit addresses */
			break;
		}
		if (first > pc && t->nrows)
			err = row_add(t, &cap, pc, &none);	/* a gap */
		if (err)
			break;
		err = compile_fde(t, &cap, cfi, first, &end, &rbp_based,
				  &rsp_frame);
		if (end <= first) {
			pc = first;
			continue;
		}
		t->fdes++;
		/*
		 * A function that moves the stack pointer (to call, or
		 * for locals) but never bases its frame on rbp keeps no
		 * frame pointer: the file needs its rows.  One that never
		 * moves it only tail-calls, and is never a caller frame.
		 */
		if (!rbp_based && rsp_frame) {
			t->frameless++;
			t->flags = 0;
		}
		pc = end;
	}
	if (!err && t->nrows)
		err = row_add(t, &cap, pc, &none);	/* past the last one */
	if (!err && pc >= (1ULL << 32))
		err = -E2BIG;
out:
	free(starts);
	if (cfi)
		dwarf_cfi_end(cfi);
	if (elf)
		elf_end(elf);
	if (err)
		cfi__table_free(t);
	return err;
}

void cfi__table_free(struct cfi_table *t)
{
	free(t->rows);
	t->rows = NULL;
	t->nrows = 0;
}

const struct mt_cfi_row *cfi__lookup(const struct cfi_table *t, uint64_t va)
{
	uint32_t lo = 0, hi = t->nrows, mid;

	if (!t->nrows || va >> 32 || t->rows[0].pc > va)
		return NULL;
	while (lo + 1 < hi) {
		mid = lo + (hi - lo) / 2;
		if (t->rows[mid].pc <= va)
			lo = mid;
		else
			hi = mid;
	}
	return &t->rows[lo];
}

/* ---- the files the kernel knows, and the worker that compiles them ---- */

struct cfi_job {
	int fd;
	struct mt_cfi_key key;
	char name[64];		/* for -v: the file's name */
};

struct cfi_done {
	char build_id[41];
	int64_t delta;
	struct mt_cfi_file f;
};

struct cfi {
	struct memtrace_bpf *skel;
	int rows_fd, files_fd, procs_fd;
	bool verbose;
	/* main thread: every file queued or compiled */
	struct mt_cfi_key *known;
	int nknown, capknown;
	/* shared with the worker, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond, idle;
	struct cfi_job *jobs;
	int njobs, capjobs;
	bool busy, stop, started;
	pthread_t thread;
	struct cfi_stats st;
	/* worker only */
	uint32_t next_row, max_rows;
	struct cfi_done *done;
	int ndone, capdone;
};

/* The device number as the kernel encodes it (MKDEV), as it keys files. */
static uint32_t kdev(dev_t d)
{
	return major(d) << 20 | minor(d);
}

static int key_of(int fd, struct mt_cfi_key *k)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	memset(k, 0, sizeof(*k));
	k->ino = st.st_ino;
	k->dev = kdev(st.st_dev);
	return 0;
}

/* Rows into the shared array, then the file entry that publishes them. */
static int load_table(struct cfi *c, const struct cfi_table *t,
		      struct mt_cfi_file *f)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t *keys, i, count;
	int err = 0;

	f->first = c->next_row;
	f->nrows = t->nrows;
	f->flags = t->flags;
	f->delta = t->delta;
	/* a file that keeps frame pointers is walked without its rows */
	if (t->flags & MT_CFI_FP)
		f->nrows = 0;
	if (!f->nrows)
		return 0;
	if (c->max_rows - c->next_row < f->nrows)
		return -ENOSPC;
	keys = malloc(f->nrows * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (i = 0; i < f->nrows; i++)
		keys[i] = f->first + i;
	count = f->nrows;
	if (bpf_map_update_batch(c->rows_fd, keys, t->rows, &count, &opts))
		err = -errno;
	free(keys);
	if (!err)
		c->next_row += f->nrows;
	return err;
}

static void compile_job(struct cfi *c, const struct cfi_job *j)
{
	struct mt_cfi_file f = {};
	struct cfi_table t;
	uint64_t t0 = now_ns();
	bool reused = false;
	int err, i;

	err = cfi__compile(j->fd, &t);
	if (!err) {
		/* the same file under another inode (a copy): same rows */
		for (i = 0; i < c->ndone && t.build_id[0]; i++) {
			if (!strcmp(c->done[i].build_id, t.build_id) &&
			    c->done[i].delta == t.delta) {
				f = c->done[i].f;
				reused = true;
				break;
			}
		}
		if (!reused)
			err = load_table(c, &t, &f);
	}
	if (!err && !reused && t.build_id[0] &&
	    !array_grow(&c->done, &c->capdone, c->ndone, sizeof(*c->done))) {
		snprintf(c->done[c->ndone].build_id,
			 sizeof(c->done[c->ndone].build_id), "%s", t.build_id);
		c->done[c->ndone].delta = t.delta;
		c->done[c->ndone].f = f;
		c->ndone++;
	}
	/*
	 * A file that cannot be compiled is still entered, with no rows:
	 * its frames then count as walked without CFI, not as pending.
	 */
	if (err == -ENOSPC) {
		memset(&f, 0, sizeof(f));
		f.delta = t.delta;
	}
	if (err != -ENOSPC && err)
		memset(&f, 0, sizeof(f));
	bpf_map_update_elem(c->files_fd, &j->key, &f, BPF_ANY);
	pthread_mutex_lock(&c->lock);
	c->st.files++;
	c->st.failed += err != 0;
	c->st.rows = c->next_row;
	c->st.compile_ms += (now_ns() - t0) / 1e6;
	if (err == -ENOSPC && !c->st.rows_full) {
		c->st.rows_full = true;
		fprintf(stderr, "memtrace: warning: the CFI row table is full "
			"(%u rows): frames of further files are walked by "
			"frame pointer (counted as unknown)\n", c->max_rows);
	}
	pthread_mutex_unlock(&c->lock);
	if (c->verbose)
		fprintf(stderr, "memtrace: CFI of %llu:%llu: %u rows, %u "
			"functions (%u frameless)%s%s in %.1f ms (%s)\n",
			(unsigned long long)j->key.dev,
			(unsigned long long)j->key.ino, t.nrows, t.fdes,
			t.frameless, t.flags & MT_CFI_FP ?
			", frame pointers kept: no rows needed" : "",
			err ? ", failed" : "", (now_ns() - t0) / 1e6, j->name);
	cfi__table_free(&t);
}

static void *worker(void *arg)
{
	struct cfi *c = arg;
	struct cfi_job j;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->njobs && !c->stop)
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->stop)
			break;
		j = c->jobs[0];
		memmove(c->jobs, c->jobs + 1, --c->njobs * sizeof(*c->jobs));
		c->busy = true;
		pthread_mutex_unlock(&c->lock);
		compile_job(c, &j);
		close(j.fd);
		pthread_mutex_lock(&c->lock);
		c->busy = false;
		if (!c->njobs)
			pthread_cond_broadcast(&c->idle);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int cfi__new(struct memtrace_bpf *skel, bool verbose, struct cfi **out)
{
	struct cfi *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->skel = skel;
	c->verbose = verbose;
	c->rows_fd = bpf_map__fd(skel->maps.cfi_rows);
	c->files_fd = bpf_map__fd(skel->maps.cfi_files);
	c->procs_fd = bpf_map__fd(skel->maps.cfi_procs);
	c->max_rows = bpf_map__max_entries(skel->maps.cfi_rows);
	c->st.max_rows = c->max_rows;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	pthread_cond_init(&c->idle, NULL);
	if (pthread_create(&c->thread, NULL, worker, c)) {
		free(c);
		return -EAGAIN;
	}
	c->started = true;
	*out = c;
	return 0;
}

void cfi__free(struct cfi *c)
{
	int i;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (c->started)
		pthread_join(c->thread, NULL);
	for (i = 0; i < c->njobs; i++)
		close(c->jobs[i].fd);
	free(c->jobs);
	free(c->known);
	free(c->done);
	free(c);
}

static bool known(struct cfi *c, const struct mt_cfi_key *k)
{
	int i;

	for (i = 0; i < c->nknown; i++)
		if (c->known[i].ino == k->ino && c->known[i].dev == k->dev)
			return true;
	return false;
}

/* Queue the file open at fd (consumed) unless it is known already. */
static int enqueue(struct cfi *c, int fd, const struct mt_cfi_key *k,
		   const char *path)
{
	char name[64];
	const char *slash = strrchr(path, '/');

	/* escaped: a file name is anyone's bytes, and -v prints it */
	sanitize(slash ? slash + 1 : path, strlen(slash ? slash + 1 : path),
		 name, sizeof(name));
	int err = 0;

	if (known(c, k) ||
	    array_grow(&c->known, &c->capknown, c->nknown, sizeof(*c->known))) {
		close(fd);
		return 0;
	}
	c->known[c->nknown++] = *k;
	pthread_mutex_lock(&c->lock);
	if (array_grow(&c->jobs, &c->capjobs, c->njobs, sizeof(*c->jobs))) {
		err = -ENOMEM;
		close(fd);
	} else {
		c->jobs[c->njobs].fd = fd;
		c->jobs[c->njobs].key = *k;
		snprintf(c->jobs[c->njobs].name, sizeof(c->jobs[c->njobs].name),
			 "%s", name);
		c->njobs++;
		c->st.queued++;
		pthread_cond_signal(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}

int cfi__note_file(struct cfi *c, const char *path, uint64_t ino)
{
	struct mt_cfi_key k;
	int fd;

	if (!c)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (key_of(fd, &k) || (ino && k.ino != ino)) {
		close(fd);
		return -ESTALE;	/* replaced since it was mapped */
	}
	return enqueue(c, fd, &k, path);
}

int cfi__scan_pid(struct cfi *c, int pid, struct procfs_maps *snap)
{
	struct procfs_maps *maps = snap;
	struct mt_cfi_proc *cp, *old;
	struct mt_cfi_key k;
	uint32_t key = pid, i, n = 0;
	int m, fd, err = 0;
	char file[128];

	if (!c)
		return 0;
	if (!maps) {
		err = procfs__read_maps(pid, &maps);
		if (err)
			return err;
	}
	cp = calloc(2, sizeof(*cp));
	if (!cp) {
		err = -ENOMEM;
		goto out;
	}
	old = cp + 1;
	for (m = 0; m < maps->n && n < MT_CFI_MAPS; m++) {
		uint64_t start = maps->m[m].start, end = maps->m[m].end;

		if (!procfs__map_is_code_file(&maps->m[m]))
			continue;
		/* the file as mapped: other mount namespaces, deleted files */
		if (procfs__map_file(file, sizeof(file), pid, &maps->m[m]))
			continue;
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (key_of(fd, &k)) {
			close(fd);
			continue;
		}
		cp->m[n].start = start;
		cp->m[n].end = end;
		cp->m[n].pgoff = maps->m[m].pgoff;
		cp->m[n].key = k;
		n++;
		enqueue(c, fd, &k, maps->m[m].path);
	}
	/*
	 * What the kernel entered meanwhile (a library mapped after the
	 * read) stays; what /proc shows replaces the rest.
	 */
	if (!bpf_map_lookup_elem(c->procs_fd, &key, old)) {
		for (i = 0; i < old->n && i < MT_CFI_MAPS && n < MT_CFI_MAPS;
		     i++) {
			uint32_t j;
			bool overlap = false;

			for (j = 0; j < n && !overlap; j++)
				overlap = cp->m[j].start < old->m[i].end &&
					  old->m[i].start < cp->m[j].end;
			if (!overlap)
				cp->m[n++] = old->m[i];
		}
	}
	cp->n = n;
	if (n && bpf_map_update_elem(c->procs_fd, &key, cp, BPF_ANY))
		err = -errno;
	free(cp);
out:
	if (maps != snap)
		procfs__maps_put(maps);
	return err;
}

struct tree_ctx {
	struct cfi *c;
	const char *libdir;
	int depth;
};

static int scan_tree(struct cfi *c, const char *path, const char *libdir,
		     int depth);

static int scan_needed(const char *lib, void *vctx)
{
	struct tree_ctx *t = vctx;

	return scan_tree(t->c, lib, t->libdir, t->depth + 1);
}

static int scan_tree(struct cfi *c, const char *path, const char *libdir,
		     int depth)
{
	struct tree_ctx t = { .c = c, .libdir = libdir, .depth = depth };
	struct mt_cfi_key k;
	struct elfsym *es;
	int fd;

	if (depth > 8)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (key_of(fd, &k) || known(c, &k)) {
		close(fd);
		return 0;
	}
	enqueue(c, fd, &k, path);
	if (!elfsym__open(path, &es)) {
		elfsym__each_needed(es, path, libdir, scan_needed, &t);
		elfsym__close(es);
	}
	return 0;
}

int cfi__scan_exe(struct cfi *c, const char *exe, const char *libdir)
{
	struct elfsym *es;
	char interp[PATH_MAX];

	if (!c)
		return 0;
	/* the dynamic loader too: its code runs first */
	if (!elfsym__open(exe, &es)) {
		if (!elfsym__interp(es, interp, sizeof(interp)) && interp[0])
			scan_tree(c, interp, libdir, 8);
		elfsym__close(es);
	}
	return scan_tree(c, exe, libdir, 0);
}

int cfi__wait(struct cfi *c, int ms)
{
	struct timespec ts;
	int err = 0;

	if (!c)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	while ((c->njobs || c->busy) && !err)
		err = pthread_cond_timedwait(&c->idle, &c->lock, &ts);
	pthread_mutex_unlock(&c->lock);
	return err ? -ETIMEDOUT : 0;
}

void cfi__stats(struct cfi *c, struct cfi_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	st->queued = c->njobs + c->busy;
	pthread_mutex_unlock(&c->lock);
}
