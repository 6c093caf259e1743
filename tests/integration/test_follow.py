# SPDX-License-Identifier: GPL-2.0
"""-p follows a server's workers forked before memtrace started; --cgroup
traces every process of a cgroup, those there at start and those that
join later.  Each worker allocates a known amount: rows are exact."""
import os
import time
import signal

from common import memtrace_json, readline, spawn, wait_row, workload
from test_dump import Cgroup


def prefork(n=3):
    """tests/workloads/prefork: (process, [worker pids])."""
    p = spawn([workload("prefork"), str(n)])
    line = readline(p.stdout, 10)
    assert line and line.startswith("ready"), line
    return p, [int(x) for x in line.split()[1:]]


def want(i):
    return (i + 1) * 10 * 1000


def check_workers(mt, workers):
    for w in workers:
        wait_row(mt, w, lambda r: r["probed"])
    for w in workers:
        os.kill(w, signal.SIGUSR1)
    for i, w in enumerate(workers):
        r, _ = wait_row(mt, w, lambda r, i=i: r["live_bytes"] >= want(i))
        assert r["live_bytes"] == want(i), (i, r)
        assert r["live_allocs"] == (i + 1) * 10, (i, r)


def test_pid_covers_existing_workers():
    """-p PARENT: workers forked before memtrace started are traced too."""
    p, workers = prefork(3)
    mt = memtrace_json(["-d", "0.2", "-p", str(p.pid)])
    check_workers(mt, workers)
    r, _ = wait_row(mt, p.pid)
    assert r["live_bytes"] == 0, r


def add(cg, pid):
    with open(os.path.join(cg.dir, "cgroup.procs"), "w") as f:
        f.write(str(pid))


def test_cgroup_now_and_later():
    """--cgroup DIR: its members at start, their existing children, and a
    process that joins later are traced exactly; others are not."""
    cg = Cgroup(1 << 40)    # a v1 memory cgroup under the test's own
    try:
        a, aw = prefork(2)
        for pid in [a.pid] + aw:
            add(cg, pid)
        outside, ow = prefork(1)
        mt = memtrace_json(["-d", "0.2", "--cgroup", cg.dir])
        check_workers(mt, aw)
        b, bw = prefork(2)
        for pid in [b.pid] + bw:
            add(cg, pid)
        check_workers(mt, bw)
        os.kill(ow[0], signal.SIGUSR1)
        _, doc = wait_row(mt, bw[1])
        pids = {r["pid"] for r in doc["processes"]}
        assert outside.pid not in pids and ow[0] not in pids, pids
    finally:
        from common import cleanup
        cleanup()
        cg.remove()


def test_cgroup_many_attached_in_the_background():
    """--cgroup of 60 processes: the first table comes at once, and they
    are probed a few per refresh, the header counting down."""
    from common import next_json
    cg = Cgroup(1 << 40)
    try:
        sleeps = [spawn(["sleep", "600"]) for _ in range(60)]
        for s in sleeps:
            add(cg, s.pid)
        t0 = time.time()
        mt = memtrace_json(["-d", "0.3", "--cgroup", cg.dir])
        doc = next_json(mt, timeout=20)
        first = time.time() - t0
        deadline = time.time() + 60
        while doc["attach_pending"] and time.time() < deadline:
            doc = next_json(mt)
        assert doc["attach_pending"] == 0, doc["attach_pending"]
        probed = {r["pid"] for r in doc["processes"] if r["probed"]}
        assert {s.pid for s in sleeps} <= probed, len(probed)
        assert first < 5, f"first table after {first:.1f}s"
    finally:
        from common import cleanup
        cleanup()
        cg.remove()


def test_refreshes_on_time_while_attaching():
    """-p of a server with 80 workers: each worker's probes take the
    kernel a while (it visits every mapping of libc, which they all map),
    on memtrace's attach thread: the table keeps its interval meanwhile
    (no gap of more than 5 intervals, by the refreshes' own timestamps),
    counts down what is left, and ends with every worker probed.  (Its
    exit takes a while: every link's detach visits libc's mappings too.)"""
    from common import next_json
    p, workers = prefork(80)
    try:
        t0 = time.time()
        mt = memtrace_json(["-d", "0.1", "-p", str(p.pid)])
        docs = [next_json(mt, timeout=20)]
        first = time.time() - t0
        deadline = time.time() + 90
        while docs[-1]["attach_pending"] and time.time() < deadline:
            docs.append(next_json(mt))
        docs.append(next_json(mt))
        attaching = [d for d in docs if d["attach_pending"]]
        assert len(attaching) >= 2, \
            f"attached within {len(attaching)} refreshes: nothing measured"
        ts = [d["ts"] for d in docs]
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        assert max(gaps) < 5 * 0.1, \
            f"no refresh for {max(gaps):.2f} s while attaching ({len(docs)} refreshes)"
        probed = {r["pid"] for r in docs[-1]["processes"] if r["probed"]}
        missing = set(workers) - probed
        assert not missing, f"{len(missing)} workers not probed"
        assert first < 5, f"first table after {first:.1f}s"
    finally:
        from common import cleanup
        cleanup()


TESTS = [
    ("pid_covers_existing_workers", test_pid_covers_existing_workers),
    ("cgroup_now_and_later", test_cgroup_now_and_later),
    ("cgroup_many_attached_in_the_background",
     test_cgroup_many_attached_in_the_background),
    ("refreshes_on_time_while_attaching",
     test_refreshes_on_time_while_attaching),
]
