# SPDX-License-Identifier: GPL-2.0
"""Go programs: memtrace reads the Go runtime's own heap profile.

Each workload (tests/workloads/go, built by the Makefile with Go 1.19 and
1.23, plain, stripped and PIE) holds known amounts in named functions.  On
SIGUSR1 it runs two GCs and writes its own pprof.WriteHeapProfile, then
stays quiescent (GC off), so memtrace, attached with -p after it started,
reads the same heap: per function, the four sample types must be equal
to the byte, and the GC count equal to runtime.NumGC."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from common import (Skip, finish, free_port, memtrace_json, next_json, readline, row, spawn,
                    wait_row, WORKLOADS)

GODIR = os.path.join(WORKLOADS, "go")
INDEXES = ("alloc_objects", "alloc_space", "inuse_objects", "inuse_space")


def go_exe(name):
    path = os.path.join(GODIR, name)
    if not os.path.exists(path):
        raise Skip(f"{name} not built (Go toolchain missing?)")
    return path


def go_tool():
    for g in ("go", "/usr/lib/go-1.23/bin/go"):
        if shutil.which(g):
            return g
    raise Skip("no go tool to read pprof files")


def expect(p, prefix, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = readline(p.stdout, deadline - time.time())
        if not line:
            break
        if line.startswith(prefix):
            return line.split()
    raise AssertionError(f"workload did not print '{prefix}'")


def raw_by_func(path):
    """pprof -raw: the four values summed per innermost non-runtime
    function (leading runtime.* frames are what pprof hides)."""
    out = subprocess.run([go_tool(), "tool", "pprof", "-raw", path], capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, GOFLAGS="")).stdout
    samples, locs, part = [], {}, None
    for line in out.splitlines():
        if line.startswith("Samples:"):
            part = "s"
        elif line.startswith("Locations"):
            part = "l"
        elif line.startswith("Mappings"):
            part = None
        elif part == "s":
            m = re.match(r"^\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+):\s*([\d ]*)$", line)
            if m:
                samples.append(([int(m.group(i)) for i in range(1, 5)],
                                [int(x) for x in m.group(5).split()]))
        elif part == "l":
            m = re.match(r"^\s+(\d+): 0x[0-9a-f]+ M=\d+ (\S+)", line)
            if m:
                locs[int(m.group(1))] = m.group(2)
    per = {}
    for vals, stk in samples:
        names = [locs.get(i, "?") for i in stk]
        leaf = next((n for n in names if not n.startswith("runtime.")), names[0] if names else "?")
        acc = per.setdefault(leaf, [0, 0, 0, 0])
        for i in range(4):
            acc[i] += vals[i]
    return {k: v for k, v in per.items() if any(v)}


def top_flat(path, index):
    """go tool pprof -top: (flat, function) rows with a non-zero flat."""
    out = subprocess.run([go_tool(), "tool", "pprof", "-top", "-nodefraction=0",
                          "-nodecount=100000", f"-sample_index={index}", path],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, GOFLAGS="")).stdout
    rows, on = set(), False
    for line in out.splitlines():
        if "flat%" in line:
            on = True
            continue
        f = line.split()
        if on and len(f) >= 6 and f[0] not in ("0", "0B"):
            rows.add((f[0], f[5]))
    return rows


def start_workload(exe, d, extra=()):
    own = os.path.join(d, "own.pb.gz")
    w = spawn([exe, "-out", own] + list(extra), stdin=subprocess.DEVNULL)
    pid = int(expect(w, "ready")[1])
    return w, pid, own


def snapshot(w):
    """Ask the workload for its own profile; returns its NumGC."""
    w.send_signal(signal.SIGUSR1)
    f = expect(w, "written")
    return int(f[3]), int(f[5])


MAIN_FUNCS = ("main.holdSmall", "main.holdLarge", "main.holdMap", "main.churn")


def compare(exe, extra=(), strict_top=True):
    d = tempfile.mkdtemp(prefix="mt-go-")
    try:
        w, pid, own = start_workload(exe, d, extra)
        numgc, rate = snapshot(w)
        mine = os.path.join(d, "memtrace.pb.gz")
        p = memtrace_json(["-p", str(pid), "-n", "1", "-d", "0.2", "--top-sites", "50",
                           "--pprof", mine])
        code, docs, err = finish(p, timeout=60)
        assert code == 0, err
        r = row(docs[-1], pid)
        g = r["go"]
        assert g["profiling"] and g["note"] is None, g
        assert g["mem_profile_rate"] == rate, g
        assert g["gc_cycles"] == numgc, f"gc_cycles {g['gc_cycles']} != NumGC {numgc}"
        if not any(f["func"] for s in g["sites"] for f in s["stack"]):
            raise Skip("the symbolizer does not name this binary's Go frames "
                       "(.gopclntab) yet")
        want, got = raw_by_func(own), raw_by_func(mine)
        # the workload's functions, exact, and the totals of all four
        # types over every sample, exact
        big = [fn for fn in ("main.holdLarge", "main.churn") if fn not in want]
        assert not big, f"{big} not in the program's own profile: {want}"
        for fn in MAIN_FUNCS:
            assert got.get(fn) == want.get(fn), \
                f"{fn} (alloc_objects, alloc_space, inuse_objects, inuse_space): " \
                f"memtrace {got.get(fn)} != program {want.get(fn)}"
        tw = [sum(v[i] for v in want.values()) for i in range(4)]
        tg = [sum(v[i] for v in got.values()) for i in range(4)]
        assert tg == tw, f"totals: memtrace {tg} != program {tw}"
        if strict_top:
            for index in INDEXES:
                a, b = top_flat(own, index), top_flat(mine, index)
                assert a == b, f"pprof -top {index}: program {sorted(a)} memtrace {sorted(b)}"
        # the JSON's Go sites carry the same inuse bytes as the profile
        js = {}
        for s in g["sites"]:
            leaf = next((f["func"] for f in s["stack"] if not f["func"].startswith("runtime.")),
                        None)
            js[leaf] = js.get(leaf, 0) + s["inuse_bytes"]
        for fn in MAIN_FUNCS:
            if fn in want:
                assert js.get(fn, 0) == want[fn][3], f"{fn}: JSON {js.get(fn)} != {want[fn][3]}"
        assert g["inuse_bytes"] == sum(v[3] for v in want.values()), g
        assert r["live_bytes"] >= g["inuse_bytes"], r
        return r
    finally:
        shutil.rmtree(d, ignore_errors=True)


def make_test(name, extra=(), strict_top=True):
    def t():
        compare(go_exe(name), extra, strict_top)
    return t


def test_gc_events():
    """GC starts counted by the entry uprobes equal the GCs the program
    ran while traced; stop-the-world pauses are timed; it survives."""
    d = tempfile.mkdtemp(prefix="mt-go-")
    try:
        w, pid, _ = start_workload(go_exe("goheap-119"), d)
        p = memtrace_json(["-p", str(pid), "-d", "0.2", "--top-sites", "0"])
        first = row(next_json(p), pid)["go"]
        assert first["gc_probed"], first
        before = first["gc_cycles"]
        numgc, _ = snapshot(w)
        deadline = time.time() + 10
        while time.time() < deadline:
            g = row(next_json(p), pid)["go"]
            if g["gc_cycles"] == numgc:
                break
        assert g["gc_cycles"] == numgc, g
        assert g["gc_starts"] == numgc - before, g
        assert g["stw_pauses"] >= 2 * (numgc - before), g
        assert 0 < g["stw_max_ns"] < 1e9 and g["stw_last_ns"] > 0, g
        assert w.poll() is None, "the workload died under the probes"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_profiling_compiled_out():
    """A binary without runtime/pprof: the row says so; GC is still read."""
    exe = go_exe("noprof-119")
    w = spawn([exe], stdin=subprocess.DEVNULL)
    pid = int(expect(w, "ready")[1])
    p = memtrace_json(["-p", str(pid), "-d", "0.3", "-n", "3", "--top-sites", "5"])
    code, docs, err = finish(p, timeout=30)
    assert code == 0, err
    g = row(docs[-1], pid)["go"]
    assert not g["profiling"] and "compiled out" in g["note"], g
    assert g["mem_profile_rate"] == 0 and g["buckets"] == 0 and not g["sites"], g
    assert g["heap_live"] > 8 << 20 and g["total_alloc"] > 0, g
    assert g["gc_cycles"] > 0, g


def test_enable_profiling():
    """--go-enable-profiling=RATE writes MemProfileRate into a process
    that had profiling compiled out: its churn shows up from then on."""
    w = spawn([go_exe("noprof-119")], stdin=subprocess.DEVNULL)
    pid = int(expect(w, "ready")[1])
    p = memtrace_json(["-p", str(pid), "-d", "0.3", "--top-sites", "5",
                       "--go-enable-profiling=4096"])
    r, _ = wait_row(p, pid, lambda r: r["go"]["sites"], timeout=20)
    g = r["go"]
    assert g["profiling"] and g["mem_profile_rate"] == 4096, g
    assert any(s["stack"] and "main.churn" in [f["func"] for f in s["stack"]]
               for s in g["sites"]), g["sites"]
    p.terminate()
    _, _, err = finish(p)
    assert f"pid {pid}: wrote runtime.MemProfileRate = 4096" in err, err
    assert w.poll() is None


def test_cgo_two_heaps():
    """A cgo program: the C heap (probed) and the Go heap (read from the
    runtime) in one row, each site saying which; LIVE is their sum."""
    w = spawn([go_exe("cgoheap-119")], stdin=subprocess.DEVNULL)
    pid = int(expect(w, "ready")[1])
    p = memtrace_json(["-p", str(pid), "-d", "0.3", "--top-sites", "200"])
    next_json(p, timeout=20)            # attached: C mallocs from now on are seen
    w.send_signal(signal.SIGUSR2)
    expect(w, "held c")
    w.send_signal(signal.SIGUSR1)
    expect(w, "written")

    def c_hold(r):
        return [s for s in r.get("sites", []) if s["heap"] == "c" and
                "c_hold" in [f["func"] for f in s["stack"]]]

    def both(r):
        return c_hold(r) and c_hold(r)[0]["live_bytes"] == 409600
    r, _ = wait_row(p, pid, both, timeout=20)
    c_live = sum(s["live_bytes"] for s in r["sites"] if s["heap"] == "c")
    assert r["live_bytes"] == r["go"]["inuse_bytes"] + c_live, r
    go = [s for s in r["sites"] if s["heap"] == "go"]
    held = [s for s in go if s["stack"][0]["func"] == "main.holdGo" and s["live_allocs"] == 40]
    assert held and held[0]["live_bytes"] == 40 * 256 * 1024, \
        [(s["live_bytes"], s["stack"][0]["func"]) for s in go]    # MemProfileRate = 1
    assert not [s for s in r["go"]["sites"] if "c_hold" in str(s["stack"])]


def test_capture():
    """memtrace dump of a Go process: heap.pb.gz is the Go heap profile
    (as the program's own, per function), go-heap-unpublished.pb.gz adds
    what the next GCs will publish, and the report names the Go sites."""
    from common import MEMTRACE
    d = tempfile.mkdtemp(prefix="mt-go-")
    try:
        w, pid, own = start_workload(go_exe("goheap-119"), d, ["-rate", "1"])
        snapshot(w)
        out = os.path.join(d, "dumps")
        p = subprocess.run([MEMTRACE, "dump", "--dump-dir", out, "--no-core", str(pid)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        art = os.path.join(out, os.listdir(out)[0])
        want, got = raw_by_func(own), raw_by_func(os.path.join(art, "heap.pb.gz"))
        for fn in MAIN_FUNCS:
            assert got.get(fn) == want.get(fn), f"{fn}: capture {got.get(fn)} != {want.get(fn)}"
        unpub = raw_by_func(os.path.join(art, "go-heap-unpublished.pb.gz"))
        # the profile write and the signal's handling allocated since
        assert sum(v[0] for v in unpub.values()) > sum(v[0] for v in got.values())
        with open(os.path.join(art, "report.txt")) as f:
            report = f.read()
        assert "#1 main.holdLarge: " in report, report[:2000]
        assert w.poll() is None
    finally:
        shutil.rmtree(d, ignore_errors=True)


def top_values(path, n=6):
    """The n largest inuse_space flat rows: {function: bytes}."""
    per = raw_by_func(path)
    top = sorted(per.items(), key=lambda kv: -kv[1][3])[:n]
    return {k: v[3] for k, v in top if v[3] > 0}


def test_prometheus():
    """Debian's prometheus, a real Go service: memtrace's profile against
    its own /debug/pprof/heap fetched just before and just after (a GC
    may publish in between): same top functions, values within 10%."""
    import urllib.request
    exe = "/usr/bin/prometheus"
    if not os.path.exists(exe):
        raise Skip("prometheus not installed (tools/setup.sh installs it)")
    d = tempfile.mkdtemp(prefix="mt-prom-")
    w = None
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(os.path.join(d, "p.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        w = spawn([exe, "--config.file=" + os.path.join(d, "p.yml"),
                   "--storage.tsdb.path=" + os.path.join(d, "data"),
                   f"--web.listen-address=127.0.0.1:{port}"], stdin=subprocess.DEVNULL,
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline or w.poll() is not None:
                    raise AssertionError("prometheus did not start")
                time.sleep(0.3)
        time.sleep(3)                   # a few scrapes and GCs

        def own(name):
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(urllib.request.urlopen(url + "/debug/pprof/heap", timeout=10).read())
            return top_values(path)
        before = own("before.pb.gz")
        mine = os.path.join(d, "memtrace.pb.gz")
        p = memtrace_json(["-p", str(w.pid), "-n", "1", "-d", "0.2", "--top-sites", "5",
                           "--pprof", mine])
        code, docs, err = finish(p, timeout=60)
        after = own("after.pb.gz")
        assert code == 0, err
        g = row(docs[-1], w.pid)["go"]
        assert g["profiling"] and g["version"].startswith("go1."), g
        got = top_values(mine)

        def close(ref):
            if set(list(ref)[:3]) != set(list(got)[:3]):
                return False
            return all(abs(got[k] - v) <= 0.1 * v for k, v in ref.items() if k in got)
        assert close(before) or close(after), \
            f"memtrace {got}\nprometheus before {before}\nprometheus after {after}"
        assert w.poll() is None
    finally:
        if w and w.poll() is None:      # ours: stopped before its data goes
            w.terminate()
            w.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def make_ctl_test(name):
    def t():
        """GOGC, GOMEMLIMIT and the heap goal read from gcController equal
        what the program's runtime reports (debug.SetGCPercent,
        SetMemoryLimit, MemStats.NextGC): the version's layout is right."""
        d = tempfile.mkdtemp(prefix="mt-go-")
        try:
            own = os.path.join(d, "own.pb.gz")
            w = spawn([go_exe(name), "-out", own, "-gogc", "150"], stdin=subprocess.DEVNULL,
                      env=dict(os.environ, GOMEMLIMIT="3GiB"))
            pid = int(expect(w, "ready")[1])
            w.send_signal(signal.SIGUSR1)
            f = expect(w, "written")
            nextgc, memlimit = int(f[7]), int(f[9])
            p = memtrace_json(["-p", str(pid), "-n", "1", "-d", "0.2", "--top-sites", "0"])
            code, docs, err = finish(p, timeout=60)
            assert code == 0, err
            g = row(docs[-1], pid)["go"]
            assert g["gogc"] == 150 and g["gomemlimit"] == memlimit == 3 << 30, g
            assert g["heap_goal"] == nextgc, f"heap_goal {g['heap_goal']} != NextGC {nextgc}"
            assert 0 < g["heap_marked"] <= g["heap_live"] < nextgc, g
            assert g["total_alloc"] >= g["alloc_bytes"] * 0.5, g
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return t


def test_cmd():
    """memtrace -- a Go program: found after its exec, read from the start."""
    p = memtrace_json(["-d", "0.3", "-n", "4", "--top-sites", "5", "--",
                       go_exe("goheap-119"), "-rate", "1"], stdin=subprocess.DEVNULL)
    code, docs, err = finish(p, timeout=60)
    rows = [r for d in docs for r in d["processes"] if r.get("go")]
    assert rows, err
    g = rows[-1]["go"]
    assert g["profiling"] and g["gc_probed"] and g["gc_cycles"] >= 2, g
    assert g["sites"][0]["stack"][0]["func"] == "main.holdLarge", g["sites"][0]
    assert g["sites"][0]["inuse_bytes"] == 40 * 256 * 1024, g["sites"][0]


def test_growth():
    """A Go site that grows between two reads: its growth, the row's LIVE
    and GROW/s follow the runtime's published heap."""
    w = spawn([go_exe("goheap-119"), "-rate", "1"], stdin=subprocess.DEVNULL)
    pid = int(expect(w, "ready")[1])
    p = memtrace_json(["-p", str(pid), "-d", "0.5", "--top-sites", "3"])
    before = row(next_json(p, timeout=20), pid)
    w.send_signal(signal.SIGUSR2)
    expect(w, "grown")

    def grown(r):
        """holdLarge's site under the signal's goroutine: new since then"""
        s = [s for s in r["go"]["sites"] if s["stack"][0]["func"] == "main.holdLarge"
             and s["stack"][1]["func"] == "main.main.func1"]
        return s[0] if s else None
    r, _ = wait_row(p, pid, lambda r: grown(r) and grown(r)["growth_bps"] > 0, timeout=20)
    s = grown(r)
    assert s["inuse_bytes"] == 40 * 256 * 1024 and s["inuse_objects"] == 40, s
    assert r["go"]["inuse_bytes"] >= before["go"]["inuse_bytes"] + 40 * 256 * 1024, r["go"]
    assert r["growth_bps"] > 0 and r["live_bytes"] == r["go"]["inuse_bytes"], r


def test_node_view():
    """The default node view (no probes at all): a Go program's heap is
    still read, its LIVE known, no GC probe attached."""
    w = spawn([go_exe("goheap-119"), "-rate", "1"], stdin=subprocess.DEVNULL)
    pid = int(expect(w, "ready")[1])
    p = memtrace_json(["-d", "0.5", "--top-sites", "3"])
    r, _ = wait_row(p, pid, lambda r: r.get("go") and r["go"]["sites"], timeout=30)
    g = r["go"]
    assert not g["gc_probed"] and g["profiling"], g
    assert g["sites"][0]["stack"][0]["func"] == "main.holdLarge", g["sites"][0]
    assert g["sites"][0]["inuse_bytes"] == 40 * 256 * 1024, g["sites"][0]
    assert r["live_bytes"] >= g["inuse_bytes"], r


def test_oom_postmortem():
    """A Go program leaking into a 64 MiB cgroup v1 limit: the OOM
    post-mortem names its top Go sites from memtrace's last read."""
    import test_dump as td
    cg = td.Cgroup(64 << 20)
    d = td.dump_dir()
    try:
        exe = go_exe("goheap-119")
        w = spawn(["sh", "-c", f"echo $$ > {cg.dir}/cgroup.procs && exec {exe} "
                   "-rate 65536 -gogc 100 -leak 2"], stdin=subprocess.PIPE)
        pid = int(expect(w, "ready")[1])
        assert pid in cg.pids()
        mt = td.Memtrace(["-p", str(pid), "--dump-dir", d])
        mt.out.wait_for(r'"pid":%d,.*"go":\{"version"' % pid, 30)
        td.go(w)
        mt.out.wait_for(r'"type":"oom","pid":%d' % pid, 60)
        a = td.wait_artifact(d, pid, ("report.txt", "heap.pb.gz"), timeout=30, suffix="-oom")
        with open(os.path.join(a, "report.txt")) as f:
            report = f.read()
        # the leak as of the last GC memtrace read: among the top sites
        # (holdLarge's 10 MiB held from the start may still lead)
        assert "OOM" in report and re.search(r"#[12] main.holdLeak: ", report), report[:3000]
        top = raw_by_func(os.path.join(a, "heap.pb.gz"))
        assert top.get("main.holdLeak", [0] * 4)[3] > 4 << 20, top
        assert mt.p.poll() is None, "memtrace died"
    finally:
        cg.remove()
        shutil.rmtree(d, ignore_errors=True)


TESTS = [
    ("go119_exact", make_test("goheap-119")),
    # every allocation recorded: the runtime's own timer site differs in
    # -top (runtime.doaddtimer vs time.resetTimer: which leading runtime
    # frames pprof hides at an inlined return pc), so per function only
    ("go119_rate1_exact", make_test("goheap-119", ["-rate", "1"], strict_top=False)),
    ("go119_stripped_exact", make_test("goheap-stripped-119")),
    ("go119_pie_exact", make_test("goheap-pie-119")),
    ("go123_exact", make_test("goheap-123")),
    ("go123_stripped_exact", make_test("goheap-stripped-123")),
    ("go123_pie_exact", make_test("goheap-pie-123")),
    ("go119_gc_controller", make_ctl_test("goheap-119")),
    ("go123_gc_controller", make_ctl_test("goheap-123")),
    ("gc_events", test_gc_events),
    ("profiling_compiled_out", test_profiling_compiled_out),
    ("enable_profiling", test_enable_profiling),
    ("cgo_two_heaps", test_cgo_two_heaps),
    ("capture", test_capture),
    ("cmd", test_cmd),
    ("growth", test_growth),
    ("node_view", test_node_view),
    ("oom_postmortem", test_oom_postmortem),
    ("prometheus", test_prometheus),
]
