# SPDX-License-Identifier: GPL-2.0
"""Stacks through code built without frame pointers, unwound from its
CFI (.eh_frame) in the kernel: the chain workload (-O2
-fomit-frame-pointer) knows its call chain; memtrace must report all of
it, in order -- also when frame-pointer and frameless code mix, across a
PLT call into a library of its own, and through a signal frame."""
import os
import subprocess
import tempfile

from common import finish, load_truth, memtrace_json, row, wait_row, workload


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


TESTS = [(n[len("test_"):], f) for n, f in list(globals().items())
         if n.startswith("test_") and callable(f)]
