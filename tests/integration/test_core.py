# SPDX-License-Identifier: GPL-2.0
"""The tracer core against ground truth: workloads write what they
allocated (tests/workloads/allocs.c); memtrace must report exactly that."""
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

from common import (MEMTRACE, ROOT, Skip, assert_totals, finish, first_user_func,
                    load_truth,
                    memtrace_json, next_json, readline, row, site_bytes,
                    spawn, wait_row, workload)

ALLOCS = workload("allocs")


def tmpfile(name):
    d = tempfile.mkdtemp(prefix="mt-test-")
    return os.path.join(d, name)


def run_cmd(opts, exe=ALLOCS, args=("--threads", "0")):
    """memtrace --json OPTS -- EXE ARGS --truth F: (exit code, truth, the
    process's final row, stderr)."""
    truth_path = tmpfile("truth.json")
    p = memtrace_json(list(opts) + ["--", exe] + list(args) + ["--truth", truth_path])
    code, docs, err = finish(p)
    assert docs and docs[-1]["type"] == "final", err
    truth = load_truth(truth_path)
    r = row(docs[-1], truth["pid"])
    assert r is not None, f"no row for pid {truth['pid']}"
    return code, truth, r, err


def test_cmd_exact_every_allocator():
    """-- CMD: every allocator function, exact totals, sites and exit code."""
    code, truth, r, err = run_cmd(["--top-sites", "50"],
                                  args=("--threads", "0", "--exit-code", "7"))
    assert code == 7, f"exit code {code}, want the command's 7; stderr: {err}"
    assert r["exited"] and r["exit_code"] >> 8 == 7, r
    # gone before its maps could be read: probed by the kernel's record
    assert r["probed"], r
    assert_totals(r, truth)
    assert r["lost_events"] == 0 and not r["loss"], r
    got = site_bytes(r)
    for fn, want in truth["sites"].items():
        if want:
            assert got.get(fn) == want, f"site {fn}: memtrace {got.get(fn)} != truth {want}; {got}"


def test_cmd_batch_leak_report():
    """-- CMD in batch mode ends with what the command still held, by site."""
    truth_path = tmpfile("truth.json")
    p = subprocess.run([MEMTRACE, "-b", "-d", "5", "--", ALLOCS, "--threads", "0",
                        "--truth", truth_path], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    truth = load_truth(truth_path)
    want = (f"pid {truth['pid']} still held {truth['live_bytes']} bytes in "
            f"{truth['live_allocs']} blocks at exit")
    assert want in p.stdout, p.stdout[-3000:]
    tail = p.stdout[p.stdout.index(want):]
    assert "(1048576 bytes)" in tail and "site_malloc+" in tail, tail[:1500]


def test_small_table_spills_exactly():
    """--hot-blocks 4: nearly every live block goes to the big table, and
    frees, reallocs and exits across the two tables still count exactly;
    with threads, the same totals as with the default table."""
    code, truth, r, err = run_cmd(["--hot-blocks", "4", "--top-sites", "50"])
    assert code == 0, err
    assert_totals(r, truth)
    assert not r["loss"] and r["unmatched_frees"] == truth["unmatched_frees"], r
    got = site_bytes(r)
    for fn, want in truth["sites"].items():
        if want:
            assert got.get(fn) == want, f"site {fn}: {got.get(fn)} != {want}"
    keys = ("live_bytes", "live_allocs", "alloc_bytes", "allocs", "frees",
            "unmatched_frees")
    rows = {}
    for opts in ([], ["--hot-blocks", "4"]):
        code, truth, r, err = run_cmd(opts + ["--top-sites", "50"],
                                      args=("--threads", "4"))
        assert code == 0, err
        rows[len(opts)] = {k: r[k] for k in keys}
        assert site_bytes(r).get("thread_main") == truth["sites"]["thread_main"]
    assert rows[0] == rows[2], rows


def bss_value(mt_pid, name):
    """A global of memtrace's BPF object, read with bpftool from the .bss
    map that process holds."""
    for fd in os.listdir(f"/proc/{mt_pid}/fd"):
        try:
            if "bpf-map" not in os.readlink(f"/proc/{mt_pid}/fd/{fd}"):
                continue
            with open(f"/proc/{mt_pid}/fdinfo/{fd}") as f:
                info = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        mid = info.get("map_id", "").strip()
        show = json.loads(subprocess.check_output(["bpftool", "-j", "map", "show", "id", mid]))
        if not show.get("name", "").endswith(".bss"):
            continue
        dump = json.loads(subprocess.check_output(["bpftool", "-j", "map", "dump", "id", mid]))
        for v in dump[0]["formatted"]["value"][".bss"]:
            if name in v:
                return v[name]
    raise AssertionError(f"no {name} in memtrace's .bss")


def bucket_spills(mt_pid):
    """Sum of the per-bucket counts of blocks in the big table."""
    for fd in os.listdir(f"/proc/{mt_pid}/fd"):
        try:
            with open(f"/proc/{mt_pid}/fdinfo/{fd}") as f:
                info = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        mid = info.get("map_id", "").strip()
        if not mid:
            continue
        show = json.loads(subprocess.check_output(["bpftool", "-j", "map", "show", "id", mid]))
        if show.get("name") != "hot":
            continue
        dump = json.loads(subprocess.check_output(["bpftool", "-j", "map", "dump", "id", mid]))
        return sum(e["formatted"]["value"]["spills"] for e in dump)
    raise AssertionError("no hot map in memtrace")


def test_spilled_blocks_counted_back_down():
    """Blocks in the big table are counted, in all and per bucket of the
    small one; when their process exits and is swept, the counts return
    to 0, so later lookups in those buckets stop searching the big table."""
    if not shutil.which("bpftool"):
        raise Skip("bpftool missing")
    w, truth_path = start_waiting(["--threads", "0"])
    p = memtrace_json(["-p", str(w.pid), "--hot-blocks", "4", "-d", "0.2",
                       "--top-sites", "0"])
    next_json(p)
    truth = go_and_wait(w, truth_path)
    wait_row(p, w.pid, lambda r: r["allocs"] == truth["allocs"])
    # --hot-blocks 4: 2 buckets of 3 slots, the rest is in the big table
    assert bss_value(p.pid, "spilled") >= truth["live_allocs"] - 6
    assert bucket_spills(p.pid) == bss_value(p.pid, "spilled")
    w.stdin.close()
    wait_row(p, w.pid, lambda r: r["exited"])
    deadline = time.time() + 10
    while bss_value(p.pid, "spilled") != 0 and time.time() < deadline:
        time.sleep(0.2)
    assert bss_value(p.pid, "spilled") == 0
    assert bucket_spills(p.pid) == 0
    p.send_signal(signal.SIGINT)
    finish(p)


def test_cmd_threads():
    """Threads allocate concurrently: the thread site is exact."""
    code, truth, r, err = run_cmd(["--top-sites", "50"], args=("--threads", "4"))
    assert code == 0, err
    got = site_bytes(r)
    assert got.get("thread_main") == truth["sites"]["thread_main"], (got, truth)
    # pthread_create itself allocates (TLS); everything of ours is exact
    assert r["live_bytes"] >= truth["live_bytes"]
    for fn in ("site_malloc", "site_calloc", "site_realloc", "site_memalign"):
        assert got.get(fn) == truth["sites"][fn], (fn, got, truth)
    # exiting threads make glibc free its per-thread cache through free():
    # the allocator's housekeeping, not unmatched frees of the program's
    assert r["unmatched_frees"] == truth["unmatched_frees"] == 0, r


def test_cmd_free_all_leaves_nothing():
    code, truth, r, err = run_cmd([], args=("--threads", "0", "--free-all"))
    assert code == 0, err
    assert truth["live_bytes"] == 0
    assert_totals(r, truth)


def start_waiting(extra=(), **kw):
    truth_path = tmpfile("truth.json")
    w = spawn([ALLOCS, "--wait", "--truth", truth_path] + list(extra),
              stdin=subprocess.PIPE, **kw)
    assert readline(w.stdout, 10).strip() == "ready"
    return w, truth_path


def go_and_wait(w, truth_path=None):
    """Let a --wait workload allocate; wait for it; return its truth."""
    w.stdin.write(b"go\n")
    w.stdin.flush()
    assert readline(w.stdout, 10).strip() == "done"
    return load_truth(truth_path) if truth_path else None


def test_pid_exact_and_old_blocks_ignored():
    """-p PID: blocks allocated before tracing are ignored when freed."""
    w, truth_path = start_waiting(["--threads", "0"])
    p = memtrace_json(["-p", str(w.pid), "-d", "0.2", "--top-sites", "50"])
    next_json(p)                       # attached and refreshing
    truth = go_and_wait(w, truth_path)
    r, _ = wait_row(p, w.pid, lambda r: r["allocs"] == truth["allocs"])
    r, _ = wait_row(p, w.pid, lambda r: True)   # one more refresh: stable
    assert_totals(r, truth)
    assert r["unmatched_frees"] == truth["unmatched_frees"] == 10, r
    got = site_bytes(r)
    assert got.get("site_malloc") == truth["sites"]["site_malloc"], got
    # the process exits while traced: memtrace notes it and goes on
    w.stdin.close()
    r, _ = wait_row(p, w.pid, lambda r: r["exited"])
    assert_totals(r, truth)
    assert p.poll() is None, "memtrace must keep running after a traced exit"


def test_process_started_after_memtrace():
    """--exact, no -p: a process started later is traced from its first
    allocation."""
    p = memtrace_json(["--exact", "-d", "0.3", "--top-sites", "0"])
    next_json(p, timeout=20)
    truth_path = tmpfile("truth.json")
    w = spawn([ALLOCS, "--wait", "--threads", "0", "--truth", truth_path],
              stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).strip() == "ready"
    truth = go_and_wait(w, truth_path)
    r, _ = wait_row(p, w.pid, lambda r: r["allocs"] >= truth["allocs"])
    # its own 10 "old" blocks were traced too: they count as allocs+frees
    want = dict(truth)
    want["allocs"] += 10
    want["alloc_bytes"] += 40000
    want["frees"] += 10
    want["free_bytes"] += 40000
    assert_totals(r, want)
    assert r["unmatched_frees"] == 0, r
    w.stdin.close()
    w.wait(timeout=10)


def test_node_static_binary_started_later():
    """--exact, no -p: a static executable started later has its malloc probed
    (node-wide, from the kernel's record of its mapping); what it
    allocates after that is exact."""
    exe = build_static()
    p = memtrace_json(["--exact", "-d", "0.3", "--top-sites", "50"])
    next_json(p, timeout=20)
    truth_path = tmpfile("truth.json")
    w = spawn([exe, "--wait", "--threads", "0", "--truth", truth_path],
              stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).strip() == "ready"
    r, _ = wait_row(p, w.pid, lambda r: r["probed"])
    truth = go_and_wait(w, truth_path)
    r, _ = wait_row(p, w.pid, lambda r: site_bytes(r).get("site_memalign")
                    == truth["sites"]["site_memalign"])
    got = site_bytes(r)
    for fn in ("site_calloc", "site_realloc", "site_memalign"):
        assert got.get(fn) == truth["sites"][fn], (fn, got, truth["sites"])
    w.stdin.close()
    w.wait(timeout=10)
    shutil.rmtree(os.path.dirname(exe))


def test_pid_follows_forked_worker():
    """-p PID: a worker the process forks later (no exec) is traced too,
    with exact bytes, in a row of its own."""
    truth_path = tmpfile("truth.json")
    w = spawn([workload("forker"), "--truth", truth_path], stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).startswith("ready")
    p = memtrace_json(["-p", str(w.pid), "-d", "0.2", "--top-sites", "5"])
    next_json(p)
    w.stdin.write(b"fork\n")
    w.stdin.flush()
    truth = load_truth(truth_path)
    r, _ = wait_row(p, truth["pid"], lambda r: r["live_bytes"] >= truth["live_bytes"])
    assert r["live_bytes"] == truth["live_bytes"], r
    assert r["live_allocs"] == truth["live_allocs"], r
    assert r["probed"], r
    assert site_bytes(r).get("worker_alloc") == truth["live_bytes"], r["sites"]
    w.stdin.close()
    w.wait(timeout=10)
    p.send_signal(signal.SIGINT)
    finish(p)


def test_block_freed_by_one_thread_reused_by_another():
    """Addresses move between threads: B frees a block that A's next
    malloc gets, then frees that new block too (the same address as B's
    last free, yet a live block): every count exact."""
    truth_path = tmpfile("truth.json")
    p = memtrace_json(["-d", "0.2", "--top-sites", "20", "--",
                       workload("xthread"), "--truth", truth_path],
                      stdin=subprocess.PIPE)
    truth = load_truth(truth_path)
    assert truth["reused"], "the workload did not reuse across threads"
    r, _ = wait_row(p, truth["pid"], lambda r: r["allocs"] >= truth["allocs"])
    p.stdin.close()
    p.stdin = None
    code, docs, err = finish(p)
    r = row(docs[-1], truth["pid"]) or r
    # the workload's own sites (pthread_create's calloc is libc's)
    got = {}
    for s in r["sites"]:
        fn = first_user_func(s)
        if fn in ("main", "b_main"):
            for k in ("live_bytes", "live_allocs", "allocs"):
                got[k] = got.get(k, 0) + s[k]
    got["frees"] = got.get("allocs", 0) - got.get("live_allocs", 0)
    for k in ("live_bytes", "live_allocs", "allocs", "frees"):
        assert got.get(k) == truth[k], f"{k}: {got.get(k)} != {truth[k]}; {r['sites']}"


def test_container_libc_copy_in_own_mount_namespace():
    """A process in its own mount namespace, using a libc copy at a path
    that exists only there, is traced through /proc/PID/root."""
    if not shutil.which("unshare"):
        raise Skip("unshare missing")
    d = tempfile.mkdtemp(prefix="mt-ns-")
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    truth_path = tmpfile("truth.json")
    script = (f"mount -t tmpfs mt-ns {d} && cp {libc} {d}/libc.so.6 && "
              f"LD_LIBRARY_PATH={d} exec {ALLOCS} --wait --threads 0 --truth {truth_path}")
    w = spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
              stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).strip() == "ready"
    with open(f"/proc/{w.pid}/maps") as f:
        maps = f.read()
    assert f"{d}/libc.so.6" in maps, "workload does not use the copied libc"
    assert not os.path.exists(f"{d}/libc.so.6"), "the copy must be invisible outside"
    p = memtrace_json(["-p", str(w.pid), "-d", "0.2", "--top-sites", "0"])
    next_json(p)
    truth = go_and_wait(w, truth_path)
    r, _ = wait_row(p, w.pid, lambda r: r["allocs"] == truth["allocs"])
    assert_totals(r, truth)
    w.stdin.close()
    w.wait(timeout=10)
    os.rmdir(d)


def test_child_of_command_is_followed():
    """-- sh -c '...': the command's child is traced from its exec."""
    truth_path = tmpfile("truth.json")
    p = memtrace_json(["--top-sites", "0", "--", "sh", "-c",
                       f"{ALLOCS} --threads 0 --truth {truth_path}; true"])
    code, docs, err = finish(p)
    assert code == 0, err
    truth = load_truth(truth_path)
    r = None
    for d in docs:
        r = row(d, truth["pid"]) or r
    assert r is not None, "child row missing"
    assert_totals(r, truth)


def test_exec_starts_a_new_image():
    """A traced shell that execs the workload keeps its pid: the shell's
    heap is gone with its image, only the workload's blocks count."""
    truth_path = tmpfile("truth.json")
    p = memtrace_json(["--top-sites", "0", "--", "sh", "-c",
                       f"x=$(echo warm up the shell heap); exec {ALLOCS} --threads 0 "
                       f"--truth {truth_path}"])
    code, docs, err = finish(p)
    assert code == 0, err
    truth = load_truth(truth_path)
    r = row(docs[-1], truth["pid"])
    assert r is not None, "row of the exec'd workload missing"
    assert_totals(r, truth)


def test_mmap_family_and_page_faults():
    """mmap/munmap/mremap (libc and raw syscalls): anonymous bytes exact;
    page faults at least the pages touched."""
    w = spawn([workload("mmaps")], stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).strip() == "ready"
    p = memtrace_json(["-p", str(w.pid), "-d", "0.2", "--top-sites", "0"])
    next_json(p)
    w.stdin.write(b"go\n")
    w.stdin.flush()
    _, net, touched = readline(w.stdout, 10).split()
    r, _ = wait_row(p, w.pid, lambda r: r["mmap_bytes"] == int(net))
    r, _ = wait_row(p, w.pid)
    assert r["mmap_bytes"] == int(net), (r["mmap_bytes"], net)
    assert r["page_faults"] >= int(touched), (r["page_faults"], touched)
    assert r["allocs"] == 0 and r["lost_events"] == 0, r
    w.stdin.close()
    w.wait(timeout=10)


def test_thread_id_means_its_process():
    """-p TID of a non-main thread traces the whole process, and says so."""
    code = ("import threading,time\n"
            "t=threading.Thread(target=time.sleep,args=(30,));t.start();"
            "print(t.native_id,flush=True);t.join()")
    py = spawn(["python3", "-c", code])
    tid = int(readline(py.stdout, 10))
    p = subprocess.run([MEMTRACE, "-b", "-n", "1", "-d", "0.1", "-p", str(tid)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert f"pid {tid} is a thread of process {py.pid}" in p.stderr, p.stderr
    assert f"\n{py.pid:7d} " in p.stdout, p.stdout


def test_unknown_pid():
    p = subprocess.run([MEMTRACE, "-b", "-p", "999999999"], capture_output=True, text=True)
    assert p.returncode != 0
    assert "invalid pid" in p.stderr or "no such process" in p.stderr, p.stderr
    p = subprocess.run([MEMTRACE, "-b", "-p", "4194000"], capture_output=True, text=True)
    assert p.returncode == 1, p.returncode
    assert p.stderr.strip() == "memtrace: pid 4194000: no such process", p.stderr


def test_not_a_terminal_falls_back_to_batch():
    p = subprocess.run([MEMTRACE, "-n", "1", "-d", "0.1", "-p", str(os.getpid())],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "stdout is not a terminal" in p.stderr, p.stderr
    assert p.stdout.startswith("memtrace - "), p.stdout[:200]


def test_bad_options():
    for args in (["-d", "abc"], ["-n", "-3"], ["--nope"], ["-p", "12", "--", "true"]):
        p = subprocess.run([MEMTRACE] + args, capture_output=True, text=True)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert p.stderr.startswith("memtrace:") or "Try" in p.stderr, p.stderr
    p = subprocess.run([MEMTRACE, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "Usage: memtrace" in p.stdout


def test_not_root():
    nobody = pwd.getpwnam("nobody")

    def drop():
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    p = subprocess.run([MEMTRACE, "-b", "-n", "1"], capture_output=True, text=True,
                       preexec_fn=drop)
    assert p.returncode == 1
    assert "must run as root" in p.stderr and p.stderr.count("\n") == 1, p.stderr


def build_musl():
    if not shutil.which("musl-gcc"):
        raise Skip("musl-gcc (musl-tools) not installed")
    d = tempfile.mkdtemp(prefix="mt-musl-")
    exe = os.path.join(d, "allocs-musl")
    src = os.path.join(os.path.dirname(os.path.dirname(__file__)), "workloads", "allocs.c")
    subprocess.run(["musl-gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-o", exe, src,
                    "-lpthread"], check=True, capture_output=True)
    return exe, d


def test_musl_libc_exact():
    """musl (Alpine-style) processes: its loader is its libc; realloc(p, 0)
    returns a new block there.  Exact under -- CMD and under -p."""
    exe, d = build_musl()
    code, truth, r, err = run_cmd(["--top-sites", "50"], exe=exe)
    assert code == 0, err
    assert_totals(r, truth)
    assert site_bytes(r).get("site_realloc") == truth["sites"]["site_realloc"]

    truth_path = tmpfile("truth.json")
    w = spawn([exe, "--wait", "--threads", "2", "--truth", truth_path],
              stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).strip() == "ready"
    with open(f"/proc/{w.pid}/maps") as f:
        assert "musl" in f.read()
    p = memtrace_json(["-p", str(w.pid), "-d", "0.2", "--top-sites", "50"])
    next_json(p)
    truth = go_and_wait(w, truth_path)
    r, _ = wait_row(p, w.pid, lambda r: r["allocs"] >= truth["allocs"])
    r, _ = wait_row(p, w.pid)
    assert_totals(r, truth)
    assert r["unmatched_frees"] == 10
    w.stdin.close()
    w.wait(timeout=10)
    shutil.rmtree(d)


def test_no_btf():
    """A kernel without BTF: one clear line, exit 1 (simulated by hiding
    /sys/kernel/btf in a private mount namespace)."""
    if not shutil.which("unshare"):
        raise Skip("unshare missing")
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        f"mount -t tmpfs mt-nobtf /sys/kernel/btf && exec {MEMTRACE} -b -n 1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.count("\n") == 1 and "no BTF" in p.stderr, p.stderr


def test_unwritable_profile_path():
    """--pprof/--folded into a missing directory: a clear error at start,
    exit 1, before anything is traced or run (it used to come at exit,
    after the whole trace)."""
    truth_path = tmpfile("truth.json")
    p = memtrace_json(["--pprof", "/nonexistent-dir/heap.pb.gz", "--folded",
                       "/nonexistent-dir/heap.folded", "--", ALLOCS, "--threads", "0",
                       "--truth", truth_path])
    code, docs, err = finish(p)
    assert code == 1, code
    assert "memtrace: /nonexistent-dir/heap.pb.gz: cannot be written" in err, err
    assert not docs and not os.path.exists(truth_path), "the command ran"


def test_output_disk_full():
    """-o on a full disk (/dev/full): a one-line error, exit 1."""
    p = subprocess.run([MEMTRACE, "-b", "-n", "3", "-d", "0.1", "-o", "/dev/full",
                        "-p", str(os.getpid())], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "memtrace: /dev/full: write error: No space left on device" in p.stderr, p.stderr


def build_static(strip=False):
    """allocs.c linked statically (malloc is in the executable itself)."""
    if not shutil.which("gcc"):
        raise Skip("gcc missing")
    d = tempfile.mkdtemp(prefix="mt-static-")
    exe = os.path.join(d, "allocs_static")
    src = os.path.join(os.path.dirname(ALLOCS), "..", "..", "tests", "workloads", "allocs.c")
    c = subprocess.run(["gcc", "-static", "-O1", "-g", "-fno-omit-frame-pointer",
                        "-fno-inline-functions-called-once", "-o", exe,
                        os.path.normpath(src), "-lpthread"], capture_output=True)
    if c.returncode:
        raise Skip("no static libc (libc6-dev static archive)")
    if strip:
        subprocess.run(["strip", exe], check=True)
    return exe


def test_static_binary_exact():
    """A static executable has malloc inside it: probed there, exact.  The
    C library's own start-up allocations (_dl_non_dynamic_init, before
    main) are real and shown; everything else matches the truth."""
    exe = build_static()
    code, truth, r, err = run_cmd(["--top-sites", "50"], exe=exe)
    assert code == 0, err
    assert "no C library" not in err, err
    startup = [s for s in r["sites"]
               if any(f["func"].startswith("_dl_") for f in s["stack"])]
    assert all(s["live_allocs"] == s["allocs"] for s in startup), startup
    for k in ("live_bytes", "alloc_bytes"):
        assert r[k] - sum(s[k] for s in startup) == truth[k], (k, r, truth)
    for k in ("live_allocs", "allocs"):
        assert r[k] - sum(s[k] for s in startup) == truth[k], (k, r, truth)
    for k in ("free_bytes", "frees", "unmatched_frees"):
        assert r[k] == truth[k], (k, r[k], truth[k])
    got = site_bytes(r)
    for fn, want in truth["sites"].items():
        if want:
            assert got.get(fn) == want, f"site {fn}: memtrace {got.get(fn)} != truth {want}; {got}"
    shutil.rmtree(os.path.dirname(exe))


def test_stripped_static_binary_warns():
    """A stripped static executable: no malloc to find, a clear warning;
    its mmap, brk and page faults are still counted."""
    exe = build_static(strip=True)
    w = spawn([exe, "--wait", "--threads", "0"], stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).strip() == "ready"
    p = memtrace_json(["-p", str(w.pid), "-d", "0.2", "-n", "2"])
    code, docs, err = finish(p)
    assert code == 0, err
    assert f"pid {w.pid}" in err and "no C library" in err, err
    assert row(docs[-1], w.pid)["probed"] is False
    shutil.rmtree(os.path.dirname(exe))


def test_linked_allocator_exact():
    """A program linked against an allocator of its own (as with jemalloc
    or tcmalloc): libc's malloc is never called; memtrace finds the
    allocator among its libraries before it runs and is exact."""
    code, truth, r, err = run_cmd(["--top-sites", "50"], exe=workload("allocs_mtalloc"))
    assert code == 0, err
    assert_totals(r, truth)
    assert r["unmatched_frees"] == truth["unmatched_frees"], r
    got = site_bytes(r)
    for fn, want in truth["sites"].items():
        if want:
            assert got.get(fn) == want, f"site {fn}: memtrace {got.get(fn)} != truth {want}; {got}"


def pid_exact_with_preload(lib, opts=()):
    """allocs --wait with lib in LD_PRELOAD, traced with -p: exact totals,
    and its 10 frees of blocks from before tracing are unmatched, once
    each.  Returns the still running memtrace."""
    env = dict(os.environ, LD_PRELOAD=lib)
    w, truth_path = start_waiting(["--threads", "0"], env=env)
    p = memtrace_json(["-p", str(w.pid), "-d", "0.2", "--top-sites", "50"] + list(opts))
    next_json(p)
    truth = go_and_wait(w, truth_path)
    r, _ = wait_row(p, w.pid, lambda r: r["allocs"] == truth["allocs"])
    r, _ = wait_row(p, w.pid, lambda r: True)
    assert_totals(r, truth)
    assert r["unmatched_frees"] == truth["unmatched_frees"] == 10, r
    assert site_bytes(r).get("site_malloc") == truth["sites"]["site_malloc"]
    w.stdin.close()
    w.wait(timeout=10)
    return p


def test_preloaded_allocator_pid():
    """-p PID of a program with an allocator in LD_PRELOAD: the allocator
    is found in its mappings and probed; exact from then on."""
    p = pid_exact_with_preload(workload("libmtalloc.so"), ["-v"])
    p.send_signal(signal.SIGINT)
    code, docs, err = finish(p)
    assert "libmtalloc.so: malloc" in err, err


def test_forwarding_wrapper_counted_once():
    """A preloaded malloc family passing each call on to the C library's:
    both files are probed, each block and each free still count once.
    Under -- CMD (found through LD_PRELOAD before the command runs) and
    under -p (found in the process's mappings)."""
    lib = workload("libmtfwd.so")
    env = dict(os.environ, LD_PRELOAD=lib)
    truth_path = tmpfile("truth.json")
    p = memtrace_json(["-v", "--top-sites", "50", "--", ALLOCS, "--threads", "2",
                       "--truth", truth_path], env=env)
    code, docs, err = finish(p)
    assert code == 0, err
    assert "libmtfwd.so: malloc" in err and "libc.so.6: malloc" in err, err
    truth = load_truth(truth_path)
    r = row(docs[-1], truth["pid"])
    # the two threads' start-up allocations (TLS) are real: compare
    # against a run without the wrapper rather than the workload's count
    base = run_cmd(["--top-sites", "50"], args=("--threads", "2"))[2]
    for k in ("live_bytes", "live_allocs", "alloc_bytes", "allocs",
              "free_bytes", "frees", "unmatched_frees"):
        assert r[k] == base[k], (k, r[k], base[k])
    assert r["allocs"] >= truth["allocs"] and r["unmatched_frees"] == base["unmatched_frees"]
    assert site_bytes(r).get("site_malloc") == truth["sites"]["site_malloc"]
    pid_exact_with_preload(lib)


def test_sigint_detaches_and_target_survives():
    w, truth_path = start_waiting(["--threads", "0"])
    p = memtrace_json(["-p", str(w.pid), "-d", "0.2"])
    next_json(p)
    p.send_signal(signal.SIGINT)
    code, docs, err = finish(p)
    assert code == 0, (code, err)
    # the target is neither stopped nor crashed, and runs its allocations fine
    with open(f"/proc/{w.pid}/stat") as f:
        state = f.read().rsplit(")", 1)[1].split()[0]
    assert state in "RS", f"target state {state}"
    go_and_wait(w)
    w.stdin.close()
    assert w.wait(timeout=10) == 0
    # no uprobe perf events are left behind: no fd of ours remains
    out = subprocess.run(["bpftool", "link", "show"], capture_output=True, text=True).stdout
    assert "memtrace" not in out


def test_untrusted_comm_is_escaped():
    d = tempfile.mkdtemp(prefix="mt-comm-")
    evil = os.path.join(d, 'a"b\\\x1b[31mc\nd')
    shutil.copy(ALLOCS, evil)
    w = spawn([evil, "--wait"], stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).strip() == "ready"
    p = memtrace_json(["-p", str(w.pid), "-d", "0.2", "-n", "2"])
    code, docs, err = finish(p)
    r = row(docs[-1], w.pid)
    assert r["comm"] == os.path.basename(evil)[:15], repr(r["comm"])
    b = subprocess.run([MEMTRACE, "-b", "-p", str(w.pid), "-d", "0.2", "-n", "1"],
                       capture_output=True)
    assert b.returncode == 0, b.stderr
    assert b"\x1b" not in b.stdout and b"\\x1b[31mc\\x0ad" in b.stdout, b.stdout
    w.stdin.close()
    w.wait(timeout=10)
    shutil.rmtree(d)


def test_entry_probes_fallback_exact():
    """--entry-probes puts every probe at the function entry (the
    fallback when no cheaper site is safe): still exact."""
    code, truth, r, err = run_cmd(["--entry-probes", "--top-sites", "0"])
    assert code == 0, err
    assert_totals(r, truth)


def test_classic_return_probes_exact():
    """--no-session: uprobe + uretprobe (the fallback on kernels without
    session uprobes) counts exactly the same, threads included."""
    for extra in (["--no-session"], ["--no-session", "--entry-probes"]):
        code, truth, r, err = run_cmd(extra + ["--top-sites", "50"])
        assert code == 0, err
        assert_totals(r, truth)
        got = site_bytes(r)
        for fn, want in truth["sites"].items():
            if want:
                assert got.get(fn) == want, (extra, fn, got)


def test_probe_sites_reported():
    """-v says where each probe went; free is moved past its NULL test."""
    p = subprocess.run([MEMTRACE, "-v", "-b", "-n", "1", "-d", "0.1", "--", "true"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    lines = [l for l in p.stderr.splitlines() if "libc.so" in l]
    names = {l.split(": ")[2].split("+")[0] for l in lines}
    assert {"malloc", "free", "calloc", "realloc", "posix_memalign"} <= names, p.stderr
    free = [l for l in lines if ": free+" in l][0]
    assert "free+0:" not in free, free


def sampled_sigma(n, size, rate):
    """Standard deviation of the Poisson-sampling estimate of n blocks of
    size bytes at mean sampling interval rate: s^2 (1/p - 1) per block."""
    import math
    p = -math.expm1(-size / rate)
    return math.sqrt(n * size * size * (1 / p - 1))


def test_sampling_unbiased_within_bounds():
    """--sample-bytes: per-site live bytes within 4 sigma of the truth."""
    rate = 65536
    results = {}
    for sample in (0, rate):
        truth_path = tmpfile("truth.json")
        p = memtrace_json(["-d", "0.2", "--top-sites", "5", "--sample-bytes",
                           str(sample), "--", workload("sample"), "--truth",
                           truth_path], stdin=subprocess.PIPE)
        truth = load_truth(truth_path)
        r, _ = wait_row(p, truth["pid"],
                        lambda r: r["live_bytes"] > 0 and len(r.get("sites", [])) >= 2)
        r, _ = wait_row(p, truth["pid"])
        p.stdin.close()
        p.stdin = None
        finish(p)
        results[sample] = (r, truth)
    r, truth = results[0]
    got = site_bytes(r)
    assert got["small_site"] == truth["small_site"] and got["big_site"] == truth["big_site"], got
    assert not r["sampled"]
    r, truth = results[rate]
    assert r["sampled"]
    # frees of unsampled blocks are expected, not "unmatched"
    assert r["unmatched_frees"] == 0, r
    got = site_bytes(r)
    bounds = {"small_site": sampled_sigma(200000, 263.5, rate),
              "big_site": sampled_sigma(600, 100 * 1024, rate)}
    for fn, sigma in bounds.items():
        err = abs(got[fn] - truth[fn])
        assert err <= 4 * sigma, f"{fn}: estimate {got[fn]} vs {truth[fn]}: off by {err}, 4 sigma = {4 * sigma:.0f}"


def test_sampled_frees_match_exactly():
    """--sample-bytes with a malloc/free loop: every sampled block's free is
    matched (nothing left live), and frees of unsampled blocks are not
    reported as unmatched."""
    p = memtrace_json(["--sample-bytes", "65536", "--top-sites", "10", "--",
                       workload("bench_tight"), "-t", "0.2", "200000"])
    code, docs, err = finish(p)
    assert code == 0, err
    rows = [r for r in docs[-1]["processes"] if r["comm"] == "bench_tight"]
    assert rows, docs[-1]
    r = rows[0]
    assert r["sampled"] and r["allocs"] > 0, r
    # the loop's blocks, all freed (stdio's buffer, if sampled, is not)
    loop = [s for s in r["sites"] if "pairs" in [f["func"] for f in s["stack"]]]
    assert loop and sum(s["allocs"] for s in loop) > 0, r["sites"]
    assert all(s["live_bytes"] == 0 and s["live_allocs"] == 0 for s in loop), loop
    assert r["unmatched_frees"] == 0, r


def test_iterations_count_and_final_rates():
    """-n 3 prints three tables, the last one final; a process that exits
    a few ms after a refresh gets no rate measured over those ms (10 KB
    over 5 ms would read as 2 MB/s)."""
    w = spawn([ALLOCS, "--wait", "--threads", "0"], stdin=subprocess.PIPE)
    assert readline(w.stdout, 10).strip() == "ready"
    p = memtrace_json(["-p", str(w.pid), "-d", "0.3", "-n", "3"])
    code, docs, err = finish(p)
    assert code == 0, err
    # "oom" lines report OOM kills anywhere on the node (other tests')
    assert [d["type"] for d in docs if d["type"] != "oom"] == \
        ["refresh", "refresh", "final"], docs
    w.stdin.close()
    w.wait(timeout=10)
    # a command that allocates and exits well inside one 2 s interval
    code, truth, r, err = run_cmd(["-d", "2"])
    assert code == 0, err
    assert r["growth_bps"] == 0 and r["alloc_bps"] == 0, r
    assert r["peak_bytes"] >= r["live_bytes"] and r["peak_bytes"] > 0, r


def test_pprof_duration_and_file_as_invoked():
    """pprof's Duration is the traced run (not the time to write the file),
    and File: names the executable as invoked, through a symlink."""
    if not shutil.which("go"):
        raise Skip("go (golang-go) not installed: no pprof reader")
    d = tempfile.mkdtemp(prefix="mt-pprof-dur-")
    link = os.path.join(d, "invoked-name")
    os.symlink(ALLOCS, link)
    prof = os.path.join(d, "heap.pb.gz")
    p = memtrace_json(["-d", "0.5", "--pprof", prof, "--", link, "--wait", "--threads", "0"],
                      stdin=subprocess.PIPE)
    time.sleep(1.6)
    p.stdin.write(b"go\n")
    p.stdin.close()
    p.stdin = None
    code, docs, err = finish(p)
    assert code == 0, err
    out = subprocess.run(["go", "tool", "pprof", "-top", prof], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "File: invoked-name" in out.stdout, out.stdout[:500]
    m = [l for l in out.stdout.splitlines() if "Duration:" in l]
    assert m, out.stdout[:500]
    dur = m[0].split("Duration:")[1].split(",")[0].strip()
    secs = float(dur[:-2]) / 1000 if dur.endswith("ms") else float(dur[:-1])
    assert 1.5 <= secs < 30, m[0]
    shutil.rmtree(d)


def test_untrusted_symbol_escaped_everywhere():
    """A function whose ELF symbol holds ESC, ';' and a byte that is not
    UTF-8, in an executable whose file name holds ESC and a quote: JSON
    keeps the name (escaped), pprof and the folded file show it escaped,
    no output carries the raw bytes; the site's bytes are the truth."""
    d = tempfile.mkdtemp(prefix="mt-evilsym-")
    exe = os.path.join(d.encode(), b'ev"\x1b[1msym')
    shutil.copy(workload("evilsym"), exe)
    prof = os.path.join(d, "heap.pb.gz")
    folded = os.path.join(d, "heap.folded")
    p = subprocess.Popen([MEMTRACE, "--json", "-d", "0.3", "--pprof", prof,
                          "--folded", folded, "--", exe],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert b"allocated 10 x 100000" in out, out[-300:]
    final = [json.loads(l.decode("utf-8", errors="strict"))
             for l in out.splitlines() if l.startswith(b"{")][-1]
    comm = os.path.basename(exe)[:15].decode("latin-1")
    r = [x for x in final["processes"] if x["comm"] == comm]
    assert r, [x["comm"] for x in final["processes"]]
    evil = "evil\x1b[31m;leak\xff"        # JSON: the bytes, escaped
    s = [x for x in r[0]["sites"] if x["site"] == evil]
    assert len(s) == 1 and s[0]["live_bytes"] == 10 * 100000 and \
        s[0]["live_allocs"] == 10, r[0]["sites"]
    assert s[0]["stack"][0]["func"] == evil, s[0]["stack"][0]
    # folded: one token per frame, separators and bad bytes as '_'
    raw = open(folded, "rb").read()
    assert b"\x1b" not in raw and b"\xff" not in raw, raw[:300]
    raw.decode("utf-8", errors="strict")
    lines = [l for l in raw.decode().splitlines()
             if l.endswith(";evil_[31m_leak_ 1000000")]
    assert len(lines) == 1 and lines[0].startswith("ev\"_[1msym;"), raw[:500]
    if shutil.which("go"):
        top = subprocess.run(["go", "tool", "pprof", "-top", "-unit=B",
                              "-sample_index=inuse_space", prof],
                             capture_output=True, timeout=120)
        assert top.returncode == 0, top.stderr
        assert b"\x1b" not in top.stdout and b"\xff" not in top.stdout, \
            top.stdout[:500]
        text = top.stdout.decode("utf-8", errors="strict")
        assert "File: ev\"\\x1b[1msym" in text, text[:300]
        assert any(l.split()[0] == "1000000B" and
                   l.endswith(" evil\\x1b[31m;leak\\xff")
                   for l in text.splitlines() if l.strip()), text
    shutil.rmtree(d)


def test_json_row_fields_as_documented():
    """The man page's JSON OUTPUT lists a row's fields and a site's: an
    exited -- CMD row has exactly those (the docs cannot drift)."""
    man = open(os.path.join(ROOT, "docs", "memtrace.8")).read()
    para = man[man.index("A row has the same fields"):]
    para = re.sub(r"\\f[BRI]", "", para[:para.index(".PP")])
    rows_txt, sites_txt = para.split("):", 1)[1].split("; sites", 1)
    names = lambda t: {w.split()[0] for w in re.sub(r"\([^)]*\)", "", t)
                       .replace("\n", " ").split(",") if w.split()}
    row_keys = names(rows_txt.rstrip(" ;"))
    site_keys = names(sites_txt.split(":", 1)[1].split(" and", 1)[0]) | \
        {sites_txt.split(" and", 1)[1].split()[0].strip(",")}
    code, truth, r, err = run_cmd(["--top-sites", "3"])
    assert r["exited"] and r["sites"], r
    assert set(r) - {"sites", "go"} == row_keys, set(r) ^ row_keys
    assert set(r["sites"][0]) == site_keys, set(r["sites"][0]) ^ site_keys


TESTS = [(n[len("test_"):], f) for n, f in list(globals().items())
         if n.startswith("test_") and callable(f)]
