#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""memtrace test runner: unit binaries, then integration modules.

Unit tests are C binaries (build/tests/test_*) that print "ok"/"not ok"
lines and close with "N passed, N failed"; integration tests are Python
modules (tests/integration/test_*.py) exposing TESTS = [(name, fn)].
The last line printed is the total: "N passed, N failed, N skipped".

  tests/run.py [--unit|--integration] [-k SUBSTRING] [--list]
"""
import argparse
import glob
import importlib.util
import os
import re
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import common  # noqa: E402


def run_unit(args, tally):
    for binary in sorted(glob.glob(os.path.join(ROOT, "build", "tests", "test_*"))):
        name = os.path.basename(binary)
        if args.k and args.k not in name:
            continue
        t0 = time.time()
        p = subprocess.run([binary], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
        m = None
        for line in p.stdout.splitlines():
            mm = re.match(r"^(\d+) passed, (\d+) failed", line)
            if mm:
                m = mm
        if not m:
            tally["failed"] += 1
            print(f"FAIL unit/{name}: no summary line (exit {p.returncode})")
            print(p.stdout[-2000:], p.stderr[-2000:])
            continue
        passed, failed = int(m.group(1)), int(m.group(2))
        if p.returncode and not failed:
            failed = 1
        tally["passed"] += passed
        tally["failed"] += failed
        status = "ok  " if not failed else "FAIL"
        print(f"{status} unit/{name}: {passed} passed, {failed} failed "
              f"({time.time() - t0:.1f}s)")
        if failed:
            for line in p.stdout.splitlines():
                if line.startswith("not ok") or line.startswith("    "):
                    print("     " + line)
            print(p.stderr[-2000:])


def load_modules():
    mods = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods.append((name, mod))
    return mods


def run_integration(args, tally):
    if os.geteuid() != 0 and not args.list:
        # not one quiet "skipped": the suite is most of what is tested
        n = len([1 for modname, mod in load_modules()
                 for name, _ in getattr(mod, "TESTS", [])
                 if not args.k or args.k in f"{modname}.{name}"])
        tally["not_run"] = n
        if not n:
            return
        bar = "#" * 72
        print(f"{bar}\n# INTEGRATION TESTS NOT RUN: {n} tests need root (they load BPF\n"
              f"# programs).  Only the unit tests ran.  Run `sudo make test`.\n{bar}")
        return
    for modname, mod in load_modules():
        for name, fn in getattr(mod, "TESTS", []):
            full = f"{modname}.{name}"
            if args.k and args.k not in full:
                continue
            if args.list:
                print(full)
                continue
            t0 = time.time()
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                if type(e).__name__ == "Skip":
                    tally["skipped"] += 1
                    print(f"skip {full}: {e}")
                    continue
                tally["failed"] += 1
                print(f"FAIL {full} ({time.time() - t0:.1f}s)")
                print("     " + "".join(traceback.format_exception_only(type(e), e)).strip()
                      .replace("\n", "\n     "))
                if os.environ.get("MT_TEST_VERBOSE"):
                    traceback.print_exc()
                continue
            finally:
                common.cleanup()
            tally["passed"] += 1
            print(f"ok   {full} ({time.time() - t0:.1f}s)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unit", action="store_true")
    ap.add_argument("--integration", action="store_true")
    ap.add_argument("-k", help="run tests whose name contains this")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    both = not args.unit and not args.integration
    tally = {"passed": 0, "failed": 0, "skipped": 0}
    if (args.unit or both) and not args.list:
        run_unit(args, tally)
    if args.integration or both:
        run_integration(args, tally)
    if tally.get("not_run"):
        print(f"NOT RUN: {tally['not_run']} integration tests (not root)")
    print(f"{tally['passed']} passed, {tally['failed']} failed, "
          f"{tally['skipped']} skipped")
    return 1 if tally["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
