# SPDX-License-Identifier: GPL-2.0
"""The node view (memtrace with no -p and no command): no allocator probe,
growth attributed from sampled page faults; exact tracing on demand."""
import os
import subprocess
import time

from common import (MEMTRACE, finish, first_user_func, memtrace_json,
                    next_json, readline, spawn, wait_row, workload)
import test_tui
from test_tui import Pane, Workload, _cell, _row

MIB = 1 << 20
SAMPLE = 64 << 10       # the node view's default sampling step


def links(pid):
    """Kinds of BPF links and perf events memtrace (pid) holds open:
    allocator probes are uprobe_multi links or perf-event uprobes."""
    kinds = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target == "anon_inode:[perf_event]":
                kinds.append("perf_event")
            elif target == "anon_inode:bpf_link":
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    for line in f:
                        if line.startswith("link_type:"):
                            kinds.append(line.split()[1])
        except OSError:
            pass
    return kinds


def _link_progs(pid):
    """bpftool's record of each BPF program behind memtrace's (pid) links."""
    import json
    progs = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf_link":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids = [l.split()[1] for l in f if l.startswith("prog_id:")]
        except OSError:
            continue
        for i in ids:
            out = subprocess.run(["bpftool", "-j", "prog", "show", "id", i],
                                 capture_output=True, text=True)
            if out.returncode == 0:
                progs.append(json.loads(out.stdout))
    return progs


def link_programs(pid):
    """Names of the BPF programs behind memtrace's (pid) open links."""
    return [d.get("name", "") for d in _link_progs(pid)]


def allocator_probes(pid):
    """Allocator probes are one uprobe_multi link per library (session
    uprobes); perf-event uprobes may also be the Go GC probes of Go rows,
    so they are not counted here (the JSON count covers them)."""
    return [k for k in links(pid) if k == "uprobe_multi"]


def growth_bytes(r, kind="growth"):
    """Growth-attributed bytes per innermost user function."""
    out = {}
    for s in r.get("sites", []):
        if s["kind"] != kind or not s["stack"]:
            continue
        fn = first_user_func(s)
        out[fn] = out.get(fn, 0) + s["live_bytes"]
    return out


def test_node_view_growth_sites():
    """Default view: the function that faults memory in is named, with
    bytes within one sample of the truth, and no allocator is probed."""
    p = memtrace_json(["-d", "0.3", "--top-sites", "12"])
    doc = next_json(p, timeout=20)
    assert doc["view"] == "growth", doc.get("view")
    w = spawn([workload("touch"), "32", "4"], stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).startswith("pid")
    wait_row(p, w.pid)
    w.stdin.write(b"go\n")
    w.stdin.flush()
    assert readline(w.stdout, 10).strip() == "touched 36"
    r, _ = wait_row(p, w.pid, lambda r: growth_bytes(r).get("touch_small", 0) >= 4 * MIB - SAMPLE)
    got = growth_bytes(r)
    assert abs(got["touch_big"] - 32 * MIB) <= SAMPLE, got
    assert abs(got["touch_small"] - 4 * MIB) <= SAMPLE, got
    assert r["rss_anon"] >= 36 * MIB, r
    # the address space reserved: map sites, from the mmap calls' stacks
    maps = growth_bytes(r, "map")
    assert sum(maps.values()) >= 36 * MIB, maps
    assert r["mmap_bytes"] >= 36 * MIB, r
    assert r["fault_bytes"] >= 36 * MIB, r
    assert not r["exact"] and r["allocs"] == 0, r
    assert allocator_probes(p.pid) == [], links(p.pid)
    doc = next_json(p)
    while doc.get("type") != "refresh":     # not an OOM record
        doc = next_json(p)
    assert doc["allocator_probes"] == 0, doc["allocator_probes"]
    w.stdin.close()
    w.wait(timeout=10)


def test_node_view_heap_and_mmap_exact_without_syscall_tracepoint():
    """The node view traces no syscall (with one on, every syscall of the
    node pays the slow path): mmap and brk growth still come out exact,
    from the kernel's counters, against a workload that knows its bytes."""
    p = memtrace_json(["-d", "0.2", "--top-sites", "0"])
    next_json(p, timeout=20)
    progs = link_programs(p.pid)
    assert "on_page_fault" in progs, progs
    assert "on_sys_exit" not in progs, progs
    w = spawn([workload("mmaps")], stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).strip() == "ready"
    r0, _ = wait_row(p, w.pid, lambda r: r["rss_bytes"] > 0)
    w.stdin.write(b"go\n")
    w.stdin.flush()
    _, net, _ = readline(w.stdout, 10).split()
    want = r0["mmap_bytes"] + int(net)
    r, _ = wait_row(p, w.pid, lambda r: r["mmap_bytes"] == want)
    assert r["mmap_bytes"] == want, (r0["mmap_bytes"], net, r["mmap_bytes"])
    w.stdin.write(b"brk\n")
    w.stdin.flush()
    _, grown = readline(w.stdout, 10).split()
    want = r["brk_bytes"] + int(grown)
    r2, _ = wait_row(p, w.pid, lambda r: r["brk_bytes"] == want)
    assert r2["brk_bytes"] == want, (r["brk_bytes"], grown, r2["brk_bytes"])
    assert r2["mmap_bytes"] == r["mmap_bytes"], (r["mmap_bytes"], r2["mmap_bytes"])
    # the kernel's counters, as /proc prints them (the workload is idle)
    with open(f"/proc/{w.pid}/status") as f:
        st = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f
              if l.split(":")[0] in ("RssAnon", "RssFile", "RssShmem", "VmData", "VmRSS")}
    r3, _ = wait_row(p, w.pid)
    assert (r3["rss_anon"], r3["rss_file"], r3["rss_shmem"], r3["rss_bytes"]) == \
        (st["RssAnon"], st["RssFile"], st["RssShmem"], st["VmRSS"]), (r3, st)
    assert r3["mmap_bytes"] + r3["brk_bytes"] == st["VmData"], (r3, st)
    w.stdin.close()
    w.wait(timeout=10)
    p.kill()
    p.wait()
    # exact tracing keeps the syscall tracepoint: every call, its result
    q = memtrace_json(["-d", "0.2", "-p", str(os.getpid())])
    next_json(q, timeout=20)
    assert "on_sys_exit" in link_programs(q.pid), link_programs(q.pid)
    q.kill()
    q.wait()


def _prog_runs(mt_pid):
    """Run counts of the BPF programs behind memtrace's links, by name."""
    runs = {}
    for d in _link_progs(mt_pid):
        name = d.get("name", str(d.get("id")))
        runs[name] = runs.get(name, 0) + d.get("run_cnt", 0)
    return runs


def _runs_during_syscalls(args):
    """(syscalls made, runs of memtrace's programs meanwhile) with memtrace
    in args: a getppid() loop, kernel.bpf_stats_enabled on for it."""
    p = memtrace_json(["-d", "0.5"] + args)
    next_json(p, timeout=20)
    loop = spawn([workload("sysloop")], stdin=subprocess.PIPE)
    assert readline(loop.stdout, 10).strip() == "ready"
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        old = f.read().strip()
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        before = _prog_runs(p.pid)
        loop.stdin.write(b"rate 300\n")
        loop.stdin.flush()
        calls = float(readline(loop.stdout, 10).split()[1]) * 0.3
        after = _prog_runs(p.pid)
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(old)
        loop.kill()
        loop.wait()
        p.kill()
        p.wait()
    return calls, {k: after.get(k, 0) - before.get(k, 0) for k in after}


def test_node_view_runs_nothing_per_syscall():
    """The node view's cost follows memory growth: none of its programs
    runs per syscall (the kernel counts every run), where exact tracing's
    sys_exit program runs for each one of them."""
    calls, runs = _runs_during_syscalls([])
    assert calls > 100000, calls
    assert sum(runs.values()) < calls / 100, (calls, runs)
    # the same count sees exact tracing's syscall program at work
    calls, runs = _runs_during_syscalls(["-p", str(os.getpid())])
    assert runs.get("on_sys_exit", 0) >= calls * 0.9, (calls, runs)


def test_node_view_unwinds_through_libraries_from_the_start():
    """A process that faults memory in as it starts, before memtrace has
    read its maps: the kernel entered its libraries' spans as ld.so mapped
    them (no syscall tracepoint), so the stack from libc's memset (no
    frame pointer) reaches the interpreter's function that asked."""
    p = memtrace_json(["-d", "0.3", "--top-sites", "5"])
    next_json(p, timeout=20)
    w = subprocess.Popen(["python3", "-c", "import time\n"
                          "b = bytearray(48 << 20)\ntime.sleep(0.5)\n"])
    r, _ = wait_row(p, w.pid, lambda r: any(
        s["kind"] == "growth" and s["live_bytes"] >= 32 * MIB
        for s in r.get("sites", [])))
    site = max((s for s in r["sites"] if s["kind"] == "growth"),
               key=lambda s: s["live_bytes"])
    funcs = [f.get("func") for f in site["stack"]]
    assert "bytearray___init___impl" in funcs, funcs
    w.wait(timeout=10)
    p.kill()
    p.wait()


def test_node_view_batch_says_what_is_estimated():
    b = subprocess.run([MEMTRACE, "-b", "-d", "0.3", "-n", "2"], capture_output=True,
                       text=True, timeout=60)
    assert b.returncode == 0, b.stderr
    assert "node view: no allocator probes" in b.stdout, b.stdout[:500]
    assert "estimates from page faults" in b.stdout, b.stdout[:500]
    assert "GROWTH SITE" in b.stdout and "ANON" in b.stdout, b.stdout[:500]


def test_exact_warns_about_its_cost():
    p = memtrace_json(["-d", "0.3", "-n", "1", "--exact"])
    code, docs, err = finish(p, timeout=120)
    assert code == 0, err
    assert "--exact probes every malloc and free on the node" in err, err
    assert docs[0]["view"] == "exact"


def test_tui_toggle_exact():
    """Key e: exact tracing of the selected row on, then off again; the
    row and memtrace's open links say so."""
    test_tui._require()
    name = "mtx%d" % (os.getpid() % 100000)
    w, pane = Workload(8, 1, name), None
    try:
        pane = Pane(["-d", "0.5"], 160, 40)
        pane.wait_text("node view")
        pane.keys("/")
        pane.wait_text("filter (command or cgroup):")
        pane.literal(name)
        pane.keys("Enter")
        pane.wait(lambda s: _row(s, w.pid) is not None, "row of the workload")
        mt = pane.memtrace_pid()
        assert allocator_probes(mt) == [], links(mt)
        assert _cell(pane.screen(), w.pid, "LIVE") == "-"
        pane.keys("e")
        pane.wait(lambda s: "exact" in (_row(s, w.pid) or ""), "row says exact")
        assert "uprobe_multi" in allocator_probes(mt), links(mt)
        w.trigger()
        s = pane.wait(lambda s: _cell(s, w.pid, "LIVE") == "9.0M", "LIVE 9.0M")
        assert "grow_big" in _row(s, w.pid), s
        # its sites: exact ones, and the node view's estimates, labelled
        pane.keys("Enter")
        pane.wait_text("grow_big")
        pane.wait_text("[faulted in]")
        pane.keys("Escape")
        pane.wait_text("TRACE")
        pane.keys("e")
        s = pane.wait(lambda s: "exact" not in (_row(s, w.pid) or "x"), "row not exact")
        deadline = time.time() + 5
        while allocator_probes(mt) and time.time() < deadline:
            time.sleep(0.1)
        assert allocator_probes(mt) == [], links(mt)
    finally:
        if pane:
            pane.close()
        w.kill()


TESTS = [
    ("node_view_growth_sites", test_node_view_growth_sites),
    ("node_view_heap_and_mmap_exact", test_node_view_heap_and_mmap_exact_without_syscall_tracepoint),
    ("node_view_unwinds_libraries_from_start", test_node_view_unwinds_through_libraries_from_the_start),
    ("node_view_runs_nothing_per_syscall", test_node_view_runs_nothing_per_syscall),
    ("node_view_batch_says_what_is_estimated", test_node_view_batch_says_what_is_estimated),
    ("node_exact_warns_about_its_cost", test_exact_warns_about_its_cost),
    ("node_tui_toggle_exact", test_tui_toggle_exact),
]
