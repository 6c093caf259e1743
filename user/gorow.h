/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Go rows: a Go program's own heap (the runtime's profile, goheap.c) and
 * its GC in the process table, next to whatever it mallocs through C.
 *
 * A Go row's LIVE is the Go heap in use as of the last GC (as pprof's
 * inuse_space shows it) plus the C heap the probes see; ALLOC/s adds the
 * Go runtime's allocation rate; the sites list holds both, Go sites
 * marked (mt_site_row.go), sorted together by bytes in use.
 */
#ifndef MT_GOROW_H
#define MT_GOROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct app;
struct json;
struct mt_row;
struct pprof;

/* Is r a Go program?  Looks at its executable once per image. */
bool gorow__detect(struct app *app, struct mt_row *r);
/* Find Go programs among the rows, read each one's runtime, fold it in. */
void gorow__refresh(struct app *app, uint64_t ts);
/* Put r's Go sites into r->sites (between the C sites' begin and end). */
void gorow__sites(struct mt_row *r);
/*
 * One line on a Go row's runtime for the batch and live views: heap in
 * use at the last GC, allocation and GC rates, pauses, goal, GOGC,
 * GOMEMLIMIT.  Returns false (buf empty) for a row that is not Go.
 */
bool gorow__line(const struct mt_row *r, char *buf, size_t len);
/* A Go program that also mallocs (cgo): its sites say which heap. */
bool gorow__two_heaps(const struct mt_row *r);
/* The "go" object of a Go row (its top_sites Go sites); nothing for others. */
void gorow__json(struct json *j, struct app *app, struct mt_row *r,
		 int top_sites);
/* r's runtime.MemProfileRate: a Go heap profile's period; 0: none. */
int64_t gorow__rate(const struct mt_row *r);
/*
 * Add r's Go heap profile to p with whole stacks, as /debug/pprof/heap
 * would serve it now; unpublished: also count the allocations and frees
 * of the cycles the runtime has not published yet (since the last GC).
 */
int gorow__pprof_add(struct pprof *p, const struct mt_row *r, bool unpublished);

#endif /* MT_GOROW_H */
