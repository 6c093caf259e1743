/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Frameless callers of the allocator.
 *
 * The kernel walks user stacks by frame pointer.  A function built
 * without one that calls malloc (libstdc++'s operator new, glib's
 * g_malloc, an xmalloc in a distribution build) leaves rbp as its
 * caller's, so the walk goes from it straight to its caller's caller:
 * the function that asked for the memory is missing from the site.
 *
 * This module finds, in each ELF file a traced process maps, the calls
 * to allocator functions made from code without a frame pointer, reads
 * the frame layout at each return address from the file's CFI
 * (.eh_frame), and gives the kernel a table keyed by the code bytes
 * around the return address (the same in every process that maps the
 * file): there the walk reads the caller's return address, and frame
 * pointer when it was saved, from the stack.
 *
 * Files are scanned once (by device and inode); a process mapping only
 * known files costs nothing.
 */
#ifndef MT_UNWIND_H
#define MT_UNWIND_H

#include <stddef.h>
#include <stdint.h>

#include "memtrace.h"

struct unwind;
struct memtrace_bpf;
struct procfs_maps;

/* One frameless call site, as found in a file. */
struct unwind_site {
	uint64_t ret;			/* return address (ELF vaddr) */
	int ra_off, fp_off;		/* as in struct mt_fix */
	unsigned char sig[MT_FIX_SIG];	/* code at [ret - 16, ret + 16) */
};

/* The frameless allocator call sites of the ELF file at path. */
int unwind__file_sites(const char *path, struct unwind_site **out, int *n);

int unwind__new(struct memtrace_bpf *skel, struct unwind **out);
void unwind__free(struct unwind *u);
/* Learn the file at path (once per file); returns sites added. */
int unwind__scan_file(struct unwind *u, const char *path);
/* Learn every executable file pid maps (maps: as read, or NULL). */
int unwind__scan_pid(struct unwind *u, int pid, struct procfs_maps *maps);
/*
 * Learn an executable before it runs, with the libraries it names
 * (DT_NEEDED, found through its RUNPATH, LD_LIBRARY_PATH and the
 * directory of libc_dir's file): its first allocations come before
 * memtrace could see its mappings.
 */
int unwind__scan_exe(struct unwind *u, const char *exe, const char *libc);
/* Call sites known to the kernel, and files scanned. */
size_t unwind__nr_sites(const struct unwind *u);
int unwind__nr_files(const struct unwind *u);

#endif /* MT_UNWIND_H */
