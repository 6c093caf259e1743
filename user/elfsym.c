// SPDX-License-Identifier: GPL-2.0
/*
 * Function symbols of an ELF file, for placing uprobes.
 *
 * A uprobe is placed by file offset, so a symbol's virtual address is
 * translated through the PT_LOAD segment that contains it: section
 * headers may be stripped, program headers never are.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfsym.h"

struct elfsym {
	int fd;
	Elf *elf;
};

int elfsym__open(const char *path, struct elfsym **out)
{
	struct elfsym *e;
	int err;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->fd < 0) {
		err = -errno;
		goto err_free;
	}
	e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
	if (!e->elf || elf_kind(e->elf) != ELF_K_ELF) {
		err = -ENOEXEC;
		goto err_close;
	}
	*out = e;
	return 0;

err_close:
	if (e->elf)
		elf_end(e->elf);
	close(e->fd);
err_free:
	free(e);
	return err;
}

void elfsym__close(struct elfsym *e)
{
	if (!e)
		return;
	elf_end(e->elf);
	close(e->fd);
	free(e);
}

static int vaddr_to_off(Elf *elf, uint64_t vaddr, uint64_t *off)
{
	size_t n, i;
	GElf_Phdr ph;

	if (elf_getphdrnum(elf, &n))
		return -ENOEXEC;
	for (i = 0; i < n; i++) {
		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		/* no sum that a hostile header could wrap */
		if (vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz) {
			*off = vaddr - ph.p_vaddr + ph.p_offset;
			return 0;
		}
	}
	return -ENOENT;
}

static int find_in(Elf *elf, Elf64_Word type, const char *name,
		   struct elfsym_func *out)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		size_t i, cnt;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type ||
		    !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		cnt = sh.sh_size / sh.sh_entsize;
		for (i = 0; i < cnt; i++) {
			GElf_Sym sym;
			const char *sn;
			int st;

			if (!gelf_getsym(data, i, &sym) || !sym.st_value ||
			    sym.st_shndx == SHN_UNDEF)
				continue;
			st = GELF_ST_TYPE(sym.st_info);
			if (st != STT_FUNC && st != STT_GNU_IFUNC)
				continue;
			sn = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (!sn || strcmp(sn, name))
				continue;
			/*
			 * An IFUNC symbol points at the resolver, not at the
			 * code that runs; probing it would count nothing.
			 */
			if (st == STT_GNU_IFUNC)
				return -ENOTSUP;
			out->vaddr = sym.st_value;
			out->size = sym.st_size;
			return vaddr_to_off(elf, sym.st_value, &out->file_off);
		}
	}
	return -ENOENT;
}

int elfsym__find(struct elfsym *e, const char *name, struct elfsym_func *out)
{
	int err = find_in(e->elf, SHT_DYNSYM, name, out);

	if (err == -ENOENT)
		err = find_in(e->elf, SHT_SYMTAB, name, out);
	return err;
}

int elfsym__read(struct elfsym *e, uint64_t off, void *buf, size_t len)
{
	ssize_t n = pread(e->fd, buf, len, off);

	return n < 0 ? -errno : (int)n;
}

int elfsym__interp(struct elfsym *e, char *buf, size_t len)
{
	size_t n, i;
	GElf_Phdr ph;
	ssize_t got;

	buf[0] = '\0';
	if (elf_getphdrnum(e->elf, &n))
		return -ENOEXEC;
	for (i = 0; i < n; i++) {
		if (!gelf_getphdr(e->elf, i, &ph) || ph.p_type != PT_INTERP)
			continue;
		if (!ph.p_filesz || ph.p_filesz >= len)
			return -ENAMETOOLONG;
		got = pread(e->fd, buf, ph.p_filesz, ph.p_offset);
		if (got != (ssize_t)ph.p_filesz)
			return -EIO;
		buf[ph.p_filesz - 1] = '\0';
		return 0;
	}
	return 0;
}

/* Look for name in a ':'-separated list of directories. */
static bool find_in_dirs(const char *dirs, const char *origin,
			 const char *name, char *out, size_t len)
{
	char *dup = strdup(dirs), *dir, *save = NULL;
	bool found = false;

	for (dir = dup ? strtok_r(dup, ":", &save) : NULL; dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		if (!strncmp(dir, "$ORIGIN", 7))
			snprintf(out, len, "%s%s/%s", origin, dir + 7, name);
		else
			snprintf(out, len, "%s/%s", dir, name);
		found = !access(out, R_OK);
	}
	free(dup);
	return found;
}

int elfsym__each_needed(struct elfsym *e, const char *path,
			const char *libdir,
			int (*fn)(const char *lib, void *ctx), void *ctx)
{
	static const char defaults[] = "/lib/x86_64-linux-gnu:"
		"/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64:/lib:/usr/lib:"
		"/usr/local/lib";
	const char *llp = getenv("LD_LIBRARY_PATH"), *runpath = NULL;
	char origin[PATH_MAX], lib[PATH_MAX];
	Elf_Scn *scn = NULL;
	Elf_Data *data = NULL;
	GElf_Shdr sh;
	GElf_Dyn d;
	size_t i, n = 0;
	int err;

	while ((scn = elf_nextscn(e->elf, scn)))
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_DYNAMIC &&
		    (data = elf_getdata(scn, NULL)))
			break;
	if (!scn || !data)
		return 0;	/* static, or section headers stripped */
	n = sh.sh_size / sizeof(GElf_Dyn);
	/* DT_RUNPATH wins over DT_RPATH when both are there */
	for (i = 0; i < n && gelf_getdyn(data, i, &d); i++)
		if (d.d_tag == DT_RUNPATH ||
		    (d.d_tag == DT_RPATH && !runpath))
			runpath = elf_strptr(e->elf, sh.sh_link, d.d_un.d_val);
	snprintf(origin, sizeof(origin), "%s", path);
	if (strrchr(origin, '/'))
		*strrchr(origin, '/') = '\0';
	for (i = 0; i < n && gelf_getdyn(data, i, &d); i++) {
		const char *name;

		if (d.d_tag != DT_NEEDED ||
		    !(name = elf_strptr(e->elf, sh.sh_link, d.d_un.d_val)))
			continue;
		if (strchr(name, '/'))
			snprintf(lib, sizeof(lib), "%s", name);
		else if (!(runpath && find_in_dirs(runpath, origin, name, lib,
						   sizeof(lib))) &&
			 !(llp && find_in_dirs(llp, origin, name, lib,
					       sizeof(lib))) &&
			 !(libdir && find_in_dirs(libdir, origin, name, lib,
						  sizeof(lib))) &&
			 !find_in_dirs(defaults, origin, name, lib, sizeof(lib)))
			continue;
		err = fn(lib, ctx);
		if (err < 0)
			return err;
	}
	return 0;
}
