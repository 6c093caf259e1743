# SPDX-License-Identifier: GPL-2.0
"""Pre-OOM capture (dump.c) against real cgroup v1 memory limits.

Child cgroups are made only under the memory cgroup this test runs in
(mt-dump-<pid>-<n>) and always removed; nothing else is written.  Every
test checks that the workload is never left stopped."""
import glob
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time

from common import MEMTRACE, Skip, spawn, workload

GROW = workload("grow")
V1_ROOT = "/sys/fs/cgroup/memory"
MIB = 1 << 20
_seq = [0]


# ---- helpers -------------------------------------------------------------

def own_memcg():
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrl, path = line.rstrip("\n").split(":", 2)
            if "memory" in ctrl.split(","):
                d = V1_ROOT + path.rstrip("/")
                if os.path.isdir(d) and os.access(d, os.W_OK):
                    return d
    raise Skip("no writable cgroup v1 memory hierarchy for this process")


class Cgroup:
    def __init__(self, limit):
        self.parent = own_memcg()
        _seq[0] += 1
        self.dir = os.path.join(self.parent, f"mt-dump-{os.getpid()}-{_seq[0]}")
        os.mkdir(self.dir)
        with open(os.path.join(self.dir, "memory.limit_in_bytes"), "w") as f:
            f.write(str(limit))
        self.name = os.path.basename(self.dir)

    def pids(self):
        try:
            with open(os.path.join(self.dir, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def remove(self):
        if not os.path.isdir(self.dir):
            return
        deadline = time.time() + 10
        while self.pids() and time.time() < deadline:
            for pid in self.pids():
                for sig in (signal.SIGKILL, signal.SIGCONT):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            time.sleep(0.05)
        # stragglers go back to our own cgroup, never anywhere else
        for pid in self.pids():
            try:
                with open(os.path.join(self.parent, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            except OSError:
                pass
        for _ in range(50):
            try:
                os.rmdir(self.dir)
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("could not remove cgroup " + self.dir)


class Lines:
    """Drain a pipe in a thread: a full pipe would block memtrace."""

    def __init__(self, stream):
        self.lines = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.t.start()

    def _run(self, stream):
        for line in iter(stream.readline, b""):
            with self.lock:
                self.lines.append(line.decode(errors="replace"))

    def text(self):
        with self.lock:
            return "".join(self.lines)

    def wait_for(self, pattern, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {timeout}s; got:\n"
                             + self.text()[-3000:])


class Memtrace:
    def __init__(self, args, env=None):
        self.p = spawn([MEMTRACE, "--json", "-d", "0.2"] + args, env=env)
        self.out = Lines(self.p.stdout)
        self.err = Lines(self.p.stderr)

    def wait_probed(self, pid, timeout=20):
        # a row of pid saying it is probed: allocations from now on count
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.out.lock:
                lines = list(self.out.lines)
            for line in lines:
                if not line.startswith("{"):
                    continue
                doc = json.loads(line)
                for r in doc.get("processes", []):
                    if r["pid"] == pid and r.get("probed"):
                        return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("memtrace did not probe pid %d; stderr:\n%s"
                             % (pid, self.err.text()[-2000:]))


def dump_dir():
    d = tempfile.mkdtemp(prefix="mt-dump-")     # 0700, ours
    os.chmod(d, 0o700)
    return d


def start_grow(cg, *args):
    """The workload, in cg before its first allocation; waits for go()."""
    cmd = f"echo $$ > {cg.dir}/cgroup.procs && exec {GROW} --wait " + \
          " ".join(args)
    w = spawn(["sh", "-c", cmd], stdin=subprocess.PIPE)
    line = w.stdout.readline().decode()
    m = re.match(r"pid (\d+)", line)
    assert m, f"workload said {line!r}: {w.stderr.read().decode()}"
    pid = int(m.group(1))
    assert pid in cg.pids(), "workload not in its cgroup"
    return w, pid


def go(w):
    w.stdin.write(b"go\n")
    w.stdin.flush()


def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    st = s[s.rindex(")") + 2]
    return None if st in "ZX" else st


def assert_running(pid, secs=1.0):
    """Never stopped (T) or traced (t) during secs."""
    deadline = time.time() + secs
    while time.time() < deadline:
        st = state(pid)
        assert st not in ("T", "t"), f"pid {pid} left stopped (state {st})"
        time.sleep(0.02)


def wait_state(pid, pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred(state(pid)):
            return True
        time.sleep(0.01)
    return False


def artifacts(d, suffix=""):
    return sorted(x for x in glob.glob(os.path.join(d, "*" + suffix))
                  if os.path.isdir(x))


def wait_artifact(d, pid, files=("report.txt",), timeout=30, suffix=""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for a in artifacts(d, suffix):
            if f"-{pid}-" in os.path.basename(a) and all(
                    glob.glob(os.path.join(a, f)) for f in files):
                return a
        time.sleep(0.05)
    raise AssertionError(f"no artifact with {files} for pid {pid} in {d}: "
                         f"{os.listdir(d)}")


def no_tmp_left(d):
    left = [os.path.join(r, n) for r, ds, fs in os.walk(d)
            for n in ds + fs if n.startswith(".tmp-") or n.endswith(".tmp")]
    assert not left, f"temporary files left: {left}"


def fake_gcore(tmp, body):
    bindir = os.path.join(tmp, "bin")
    os.mkdir(bindir)
    path = os.path.join(bindir, "gcore")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, 0o755)
    env = dict(os.environ, PATH=bindir + ":/usr/bin:/bin")
    return env


def pprof_top(profile):
    if not shutil.which("go"):
        return None
    env = dict(os.environ, HOME=os.environ.get("HOME", "/root"))
    p = subprocess.run(["go", "tool", "pprof", "-top", "-sample_index=inuse_space",
                        "-unit=B", profile], capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout


# ---- tests ---------------------------------------------------------------

def test_dump_at_threshold():
    """--dump-at 80%: small artifact, then a complete core, while stopped."""
    cg = Cgroup(256 * MIB)
    d = dump_dir()
    try:
        # stops at 232 MiB (~91%): below the limit, so it must run on
        w, pid = start_grow(cg, "--step-mib", "4", "--interval-ms", "50",
                            "--max-mib", "232")
        mt = Memtrace(["-p", str(pid), "--dump-at", "80%", "--dump-dir", d])
        mt.wait_probed(pid)
        go(w)
        a = wait_artifact(d, pid, ("core.txt",), timeout=60)
        cores = glob.glob(os.path.join(a, f"core.{pid}"))
        assert cores, f"no core: {open(os.path.join(a, 'core.txt')).read()}" \
            f"\nstderr: {mt.err.text()}"
        assert_running(pid, 1.0)
        assert state(pid) is not None, "workload died"
        for f in ("report.txt", "heap.pb.gz", "row.json", "smaps_rollup",
                  "memory.stat", "memory.oom_control", "trigger.txt",
                  "gcore.log"):
            st = os.lstat(os.path.join(a, f))
            assert stat.S_ISREG(st.st_mode), f
            assert stat.S_IMODE(st.st_mode) == 0o600, \
                f"{f} mode {oct(st.st_mode)}"
        no_tmp_left(d)
        trig = open(os.path.join(a, "trigger.txt")).read()
        m = re.search(r"stopped_after_us: (\d+)", trig)
        assert m and int(m.group(1)) < 100000, trig
        m = re.search(r"usage: (\d+)\nlimit: (\d+)\nthreshold: (\d+)", trig)
        assert m and int(m.group(2)) == 256 * MIB, trig
        assert int(m.group(1)) >= int(m.group(3)), trig
        # usage when stopped: not far past 80% (no waiting for a refresh)
        assert int(m.group(1)) < 0.9 * 256 * MIB, trig
        report = open(os.path.join(a, "report.txt")).read()
        assert "grow_leak" in report and cg.name in report, report
        row = load_row(a)
        assert row["pid"] == pid and row["comm"] == "grow", row
        assert row["cgroup"] == cg.name and row["cg_limit"] == 256 * MIB \
            and row["cg_version"] == 1 and row["dumps"] == 1, row
        assert_same_schema(row, json_rows(mt, pid)[-1], "row.json")
        live = grow_site(row, 4)
        # the capture came at 80% of 256 MiB: the leak held most of it
        assert live >= 150 * MIB, live
        # the core is complete and shows where the workload was
        g = subprocess.run(["gdb", "-batch", "-ex", "thread apply all bt",
                            GROW, cores[0]], capture_output=True, text=True,
                           timeout=120)
        out = g.stdout + g.stderr
        assert "truncated" not in out and "main" in out, out
        assert "grow.c" in out, out
        size = os.path.getsize(cores[0])
        assert size > 150 * MIB, f"core of {size} bytes for ~200 MiB heap"
        top = pprof_top(os.path.join(a, "heap.pb.gz"))
        if top is not None:
            m = re.search(r"^\s*(\d+)B\s.*\sgrow_leak$", top, re.M)
            assert m and int(m.group(1)) >= 150 * MIB, top
        assert f"pid {pid}" in mt.err.text() and "core dump" in mt.err.text(), \
            mt.err.text()
        # --dump-max 1 (default): one capture only
        time.sleep(1)
        assert len(artifacts(d)) == 1, os.listdir(d)
    finally:
        cg.remove()
        shutil.rmtree(d, ignore_errors=True)


def test_dump_oom_postmortem():
    """An OOM kill with --dump-dir only: post-mortem and an "oom" event."""
    cg = Cgroup(64 * MIB)
    d = dump_dir()
    try:
        w, pid = start_grow(cg, "--step-mib", "2", "--interval-ms", "50")
        mt = Memtrace(["-p", str(pid), "--dump-dir", d])
        mt.wait_probed(pid)
        go(w)
        mt.out.wait_for(r'"type":"oom","pid":%d' % pid, 60)
        a = wait_artifact(d, pid, ("report.txt", "heap.pb.gz", "trigger.txt"),
                          timeout=30, suffix="-oom")
        report = open(os.path.join(a, "report.txt")).read()
        assert "OOM" in report and "grow_leak" in report, report
        assert os.path.exists(os.path.join(a, "memory.stat"))
        assert not glob.glob(os.path.join(a, "core*")), "no core after OOM"
        m = mt.err.wait_for(r"OOM kill of pid %d \(grow\) in (\S+); top "
                            r"growing site: grow_leak \(\+[\d.]+M/s\); "
                            r"post-mortem in (\S+)" % pid, 10)
        assert m.group(1) == cg.name, m.group(0)
        assert m.group(2) == a, (m.group(2), a)
        # the post-mortem's row and the --json "oom" event's row: the
        # schema of every --json row, the workload's truth
        ref = json_rows(mt, pid)[-1]
        row = load_row(a)
        assert row["pid"] == pid and row["cgroup"] == cg.name, row
        assert_same_schema(row, ref, "post-mortem row.json")
        grow_site(row, 2)
        with mt.out.lock:
            ev = [json.loads(l) for l in mt.out.lines
                  if '"type":"oom"' in l and '"pid":%d' % pid in l][0]
        assert ev["comm"] == "grow" and ev["row"]["pid"] == pid, ev
        assert_same_schema(ev["row"], ref, "oom event row")
        grow_site(ev["row"], 2)
        no_tmp_left(d)
        assert mt.p.poll() is None, "memtrace died"
    finally:
        cg.remove()
        shutil.rmtree(d, ignore_errors=True)


def json_rows(mt, pid):
    """Every --json row of pid memtrace printed so far, oldest first."""
    with mt.out.lock:
        lines = list(mt.out.lines)
    rows = []
    for line in lines:
        if not line.startswith("{"):
            continue
        doc = json.loads(line)
        rows += [r for r in doc.get("processes", []) if r["pid"] == pid]
    return rows


def load_row(a):
    """A capture's row.json: strict UTF-8, one JSON object."""
    with open(os.path.join(a, "row.json"), "rb") as f:
        return json.loads(f.read().decode("utf-8", errors="strict"))


def assert_same_schema(row, ref, what):
    """The one row schema: a capture's row has the --json row's keys
    (exit_code only once exited), at every level of its sites."""
    skip = {"exit_code"}
    assert set(row) - skip == set(ref) - skip, \
        f"{what}: keys differ from --json: {set(row) ^ set(ref)}"
    if row.get("sites") and ref.get("sites"):
        assert set(row["sites"][0]) == set(ref["sites"][0]), what
        assert set(row["sites"][0]["stack"][0]) - {"file", "line", "inlined"} \
            == set(ref["sites"][0]["stack"][0]) - {"file", "line", "inlined"}, what


def grow_site(row, step_mib):
    """The grow_leak sites (one stack may be walked two ways while its
    file's CFI compiles), checked against the workload's truth: every
    live block is one step.  Returns their live bytes."""
    ss = [x for x in row["sites"]
          if x["site"] == "grow_leak" and x["kind"] == "alloc"]
    assert ss, [(x["site"], x["kind"]) for x in row["sites"]]
    for s in ss:
        assert s["live_allocs"] > 0 and \
            s["live_bytes"] == s["live_allocs"] * step_mib * MIB, s
        assert s["alloc_bytes"] == s["allocs"] * step_mib * MIB, s
    live = sum(s["live_bytes"] for s in ss)
    assert row["live_bytes"] >= live, (row["live_bytes"], live)
    return live


def test_dump_row_schema_hostile_comm():
    """A process named with quotes, an escape sequence and a byte that is
    not UTF-8: its --json rows and its capture's row.json parse as strict
    UTF-8 JSON with the same keys, the name escaped and kept; no raw
    escape byte in the text report."""
    cg = Cgroup(256 * MIB)
    d = dump_dir()
    tmp = tempfile.mkdtemp(prefix="mt-evil-")
    evil = os.path.join(tmp.encode(), b'g"\\\x1b[31m\xffx')
    shutil.copy(GROW, evil)
    try:
        w = spawn(["sh", "-c", f"echo $$ > {cg.dir}/cgroup.procs && exec "
                   "\"$0\" --wait --step-mib 4 --interval-ms 50 --max-mib 40",
                   evil], stdin=subprocess.PIPE)
        pid = int(w.stdout.readline().split()[1])
        mt = Memtrace(["-p", str(pid), "--dump-at", "24M", "--dump-dir", d,
                       "--no-core"])
        mt.wait_probed(pid)
        go(w)
        a = wait_artifact(d, pid, ("row.json", "trigger.txt"), timeout=30)
        want = os.path.basename(evil)[:15].decode("latin-1")
        row = load_row(a)
        assert row["comm"] == want, (row["comm"], want)
        refs = json_rows(mt, pid)
        assert refs and refs[-1]["comm"] == want, refs[-1:]
        assert_same_schema(row, refs[-1], "row.json")
        grow_site(row, 4)
        # the row is a refresh's row (the trigger's): one --json printed
        deadline = time.time() + 10
        while not any(r["dumps"] for r in refs) and time.time() < deadline:
            time.sleep(0.1)
            refs = json_rows(mt, pid)
        assert row["live_bytes"] in [r["live_bytes"] for r in refs], \
            (row["live_bytes"], [r["live_bytes"] for r in refs])
        with open(os.path.join(a, "report.txt"), "rb") as f:
            report = f.read()
        assert b"\x1b" not in report and b"\xff" not in report, report[:300]
        assert b"\\x1b[31m" in report, report[:300]
        assert b"\x1b" not in os.path.basename(a).encode(), a
        no_tmp_left(d)
    finally:
        cg.remove()
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def small_cg_run(extra_args, env=None, dump_path=None, max_mib="56"):
    """64M cgroup, capture at 50%: returns (cg, d, w, pid, mt)."""
    cg = Cgroup(64 * MIB)
    d = dump_path or dump_dir()
    w, pid = start_grow(cg, "--step-mib", "2", "--interval-ms", "50",
                        "--max-mib", max_mib)
    mt = Memtrace(["-p", str(pid), "--dump-at", "50%", "--dump-dir", d]
                  + extra_args, env=env)
    mt.wait_probed(pid)
    go(w)
    return cg, d, w, pid, mt


def test_dump_disk_full():
    """Too little room for the core: skipped with a message, rest written."""
    mnt = tempfile.mkdtemp(prefix="mt-dump-tmpfs-")
    mounted = False
    cg = mt = None
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700",
                            "mt-dump-test", mnt], capture_output=True, text=True)
        if r.returncode:
            raise Skip("cannot mount tmpfs: " + r.stderr.strip())
        mounted = True
        cg, d, w, pid, mt = small_cg_run([], dump_path=mnt)
        m = mt.err.wait_for(r"pid %d: core skipped: needs ~(\S+), (\S+) free "
                            r"on %s" % (pid, re.escape(mnt)), 30)
        a = wait_artifact(mnt, pid, ("report.txt", "heap.pb.gz", "trigger.txt",
                                     "core.txt"))
        assert not glob.glob(os.path.join(a, "core.*[0-9]"))
        assert "core skipped" in open(os.path.join(a, "core.txt")).read()
        assert_running(pid, 0.5)
        assert state(pid) is not None
        no_tmp_left(mnt)
    finally:
        if mt:
            # it holds the dump dir open: the mount would stay busy
            mt.p.terminate()
            mt.p.wait(10)
        if cg:
            cg.remove()
        if mounted:
            if subprocess.run(["umount", mnt]).returncode:
                subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(mnt, ignore_errors=True)


def test_dump_gcore_missing():
    """No gcore on PATH: clear message, small artifact, process resumed."""
    tmp = tempfile.mkdtemp(prefix="mt-dump-")
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    cg = None
    try:
        env = dict(os.environ, PATH=empty)
        cg, d, w, pid, mt = small_cg_run([], env=env,
                                         dump_path=os.path.join(tmp, "d"))
        mt.err.wait_for(r"warning: gcore not found in PATH", 5)
        mt.err.wait_for(r"pid %d: core skipped: gcore not found in PATH "
                        r"\(install gdb\)" % pid, 30)
        wait_artifact(d, pid, ("report.txt", "heap.pb.gz", "core.txt"))
        assert_running(pid, 0.5)
        assert state(pid) is not None
        no_tmp_left(d)
    finally:
        if cg:
            cg.remove()
        shutil.rmtree(tmp, ignore_errors=True)


def stuck_in_gcore(tmp, extra=()):
    """A capture whose gcore (a fake one) hangs: the target is stopped,
    the small artifact written.  Returns cg, d, w, pid, mt."""
    env = fake_gcore(tmp, f"echo $$ > {tmp}/fake.pid\nexec sleep 60")
    cg, d, w, pid, mt = small_cg_run(list(extra), env=env,
                                     dump_path=os.path.join(tmp, "d"))
    wait_artifact(d, pid)
    assert wait_state(pid, lambda s: s == "T", 5), "not stopped for gcore"
    # gcore starts after the small artifact: on a busy machine the fake
    # may not have written its pid yet when the test goes on
    path = os.path.join(tmp, "fake.pid")
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            if open(path).read().strip().isdigit():
                break
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    else:
        raise AssertionError("the fake gcore did not start in 5 s")
    return cg, d, w, pid, mt


def test_dump_gcore_hangs():
    """gcore hangs: killed after --gcore-timeout, process resumed."""
    tmp = tempfile.mkdtemp(prefix="mt-dump-")
    cg = None
    try:
        cg, d, w, pid, mt = stuck_in_gcore(tmp, ["--gcore-timeout", "1"])
        t0 = time.time()
        mt.err.wait_for(r"pid %d: core failed: gcore timed out after 1 s and "
                        r"was killed; process resumed" % pid, 10)
        assert wait_state(pid, lambda s: s not in ("T", "t"), 2)
        assert time.time() - t0 < 3
        assert_running(pid, 0.5)
        fake = int(open(os.path.join(tmp, "fake.pid")).read())
        assert wait_state(fake, lambda s: s is None, 2), "gcore not killed"
        no_tmp_left(d)
        assert mt.p.poll() is None
    finally:
        if cg:
            cg.remove()
        shutil.rmtree(tmp, ignore_errors=True)


def test_dump_target_exits_mid_dump():
    """The target dies while gcore runs: message, no crash, gcore reaped."""
    tmp = tempfile.mkdtemp(prefix="mt-dump-")
    cg = None
    try:
        cg, d, w, pid, mt = stuck_in_gcore(tmp)
        os.kill(pid, signal.SIGKILL)
        mt.err.wait_for(r"pid %d: core failed: the process exited during "
                        r"the dump" % pid, 10)
        fake = int(open(os.path.join(tmp, "fake.pid")).read())
        assert wait_state(fake, lambda s: s is None, 2), "gcore not killed"
        time.sleep(0.5)
        assert mt.p.poll() is None, "memtrace died: " + mt.err.text()
        no_tmp_left(d)
    finally:
        if cg:
            cg.remove()
        shutil.rmtree(tmp, ignore_errors=True)


def test_dump_memtrace_killed_mid_dump():
    """SIGKILL memtrace while gcore runs: the watchdog resumes the target."""
    tmp = tempfile.mkdtemp(prefix="mt-dump-")
    cg = None
    try:
        cg, d, w, pid, mt = stuck_in_gcore(tmp)
        mt.p.kill()
        t0 = time.time()
        assert wait_state(pid, lambda s: s not in ("T", "t"), 1.0), \
            f"still stopped {time.time() - t0:.1f}s after memtrace died"
        assert_running(pid, 0.5)
        fake = int(open(os.path.join(tmp, "fake.pid")).read())
        assert wait_state(fake, lambda s: s is None, 2), "gcore not killed"
        mt.p.wait(5)
        mt.err.wait_for(r"memtrace-hold: memtrace died during the dump of pid "
                        r"%d; resumed it" % pid, 2)
    finally:
        if cg:
            cg.remove()
        shutil.rmtree(tmp, ignore_errors=True)


def test_dump_dir_refused():
    """A symlink or a group/other-writable dump dir is refused at start."""
    tmp = tempfile.mkdtemp(prefix="mt-dump-")
    w = spawn(["sleep", "30"])
    try:
        real = os.path.join(tmp, "real")
        os.mkdir(real, 0o700)
        link = os.path.join(tmp, "link")
        os.symlink(real, link)
        loose = os.path.join(tmp, "loose")
        os.mkdir(loose)
        os.chmod(loose, 0o777)
        for dd, want in ((link, "is a symlink"), (link + "/", "is a symlink"),
                         (loose, "writable by group or others")):
            p = subprocess.run([MEMTRACE, "--json", "-n", "1", "-p", str(w.pid),
                                "--dump-dir", dd], capture_output=True,
                               text=True, timeout=30)
            assert p.returncode != 0, (dd, p.stderr)
            assert want in p.stderr, (dd, p.stderr)
        assert not os.listdir(real) and not os.listdir(loose)
        # a missing one is created 0700
        new = os.path.join(tmp, "new")
        p = subprocess.run([MEMTRACE, "--json", "-n", "1", "-p", str(w.pid),
                            "--dump-dir", new], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, p.stderr
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o700
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_dump_now_cli():
    """memtrace dump PID: immediate capture with core, empty heap profile."""
    base = "/var/lib/memtrace"
    existed = os.path.isdir(base)
    w = spawn([GROW, "--max-mib", "8"])
    pid = int(w.stdout.readline().split()[1])
    created = []
    try:
        time.sleep(0.3)
        before = set(os.listdir(base)) if existed else set()
        p = subprocess.run([MEMTRACE, "dump", str(pid)], capture_output=True,
                           text=True, timeout=120)
        after = set(os.listdir(base))
        created = [os.path.join(base, x) for x in after - before]
        assert p.returncode == 0, p.stderr
        arts = [a for a in created if f"-{pid}-" in a]
        assert len(arts) == 1, (created, p.stderr)
        a = arts[0]
        assert os.path.exists(os.path.join(a, f"core.{pid}")), p.stderr
        report = open(os.path.join(a, "report.txt")).read()
        assert "heap profile is empty" in report, report
        assert "on demand" in report, report
        assert_running(pid, 0.5)
        no_tmp_left(a)
    finally:
        for a in created:
            shutil.rmtree(a, ignore_errors=True)
        if not existed:
            shutil.rmtree(base, ignore_errors=True)


def test_dump_at_pct_without_limit_warns():
    """A cgroup with no limit: --dump-at PCT% says it cannot trigger."""
    d = dump_dir()
    sleeper = spawn(["sleep", "30"])
    try:
        with open(f"/proc/{sleeper.pid}/cgroup") as f:
            line = [l for l in f if ":memory:" in l]
        if line:
            path = V1_ROOT + line[0].rstrip("\n").split(":", 2)[2]
            if int(open(os.path.join(path, "memory.limit_in_bytes")).read()) < (1 << 62):
                raise Skip("this test's cgroup has a limit")
        p = subprocess.run([MEMTRACE, "-b", "-n", "2", "-d", "0.2", "-p",
                            str(sleeper.pid), "--dump-at", "80%", "--dump-dir", d],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert "has no memory limit: --dump-at 80% cannot trigger" in p.stderr, p.stderr
        assert p.stderr.count("has no memory limit") == 1, p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


TESTS = [
    ("dump_at_threshold", test_dump_at_threshold),
    ("dump_oom_postmortem", test_dump_oom_postmortem),
    ("dump_row_schema_hostile_comm", test_dump_row_schema_hostile_comm),
    ("dump_disk_full", test_dump_disk_full),
    ("dump_gcore_missing", test_dump_gcore_missing),
    ("dump_gcore_hangs", test_dump_gcore_hangs),
    ("dump_target_exits_mid_dump", test_dump_target_exits_mid_dump),
    ("dump_memtrace_killed_mid_dump", test_dump_memtrace_killed_mid_dump),
    ("dump_dir_refused", test_dump_dir_refused),
    ("dump_now_cli", test_dump_now_cli),
    ("dump_at_pct_without_limit_warns", test_dump_at_pct_without_limit_warns),
]
