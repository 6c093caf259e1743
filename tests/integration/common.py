# SPDX-License-Identifier: GPL-2.0
"""Helpers for memtrace integration tests: run memtrace and workloads,
read JSON Lines, always clean up processes."""
import json
import os
import select
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEMTRACE = os.environ.get("MEMTRACE") or os.path.join(ROOT, "memtrace")
WORKLOADS = os.path.join(ROOT, "build", "workloads")

_procs = []


class Skip(Exception):
    """Raised by a test that cannot run here; counted as skipped."""


def workload(name):
    return os.path.join(WORKLOADS, name)


def spawn(argv, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.Popen(argv, **kw)
    _procs.append(p)
    return p


def cleanup():
    """Kill whatever a test left running (memtrace first, then workloads)."""
    for p in reversed(_procs):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=5)
            except Exception:  # noqa: BLE001
                p.kill()
                p.wait()
    _procs.clear()


def readline(stream, timeout):
    """One line from a pipe, or None after timeout seconds."""
    r, _, _ = select.select([stream], [], [], timeout)
    if not r:
        return None
    line = stream.readline()
    return line.decode() if isinstance(line, bytes) else line


def free_port():
    """A TCP port free on 127.0.0.1 now (for a server a test starts)."""
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def memtrace_json(args, **kw):
    return spawn([MEMTRACE, "--json"] + args, **kw)


def next_json(p, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = readline(p.stdout, deadline - time.time())
        if line is None:
            break
        if not line:
            raise AssertionError("memtrace ended early: " + p.stderr.read().decode()[-1000:])
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError("no JSON refresh from memtrace within %ss" % timeout)


def row(doc, pid):
    # an "oom" line (a process killed anywhere on the node) has no rows
    for r in doc.get("processes", []):
        if r["pid"] == pid:
            return r
    return None


def wait_row(p, pid, pred=lambda r: True, timeout=15):
    """Read refreshes until the row of pid satisfies pred; return it."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        doc = next_json(p, deadline - time.time())
        r = row(doc, pid)
        if r is not None:
            last = r
            if pred(r):
                return r, doc
    raise AssertionError(f"pid {pid}: condition not met; last row: {last}")


def load_truth(path, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError("workload wrote no truth file " + path)


TOTALS = ("live_bytes", "live_allocs", "alloc_bytes", "allocs", "free_bytes", "frees")


def assert_totals(r, truth, keys=TOTALS):
    bad = [f"{k}: memtrace {r[k]} != truth {truth[k]}" for k in keys if r[k] != truth[k]]
    assert not bad, "; ".join(bad)


ALLOC_FUNCS = ("malloc", "calloc", "realloc", "free")


def first_user_func(site):
    """Name of the innermost frame outside the C library."""
    for f in site["stack"]:
        if f["module"].startswith("libc.so") or f["func"].startswith("__libc"):
            continue
        return f["func"]
    return None


def site_bytes(r):
    """Live bytes per innermost user function over all sites of a row."""
    out = {}
    for s in r.get("sites", []):
        fn = first_user_func(s)
        out[fn] = out.get(fn, 0) + s["live_bytes"]
    return out


def final_doc(docs):
    """The final report among the JSON lines (an "oom" line may follow it)."""
    finals = [d for d in docs if d.get("type") == "final"]
    assert finals, "no final report: %s" % [d.get("type") for d in docs]
    return finals[-1]


def finish(p, timeout=15):
    """Wait for memtrace; return (exit code, list of JSON docs, stderr)."""
    out, err = p.communicate(timeout=timeout)
    docs = [json.loads(l) for l in out.decode().splitlines() if l.startswith("{")]
    return p.returncode, docs, err.decode()
