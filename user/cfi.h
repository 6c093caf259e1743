/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Unwinding by CFI: compile each executable file's .eh_frame into the
 * rows the kernel's stack walk follows (struct mt_cfi_row), and keep
 * the per-process table of which file is mapped where.
 *
 * Compiling a big file (libc: ~40 ms, node: seconds) must not stall the
 * view, so files are compiled by a worker thread, once per file (device
 * and inode; a copy with the same build-id reuses the rows).  Until a
 * file's rows are in, the kernel walks its frames by frame pointer and
 * counts them as pending.
 */
#ifndef MT_CFI_H
#define MT_CFI_H

#include <stdbool.h>
#include <stdint.h>
#include <libelf.h>
#include <sys/types.h>

#include "memtrace.h"

struct cfi;
struct memtrace_bpf;
struct procfs_maps;

/* One file's compiled CFI. */
struct cfi_table {
	struct mt_cfi_row *rows;
	uint32_t nrows;
	uint32_t flags;		/* MT_CFI_FP */
	int64_t delta;		/* ELF address - file offset of the code */
	uint32_t fdes;		/* functions described */
	uint32_t frameless;	/* of which keep no frame pointer */
	char build_id[41];
};

/* Compile the CFI of the ELF file open at fd (not consumed). */
int cfi__compile(int fd, struct cfi_table *t);
void cfi__table_free(struct cfi_table *t);
/*
 * The function holding ELF address va by .eh_frame_hdr (for code no
 * symbol names): its start, and the next function's start in end (0
 * for the last).  Compiled FDEs know nothing of symbols: any function
 * the compiler emitted, static ones of a stripped binary included.
 */
int cfi__func_range(Elf *elf, uint64_t va, uint64_t *start, uint64_t *end);
/* The rule for ELF address va in t, NULL if none (for tests). */
const struct mt_cfi_row *cfi__lookup(const struct cfi_table *t, uint64_t va);

int cfi__new(struct memtrace_bpf *skel, bool verbose, struct cfi **out);
void cfi__free(struct cfi *c);
/*
 * Enter pid's file-backed code mappings in the kernel's table (merged
 * with what the kernel entered itself) and queue their files.  maps:
 * pid's mappings as read for this event, or NULL to read them now.
 */
int cfi__scan_pid(struct cfi *c, int pid, struct procfs_maps *maps);
/* A file a process mapped (path from our root, inode as mapped). */
int cfi__note_file(struct cfi *c, const char *path, uint64_t ino);
/* An executable before it runs, and the libraries it names. */
int cfi__scan_exe(struct cfi *c, const char *exe, const char *libdir);
/* Wait up to ms for the files queued so far; 0 when all are in. */
int cfi__wait(struct cfi *c, int ms);

struct cfi_stats {
	int files, failed, queued;
	uint64_t rows, max_rows;
	double compile_ms;	/* total worker time */
	bool rows_full;
};
void cfi__stats(struct cfi *c, struct cfi_stats *st);

#endif /* MT_CFI_H */
