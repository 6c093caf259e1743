# SPDX-License-Identifier: GPL-2.0
"""Process lifecycle and the correctness of memtrace's own edges: the
command it runs, pid reuse, the files it writes, its limits (issue 11)."""
import os
import subprocess
import tempfile

from common import (MEMTRACE, Skip, finish, load_truth, memtrace_json, row,
                    wait_row, workload)


def tmpfile(name):
    return os.path.join(tempfile.mkdtemp(prefix="mt-lc-"), name)


def test_cmd_gets_default_signals():
    """-- CMD runs as it would without memtrace: SIGPIPE is not left
    ignored (yes would print "Broken pipe") and the signal mask is the
    one memtrace was started with."""
    p = subprocess.run([MEMTRACE, "-b", "-d", "5", "--", "sh", "-c", "yes | head -1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert "Broken pipe" not in p.stderr, p.stderr
    # SIGPIPE ignored when memtrace starts stays ignored in the command
    p = subprocess.run(["sh", "-c", f"trap '' PIPE; exec {MEMTRACE} -b -d 5 -- "
                        "sh -c 'yes | head -1'"],
                       capture_output=True, text=True, timeout=60)
    assert "Broken pipe" in p.stderr, p.stderr
    # nothing blocked in the command (SigBlk of its /proc status)
    p = subprocess.run([MEMTRACE, "-b", "-d", "5", "--", "grep", "^SigBlk",
                        "/proc/self/status"], capture_output=True, text=True, timeout=60)
    assert "SigBlk:\t0000000000000000" in p.stdout, p.stdout[:500]


def test_zero_iterations_refused():
    """--help says -n N stops after N refreshes: -n 0 used to run forever;
    it is refused, with what to do instead."""
    p = subprocess.run([MEMTRACE, "-b", "-n", "0", "--", "true"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "memtrace: -n: want 1 or more" in p.stderr, p.stderr


def test_reused_pid_stays_traced():
    """A pid reused after its process exited is a new process: it is
    traced, shown and counted exactly, even after the old process's row
    expires (that expiry used to delete the kernel entry by bare pid,
    i.e. the new process's, and it silently stopped being traced)."""
    truth_path = tmpfile("truth.json")
    p = memtrace_json(["-d", "0.2", "--", workload("pidreuse"), "--truth", truth_path,
                       "--wait", "1.5"], stdin=subprocess.PIPE)
    truth = load_truth(truth_path, timeout=20)
    if not truth["reused"]:
        raise Skip(f"could not get the same pid again in {truth['tries']} tries")
    r, _ = wait_row(p, truth["pid"], lambda r: r["allocs"] >= truth["allocs"]
                    and not r["exited"], timeout=10)
    for k in ("live_bytes", "live_allocs", "allocs"):
        assert r[k] == truth[k], f"{k}: memtrace {r[k]} != truth {truth[k]}; {r}"
    p.stdin.close()
    p.stdin = None
    code, docs, err = finish(p)
    assert code == 0, err


TESTS = [(n[len("test_"):], f) for n, f in list(globals().items())
         if n.startswith("test_") and callable(f)]
