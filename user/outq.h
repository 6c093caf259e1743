/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Output that never blocks tracing: the batch and JSON views write into
 * a bounded queue drained with non-blocking writes.  A refresh that does
 * not fit while the reader is stalled is dropped whole and counted.
 */
#ifndef MT_OUTQ_H
#define MT_OUTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct outq;

/* Queue in front of fd (its pipe or socket made non-blocking), at most
 * cap bytes waiting.  *file is the stdio stream the views write to. */
int outq__new(int fd, size_t cap, struct outq **out, FILE **file);
/* Restores fd's flags; call after outq__drain(). */
void outq__free(struct outq *q);
/*
 * A whole record (one refresh) has been written: queue it or drop it.
 * keep: the final report, queued whatever is waiting (the probes are
 * about to go; what bounds it is outq__drain()'s timeout): of all the
 * refreshes a stalled reader misses, it must not be that one.
 */
void outq__commit(struct outq *q, bool keep);
/* Write what the fd takes now; never waits.  Negative errno on a write
 * error other than "would block" (a closed pipe, a full disk). */
int outq__pump(struct outq *q);
/* At exit: wait up to timeout_ms for the reader to take the rest. */
int outq__drain(struct outq *q, int timeout_ms);
uint64_t outq__dropped(const struct outq *q);
size_t outq__queued(const struct outq *q);
/* The fd written to: the loop polls it for POLLOUT while output waits. */
int outq__fd(const struct outq *q);

#endif /* MT_OUTQ_H */
