/* SPDX-License-Identifier: GPL-2.0 */
/* Look up function symbols of an ELF file and read their code. */
#ifndef MT_ELFSYM_H
#define MT_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

struct elfsym;

struct elfsym_func {
	uint64_t vaddr;		/* st_value */
	uint64_t file_off;	/* where the code is in the file */
	uint64_t size;		/* st_size, 0 if unknown */
};

int elfsym__open(const char *path, struct elfsym **out);
void elfsym__close(struct elfsym *e);
/* Find a defined function by exact name in .dynsym, then .symtab. */
int elfsym__find(struct elfsym *e, const char *name, struct elfsym_func *out);
/* The program interpreter (PT_INTERP) of an executable, "" if none. */
int elfsym__interp(struct elfsym *e, char *buf, size_t len);
/*
 * Call fn for each library e (the file at path) links against directly
 * (DT_NEEDED), found as the dynamic loader would: DT_RUNPATH (or
 * DT_RPATH), LD_LIBRARY_PATH, libdir (':'-separated, may be NULL), the
 * usual directories; $ORIGIN is path's directory.  Libraries not found
 * are skipped; fn returning < 0 stops the walk with that value.
 */
int elfsym__each_needed(struct elfsym *e, const char *path,
			const char *libdir,
			int (*fn)(const char *lib, void *ctx), void *ctx);
/* Copy up to len bytes of code at file offset off; returns bytes read. */
int elfsym__read(struct elfsym *e, uint64_t off, void *buf, size_t len);

#endif /* MT_ELFSYM_H */
