// SPDX-License-Identifier: GPL-2.0
/*
 * A malloc of its own, standing in for jemalloc, tcmalloc or mimalloc
 * linked into (or preloaded by) a program: it defines the whole malloc
 * family and never calls the C library's, so a tracer that probes only
 * libc sees nothing of the program's heap.
 *
 * Like tcmalloc, it also serves C++ operator new and delete itself (the
 * mangled names are defined here in C), without calling its malloc or
 * free.
 *
 * Deliberately simple: blocks are carved from one big reservation with
 * a header that holds their size, and free() keeps them on a list per
 * power-of-two class (small blocks are reused, so addresses come back
 * as with a real allocator).  Thread-safe with one spin lock.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ARENA	(1UL << 32)	/* reserved, not committed */
#define CLASSES	40
#define HDR	16

struct hdr {
	size_t size;		/* usable bytes after the header */
	size_t cls;
};

static char *arena, *top;
static void *free_list[CLASSES];
static volatile int lock;

static void acquire(void)
{
	while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
		;
}

static void release(void)
{
	__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

static size_t class_of(size_t n)
{
	size_t c = 4;

	while (((size_t)1 << c) < n)
		c++;
	return c;
}

/* A block of at least n bytes whose start (after the header) is aligned. */
static void *carve(size_t n, size_t align)
{
	size_t cls = class_of(n ? n : 1);
	struct hdr *h;
	char *p;

	if (cls >= CLASSES)
		return NULL;
	acquire();
	if (!arena) {
		arena = mmap(NULL, ARENA, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (arena == MAP_FAILED) {
			arena = NULL;
			release();
			return NULL;
		}
		top = arena;
	}
	if (align <= HDR && free_list[cls]) {
		p = free_list[cls];
		free_list[cls] = *(void **)p;
		release();
		return p;
	}
	p = top + HDR;
	p += (align - (uintptr_t)p % align) % align;
	if (p + ((size_t)1 << cls) > arena + ARENA) {
		release();
		return NULL;
	}
	top = p + ((size_t)1 << cls);
	release();
	h = (struct hdr *)(p - HDR);
	h->size = (size_t)1 << cls;
	h->cls = cls;
	return p;
}

void *malloc(size_t n)
{
	void *p = carve(n, HDR);

	if (!p)
		errno = ENOMEM;
	return p;
}

static void give_back(void *p)
{
	struct hdr *h;

	if (!p)
		return;
	h = (struct hdr *)((char *)p - HDR);
	acquire();
	*(void **)p = free_list[h->cls];
	free_list[h->cls] = p;
	release();
}

void free(void *p)
{
	give_back(p);
}

void *calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	p = malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

/*
 * For tests (tests/workloads/realloc_race.c): called inside realloc once
 * the old block is back on the free list, before realloc returns, as a
 * real allocator's thread could be preempted there.
 */
void (*mtalloc_realloc_hook)(void *old, void *new);

void *realloc(void *old, size_t n)
{
	struct hdr *h;
	void *p;

	if (!old)
		return malloc(n);
	if (!n) {
		free(old);
		return NULL;
	}
	p = malloc(n);
	if (!p)
		return NULL;
	h = (struct hdr *)((char *)old - HDR);
	memcpy(p, old, h->size < n ? h->size : n);
	free(old);
	if (mtalloc_realloc_hook)
		mtalloc_realloc_hook(old, p);
	return p;
}

void *reallocarray(void *old, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(old, n * size);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (!align || (align & (align - 1)) || align % sizeof(void *))
		return EINVAL;
	p = carve(n, align < HDR ? HDR : align);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *memalign(size_t align, size_t n)
{
	void *p = NULL;

	if (align < sizeof(void *))
		align = sizeof(void *);
	errno = posix_memalign(&p, align, n);
	return errno ? NULL : p;
}

void *aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

void *valloc(size_t n)
{
	return memalign(sysconf(_SC_PAGESIZE), n);
}

void *pvalloc(size_t n)
{
	size_t page = sysconf(_SC_PAGESIZE);

	return memalign(page, (n + page - 1) & ~(page - 1));
}

size_t malloc_usable_size(void *p)
{
	return p ? ((struct hdr *)((char *)p - HDR))->size : 0;
}

/* operator new(size_t), new[](size_t): abort where C++ would throw */
static void *cxx_new(size_t n)
{
	void *p = carve(n, HDR);

	if (!p)
		abort();
	return p;
}

void *_Znwm(size_t n)
{
	return cxx_new(n);
}

void *_Znam(size_t n)
{
	return cxx_new(n);
}

/* operator delete(void *), delete[](void *) and the sized ones */
void _ZdlPv(void *p)
{
	give_back(p);
}

void _ZdaPv(void *p)
{
	give_back(p);
}

void _ZdlPvm(void *p, size_t n)
{
	give_back(p);
}

void _ZdaPvm(void *p, size_t n)
{
	give_back(p);
}
