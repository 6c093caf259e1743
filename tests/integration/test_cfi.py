# SPDX-License-Identifier: GPL-2.0
"""Stacks through code built without frame pointers, unwound from its
CFI (.eh_frame) in the kernel: the chain workload (-O2
-fomit-frame-pointer) knows its call chain; memtrace must report all of
it, in order -- also when frame-pointer and frameless code mix, across a
PLT call into a library of its own, and through a signal frame.  Sites
are named by the caller of the allocation wrapper (JSON, the live table
through tmux); Debian's redis-server and nginx show their command and
request paths."""
import os
import re
import shutil
import subprocess
import tempfile
import time

from common import (MEMTRACE, Skip, final_doc, finish, free_port, load_truth, memtrace_json, next_json, readline, row,
                    spawn, wait_row, workload)
import test_tui


def run_chain(exe, extra=(), args=()):
    d = tempfile.mkdtemp(prefix="mt-cfi-")
    truth = os.path.join(d, "truth.json")
    p = memtrace_json(["-d", "0.2", "--top-sites", "20"] + list(extra) +
                      ["--", workload(exe), "--truth", truth] + list(args),
                      stdin=subprocess.PIPE)
    t = load_truth(truth)
    wait_row(p, t["pid"], lambda r: r["allocs"] > 0)
    p.stdin.close()
    p.stdin = None
    code, docs, err = finish(p)
    assert code == 0, err
    doc = final_doc(docs)
    return t, row(doc, t["pid"]), doc


def wait_cfi_compiled(p, timeout=30):
    """Read refreshes until memtrace's worker has compiled the CFI of every
    file queued so far (JSON unwind.files_queued 0): on a busy machine a
    big file takes seconds, and its frames are walked blind meanwhile."""
    deadline = time.time() + timeout
    while next_json(p, 10)["unwind"]["files_queued"]:
        assert time.time() < deadline, "CFI not compiled in %ss" % timeout


def funcs(site):
    return [f["func"] for f in site["stack"] if not f.get("inlined")]


def in_order(chain, frames):
    """chain appears in frames in this order, the first at the top."""
    pos = 0
    for f in frames:
        if pos < len(chain) and f == chain[pos]:
            pos += 1
    return pos == len(chain) and frames and frames[0] == chain[0]


def chain_site(t, r, chain):
    sites = [s for s in r["sites"] if in_order(chain, funcs(s))]
    assert len(sites) == 1, [funcs(s) for s in r["sites"]]
    return sites[0]


def check_chain(exe, extra=()):
    t, r, doc = run_chain(exe, extra)
    s = chain_site(t, r, t["chain"])
    # the whole chain, consecutive: nothing skipped, nothing invented
    f = funcs(s)
    assert f[:5] == t["chain"], f
    assert s["live_bytes"] == t["held_store"], (s["live_bytes"], t)
    u = doc["unwind"]
    assert u["cfi"] and u["cfi_steps"] > 0 and u["truncated"] == 0, u
    return s, u


def test_frameless_chain_whole():
    s, u = check_chain("chain")
    # every step of these stacks had a rule: none walked blind
    assert u["unknown_steps"] == 0 and u["maps_full"] == 0, u


def test_frameless_chain_frame_pointers_only():
    """For comparison: without CFI the walk cannot get past store."""
    t, r, doc = run_chain("chain", ["--no-cfi"])
    depth = max(len(funcs(s)) for s in r["sites"])
    assert depth < 5, [funcs(s) for s in r["sites"]]
    assert doc["unwind"]["cfi"] is False


def test_mixed_frame_pointer_and_frameless():
    check_chain("chain_mixed")


def test_plt_call_into_library():
    s, u = check_chain("chain_plt")
    assert s["stack"][0]["module"] == "libmtchain.so", s["stack"][0]


def test_signal_frame_on_the_way():
    t, r, doc = run_chain("chain", args=["--signal"])
    s = chain_site(t, r, t["signal_chain"])
    f = funcs(s)
    assert f[:2] == ["xmalloc", "on_signal"], f
    # past the kernel's signal frame: the interrupted code, then store
    assert f.index("store") < f.index("parse") < f.index("serve") < f.index("main"), f
    assert s["live_bytes"] == t["held_signal"], (s, t)
    assert doc["unwind"]["signal_frames"] > 0, doc["unwind"]


def test_site_named_by_the_caller():
    """xmalloc only passes the block through (read from its code): the site
    is named by the function that called it, the stack keeps every frame."""
    t, r, doc = run_chain("chain")
    s = chain_site(t, r, t["chain"])
    assert s["site"] == "store via xmalloc", s["site"]
    assert funcs(s)[0] == "xmalloc"
    t, r, doc = run_chain("chain", args=["--signal"])
    s = chain_site(t, r, t["signal_chain"])
    assert s["site"] == "on_signal via xmalloc", s["site"]


def batch_unwind(argv):
    """The final batch table's stacks line of memtrace -b -- argv:
    {stacks, depth, cfi, fp, blind, pending, truncated, maps_full}."""
    p = spawn([MEMTRACE, "-b", "-d", "0.2", "--"] + argv, stdin=subprocess.DEVNULL)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    final = out.decode().split("(final)")[-1]
    m = re.search(r"^stacks: (\d+)  depth: ([\d.]+)  steps: cfi (\d+) fp (\d+) "
                  r"blind (\d+) \(pending (\d+)\)  truncated: (\d+)  maps full: (\d+)$",
                  final, re.M)
    assert m, final[:600]
    keys = ("stacks", "mean_depth", "cfi_steps", "fp_steps", "unknown_steps",
            "pending_steps", "truncated", "maps_full")
    return {k: float(v) if k == "mean_depth" else int(v)
            for k, v in zip(keys, m.groups())}


def test_unwind_counts_in_batch():
    """The batch header says how stacks were walked (depth, steps, losses):
    the chain's 200 blocks under 8 frames and 5 more under 46, beyond the
    32 kept -- the same numbers as JSON's "unwind" of the same workload."""
    d = tempfile.mkdtemp(prefix="mt-cfi-batch-")
    truth = os.path.join(d, "t.json")
    argv = [workload("chain"), "--deep", "40", "--truth", truth]
    b = batch_unwind(argv)
    t = load_truth(truth)
    deep = t["deep_allocs"]
    shallow = t["allocs"] - deep
    assert deep == 5 and b["stacks"] == t["allocs"], (b, t)
    # xmalloc store parse serve main __libc_start_call_main
    # __libc_start_main _start: 8 frames, 7 steps; the deep ones cut at 32
    assert b["truncated"] == deep, b
    assert b["cfi_steps"] == shallow * 7 + deep * 32, b
    assert b["mean_depth"] == round((shallow * 8 + deep * 32) / t["allocs"], 1), b
    assert b["unknown_steps"] == 0 and b["maps_full"] == 0, b
    p = memtrace_json(["-d", "0.2", "--"] + argv, stdin=subprocess.DEVNULL)
    code, docs, err = finish(p, 30)
    assert code == 0, err
    u = final_doc(docs)["unwind"]
    assert {k: u[k] for k in b} == b, (u, b)
    # --no-cfi: no counters, and the header says so rather than show zeros
    p = spawn([MEMTRACE, "-b", "--no-cfi", "-d", "0.2", "--"] + argv,
              stdin=subprocess.DEVNULL)
    out, _ = p.communicate(timeout=30)
    assert "stacks: by frame pointer only (--no-cfi), not counted" in out.decode()


def test_tui_top_site_names_the_caller():
    """The live table's TOP SITE, through tmux: the caller, not the wrapper."""
    test_tui._require()
    d = tempfile.mkdtemp(prefix="mt-cfi-tui-")
    w = spawn([workload("chain"), "--wait", "--truth", os.path.join(d, "t.json")],
              stdin=subprocess.PIPE)
    pane = None
    try:
        pane = test_tui.Pane(["-d", "0.5", "-p", str(w.pid)], 160, 30)
        pane.wait(lambda s: test_tui._row(s, w.pid) is not None, "row of the chain")
        time.sleep(1)          # its files' CFI is compiled in the background
        w.stdin.write(b"go\n")
        w.stdin.flush()
        assert readline(w.stdout, 10).strip() == "ready"
        s = pane.wait(lambda s: "store via xmalloc" in (test_tui._row(s, w.pid) or ""),
                      "TOP SITE store via xmalloc")
        # the header: how stacks were walked, short (the chain's depth is 8)
        assert re.search(r"stacks depth 8\.0  blind 0  cut 0  maps-full 0", s), s
        # and the sites list names it the same way
        pane.keys("Enter")
        pane.wait(lambda s: "store via xmalloc" in s and "SITE" in s.upper(),
                  "sites list")
    finally:
        if pane:
            pane.close()


def test_redis_command_path():
    """Debian's redis-server (built without frame pointers) under
    redis-benchmark: the SET command's path past _sdsnewlen, and the site
    named by _sdsnewlen, not the zmalloc wrapper."""
    if not shutil.which("redis-server") or not shutil.which("redis-benchmark"):
        raise Skip("redis-server / redis-benchmark not installed")
    port = free_port()
    srv = spawn(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                 "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    p = memtrace_json(["-p", str(srv.pid), "-d", "0.5", "--top-sites", "10"])
    next_json(p, 15)
    wait_cfi_compiled(p)
    subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-n", "20000",
                    "-r", "100000", "-d", "100", "-q"], capture_output=True, timeout=120)
    r, doc = wait_row(p, srv.pid, lambda r: r["live_bytes"] > 1000000, timeout=20)
    names = [x["site"] for x in r["sites"]]
    assert "_sdsnewlen via zmalloc_usable" in names, names
    deep = [funcs(x) for x in r["sites"] if "setCommand" in funcs(x)]
    assert deep, [funcs(x) for x in r["sites"]]
    f = deep[0]
    assert f.index("setCommand") < f.index("processCommand") < f.index("main"), f
    assert doc["unwind"]["unknown_steps"] < doc["unwind"]["cfi_steps"] / 100, doc["unwind"]


def after_call(path, off):
    """Is file offset off of the ELF file path right after a call
    instruction (a true return address)?  objdump decodes the bytes before
    it: a direct call is 5 bytes, indirect ones 2, 3, 6 or 7."""
    for k in (5, 2, 3, 6, 7, 4):
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn",
                              "--start-address=%d" % (off - k),
                              "--stop-address=%d" % off, path],
                             capture_output=True, text=True).stdout
        ins = [l for l in out.splitlines() if l.startswith(" ") and ":\t" in l]
        if len(ins) == 1 and ins[0].split("\t")[1].startswith("call"):
            return True
    return False


NGINX_CONF = """daemon off;
master_process on;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {d}/html;
        location / {{ }}
    }}
}}
"""

# nginx's own allocation wrappers (the pool allocator and its helpers)
NGX_ALLOC = ("ngx_alloc", "ngx_calloc", "ngx_memalign", "ngx_palloc", "ngx_pnalloc",
             "ngx_pcalloc", "ngx_pmemalign")


def test_nginx_request_path():
    """Debian's nginx (no frame pointers) under ab, traced by -p of its
    master: the workers it forked are followed, and their request path is
    seen past ngx_alloc -- the site named by the first caller past the
    wrappers, the exported ngx_http_* functions in call order, every frame
    a true return address (a call instruction before it), none unknown."""
    nginx = "/usr/sbin/nginx"
    if not os.path.exists(nginx) or not shutil.which("ab"):
        raise Skip("nginx / ab (apache2-utils) not installed (tools/setup.sh)")
    d = tempfile.mkdtemp(prefix="mt-nginx-")
    os.chmod(d, 0o755)            # the workers run as nobody
    os.mkdir(os.path.join(d, "html"))
    with open(os.path.join(d, "html", "page.html"), "w") as f:
        f.write("x" * 20000)
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port))
    srv = spawn([nginx, "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")],
                stdout=subprocess.DEVNULL)
    deadline = time.time() + 10
    workers = []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.1)
        try:
            with open("/proc/%d/task/%d/children" % (srv.pid, srv.pid)) as f:
                workers = [int(x) for x in f.read().split()]
        except OSError:
            break
    assert len(workers) == 2, "nginx started no workers: " + open(
        os.path.join(d, "error.log")).read()[-500:]
    p = memtrace_json(["-p", str(srv.pid), "-d", "0.5", "--top-sites", "20"])
    next_json(p, 15)
    wait_cfi_compiled(p)
    ab = subprocess.run(["ab", "-q", "-n", "3000", "-c", "10",
                         "http://127.0.0.1:%d/page.html" % port],
                        capture_output=True, text=True, timeout=120)
    assert "Failed requests:        0" in ab.stdout, ab.stdout + ab.stderr
    # every request allocates its pool and buffers: each worker served some
    deadline = time.time() + 20
    rows = {}
    while time.time() < deadline and not all(
            w in rows and rows[w]["allocs"] > 100 for w in workers):
        doc = next_json(p, deadline - time.time())
        rows = {w: row(doc, w) for w in workers if row(doc, w)}
    served = [r for r in rows.values() if r["allocs"] > 100]
    assert served, rows
    u = doc["unwind"]
    assert u["cfi"] and u["unknown_steps"] < u["cfi_steps"] / 100, u

    path = ("ngx_alloc", "ngx_output_chain", "ngx_http_output_filter",
            "ngx_http_core_content_phase", "ngx_http_core_run_phases",
            "ngx_process_events_and_timers", "main")
    for r in served:
        sites = [s for s in r["sites"] if "ngx_http_core_run_phases" in funcs(s)]
        assert sites, [(s["site"], funcs(s)) for s in r["sites"]]
        for s in sites:
            f = funcs(s)
            names = [x["name"] for x in s["stack"]]
            # far deeper than the 1-3 frames frame pointers gave
            assert len(f) > 8, names
            # named past the wrappers: not by nginx's allocation wrappers
            first = s["site"].split(" via ")[0]
            assert first not in NGX_ALLOC and " via " in s["site"], s["site"]
            # no frame unknown: a function, or an address in a module
            for x in s["stack"]:
                assert x["func"] or (x["module"] and x["name"].startswith("[")), x
                assert "unknown" not in x["name"], names
            # every frame of nginx is a return address: a call precedes it
            for x in s["stack"]:
                if x["module"] == "nginx" and not x.get("inlined"):
                    assert after_call(nginx, x["module_offset"]), (x, names)
        out = [s for s in sites if funcs(s)[0] == "ngx_alloc"
               and "ngx_http_output_filter" in funcs(s)]
        assert out, [funcs(s) for s in sites]
        f = funcs(out[0])
        idx = [f.index(n) for n in path]
        assert idx == sorted(idx), f
        assert out[0]["site"].startswith("ngx_output_chain via "), out[0]["site"]
    assert srv.poll() is None, "nginx died under tracing"


PY_SCRIPT = """
import sys
keep = []
def grow_cache(n):
    for i in range(n):
        keep.append(bytearray(200000 + i))
sys.stdin.readline()
grow_cache(50)
print("ready", flush=True)
sys.stdin.read()
"""


def test_python_interpreter():
    """Debian's python3.11 (no symbols but its exported API; no frame
    pointers): 50 bytearrays of 200,000 + i bytes held by the script are
    one site of exactly their bytes (+1 each: bytearray's NUL), named past
    the allocator wrappers by the exported function that asked
    (PyByteArray_Resize), its stack down through the interpreter loop to
    Py_BytesMain in call order; no frame [unknown]."""
    py = "/usr/bin/python3.11"
    if not os.path.exists(py):
        raise Skip("Debian's python3.11 not installed")
    d = tempfile.mkdtemp(prefix="mt-cfi-py-")
    script = os.path.join(d, "grow.py")
    with open(script, "w") as f:
        f.write(PY_SCRIPT)
    p = memtrace_json(["-d", "0.3", "--top-sites", "10", "--", py, script],
                      stdin=subprocess.PIPE)
    # python3.11's CFI (6 MB of code) compiled before the blocks are made
    wait_cfi_compiled(p)
    deadline = time.time() + 30
    p.stdin.write(b"go\n")
    p.stdin.flush()
    want = sum(200000 + i + 1 for i in range(50))
    held = None
    while time.time() < deadline and held is None:
        doc = next_json(p, 10)
        for r in doc["processes"]:
            held = next((s for s in r["sites"] if s["live_bytes"] == want), held)
    p.stdin.close()
    p.stdin = None
    finish(p)
    assert held, "no site of %d bytes" % want
    f = funcs(held)
    names = [x["name"] for x in held["stack"]]
    assert all(x["func"] or x["name"].startswith("[python3.11+0x") or x["module"]
               for x in held["stack"]) and "[unknown]" not in names, names
    assert held["site"].startswith("PyByteArray_Resize via "), held["site"]
    idx = [f.index(n) for n in ("PyByteArray_Resize", "_PyEval_EvalFrameDefault",
                                "Py_BytesMain")]
    assert idx == sorted(idx) and len(f) > 8, names


TESTS = [(n[len("test_"):], f) for n, f in list(globals().items())
         if n.startswith("test_") and callable(f)]
