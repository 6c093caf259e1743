#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""
The node view's rounds of `make bench` (issue 13), also runnable alone:

  python3 tools/bench/node_bench.py      (or BENCH_ONLY=node make bench)

1. A malloc/free loop (tests/workloads/touch, "rate MS") and a real
   allocation-heavy server (Debian's redis-server, on 127.0.0.1 with a
   port of its own and no persistence, driven by redis-benchmark with
   bounded request counts): untraced, beside the default node view (no
   allocator probe; target >= 0.98 of untraced), under -p (exact) and
   -p --sample-bytes.  Ratios within one run, configurations interleaved.
2. Time to the first table with 1,000 extra processes (sleeps started
   here and killed after), default view and --exact.
3. Refresh jitter of the default view (-d 0.5) during an exec storm.

Environment: MEMTRACE (./memtrace), NODE_BENCH_RUNS (3),
NODE_BENCH_REQUESTS (redis-benchmark -n, 20000), NODE_BENCH_PROCS (1000).
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
RUNS = int(os.environ.get("NODE_BENCH_RUNS", "3"))
REQUESTS = int(os.environ.get("NODE_BENCH_REQUESTS", "20000"))
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
    time.sleep(2.5)     # loaded, attached, first refresh done
    return p


CONFIGS = ("none", "node", "exact", "sampled")
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
    """Median of RUNS measurements per config, interleaved."""
    got = {c: [] for c in CONFIGS}
    for i in range(RUNS):
        for c in CONFIGS[i % len(CONFIGS):] + CONFIGS[:i % len(CONFIGS)]:
            t = tracer(c, pid)
            try:
                got[c].append(measured(measure))
            finally:
                if t:
                    stop(t)
    return {c: statistics.median(v) for c, v in got.items() if v}


def malloc_loop():
    p = spawn([TOUCH], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
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


def exec_storm_jitter(secs=8, delay=0.5, rate=100):
    """Refresh intervals of the default view while processes exec
    /bin/true, rate a second (a build, a CGI server; a flat-out storm of
    thousands a second outruns today's event handling, see README)."""
    import select
    import threading
    done = threading.Event()

    def storm():
        while not done.is_set():
            subprocess.run(["/bin/true"])
            time.sleep(1.0 / rate)
    th = threading.Thread(target=storm, daemon=True)
    p = spawn([MT, "--json", "-d", str(delay)], stdout=subprocess.PIPE)
    th.start()
    ts = []
    t0 = time.time()
    try:
        while time.time() - t0 < secs:
            r, _, _ = select.select([p.stdout], [], [], 1.0)
            if not r:
                continue
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith(b"{"):
                ts.append(json.loads(line)["ts"])
    finally:
        done.set()
        p.kill()
        p.wait()
        th.join()
    return [b - a for a, b in zip(ts[1:], ts[2:])]   # skip the first


def run():
    """The rounds; returns the markdown lines of their report."""
    md = []
    P = md.append
    P("## The node view (no allocator probe) against exact tracing")
    P("")
    P("Throughput relative to untraced, median of %d interleaved runs; "
      "node = `memtrace` with no -p (target >= %.2f), exact = `-p PID`, "
      "sampled = `-p PID --sample-bytes %d`." % (RUNS, TARGET_NODE, SAMPLE))
    P("")
    P("| workload | untraced | node | exact | sampled |")
    P("|---|---:|---:|---:|---:|")
    for name, fn, unit in (("malloc/free loop", malloc_loop, "pairs/s"),
                           ("redis-benchmark (set,get,lpush,lpop, -n %d)"
                            % REQUESTS, redis, "req/s")):
        log("== node bench: %s" % name)
        r = fn()
        if not r:
            P("| %s | n/a | | | |" % name)
            continue
        base = r["none"]
        cells = ["%.0f %s" % (base, unit)] + [
            "%.3f%s" % (r[c] / base, " (target %.2f)" % TARGET_NODE
                        if c == "node" else "") for c in CONFIGS[1:]]
        P("| %s | %s |" % (name, " | ".join(cells)))
        log("   " + ", ".join("%s %.0f" % (c, r[c]) for c in CONFIGS))
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
    gaps = exec_storm_jitter()
    if gaps:
        P("- refresh intervals of `-d 0.5` while /bin/true is exec'ed 100 "
          "times a second: median %.3f s, max %.3f s over %d refreshes" %
          (statistics.median(gaps), max(gaps), len(gaps)))
    else:
        P("- refresh jitter: n/a")
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
