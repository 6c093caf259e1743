// SPDX-License-Identifier: GPL-2.0
/*
 * Does a function pass an allocation through?  (See wrapper.h.)
 *
 * The code after the call is followed with capstone: the set of
 * general-purpose registers holding the returned value starts as {rax};
 * a 64-bit register-to-register move copies membership, any other write
 * of a register takes it out, a call takes out the registers a callee
 * may clobber.  Both ways of each conditional branch are followed,
 * direct jumps inside the function too; a jump elsewhere (a tail call)
 * or out of budget ends a path without a verdict.  A direct call with
 * the value in an argument register puts it back in rax when the callee
 * returns that argument (read the same way, one level deep).  A path
 * reaching ret with the value still in rax, having neither written
 * through it nor handed it to a function other than such a helper or
 * the allocator's own, makes the function a wrapper.
 *
 * posix_memalign (nginx's ngx_memalign) returns the block through its
 * first argument: when that was a slot of the caller's own stack frame
 * (rdi = rsp + d before the call), the value starts in that slot
 * instead, and a load from it puts it in a register.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "wrapper.h"

#define BUDGET		256	/* instructions followed, over all paths */
#define MAX_PATHS	16

/* General-purpose register number 0..15 of any of its names, or -1. */
static int gpr(unsigned int r)
{
	static const unsigned int names[16][5] = {
		{ X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH },
		{ X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH },
		{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH },
		{ X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH },
		{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL },
		{ X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL },
		{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL },
		{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL },
		{ X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B },
		{ X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B },
		{ X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B },
		{ X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B },
		{ X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B },
		{ X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B },
		{ X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B },
		{ X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B },
	};
	int i, j;

	for (i = 0; i < 16; i++)
		for (j = 0; j < 5; j++)
			if (names[i][j] && names[i][j] == r)
				return i;
	return -1;
}

#define RAX		(1u << 0)
/* rax rcx rdx rsi rdi r8-r11: what a call may change (SysV ABI) */
#define CLOBBERED	(0x0f00u | 1u << 0 | 1u << 1 | 1u << 2 | 1u << 6 | 1u << 7)

struct path {
	uint64_t pc;
	unsigned int held;	/* registers holding the returned value */
	bool used;		/* the block was written or handed on */
	bool in_slot;		/* the value is in the stack slot rsp + slot */
	int64_t slot;
};

#define RSP		4	/* gpr() of rsp */

/* rdi rsi rdx rcx r8 r9: the arguments a callee may hand back */
#define ARGS	(1u << 7 | 1u << 6 | 1u << 2 | 1u << 1 | 1u << 8 | 1u << 9)
#define CODE_MAX	8192

/* The target of a direct jump or call, or 0. */
static uint64_t jump_target(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;

	if (x->op_count == 1 && x->operands[0].type == X86_OP_IMM)
		return x->operands[0].imm;
	return 0;
}

static bool is_reg_move(const cs_insn *in, int *dst, int *src)
{
	const cs_x86 *x = &in->detail->x86;

	if (in->id != X86_INS_MOV || x->op_count != 2 ||
	    x->operands[0].type != X86_OP_REG ||
	    x->operands[1].type != X86_OP_REG || x->operands[0].size != 8)
		return false;
	*dst = gpr(x->operands[0].reg);
	*src = gpr(x->operands[1].reg);
	return *dst >= 0 && *src >= 0;
}

/* test r,r of a register holding the value: what follows knows if NULL */
static bool tests_held(const cs_insn *in, unsigned int held)
{
	const cs_x86 *x = &in->detail->x86;
	int g;

	if (in->id != X86_INS_TEST || x->op_count != 2 ||
	    x->operands[0].type != X86_OP_REG ||
	    x->operands[1].type != X86_OP_REG ||
	    x->operands[0].reg != x->operands[1].reg)
		return false;
	g = gpr(x->operands[0].reg);
	return g >= 0 && (held & 1u << g);
}

/* Does the instruction write memory addressed from a held register? */
static bool writes_through(const cs_insn *in, unsigned int held)
{
	const cs_x86 *x = &in->detail->x86;
	int i, g;

	for (i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type != X86_OP_MEM || !(op->access & CS_AC_WRITE))
			continue;
		g = gpr(op->mem.base);
		if (g >= 0 && (held & 1u << g))
			return true;
		g = gpr(op->mem.index);
		if (g >= 0 && (held & 1u << g))
			return true;
	}
	return false;
}

/* Is operand i the stack slot rsp + slot? */
static bool is_slot(const cs_x86_op *op, int64_t slot)
{
	return op->type == X86_OP_MEM && gpr(op->mem.base) == RSP &&
	       op->mem.index == X86_REG_INVALID && op->mem.disp == slot;
}

/* mov slot(%rsp), reg64: the register it loads the value into, or -1. */
static int loads_slot(const cs_insn *in, int64_t slot)
{
	const cs_x86 *x = &in->detail->x86;

	if (in->id != X86_INS_MOV || x->op_count != 2 ||
	    x->operands[0].type != X86_OP_REG || x->operands[0].size != 8 ||
	    !is_slot(&x->operands[1], slot))
		return -1;
	return gpr(x->operands[0].reg);
}

/* Does the instruction write the slot? */
static bool writes_slot(const cs_insn *in, int64_t slot)
{
	const cs_x86 *x = &in->detail->x86;
	int i;

	for (i = 0; i < x->op_count; i++)
		if (is_slot(&x->operands[i], slot) &&
		    (x->operands[i].access & CS_AC_WRITE))
			return true;
	return false;
}

/* Registers the instruction writes (flags and rip aside). */
static unsigned int written(csh h, const cs_insn *in)
{
	cs_regs rd, wr;
	uint8_t nrd = 0, nwr = 0, i;
	unsigned int mask = 0;
	int g;

	if (cs_regs_access(h, in, rd, &nrd, wr, &nwr))
		return ~0u;	/* unknown: assume the worst */
	for (i = 0; i < nwr; i++) {
		g = gpr(wr[i]);
		if (g >= 0)
			mask |= 1u << g;
	}
	return mask;
}

struct sim;
static int returns_arg(struct sim *sm, uint64_t entry, unsigned int args,
		       int depth);

struct sim {
	const struct wrapper_src *src;
	csh h;
	cs_insn *in;
};

/*
 * From pc (inside the function whose code is code[0..len) at base), with
 * the value in the registers held: does some path reach ret with it in
 * rax?  depth: how many callees deep it may look (for callees that hand
 * an argument back).
 */
static int simulate(struct sim *sm, const uint8_t *code, size_t len,
		    uint64_t base, const struct path *from, int depth)
{
	struct path work[MAX_PATHS];
	int nwork = 0, budget = BUDGET, verdict = 0, dst, src;
	bool tested = false;

	work[nwork++] = *from;
	while (nwork && !verdict && budget > 0) {
		struct path p = work[--nwork];

		tested = false;
		while (budget-- > 0) {
			const uint8_t *at;
			size_t left;
			uint64_t addr, t;

			if (p.pc < base || p.pc >= base + len ||
			    (!p.held && !p.in_slot))
				break;
			at = code + (p.pc - base);
			left = len - (p.pc - base);
			addr = p.pc;
			if (!cs_disasm_iter(sm->h, &at, &left, &addr, sm->in))
				break;
			p.pc = addr;
			if (sm->in->id == X86_INS_RET) {
				verdict = (p.held & RAX) && !p.used;
				break;
			}
			/*
			 * After "test rax,rax" the way taken on zero carries a
			 * NULL: returning that passes no allocation through.
			 */
			if (tested && (sm->in->id == X86_INS_JE ||
				       sm->in->id == X86_INS_JNE)) {
				t = jump_target(sm->in);
				tested = false;
				if (sm->in->id == X86_INS_JE)
					continue;	/* follow the non-NULL way */
				if (!t)
					break;
				p.pc = t;
				continue;
			}
			tested = tests_held(sm->in, p.held);
			if (sm->in->id == X86_INS_JMP) {
				t = jump_target(sm->in);
				/* elsewhere: a tail call, no verdict here */
				if (!t || t < base || t >= base + len)
					break;
				p.pc = t;
				continue;
			}
			if (cs_insn_group(sm->h, sm->in, X86_GRP_JUMP)) {
				t = jump_target(sm->in);
				if (t && nwork < MAX_PATHS) {
					work[nwork] = p;
					work[nwork++].pc = t;
				}
				continue;
			}
			if (sm->in->id == X86_INS_CALL) {
				unsigned int args = p.held & ARGS;

				t = jump_target(sm->in);
				p.held &= ~CLOBBERED;
				if (!args)
					continue;
				/* a callee that hands its argument back */
				if (t && depth > 0 &&
				    returns_arg(sm, t, args, depth - 1) == 1)
					p.held |= RAX;
				else if (!t || !sm->src->allows ||
					 !sm->src->allows(sm->src->ctx, t))
					p.used = true;	/* memset, an init */
				continue;
			}
			if (sm->in->id == X86_INS_UD2 ||
			    sm->in->id == X86_INS_HLT ||
			    sm->in->id == X86_INS_INT3)
				break;
			if (writes_through(sm->in, p.held))
				p.used = true;	/* fills the block in */
			if (p.in_slot) {
				dst = loads_slot(sm->in, p.slot);
				if (dst >= 0) {
					p.held |= 1u << dst;
					continue;
				}
				/* overwritten, or rsp moved (an epilogue) */
				if (writes_slot(sm->in, p.slot) ||
				    (written(sm->h, sm->in) & 1u << RSP))
					p.in_slot = false;
			}
			if (is_reg_move(sm->in, &dst, &src)) {
				if (p.held & 1u << src)
					p.held |= 1u << dst;
				else
					p.held &= ~(1u << dst);
				continue;
			}
			p.held &= ~written(sm->h, sm->in);
		}
	}
	return verdict;
}

/* Does the function at entry return (one of) the arguments in args? */
static int returns_arg(struct sim *sm, uint64_t entry, unsigned int args,
		       int depth)
{
	uint8_t code[1024];
	uint64_t start;
	cs_insn *saved = sm->in;
	int n, v;

	n = sm->src->read(sm->src->ctx, entry, code, sizeof(code), &start);
	if (n <= 0 || start != entry)
		return 0;
	/* the caller's instruction is in use up the stack: one of our own */
	sm->in = cs_malloc(sm->h);
	if (!sm->in) {
		sm->in = saved;
		return -ENOMEM;
	}
	v = simulate(sm, code, n, start,
		     &(struct path){ .pc = entry, .held = args }, depth);
	cs_free(sm->in, 1);
	sm->in = saved;
	return v;
}

/*
 * The call returning to ret, read from the function's start: was its
 * first argument (rdi) the address of a slot of this frame?  Only a
 * mov %rsp,%rdi or lea d(%rsp),%rdi last writing rdi on the straight
 * way there counts.
 */
static bool out_slot(struct sim *sm, const uint8_t *code, size_t len,
		     uint64_t base, uint64_t ret, int64_t *slot)
{
	const cs_x86 *x = &sm->in->detail->x86;
	const uint8_t *at = code;
	uint64_t addr = base;
	bool found = false;
	int g = -1;

	while (addr < ret && cs_disasm_iter(sm->h, &at, &len, &addr, sm->in)) {
		if (sm->in->id == X86_INS_CALL && addr == ret)
			return found;
		if (!(written(sm->h, sm->in) & 1u << 7))	/* rdi */
			continue;
		found = false;
		if (x->op_count != 2 || x->operands[0].type != X86_OP_REG ||
		    gpr(x->operands[0].reg) != 7 || x->operands[0].size != 8)
			continue;
		if (sm->in->id == X86_INS_MOV &&
		    x->operands[1].type == X86_OP_REG)
			g = gpr(x->operands[1].reg), *slot = 0;
		else if (sm->in->id == X86_INS_LEA &&
			 x->operands[1].mem.index == X86_REG_INVALID)
			g = gpr(x->operands[1].mem.base),
			*slot = x->operands[1].mem.disp;
		else
			continue;
		found = g == RSP;
	}
	return false;
}

int wrapper__passes_through(const struct wrapper_src *src, uint64_t ret)
{
	static uint8_t code[CODE_MAX];
	struct sim sm = { .src = src };
	struct path from = { .pc = ret, .held = RAX };
	uint64_t start;
	int n, v;

	/* the call is the byte before the return address */
	n = src->read(src->ctx, ret - 1, code, sizeof(code), &start);
	if (n <= 0)
		return n ? n : -ENOENT;
	if (ret < start || ret >= start + n)
		return -EINVAL;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &sm.h) != CS_ERR_OK)
		return -EINVAL;
	cs_option(sm.h, CS_OPT_DETAIL, CS_OPT_ON);
	sm.in = cs_malloc(sm.h);
	if (!sm.in) {
		cs_close(&sm.h);
		return -ENOMEM;
	}
	if (out_slot(&sm, code, n, start, ret, &from.slot)) {
		/* rax holds posix_memalign's error number, not the block */
		from.held = 0;
		from.in_slot = true;
	}
	v = simulate(&sm, code, n, start, &from, 1);
	cs_free(sm.in, 1);
	cs_close(&sm.h);
	return v;
}
