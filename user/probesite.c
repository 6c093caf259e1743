// SPDX-License-Identifier: GPL-2.0
/*
 * Probe-site selection.
 *
 * x86 uprobes emulate a few instructions (push reg, nop, relative
 * jmp/call/jcc) and single-step all others out of line, which costs
 * ~15x more in a VM.  glibc's free starts with "test %rdi,%rdi" and
 * posix_memalign with "cmpb $0,...(%rip)": both only set flags.  Moving
 * the probe past such instructions to the first emulated one sees every
 * call with the same argument registers and the same stack pointer, so
 * entry handlers and return hijacking (which reads the return address at
 * %rsp) work unchanged.
 *
 * Allocators of their own (tcmalloc, jemalloc) start with loads into
 * scratch registers before their first branch, so an instruction may also
 * be skipped when it writes only registers the probe programs do not
 * read: they read the function's first nargs argument registers and the
 * stack pointer at entry, and nothing else (the return program reads the
 * registers at return).
 *
 * The rule stays conservative: skip at most MAX_SKIP instructions, none
 * of which may branch, write memory, the stack pointer or one of those
 * argument registers, or be something capstone cannot describe.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "probesite.h"

#define MAX_SKIP 12

/* Mirrors branch_setup_xol_ops()/push_setup_xol_ops() in arch/x86/kernel/uprobes.c */
static bool kernel_emulates(const uint8_t *b, size_t len)
{
	if (len == 1 && b[0] == 0x90)
		return true;				/* nop */
	if (len == 1 && (b[0] & 0xf8) == 0x50)
		return true;				/* push reg */
	if (len == 2 && b[0] == 0x41 && (b[1] & 0xf8) == 0x50)
		return true;				/* push r8-r15 */
	if (b[0] == 0xeb || b[0] == 0xe9 || b[0] == 0xe8)
		return true;				/* jmp, call rel */
	if ((b[0] & 0xf0) == 0x70)
		return true;				/* jcc rel8 */
	if (len >= 2 && b[0] == 0x0f && (b[1] & 0xf0) == 0x80)
		return true;				/* jcc rel32 */
	return false;
}

/* The 64-bit register that reg is part of (eax -> rax), or reg. */
static x86_reg full_reg(x86_reg reg)
{
	static const x86_reg fam[][5] = {
		{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL },
		{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL },
		{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH },
		{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL },
		{ X86_REG_RIP, X86_REG_EIP, X86_REG_IP },
	};
	size_t i, j;

	for (i = 0; i < sizeof(fam) / sizeof(fam[0]); i++)
		for (j = 0; j < 5; j++)
			if (fam[i][j] && fam[i][j] == reg)
				return fam[i][0];
	return reg;
}

/* May the probe programs see a different value of reg than at entry? */
static bool reg_free(x86_reg reg, int nargs)
{
	static const x86_reg args[] = { X86_REG_RDI, X86_REG_RSI, X86_REG_RDX };
	x86_reg r = full_reg(reg);
	int i;

	if (r == X86_REG_RSP || r == X86_REG_RIP)
		return false;
	for (i = 0; i < nargs && i < 3; i++)
		if (r == args[i])
			return false;
	return true;
}

static bool skippable(const cs_insn *in, int nargs)
{
	const cs_detail *d = in->detail;
	int i;

	if (in->id == X86_INS_INVALID || in->id == X86_INS_SYSCALL ||
	    in->id == X86_INS_SYSENTER || in->id == X86_INS_HLT ||
	    in->id == X86_INS_UD2)
		return false;
	for (i = 0; i < d->groups_count; i++) {
		switch (d->groups[i]) {
		case CS_GRP_JUMP:
		case CS_GRP_CALL:
		case CS_GRP_RET:
		case CS_GRP_INT:
		case CS_GRP_IRET:
		case CS_GRP_PRIVILEGE:
			return false;
		}
	}
	for (i = 0; i < d->regs_write_count; i++)
		if (d->regs_write[i] != X86_REG_EFLAGS &&
		    !reg_free(d->regs_write[i], nargs))
			return false;
	for (i = 0; i < d->x86.op_count; i++) {
		const cs_x86_op *op = &d->x86.operands[i];

		if (!(op->access & CS_AC_WRITE))
			continue;
		if (op->type != X86_OP_REG || !reg_free(op->reg, nargs))
			return false;
	}
	return true;
}

int probesite__choose(const uint8_t *code, size_t len, int nargs,
		      struct probesite *out)
{
	size_t off = 0, n, i;
	cs_insn *insn = NULL;
	int ret = 0;
	csh h;

	memset(out, 0, sizeof(*out));
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -EINVAL;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(h, code, len, 0, MAX_SKIP + 1, &insn);
	if (!n) {
		snprintf(out->why, sizeof(out->why), "undecodable entry");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const cs_insn *in = &insn[i];

		if (kernel_emulates(in->bytes, in->size)) {
			out->skip = off;
			snprintf(out->why, sizeof(out->why), "%s %s%s", in->mnemonic,
				 in->op_str, off ? " (after a prologue it may skip)" : "");
			ret = off ? 1 : 0;
			goto out;
		}
		if (!skippable(in, nargs))
			break;
		off += in->size;
	}
	out->skip = 0;
	snprintf(out->why, sizeof(out->why), "entry: %s %s (single-stepped)",
		 insn[0].mnemonic, insn[0].op_str);
out:
	cs_free(insn, n);
	cs_close(&h);
	return ret;
}
