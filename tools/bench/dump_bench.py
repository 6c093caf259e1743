#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Pre-OOM capture timing for `make bench`: for workloads of a given size
growing in a memory cgroup of their own (a child of the cgroup this script
runs in, removed afterwards), the time from the threshold crossing to the
small artifact and to the complete core.  Appends a section to
bench-results/results.md.

  tools/bench/dump_bench.py [SIZE_MIB ...]     (default: 256 1024)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import append_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import test_dump as td  # noqa: E402  (cgroup helpers of the tests)
from common import cleanup  # noqa: E402


def one(size_mib):
    """Limit = size; capture at 50%: the core holds about size/2 MiB."""
    cg = td.Cgroup(size_mib << 20)
    d = td.dump_dir()
    try:
        w, pid = td.start_grow(cg, "--step-mib", "8", "--interval-ms", "20")
        m = td.Memtrace(["-p", str(pid), "--dump-at", "50%", "--dump-dir", d,
                         "--gcore-timeout", "120"])
        m.wait_probed(pid)
        td.go(w)
        art = td.wait_artifact(d, pid, ("report.txt", "core.txt"), timeout=180)
        trig = open(os.path.join(d, art, "trigger.txt")).read()
        core = open(os.path.join(d, art, "core.txt")).read()
        small = float(re.search(r"small_artifact_ms: ([\d.]+)", trig).group(1))
        stop = float(re.search(r"stopped_after_us: ([\d.]+)", trig).group(1))
        usage = int(re.search(r"usage: (\d+)", trig).group(1))
        m2 = re.search(r"since_trigger_s: ([\d.]+)", core)
        full = float(m2.group(1)) if m2 else None
        csize = re.search(r"\((\d+) bytes\)", core)
        return {"limit": size_mib, "usage": usage >> 20, "stop_us": stop,
                "small_ms": small, "core_s": full,
                "core_mib": int(csize.group(1)) >> 20 if csize else None,
                "note": "" if m2 else core.strip().splitlines()[0]}
    finally:
        cleanup()
        cg.remove()
        shutil.rmtree(d, ignore_errors=True)


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [256, 1024]
    rows = []
    for s in sizes:
        try:
            rows.append(one(s))
        except td.Skip as e:
            print(f"dump bench: skipped: {e}")
            return 0
        except Exception as e:  # noqa: BLE001
            rows.append({"limit": s, "note": f"failed: {e}"})
        print("dump bench:", rows[-1])
    lines = ["", "## Pre-OOM capture: trigger to evidence", "",
             "Workload growing 8 MiB every 20 ms in a v1 memory cgroup of its own, "
             "`--dump-at 50%`; times from the threshold notification.", "",
             "| cgroup limit | usage at trigger | stopped after | small artifact | core complete | core size |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "small_ms" not in r:
            lines.append(f"| {r['limit']} MiB | {r.get('note')} | | | | |")
            continue
        core = f"{r['core_s']:.2f} s" if r["core_s"] is not None else r["note"]
        lines.append(f"| {r['limit']} MiB | {r['usage']} MiB | {r['stop_us'] / 1000:.1f} ms | "
                     f"{r['small_ms']:.0f} ms | {core} | {r.get('core_mib')} MiB |")
    append_section(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
