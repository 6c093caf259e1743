// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation wrappers recognised from machine code (user/wrapper.c):
 * hand-assembled functions, each calling the allocator at a known return
 * address, that pass the block through or do not.
 */
#include <errno.h>
#include <string.h>

#include "test.h"
#include "wrapper.h"

struct func {
	uint64_t start;
	const uint8_t *code;
	size_t len;
};

/* sub rsp,8; call; test rax,rax; je fail; add rsp,8; ret; fail: call; ud2 */
static const uint8_t xmalloc[] = {
	0x48, 0x83, 0xec, 0x08, 0xe8, 0, 0, 0, 0, 0x48, 0x85, 0xc0,
	0x74, 0x05, 0x48, 0x83, 0xc4, 0x08, 0xc3, 0xe8, 0, 0, 0, 0, 0x0f, 0x0b,
};
/* push rbx; call; mov [rip],rax; mov eax,1; pop rbx; ret */
static const uint8_t keeps[] = {
	0x53, 0xe8, 0, 0, 0, 0, 0x48, 0x89, 0x05, 0, 0, 0, 0,
	0xb8, 1, 0, 0, 0, 0x5b, 0xc3,
};
/* sub rsp,8; call; lea rax,[rax+16]; add rsp,8; ret (an sds string) */
static const uint8_t header[] = {
	0x48, 0x83, 0xec, 0x08, 0xe8, 0, 0, 0, 0, 0x48, 0x8d, 0x40, 0x10,
	0x48, 0x83, 0xc4, 0x08, 0xc3,
};
/* push rbx; call; mov rbx,rax; mov rdi,rax; call 0x5000; pop rbx; ret */
static const uint8_t via_helper[] = {
	0x53, 0xe8, 0, 0, 0, 0, 0x48, 0x89, 0xc3, 0x48, 0x89, 0xc7,
	0xe8, 0xef, 0x0f, 0, 0, 0x5b, 0xc3,
};
/* mov rax,rdi; ret: hands its argument back */
static const uint8_t helper[] = { 0x48, 0x89, 0xf8, 0xc3 };
/* as via_helper, calling 0x6000 (rel32 -0x2011) */
static const uint8_t via_zero[] = {
	0x53, 0xe8, 0, 0, 0, 0, 0x48, 0x89, 0xc3, 0x48, 0x89, 0xc7,
	0xe8, 0xef, 0xdf, 0xff, 0xff, 0x5b, 0xc3,
};
/* xor eax,eax; ret */
static const uint8_t zero[] = { 0x31, 0xc0, 0xc3 };
/* push rbx; call; mov rbx,rax; call (another); mov rax,rbx; pop rbx; ret */
static const uint8_t saved[] = {
	0x53, 0xe8, 0, 0, 0, 0, 0x48, 0x89, 0xc3, 0xe8, 0, 0, 0, 0,
	0x48, 0x89, 0xd8, 0x5b, 0xc3,
};

/* push rbx; call; mov rbx,rax; mov rdi,rax; call 0x9100; mov rax,rbx; pop rbx; ret */
static const uint8_t fills[] = {
	0x53, 0xe8, 0, 0, 0, 0, 0x48, 0x89, 0xc3, 0x48, 0x89, 0xc7,
	0xe8, 0xef, 0x00, 0, 0, 0x48, 0x89, 0xd8, 0x5b, 0xc3,
};
/* as fills, calling 0x9200 (the allocator's own: usable size) */
static const uint8_t asks_size[] = {
	0x53, 0xe8, 0, 0, 0, 0, 0x48, 0x89, 0xc3, 0x48, 0x89, 0xc7,
	0xe8, 0x6f, 0x01, 0, 0, 0x48, 0x89, 0xd8, 0x5b, 0xc3,
};
/* sub rsp,8; call; movq [rax],1; add rsp,8; ret: an initialised struct */
static const uint8_t inits[] = {
	0x48, 0x83, 0xec, 0x08, 0xe8, 0, 0, 0, 0,
	0x48, 0xc7, 0x00, 0x01, 0, 0, 0, 0x48, 0x83, 0xc4, 0x08, 0xc3,
};

/*
 * grow_leak: push rbx; call; mov rbx,rax; test rax,rax; je L;
 * mov rdi,rax; call memset (0x9100); L: mov rax,rbx; pop rbx; ret
 */
static const uint8_t fills_unless_null[] = {
	0x53, 0xe8, 0, 0, 0, 0, 0x48, 0x89, 0xc3, 0x48, 0x85, 0xc0, 0x74, 0x08,
	0x48, 0x89, 0xc7, 0xe8, 0xea, 0xd0, 0xff, 0xff, 0x48, 0x89, 0xd8,
	0x5b, 0xc3,
};

/*
 * ngx_memalign: push r13; sub rsp,16; lea rdi,[rsp+8]; call
 * (posix_memalign); test eax,eax; jne fail; mov r13,[rsp+8]; add rsp,16;
 * mov rax,r13; pop r13; ret; fail: xor eax,eax; add rsp,16; pop r13; ret
 */
static const uint8_t memalign_slot[] = {
	0x41, 0x55, 0x48, 0x83, 0xec, 0x10, 0x48, 0x8d, 0x7c, 0x24, 0x08,
	0xe8, 0, 0, 0, 0, 0x85, 0xc0, 0x75, 0x0f,
	0x4c, 0x8b, 0x6c, 0x24, 0x08, 0x48, 0x83, 0xc4, 0x10,
	0x4c, 0x89, 0xe8, 0x41, 0x5d, 0xc3,
	0x31, 0xc0, 0x48, 0x83, 0xc4, 0x10, 0x41, 0x5d, 0xc3,
};
/* sub rsp,24; mov rdi,rsp; call; mov rax,[rsp]; movq [rax],1; add rsp,24; ret */
static const uint8_t memalign_inits[] = {
	0x48, 0x83, 0xec, 0x18, 0x48, 0x89, 0xe7, 0xe8, 0, 0, 0, 0,
	0x48, 0x8b, 0x04, 0x24, 0x48, 0xc7, 0x00, 0x01, 0, 0, 0,
	0x48, 0x83, 0xc4, 0x18, 0xc3,
};
/* sub rsp,24; mov rdi,rsp; call; add rsp,24; ret: its error number */
static const uint8_t memalign_status[] = {
	0x48, 0x83, 0xec, 0x18, 0x48, 0x89, 0xe7, 0xe8, 0, 0, 0, 0,
	0x48, 0x83, 0xc4, 0x18, 0xc3,
};

static const struct func funcs[] = {
	{ 0xd000, memalign_slot, sizeof(memalign_slot) },
	{ 0xe000, memalign_inits, sizeof(memalign_inits) },
	{ 0xf000, memalign_status, sizeof(memalign_status) },
	{ 0xc000, fills_unless_null, sizeof(fills_unless_null) },
	{ 0x9000, fills, sizeof(fills) },
	{ 0x9080, asks_size, sizeof(asks_size) },
	{ 0xa000, inits, sizeof(inits) },
	{ 0x1000, xmalloc, sizeof(xmalloc) },
	{ 0x2000, keeps, sizeof(keeps) },
	{ 0x3000, header, sizeof(header) },
	{ 0x4000, via_helper, sizeof(via_helper) },
	{ 0x5000, helper, sizeof(helper) },
	{ 0x8000, via_zero, sizeof(via_zero) },
	{ 0x6000, zero, sizeof(zero) },
	{ 0x7000, saved, sizeof(saved) },
};

static int read_func(void *ctx, uint64_t addr, uint8_t *buf, size_t len,
		     uint64_t *start)
{
	size_t i;

	for (i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		const struct func *f = &funcs[i];

		if (addr < f->start || addr >= f->start + f->len)
			continue;
		if (len > f->len)
			len = f->len;
		memcpy(buf, f->code, len);
		*start = f->start;
		return len;
	}
	return -ENOENT;
}

/* 0x9200 stands for malloc_usable_size, 0x9100 for memset */
static bool allows(void *ctx, uint64_t addr)
{
	return addr == 0x9200;
}

static void test_passes_through(void)
{
	struct wrapper_src src = { .read = read_func, .allows = allows };

	/* the returned block is returned: a wrapper */
	ASSERT_EQ(wrapper__passes_through(&src, 0x1009), 1);
	/* kept in a callee-saved register across another call */
	ASSERT_EQ(wrapper__passes_through(&src, 0x7006), 1);
	/* through a helper that hands its argument back */
	ASSERT_EQ(wrapper__passes_through(&src, 0x4006), 1);
	/* stored away, something else returned: a site of its own */
	ASSERT_EQ(wrapper__passes_through(&src, 0x2006), 0);
	/* a pointer into the block (a header before it): its own site */
	ASSERT_EQ(wrapper__passes_through(&src, 0x3009), 0);
	/* a helper that returns something else */
	ASSERT_EQ(wrapper__passes_through(&src, 0x8006), 0);
	/* handed to another function (memset) before it is returned */
	ASSERT_EQ(wrapper__passes_through(&src, 0x9006), 0);
	/* handed to the allocator's own API only: still a wrapper */
	ASSERT_EQ(wrapper__passes_through(&src, 0x9086), 1);
	/* filled in unless NULL: only the NULL is returned untouched */
	ASSERT_EQ(wrapper__passes_through(&src, 0xc006), 0);
	/* written into (a struct's field) before it is returned */
	ASSERT_EQ(wrapper__passes_through(&src, 0xa009), 0);
	/* posix_memalign's block loaded from its stack slot and returned */
	ASSERT_EQ(wrapper__passes_through(&src, 0xd010), 1);
	/* ... or written into: a site of its own */
	ASSERT_EQ(wrapper__passes_through(&src, 0xe00c), 0);
	/* ... or only its error number returned */
	ASSERT_EQ(wrapper__passes_through(&src, 0xf00c), 0);
	/* no code there */
	ASSERT_TRUE(wrapper__passes_through(&src, 0xb006) < 0);
}

int main(void)
{
	RUN_TEST(test_passes_through);
	return test__finish();
}
