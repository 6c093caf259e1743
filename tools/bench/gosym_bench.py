#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Go symbolization for `make bench`: open a large Go executable's
pclntab and resolve 10,000 distinct PCs with their inlined frames,
directly and through the symbolizer (build/bench/gosym_bench, made here
on demand).  The executable: BENCH_GOBIN, else Debian's prometheus, else
the Go toolchain's own `go`.  Needs no root.  Appends a section to
bench-results/results.md.

  tools/bench/gosym_bench.py [N]        (default 10000)
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import append_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def target():
    for c in (os.environ.get("BENCH_GOBIN"), "/usr/bin/prometheus",
              "/usr/lib/go-1.23/bin/go", shutil.which("go")):
        if c and os.path.isfile(os.path.realpath(c)):
            return os.path.realpath(c)
    return None


def main():
    n = sys.argv[1] if len(sys.argv) > 1 else "10000"
    exe = target()
    if not exe:
        print("gosym bench: skipped: no Go executable (install prometheus or golang-go)")
        return 0
    b = subprocess.run(["make", "-s", "build/bench/gosym_bench"], cwd=ROOT,
                       capture_output=True, text=True)
    if b.returncode:
        print("gosym bench: build failed:", b.stderr[-500:])
        return 1
    p = subprocess.run([os.path.join(ROOT, "build", "bench", "gosym_bench"), exe, n],
                       capture_output=True, text=True, timeout=300)
    if p.returncode or not p.stdout.startswith("{"):
        print("gosym bench: failed:", p.returncode, p.stderr[-500:])
        return 1
    r = json.loads(p.stdout)
    per = lambda ms: ms * 1e6 / max(r["pcs"], 1)  # noqa: E731
    append_section([
        "",
        "## Go symbolization (pclntab, no DWARF)",
        "",
        "%s (%s, %.1f MB, %d functions): %d distinct PCs, %d frames with "
        "the inlined ones; median of 5." % (r["file"], r["version"], r["size"] / 1e6,
                                            r["funcs"], r["pcs"], r["frames"]),
        "",
        "| step | time | per PC |",
        "|---|---:|---:|",
        "| open (buildinfo, pclntab header, .symtab) | %.2f ms | |" % r["open_ms"],
        "| gobin__frames, all PCs | %.2f ms | %.0f ns |" % (r["frames_ms"], per(r["frames_ms"])),
        "| symbolizer, first pass (opens the object) | %.2f ms | %.0f ns |" % (
            r["syms_cold_ms"], per(r["syms_cold_ms"])),
        "| symbolizer, second pass | %.2f ms | %.0f ns |" % (
            r["syms_warm_ms"], per(r["syms_warm_ms"])),
        "",
        "Stderr: %s" % (p.stderr.strip() or "none"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
