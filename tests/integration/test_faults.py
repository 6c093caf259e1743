# SPDX-License-Identifier: GPL-2.0
"""Fault injection for captures (issue 15), one named scenario at a time.

Like retsnoop's simfail: SCENARIOS is a table of (name, what it does,
function); `tests/run.py --list -k faults` lists them and
`tests/run.py -k faults.NAME` runs one.  After every scenario that
touches a target: it runs (state not t/T) within 2 s, no partial file
remains in the dump directory, and memtrace's exit code and message are
the ones promised.

Cgroups are made only under this test's own v1 memory cgroup
(mt-flt-<pid>-<n>...) and removed; processes are ours, found by pid."""
import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from common import MEMTRACE, Skip, spawn, workload
from test_dump import (MIB, Lines, Memtrace, artifacts, dump_dir, go,
                       own_memcg, state, wait_artifact)

GROW = workload("grow")
_seq = [0]


# ---- helpers -------------------------------------------------------------

class NamedCgroup:
    """A v1 memory cgroup under our own, with a name of the test's choice
    (bytes: hostile names are the point)."""

    def __init__(self, suffix=b"", limit=None):
        parent = own_memcg()
        _seq[0] += 1
        self.parent = parent.encode()
        self.name = b"mt-flt-%d-%d" % (os.getpid(), _seq[0]) + suffix
        self.dir = os.path.join(self.parent, self.name)
        os.mkdir(self.dir)
        if limit:
            with open(os.path.join(self.dir, b"memory.limit_in_bytes"), "w") as f:
                f.write(str(limit))

    def pids(self):
        try:
            with open(os.path.join(self.dir, b"cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def add(self, pid):
        with open(os.path.join(self.dir, b"cgroup.procs"), "w") as f:
            f.write(str(pid))

    def remove(self):
        deadline = time.time() + 10
        while self.pids() and time.time() < deadline:
            for pid in self.pids():
                for sig in (9, 18):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            time.sleep(0.05)
        for _ in range(50):
            try:
                os.rmdir(self.dir)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)


def start_target(mib, cg=None, argv0=None):
    """grow with mib MiB touched at once, then asleep; returns (proc, pid)
    once the memory is there."""
    args = [argv0 or GROW, "--step-mib", str(mib), "--max-mib", str(mib),
            "--interval-ms", "20"]
    w = spawn(args, executable=GROW if argv0 else None) if not cg else None
    if cg:
        w = spawn(["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"',
                   cg.dir] + args)
    line = w.stdout.readline().decode()
    m = re.match(r"pid (\d+)", line)
    assert m, f"workload said {line!r}"
    pid = int(m.group(1))
    want = mib * MIB * 0.9
    deadline = time.time() + 30
    while time.time() < deadline:
        with open(f"/proc/{pid}/status") as f:
            rss = re.search(r"VmRSS:\s+(\d+) kB", f.read())
        if rss and int(rss.group(1)) * 1024 >= want:
            return w, pid
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} did not reach {mib} MiB")


def assert_resumed(pid, within=2.0):
    """The target is alive and neither stopped nor traced within 2 s,
    and stays so for a moment."""
    deadline = time.time() + within
    st = state(pid)
    while st in ("T", "t") and time.time() < deadline:
        time.sleep(0.01)
        st = state(pid)
    assert st not in ("T", "t"), f"pid {pid} still in state {st} after {within}s"
    for _ in range(25):
        st = state(pid)
        assert st not in ("T", "t"), f"pid {pid} stopped again (state {st})"
        time.sleep(0.02)


def no_partial(d):
    left = [os.path.join(r, n) for r, ds, fs in os.walk(d)
            for n in ds + fs if n.startswith(".tmp-") or n.endswith(".tmp")]
    assert not left, f"partial files left: {left}"


def run_bad(args, pattern, code=2):
    p = subprocess.run([MEMTRACE] + args, capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == code, f"{args}: exit {p.returncode}: {p.stderr}"
    assert re.search(pattern, p.stderr), f"{args}: {p.stderr!r}"
    assert p.stderr.count("\n") <= 2, f"{args}: {p.stderr!r}"


RAW = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f\xff]|\xc2[\x80-\x9f]")


def assert_escaped(what, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    m = RAW.search(data)
    assert not m, f"{what}: raw byte {m.group(0)!r} at {m.start()}: " \
        f"{data[max(0, m.start() - 60):m.start() + 20]!r}"


# ---- bad options ---------------------------------------------------------

def bad_option(args, pattern):
    return lambda: run_bad(args, pattern)


OPTION_CASES = [
    ("opt_hot_blocks_wrap", ["--hot-blocks", str(3 << 62)], r"--hot-blocks: want 1\.\.\d+, got"),
    ("opt_max_blocks_wrap", ["--max-blocks", str(3 << 62)], r"--max-blocks: want 1024\.\.\d+, got"),
    ("opt_max_blocks_u32", ["--max-blocks", str(1 << 32)], r"--max-blocks: want 1024\.\.\d+, got"),
    ("opt_iterations_2p63", ["-n", str(1 << 63)], r"-n: want 1\.\.9223372036854775807, got"),
    ("opt_iterations_2p64", ["-n", str(1 << 64)], r"-n: want 1\.\."),
    ("opt_dump_at_1e99", ["--dump-at", "1e99"], r"--dump-at: want PCT% \(1-100\) or a size"),
    ("opt_dump_at_inf", ["--dump-at", "inf"], r"--dump-at: want PCT%"),
    ("opt_dump_at_half_byte", ["--dump-at", "0.5"], r"--dump-at: want PCT%"),
    ("opt_dump_at_tiny_pct", ["--dump-at", "1e-300%"], r"--dump-at: want PCT% \(1-100\)"),
    ("opt_dump_at_nan_pct", ["--dump-at", "nan%"], r"--dump-at: want PCT%"),
    ("opt_pid_comma", ["-p", ","], r"-p: want PID\[,PID\.\.\.\], got ','"),
    ("opt_pid_empty_item", ["-p", "1,,2"], r"-p: want PID"),
    ("opt_pid_huge", ["-p", str(1 << 40)], r"-p: want 1\.\.2147483647"),
    ("opt_delay_inf", ["-d", "inf"], r"-d: want seconds from 0\.05"),
    ("opt_gcore_timeout_nan", ["--gcore-timeout", "nan"], r"--gcore-timeout: want seconds"),
    ("opt_ringbuf_huge", ["--ringbuf-mb", str(1 << 64)], r"--ringbuf-mb: want 1\.\.1024"),
    ("opt_dump_negative_pid", ["dump", "-5"], r"usage: memtrace dump|invalid option"),
]


def test_bad_btf():
    """A damaged kernel BTF (bind-mounted over, in a private mount
    namespace) is named as such, not "No such process"."""
    tmp = tempfile.mkdtemp(prefix="mt-flt-")
    try:
        bad = os.path.join(tmp, "vmlinux")
        with open(bad, "wb") as f:
            f.write(b"\x9f\xeb\x01\x00garbage" * 16)
        p = subprocess.run(["unshare", "-m", "sh", "-c",
                            'mount --bind "$0" /sys/kernel/btf/vmlinux && '
                            'exec "$1" -b -n 1 -p 1', bad, MEMTRACE],
                           capture_output=True, text=True, timeout=20)
        if "unshare" in p.stderr and p.returncode and "memtrace" not in p.stderr:
            raise Skip("no mount namespace: " + p.stderr.strip())
        assert p.returncode == 1, p.stderr
        assert "kernel BTF /sys/kernel/btf/vmlinux cannot be parsed" in p.stderr, p.stderr
        assert "No such process" not in p.stderr, p.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- hostile names -------------------------------------------------------

HOSTILE = b"-er6\x1b]0;T\x07\\\xff\xc2\x9bx"


def test_hostile_names():
    """A cgroup and a process named with escape sequences, BEL, a
    backslash, invalid UTF-8 and a C1 control: every output escapes them
    (stderr, report.txt, trigger.txt, row.json as valid JSON, the pprof
    comm label)."""
    cg = NamedCgroup(HOSTILE, limit=64 * MIB)
    tmp = tempfile.mkdtemp(prefix="mt-flt-")
    d = os.path.join(tmp, "d")
    try:
        # the process name comes from the file it runs: a hostile link
        link = os.path.join(tmp.encode(), b"g\x1b[31m\x07\xff")
        os.symlink(GROW, link)
        cmd = b'echo $$ > "$0/cgroup.procs" && exec "$1" --wait --step-mib 2 ' \
              b'--interval-ms 50 --max-mib 48'
        w = spawn([b"sh", b"-c", cmd, cg.dir, link], stdin=subprocess.PIPE)
        pid = int(w.stdout.readline().split()[1])
        mt = Memtrace(["-p", str(pid), "--dump-at", "50%", "--dump-dir", d,
                       "--no-core"])
        mt.wait_probed(pid)
        go(w)
        a = wait_artifact(d, pid, ("report.txt", "trigger.txt", "row.json",
                                   "heap.pb.gz"), timeout=30)
        time.sleep(0.5)
        mt.p.terminate()
        mt.p.wait(10)
        err = b"".join(l.encode("utf-8", "surrogateescape")
                       for l in mt.err.lines)
        assert b"capture in" in err, err
        assert_escaped("stderr", err)
        assert b"\\x1b]0;T\\x07" in err, err
        for f in ("report.txt", "trigger.txt"):
            data = open(os.path.join(a, f), "rb").read()
            assert_escaped(f, data)
            assert b"\\x1b]0;T\\x07" in data, (f, data)
        row = open(os.path.join(a, "row.json"), "rb").read()
        assert_escaped("row.json", row)
        doc = json.loads(row)
        assert doc["cgroup"].encode("utf-8", "surrogateescape").startswith(b"mt-flt-"), doc["cgroup"]
        assert "\x1b" in doc["cgroup"], "JSON keeps the real name, escaped"
        pb = gzip.decompress(open(os.path.join(a, "heap.pb.gz"), "rb").read())
        assert b"g\\x1b[31m\\x07\\xff" in pb, "comm label not escaped"
        assert b"\x1b" not in pb, "raw escape in the profile"
        out = "".join(mt.out.lines)
        assert_escaped("JSON view", out.encode("utf-8", "surrogateescape"))
        no_partial(d)
    finally:
        cg.remove()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- the table -----------------------------------------------------------

SCENARIOS = [(n, f"memtrace {' '.join(a)}: refused, clear message",
              bad_option(a, p)) for n, a, p in OPTION_CASES] + [
    ("bad_btf", test_bad_btf.__doc__.split("\n")[0], test_bad_btf),
    ("hostile_names", test_hostile_names.__doc__.split("\n")[0], test_hostile_names),
]

TESTS = [(name, fn) for name, _, fn in SCENARIOS]
