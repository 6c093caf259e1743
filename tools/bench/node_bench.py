#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""
The node view's rounds of `make bench` (issue 13), also runnable alone:

  python3 tools/bench/node_bench.py      (or BENCH_ONLY=node make bench)

1. A malloc/free loop (tests/workloads/touch, "rate MS"), a syscall
   loop (tests/workloads/sysloop: what every syscall pays) and a real
   allocation-heavy server (Debian's redis-server, on 127.0.0.1 with a
   port of its own and no persistence, driven by redis-benchmark with
   bounded request counts): untraced, beside the default node view (no
   allocator probe; target >= 0.98 of untraced), under -p (exact) and
   -p --sample-bytes.  Ratios within one run, configurations interleaved.
2. Time to the first table with 1,000 extra processes (sleeps started
   here and killed after), default view and --exact.
3. Refresh intervals of -d 1 (default view and --exact) during an exec
   storm of thousands of processes a second (tests/workloads/execstorm),
   and the seconds from SIGINT to the final table.

Environment: MEMTRACE (./memtrace), NODE_BENCH_RUNS (5),
NODE_BENCH_REQUESTS (redis-benchmark -n, 50000), NODE_BENCH_PROCS (1000),
NODE_BENCH_ORDER (a round's traced runs, "node,exact,node,sampled"; e.g.
"node" for more rounds of the node view alone).
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MT = os.path.abspath(os.environ.get("MEMTRACE", os.path.join(ROOT, "memtrace")))
TOUCH = os.path.join(ROOT, "build", "workloads", "touch")
SYSLOOP = os.path.join(ROOT, "build", "workloads", "sysloop")
RUNS = int(os.environ.get("NODE_BENCH_RUNS", "5"))
REQUESTS = int(os.environ.get("NODE_BENCH_REQUESTS", "50000"))
NPROCS = int(os.environ.get("NODE_BENCH_PROCS", "1000"))
SAMPLE = 524288
TARGET_NODE = 0.98

_procs = []


def log(msg=""):
    print(msg, flush=True)


def spawn(argv, **kw):
    kw.setdefault("stdout", subprocess.DEVNULL)
    kw.setdefault("stderr", subprocess.DEVNULL)
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    _procs.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cleanup():
    for p in reversed(_procs):
        if p.poll() is None:
            p.kill()
            p.wait()
    _procs.clear()


def tracer(cfg, pid):
    """memtrace in configuration cfg next to the workload pid; None: none."""
    if cfg == "none":
        return None
    args = {"node": [], "exact": ["-p", str(pid)],
            "sampled": ["--sample-bytes", str(SAMPLE), "-p", str(pid)]}[cfg]
    p = spawn([MT, "--json", "-d", "1", "-o", "/dev/null"] + args)
    time.sleep(3.5)     # loaded, attached, its start-up work done (~2 s)
    return p


CONFIGS = ("none", "node", "exact", "sampled")
# a round's traced runs: the node view, whose target is tight, twice
ORDER = tuple(os.environ.get("NODE_BENCH_ORDER",
                             "node,exact,node,sampled").split(","))
DISTURBED = [0, 0]      # measurements with another tracer running, of all


def foreign_tracers():
    """memtrace or bpftrace processes we did not start: their probes slow
    every process, ours included (another user's tests, say)."""
    ours = {p.pid for p in _procs}
    found = []
    for d in os.listdir("/proc"):
        try:
            with open("/proc/%s/comm" % d) as f:
                if f.read().strip() in ("memtrace", "bpftrace") and \
                        int(d) not in ours:
                    found.append(int(d))
        except (OSError, ValueError):
            pass
    return found


def measured(measure):
    before = foreign_tracers()
    v = measure()
    DISTURBED[1] += 1
    if before or foreign_tracers():
        DISTURBED[0] += 1
    return v


def rounds(measure, pid):
    """Each traced configuration measured between two untraced runs, its
    ratio taken to their mean: this VM's throughput drifts by +-15% over
    a minute, which the ratio of two medians taken minutes apart does
    not cancel.  Returns the medians of the values per configuration and,
    under "ratio", of the RUNS paired ratios (with their range)."""
    got = {c: [] for c in CONFIGS}
    ratios = {c: [] for c in CONFIGS[1:] + ("noise",)}
    got = {c: v for c, v in got.items() if c == "none" or c in ORDER}
    traced = ORDER
    for i in range(RUNS):
        order = traced[i % len(traced):] + traced[:i % len(traced)]
        before = measured(measure)
        got["none"].append(before)
        for c in order:
            t = tracer(c, pid)
            try:
                v = measured(measure)
            finally:
                stop(t)
            after = measured(measure)
            got["none"].append(after)
            got[c].append(v)
            ratios[c].append(2 * v / (before + after) if before + after
                             else 0.0)
            # untraced against untraced: what this machine's drift alone
            # makes of a ratio
            ratios["noise"].append(after / before if before else 0.0)
            before = after
    med = {c: statistics.median(v) for c, v in got.items() if v}
    med["ratio"] = {c: (statistics.median(v), min(v), max(v))
                    for c, v in ratios.items() if v}
    return med


def rate_loop(binary):
    """A workload answering "rate MS" with "rate R" (calls a second)."""
    p = spawn([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p.stdout.readline()

    def measure():
        p.stdin.write(b"rate 1000\n")
        p.stdin.flush()
        return float(p.stdout.readline().split()[1])
    try:
        return rounds(measure, p.pid)
    finally:
        p.kill()
        p.wait()


def malloc_loop():
    return rate_loop(TOUCH)


def syscall_loop():
    return rate_loop(SYSLOOP)


def redis():
    if not (shutil_which("redis-server") and shutil_which("redis-benchmark")):
        return None
    port = 20000 + os.getpid() % 20000
    srv = spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                 "--save", "", "--appendonly", "no", "--daemonize", "no"])
    for _ in range(50):
        r = subprocess.run(["redis-cli", "-p", str(port), "ping"],
                           capture_output=True, text=True)
        if r.stdout.strip() == "PONG":
            break
        time.sleep(0.1)

    def measure():
        r = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p",
                            str(port), "-q", "-n", str(REQUESTS), "-c", "10",
                            "-t", "set,get,lpush,lpop", "--csv"],
                           capture_output=True, text=True, timeout=300)
        rps = [float(l.split(",")[1].strip('"')) for l in r.stdout.splitlines()
               if l.startswith('"') and not l.startswith('"test"')]
        return statistics.mean(rps) if rps else 0.0
    try:
        return rounds(measure, srv.pid)
    finally:
        srv.kill()
        srv.wait()


def shutil_which(name):
    import shutil
    return shutil.which(name)


def first_table(extra):
    """Seconds to the first JSON refresh, and its rows, with NPROCS sleeps."""
    sleeps = [spawn(["sleep", "600"]) for _ in range(NPROCS)]
    time.sleep(1)
    t0 = time.time()
    p = spawn([MT, "--json", "-d", "1"] + extra, stdout=subprocess.PIPE)
    try:
        while True:
            line = p.stdout.readline()
            if not line:
                return None, 0
            if line.startswith(b"{"):
                return time.time() - t0, len(json.loads(line)["processes"])
    finally:
        p.kill()
        p.wait()
        for s in sleeps:
            s.kill()
            s.wait()


STORM = os.path.join(ROOT, "build", "workloads", "execstorm")


def exec_storm_jitter(procs=8000, workers=4, delay=1.0):
    """Refresh intervals of the default view and of --exact while
    tests/workloads/execstorm runs procs short-lived processes flat out
    (workers at a time: thousands a second here), output to a file so
    that memtrace's own pace is measured; and the seconds from SIGINT
    to the final table.  Returns {config: (rate, intervals, final_s)}."""
    import tempfile
    res = {}
    for label, extra in (("node", []), ("exact", ["--exact"])):
        d = tempfile.mkdtemp(prefix="mt-bench-storm-")
        out = os.path.join(d, "out.json")

        def ts():
            with open(out, "rb") as f:
                return [json.loads(l)["ts"] for l in f
                        if l.startswith(b"{") and l.endswith(b"\n")]
        p = spawn([MT, "--json", "-d", str(delay), "-o", out] + extra)
        try:
            t0 = time.time()
            while time.time() - t0 < 60 and not (os.path.exists(out) and ts()):
                time.sleep(0.1)
            s = subprocess.run([STORM, str(procs), str(workers)],
                               capture_output=True, text=True, timeout=600)
            rate = json.loads(s.stdout)["rate"] if s.returncode == 0 else 0
            time.sleep(2 * delay)
            size = os.path.getsize(out)
            t0 = time.time()
            p.send_signal(signal.SIGINT)
            final_s, tail, seen = None, b"", False
            with open(out, "rb") as f:
                f.seek(size)    # what comes after SIGINT, as it comes
                while final_s is None and time.time() - t0 < 60:
                    tail = tail[-64:] + f.read()
                    seen = seen or b'"type":"final"' in tail
                    if seen and tail.endswith(b"\n"):
                        final_s = time.time() - t0
                    time.sleep(0.02)
            stop(p)
            t = ts()
            res[label] = (rate, [b - a for a, b in zip(t, t[1:])], final_s)
        finally:
            stop(p)
            subprocess.run(["rm", "-rf", d])
    return res


def run():
    """The rounds; returns the markdown lines of their report."""
    md = []
    P = md.append
    P("## The node view (no allocator probe) against exact tracing")
    P("")
    P("Throughput relative to untraced over %d rounds: the median (and "
      "range) of the ratios, each traced run to the mean of the untraced runs just "
      "before and after it (the node view twice a round); the last column "
      "is each untraced run to the next, i.e. what the machine's own drift "
      "makes of a ratio; "
      "node = `memtrace` with no -p (target >= %.2f), exact = `-p PID`, "
      "sampled = `-p PID --sample-bytes %d`." % (RUNS, TARGET_NODE, SAMPLE))
    P("")
    P("| workload | untraced | node | exact | sampled | untraced/untraced |")
    P("|---|---:|---:|---:|---:|---:|")
    for name, fn, unit in (("malloc/free loop", malloc_loop, "pairs/s"),
                           ("getppid() loop (every syscall's cost)",
                            syscall_loop, "calls/s"),
                           ("redis-benchmark (set,get,lpush,lpop, -n %d)"
                            % REQUESTS, redis, "req/s")):
        log("== node bench: %s" % name)
        r = fn()
        if not r:
            P("| %s | n/a | | | |" % name)
            continue
        base = r["none"]
        cells = ["%.0f %s" % (base, unit)] + [
            "%.3f (%.3f–%.3f)%s" % (r["ratio"][c] + (
                " (target %.2f)" % TARGET_NODE if c == "node" else "",))
            if c in r["ratio"] else "" for c in CONFIGS[1:]] + \
            ["%.3f (%.3f–%.3f)" % r["ratio"]["noise"]]
        P("| %s | %s |" % (name, " | ".join(cells)))
        log("   " + ", ".join("%s %.0f" % (c, r[c]) for c in CONFIGS
                              if c in r))
    P("")
    if DISTURBED[0]:
        P("(%d of %d measurements ran while another memtrace or bpftrace, "
          "not ours, probed the node: those numbers are noise)" %
          tuple(DISTURBED))
        P("")
    log("== node bench: time to first table with %d extra processes" % NPROCS)
    P("Time to the first table (JSON refresh) with %d extra processes:" %
      NPROCS)
    for label, extra in (("default node view", []), ("--exact", ["--exact"])):
        t, n = first_table(extra)
        P("- %s: %s (%d rows)" % (label, "%.2f s" % t if t else "n/a", n))
        log("   %s: %s s, %d rows" % (label, t, n))
    log("== node bench: refresh jitter during an exec storm")
    for label, (rate, gaps, final_s) in exec_storm_jitter().items():
        if not gaps or not rate:
            P("- exec storm, %s: n/a" % label)
            continue
        P("- refresh intervals of `-d 1` (%s) while %.0f processes a second "
          "exec and exit (tests/workloads/execstorm): median %.2f s, max "
          "%.2f s over %d refreshes; final table after SIGINT: %s" %
          ("default view" if label == "node" else "--exact", rate,
           statistics.median(gaps), max(gaps), len(gaps),
           "%.2f s" % final_s if final_s is not None else "not seen"))
        log("   %s: %.0f/s, intervals %s, final %s" %
            (label, rate, " ".join("%.2f" % g for g in gaps), final_s))
    P("")
    cleanup()
    return md


if __name__ == "__main__":
    try:
        text = "\n".join(run())
    finally:
        cleanup()
    log("")
    log(text)
