#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""
memtrace benchmark driver, run by tools/bench.sh (`make bench`).

Overhead: each workload (build/workloads/bench_*) runs under every
configuration -- no tracer, memtrace (default, --no-stacks, sampled),
the floor (--bench-floor: empty BPF programs at memtrace's uprobe sites and
no tracepoint programs),
a bpftrace memleak-style script and heaptrack -- round-robin, the config
order rotated each round; the median ns/op of BENCH_RUNS runs is kept.
Then: lost events, the tracer's memory per live block, the accuracy of
sampled estimates, and the time to a first symbolized table for a large
executable.  Results go to stdout and to BENCH_OUT (results.md,
results.csv, bench.png).  Targets are printed, never asserted.

Environment: BENCH_RUNS (5), BENCH_ITERS (max ops per run, 5000000),
BENCH_SECS (max timed seconds per run, 0.5), BENCH_WARM (untimed warm-up
seconds per run, 0.3), BENCH_QUICK=1 (smoke run),
BENCH_LIVE (live blocks for the memory/accuracy runs, 200000),
BENCH_ACC_RUNS (sampled runs of that live set, 4),
BENCH_FUNCS (functions in the generated large executable, 20000),
BENCH_WORKLOADS / BENCH_CONFIGS (comma lists to run a subset),
BENCH_ONLY=cfi (only the CFI round: stack walk by CFI against frame
pointers and the floor, time to compile libc's and node's CFI),
BENCH_OUT (bench-results), MEMTRACE (./memtrace).
BENCH_ONLY=node runs only the node view's rounds (node_bench.py: the
default view, -p and --sample-bytes against untraced, a malloc loop and
redis; time to first table with 1,000 processes; refresh jitter).
"""
import atexit
import csv
import json
import math
import os
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.chdir(ROOT)

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
RUNS = int(os.environ.get("BENCH_RUNS", "1" if QUICK else "5"))
ITERS = int(os.environ.get("BENCH_ITERS", "5000000"))
SECS = float(os.environ.get("BENCH_SECS", "0.2" if QUICK else "0.5"))
WARM = float(os.environ.get("BENCH_WARM", "0.3"))
LIVE = int(os.environ.get("BENCH_LIVE", "50000" if QUICK else "200000"))
FUNCS = int(os.environ.get("BENCH_FUNCS", "20000"))
ACC_RUNS = int(os.environ.get("BENCH_ACC_RUNS", "1" if QUICK else "4"))
OUT = os.environ.get("BENCH_OUT", "bench-results")
MT = os.path.abspath(os.environ.get("MEMTRACE", "./memtrace"))
WL = os.path.abspath(os.environ.get("BENCH_WLDIR", "build/workloads"))
BENCHDIR = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath("build/bench")
SAMPLE = 524288
RUN_TIMEOUT = 180

TARGET_FLOOR = 1.3      # memtrace <= 1.3x floor per malloc+free pair
TARGET_BPFTRACE = 8.0   # memtrace >= 8x cheaper than bpftrace
TARGET_ACC = 0.05       # sampled top-site estimates within 5%

TMP = tempfile.mkdtemp(prefix="memtrace-bench.")
PROCS = {}              # pid -> Popen, everything we started and not reaped


T0 = time.time()


def log(msg=""):
    if msg.startswith("=="):
        msg = "[%4.0fs] %s" % (time.time() - T0, msg)
    print(msg, flush=True)


def warn(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def spawn(argv, **kw):
    """Start argv in its own process group (so cleanup gets its children)."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    PROCS[p.pid] = p
    return p


def kill_group(p, sig_first=signal.SIGTERM, grace=10.0):
    """End p and everything in its process group; reap p."""
    for sig, wait in ((sig_first, grace), (signal.SIGKILL, 5.0)):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        break
    # the group may outlive its leader (e.g. a workload whose tracer died)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    PROCS.pop(p.pid, None)


def finish(p, timeout):
    """Wait for p; on timeout kill its group.  Returns (rc, out, err)."""
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        kill_group(p)
        out, err = p.communicate()
        rc = None
    PROCS.pop(p.pid, None)
    return rc, out or "", err or ""


def cleanup():
    for p in list(PROCS.values()):
        kill_group(p, grace=5.0)
    shutil.rmtree(TMP, ignore_errors=True)


def on_signal(sig, frame):
    warn("interrupted, cleaning up")
    cleanup()
    sys.exit(130)


atexit.register(cleanup)
signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGHUP, on_signal)


# ---------------------------------------------------------------- other tracers

# Tracers we did not start.  memtrace's and bpftrace's libc probes are
# node-wide (filtered in BPF), so any of them running -- another user's
# `make test`, say -- adds ~1 us to every malloc of every process,
# including our "no tracer" runs.
TRACER_COMMS = {"memtrace", "bpftrace", "heaptrack", "heaptrack_inter",
                "memleak", "memleak-bpfcc", "perf", "ltrace", "valgrind"}


def foreign_tracers():
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            # a process name is any bytes (the safety tests' are not UTF-8)
            with open("/proc/%s/stat" % d, errors="replace") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.find("(") + 1:st.rfind(")")]
        if comm not in TRACER_COMMS:
            continue
        fields = st[st.rfind(")") + 2:].split()
        sid = int(fields[3])
        if int(d) in PROCS or sid in PROCS:
            continue
        found.append("%s[%s]" % (comm, d))
    return found


class Watcher(threading.Thread):
    """Notes any foreign tracer seen while a measurement runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.seen = set()
        self.start()

    def run(self):
        while True:
            f = foreign_tracers()
            if f:
                with self.lock:
                    self.seen.update(f)
            time.sleep(0.25)

    def take(self):
        with self.lock:
            s, self.seen = self.seen, set()
        return s


# Waiting for, and redoing runs disturbed by, other tracers is bounded
# over the whole bench, so someone's hour-long trace cannot stall it.
WAIT_BUDGET = [float(os.environ.get("BENCH_WAIT_BUDGET", "180"))]
REDO_BUDGET = [30]


def wait_quiet(limit=60):
    """Wait until no foreign tracer runs; False if one still does."""
    t0 = time.time()
    end = t0 + min(limit, WAIT_BUDGET[0])
    said = False
    try:
        while True:
            f = foreign_tracers()
            if not f:
                return True
            if time.time() >= end:
                if WAIT_BUDGET[0] > 0 or said:
                    warn("still running: %s; measuring anyway" % " ".join(f))
                return False
            if not said:
                warn("waiting for other tracers to finish: %s" % " ".join(f))
                said = True
            time.sleep(0.5)
    finally:
        WAIT_BUDGET[0] = max(0.0, WAIT_BUDGET[0] - (time.time() - t0))


WATCH = None


# ---------------------------------------------------------------- helpers

def median(v):
    return statistics.median(v) if v else None


def fmt_ns(v):
    if v is None:
        return "n/a"
    if v >= 10000:
        return "%.0f" % v
    if v >= 100:
        return "%.0f" % v
    return "%.1f" % v


def fmt_x(v):
    return "n/a" if v is None else ("%.2fx" % v if v < 100 else "%.0fx" % v)


def json_lines(path):
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def proc_status(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def bpf_maps_of(pid):
    """BPF maps held open by pid:
    [(id, name, type, max_entries, memlock, flags)]."""
    names = {}
    if shutil.which("bpftool"):
        r = subprocess.run(["bpftool", "map", "show", "-j"],
                           capture_output=True, text=True)
        try:
            for m in json.loads(r.stdout or "[]"):
                names[m.get("id")] = m.get("name", "?")
        except ValueError:
            pass
    maps, seen = [], set()
    fddir = "/proc/%d/fd" % pid
    try:
        fds = os.listdir(fddir)
    except OSError:
        return maps
    for fd in fds:
        try:
            if os.readlink(os.path.join(fddir, fd)) != "anon_inode:bpf-map":
                continue
            info = {}
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    info[k.strip()] = v.strip()
        except OSError:
            continue
        mid = int(info.get("map_id", "-1"))
        if mid in seen:
            continue
        seen.add(mid)
        maps.append((mid, names.get(mid, "id%d" % mid),
                     int(info.get("map_type", "0")),
                     int(info.get("max_entries", "0")),
                     int(info.get("memlock", "0")),
                     int(info.get("map_flags", "0"), 16)))
    return maps


def wait_file(path, prefix, timeout, procs=()):
    """Wait for a sync line starting with prefix; None if it never comes."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(path) as f:
                line = f.read().strip()
            if line.startswith(prefix):
                return line.split()
        except OSError:
            pass
        if any(p.poll() is not None for p in procs):
            return None
        time.sleep(0.02)
    return None


# ---------------------------------------------------------------- tools

def have_root():
    return os.geteuid() == 0


def check_tools():
    avail, why = {}, {}
    mt_ok = os.access(MT, os.X_OK)
    if not mt_ok:
        why["memtrace"] = "%s not built (make memtrace)" % MT
    elif not have_root():
        mt_ok = False
        why["memtrace"] = "not root: memtrace needs CAP_BPF/CAP_PERFMON"
    for c in ("memtrace", "memtrace-nostacks", "memtrace-sampled", "floor"):
        avail[c] = mt_ok
        if not mt_ok:
            why[c] = why["memtrace"]
    avail["none"] = True
    bt = shutil.which("bpftrace")
    avail["bpftrace"] = bool(bt) and have_root()
    if not bt:
        why["bpftrace"] = "bpftrace not installed (apt-get install bpftrace)"
    elif not have_root():
        why["bpftrace"] = "not root"
    ht = shutil.which("heaptrack")
    avail["heaptrack"] = bool(ht)
    if not ht:
        why["heaptrack"] = "heaptrack not installed (apt-get install heaptrack)"
    return avail, why


CONFIGS = ["none", "memtrace", "memtrace-nostacks", "memtrace-sampled",
           "floor", "bpftrace", "heaptrack"]
LABEL = {
    "none": "no tracer",
    "memtrace": "memtrace",
    "memtrace-nostacks": "memtrace --no-stacks",
    "memtrace-sampled": "memtrace --sample-bytes %d" % SAMPLE,
    "floor": "floor (--bench-floor)",
    "bpftrace": "bpftrace memleak.bt",
    "heaptrack": "heaptrack",
}
MT_CONFIGS = ("memtrace", "memtrace-nostacks", "memtrace-sampled", "floor")

WORKLOADS = [
    ("tight", "malloc(32)+free loop", ["bench_tight"]),
    ("mixed", "mixed, 1 thread", ["bench_mixed"]),
    ("mixed-2t", "mixed, 2 threads", ["bench_mixed", "-T", "2"]),
]


def workload_argv(w):
    name, _, argv = w
    return [os.path.join(WL, argv[0])] + argv[1:] + \
        ["-w", str(WARM), "-t", str(SECS), str(ITERS)]


def config_argv(cfg, wargv, tag):
    """Command line and extra env for one run; tag names its files."""
    env = dict(os.environ)
    jpath = os.path.join(TMP, tag + ".json")
    if cfg == "none":
        return wargv, env, None
    if cfg in MT_CONFIGS:
        extra = {"memtrace": [], "memtrace-nostacks": ["--no-stacks"],
                 "memtrace-sampled": ["--sample-bytes", str(SAMPLE)],
                 "floor": ["--bench-floor"]}[cfg]
        # JSON rather than -b: same cost at -d 10, and it has lost_events
        return [MT] + extra + ["--json", "-o", jpath, "-d", "10",
                               "--"] + wargv, env, jpath
    if cfg == "bpftrace":
        env["BPFTRACE_MAP_KEYS_MAX"] = "1048576"
        return ["bpftrace", os.path.join(BENCHDIR, "memleak.bt"),
                "-c", shlex.join(wargv)], env, None
    if cfg == "heaptrack":
        return ["heaptrack", "-o", os.path.join(TMP, tag + ".heaptrack")] + \
            wargv, env, None
    raise ValueError(cfg)


NS_RE = re.compile(r"^ns_per_op=([0-9.]+)", re.M)


def run_one(cfg, w, rnd):
    """One measurement; redone (up to 3 times) if another tracer ran."""
    for attempt in range(4):
        quiet = wait_quiet()
        WATCH.take()
        res = run_once(cfg, w, rnd)
        seen = WATCH.take()
        if quiet and not seen:
            break
        res["disturbed"] = sorted(seen) or ["busy"]
        if not quiet or REDO_BUDGET[0] <= 0:
            break   # it was there before we started, or we redid enough
        REDO_BUDGET[0] -= 1
        if attempt < 3:
            warn("%s under %s: %s ran meanwhile, measuring again" %
                 (w[0], cfg, " ".join(res["disturbed"])))
    res["redone"] = attempt
    return res


def run_once(cfg, w, rnd):
    tag = "%s.%s.%d" % (w[0], cfg, rnd)
    argv, env, jpath = config_argv(cfg, workload_argv(w), tag)
    t0 = time.time()
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              text=True, env=env)
    rc, out, err = finish(p, RUN_TIMEOUT)
    res = {"wall": time.time() - t0, "rc": rc}
    m = NS_RE.search(out)
    if rc is None:
        res["error"] = "timed out after %ds" % RUN_TIMEOUT
    elif not m:
        tail = (err.strip().splitlines() or out.strip().splitlines() or
                ["no output"])
        res["error"] = "exit %s: %s" % (rc, tail[-1][:200])
    else:
        res["ns"] = float(m.group(1))
    if jpath:
        lines = json_lines(jpath)
        fin = [l for l in lines if l.get("type") == "final"]
        if fin:
            res["lost"] = fin[-1].get("lost_events")
            res["allocs"] = sum(pr.get("allocs", 0)
                                for pr in fin[-1].get("processes", []))
        elif "ns" in res and cfg != "floor":
            res["lost"] = None
        try:
            os.unlink(jpath)
        except OSError:
            pass
    for f in os.listdir(TMP):
        if f.startswith(tag + ".heaptrack"):
            os.unlink(os.path.join(TMP, f))
    return res


# ---------------------------------------------------------------- overhead

def overhead(configs, workloads):
    results = {}        # (workload, cfg) -> list of run dicts
    dead = {}           # (workload, cfg) -> error; skipped after a failure
    for w in workloads:
        log("== %s (%s): %d round(s), configs rotated each round" %
            (w[0], w[1], RUNS))
        run_one("none", w, -1)  # warm-up: page cache, CPU frequency
        for r in range(RUNS):
            k = r % len(configs)
            order = configs[k:] + configs[:k]
            line = []
            for cfg in order:
                if (w[0], cfg) in dead:
                    continue
                res = run_one(cfg, w, r)
                results.setdefault((w[0], cfg), []).append(res)
                if "error" in res:
                    dead[(w[0], cfg)] = res["error"]
                    warn("%s under %s failed (%s); skipping it from now on"
                         % (w[0], cfg, res["error"]))
                    line.append("%s=FAIL" % cfg)
                else:
                    line.append("%s=%s" % (cfg, fmt_ns(res["ns"])))
            log("  round %d: %s" % (r + 1, " ".join(line)))
    return results, dead


def med(summ, w, cfg):
    return summ.get((w[0], cfg), {}).get("median")


def summarize(results, configs, workloads):
    summ = {}
    for w in workloads:
        base = None
        for cfg in configs:
            runs = results.get((w[0], cfg), [])
            ns = [r["ns"] for r in runs if "ns" in r]
            if ns and len(ns) == len(runs):
                s = {"median": median(ns), "min": min(ns), "max": max(ns),
                     "n": len(ns), "all": ns}
            else:
                s = {"median": None, "n": 0, "all": ns}
            s["redone"] = sum(r.get("redone", 0) for r in runs)
            s["disturbed"] = sum(1 for r in runs if r.get("disturbed"))
            lost = [r.get("lost") for r in runs if "lost" in r]
            s["lost"] = None if (not lost or None in lost) else max(lost)
            s["allocs"] = max([r.get("allocs", 0) for r in runs] or [0])
            summ[(w[0], cfg)] = s
        base = summ[(w[0], "none")]["median"]
        floor = summ.get((w[0], "floor"), {}).get("median")
        fl_all = summ.get((w[0], "floor"), {}).get("all", [])
        for cfg in configs:
            s = summ[(w[0], cfg)]
            m = s["median"]
            s["slowdown"] = m / base if m and base else None
            s["vs_floor"] = m / floor if (m and floor and cfg != "none")\
                else None
            # the same round's floor: the machine's speed drifts over a
            # run (this VM: +-25 %), a round's configs run minutes apart
            # at most
            if cfg != "none" and s["median"] and \
                    len(s["all"]) == len(fl_all) and fl_all:
                s["vs_floor_paired"] = median(
                    [a / b for a, b in zip(s["all"], fl_all)])
            else:
                s["vs_floor_paired"] = None
    return summ


# ---------------------------------------------------------------- memory and accuracy

def live_run(extra, label):
    """
    memtrace -- bench_mixed holding LIVE blocks: memtrace's RSS and BPF
    maps before the workload allocates and with the live set held, and its
    final report (all sites).  Returns a dict or None.
    """
    wait_quiet()
    sync = os.path.join(TMP, "sync." + label)
    jpath = os.path.join(TMP, "live.%s.json" % label)
    wargv = [os.path.join(WL, "bench_mixed"), "-l", str(LIVE), "-S", sync,
             str(LIVE)]
    argv = [MT] + extra + ["--json", "-o", jpath, "-d", "1",
                           "--top-sites", "100", "--"] + wargv
    epath = os.path.join(TMP, "live.%s.err" % label)
    with open(epath, "w") as ef:
        p = spawn(argv, stdout=subprocess.DEVNULL, stderr=ef)
    res = {"label": label}
    try:
        st = wait_file(sync, "start", 60, [p])
        if not st:
            raise RuntimeError("workload did not start")
        wpid = int(st[1])
        time.sleep(1.3)         # one refresh
        res["rss0"] = proc_status(p.pid, "VmRSS")
        res["maps0"] = bpf_maps_of(p.pid)
        os.kill(wpid, signal.SIGUSR1)
        st = wait_file(sync, "ready", 300, [p])
        if not st:
            raise RuntimeError("workload did not finish its live set")
        res["live"] = int(st[2])
        time.sleep(2.3)         # two refreshes: sites read and symbolized
        res["rss"] = proc_status(p.pid, "VmRSS")
        res["hwm"] = proc_status(p.pid, "VmHWM")
        res["maps"] = bpf_maps_of(p.pid)
        if label == "sampled" and shutil.which("bpftool"):
            for m in res["maps"]:
                if m[1] in ("blocks", "hot"):
                    r = subprocess.run(["bpftool", "map", "dump", "id",
                                        str(m[0]), "-j"],
                                       capture_output=True, text=True)
                    try:
                        dump = json.loads(r.stdout)
                    except ValueError:
                        continue
                    if m[1] == "hot":
                        # buckets: count the slots in use
                        n = sum(1 for e in dump
                                for a in e.get("formatted", {})
                                          .get("value", {}).get("addr", [])
                                if a)
                    else:
                        n = len(dump)
                    res["entries"] = res.get("entries", 0) + n
        os.kill(wpid, signal.SIGUSR1)
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            raise RuntimeError("memtrace did not exit")
        PROCS.pop(p.pid, None)
    except (RuntimeError, OSError) as e:
        kill_group(p)
        with open(epath, errors="replace") as f:
            err = f.read().strip()[-300:]
        warn("live-set run (%s): %s %s" % (label, e, err))
        return None
    lines = json_lines(jpath)
    fin = [l for l in lines if l.get("type") == "final"]
    if not fin:
        warn("live-set run (%s): no final JSON line" % label)
        return None
    res["final"] = fin[-1]
    procs = [pr for pr in fin[-1].get("processes", [])
             if pr.get("comm", "").startswith("bench_mixed")]
    res["proc"] = procs[0] if procs else None
    return res


def prog_stats():
    """run_cnt and run_time_ns of every loaded BPF program, by id."""
    try:
        out = subprocess.run(["bpftool", "-j", "prog", "show"],
                             capture_output=True, text=True, timeout=10).stdout
        return {p["id"]: p for p in json.loads(out or "[]")}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


def bpf_costs(w, extra, window=1.0, rounds=3):
    """
    The BPF programs' own time under one workload (kernel.bpf_stats_enabled:
    the kernel times each program run).  Per program: runs per operation,
    ns per run and ns per operation, medians over a few runs; the
    operations in the window come from the workload's own ns/op.
    """
    knob = "/proc/sys/kernel/bpf_stats_enabled"
    try:
        with open(knob) as f:
            old = f.read().strip()
        with open(knob, "w") as f:
            f.write("1")
    except OSError as e:
        warn("bpf_stats_enabled: %s" % e)
        return None
    per = {}
    try:
        for _ in range(rounds):
            wait_quiet()
            wargv = workload_argv(w)
            # long enough for a measuring window in the middle
            wargv[wargv.index("-t") + 1] = "%.1f" % (window + 1.0)
            argv = [MT] + extra + ["--json", "-o", os.path.join(TMP, "costs.json"),
                                   "-d", "10", "--"] + wargv
            p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                      text=True)
            time.sleep(WARM + 0.4)
            a = prog_stats()
            time.sleep(window)
            b = prog_stats()
            rc, out, _ = finish(p, RUN_TIMEOUT)
            m = NS_RE.search(out or "")
            if not m:
                continue
            ops = window * 1e9 / float(m.group(1))
            if "-T" in wargv:
                ops *= int(wargv[wargv.index("-T") + 1])
            for pid, q in b.items():
                name = q.get("name", "")
                if pid not in a or "run_cnt" not in q or \
                        not (name.startswith(("alloc_", "free_", "floor_",
                                              "on_", "malloc_"))):
                    continue
                n = q["run_cnt"] - a[pid].get("run_cnt", 0)
                t = q["run_time_ns"] - a[pid].get("run_time_ns", 0)
                if n > 0:
                    per.setdefault(name, []).append((n / ops, t / n, t / ops))
    finally:
        with open(knob, "w") as f:
            f.write(old)
    return {k: tuple(median([x[i] for x in v]) for i in range(3))
            for k, v in per.items()}


def site_key(s):
    return tuple(f.get("name", "?") for f in s.get("stack", []))


def accuracy(exact, sampled, top=5):
    """Per top exact site: exact bytes, estimate, relative error, 1-sigma."""
    if not exact or not sampled or not exact["proc"] or not sampled["proc"]:
        return None
    est = {site_key(s): s["live_bytes"] for s in sampled["proc"].get("sites", [])}
    rows = []
    ex = sorted(exact["proc"].get("sites", []), key=lambda s: -s["live_bytes"])
    for s in ex[:top]:
        b = s["live_bytes"]
        e = est.get(site_key(s), 0)
        frames = [f.get("func") or "?" for f in s.get("stack", [])]
        depth = frames.count("descend")
        name = "%s, depth %d, %s" % (
            frames[0] if frames else "?", depth,
            "churn" if "one_op" in frames else "fill")
        sigma = math.sqrt(SAMPLE / b) if b > 0 else None
        rows.append({"site": name, "exact": b, "est": e,
                     "err": abs(e - b) / b if b else None, "sigma": sigma})
    return rows


# ---------------------------------------------------------------- symbolization

def gen_bigsyms(n):
    """
    A program with n allocating functions spread over 8 translation units
    (-O0 -g: 20k functions compile in seconds, not a minute), built in
    build/bench/ once and reused.  It frees and reallocates one block from
    every function, then sleeps 20 ms, forever.
    """
    d = os.path.join(BUILD, "bigsyms_%d" % n)
    exe = os.path.join(d, "bigsyms_%d" % n)
    if os.path.exists(exe):
        return exe
    os.makedirs(d, exist_ok=True)
    ntu = 8 if n >= 64 else 1
    hdr = ("/* generated by tools/bench/bench.py */\n"
           "#include <stdlib.h>\n#include <unistd.h>\n"
           "#define escape(p) __asm__ volatile(\"\" : : \"r\"(p) : \"memory\")\n"
           "static inline size_t mix(size_t a, size_t b)\n"
           "{ return (a * 2654435761u) ^ (b >> 3); }\n")
    srcs = []
    for t in range(ntu):
        parts = [hdr]
        for i in range(t, n, ntu):
            parts.append(
                "__attribute__((noinline)) void *f_%05d(size_t n)\n{\n"
                "\tsize_t k = mix(n, %du);\n"
                "\tvoid *p = malloc(16 + (k %% %du));\n"
                "\tescape(p);\n\treturn p;\n}\n" % (i, i * 7 + 1, 64 + i % 4032))
        srcs.append(os.path.join(d, "fn%d.c" % t))
        with open(srcs[-1], "w") as f:
            f.write("".join(parts))
    parts = [hdr]
    parts.extend("void *f_%05d(size_t);\n" % i for i in range(n))
    parts.append("void *(*const fns[%d])(size_t) = {\n" % n)
    parts.extend("\tf_%05d,\n" % i for i in range(n))
    parts.append("};\nstatic void *slot[%d];\n" % n)
    parts.append("int main(void)\n{\n\tfor (;;) {\n"
                 "\t\tfor (int i = 0; i < %d; i++) {\n"
                 "\t\t\tfree(slot[i]);\n\t\t\tslot[i] = fns[i](i);\n"
                 "\t\t}\n\t\tusleep(20000);\n\t}\n}\n" % n)
    srcs.append(os.path.join(d, "main.c"))
    with open(srcs[-1], "w") as f:
        f.write("".join(parts))
    t0 = time.time()
    cc = ["gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-c"]
    jobs, objs, failed = [], [], None
    for src in srcs:
        objs.append(src[:-2] + ".o")
        jobs.append(spawn(cc + ["-o", objs[-1], src], stderr=subprocess.PIPE,
                            text=True))
        while len([j for j in jobs if j.poll() is None]) >= (os.cpu_count() or 1):
            time.sleep(0.05)
    for j in jobs:
        rc, _, err = finish(j, 600)
        if rc:
            failed = err
    if not failed:
        r = subprocess.run(["gcc", "-o", exe + ".tmp"] + objs,
                           capture_output=True, text=True)
        failed = r.stderr if r.returncode else None
    if failed:
        warn("compiling the %d-function program failed: %s" %
             (n, (failed or "?")[-500:]))
        return None
    os.rename(exe + ".tmp", exe)
    log("  (generated %s: %d functions, compiled in %.1fs)" %
        (exe, n, time.time() - t0))
    return exe


def first_table(target_argv, module):
    """
    Start target_argv, attach memtrace -p to it, and time memtrace's first
    JSON line and its first line whose sites have a frame symbolized in
    module.  Returns (t_first_line, t_symbolized) or None.
    """
    wait_quiet()
    t = spawn(target_argv, stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    if t.poll() is not None:
        warn("%s exited early" % target_argv[0])
        return None
    t0 = time.time()
    epath = os.path.join(TMP, "first.err")
    with open(epath, "w") as ef:
        p = spawn([MT, "--json", "-d", "0.1", "-n", "300", "--top-sites",
                   "5", "-p", str(t.pid)], stdout=subprocess.PIPE, stderr=ef)
    first = sym = None
    buf = b""
    try:
        while time.time() - t0 < 15 and sym is None:
            r, _, _ = select.select([p.stdout], [], [], 1.0)
            if not r:
                if p.poll() is not None:
                    break
                continue
            chunk = os.read(p.stdout.fileno(), 1 << 20)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                now = time.time() - t0
                if first is None:
                    first = now
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                for pr in j.get("processes", []):
                    for s in pr.get("sites", []):
                        for f in s.get("stack", []):
                            if f.get("module") == module and \
                               f.get("func", "").startswith("f_"):
                                sym = now
                if sym is not None:
                    break
    finally:
        kill_group(p, signal.SIGINT)
        kill_group(t)
        p.stdout.close()
        with open(epath, errors="replace") as f:
            err = f.read()
    if sym is None:
        warn("no symbolized table from memtrace -p (%s) within 15s %s" %
             (module, err.strip()[-300:]))
    return first, sym


# ---------------------------------------------------------------- chart

def chart(summ, configs, workloads, path):
    if not shutil.which("gnuplot"):
        warn("gnuplot not installed (apt-get install gnuplot-nox): no chart")
        return False
    dat = os.path.join(TMP, "bench.dat")
    cols = [c for c in configs
            if any(summ[(w[0], c)]["median"] for w in workloads)]
    with open(dat, "w") as f:
        f.write("workload " + " ".join('"%s"' % LABEL[c] for c in cols) + "\n")
        for w in workloads:
            f.write('"%s" ' % w[1] + " ".join(
                "%.3f" % summ[(w[0], c)]["median"]
                if summ[(w[0], c)]["median"] else "?" for c in cols) + "\n")
    vals = os.path.join(TMP, "bench.vals")
    with open(vals, "w") as f:      # same numbers, no header: $0 = row
        for w in workloads:
            f.write("x " + " ".join(
                "%.3f" % summ[(w[0], c)]["median"]
                if summ[(w[0], c)]["median"] else "?" for c in cols) + "\n")
    top = max([summ[(w[0], c)]["median"] or 1 for w in workloads
               for c in cols] + [10])
    ymax = 10 ** math.ceil(math.log10(top * 4))   # room for the labels
    n, gap = len(cols), 1
    labels = []
    for j in range(n):
        # clustered histogram: box j of row i is centred at
        # i + (j - (n-1)/2) / (n+gap)
        off = (j - (n - 1) / 2.0) / (n + gap)
        labels.append("'%s' using ($0+%.4f):%d:(sprintf('%%.0f', $%d)) "
                      "with labels rotate left offset 0,0.4 font ',8' "
                      "notitle" % (vals, off, j + 2, j + 2))
    script = """
set terminal pngcairo size 1200,650 font ",10"
set output '%s'
set title "memtrace overhead: ns per operation (one malloc+free pair), median of %d run(s), log scale"
set style data histograms
set style histogram clustered gap %d
set style fill solid 0.85 border -1
set boxwidth 0.95
set logscale y
set yrange [1:%g]
set ylabel "ns per operation (log)"
set grid ytics
set datafile missing "?"
set key outside right top vertical
set xtics nomirror
plot for [c=2:%d] '%s' using c:xtic(1) title columnhead, \\
  %s
""" % (path, RUNS, gap, ymax, n + 1, dat, ", \\\n  ".join(labels))
    r = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True)
    if r.returncode:
        warn("gnuplot failed: %s" % r.stderr.strip()[-300:])
        return False
    return True


# ---------------------------------------------------------------- main

# ---------------------------------------------------------------- CFI round

CFI_CONFIGS = [
    # key, label, memtrace options (None: no tracer), workload
    ("none", "no tracer", None, "bench_deep"),
    ("floor", "floor (empty programs)", ["--bench-floor"], "bench_deep"),
    ("fp", "frame pointers (--no-cfi), code that keeps them", ["--no-cfi"],
     "bench_deep_fp"),
    ("fp-cfi", "CFI on, code that keeps frame pointers", [], "bench_deep_fp"),
    ("cfi", "CFI on, code without frame pointers", [], "bench_deep"),
    ("nofp-nocfi", "--no-cfi, code without them (stacks cut short)",
     ["--no-cfi"], "bench_deep"),
]


def cfi_compile_ms(argv, path, timeout=60):
    """memtrace -v on a command: the worker's time to compile path's CFI,
    and its row count (from the -v lines "CFI of DEV:INO: N rows ...")."""
    try:
        ino = os.stat(path).st_ino
    except OSError:
        return None
    p = spawn([MT, "-v", "--json", "-d", "1", "-n", str(timeout)] + argv,
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found = None
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and found is None:
            r, _, _ = select.select([p.stderr], [], [], 1.0)
            if not r:
                if p.poll() is not None:
                    break
                continue
            line = p.stderr.readline()
            if not line:
                break
            m = re.search(r"CFI of \d+:%d: (\d+) rows, (\d+) functions .* in "
                          r"([0-9.]+) ms" % ino, line)
            if m:
                found = (float(m.group(3)), int(m.group(1)), int(m.group(2)))
    finally:
        kill_group(p)
    return found


def cfi_round():
    """Per-allocation cost of the stack walk by CFI against frame pointers
    and the floor (bench_deep: 10 frames per stack), and the time to
    compile big files' CFI.  Markdown lines."""
    log("== CFI unwinding: bench_deep (malloc+free under 8 frames of its own)")
    res = {c[0]: [] for c in CFI_CONFIGS}
    uw = {}
    for rnd in range(RUNS):
        order = CFI_CONFIGS[rnd % len(CFI_CONFIGS):] + \
            CFI_CONFIGS[:rnd % len(CFI_CONFIGS)]
        for key, label, opts, wl in order:
            wargv = [os.path.join(WL, wl), "-w", str(WARM), "-t", str(SECS),
                     str(ITERS)]
            jpath = os.path.join(TMP, "cfi.%s.%d.json" % (key, rnd))
            argv = wargv if opts is None else \
                [MT] + opts + ["--json", "-o", jpath, "-d", "10", "--"] + wargv
            wait_quiet()
            p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      text=True)
            rc, out, err = finish(p, RUN_TIMEOUT)
            m = NS_RE.search(out or "")
            if m:
                res[key].append(float(m.group(1)))
            else:
                warn("cfi round %s: %s" % (key, (err or "no output")[-200:]))
            if opts is not None:
                fin = [l for l in json_lines(jpath) if l.get("type") == "final"]
                if fin and "unwind" in fin[-1]:
                    uw[key] = fin[-1]["unwind"]
    # the programs' own time (kernel-timed): steadier than wall clock
    bpf = {}
    for key, label, opts, wl in CFI_CONFIGS:
        if opts is None:
            continue
        c = bpf_costs((key, label, [wl]), opts)
        if c:
            bpf[key] = sum(v[2] for v in c.values())
    md = ["## Stack walk by CFI (.eh_frame) against frame pointers", "",
          "bench_deep: malloc(32)+free called under 8 functions of its own "
          "(10 frames per stack), built -O2 without frame pointers, and with "
          "them (_fp). Median ns per malloc+free pair over %d run(s); x floor "
          "is the ratio to the floor's median; BPF ns/op is the programs' "
          "own time (kernel.bpf_stats_enabled), per pair." % RUNS, "",
          "| config | ns/op | x floor | BPF ns/op | mean frames per stack | "
          "steps by CFI / by frame pointer / blind |",
          "|---|---:|---:|---:|---:|---|"]
    floor = median(res["floor"]) if res["floor"] else None
    for key, label, opts, wl in CFI_CONFIGS:
        v = median(res[key]) if res[key] else None
        u = uw.get(key)
        if u and not u.get("cfi"):
            u = None    # the frame-pointer walk keeps no counts
        md.append("| %s (%s) | %s | %s | %s | %s | %s |" % (
            label, wl, fmt_ns(v) if v else "n/a",
            fmt_x(v / floor) if v and floor and key != "none" else "",
            fmt_ns(bpf[key]) if key in bpf else "",
            "%.1f" % u["mean_depth"] if u else "",
            "%d / %d / %d" % (u["cfi_steps"], u["fp_steps"],
                              u["unknown_steps"]) if u else ""))
        log("  %-50s %s" % (label + " (" + wl + ")",
                            fmt_ns(v) if v else "n/a"))
    md.append("")
    md.append("Time to compile a file's CFI (memtrace's worker thread, "
              "never on the refresh path):")
    md.append("")
    libc = next((f for f in ("/lib/x86_64-linux-gnu/libc.so.6",
                             "/usr/lib/x86_64-linux-gnu/libc.so.6")
                 if os.path.exists(f)), None)
    targets = []
    if libc:
        targets.append(("libc", libc, ["--", os.path.join(WL, "bench_deep"),
                                       "-t", "0", "1"]))
    node = shutil.which("node")
    if node:
        targets.append(("node", os.path.realpath(node),
                        ["--", node, "-e", "setTimeout(() => {}, 60000)"]))
    for name, path, argv in targets:
        r = cfi_compile_ms(argv, path)
        line = ("- %s (%s, %.1f MiB): %s" % (
            name, path, os.path.getsize(path) / 2**20,
            "%.0f ms, %d rows (8 bytes each), %d functions" % r if r
            else "n/a"))
        md.append(line)
        log(line)
    md.append("")
    return md


def node_rounds():
    """The node view's rounds (tools/bench/node_bench.py): markdown lines."""
    sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))
    import node_bench
    try:
        return node_bench.run()
    finally:
        node_bench.cleanup()


def main():
    os.makedirs(OUT, exist_ok=True)
    if os.environ.get("BENCH_ONLY") == "cfi":
        text = "\n".join(cfi_round()) + "\n"
        with open(os.path.join(OUT, "cfi.md"), "w") as f:
            f.write(text)
        log(text)
        return 0
    # BENCH_ONLY=node: only the node view's rounds (issue 13)
    if os.environ.get("BENCH_ONLY") == "node":
        text = "\n".join(node_rounds()) + "\n"
        with open(os.path.join(OUT, "node.md"), "w") as f:
            f.write(text)
        log(text)
        return 0
    avail, why = check_tools()
    configs = CONFIGS
    if os.environ.get("BENCH_CONFIGS"):
        want = os.environ["BENCH_CONFIGS"].split(",")
        configs = [c for c in CONFIGS if c in want or c == "none"]
    workloads = WORKLOADS if not QUICK else WORKLOADS[:2]
    if os.environ.get("BENCH_WORKLOADS"):
        want = os.environ["BENCH_WORKLOADS"].split(",")
        workloads = [w for w in WORKLOADS if w[0] in want]
    for w in workloads:
        exe = os.path.join(WL, w[2][0])
        if not os.access(exe, os.X_OK):
            warn("%s missing: run `make build-tests` first" % exe)
            return 1
    for c in configs:
        if not avail[c]:
            warn("%s: %s -- column shows n/a" % (LABEL[c], why[c]))
    all_configs = configs
    configs = [c for c in configs if avail[c]]

    global WATCH
    WATCH = Watcher()
    t_start = time.time()
    log("memtrace bench: %s runs=%d max_ops=%d max_secs=%.2f live=%d "
        "funcs=%d%s" % (time.strftime("%Y-%m-%d %H:%M:%S"), RUNS, ITERS,
                        SECS, LIVE, FUNCS, " (QUICK)" if QUICK else ""))
    load0 = os.getloadavg()
    log("kernel %s, %d CPUs, load average %.2f %.2f %.2f" %
        ((os.uname().release, os.cpu_count()) + load0))
    if load0[0] > 0.5 * (os.cpu_count() or 1):
        warn("the machine is busy (load %.2f): expect noisy numbers" % load0[0])
    results, dead = overhead(configs, workloads)
    summ = summarize(results, all_configs, workloads)

    # ---- extras
    mem = acc = sym = None
    exact = sampled = None
    costs = {}
    if avail["memtrace"]:
        log("== live set of %d blocks (bench_mixed -l %d): exact, then sampled"
            % (LIVE, LIVE))
        exact = live_run([], "exact")
        sampled = live_run(["--sample-bytes", str(SAMPLE)], "sampled")
        acc = accuracy(exact, sampled)
        # more sampled runs of the same live set: is the error what
        # unbiased Poisson sampling predicts, or a bias?
        more = [acc] if acc else []
        for i in range(1, ACC_RUNS):
            r = live_run(["--sample-bytes", str(SAMPLE)], "sampled%d" % i)
            a = accuracy(exact, r)
            if a:
                more.append(a)
        log("== BPF programs' own time (kernel.bpf_stats_enabled)")
        costs = {}
        for w in workloads[:2]:
            for label, extra in (("memtrace", []),
                                 ("floor", ["--bench-floor"])):
                costs[(w[0], label)] = bpf_costs(w, extra)
        log("== time to first symbolized table, memtrace -p on a large "
            "executable")
        sym = {}
        for k, n in (("big", FUNCS), ("small", 50)):
            exe = gen_bigsyms(n)
            if exe:
                sym[k] = first_table([exe], os.path.basename(exe))
                sym[k + "_size"] = os.path.getsize(exe)

    # ---- report
    md = []
    P = md.append
    P("# memtrace benchmark")
    P("")
    P("%s, kernel %s, %d CPUs, %d run(s) per config (median), "
      "each run at most %d ops / %.2f s; config order rotated each round." %
      (time.strftime("%Y-%m-%d %H:%M"), os.uname().release, os.cpu_count(),
       RUNS, ITERS, SECS))
    P("One operation = one allocation plus the free it pairs with "
      "(tight: malloc(32)+free; mixed: see tests/workloads/bench_mixed.c). "
      "ns per op for mixed-2t is thread-time (wall x threads / ops).")
    P("")
    P("## Summary: median ns/op (slowdown vs no tracer, x floor)")
    P("")
    P("| config | " + " | ".join(w[0] for w in workloads) + " |")
    P("|---|" + "---:|" * len(workloads))
    for c in all_configs:
        cells = []
        for w in workloads:
            s = summ[(w[0], c)]
            if s["median"] is None:
                cells.append("n/a")
            elif c == "none":
                cells.append(fmt_ns(s["median"]))
            else:
                cells.append("%s (%s, %s)" % (fmt_ns(s["median"]),
                                              fmt_x(s["slowdown"]),
                                              fmt_x(s["vs_floor"])))
        P("| %s | %s |" % (LABEL[c], " | ".join(cells)))
    P("")
    for w in workloads:
        P("## %s: %s" % (w[0], w[1]))
        P("")
        P("| config | ns/op (median) | min..max | slowdown vs none | "
          "x floor | x same round's floor (median) | runs | lost events |")
        P("|---|---:|---:|---:|---:|---:|---:|---:|")
        for c in all_configs:
            s = summ[(w[0], c)]
            if s["median"] is None:
                reason = dead.get((w[0], c)) or why.get(c, "not run")
                P("| %s | n/a | | | | | 0 | %s |" % (LABEL[c], reason))
                continue
            P("| %s | %s | %s..%s | %s | %s | %s | %d | %s |" % (
                LABEL[c], fmt_ns(s["median"]), fmt_ns(s["min"]),
                fmt_ns(s["max"]), fmt_x(s["slowdown"]),
                fmt_x(s["vs_floor"]) if c != "none" else "",
                fmt_x(s["vs_floor_paired"]) if c not in ("none", "floor")
                else "",
                s["n"], "" if c not in MT_CONFIGS or c == "floor"
                else ("n/a" if s["lost"] is None else s["lost"])))
        P("")

    # targets
    redone = sum(summ[(w[0], c)].get("redone", 0) for w in workloads
                 for c in all_configs)
    disturbed = sum(summ[(w[0], c)].get("disturbed", 0) for w in workloads
                    for c in all_configs)
    P("Runs redone because another tracer (memtrace, bpftrace, heaptrack, "
      "...) ran at the same time: %d; runs kept although disturbed: %d." %
      (redone, disturbed))
    P("")
    P("## Targets (reported, not asserted)")
    P("")
    for w in workloads:
        m = med(summ, w, "memtrace")
        fl = med(summ, w, "floor")
        bt = med(summ, w, "bpftrace")
        r1 = m / fl if m and fl else None
        rp = summ.get((w[0], "memtrace"), {}).get("vs_floor_paired")
        r2 = bt / m if m and bt else None
        P("- %s: memtrace %s ns/op = %s the floor, median of the rounds' own "
          "ratios %s (target <= %.1fx: %s); bpftrace/memtrace = %s "
          "(target >= %.0fx: %s)" % (
              w[0], fmt_ns(m), fmt_x(r1), fmt_x(rp), TARGET_FLOOR,
              "n/a" if r1 is None else
              ("MET" if max(r1, rp or r1) <= TARGET_FLOOR else
               "MISSED" if min(r1, rp or r1) > TARGET_FLOOR else
               "MET by one measure, MISSED by the other"),
              fmt_x(r2), TARGET_BPFTRACE,
              "n/a" if r2 is None else ("MET" if r2 >= TARGET_BPFTRACE else "MISSED")))
    for w in workloads:
        s = summ.get((w[0], "floor"), {})
        if s.get("median") and s.get("allocs"):
            P("- WARNING (%s): the floor run counted %d allocations: "
              "--bench-floor does not look like empty programs" %
              (w[0], s["allocs"]))
    lt = summ.get(("tight", "memtrace"), {}).get("lost")
    lost_all = [summ[(w[0], c)]["lost"] for w in workloads
                for c in ("memtrace", "memtrace-nostacks", "memtrace-sampled")
                if med(summ, w, c) is not None]
    P("- lost events, memtrace on the tight loop (final JSON lost_events, "
      "max over runs): %s (target 0: %s); all memtrace runs: max %s" % (
          "n/a" if lt is None else lt,
          "n/a" if lt is None else ("MET" if lt == 0 else "MISSED"),
          "n/a" if (not lost_all or None in lost_all) else max(lost_all)))
    P("")

    P("## Tracer memory per tracked live block")
    P("")
    if exact and exact.get("rss"):
        maps, maps0 = exact["maps"], exact["maps0"]
        tot, tot0 = sum(m[4] for m in maps), sum(m[4] for m in maps0)
        before = {m[0]: m[4] for m in maps0}
        live = (exact["proc"] or {}).get("live_allocs") or exact["live"]
        live = max(live, 1)
        drss = exact["rss"] - exact["rss0"]
        P("memtrace (exact) with bench_mixed holding %d blocks "
          "(memtrace counts %s live allocations, %s live bytes). Memory "
          "read before the workload allocated and with the live set held:" %
          (exact["live"], live, (exact["proc"] or {}).get("live_bytes", "?")))
        P("")
        P("- **per tracked live block: %.0f bytes** (memtrace RSS +%.1f, BPF "
          "maps +%.1f); fixed cost %.1f MiB (RSS %.1f MiB + maps %.1f MiB); "
          "all of it / live blocks = %.0f bytes" % (
              (drss + tot - tot0) / live, drss / live, (tot - tot0) / live,
              (exact["rss0"] + tot0) / 2**20, exact["rss0"] / 2**20,
              tot0 / 2**20, (exact["rss"] + tot) / live))
        P("- memtrace VmRSS %.1f -> %.1f MiB (peak %.1f MiB); BPF maps "
          "(memlock, from /proc/PID/fdinfo) %.1f -> %.1f MiB in %d maps:" %
          (exact["rss0"] / 2**20, exact["rss"] / 2**20, exact["hwm"] / 2**20,
           tot0 / 2**20, tot / 2**20, len(maps)))
        for m in sorted(maps, key=lambda m: -m[4])[:7]:
            grow = m[4] - before.get(m[0], m[4])
            P("  - %s: %.1f MiB, max %d entries, %s%s" % (
                m[1], m[4] / 2**20, m[3],
                "allocated on demand" if m[5] & 1 else "preallocated",
                ", %+.1f bytes per live block" % (grow / live)
                if abs(grow) >= live / 10 else ""))
        if sampled and sampled.get("rss"):
            P("- sampled (--sample-bytes %d): memtrace VmRSS %.1f MiB; "
              "blocks map holds %s entries for the same live set" %
              (SAMPLE, sampled["rss"] / 2**20, sampled.get("entries", "?")))
    else:
        P("n/a (%s)" % ("memtrace unavailable" if not avail["memtrace"]
                        else "the live-set run failed; see stderr"))
    P("")

    P("## Accuracy of sampled estimates (--sample-bytes %d)" % SAMPLE)
    P("")
    if acc:
        worst = max(r["err"] for r in acc)
        P("Top %d sites by exact live bytes (exact run) vs the sampled run's "
          "estimate, same deterministic live set of %d blocks. sigma = "
          "expected relative standard error sqrt(N/bytes) of unbiased "
          "Poisson sampling." % (len(acc), LIVE))
        P("")
        P("| site | exact bytes | estimate | rel. error | sigma |")
        P("|---|---:|---:|---:|---:|")
        for r in acc:
            P("| %s | %d | %d | %.1f%% | %.1f%% |" % (
                r["site"], r["exact"], r["est"], 100 * r["err"],
                100 * r["sigma"]))
        P("")
        P("- max relative error among top sites: %.1f%% (target <= %.0f%%: "
          "%s); max |error|/sigma = %.2f" % (
              100 * worst, 100 * TARGET_ACC,
              "MET" if worst <= TARGET_ACC else "MISSED",
              max(r["err"] / r["sigma"] for r in acc)))
        tot_e = exact["proc"]["live_bytes"]
        tot_s = sampled["proc"]["live_bytes"]
        P("- process live bytes: exact %d, sampled estimate %d (%.2f%%, "
          "sigma %.2f%%)" % (tot_e, tot_s, 100 * abs(tot_s - tot_e) / tot_e,
                              100 * math.sqrt(SAMPLE / tot_e)))
        if len(more) > 1:
            z = [(r["est"] - r["exact"]) / r["exact"] / r["sigma"]
                 for a in more for r in a]
            rel = [(r["est"] - r["exact"]) / r["exact"] for a in more
                   for r in a]
            P("- over %d sampled runs (%d site estimates): RMS(error/sigma) "
              "= %.2f (about 1 if the sampler is unbiased with the "
              "predicted variance), mean signed error %+.1f%%, max "
              "|error| %.1f%%" % (len(more), len(z),
                                  math.sqrt(sum(v * v for v in z) / len(z)),
                                  100 * sum(rel) / len(rel),
                                  100 * max(abs(v) for v in rel)))
        P("- a %.0f%% error at 2 sigma needs %.0f MiB live per site at "
          "--sample-bytes %d (bytes >= N/(%.3f)^2)" % (
              100 * TARGET_ACC, SAMPLE / (TARGET_ACC / 2) ** 2 / 2**20,
              SAMPLE, TARGET_ACC / 2))
    else:
        P("n/a")
    P("")

    P("## BPF programs' own time per operation (kernel.bpf_stats_enabled)")
    P("")
    P("Median of 3 runs of 1 s each, default memtrace against the floor's "
      "empty programs; ns per run includes the kernel's timing of each run "
      "(~10-20 ns), so compare the two sides rather than reading the "
      "absolute values.  What is not here is the uprobe mechanism "
      "itself (traps, return trampoline), the same for both.")
    P("")
    for (wname, label), c in sorted(costs.items()):
        if not c:
            continue
        P("- %s, %s: %s; total %.0f ns per op" % (
            wname, label, ", ".join(
                "%s %.2f runs x %.0f ns" % (k, v[0], v[1])
                for k, v in sorted(c.items(), key=lambda kv: -kv[1][2])
                if v[2] >= 1),
            sum(v[2] for v in c.values())))
    P("")
    P("## Time to first symbolized table (memtrace --json -d 0.1 -p PID)")
    P("")
    if sym:
        for k, desc in (("big", "generated executable, %d functions, %.1f "
                         "MiB with debug info" %
                         (FUNCS, sym.get("big_size", 0) / 2**20)),
                        ("small", "same program with 50 functions, %.2f MiB"
                         % (sym.get("small_size", 0) / 2**20))):
            v = sym.get(k)
            if v and v[1] is not None:
                P("- %s: first JSON line after %.2f s, first with symbolized "
                  "sites after %.2f s" % (desc, v[0], v[1]))
            else:
                P("- %s: n/a (no symbolized table)" % desc)
    else:
        P("n/a")
    P("")
    if avail["memtrace"]:
        for line in cfi_round():
            P(line)
        log("== the node view against exact tracing")
        md.extend(node_rounds())
    P("Total bench time: %.0f s. Load average (1 min) at start %.2f, at end "
      "%.2f: anything else running on the machine shows up as noise." %
      (time.time() - t_start, load0[0], os.getloadavg()[0]))

    text = "\n".join(md) + "\n"
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, "results.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "config", "runs", "median_ns_per_op",
                     "min_ns", "max_ns", "slowdown_vs_none", "ratio_to_floor",
                     "lost_events", "all_ns"])
        for w in workloads:
            for c in all_configs:
                s = summ[(w[0], c)]
                wr.writerow([w[0], c, s["n"],
                             "" if s["median"] is None else "%.2f" % s["median"],
                             "%.2f" % s["min"] if s.get("min") else "",
                             "%.2f" % s["max"] if s.get("max") else "",
                             "%.3f" % s["slowdown"] if s["slowdown"] else "",
                             "%.3f" % s["vs_floor"] if s["vs_floor"] else "",
                             "" if s["lost"] is None else s["lost"],
                             " ".join("%.2f" % v for v in s["all"])])
    png = os.path.join(OUT, "bench.png")
    ok = chart(summ, all_configs, workloads, png)
    log("")
    log(text)
    log("wrote %s/results.md, %s/results.csv%s" %
        (OUT, OUT, ", %s" % png if ok else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
