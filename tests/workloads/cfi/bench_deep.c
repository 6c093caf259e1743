// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark workload for `make bench` (the CFI round): bench_tight's
 * malloc(SIZE)+free loop, called through 8 functions of their own, so
 * every allocation's stack has 10 frames to walk.  Built twice: without
 * frame pointers (walked by CFI) and with them (walked by frame pointer).
 *
 *   bench_deep[_fp] [-s SIZE] [-t MAX_SECS] [-w WARM_SECS] ITERS
 */
#define BENCH_DEEP 1
#include "../bench_tight.c"
