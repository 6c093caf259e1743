// SPDX-License-Identifier: GPL-2.0
/*
 * Go executables read from the file alone: buildinfo, the pclntab (every
 * layout since Go 1.2, inline tree since 1.16) and the runtime variables
 * memtrace reads.  The file is mapped read-only and never trusted: every
 * offset read from it is checked against the mapping before use, so a
 * truncated or hostile file gives "not found", never a crash.
 *
 * Layout references (read, not copied): the Go runtime's symtab.go and
 * symtabinl.go of each release, cmd/link/internal/ld/pcln.go, and
 * opentelemetry-ebpf-profiler's docs/gopclntab.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <capstone/capstone.h>

#include "gobin.h"

/* pclntab layouts, named after the first release that wrote them */
enum pcln_layout {
	PCLN_NONE,
	PCLN_12,	/* 0xfffffffb: Go 1.2 - 1.15 */
	PCLN_116,	/* 0xfffffffa: Go 1.16 - 1.17 */
	PCLN_118,	/* 0xfffffff0: Go 1.18 - 1.19 */
	PCLN_120,	/* 0xfffffff1: Go 1.20 and later */
};

#define MAX_SEGS	32
#define MAX_FUNCS	(1 << 24)	/* far above any real program */
#define MAX_INLINE	64		/* inline depth we follow */
#define MAX_DISASM	4096		/* bytes of a function we decode */

/* Indexes the runtime gives its tables (unchanged since Go 1.16). */
#define PCDATA_INLTREE	2
#define FUNCDATA_INLTREE 3

struct seg {
	uint64_t vaddr, memsz, off, filesz;
	uint32_t flags;
};

struct reloc {
	uint64_t where, addend;
};

/* A region of the mapped file, as [p, p + len). */
struct span {
	const uint8_t *p;
	size_t len;
};

struct gobin {
	uint8_t *map;
	size_t size;
	bool pie;
	struct seg segs[MAX_SEGS];
	int nsegs;
	struct reloc *relocs;	/* R_X86_64_RELATIVE, sorted by where */
	size_t nrelocs;

	char version[48];
	int vnum;

	enum pcln_layout layout;
	uint64_t pcln_vaddr;
	struct span pcln;	/* the whole table */
	struct span funcnames, cutab, filetab, pctab, functab;
	uint64_t nfunc;
	uint64_t text_start;	/* 1.18+: entries are offsets from it */
	int quantum;
	uint64_t gofunc;	/* 1.18+: base of funcdata offsets; 0 unknown */

	struct gobin_runtime rt;	/* from .symtab */
	bool has_symtab;
	bool no_shdrs;
};

/* ---- bounded reads ---------------------------------------------------- */

static bool span_ok(const struct span *s, uint64_t off, uint64_t len)
{
	return off <= s->len && len <= s->len - off;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* A NUL-terminated string at off in s, or NULL. */
static const char *span_str(const struct span *s, uint64_t off)
{
	if (off >= s->len || !memchr(s->p + off, 0, s->len - off))
		return NULL;
	return (const char *)s->p + off;
}

/* File bytes behind [vaddr, vaddr + len), or NULL. */
static const uint8_t *vptr(const struct gobin *g, uint64_t vaddr, uint64_t len)
{
	int i;

	for (i = 0; i < g->nsegs; i++) {
		const struct seg *s = &g->segs[i];

		if (vaddr < s->vaddr || vaddr - s->vaddr >= s->filesz)
			continue;
		if (len > s->filesz - (vaddr - s->vaddr))
			return NULL;
		return g->map + s->off + (vaddr - s->vaddr);
	}
	return NULL;
}

/* The span from vaddr to the end of its segment's file data. */
static struct span vspan(const struct gobin *g, uint64_t vaddr)
{
	struct span s = { NULL, 0 };
	int i;

	for (i = 0; i < g->nsegs; i++) {
		const struct seg *sg = &g->segs[i];

		if (vaddr < sg->vaddr || vaddr - sg->vaddr >= sg->filesz)
			continue;
		s.p = g->map + sg->off + (vaddr - sg->vaddr);
		s.len = sg->filesz - (vaddr - sg->vaddr);
		break;
	}
	return s;
}

static const struct seg *vseg(const struct gobin *g, uint64_t vaddr)
{
	int i;

	for (i = 0; i < g->nsegs; i++)
		if (vaddr >= g->segs[i].vaddr &&
		    vaddr - g->segs[i].vaddr < g->segs[i].memsz)
			return &g->segs[i];
	return NULL;
}

static int reloc_cmp(const void *a, const void *b)
{
	const struct reloc *x = a, *y = b;

	return x->where < y->where ? -1 : x->where > y->where;
}

/*
 * A pointer stored at vaddr.  In a PIE the file may hold 0 there and the
 * value only in a R_X86_64_RELATIVE relocation's addend.
 */
static uint64_t read_ptr(const struct gobin *g, uint64_t vaddr)
{
	const uint8_t *p = vptr(g, vaddr, 8);
	size_t lo = 0, hi = g->nrelocs;
	uint64_t v = p ? rd64(p) : 0;

	if (v || !g->nrelocs)
		return v;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->relocs[mid].where == vaddr)
			return g->relocs[mid].addend;
		if (g->relocs[mid].where < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* ---- ELF ---------------------------------------------------------------- */

static void load_relocs(struct gobin *g, Elf *elf)
{
	uint64_t rela = 0, relasz = 0;
	const uint8_t *p;
	size_t i, n, cap = 0, nph;
	GElf_Phdr ph;

	/* PT_DYNAMIC works with the section headers stripped too */
	if (elf_getphdrnum(elf, &nph))
		return;
	for (i = 0; i < nph; i++) {
		uint64_t off;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_DYNAMIC ||
		    ph.p_offset > g->size)
			continue;
		for (off = 0; off + 16 <= ph.p_filesz; off += 16) {
			if (off + 16 > g->size - ph.p_offset)
				break;
			p = g->map + ph.p_offset + off;
			if (rd64(p) == DT_NULL)
				break;
			if (rd64(p) == DT_RELA)
				rela = rd64(p + 8);
			else if (rd64(p) == DT_RELASZ)
				relasz = rd64(p + 8);
		}
	}
	if (!rela || !relasz)
		return;
	p = vptr(g, rela, relasz);
	if (!p)
		return;
	n = relasz / 24;
	for (i = 0; i < n; i++) {
		const uint8_t *r = p + i * 24;

		if ((rd64(r + 8) & 0xffffffff) != R_X86_64_RELATIVE)
			continue;
		if (g->nrelocs == cap) {
			struct reloc *nr;

			cap = cap ? cap * 2 : 1024;
			nr = realloc(g->relocs, cap * sizeof(*nr));
			if (!nr)
				return;
			g->relocs = nr;
		}
		g->relocs[g->nrelocs].where = rd64(r);
		g->relocs[g->nrelocs].addend = rd64(r + 16);
		g->nrelocs++;
	}
	if (g->nrelocs)
		qsort(g->relocs, g->nrelocs, sizeof(*g->relocs), reloc_cmp);
}

static struct span section_span(const struct gobin *g, Elf *elf,
				const char *name, uint64_t *vaddr)
{
	struct span s = { NULL, 0 };
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return s;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *n;

		if (!gelf_getshdr(scn, &sh))
			continue;
		n = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!n || strcmp(n, name) || sh.sh_type == SHT_NOBITS)
			continue;
		if (sh.sh_offset > g->size || sh.sh_size > g->size - sh.sh_offset)
			return s;
		s.p = g->map + sh.sh_offset;
		s.len = sh.sh_size;
		if (vaddr)
			*vaddr = sh.sh_addr;
		break;
	}
	return s;
}

struct symwant {
	const char *name;
	uint64_t *dst;
};

/* Read the few .symtab entries we want in one pass. */
static void load_symtab(struct gobin *g, Elf *elf, uint64_t *gofunc,
			uint64_t *pclntab, uint64_t *mprof)
{
	struct symwant want[] = {
		{ "runtime.mbuckets", &g->rt.mbuckets },
		{ "runtime.mProfCycle", &g->rt.mprof_cycle },
		{ "runtime.MemProfileRate", &g->rt.mem_profile_rate },
		{ "runtime.disableMemoryProfiling", &g->rt.disable_memprof },
		{ "runtime.gcController", &g->rt.gc_controller },
		{ "runtime.memstats", &g->rt.memstats },
		{ "go:func.*", gofunc },
		{ "go.func.*", gofunc },
		{ "runtime.pclntab", pclntab },
		{ "runtime.mProf", mprof },
	};
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *d;
		size_t i, n;
		unsigned w;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB ||
		    !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		g->has_symtab = true;
		n = sh.sh_size / sh.sh_entsize;
		for (i = 0; i < n; i++) {
			GElf_Sym sym;
			const char *name;

			if (!gelf_getsym(d, i, &sym) || !sym.st_value)
				continue;
			name = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (!name || (strncmp(name, "go", 2) &&
			    strncmp(name, "runtime.", 8)))
				continue;
			for (w = 0; w < sizeof(want) / sizeof(want[0]); w++)
				if (!strcmp(name, want[w].name))
					*want[w].dst = sym.st_value;
		}
	}
}

/* ---- buildinfo ------------------------------------------------------------ */

static const char bi_magic[14] = "\xff Go buildinf:";

static uint64_t uvarint(const uint8_t *p, size_t len, size_t *used)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len && i < 10; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*used = i + 1;
			return v;
		}
	}
	*used = 0;
	return 0;
}

static void set_version(struct gobin *g, const uint8_t *s, uint64_t len)
{
	const char *p;
	int major, minor;

	if (!s || !len || len >= sizeof(g->version))
		return;
	memcpy(g->version, s, len);
	g->version[len] = 0;
	if (memchr(g->version, 0, len)) {
		g->version[0] = 0;
		return;
	}
	/* "go1.23.5", "go1.24rc1", "devel go1.25-abcdef ..." */
	p = strstr(g->version, "go1.");
	if (p && sscanf(p, "go%d.%d", &major, &minor) == 2 && major == 1 &&
	    minor >= 0 && minor < 1000)
		g->vnum = major * 100 + minor;
}

static void parse_buildinfo(struct gobin *g, const uint8_t *p, size_t len,
			    uint64_t vaddr)
{
	uint64_t hdr, str, slen;
	size_t used;

	if (len < 32 || memcmp(p, bi_magic, 14) || p[14] != 8 || (p[15] & 1))
		return;
	if (p[15] & 2) {
		/* 1.18+: varint length, then the bytes, right at 32 */
		slen = uvarint(p + 32, len - 32, &used);
		if (used && slen <= len - 32 - used)
			set_version(g, p + 32 + used, slen);
		return;
	}
	/* older: a pointer to a Go string header {ptr, len} */
	hdr = read_ptr(g, vaddr + 16);
	str = read_ptr(g, hdr);
	slen = read_ptr(g, hdr + 8);
	if (slen && slen < sizeof(g->version))
		set_version(g, vptr(g, str, slen), slen);
}

static void find_buildinfo(struct gobin *g, Elf *elf)
{
	uint64_t vaddr = 0;
	struct span s = section_span(g, elf, ".go.buildinfo", &vaddr);
	int i;

	if (s.p) {
		parse_buildinfo(g, s.p, s.len, vaddr);
		return;
	}
	if (!g->no_shdrs)
		return;
	/* no section headers: the blob is 16-aligned in a loaded segment */
	for (i = 0; i < g->nsegs && !g->version[0]; i++) {
		const struct seg *sg = &g->segs[i];
		uint64_t off;

		for (off = 0; off + 32 <= sg->filesz; off += 16) {
			const uint8_t *p = g->map + sg->off + off;

			if (p[0] != 0xff || memcmp(p, bi_magic, 14))
				continue;
			parse_buildinfo(g, p, sg->filesz - off, sg->vaddr + off);
			break;
		}
	}
}

/* ---- pclntab header ------------------------------------------------------- */

static struct span sub(const struct span *s, uint64_t off)
{
	struct span r = { NULL, 0 };

	if (off < s->len) {
		r.p = s->p + off;
		r.len = s->len - off;
	}
	return r;
}

static uint64_t functab_entry_size(const struct gobin *g)
{
	return g->layout >= PCLN_118 ? 8 : 16;
}

static bool parse_pcln_header(struct gobin *g, struct span s, uint64_t vaddr)
{
	const uint8_t *p = s.p;
	uint32_t magic;
	uint64_t need;

	if (s.len < 64)
		return false;
	magic = rd32(p);
	if (p[4] || p[5] || (p[6] != 1 && p[6] != 2 && p[6] != 4) || p[7] != 8)
		return false;
	switch (magic) {
	case 0xfffffffb: g->layout = PCLN_12; break;
	case 0xfffffffa: g->layout = PCLN_116; break;
	case 0xfffffff0: g->layout = PCLN_118; break;
	case 0xfffffff1: g->layout = PCLN_120; break;
	default: return false;
	}
	g->quantum = p[6];
	g->pcln = s;
	g->pcln_vaddr = vaddr;
	g->nfunc = rd64(p + 8);
	if (!g->nfunc || g->nfunc > MAX_FUNCS)
		return false;
	if (g->layout == PCLN_12) {
		/* functab right after the header, offsets from the table */
		g->functab = sub(&s, 16);
		g->funcnames = s;
		g->pctab = s;
		need = (g->nfunc * 2 + 1) * 8 + 4;
		if (!span_ok(&g->functab, 0, need))
			return false;
		g->filetab = sub(&s, rd32(g->functab.p + (g->nfunc * 2 + 1) * 8));
		g->cutab.p = NULL;
		g->cutab.len = 0;
	} else {
		/* nfiles, [textStart,] then five offsets */
		int o = g->layout >= PCLN_118 ? 32 : 24;

		if (g->layout >= PCLN_118)
			g->text_start = read_ptr(g, vaddr + 24);
		g->funcnames = sub(&s, rd64(p + o));
		g->cutab = sub(&s, rd64(p + o + 8));
		g->filetab = sub(&s, rd64(p + o + 16));
		g->pctab = sub(&s, rd64(p + o + 24));
		g->functab = sub(&s, rd64(p + o + 32));
		need = (g->nfunc + 1) * functab_entry_size(g);
		if (!g->funcnames.p || !g->pctab.p || !g->filetab.p ||
		    !span_ok(&g->functab, 0, need))
			return false;
	}
	return true;
}

/* Parse the header of the table at s; false if it is not one. */
static bool parse_pcln(struct gobin *g, struct span s, uint64_t vaddr)
{
	if (parse_pcln_header(g, s, vaddr))
		return true;
	g->layout = PCLN_NONE;
	return false;
}

/* A pclntab located by its magic, for files without section headers. */
static bool scan_pcln(struct gobin *g)
{
	static const uint32_t magics[] = {
		0xfffffff1, 0xfffffff0, 0xfffffffa, 0xfffffffb,
	};
	int i;

	for (i = 0; i < g->nsegs; i++) {
		const struct seg *sg = &g->segs[i];
		uint64_t off;

		for (off = 0; off + 64 <= sg->filesz; off += 8) {
			const uint8_t *p = g->map + sg->off + off;
			struct span s = { p, sg->filesz - off };
			uint32_t m = rd32(p);
			unsigned k;

			if (p[0] < 0xf0 || p[1] != 0xff || p[4] || p[5])
				continue;
			for (k = 0; k < 4 && m != magics[k]; k++)
				;
			if (k == 4 || !parse_pcln(g, s, sg->vaddr + off))
				continue;
			return true;
		}
	}
	g->layout = PCLN_NONE;
	return false;
}

/* PIE: textStart is a relocated pointer, read again with the relocations. */
static void reparse_pcln(struct gobin *g)
{
	if (g->layout >= PCLN_118)
		g->text_start = read_ptr(g, g->pcln_vaddr + 24);
}

/* ---- functions ---------------------------------------------------------------- */

/* Entry of function table slot i (i == nfunc: end of the last one). */
static uint64_t ft_entry(const struct gobin *g, uint64_t i)
{
	const uint8_t *p = g->functab.p + i * functab_entry_size(g);

	if (g->layout >= PCLN_118)
		return g->text_start + rd32(p);
	return read_ptr(g, g->pcln_vaddr + (g->functab.p - g->pcln.p) + i * 16);
}

/* The _func record of slot i, NULL if out of the table. */
static const uint8_t *ft_func(const struct gobin *g, uint64_t i, size_t *len)
{
	const uint8_t *p = g->functab.p + i * functab_entry_size(g);
	uint64_t off;
	const struct span *base;

	if (g->layout >= PCLN_118) {
		off = rd32(p + 4);
		base = &g->functab;
	} else {
		off = rd64(p + 8);
		base = g->layout == PCLN_12 ? &g->pcln : &g->functab;
	}
	if (!span_ok(base, off, 48))
		return NULL;
	*len = base->len - off;
	return base->p + off;
}

/* Field offsets of _func that moved between layouts. */
struct funcfmt {
	int nameoff, pcfile, pcln, npcdata, cuoff, nfuncdata, pcdata;
};

static struct funcfmt func_fmt(const struct gobin *g)
{
	switch (g->layout) {
	case PCLN_120:
		return (struct funcfmt){ 4, 20, 24, 28, 32, 43, 44 };
	case PCLN_118:
		return (struct funcfmt){ 4, 20, 24, 28, 32, 39, 40 };
	case PCLN_116:
		return (struct funcfmt){ 8, 24, 28, 32, 36, 43, 44 };
	default:	/* 1.2 - 1.15: no CU table; nfuncdata unused */
		return (struct funcfmt){ 8, 24, 28, 32, -1, -1, 40 };
	}
}

/* Slot of the function holding pc, -1 if none. */
static int64_t find_slot(const struct gobin *g, uint64_t pc)
{
	uint64_t lo = 0, hi = g->nfunc;

	if (!g->layout || pc < ft_entry(g, 0) || pc >= ft_entry(g, g->nfunc))
		return -1;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (ft_entry(g, mid) <= pc)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static const char *func_name(const struct gobin *g, int64_t nameoff)
{
	const char *s;

	if (nameoff < 0)
		return "?";
	s = span_str(&g->funcnames, nameoff);
	return s ? s : "?";
}

/*
 * Walk a pc-value table (zig-zag varint value deltas, uvarint pc deltas
 * scaled by the quantum) from entry to the value at targetpc.  Returns
 * false when the table is absent or broken.
 */
static bool pcvalue(const struct gobin *g, uint32_t off, uint64_t entry,
		    uint64_t targetpc, int32_t *out)
{
	const uint8_t *p, *end;
	uint64_t pc = entry;
	int32_t val = -1;
	bool first = true;
	size_t used;

	if (!off || off >= g->pctab.len)
		return false;
	p = g->pctab.p + off;
	end = g->pctab.p + g->pctab.len;
	for (;;) {
		uint64_t uv, pd;

		uv = uvarint(p, end - p, &used);
		if (!used || (!uv && !first))
			return false;
		p += used;
		val += (int32_t)((uint32_t)(-(uv & 1)) ^ (uint32_t)(uv >> 1));
		pd = uvarint(p, end - p, &used);
		if (!used)
			return false;
		p += used;
		pc += pd * g->quantum;
		first = false;
		if (targetpc < pc) {
			*out = val;
			return true;
		}
	}
}

static const char *file_name(const struct gobin *g, const uint8_t *f,
			     const struct funcfmt *ff, int32_t fileno)
{
	const char *s = NULL;
	uint64_t idx;

	if (fileno < 0)
		return "";
	if (g->layout == PCLN_12) {
		if (span_ok(&g->filetab, (uint64_t)fileno * 4, 4))
			s = span_str(&g->pcln, rd32(g->filetab.p + fileno * 4));
		return s ? s : "";
	}
	idx = ((uint64_t)rd32(f + ff->cuoff) + fileno) * 4;
	if (span_ok(&g->cutab, idx, 4))
		s = span_str(&g->filetab, rd32(g->cutab.p + idx));
	return s ? s : "";
}

static uint32_t pcdata_off(const uint8_t *f, size_t flen,
			   const struct funcfmt *ff, uint32_t table)
{
	uint32_t npc = rd32(f + ff->npcdata);

	if (table >= npc || ff->pcdata + (table + 1) * 4ull > flen)
		return 0;
	return rd32(f + ff->pcdata + table * 4);
}

/*
 * The inline tree of a function, as file bytes (NULL when it has none or
 * the layout does not say where: before 1.16, or 1.18+ without gofunc).
 */
static struct span inline_tree(const struct gobin *g, const uint8_t *f,
			       size_t flen, const struct funcfmt *ff)
{
	struct span s = { NULL, 0 };
	uint32_t npc, nfd;
	uint64_t off, v;

	if (g->layout < PCLN_116)
		return s;
	npc = rd32(f + ff->npcdata);
	nfd = f[ff->nfuncdata];
	if (nfd <= FUNCDATA_INLTREE || npc > 1024)
		return s;
	off = ff->pcdata + npc * 4ull;
	if (g->layout >= PCLN_118) {
		if (!g->gofunc || off + (FUNCDATA_INLTREE + 1) * 4 > flen)
			return s;
		v = rd32(f + off + FUNCDATA_INLTREE * 4);
		if (v == 0xffffffff)
			return s;
		v += g->gofunc;
	} else {
		/* pointers, 8-aligned by address */
		uint64_t fv = g->pcln_vaddr + (f - g->pcln.p) + off;

		if (fv & 4)
			off += 4;
		if (off + (FUNCDATA_INLTREE + 1) * 8 > flen)
			return s;
		v = read_ptr(g, g->pcln_vaddr + (f - g->pcln.p) + off +
				FUNCDATA_INLTREE * 8);
		if (!v)
			return s;
	}
	return vspan(g, v);
}

int gobin__frames(const struct gobin *g, uint64_t pc, bool ret,
		  struct gobin_frame *out, int max)
{
	struct funcfmt ff = func_fmt(g);
	const uint8_t *f;
	struct span inl = { NULL, 0 };
	uint64_t entry;
	int64_t slot;
	int32_t ix = -1, v;
	size_t flen;
	int n = 0, depth;

	if (max <= 0 || !g->layout)
		return 0;
	if (ret && pc)
		pc--;
	slot = find_slot(g, pc);
	if (slot < 0)
		return 0;
	f = ft_func(g, slot, &flen);
	if (!f)
		return 0;
	entry = ft_entry(g, slot);
	inl = inline_tree(g, f, flen, &ff);
	if (inl.p && !pcvalue(g, pcdata_off(f, flen, &ff, PCDATA_INLTREE),
			      entry, pc, &ix))
		ix = -1;
	for (depth = 0; ix >= 0 && depth < MAX_INLINE && n < max - 1; depth++) {
		/* 1.20+: funcID, nameOff, parentPc, startLine;
		 * 1.16-1.19: parent, funcID, file, line, func, parentPc */
		uint64_t esz = g->layout >= PCLN_120 ? 16 : 20;
		const uint8_t *e;
		int32_t nameoff, parent_pc;

		if (!span_ok(&inl, (uint64_t)ix * esz, esz))
			break;
		e = inl.p + (uint64_t)ix * esz;
		nameoff = (int32_t)rd32(e + (esz == 16 ? 4 : 12));
		parent_pc = (int32_t)rd32(e + (esz == 16 ? 8 : 16));
		out[n].func = func_name(g, nameoff);
		out[n].file = pcvalue(g, rd32(f + ff.pcfile), entry, pc, &v) ?
			      file_name(g, f, &ff, v) : "";
		out[n].line = pcvalue(g, rd32(f + ff.pcln), entry, pc, &v) ?
			      v : 0;
		out[n].entry = entry;
		out[n].inlined = true;
		out[n].pc = pc;
		n++;
		if (parent_pc < 0)
			break;
		/* an instruction of the caller whose position is the call */
		pc = entry + parent_pc;
		if (!pcvalue(g, pcdata_off(f, flen, &ff, PCDATA_INLTREE),
			     entry, pc, &ix))
			ix = -1;
	}
	out[n].func = func_name(g, (int32_t)rd32(f + ff.nameoff));
	out[n].file = pcvalue(g, rd32(f + ff.pcfile), entry, pc, &v) ?
		      file_name(g, f, &ff, v) : "";
	out[n].line = pcvalue(g, rd32(f + ff.pcln), entry, pc, &v) ? v : 0;
	out[n].entry = entry;
	out[n].inlined = false;
	out[n].pc = pc;
	return n + 1;
}

uint64_t gobin__func(const struct gobin *g, const char *name, uint64_t *size)
{
	struct funcfmt ff = func_fmt(g);
	uint64_t i;

	for (i = 0; g->layout && i < g->nfunc; i++) {
		const uint8_t *f;
		size_t flen;

		f = ft_func(g, i, &flen);
		if (!f || strcmp(func_name(g, (int32_t)rd32(f + ff.nameoff)), name))
			continue;
		if (size)
			*size = ft_entry(g, i + 1) - ft_entry(g, i);
		return ft_entry(g, i);
	}
	if (size)
		*size = 0;
	return 0;
}

int gobin__func_at(const struct gobin *g, int i, const char **name,
		   uint64_t *entry, uint64_t *end)
{
	struct funcfmt ff = func_fmt(g);
	const uint8_t *f;
	size_t flen;

	if (!g->layout || i < 0 || (uint64_t)i >= g->nfunc)
		return -ERANGE;
	f = ft_func(g, i, &flen);
	if (!f)
		return -ENOENT;
	*name = func_name(g, (int32_t)rd32(f + ff.nameoff));
	*entry = ft_entry(g, i);
	*end = ft_entry(g, i + 1);
	return 0;
}

/* ---- moduledata: where 1.18+ funcdata offsets start ------------------------- */

/*
 * runtime.firstmoduledata begins with a pointer to the pclntab and the
 * slice of function names; its gofunc field is at a fixed offset per
 * layout (covctrs/ecovctrs came in 1.20).  Used only without .symtab.
 */
static uint64_t moduledata_gofunc(const struct gobin *g)
{
	uint64_t names = g->pcln_vaddr + (g->funcnames.p - g->pcln.p);
	uint64_t off_gofunc = g->layout >= PCLN_120 ? 320 : 304;
	int i;

	for (i = 0; i < g->nsegs; i++) {
		const struct seg *sg = &g->segs[i];
		uint64_t off;

		if (!(sg->flags & PF_W))
			continue;
		for (off = 0; off + off_gofunc + 8 <= sg->filesz; off += 8) {
			uint64_t md = sg->vaddr + off, gf;

			if (read_ptr(g, md) != g->pcln_vaddr ||
			    read_ptr(g, md + 8) != names)
				continue;
			/* text follows minpc/maxpc: a third witness */
			if (g->text_start && read_ptr(g, md + 176) != g->text_start)
				continue;
			gf = read_ptr(g, md + off_gofunc);
			if (gf && vptr(g, gf, 1))
				return gf;
		}
	}
	return 0;
}

/* ---- runtime variables found in the code -------------------------------- */

enum want_insn { LOAD64, LOAD32, LEA, LOAD8 };

/*
 * Target of the first RIP-relative instruction of kind w in function name;
 * for LOAD8 (a byte compare or load) only one followed within a few
 * instructions by a store to after_store.  0 if not found.
 */
static uint64_t code_ref(const struct gobin *g, const char *name,
			 enum want_insn w, uint64_t after_store)
{
	uint64_t entry, size, found = 0;
	const uint8_t *code;
	cs_insn *insn = NULL;
	size_t n = 0, i, j;
	csh h;

	entry = gobin__func(g, name, &size);
	if (!entry || !size)
		return 0;
	if (size > MAX_DISASM)
		size = MAX_DISASM;
	code = vptr(g, entry, size);
	if (!code || cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return 0;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	cs_option(h, CS_OPT_SKIPDATA, CS_OPT_ON);
	n = cs_disasm(h, code, size, entry, 0, &insn);
	for (i = 0; i < n && !found; i++) {
		const cs_x86 *x;
		const cs_x86_op *m;
		uint64_t t;

		if (!insn[i].detail)
			continue;
		x = &insn[i].detail->x86;
		if (x->op_count != 2)
			continue;
		/* the memory operand: the source, or a compare's first */
		m = &x->operands[x->operands[1].type == X86_OP_MEM ? 1 : 0];
		if (m->type != X86_OP_MEM || m->mem.base != X86_REG_RIP ||
		    m->mem.index != X86_REG_INVALID)
			continue;
		t = insn[i].address + insn[i].size + m->mem.disp;
		switch (w) {
		case LOAD64:
		case LOAD32:
			if (insn[i].id == X86_INS_MOV && m == &x->operands[1] &&
			    x->operands[0].type == X86_OP_REG &&
			    m->size == (w == LOAD64 ? 8 : 4))
				found = t;
			break;
		case LEA:
			if (insn[i].id == X86_INS_LEA && m == &x->operands[1])
				found = t;
			break;
		case LOAD8:
			if (m->size != 1)
				break;
			for (j = i + 1; j < n && j < i + 8; j++) {
				const cs_x86 *y = insn[j].detail ?
					&insn[j].detail->x86 : NULL;

				if (y && y->op_count == 2 &&
				    y->operands[0].type == X86_OP_MEM &&
				    y->operands[0].mem.base == X86_REG_RIP &&
				    insn[j].address + insn[j].size +
				    y->operands[0].mem.disp == after_store)
					found = t;
			}
			break;
		}
	}
	if (n)
		cs_free(insn, n);
	cs_close(&h);
	/* a variable: in a writable segment (data or bss) */
	if (found) {
		const struct seg *s = vseg(g, found);

		if (!s || !(s->flags & PF_W))
			found = 0;
	}
	return found;
}

int gobin__runtime(const struct gobin *g, struct gobin_runtime *out)
{
	if (g->rt.mbuckets) {
		*out = g->rt;
		out->from_symtab = true;
		return 0;
	}
	return gobin__runtime_code(g, out);
}

int gobin__runtime_code(const struct gobin *g, struct gobin_runtime *out)
{
	memset(out, 0, sizeof(*out));
	out->mbuckets = code_ref(g, "runtime.mProf_FlushLocked", LOAD64, 0);
	out->mprof_cycle = code_ref(g, "runtime.mProf_Free", LOAD32, 0);
	out->mem_profile_rate = code_ref(g, "runtime.allocmcache", LOAD64, 0);
	out->gc_controller = code_ref(g, "runtime.traceLocker.HeapGoal", LEA, 0);
	if (!out->gc_controller)
		out->gc_controller = code_ref(g, "runtime.traceHeapGoal", LEA, 0);
	/*
	 * The linker's flag is read once at start-up, right before zeroing
	 * MemProfileRate: schedinit since 1.20 (defaultMemProfileRate in
	 * the package initializer before).
	 */
	if (out->mem_profile_rate) {
		out->disable_memprof = code_ref(g, "runtime.schedinit", LOAD8,
						out->mem_profile_rate);
		if (!out->disable_memprof)
			out->disable_memprof = code_ref(g, "runtime.init", LOAD8,
							out->mem_profile_rate);
	}
	return out->mbuckets ? 0 : -ENOENT;
}

/* ---- open / accessors ----------------------------------------------------- */

static int load_segments(struct gobin *g, Elf *elf)
{
	size_t nph, i;
	GElf_Phdr ph;

	if (elf_getphdrnum(elf, &nph))
		return -ENOEXEC;
	for (i = 0; i < nph && g->nsegs < MAX_SEGS; i++) {
		struct seg *s;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_offset > g->size)
			continue;
		s = &g->segs[g->nsegs++];
		s->vaddr = ph.p_vaddr;
		s->memsz = ph.p_memsz;
		s->off = ph.p_offset;
		/* a truncated file keeps what it still has */
		s->filesz = ph.p_filesz < g->size - ph.p_offset ?
			    ph.p_filesz : g->size - ph.p_offset;
		if (s->filesz > s->memsz)
			s->filesz = s->memsz;
		s->flags = ph.p_flags;
	}
	return g->nsegs ? 0 : -ENOEXEC;
}

static int find_pcln(struct gobin *g, Elf *elf, uint64_t sym_pclntab)
{
	static const char *const names[] = {
		".gopclntab", ".data.rel.ro.gopclntab",
	};
	uint64_t vaddr = 0;
	unsigned i;

	for (i = 0; i < 2; i++) {
		struct span s = section_span(g, elf, names[i], &vaddr);

		if (s.p && parse_pcln(g, s, vaddr))
			return 0;
	}
	if (sym_pclntab && parse_pcln(g, vspan(g, sym_pclntab), sym_pclntab))
		return 0;
	return g->no_shdrs && scan_pcln(g) ? 0 : -ENOEXEC;
}

int gobin__open(const char *path, struct gobin **out)
{
	int fd, err;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = gobin__open_fd(fd, out);
	close(fd);
	return err;
}

int gobin__open_fd(int fd, struct gobin **out)
{
	uint64_t gofunc = 0, sym_pclntab = 0, mprof = 0;
	struct gobin *g;
	Elf *elf = NULL;
	GElf_Ehdr eh;
	struct stat st;
	int err;

	*out = NULL;
	elf_version(EV_CURRENT);
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < 64) {
		err = -ENOEXEC;
		goto out;
	}
	g->size = st.st_size;
	g->map = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (g->map == MAP_FAILED) {
		g->map = NULL;
		err = -errno;
		goto out;
	}
	elf = elf_memory((char *)g->map, g->size);
	err = -ENOEXEC;
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
		goto out;
	g->pie = eh.e_type == ET_DYN;
	/* the magic scans are for files whose section headers are gone */
	g->no_shdrs = !eh.e_shnum || eh.e_shoff >= g->size;
	err = load_segments(g, elf);
	if (err)
		goto out;
	/* most files the symbolizer opens are not Go: say so cheaply */
	if (!g->no_shdrs && !section_span(g, elf, ".go.buildinfo", NULL).p &&
	    !section_span(g, elf, ".gopclntab", NULL).p &&
	    !section_span(g, elf, ".data.rel.ro.gopclntab", NULL).p) {
		err = -ENOEXEC;
		goto out;
	}
	load_symtab(g, elf, &gofunc, &sym_pclntab, &mprof);
	find_buildinfo(g, elf);
	if (find_pcln(g, elf, sym_pclntab) && !g->version[0]) {
		err = -ENOEXEC;
		goto out;
	}
	/* only Go files get this far: now the costlier parts */
	if (g->pie) {
		load_relocs(g, elf);
		if (g->layout)
			reparse_pcln(g);
		if (!g->version[0])
			find_buildinfo(g, elf);
	}
	if (!g->rt.mprof_cycle)
		g->rt.mprof_cycle = mprof;	/* up to 1.18 */
	if (g->layout >= PCLN_118 && !g->text_start) {
		/* PIE without the relocation we expected: runtime.text */
		uint64_t v = 0;
		struct span s = section_span(g, elf, ".text", &v);

		g->text_start = s.p ? v : 0;
	}
	if (g->layout >= PCLN_118)
		g->gofunc = gofunc ? gofunc : moduledata_gofunc(g);
	err = 0;
out:
	if (elf)
		elf_end(elf);
	if (err) {
		gobin__free(g);
		return err;
	}
	*out = g;
	return 0;
}

void gobin__free(struct gobin *g)
{
	if (!g)
		return;
	if (g->map)
		munmap(g->map, g->size);
	free(g->relocs);
	free(g);
}

const char *gobin__version(const struct gobin *g)
{
	return g->version;
}

int gobin__version_num(const struct gobin *g)
{
	return g->vnum;
}

bool gobin__pie(const struct gobin *g)
{
	return g->pie;
}

int gobin__nr_funcs(const struct gobin *g)
{
	return g->layout ? (int)g->nfunc : 0;
}
