# SPDX-License-Identifier: GPL-2.0
"""memtrace never holds the node hostage: a stalled reader of its output
never blocks it, and a memtrace that stops checking in (hung, SIGSTOPed)
is ended by its watchdog, which takes its probes away.  Speeds are the
workload's own malloc/free rate, compared within one run."""
import fcntl
import os
import signal
import subprocess
import time

from common import MEMTRACE, readline, spawn, workload


def other_tracers(ours):
    """memtrace processes that are not ours (nor our watchdog)."""
    out = []
    for d in os.listdir("/proc"):
        try:
            with open(f"/proc/{d}/comm") as f:
                if f.read().strip() == "memtrace" and int(d) != ours:
                    out.append(int(d))
        except (OSError, ValueError):
            pass
    return out


class Touch:
    """tests/workloads/touch: measures its own malloc/free rate."""

    def __init__(self):
        self.p = spawn([workload("touch")], stdin=subprocess.PIPE)
        assert readline(self.p.stdout, 10).startswith("pid")
        self.pid = self.p.pid

    def rate(self, ms=300):
        self.p.stdin.write(b"rate %d\n" % ms)
        self.p.stdin.flush()
        line = readline(self.p.stdout, 30)
        assert line and line.startswith("rate"), line
        return float(line.split()[1])


def traced(t, args, **kw):
    """memtrace -p t.pid, once its probes make the workload slower."""
    r0 = t.rate()
    p = spawn([MEMTRACE, "-p", str(t.pid)] + args, **kw)
    deadline = time.time() + 20
    r1 = r0
    while time.time() < deadline and r1 > 0.5 * r0:
        time.sleep(0.3)
        r1 = t.rate()
    assert r1 <= 0.5 * r0, f"tracing did not slow the workload: {r0:.0f} -> {r1:.0f}/s"
    time.sleep(0.3)     # every probe in place: the steady traced speed
    return p, r0, t.rate()


def test_sigstopped_memtrace_lets_go():
    """SIGSTOP memtrace: within the watchdog's time the workload is back
    at its untraced speed, and memtrace was killed saying why."""
    t = Touch()
    p, r0, r1 = traced(t, ["-b", "-d", "0.5", "--watchdog", "2"],
                       stdout=subprocess.DEVNULL)
    os.kill(p.pid, signal.SIGSTOP)
    t0 = time.time()
    r = t.rate()
    while r < 0.7 * r0 and time.time() - t0 < 15:
        r = t.rate()
    took = time.time() - t0
    assert r >= 0.7 * r0, f"still slow after {took:.1f}s: {r:.0f}/s, untraced {r0:.0f}/s"
    assert took < 2 + 4, f"took {took:.1f}s"
    assert p.wait(timeout=5) == -signal.SIGKILL, p.returncode
    err = p.stderr.read().decode()
    assert "watchdog: pid %d has not checked in" % p.pid in err, err


def test_spinning_memtrace_is_ended():
    """A memtrace that spins busy and stops checking in (a loop bug: the
    test hook MEMTRACE_FAULT_SPIN_AFTER) is ended within --watchdog SECS,
    though it uses all the CPU it can, and the workload is back at its
    untraced speed."""
    t = Touch()
    env = dict(os.environ, MEMTRACE_FAULT_SPIN_AFTER="8")
    t_spawn = time.time()
    p, r0, r1 = traced(t, ["-b", "-d", "0.5", "--watchdog", "2"],
                       stdout=subprocess.DEVNULL, env=env)
    assert p.poll() is None, p.stderr.read().decode()[-500:]
    # the spin begins 8 s after memtrace's start, not before t_spawn + 8
    while time.time() < t_spawn + 8:
        assert p.poll() is None, p.stderr.read().decode()[-500:]
        time.sleep(0.05)
    t0 = time.time()
    ticks0, busy = None, 0
    while p.poll() is None and time.time() - t0 < 30:
        try:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
            ticks0 = ticks if ticks0 is None else ticks0
            busy = ticks - ticks0
        except (OSError, IndexError):
            pass
        time.sleep(0.05)
    took = time.time() - t0
    assert p.wait(timeout=5) == -signal.SIGKILL, p.returncode
    # the window (2 s) and the watchdog's 0.1 s tick; it was busy
    assert took < 2 + 1, f"ended after {took:.1f}s"
    assert busy >= 30, f"not spinning: {busy} ticks"
    err = p.stderr.read().decode()
    assert "watchdog: pid %d has not checked in" % p.pid in err, err
    # its probes are gone with it (unless another test's node-wide
    # memtrace probes everyone meanwhile); traced, the loop runs at <1% of
    # its untraced rate, so a few seconds of samples ride out a moment of
    # CPU contention on 2 vCPUs without blurring the two
    deadline = time.time() + 5
    r = t.rate()
    while r < 0.7 * r0 and time.time() < deadline:
        r = max(r, t.rate())
    assert r >= 0.7 * r0 or other_tracers(p.pid), \
        f"{r:.0f}/s after the watchdog, untraced {r0:.0f}/s"


def test_stalled_stdout_never_blocks():
    """A reader that never reads: memtrace keeps tracing at its usual cost
    (it is not blocked, so the watchdog leaves it alone), exits at once on
    SIGINT and says what it could not write."""
    t = Touch()
    rfd, wfd = os.pipe()
    fcntl.fcntl(rfd, fcntl.F_SETPIPE_SZ, 4096)
    p, r0, r1 = traced(t, ["-b", "-d", "0.05", "--watchdog", "3"], stdout=wfd)
    os.close(wfd)
    time.sleep(5)       # the pipe is full long before; past the watchdog
    assert p.poll() is None, "memtrace ended: " + p.stderr.read().decode()[-500:]
    r2 = t.rate()
    assert r2 >= 0.6 * r1, f"stalled output slowed tracing: {r1:.0f} -> {r2:.0f}/s"
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=8) == 0, p.stderr.read().decode()
    err = p.stderr.read().decode()
    assert "the reader of stdout did not keep up" in err, err
    os.close(rfd)
    # probes gone with it: full speed again, unless another tracer (a
    # node-wide memtrace of another test run) probes everyone meanwhile
    r3 = max(t.rate() for _ in range(5))
    assert r3 >= 0.6 * r0 or other_tracers(p.pid), \
        f"{r3:.0f}/s after exit, untraced {r0:.0f}/s"


def test_max_overhead_stops_exact_tracing():
    """--max-overhead: a process whose probes cost more than that share
    of its CPU time is no longer traced, and memtrace says so; the row
    showed the estimated cost first."""
    from common import memtrace_json, wait_row
    t = Touch()
    r0 = t.rate()
    mt = memtrace_json(["-d", "0.3", "--max-overhead", "10", "-p", str(t.pid)])
    wait_row(mt, t.pid, lambda r: r["probed"])
    t.p.stdin.write(b"rate 4000\n")      # allocation-bound for 4 s
    t.p.stdin.flush()
    r, doc = wait_row(mt, t.pid, lambda r: r["budget_stopped"])
    assert not r["probed"], r
    assert doc["probe_floor_ns"] > 0, doc["probe_floor_ns"]
    assert readline(t.p.stdout, 10).startswith("rate")
    r4 = max(t.rate() for _ in range(3))
    assert r4 >= 0.6 * r0 or other_tracers(mt.pid), f"{r4:.0f}/s, untraced {r0:.0f}/s"
    mt.send_signal(signal.SIGINT)
    mt.wait(timeout=10)
    err = mt.stderr.read().decode()
    assert "over --max-overhead 10%: stopped" in err, err


def test_probe_cost_in_the_row():
    """The estimated cost: high for an allocation-bound process."""
    from common import memtrace_json, wait_row
    t = Touch()
    mt = memtrace_json(["-d", "0.5", "-p", str(t.pid)])
    wait_row(mt, t.pid, lambda r: r["probed"])
    t.p.stdin.write(b"rate 3000\n")
    t.p.stdin.flush()
    r, _ = wait_row(mt, t.pid, lambda r: r["probe_cost_pct"] >= 30)
    assert r["probe_cost_pct"] <= 100, r
    assert readline(t.p.stdout, 10).startswith("rate")


TESTS = [
    ("sigstopped_memtrace_lets_go", test_sigstopped_memtrace_lets_go),
    ("spinning_memtrace_is_ended", test_spinning_memtrace_is_ended),
    ("stalled_stdout_never_blocks", test_stalled_stdout_never_blocks),
    ("max_overhead_stops_exact_tracing", test_max_overhead_stops_exact_tracing),
    ("probe_cost_in_the_row", test_probe_cost_in_the_row),
]
