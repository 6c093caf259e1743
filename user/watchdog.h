/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The dead-man switch: memtrace must check in every few seconds, or its
 * probes go.  A tiny process of its own session (not stopped with
 * memtrace's job, holding none of its descriptors) watches a heartbeat
 * in shared memory and SIGKILLs a memtrace that is hung, blocked or
 * stopped; the kernel then closes its links, which removes the probes.
 * Meanwhile the BPF programs see the same heartbeat go stale and do
 * nothing (bpf/memtrace.bpf.c, asleep()).
 */
#ifndef MT_WATCHDOG_H
#define MT_WATCHDOG_H

#include <stdint.h>

/* Fork the watchdog: before any BPF object or link exists, so it holds
 * none.  secs: how stale the heartbeat may get; 0 = no watchdog. */
int watchdog__start(double secs);
/* The BPF programs' copy of the heartbeat (their .bss), once loaded. */
void watchdog__bpf(volatile uint64_t *hb);
/* Check in: memtrace is alive and turning its loop. */
void watchdog__beat(void);
/* End the watchdog (memtrace exits by itself). */
void watchdog__stop(void);

#endif /* MT_WATCHDOG_H */
