// SPDX-License-Identifier: GPL-2.0
/*
 * Frameless callers of the allocator: find them in ELF files, read their
 * frame layout from the CFI, and hand the kernel a table (see unwind.h).
 *
 * Finding the calls does not need a disassembler: x86-64 compilers put
 * no data in code, so a byte scan for "call rel32" (e8) and "call
 * *disp32(%rip)" (ff 15) whose target is an allocator (its PLT entry,
 * its GOT slot, or the function itself inside the C library) finds them.
 * A false hit in the middle of another instruction is harmless: its
 * bytes are never a return address, so the kernel never looks them up.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "memtrace.h"
#include "memtrace.skel.h"
#include "elfsym.h"
#include "procfs.h"
#include "unwind.h"
#include "util.h"

#define DW_REG_RBP	6
#define DW_REG_RSP	7

struct file_id {
	dev_t dev;
	ino_t ino;
};

struct unwind {
	struct memtrace_bpf *skel;
	int fd;				/* the fixups map */
	struct file_id *files;
	int nfiles, capfiles;
	struct mt_fix_key *bad;		/* signatures seen with two layouts */
	int nbad, capbad;
	size_t nsites;
	bool warned_full;
};

static const char *const alloc_names[] = {
	"malloc", "calloc", "realloc", "reallocarray", "posix_memalign",
	"aligned_alloc", "memalign", "valloc", "pvalloc",
	"__libc_malloc", "__libc_calloc", "__libc_realloc",
	"__libc_memalign", "__libc_valloc", "__libc_pvalloc",
};

static bool is_alloc_name(const char *name)
{
	size_t i;

	for (i = 0; name && i < sizeof(alloc_names) / sizeof(alloc_names[0]); i++)
		if (!strcmp(name, alloc_names[i]))
			return true;
	return false;
}

struct addrs {
	uint64_t *v;
	int n, cap;
};

static int addrs_add(struct addrs *a, uint64_t x)
{
	if (array_grow(&a->v, &a->cap, a->n, sizeof(a->v[0])))
		return -ENOMEM;
	a->v[a->n++] = x;
	return 0;
}

static bool addrs_has(const struct addrs *a, uint64_t x)
{
	int i;

	for (i = 0; i < a->n; i++)
		if (a->v[i] == x)
			return true;
	return false;
}

static uint32_t le32(const unsigned char *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Allocator functions defined here, and GOT slots that hold them. */
static int find_targets(Elf *elf, struct addrs *fns, struct addrs *got)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	int err = 0;

	while (!err && (scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		size_t i, cnt;

		if (!gelf_getshdr(scn, &sh) || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		cnt = sh.sh_size / sh.sh_entsize;
		if (sh.sh_type == SHT_DYNSYM || sh.sh_type == SHT_SYMTAB) {
			for (i = 0; !err && i < cnt; i++) {
				GElf_Sym sym;

				if (!gelf_getsym(data, i, &sym) ||
				    sym.st_shndx == SHN_UNDEF || !sym.st_value ||
				    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
					continue;
				if (is_alloc_name(elf_strptr(elf, sh.sh_link,
							     sym.st_name)) &&
				    !addrs_has(fns, sym.st_value))
					err = addrs_add(fns, sym.st_value);
			}
		} else if (sh.sh_type == SHT_RELA) {
			Elf_Scn *symscn = elf_getscn(elf, sh.sh_link);
			Elf_Data *syms = symscn ? elf_getdata(symscn, NULL) : NULL;
			GElf_Shdr symsh;

			if (!syms || !gelf_getshdr(symscn, &symsh))
				continue;
			for (i = 0; !err && i < cnt; i++) {
				GElf_Rela r;
				GElf_Sym sym;
				int type;

				if (!gelf_getrela(data, i, &r))
					continue;
				type = GELF_R_TYPE(r.r_info);
				if (type != R_X86_64_JUMP_SLOT &&
				    type != R_X86_64_GLOB_DAT)
					continue;
				if (!gelf_getsym(syms, GELF_R_SYM(r.r_info), &sym))
					continue;
				if (is_alloc_name(elf_strptr(elf, symsh.sh_link,
							     sym.st_name)))
					err = addrs_add(got, r.r_offset);
			}
		}
	}
	return err;
}

/*
 * [off, off + size) lies inside an image of imgsz bytes.  Written so that
 * nothing can wrap: headers come from files any container maps, and the
 * root tracer reads them all.
 */
static bool in_image(uint64_t off, uint64_t size, size_t imgsz)
{
	return off <= imgsz && size <= imgsz - off;
}

/* PLT entries (jmp *GOT(%rip), maybe after endbr64) for those slots. */
static int find_plt(Elf *elf, const unsigned char *img, size_t imgsz,
		    const struct addrs *got, struct addrs *fns)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	GElf_Shdr sh;
	int err = 0;

	if (!got->n || elf_getshdrstrndx(elf, &shstrndx))
		return 0;
	while (!err && (scn = elf_nextscn(elf, scn))) {
		const unsigned char *b;
		const char *name;
		size_t i;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS)
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name || strncmp(name, ".plt", 4) ||
		    !in_image(sh.sh_offset, sh.sh_size, imgsz))
			continue;
		b = img + sh.sh_offset;
		for (i = 0; !err && i + 6 <= sh.sh_size; i++) {
			uint64_t at = sh.sh_addr + i, start = at;

			if (b[i] != 0xff || b[i + 1] != 0x25)
				continue;
			if (!addrs_has(got, at + 6 + (int32_t)le32(b + i + 2)))
				continue;
			if (i && b[i - 1] == 0xf2)	/* bnd prefix */
				start--, i--;
			if (start - sh.sh_addr >= 4 &&
			    !memcmp(b + (start - sh.sh_addr) - 4,
				    "\xf3\x0f\x1e\xfa", 4))
				start -= 4;		/* endbr64 */
			err = addrs_add(fns, start);
			i = start - sh.sh_addr + 6;
		}
	}
	return err;
}

/*
 * Frame layout at a return address from the CFI: only a frame whose CFA
 * is rsp-based lacks a frame pointer.  0: frameless, layout filled in.
 */
static int frame_at(Dwarf_CFI *cfi, uint64_t ret, int *ra_off, int *fp_off)
{
	Dwarf_Op mem[3], *ops;
	Dwarf_Frame *fr;
	size_t nops;
	int64_t cfa, k;
	int err = -ENOENT;

	/* the call instruction's row: the state the callee returns to */
	if (dwarf_cfi_addrframe(cfi, ret - 1, &fr))
		return -ENOENT;
	if (dwarf_frame_cfa(fr, &ops, &nops) || nops != 1)
		goto out;
	/* libdw spells "rsp + N" as bregx(7, N); breg7(N) is the same */
	if (ops[0].atom == DW_OP_bregx && ops[0].number == DW_REG_RSP)
		cfa = (int64_t)ops[0].number2;
	else if (ops[0].atom == DW_OP_breg0 + DW_REG_RSP)
		cfa = (int64_t)ops[0].number;
	else
		goto out;
	if (cfa < 8 || cfa - 8 > MT_FIX_MAX_OFF)
		goto out;
	*ra_off = cfa - 8;
	*fp_off = -1;	/* rbp unchanged (or unknown): use it as it is */
	if (!dwarf_frame_register(fr, DW_REG_RBP, mem, &ops, &nops) &&
	    nops >= 2 && ops[0].atom == DW_OP_call_frame_cfa) {
		/*
		 * saved at CFA + k: [cfa, plus_uconst k] (k wrapped when
		 * negative) or [cfa, consts k, plus]
		 */
		if (nops == 2 && ops[1].atom == DW_OP_plus_uconst)
			k = (int64_t)ops[1].number;
		else if (nops == 3 && ops[1].atom == DW_OP_consts &&
			 ops[2].atom == DW_OP_plus)
			k = (int64_t)ops[1].number;
		else
			goto out;
		if (cfa + k < 0 || cfa + k > MT_FIX_MAX_OFF)
			goto out;
		*fp_off = cfa + k;
	}
	err = 0;
out:
	free(fr);
	return err;
}

static int site_add(struct unwind_site **v, int *n, int *cap,
		    const unsigned char *seg, size_t segsz, size_t ret_idx,
		    uint64_t ret, Dwarf_CFI *cfi)
{
	struct unwind_site *s;
	int ra, fp;

	if (ret_idx < MT_FIX_SIG / 2 || ret_idx + MT_FIX_SIG / 2 > segsz)
		return 0;
	if (frame_at(cfi, ret, &ra, &fp))
		return 0;	/* has a frame pointer, or no CFI */
	if (array_grow(v, cap, *n, sizeof(**v)))
		return -ENOMEM;
	s = &(*v)[(*n)++];
	s->ret = ret;
	s->ra_off = ra;
	s->fp_off = fp;
	memcpy(s->sig, seg + ret_idx - MT_FIX_SIG / 2, MT_FIX_SIG);
	return 0;
}

int unwind__file_sites(const char *path, struct unwind_site **out, int *n)
{
	struct addrs fns = {}, got = {};
	struct unwind_site *v = NULL;
	size_t imgsz, nph, i, j;
	int nv = 0, cap = 0;
	const unsigned char *img;
	Dwarf_CFI *cfi = NULL;
	Elf *elf = NULL;
	GElf_Ehdr eh;
	int fd, err;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = -ENOEXEC;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    eh.e_machine != EM_X86_64 || elf_getphdrnum(elf, &nph))
		goto out;
	img = (const unsigned char *)elf_rawfile(elf, &imgsz);
	if (!img)
		goto out;
	err = find_targets(elf, &fns, &got);
	if (!err)
		err = find_plt(elf, img, imgsz, &got, &fns);
	if (err)
		goto out;
	cfi = dwarf_getcfi_elf(elf);
	if ((!fns.n && !got.n) || !cfi)
		goto out;	/* calls no allocator, or no CFI to read */
	for (i = 0; !err && i < nph; i++) {
		const unsigned char *b;
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD ||
		    !(ph.p_flags & PF_X) ||
		    !in_image(ph.p_offset, ph.p_filesz, imgsz))
			continue;
		b = img + ph.p_offset;
		for (j = 0; !err && j + 6 <= ph.p_filesz; j++) {
			uint64_t at = ph.p_vaddr + j;

			if (b[j] == 0xe8 &&
			    addrs_has(&fns, at + 5 + (int32_t)le32(b + j + 1)))
				err = site_add(&v, &nv, &cap, b, ph.p_filesz,
					       j + 5, at + 5, cfi);
			else if (b[j] == 0xff && b[j + 1] == 0x15 &&
				 addrs_has(&got, at + 6 +
					   (int32_t)le32(b + j + 2)))
				err = site_add(&v, &nv, &cap, b, ph.p_filesz,
					       j + 6, at + 6, cfi);
		}
	}
out:
	if (cfi)
		dwarf_cfi_end(cfi);
	if (elf)
		elf_end(elf);
	close(fd);
	free(fns.v);
	free(got.v);
	if (err) {
		free(v);
		return err;
	}
	*out = v;
	*n = nv;
	return 0;
}

int unwind__new(struct memtrace_bpf *skel, struct unwind **out)
{
	struct unwind *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	u->skel = skel;
	u->fd = bpf_map__fd(skel->maps.fixups);
	*out = u;
	return 0;
}

void unwind__free(struct unwind *u)
{
	if (!u)
		return;
	free(u->files);
	free(u->bad);
	free(u);
}

size_t unwind__nr_sites(const struct unwind *u)
{
	return u->nsites;
}

int unwind__nr_files(const struct unwind *u)
{
	return u->nfiles;
}

static bool is_bad(const struct unwind *u, const struct mt_fix_key *k)
{
	int i;

	for (i = 0; i < u->nbad; i++)
		if (!memcmp(&u->bad[i], k, sizeof(*k)))
			return true;
	return false;
}

/*
 * Two files with the same code around a call but different frames would
 * make the signature lie for one of them: drop it for both.
 */
static int insert(struct unwind *u, const struct unwind_site *s)
{
	struct mt_fix_key k;
	struct mt_fix f = { .ra_off = s->ra_off, .fp_off = s->fp_off }, old;

	memcpy(k.code, s->sig, sizeof(k.code));
	if (is_bad(u, &k))
		return 0;
	if (!bpf_map_update_elem(u->fd, &k, &f, BPF_NOEXIST))
		return 1;
	if (errno == E2BIG && !u->warned_full) {
		u->warned_full = true;
		fprintf(stderr, "memtrace: warning: table of frameless call "
			"sites full: callers of allocation wrappers in more "
			"files may be missing from stacks\n");
	}
	if (errno != EEXIST)
		return -errno;
	if (!bpf_map_lookup_elem(u->fd, &k, &old) &&
	    old.ra_off == f.ra_off && old.fp_off == f.fp_off)
		return 0;
	bpf_map_delete_elem(u->fd, &k);
	if (!array_grow(&u->bad, &u->capbad, u->nbad,
			sizeof(u->bad[0])))
		u->bad[u->nbad++] = k;
	return 0;
}

int unwind__scan_file(struct unwind *u, const char *path)
{
	struct unwind_site *v = NULL;
	struct stat st;
	int err, added = 0, f, n = 0, i;

	if (stat(path, &st))
		return -errno;
	for (f = 0; f < u->nfiles; f++)
		if (u->files[f].dev == st.st_dev && u->files[f].ino == st.st_ino)
			return 0;
	if (array_grow(&u->files, &u->capfiles, u->nfiles,
		       sizeof(u->files[0])))
		return -ENOMEM;
	u->files[u->nfiles].dev = st.st_dev;
	u->files[u->nfiles].ino = st.st_ino;
	u->nfiles++;
	err = unwind__file_sites(path, &v, &n);
	if (err)
		return err == -ENOEXEC ? 0 : err;
	for (i = 0; i < n; i++) {
		err = insert(u, &v[i]);
		if (err < 0)
			break;
		added += err;
	}
	free(v);
	if (added) {
		u->nsites += added;
		/* threads re-check the call sites they cached as plain */
		__atomic_add_fetch(&u->skel->bss->fix_epoch, 1,
				   __ATOMIC_RELAXED);
	}
	return err < 0 ? err : added;
}

int unwind__scan_pid(struct unwind *u, int pid, struct procfs_maps *snap)
{
	struct procfs_maps *maps = snap;
	char file[128];
	int i, err;

	if (!maps) {
		err = procfs__read_maps(pid, &maps);
		if (err)
			return err;
	}
	for (i = 0; i < maps->n; i++)
		/* the file as mapped: other mount namespaces, deleted files */
		if (procfs__map_is_code_file(&maps->m[i]) &&
		    !procfs__map_file(file, sizeof(file), pid, &maps->m[i]))
			unwind__scan_file(u, file);
	if (maps != snap)
		procfs__maps_put(maps);
	return 0;
}

struct tree_ctx {
	struct unwind *u;
	const char *libdir;
	int depth;
};

static int scan_tree(struct unwind *u, const char *path, const char *libdir,
		     int depth);

static int scan_needed(const char *lib, void *vctx)
{
	struct tree_ctx *c = vctx;

	return scan_tree(c->u, lib, c->libdir, c->depth + 1);
}

static int scan_tree(struct unwind *u, const char *path, const char *libdir,
		     int depth)
{
	struct tree_ctx c = { .u = u, .libdir = libdir, .depth = depth };
	struct elfsym *es;
	struct stat st;
	bool seen = false;
	int f;

	/* a file already scanned has had its libraries looked at too */
	if (!stat(path, &st))
		for (f = 0; f < u->nfiles && !seen; f++)
			seen = u->files[f].dev == st.st_dev &&
			       u->files[f].ino == st.st_ino;
	if (seen || depth > 8)
		return 0;
	unwind__scan_file(u, path);
	if (!elfsym__open(path, &es)) {
		elfsym__each_needed(es, path, libdir, scan_needed, &c);
		elfsym__close(es);
	}
	return 0;
}

int unwind__scan_exe(struct unwind *u, const char *exe, const char *libc)
{
	char dir[PATH_MAX];
	const char *slash = libc ? strrchr(libc, '/') : NULL;

	/* a musl program's libraries sit next to its loader */
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - libc) : 0,
		 slash ? libc : "");
	return scan_tree(u, exe, dir[0] ? dir : NULL, 0);
}
