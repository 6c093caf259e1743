# SPDX-License-Identifier: GPL-2.0
"""Allocation sites: named functions at known depths, an inlined helper,
a shared library of our own; JSON sites, pprof (checked by go tool pprof)
and folded stacks must carry exactly the bytes the workload allocated."""
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import time

from common import (Skip, finish, first_user_func, load_truth, memtrace_json, next_json,
                    readline, row, site_bytes, spawn, wait_row, workload)

SITES = workload("sites")


def run_sites(extra_args, exe=SITES, wrap=None):
    """Run the sites workload under memtrace -- CMD; keep it alive until
    memtrace has refreshed once with it (so its libraries are known)."""
    d = tempfile.mkdtemp(prefix="mt-sites-")
    truth = os.path.join(d, "truth.json")
    cmd = [exe, "--truth", truth]
    if wrap:
        cmd = wrap(cmd)
    p = memtrace_json(["-d", "0.2", "--top-sites", "20"] + extra_args + ["--"] + cmd,
                      stdin=subprocess.PIPE)
    t = load_truth(truth)
    wait_row(p, t["pid"], lambda r: r["allocs"] > 0)
    p.stdin.close()                    # the workload sees EOF and exits
    p.stdin = None
    code, docs, err = finish(p)
    assert code == 0, err
    return t, row(docs[-1], t["pid"]), d


def test_json_sites_exact():
    t, r, d = run_sites([])
    got = site_bytes(r)
    for fn, want in t["inuse"].items():
        assert got.get(fn) == want, f"{fn}: memtrace {got.get(fn)} != {want}; {got}"
    leaf = [s for s in r["sites"] if s["stack"] and s["stack"][0]["func"] == "leaf_c"]
    assert len(leaf) == 1, r["sites"]
    funcs = [f["func"] for f in leaf[0]["stack"]][:4]
    assert funcs == t["stack_leaf_c"], funcs
    assert leaf[0]["alloc_bytes"] == t["alloc"]["leaf_c"]
    assert leaf[0]["allocs"] == 200 and leaf[0]["live_allocs"] == 100
    assert leaf[0]["stack"][0]["file"].endswith("sites.c") and leaf[0]["stack"][0]["line"] > 0
    inl = [s for s in r["sites"] if s["stack"] and s["stack"][0]["func"] == "helper_inline"]
    assert inl and inl[0]["stack"][0].get("inlined") and inl[0]["stack"][1]["func"] == "inline_host", inl
    lib = [s for s in r["sites"] if s["stack"] and s["stack"][0]["func"] == "lib_alloc"]
    assert lib and lib[0]["stack"][0]["module"] == "libmtsite.so", lib
    shutil.rmtree(d)


def pprof_top(path, index):
    if not shutil.which("go"):
        raise Skip("go (golang-go) not installed: no pprof reader")
    args = ["go", "tool", "pprof", "-top", "-nodefraction=0", f"-sample_index={index}"]
    if index.endswith("space"):
        args.append("-unit=B")
    p = subprocess.run(args + [path], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    flat = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^\s*(\d+)B?\s+[\d.]+%\s+[\d.]+%\s+(\d+)B?\s+[\d.]+%\s+(.+?)(?: \(inline\))?$", line)
        if m:
            flat[m.group(3)] = int(m.group(1))
    return flat


def test_pprof_read_by_go_tool_pprof():
    d = tempfile.mkdtemp(prefix="mt-pprof-")
    prof = os.path.join(d, "heap.pb.gz")
    t, r, d2 = run_sites(["--pprof", prof])
    with gzip.open(prof) as f:
        assert len(f.read()) > 100
    inuse = pprof_top(prof, "inuse_space")
    alloc = pprof_top(prof, "alloc_space")
    objs = pprof_top(prof, "inuse_objects")
    for fn, want in t["inuse"].items():
        assert inuse.get(fn) == want, f"inuse_space {fn}: {inuse.get(fn)} != {want}; {inuse}"
    for fn, want in t["alloc"].items():
        assert alloc.get(fn) == want, f"alloc_space {fn}: {alloc.get(fn)} != {want}; {alloc}"
    assert objs.get("leaf_c") == 100, objs
    # totals of the whole profile equal the process's counters
    assert sum(alloc.values()) == r["alloc_bytes"], (alloc, r["alloc_bytes"])
    shutil.rmtree(d)
    shutil.rmtree(d2)


def test_folded_stacks():
    d = tempfile.mkdtemp(prefix="mt-folded-")
    out = os.path.join(d, "heap.folded")
    t, r, d2 = run_sites(["--folded", out])
    lines = open(out).read().splitlines()
    by_leaf = {}
    for line in lines:
        stack, value = line.rsplit(" ", 1)
        frames = stack.split(";")
        assert frames[0] == "sites", line
        by_leaf[frames[-1]] = by_leaf.get(frames[-1], 0) + int(value)
        if frames[-1] == "leaf_c":
            assert frames[-4:] == ["main", "outer_a", "middle_b", "leaf_c"], frames
    for fn, want in t["inuse"].items():
        assert by_leaf.get(fn) == want, (fn, by_leaf)
    shutil.rmtree(d)
    shutil.rmtree(d2)


def test_stripped_binary_degrades_visibly():
    d = tempfile.mkdtemp(prefix="mt-strip-")
    exe = os.path.join(d, "sites_stripped")
    shutil.copy(SITES, exe)
    shutil.copy(os.path.join(os.path.dirname(SITES), "libmtsite.so"), d)
    subprocess.run(["strip", "--strip-all", exe], check=True)
    t, r, d2 = run_sites([], exe=exe)
    names = [s["stack"][0]["name"] for s in r["sites"] if s["stack"]]
    stripped = [n for n in names if n.startswith("[sites_stripped+0x")]
    assert stripped, names
    # the library keeps its symbols: still named
    assert any(s["stack"][0]["func"] == "lib_alloc" for s in r["sites"]), names
    assert sum(s["live_bytes"] for s in r["sites"]) == sum(t["inuse"].values())
    shutil.rmtree(d)
    shutil.rmtree(d2)


def test_symbols_in_own_mount_namespace():
    """The executable lives on a tmpfs only the workload's namespace sees."""
    if not shutil.which("unshare"):
        raise Skip("unshare missing")
    d = tempfile.mkdtemp(prefix="mt-nssym-")
    lib = os.path.join(os.path.dirname(SITES), "libmtsite.so")

    def wrap(cmd):
        truth = cmd[-1]
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f"mount -t tmpfs mt-nssym {d} && cp {SITES} {lib} {d}/ && "
                f"exec {d}/sites --truth {truth}"]
    t, r, d2 = run_sites([], wrap=wrap)
    got = site_bytes(r)
    assert got.get("leaf_c") == t["inuse"]["leaf_c"], got
    assert got.get("lib_alloc") == t["inuse"]["lib_alloc"], got
    os.rmdir(d)
    shutil.rmtree(d2)


def test_stacks_survive_exec():
    """A shell that allocates, lives through a refresh, then execs the
    workload under the same pid: sweeping the shell's image (its stacks
    among them) must leave the new image's stacks whole."""
    def wrap(cmd):
        return ["sh", "-c", "x=$(echo warm up the shell heap); sleep 0.5; "
                f"exec {' '.join(cmd)}"]
    t, r, d = run_sites([], wrap=wrap)
    got = site_bytes(r)
    for fn, want in t["inuse"].items():
        assert got.get(fn) == want, f"{fn}: memtrace {got.get(fn)} != {want}; {got}"
    leaf = [s for s in r["sites"] if s["stack"] and s["stack"][0]["func"] == "leaf_c"]
    assert len(leaf) == 1, r["sites"]
    assert [f["func"] for f in leaf[0]["stack"]][:4] == t["stack_leaf_c"], leaf
    shutil.rmtree(d)


def test_frameless_wrappers():
    """Allocation wrappers without frame pointers (a library built like a
    distribution's, and the C library's strdup): the function that called
    the wrapper is the frame under it, then main, with exact bytes --
    also when the wrapper keeps data in rbp across the call."""
    t, r, d = run_sites([], exe=workload("wrap"))
    by_caller = {}
    for s in r["sites"]:
        funcs = [f["func"] for f in s["stack"]]
        if len(funcs) >= 3 and funcs[1].startswith("via_"):
            by_caller.setdefault(funcs[1], []).append((funcs, s["live_bytes"]))
    for caller, want in t["inuse"].items():
        got = by_caller.get(caller)
        assert got and len(got) == 1, f"{caller}: {got}; sites {[[f['func'] for f in s['stack']] for s in r['sites']]}"
        funcs, live = got[0]
        assert funcs[0].endswith(t["wrapper"][caller]), funcs
        assert funcs[2] == "main", funcs
        assert live == want, f"{caller}: {live} != {want}"
    shutil.rmtree(d)


def test_short_lived_process_symbolized():
    """A process that allocates and exits within a millisecond or two,
    before memtrace could read its /proc/PID/maps: the kernel's records
    of its code mappings (executable at exec, libraries at mmap) still
    name every frame, in its own executable, its library and libc.
    Also when a shell forks it first: the child's maps are its parent's
    only until its exec."""
    d = tempfile.mkdtemp(prefix="mt-short-")
    truth = os.path.join(d, "truth.json")
    for wrap in ([], ["sh", "-c", f"exec {SITES} --truth {truth} </dev/null"],
                 ["sh", "-c", f"{SITES} --truth {truth} </dev/null; true"]):
        cmd = wrap or [SITES, "--truth", truth]
        p = memtrace_json(["--top-sites", "20", "--"] + cmd,
                          stdin=subprocess.DEVNULL)
        code, docs, err = finish(p)
        assert code == 0, err
        t = load_truth(truth)
        r = row(docs[-1], t["pid"])
        assert r, f"no row for {t['pid']}"
        got = site_bytes(r)
        for fn, want in t["inuse"].items():
            assert got.get(fn) == want, f"{wrap}: {fn}: {got}"
        lib = [s for s in r["sites"] if s["stack"] and s["stack"][0]["func"] == "lib_alloc"]
        assert lib and lib[0]["stack"][0]["module"] == "libmtsite.so", r["sites"]
        frames = [f for s in r["sites"] for f in s["stack"]]
        assert all(f["func"] for f in frames[:6]), frames
        assert any(f["module"].startswith("libc.so") for f in frames), frames
        os.unlink(truth)
    shutil.rmtree(d)


def test_forked_subshell_symbolized():
    """A shell's `$(printf ...)` subshell (a fork, no exec) allocates its
    stdout buffer and exits; the shell then execs the workload before
    memtrace has handled the fork.  The subshell's stack is the shell's
    code as it was at the fork: printf_builtin under command_substitute,
    no frame unknown -- not the maps of what the shell became."""
    if not shutil.which("bash"):
        raise Skip("bash missing")
    d = tempfile.mkdtemp(prefix="mt-subsh-")
    truth = os.path.join(d, "truth.json")
    p = memtrace_json(["--top-sites", "20", "--", "bash", "-c",
                       f"a=$(printf %s x); exec {SITES} --truth {truth} </dev/null"],
                      stdin=subprocess.DEVNULL)
    code, docs, err = finish(p)
    assert code == 0, err
    t = load_truth(truth)
    assert site_bytes(row(docs[-1], t["pid"])).get("leaf_c") == t["inuse"]["leaf_c"]
    subs = [r for r in docs[-1]["processes"] if r["comm"] == "bash" and r["pid"] != t["pid"]]
    assert len(subs) == 1, [(r["pid"], r["comm"]) for r in docs[-1]["processes"]]
    stacks = [[f["name"] for f in s["stack"]] for s in subs[0]["sites"]]
    buf = [st for st in stacks if any(n.startswith("printf_builtin") for n in st)]
    assert buf, stacks
    assert any(n.startswith("command_substitute") for n in buf[0]), buf[0]
    assert "[unknown]" not in buf[0], buf[0]
    shutil.rmtree(d)


def run_cxx(name, live_allocs, opts=(), env=None):
    """memtrace -- the C++ workload name, until its row holds live_allocs
    blocks: (memtrace, pid, that row).  The workload waits on stdin."""
    p = memtrace_json(["-d", "0.2", "--top-sites", "20"] + list(opts) +
                      ["--", workload(name)], stdin=subprocess.PIPE, env=env)
    pid = None
    deadline = time.time() + 15
    while pid is None and time.time() < deadline:
        doc = next_json(p)
        for r in doc["processes"]:
            if r["comm"] == name and r["live_allocs"] >= live_allocs:
                pid = r["pid"]
    assert pid, f"{name} row never showed its allocations"
    r, _ = wait_row(p, pid)
    return p, pid, r


def test_cxx_names_demangled():
    """C++: frames read as written (ns::Cache::raw(int)), operator new is
    an allocator frame with the method that called it under it, bytes
    held through new are exact."""
    p, pid, r = run_cxx("cxx", 1050)
    funcs = [[f["func"] for f in s["stack"]] for s in r["sites"]]
    raw = [s for s in r["sites"] if s["stack"] and s["stack"][0]["func"] == "ns::Cache::raw(int)"]
    assert raw and raw[0]["live_bytes"] == 50 * 300, funcs
    new = [s for s in r["sites"] if s["stack"] and
           s["stack"][0]["func"] == "operator new(unsigned long)" and s["live_bytes"] == 200000]
    assert new, funcs
    # libstdc++'s operator new keeps no frame pointer: its caller is found
    assert [f["func"] for f in new[0]["stack"]][1:3] == \
        ["ns::Cache::fill(int)", "main"], funcs
    p.stdin.close()
    p.stdin = None
    finish(p)


def test_cxx_allocator_own_operator_new():
    """C++ with an allocator that serves operator new and delete itself
    (as tcmalloc does: never through its malloc): new and new[] are
    probed there, exact, and attributed to the code that called them."""
    p, pid, r = run_cxx("cxx_mtalloc", 1052, ["-v"])
    by_top = {}
    for s in r["sites"]:
        if s["stack"]:
            f = s["stack"][0]["func"]
            by_top[f] = by_top.get(f, 0) + s["live_bytes"]
    assert by_top.get("ns::Cache::fill(int)") == 1000 * 200, by_top
    assert by_top.get("ns::Cache::raw(int)") == 50 * 300, by_top
    assert by_top.get("make_buffer(unsigned long)") == 4096, by_top
    # the vector's own array (reserve(1000) pointers) came from new too
    vec = [s for s in r["sites"] if any("reserve(unsigned long)" in f["func"]
                                        for f in s["stack"])]
    assert sum(s["live_bytes"] for s in vec) == 8000, vec
    assert r["unmatched_frees"] == 0, r
    p.stdin.close()
    p.stdin = None
    code, docs, err = finish(p)
    assert "libmtalloc.so: _Znwm" in err and "libmtalloc.so: _ZdaPv" in err, err
    # at exit: delete[] of the buffer and the vector's destructor went
    # through the allocator's own delete; what new gave fill() is held
    r = row(docs[-1], pid)
    live = {}
    for s in r["sites"]:
        if s["stack"]:
            f = s["stack"][0]["func"]
            live[f] = live.get(f, 0) + s["live_bytes"]
    assert live.get("make_buffer(unsigned long)") == 0, live
    assert live.get("ns::Cache::fill(int)") == 200000, live
    assert sum(s["live_bytes"] for s in r["sites"] if any(
        "reserve(unsigned long)" in f["func"] for f in s["stack"])) == 0
    assert r["unmatched_frees"] == 0, r


def test_real_allocators_preloaded():
    """Debian's jemalloc and tcmalloc in LD_PRELOAD (probed before the
    command runs): the workload's sites are exact, every free matches;
    with tcmalloc a C++ program's operator new is seen too."""
    libdir = "/usr/lib/x86_64-linux-gnu"
    libs = [os.path.join(libdir, n) for n in ("libjemalloc.so.2", "libtcmalloc_minimal.so.4")]
    libs = [l for l in libs if os.path.exists(l)]
    if not libs:
        raise Skip("libjemalloc2 / libtcmalloc-minimal4 not installed")
    for lib in libs:
        env = dict(os.environ, LD_PRELOAD=lib)
        d = tempfile.mkdtemp(prefix="mt-alloc-")
        truth_path = os.path.join(d, "truth.json")
        p = memtrace_json(["-v", "--top-sites", "50", "--", workload("allocs"),
                           "--threads", "2", "--truth", truth_path], env=env)
        code, docs, err = finish(p)
        assert code == 0, err
        assert os.path.basename(lib) + ": malloc" in err, err
        truth = load_truth(truth_path)
        r = row(docs[-1], truth["pid"])
        got = site_bytes(r)
        for fn, want in truth["sites"].items():
            assert got.get(fn) == want, (lib, fn, got.get(fn), want)
        assert r["unmatched_frees"] == 0 and r["lost_events"] == 0, (lib, r)
        # the allocator's own start-up (libstdc++'s exception pool, ...)
        # comes on top of what the workload counted, never below it
        assert r["live_bytes"] >= truth["live_bytes"] and r["allocs"] >= truth["allocs"]
        shutil.rmtree(d)
        if "tcmalloc" in lib:
            p, pid, x = run_cxx("cxx", 1050, env=env)
            fill = sum(s["live_bytes"] for s in x["sites"] if any(
                f["func"] == "ns::Cache::fill(int)" for f in s["stack"][:2]))
            assert fill == 200000, [[f["func"] for f in s["stack"][:3]] for s in x["sites"]]
            p.stdin.close()
            p.stdin = None
            finish(p)


def test_jemalloc_own_api():
    """jemalloc's mallocx/rallocx/sdallocx/dallocx called directly: probed
    like malloc/realloc/free, exact at the function that called them."""
    exe = workload("jeapi")
    if not os.path.exists(exe):
        raise Skip("libjemalloc2 not installed")
    d = tempfile.mkdtemp(prefix="mt-je-")
    truth_path = os.path.join(d, "truth.json")
    p = memtrace_json(["--top-sites", "20", "--", exe, "--truth", truth_path])
    code, docs, err = finish(p)
    assert code == 0, err
    want = load_truth(truth_path)["work"]
    r = [x for x in docs[-1]["processes"] if x["comm"] == "jeapi"][0]
    got = {}
    for s in r["sites"]:
        if first_user_func(s) == "work":
            for k in ("live_bytes", "live_allocs", "alloc_bytes", "allocs"):
                got[k] = got.get(k, 0) + s[k]
    got["frees"] = got["allocs"] - got["live_allocs"]
    got["free_bytes"] = got["alloc_bytes"] - got["live_bytes"]
    assert got == want, (got, want)
    assert r["unmatched_frees"] == 0 and r["frees"] >= want["frees"], r
    shutil.rmtree(d)


TESTS = [(n[len("test_"):], f) for n, f in list(globals().items())
         if n.startswith("test_") and callable(f)]
