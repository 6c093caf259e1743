# SPDX-License-Identifier: GPL-2.0
"""Stacks through code built without frame pointers, unwound from its
CFI (.eh_frame) in the kernel: the chain workload (-O2
-fomit-frame-pointer) knows its call chain; memtrace must report all of
it, in order -- also when frame-pointer and frameless code mix, across a
PLT call into a library of its own, and through a signal frame.  Sites
are named by the caller of the allocation wrapper (JSON, the live table
through tmux); Debian's redis-server shows its command path."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from common import (Skip, finish, load_truth, memtrace_json, next_json, readline, row,
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
    return t, row(docs[-1], t["pid"]), docs[-1]


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
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    srv = spawn(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                 "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    p = memtrace_json(["-p", str(srv.pid), "-d", "1", "--top-sites", "10"])
    next_json(p, 15)
    time.sleep(1)          # its files' CFI is compiled in the background
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


TESTS = [(n[len("test_"):], f) for n, f in list(globals().items())
         if n.startswith("test_") and callable(f)]
