/* SPDX-License-Identifier: GPL-2.0 */
/*
 * User-space symbolizer: process address -> function, file:line, module.
 *
 * Built on elfutils libdwfl.  Each ELF object is loaded once per struct
 * syms and shared by every process that maps it (keyed by GNU build-id,
 * or by dev+inode+size+mtime when the file has none), so thousands of
 * processes sharing libc cost one libc.
 *
 * Per-process state (the executable mappings and the objects behind
 * them) is read from /proc/PID/maps the first time a pid is seen, and is
 * kept until syms__forget_pid(): stacks of a process that has already
 * exited still symbolize, as long as the pid was seen while alive.  ELF
 * files are opened through /proc/PID/root/<path> so processes in other
 * mount namespaces and chroots work, and through /proc/PID/map_files/
 * when the file was deleted or replaced after it was mapped.  Separate
 * debug files are found by dwfl_standard_find_debuginfo (build-id under
 * /usr/lib/debug/.build-id/, .gnu_debuglink next to the file or under
 * .debug/), also inside the process's root.
 *
 * Go programs (user/gobin.h) are named from their .gopclntab instead of
 * DWARF, so stripped (-ldflags='-s -w') and PIE builds get function,
 * file:line and inlined calls exactly as the Go runtime reports them;
 * such frames have .go set, and C code linked in by cgo still goes
 * through libdw.  Stacks of Go return PCs (the runtime's heap profile
 * buckets, a frame-pointer walk of Go code) are resolved with
 * syms__resolve_ret() like any other: pass process addresses.
 *
 * Not thread-safe: one struct syms per thread.
 */
#ifndef MT_SYMS_H
#define MT_SYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct syms;
struct procfs_maps;

/* One resolved frame; one address yields several when code was inlined. */
struct syms_frame {
	char func[256];		/* function name, "" if unknown */
	uint64_t offset;	/* address - function start, if func known */
	char file[256];		/* source file path, "" if unknown */
	int line;		/* source line, 0 if unknown */
	char module[256];	/* ELF basename ("libc.so.6"), "vdso", or "" */
	uint64_t module_offset;	/* ELF virtual address (addr - load bias),
				 * the value addr2line -e MODULE takes */
	uint64_t build_id_hash;	/* FNV-1a of the build-id (or file key) */
	bool inlined;		/* inlined into the next frame of the array */
	bool go;		/* a Go function, named by the Go pclntab */
	uint64_t go_pc;		/* Go: ELF address this frame's line is for;
				 * for an inlined call's caller the call's
				 * mark, whose + 1 the Go runtime records as
				 * an extra return PC in its stacks */
};

/* One executable mapping of a process, in the form pprof wants. */
struct syms_mapping {
	uint64_t start, limit, file_offset;
	char path[512];		/* path as the process sees it, or "[vdso]" */
	char build_id[41];	/* lower-case hex, "" if none (truncated) */
};

struct syms *syms__new(void);
void syms__free(struct syms *s);

/*
 * Resolve an exact instruction address (e.g. a function address or the
 * innermost frame of a sampled stack).  Fills up to max frames, innermost
 * (most deeply inlined) first, the real enclosing function last.  Returns
 * the number of frames (always >= 1: an unresolvable address gives one
 * frame with func "" and either module set, formatted "[module+0x...]",
 * or module "" for an address in no mapping, formatted "[unknown]"), or a
 * negative errno on a hard error (bad arguments, out of memory).
 */
int syms__resolve(struct syms *s, int pid, uint64_t addr,
		  struct syms_frame *out, int max);

/*
 * Same for a return address (every frame of a frame-pointer walk except
 * a sampled PC).  A return address points after the call instruction,
 * which may already belong to the next line, the next inlined block or
 * even the next function, so the lookup is done at addr - 1.  offset and
 * module_offset still describe addr itself, like other backtraces do.
 */
int syms__resolve_ret(struct syms *s, int pid, uint64_t addr,
		      struct syms_frame *out, int max);

/*
 * A stack of return addresses (leaf first) in the shape runtime/pprof
 * gives Go stacks, for every view that lists a stack's frames (pprof,
 * folded, JSON, drill-down).  Leading runtime.* frames are hidden (all
 * kept when nothing else is left) and runtime.goexit dropped.  The Go
 * runtime records one extra return PC per inlined call (the call's
 * mark + 1, see syms_frame.go_pc); the real PC before them already
 * resolves to the whole inline chain, so they are dropped, as pprof's
 * pcDeck merges them.  A physical stack (a frame-pointer walk) has no
 * such PCs and keeps them all; stacks with no Go frame come back
 * unchanged.  Writes the kept PCs to out (room for n; may not alias
 * in) and returns their number.
 */
int syms__go_stack(struct syms *s, int pid, const uint64_t *in, int n,
		   uint64_t *out);

/*
 * (Re)read pid's mappings now, e.g. right after exec or dlopen, or to
 * capture a short-lived process before it exits: from maps, a snapshot
 * already read for this event (procfs.h), or NULL to read /proc now.
 * Resolving an address outside the known mappings rereads them too
 * (rate-limited).
 */
int syms__load_pid(struct syms *s, int pid, struct procfs_maps *maps);

/*
 * pid exec'd a new image, whose generation stamp (CLOCK_MONOTONIC ns of
 * the exec, as the kernel sets it) is gen: mappings read before gen are
 * dropped (read them again with syms__load_pid); mappings read after gen
 * are the new image's already and stay, even if pid is gone now.
 */
void syms__exec(struct syms *s, int pid, uint64_t gen);
/* pid's mappings were read from /proc at or after gen. */
bool syms__has_image(struct syms *s, int pid, uint64_t gen);

/* Drop the cached mappings of pid (call on exit and before exec). */
void syms__forget_pid(struct syms *s, int pid);
/*
 * A mapping of pid's code the kernel reported (path from the root of all
 * mounts): kept where /proc/PID/maps said nothing of that range, so a
 * process that exits before its maps are read still symbolizes.
 */
int syms__note_map(struct syms *s, int pid, uint64_t start, uint64_t end,
		   uint64_t pgoff, uint64_t ino, const char *path);
/* pid was forked by parent: until it execs, it has parent's mappings. */
int syms__copy_pid(struct syms *s, int pid, int parent);

/*
 * Human form: "func+0x1a (file.c:42)", "func+0x1a", "inl (file.c:7)
 * [inlined]", "[libfoo.so+0x1234]" or "[unknown]".
 */
void syms__format(const struct syms_frame *f, char *buf, size_t len);

/*
 * Executable mappings of pid (from the cached state, loaded if needed),
 * at most max.  Returns the count or a negative errno.
 */
int syms__mappings(struct syms *s, int pid, struct syms_mapping *out,
		   int max);

/*
 * Up to len bytes of the code at process address addr of pid, read from
 * the ELF file mapped there (not from the process, which may be gone).
 * Returns the bytes copied, or a negative errno.
 */
int syms__read_code(struct syms *s, int pid, uint64_t addr, void *buf,
		    size_t len);
/*
 * The function a PLT stub at process address addr of pid jumps to (its
 * GOT slot's relocation), e.g. "malloc_usable_size"; -ENOENT if addr is
 * no PLT stub.
 */
int syms__plt_name(struct syms *s, int pid, uint64_t addr, char *buf,
		   size_t len);
/*
 * Wait up to ms for the debug files asked of debuginfod in the background
 * (see debuginfod.h): before a final report.  0, or -ETIMEDOUT.
 */
int syms__wait_debug(struct syms *s, int ms);
/*
 * The function (by symbol table, else by its .eh_frame FDE) holding
 * process address addr of pid: its start address in the process and its
 * size (0 if unknown).
 */
int syms__func_range(struct syms *s, int pid, uint64_t addr, uint64_t *start,
		     uint64_t *size);

/* Number of distinct ELF objects currently loaded (for tests/stats). */
int syms__nr_objects(const struct syms *s);

#endif /* MT_SYMS_H */
