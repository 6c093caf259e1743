/* SPDX-License-Identifier: GPL-2.0 */
/* Reading the in-kernel accounting maps into the process table. */
#ifndef MT_COLLECT_H
#define MT_COLLECT_H

#include <stdint.h>

#include "memtrace.h"

struct collect;
struct table;
struct mt_row;
struct memtrace_bpf;

int collect__new(struct memtrace_bpf *skel, struct collect **out);
void collect__free(struct collect *c);
/* Start accounting pid in the kernel (no-op if it already is). */
int collect__track(struct collect *c, int pid, uint64_t sample_bytes);
/* Counters of every traced process, plus RSS and brk from /proc. */
int collect__procs(struct collect *c, struct table *t, uint64_t ts);
/* Allocation sites of every live row, sorted by live bytes (largest first). */
int collect__sites(struct collect *c, struct table *t);
int collect__counters(struct collect *c, uint64_t out[MT_CNT_MAX]);
/* Forget the kernel state of process (pid, gen) (its blocks and sites). */
void collect__forget(struct collect *c, int pid, uint64_t gen);
/* The kernel's stack-walk counts (enum mt_uw_stat), summed over CPUs. */
int collect__unwind(struct collect *c, uint64_t out[MT_UW_MAX]);
void collect__forget_gen(struct collect *c, int pid, uint32_t gen);
int collect__sweep(struct collect *c);

#endif /* MT_COLLECT_H */
