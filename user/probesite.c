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
 * The rule is conservative: skip at most a few instructions, each of
 * which must not branch and must write nothing but the flags.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "probesite.h"

#define MAX_SKIP 4

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

static bool only_writes_flags(csh h, const cs_insn *in)
{
	const cs_detail *d = in->detail;
	int i;

	for (i = 0; i < d->groups_count; i++) {
		switch (d->groups[i]) {
		case CS_GRP_JUMP:
		case CS_GRP_CALL:
		case CS_GRP_RET:
		case CS_GRP_INT:
		case CS_GRP_IRET:
			return false;
		}
	}
	for (i = 0; i < d->regs_write_count; i++)
		if (d->regs_write[i] != X86_REG_EFLAGS)
			return false;
	for (i = 0; i < d->x86.op_count; i++)
		if (d->x86.operands[i].access & CS_AC_WRITE)
			return false;
	/* whatever capstone cannot describe is not skipped */
	return in->id != X86_INS_INVALID;
}

int probesite__choose(const uint8_t *code, size_t len, struct probesite *out)
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
				 in->op_str, off ? " (after flag-only prologue)" : "");
			ret = off ? 1 : 0;
			goto out;
		}
		if (!only_writes_flags(h, in))
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
