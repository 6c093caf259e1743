# SPDX-License-Identifier: GPL-2.0
"""Symbols for a stripped binary from a debuginfod server: Debian's own
debuginfod, on 127.0.0.1, serves the debug file of a stripped workload;
memtrace (elfutils' client, DEBUGINFOD_URLS) names its functions, and
without DEBUGINFOD_URLS falls back to addresses.  A slow server (one of
our own that answers after seconds) never holds up a refresh: frames are
addresses until the file arrives, then names."""
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

from common import (Skip, final_doc, finish, free_port, load_truth, memtrace_json, next_json, row, spawn,
                    wait_row, workload)


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
    return row(final_doc(docs), t["pid"])


def stripped_chain(d):
    """The chain workload stripped, its debug file apart: (exe, debug
    file, build-id)."""
    exe = os.path.join(d, "chain_stripped")
    debug = os.path.join(d, "chain.debug")
    subprocess.run(["objcopy", "--only-keep-debug", workload("chain"), debug], check=True)
    subprocess.run(["strip", "--strip-all", "-o", exe, workload("chain")], check=True)
    bid = build_id(exe)
    assert bid, "no build-id"
    return exe, debug, bid


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
        exe, debug, bid = stripped_chain(d)
        os.rename(debug, os.path.join(srcdir, "chain.debug"))
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


class SlowHandler(http.server.BaseHTTPRequestHandler):
    """debuginfod's protocol, slowly: every answer (a file, or 404) comes
    after server.delay seconds."""

    def do_GET(self):
        t0 = time.time()
        time.sleep(self.server.delay)
        path = self.server.files.get(self.path)
        if path:
            with open(path, "rb") as f:
                data = f.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_error(404)
        self.server.log.append((self.path, t0, time.time()))

    def log_message(self, *args):
        pass


def test_slow_debuginfod_never_holds_up_refreshes():
    """The server answers after 4 s: refreshes keep their 0.2 s interval
    meanwhile (the lookup is the background worker's), the stripped
    frames show as addresses until the answer, then by name."""
    d = tempfile.mkdtemp(prefix="mt-dbgd-slow-")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    srv.daemon_threads = True
    srv.delay = 4.0
    srv.log = []
    try:
        exe, debug, bid = stripped_chain(d)
        srv.files = {"/buildid/%s/debuginfo" % bid: debug}
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        env = dict(os.environ)
        env["DEBUGINFOD_URLS"] = "http://127.0.0.1:%d" % srv.server_address[1]
        env["DEBUGINFOD_CACHE_PATH"] = os.path.join(d, "cache")
        env["DEBUGINFOD_TIMEOUT"] = "30"
        truth = os.path.join(d, "truth.json")
        p = memtrace_json(["-d", "0.2", "--top-sites", "20", "--", exe, "--truth", truth],
                          stdin=subprocess.PIPE, env=env)
        t = load_truth(truth)
        seen = []              # (refresh time, the chain's frames)
        deadline = time.time() + 20
        while time.time() < deadline:
            doc = next_json(p, 5)
            r = row(doc, t["pid"])
            frames = names(r) if r else []
            seen.append((doc["ts"], frames))
            if frames and not frames[0].startswith("["):
                break
        p.stdin.close()
        p.stdin = None
        code, docs, err = finish(p)
        assert code == 0, err
        asked = [x for x in srv.log if x[0] == "/buildid/%s/debuginfo" % bid]
        assert asked, srv.log
        answered = asked[0][2]
        # refreshes came on time while the server sat on the request
        assert len(seen) > 5, "refreshes held up by the lookup: %s" % seen
        gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:])]
        assert gaps and max(gaps) < 2.0, gaps
        before = [f for ts, f in seen if ts < answered - 0.3 and f]
        assert len(before) >= 5, seen
        assert all(n.startswith("[chain_stripped+0x") for f in before for n in f), before
        # then names, once the file arrived
        funcs = [n.split("+")[0] for n in seen[-1][1]]
        for fn in ("xmalloc", "store", "parse", "serve", "main"):
            assert fn in funcs, seen[-1]
        assert seen[-1][0] >= answered - 0.05, (seen[-1][0], answered)
    finally:
        srv.shutdown()
        srv.server_close()
        shutil.rmtree(d, ignore_errors=True)


TESTS = [(n[len("test_"):], f) for n, f in list(globals().items())
         if n.startswith("test_") and callable(f)]
