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
from test_dump import (MIB, Lines, Memtrace, dump_dir, go, own_memcg, state,
                       wait_artifact, wait_state)

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


SANITIZER = re.compile(r"Sanitizer|runtime error:")


def assert_clean(err):
    """No ASan/UBSan report (make check-asan runs this suite so)."""
    m = SANITIZER.search(err)
    assert not m, "sanitizer report:\n" + err[max(0, m.start() - 200):][:4000]


def run_bad(args, pattern, code=2):
    p = subprocess.run([MEMTRACE] + args, capture_output=True, text=True,
                       timeout=20)
    assert_clean(p.stderr)
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
        assert_clean(p.stderr)
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
        assert_clean(mt.err.text())
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
        # protobuf lengths and varints may be byte 27: look for the names
        assert b"\x1b[31m" not in pb and b"\x1b]0;T" not in pb, "raw escape in the profile"
        out = "".join(mt.out.lines)
        assert_escaped("JSON view", out.encode("utf-8", "surrogateescape"))
        no_partial(d)
    finally:
        cg.remove()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- kills and signals mid-capture ------------------------------------

BIG_MIB = int(os.environ.get("MT_FAULT_MIB", "600"))   # core takes seconds


def status_field(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            m = re.search(r"^%s:\s+(\d+)" % key, f.read(), re.M)
    except OSError:
        return 0
    return int(m.group(1)) if m else 0


class Dump:
    """memtrace dump PID in a session of its own (so its process group
    can be killed without the test's), stderr collected."""

    def __init__(self, pid, d, *extra, env=None):
        self.pid, self.d = pid, d
        self.p = spawn([MEMTRACE, "dump", "--dump-dir", d, *extra, str(pid)],
                       start_new_session=True, env=env)
        self.err = Lines(self.p.stderr)

    def wait_core_running(self, min_bytes=0, timeout=30):
        """gdb holds the target and the partial core has min_bytes."""
        self.err.wait_for(r"core dump following", timeout)
        deadline = time.time() + timeout
        while time.time() < deadline:
            tracer = status_field(self.pid, "TracerPid")
            part = glob.glob(os.path.join(self.d, "*", f".tmp-*-core.{self.pid}"))
            size = os.path.getsize(part[0]) if part else 0
            if tracer and tracer != self.p.pid and size >= min_bytes:
                return tracer
            if self.p.poll() is not None:
                break
            time.sleep(0.005)
        raise AssertionError("gdb never held the target with a core of "
                             f"{min_bytes} bytes; stderr:\n{self.err.text()}")

    def finish(self, timeout=20):
        rc = self.p.wait(timeout)
        self.err.t.join(5)
        assert_clean(self.err.text())
        return rc, self.err.text()


def helpers_of(tracer):
    """gdb (the target's tracer), the gcore script, the watchdog."""
    gcore = status_field(tracer, "PPid")
    wd = status_field(gcore, "PPid")
    with open(f"/proc/{wd}/comm") as f:
        assert f.read().strip() == "memtrace-hold", "not our watchdog"
    return {"gdb": tracer, "gcore": gcore, "watchdog": wd}


def gone(pid, timeout=3.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if state(pid) is None:
            return True
        time.sleep(0.01)
    return False


def kill_scenario(who, sig=9, at_bytes=0):
    """A capture of a BIG_MIB process; once gdb holds it and the core has
    at_bytes, kill `who`: the target runs within 2 s, no partial file is
    left, memtrace's exit code and message say what happened."""
    def run():
        d = dump_dir()
        try:
            w, pid = start_target(BIG_MIB)
            mt = Dump(pid, d)
            tracer = mt.wait_core_running(at_bytes)
            h = helpers_of(tracer)
            if who == "memtrace":
                os.kill(mt.p.pid, sig)
            elif who == "pgroup":
                os.killpg(mt.p.pid, sig)
            else:
                os.kill(h[who], sig)
            assert_resumed(pid)
            rc, err = mt.finish()
            for k in ("gdb", "gcore", "watchdog"):
                assert gone(h[k]), f"{k} (pid {h[k]}) still runs"
            assert state(pid) not in ("T", "t", None)
            no_partial(d)
            if who in ("memtrace", "pgroup") and sig == 9:
                assert rc == -9, rc
                assert re.search(r"memtrace-hold: memtrace died during the "
                                 r"dump of pid %d; resumed it" % pid, err), err
                assert glob.glob(os.path.join(d, "*", "gcore.log")), \
                    os.listdir(d)
                return
            assert rc == 1, f"exit {rc}: {err}"
            want = {
                "memtrace": r"core cancelled by signal %d; process resumed" % sig,
                "gdb": r"core failed: (gcore exited \d+|gcore wrote no core|core\.\d+ "
                   r"is truncated or not an ELF core)",
                "gcore": r"core failed: gcore killed by signal 9",
                "watchdog": r"core failed: memtrace's watchdog died; gcore "
                            r"killed, process resumed",
            }[who]
            assert re.search(r"pid %d: (%s)" % (pid, want), err), err
            assert not glob.glob(os.path.join(d, "*", f"core.{pid}")), \
                "a core from a killed capture"
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return run


def test_target_exits_mid_core():
    """The target is SIGKILLed while gdb writes its core: memtrace says so,
    exits 1, and leaves no partial core."""
    d = dump_dir()
    try:
        w, pid = start_target(BIG_MIB)
        mt = Dump(pid, d)
        tracer = mt.wait_core_running(64 * MIB)
        h = helpers_of(tracer)
        os.kill(pid, 9)
        rc, err = mt.finish()
        assert rc == 1, f"exit {rc}: {err}"
        assert re.search(r"pid %d: core failed: (the process exited during "
                         r"the dump|gcore)" % pid, err), err
        for k in h:
            assert gone(h[k]), k
        no_partial(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_stale_partials_removed():
    """Partial files of a memtrace that was SIGKILLed (its pid is dead) are
    removed when the dump directory is next opened; a live one's are kept."""
    d = dump_dir()
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        live = os.getpid()
        os.mkdir(os.path.join(d, f".tmp-{dead.pid}-20260101T000000Z-1-x-y"))
        open(os.path.join(d, f".tmp-{dead.pid}-20260101T000000Z-1-x-y",
                          "report.txt"), "w").close()
        art = os.path.join(d, "20260101T000000Z-2-x-y")
        os.mkdir(art)
        open(os.path.join(art, f".tmp-{dead.pid}-core.2"), "w").close()
        open(os.path.join(art, f".tmp-{live}-core.2"), "w").close()
        w, pid = start_target(8)
        rc, err = Dump(pid, d, "--no-core").finish(30)
        assert rc == 0, err
        assert "removed 2 partial files of captures whose memtrace died" in err, err
        names = os.listdir(d) + os.listdir(art)
        assert not [n for n in names if f".tmp-{dead.pid}-" in n], names
        assert f".tmp-{live}-core.2" in os.listdir(art), "a live pid's file"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_not_itself():
    """memtrace dump of memtrace's own pid: refused, nothing stopped."""
    d = dump_dir()
    try:
        p = subprocess.run(["sh", "-c", 'exec "$0" dump --dump-dir "$1" $$',
                            MEMTRACE, d], capture_output=True, text=True,
                           timeout=30)
        assert_clean(p.stderr)
        assert p.returncode == 1, p.stderr
        assert re.search(r"pid \d+: not captured: it is memtrace itself",
                         p.stderr), p.stderr
        assert not os.listdir(d), os.listdir(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_kernel_thread():
    """A kernel thread (kthreadd, pid 2 when it is one): ptrace's EPERM,
    said as such; no capture directory."""
    try:
        with open("/proc/2/stat") as f:
            if "(kthreadd)" not in f.read():
                raise Skip("pid 2 is not kthreadd here")
    except OSError:
        raise Skip("no pid 2 in this pid namespace")
    d = dump_dir()
    try:
        p = subprocess.run([MEMTRACE, "dump", "--dump-dir", d, "2"],
                           capture_output=True, text=True, timeout=30)
        assert_clean(p.stderr)
        assert p.returncode == 1, p.stderr
        assert "pid 2 (kthreadd): cannot hold it still for a capture: it is " \
            "a kernel thread, with no user memory (ptrace: Operation not " \
            "permitted)" in p.stderr, p.stderr
        assert not os.listdir(d), os.listdir(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Tmpfs:
    def __init__(self, opts):
        self.mnt = tempfile.mkdtemp(prefix="mt-flt-tmpfs-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700," + opts,
                            "mt-flt", self.mnt], capture_output=True, text=True)
        if r.returncode:
            os.rmdir(self.mnt)
            raise Skip("cannot mount tmpfs: " + r.stderr.strip())

    def close(self):
        if subprocess.run(["umount", self.mnt]).returncode:
            subprocess.run(["umount", "-l", self.mnt])
        shutil.rmtree(self.mnt, ignore_errors=True)


def test_full_tmpfs():
    """A dump directory with no room: no capture directory at all, a
    message that says so, exit 1, the target never stopped."""
    fs = Tmpfs("size=256k")
    try:
        w, pid = start_target(16)
        rc, err = Dump(pid, fs.mnt).finish(30)
        assert rc == 1, err
        assert re.search(r"pid %d: no capture: %s has \S+ free, a capture "
                         r"needs 1 MiB besides the core" % (pid, re.escape(fs.mnt)),
                         err), err
        assert "small artifact in" not in err and "capture in" not in err, err
        assert not os.listdir(fs.mnt), os.listdir(fs.mnt)
        assert_resumed(pid)
    finally:
        fs.close()


def test_nearly_full_tmpfs():
    """Room for a few files only (tmpfs with 6 inodes): the files that
    could not be written are named, the capture fails (exit 1), no core
    is attempted without its log, nothing partial remains, the target
    runs on."""
    fs = Tmpfs("size=64m,nr_inodes=6")
    try:
        w, pid = start_target(16)
        rc, err = Dump(pid, fs.mnt).finish(60)
        assert rc == 1, err
        m = re.search(r"pid %d: capture %s/(\S+) is incomplete: could not "
                      r"write ([^()]+) \(No space left on device\)"
                      % (pid, re.escape(fs.mnt)), err)
        assert m, err
        a = os.path.join(fs.mnt, m.group(1))
        lost = m.group(2).split(", ")
        have = os.listdir(a)
        assert have and not set(lost) & set(have), (lost, have)
        assert "small artifact in" not in err, err
        no_partial(fs.mnt)
        assert_resumed(pid)
    finally:
        fs.close()


THREADS = """
import threading, time
def spin():
    while True:
        time.sleep(0.001)
for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
print("pid", __import__("os").getpid(), flush=True)
time.sleep(1000)
"""


def task_states(pid):
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                s = f.read()
            out[int(t)] = s[s.rindex(")") + 2]
        except OSError:
            pass
    return out


def small_phase_kill(group):
    """SIGKILL memtrace (alone or with its process group) while it holds a
    five-thread target under ptrace for the small artifact (a fault pause
    of MEMTRACE_FAULT_HOLD_MS there): every thread was in a trace stop,
    and every thread runs again at once, released by the kernel; the
    partial capture directory is removed by the next memtrace."""
    def run():
        d = dump_dir()
        try:
            w = spawn(["python3", "-c", THREADS])
            pid = int(w.stdout.readline().split()[1])
            env = dict(os.environ, MEMTRACE_FAULT_HOLD_MS="3000")
            mt = Dump(pid, d, env=env)
            deadline = time.time() + 20
            # held, and the artifact begun (its .tmp- directory): the
            # fault pause comes after the small artifact's files
            while time.time() < deadline:
                st = task_states(pid)
                if len(st) == 5 and set(st.values()) == {"t"} and \
                        [n for n in os.listdir(d) if n.startswith(".tmp-")]:
                    break
                time.sleep(0.01)
            else:
                raise AssertionError(f"threads not all held: {task_states(pid)}"
                                     f"\n{mt.err.text()}")
            assert status_field(pid, "TracerPid") == mt.p.pid
            if group:
                os.killpg(mt.p.pid, 9)
            else:
                mt.p.kill()
            t0 = time.time()
            while time.time() - t0 < 2:
                st = task_states(pid)
                if not set(st.values()) & {"t", "T"}:
                    break
                time.sleep(0.005)
            assert not set(task_states(pid).values()) & {"t", "T"}, \
                task_states(pid)
            assert_resumed(pid)
            rc = mt.finish()[0]
            assert rc == -9, f"memtrace exit {rc}: {mt.err.text()}"
            assert [n for n in os.listdir(d) if n.startswith(".tmp-")], \
                os.listdir(d)
            rc, err = Dump(pid, d, "--no-core").finish(30)
            assert rc == 0, err
            assert "removed 1 partial file of captures whose memtrace died" \
                in err, err
            no_partial(d)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return run


def test_gcore_timeout_mid_core():
    """--gcore-timeout expires while the real gdb writes a large core: the
    watchdog kills gcore and gdb, the target runs, no partial core, and
    memtrace dump exits 1 saying so."""
    d = dump_dir()
    try:
        w, pid = start_target(BIG_MIB)
        mt = Dump(pid, d, "--gcore-timeout", "0.2")
        rc, err = mt.finish(30)
        # a quiet machine may finish the core as the timeout fires
        if rc == 0 and re.search(r"pid %d: core dump " % pid, err):
            raise Skip("this machine wrote the core before the 0.2 s timeout took effect")
        assert rc == 1, f"exit {rc}: {err}"
        assert re.search(r"pid %d: core failed: gcore timed out after 0.2 s and "
                         r"was killed; process resumed" % pid, err), err
        assert_resumed(pid)
        assert status_field(pid, "TracerPid") == 0
        no_partial(d)
        assert not glob.glob(os.path.join(d, "*", f"core.{pid}"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_hostile_dump_dir():
    """A dump directory whose name holds an escape sequence and a
    backslash: used as it is, shown escaped."""
    tmp = tempfile.mkdtemp(prefix="mt-flt-")
    try:
        d = os.path.join(tmp.encode(), b"d\x1b[31m\\x")
        os.mkdir(d, 0o700)
        w, pid = start_target(8)
        p = subprocess.run([MEMTRACE.encode(), b"dump", b"--no-core",
                            b"--dump-dir", d, str(pid).encode()],
                           capture_output=True, timeout=30)
        err = p.stderr.decode("utf-8", "surrogateescape")
        assert_clean(err)
        assert p.returncode == 0, err
        assert_escaped("stderr", p.stderr)
        assert b"d\\x1b[31m\\\\x/" in p.stderr, p.stderr
        assert [n for n in os.listdir(d) if f"-{pid}-".encode() in n]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_already_traced():
    """Another tracer (strace) holds the target: memtrace names it, stops
    nothing, writes nothing, exits 1; strace keeps tracing."""
    if not shutil.which("strace"):
        raise Skip("no strace")
    d = dump_dir()
    try:
        w, pid = start_target(8)
        st = spawn(["strace", "-qq", "-o", "/dev/null", "-p", str(pid)])
        deadline = time.time() + 10
        while status_field(pid, "TracerPid") != st.pid:
            assert time.time() < deadline, "strace did not attach"
            time.sleep(0.02)
        rc, err = Dump(pid, d).finish(30)
        assert rc == 1, err
        assert re.search(r"pid %d \(grow\): cannot hold it still for a "
                         r"capture: pid %d already traces it" % (pid, st.pid),
                         err), err
        assert not os.listdir(d), os.listdir(d)
        assert status_field(pid, "TracerPid") == st.pid
        # strace stops it at each of its syscalls ("t" for a moment): it
        # must not be stopped for good (T), and must keep running
        ran = int(status_field(pid, "voluntary_ctxt_switches"))
        for _ in range(25):
            assert state(pid) != "T", f"pid {pid} stopped"
            time.sleep(0.02)
        assert int(status_field(pid, "voluntary_ctxt_switches")) > ran, \
            f"pid {pid} did not run for 0.5 s"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_already_stopped():
    """A process stopped by someone else (^Z, a debugger) is captured as
    it is and left stopped: memtrace owes it no SIGCONT."""
    d = dump_dir()
    try:
        w, pid = start_target(16)
        os.kill(pid, 19)
        assert wait_state(pid, lambda s: s == "T", 2)
        rc, err = Dump(pid, d, "--gcore-timeout", "30").finish(60)
        assert rc == 0, err
        assert glob.glob(os.path.join(d, "*", f"core.{pid}")), err
        time.sleep(0.3)
        assert state(pid) == "T", f"state {state(pid)}: not left as found"
        os.kill(pid, 18)
        assert_resumed(pid)
        no_partial(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_slots_full_said_once():
    """Nine processes cross the threshold at once while every gcore hangs:
    eight captures run, the ninth is skipped with one message (not one per
    refresh); when memtrace ends, all eight targets run again."""
    tmp = tempfile.mkdtemp(prefix="mt-flt-")
    cg = NamedCgroup(limit=256 * MIB)
    try:
        bindir = os.path.join(tmp, "bin")
        os.mkdir(bindir)
        with open(os.path.join(bindir, "gcore"), "w") as f:
            f.write("#!/bin/sh\nexec sleep 60\n")
        os.chmod(os.path.join(bindir, "gcore"), 0o755)
        env = dict(os.environ, PATH=bindir + ":/usr/bin:/bin")
        pids = [start_target(4, cg)[1] for _ in range(9)]
        mt = Memtrace(["-p", ",".join(map(str, pids)), "--dump-at", "16M",
                       "--dump-dir", os.path.join(tmp, "d")], env=env)
        mt.err.wait_for(r"8 captures already running; skipped", 20)
        time.sleep(2)           # ten refreshes at -d 0.2
        stopped = [p for p in pids if state(p) == "T"]
        assert len(stopped) == 8, [(p, state(p)) for p in pids]
        mt.p.terminate()
        rc = mt.p.wait(15)
        err = mt.err.text()
        assert_clean(err)
        assert err.count("captures already running") == 1, err
        assert err.count("core abandoned: memtrace is exiting; process "
                         "resumed") == 8, err
        assert rc == 1, f"exit {rc}: abandoned captures are failures"
        for p in pids:
            assert_resumed(p)
        no_partial(os.path.join(tmp, "d"))
    finally:
        cg.remove()
        shutil.rmtree(tmp, ignore_errors=True)


KILLS = [
    ("kill_memtrace_early", "memtrace", 9, 0),
    ("kill_memtrace_mid_core", "memtrace", 9, 128 * MIB),
    ("kill_pgroup_early", "pgroup", 9, 0),
    ("kill_pgroup_mid_core", "pgroup", 9, 128 * MIB),
    ("kill_gdb_mid_core", "gdb", 9, 64 * MIB),
    ("kill_gcore_mid_core", "gcore", 9, 64 * MIB),
    ("kill_watchdog_early", "watchdog", 9, 0),
    ("kill_watchdog_mid_core", "watchdog", 9, 64 * MIB),
    ("sigint_mid_core", "memtrace", 2, 64 * MIB),
    ("sigterm_mid_core", "memtrace", 15, 64 * MIB),
]


# ---- the table -----------------------------------------------------------

SCENARIOS = [(n, f"memtrace {' '.join(a)}: refused, clear message",
              bad_option(a, p)) for n, a, p in OPTION_CASES] + [
    ("bad_btf", test_bad_btf.__doc__.split("\n")[0], test_bad_btf),
    ("hostile_names", test_hostile_names.__doc__.split("\n")[0], test_hostile_names),
    ("kill_memtrace_small_phase", "SIGKILL of memtrace during the ptrace "
     "hold", small_phase_kill(False)),
    ("kill_pgroup_small_phase", "SIGKILL of memtrace's group during the "
     "ptrace hold", small_phase_kill(True)),
] + [(n, f"SIG{sig} to {who} once gdb wrote {at >> 20} MiB",
      kill_scenario(who, sig, at)) for n, who, sig, at in KILLS] + [
    (f.__name__[5:], f.__doc__.split("\n")[0], f) for f in (
        test_target_exits_mid_core, test_stale_partials_removed,
        test_not_itself, test_kernel_thread, test_full_tmpfs,
        test_nearly_full_tmpfs, test_already_stopped,
        test_slots_full_said_once, test_gcore_timeout_mid_core,
        test_hostile_dump_dir, test_already_traced)
]

TESTS = [(name, fn) for name, _, fn in SCENARIOS]
