/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Allocation wrappers, recognised from their code.
 *
 * A site is best named by the code that asked for the memory, not by
 * the wrapper every allocation of a program goes through (redis's
 * zmalloc, nginx's ngx_alloc, an xmalloc): such a function only passes
 * the allocation through, that is, what the allocator returned to it is
 * what it returns itself.  That is read from the machine code after the
 * call (the value in rax followed through register moves and branches
 * to a ret), so no list of names is needed and a wrapper of any name,
 * in any program, is seen.  A function that keeps the block somewhere
 * and returns something else (or a pointer into it: sds strings, which
 * return the block plus a header) is a site of its own.
 */
#ifndef MT_WRAPPER_H
#define MT_WRAPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Where the code comes from: read(ctx, addr, buf, len, &start) fills buf
 * with the code of the function holding addr, from its start (returned
 * in start), and returns the bytes read or a negative errno.
 */
struct wrapper_src {
	int (*read)(void *ctx, uint64_t addr, uint8_t *buf, size_t len,
		    uint64_t *start);
	/* may the callee at addr see the block (the allocator's own API)? */
	bool (*allows)(void *ctx, uint64_t addr);
	void *ctx;
};

/*
 * For the call returning to ret: 1 when the value it returned is what
 * the calling function returns on some path (also through a callee that
 * returns its argument: redis's extend_to_usable()) without having
 * written into the block or handed it to another function (except the
 * allocator's own: malloc_usable_size), 0 when no path does, a negative
 * errno when the code cannot be read.  A function that fills the block
 * (memset, fields of a struct) and returns it is a site of its own.
 */
int wrapper__passes_through(const struct wrapper_src *src, uint64_t ret);

#endif /* MT_WRAPPER_H */
