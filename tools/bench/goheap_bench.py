#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Go rounds for `make bench` (issue 12): what reading a Go process's own
heap profile costs it, and how long a read takes.

1. A Go allocation loop (build/workloads/go/gobench-119 -alloc N), alone
   and under memtrace -p (profile read every 0.2 s, GC entry probes on):
   runs alternate, medians compared; the target is < 1 % slowdown.
2. A Go process with about 10,000 buckets (gobench -buckets): time of the
   first read (walks every bucket), of a later read (records only) and of
   naming every frame (build/bench/goheap_bench, made here on demand).

Needs root.  BENCH_GO_RUNS (default 7), BENCH_GO_OPS (default 20000000).
Appends a section to bench-results/results.md.

  tools/bench/goheap_bench.py
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import append_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOBENCH = os.path.join(ROOT, "build", "workloads", "go", "gobench-119")
MEMTRACE = os.path.join(ROOT, "memtrace")
RUNS = int(os.environ.get("BENCH_GO_RUNS", "7"))
OPS = int(os.environ.get("BENCH_GO_OPS", "20000000"))


def alloc_run(traced):
    w = subprocess.Popen([GOBENCH, "-alloc", str(OPS)], stdout=subprocess.PIPE,
                         stdin=subprocess.PIPE, text=True)
    m = None
    try:
        if traced:
            m = subprocess.Popen([MEMTRACE, "-p", str(w.pid), "-j", "-d", "0.2",
                                  "--top-sites", "5", "-o", os.devnull],
                                 stderr=subprocess.DEVNULL)
        out = w.communicate(timeout=300)[0]
    finally:
        if m:
            m.send_signal(signal.SIGINT)
            m.wait(timeout=30)
    for line in out.splitlines():
        if line.startswith("ns_per_op"):
            return float(line.split()[1])
    raise RuntimeError("gobench printed no result")


def buckets_round(n=10000):
    b = subprocess.run(["make", "-s", "build/bench/goheap_bench"], cwd=ROOT,
                       capture_output=True, text=True)
    if b.returncode:
        return ["Go profile read: build failed: " + b.stderr[-300:]]
    w = subprocess.Popen([GOBENCH, "-buckets", str(n)], stdout=subprocess.PIPE, text=True)
    try:
        w.stdout.readline()
        p = subprocess.run([os.path.join(ROOT, "build", "bench", "goheap_bench"),
                            str(w.pid)], capture_output=True, text=True, timeout=300)
    finally:
        w.kill()
        w.wait()
    if p.returncode:
        return ["Go profile read: failed: " + p.stderr[-300:]]
    r = json.loads(p.stdout)
    return [
        "",
        "Reading a profile of %d buckets (%s, MemProfileRate 1): first read "
        "(walks every bucket and its stack) %.1f ms, later reads (records "
        "only, vectored process_vm_readv) %.1f ms; naming all %d frames "
        "%.1f ms the first time, %.1f ms once cached." % (
            r["buckets"], r["version"], r["first_read_ms"], r["read_ms"], r["frames"],
            r["syms_cold_ms"], r["syms_warm_ms"]),
    ]


def main():
    if os.geteuid() != 0 or not os.access(GOBENCH, os.X_OK):
        print("go bench: skipped (needs root and `make build-tests` with Go)")
        return 0
    plain, traced = [], []
    for _ in range(RUNS):
        plain.append(alloc_run(False))
        traced.append(alloc_run(True))
    mp, mt = statistics.median(plain), statistics.median(traced)
    lines = [
        "",
        "## Go: reading the runtime's heap profile (issue 12)",
        "",
        "Go allocation loop (gobench -alloc %d, %d runs alternating, medians): "
        "untraced %.2f ns/op, under memtrace -p -d 0.2 %.2f ns/op: %+.2f %% "
        "(target < 1 %%; runs spread %.2f-%.2f and %.2f-%.2f ns/op)." % (
            OPS, RUNS, mp, mt, (mt / mp - 1) * 100, min(plain), max(plain),
            min(traced), max(traced)),
    ]
    lines += buckets_round()
    append_section(lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
