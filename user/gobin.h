/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Go executables, read from the file alone (no process, no DWARF):
 * detection and version (.go.buildinfo), the function table (.gopclntab,
 * every layout from Go 1.2 to 1.26, inline tree included) and the
 * addresses of the runtime variables memtrace reads (.symtab when present,
 * else found in the code as ../shared/GO-FACTS.md describes).
 *
 * Every address here is a link-time virtual address: add the load bias
 * of the process (PIE) to read memory, subtract it before asking for
 * frames.  A gobin is immutable once opened; cache one per file.
 */
#ifndef MT_GOBIN_H
#define MT_GOBIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gobin;

/* One frame at a pc; an inlined call gives several, innermost first. */
struct gobin_frame {
	const char *func;	/* "bytes.(*Buffer).Grow"; owned by the gobin */
	const char *file;	/* source path, "" if unknown */
	int line;		/* 0 if unknown */
	uint64_t entry;		/* entry of the real (outermost) function */
	bool inlined;		/* inlined into the next frame of the array */
	/*
	 * The pc file:line are for: the looked-up one for the innermost
	 * frame, the inlined call's mark (entry + parentPc) for each caller.
	 * The runtime records mark + 1 as an extra "return PC" per inlined
	 * call in its stacks (runtime.Callers, heap profile buckets).
	 */
	uint64_t pc;
};

/* Link-time addresses of the runtime's books; 0 = not found. */
struct gobin_runtime {
	uint64_t mbuckets;		/* runtime.mbuckets (*bucket) */
	uint64_t mprof_cycle;		/* runtime.mProfCycle (1.19+) or mProf */
	uint64_t mem_profile_rate;	/* runtime.MemProfileRate (int) */
	uint64_t disable_memprof;	/* runtime.disableMemoryProfiling (bool) */
	uint64_t gc_controller;		/* runtime.gcController */
	uint64_t memstats;		/* runtime.memstats, if in .symtab */
	bool from_symtab;		/* false: found by disassembly */
};

/*
 * Open path.  Returns 0, -ENOEXEC when the file is not a Go program (no
 * buildinfo and no pclntab), or another negative errno.
 */
int gobin__open(const char *path, struct gobin **out);
/* Same from an open file; fd stays the caller's (the gobin maps it). */
int gobin__open_fd(int fd, struct gobin **out);
void gobin__free(struct gobin *g);

/* "go1.23.5"; "" when the buildinfo is missing. */
const char *gobin__version(const struct gobin *g);
/* major*100 + minor, e.g. 123 for go1.23.5; 0 if unknown. */
int gobin__version_num(const struct gobin *g);
/* ET_DYN executable: addresses move by the process's load bias. */
bool gobin__pie(const struct gobin *g);

/*
 * Frames for pc.  ret: pc is a return address (look up pc - 1, as every
 * frame of a heap-profile stack is).  Fills up to max frames, innermost
 * first, and returns their number: 0 when pc is in no Go function.
 */
int gobin__frames(const struct gobin *g, uint64_t pc, bool ret,
		  struct gobin_frame *out, int max);

/* Entry address of function name, 0 if absent; *size its length. */
uint64_t gobin__func(const struct gobin *g, const char *name, uint64_t *size);

/* The runtime's variables; -ENOENT when mbuckets cannot be found. */
int gobin__runtime(const struct gobin *g, struct gobin_runtime *out);
/*
 * The same found in the code only, ignoring .symtab (what a stripped
 * build gets; tests compare both on one file).  memstats stays 0.
 */
int gobin__runtime_code(const struct gobin *g, struct gobin_runtime *out);

/* Number of functions in the table (tests, stats). */
int gobin__nr_funcs(const struct gobin *g);
/*
 * Function i of the table (0 <= i < gobin__nr_funcs, by address): its
 * name, entry and end.  -ERANGE for a bad i, -ENOENT for a broken entry.
 */
int gobin__func_at(const struct gobin *g, int i, const char **name,
		   uint64_t *entry, uint64_t *end);

#endif /* MT_GOBIN_H */
