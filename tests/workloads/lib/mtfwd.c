// SPDX-License-Identifier: GPL-2.0
/*
 * A preloaded malloc family that passes every call on to the C
 * library's (as leak checkers and allocation hooks do).  Both files
 * define malloc and free, so memtrace probes both: each block must still
 * be counted once, by the outer call, and each free once.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *__libc_memalign(size_t align, size_t n);
void *__libc_valloc(size_t n);
void *__libc_pvalloc(size_t n);

/* keeps each call a real call, not a tail jump */
static volatile unsigned long calls;

void *malloc(size_t n)
{
	void *p = __libc_malloc(n);

	calls++;
	return p;
}

void free(void *p)
{
	__libc_free(p);
	calls++;
}

void *calloc(size_t n, size_t size)
{
	void *p = __libc_calloc(n, size);

	calls++;
	return p;
}

void *realloc(void *old, size_t n)
{
	void *p = __libc_realloc(old, n);

	calls++;
	return p;
}

void *reallocarray(void *old, size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	p = __libc_realloc(old, n * size);
	calls++;
	return p;
}

void *memalign(size_t align, size_t n)
{
	void *p = __libc_memalign(align, n);

	calls++;
	return p;
}

void *aligned_alloc(size_t align, size_t n)
{
	void *p = __libc_memalign(align, n);

	calls++;
	return p;
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (!align || (align & (align - 1)) || align % sizeof(void *))
		return EINVAL;
	p = __libc_memalign(align, n);
	calls++;
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *valloc(size_t n)
{
	void *p = __libc_valloc(n);

	calls++;
	return p;
}

void *pvalloc(size_t n)
{
	void *p = __libc_pvalloc(n);

	calls++;
	return p;
}
