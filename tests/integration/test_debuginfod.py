# SPDX-License-Identifier: GPL-2.0
"""Symbols for a stripped binary from a debuginfod server: Debian's own
debuginfod, on 127.0.0.1, serves the debug file of a stripped workload;
memtrace (elfutils' client, DEBUGINFOD_URLS) names its functions, and
without DEBUGINFOD_URLS falls back to addresses."""
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

from common import Skip, finish, free_port, load_truth, memtrace_json, row, spawn, wait_row, workload


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    return None


def run(exe, env, extra=()):
    d = tempfile.mkdtemp(prefix="mt-dbgd-run-")
    truth = os.path.join(d, "truth.json")
    p = memtrace_json(["-d", "0.2", "--top-sites", "20"] + list(extra) +
                      ["--", exe, "--truth", truth], stdin=subprocess.PIPE, env=env)
    t = load_truth(truth)
    wait_row(p, t["pid"], lambda r: r["allocs"] > 0)
    p.stdin.close()
    p.stdin = None
    code, docs, err = finish(p)
    assert code == 0, err
    shutil.rmtree(d)
    return row(docs[-1], t["pid"])


def names(r):
    return [f["name"] for s in r["sites"] for f in s["stack"]
            if f["module"] == "chain_stripped"]


def test_debuginfod_names_stripped_functions():
    if not shutil.which("debuginfod"):
        raise Skip("debuginfod (Debian package debuginfod) not installed")
    d = tempfile.mkdtemp(prefix="mt-dbgd-")
    srv = None
    try:
        srcdir = os.path.join(d, "debug")
        os.mkdir(srcdir)
        exe = os.path.join(d, "chain_stripped")
        subprocess.run(["objcopy", "--only-keep-debug", workload("chain"),
                        os.path.join(srcdir, "chain.debug")], check=True)
        subprocess.run(["strip", "--strip-all", "-o", exe, workload("chain")], check=True)
        bid = build_id(exe)
        assert bid, "no build-id"
        port = free_port()
        srv = spawn(["debuginfod", "-F", srcdir, "-p", str(port), "-d",
                     os.path.join(d, "db.sqlite"), "-t", "1"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = "http://127.0.0.1:%d" % port
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen("%s/buildid/%s/debuginfo" % (url, bid),
                                            timeout=2) as f:
                    if f.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "debuginfod did not index the debug file"
            time.sleep(0.3)
        env = dict(os.environ)
        env.pop("DEBUGINFOD_URLS", None)
        prof = os.path.join(d, "heap.pb.gz")
        bare = names(run(exe, env, ["--pprof", prof]))
        assert bare and all(n.startswith("[chain_stripped+0x") for n in bare), bare
        # each address its own function in pprof, not one "[chain_stripped]"
        if shutil.which("go"):
            top = subprocess.run(["go", "tool", "pprof", "-top", "-nodefraction=0",
                                  "-sample_index=inuse_space", prof],
                                 capture_output=True, text=True, timeout=120)
            assert top.returncode == 0, top.stderr
            addrs = set(l.split()[-1] for l in top.stdout.splitlines()
                        if "[chain_stripped+0x" in l)
            assert len(addrs) >= 5, top.stdout
        env["DEBUGINFOD_URLS"] = url
        env["DEBUGINFOD_CACHE_PATH"] = os.path.join(d, "cache")
        named = names(run(exe, env))
        funcs = [n.split("+")[0] for n in named]
        for fn in ("xmalloc", "store", "parse", "serve", "main"):
            assert fn in funcs, named
    finally:
        if srv and srv.poll() is None:
            srv.terminate()
            srv.wait(10)
        shutil.rmtree(d, ignore_errors=True)


TESTS = [(n[len("test_"):], f) for n, f in list(globals().items())
         if n.startswith("test_") and callable(f)]
