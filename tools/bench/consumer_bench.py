#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Ring-buffer consumer capacity for `make bench`: a workload doing
mmap+munmap pairs flat out (two records each) under memtrace; reports
the records per second memtrace consumed and whether any were lost.
Appends a section to bench-results/results.md."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import append_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    secs = os.environ.get("BENCH_CONSUMER_SECS", "3")
    p = subprocess.run([os.path.join(ROOT, "memtrace"), "--json", "-d", "0.5",
                        "--top-sites", "0", "--", os.path.join(ROOT, "build", "workloads",
                                                               "bench_mmap"), secs],
                       capture_output=True, text=True, timeout=120)
    docs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    work = [l for l in p.stdout.splitlines() if l.startswith("pairs=")]
    if p.returncode or not docs or not work:
        print("consumer bench: failed:", p.returncode, p.stderr[-500:])
        return 1
    pairs = int(work[0].split()[0].split("=")[1])
    wsecs = float(work[0].split()[1].split("=")[1])
    peak = max(d["events_ps"] for d in docs)
    lost = docs[-1]["lost_events"]
    rate = 2 * pairs / wsecs
    lines = ["", "## Ring-buffer consumer", "",
             f"bench_mmap: {pairs} mmap+munmap pairs in {wsecs:.2f} s = "
             f"{rate:,.0f} records/s produced; memtrace consumed up to "
             f"{peak:,.0f} records/s (per refresh), lost events: {lost} "
             f"(target 0: {'MET' if lost == 0 else 'MISSED'})."]
    append_section(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
