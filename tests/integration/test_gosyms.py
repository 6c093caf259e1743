# SPDX-License-Identifier: GPL-2.0
"""Go stacks read as go tool pprof reads the runtime's own profile.

tests/workloads/go/goinline.go allocates through inlined calls (its own,
and bytes.(*Buffer).Grow inlined into main.useBuffer), samples every
allocation, writes its own pprof.WriteHeapProfile and stays quiescent.
memtrace, attached with -p, writes --pprof; `go tool pprof -traces` of
both files must list the same stacks -- function names, "(inline)"
marks, leading runtime.* frames hidden -- with the same values, for the
plain, stripped (-s -w) and PIE builds of Go 1.19 and 1.23.  The JSON
stack of each Go site must list every inlined call once."""
import os
import re
import shutil
import subprocess
import tempfile

from common import Skip, finish, memtrace_json, readline, row, spawn, WORKLOADS

GODIR = os.path.join(WORKLOADS, "go")
SEP = "-----------+-------------------------------------------------------"


def go_tool():
    for g in ("go", "/usr/lib/go-1.23/bin/go"):
        if shutil.which(g):
            return g
    raise Skip("no go tool to read pprof files")


def traces(path, index):
    """{(frame, frame, ...): value} from go tool pprof -traces of a count
    index.  The runtime writes one sample per bucket, and buckets differ
    by allocation size too; memtrace merges samples of equal stacks: so
    the values are summed per stack as printed."""
    out = subprocess.run([go_tool(), "tool", "pprof", "-traces",
                          f"-sample_index={index}", path],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, GOFLAGS="")).stdout
    got = {}
    for block in out.split(SEP)[1:]:
        value, frames = None, []
        for line in block.splitlines():
            if not line.strip() or re.match(r"^\s+\w+:\s", line):
                continue  # blank, or a label line ("pid:  123")
            m = re.match(r"^\s+(-?[\d.]+\w*)\s{2,}(\S.*)$", line)
            if m and value is None:
                value, line = m.group(1), m.group(2)
            frames.append(line.strip())
        if frames:
            got[tuple(frames)] = got.get(tuple(frames), 0) + int(value)
    return got


def check(name):
    exe = os.path.join(GODIR, name)
    if not os.path.exists(exe):
        raise Skip(f"{name} not built (Go toolchain missing?)")
    d = tempfile.mkdtemp(prefix="mt-gosyms-")
    try:
        own, mine = os.path.join(d, "own.pb.gz"), os.path.join(d, "memtrace.pb.gz")
        w = spawn([exe, own], stdin=subprocess.PIPE)
        line = readline(w.stdout, 30) or ""
        assert line.startswith("ready"), f"workload said {line!r}"
        pid = int(line.split()[1])
        p = memtrace_json(["-p", str(pid), "-n", "1", "-d", "0.2", "--top-sites", "50",
                           "--pprof", mine])
        code, docs, err = finish(p, timeout=60)
        assert code == 0, err
        go = row(docs[-1], pid)["go"]
        w.stdin.close()
        w.wait(timeout=10)
        for index in ("alloc_objects", "inuse_objects"):
            a, b = traces(own, index), traces(mine, index)
            assert a == b, f"{index}: program {sorted(a.items())}; memtrace {sorted(b.items())}"
        a = [" ".join(t) for t in traces(own, "inuse_objects")]
        assert any("main.keepInlA (inline)" in t and "main.keepInlB (inline)" in t
                   and "main.keepOuter" in t for t in a), a
        assert any("bytes.(*Buffer).Grow (inline)" in t for t in a), a
        # JSON: the same stacks, each inlined call once
        for s in go["sites"]:
            funcs = [f["func"] for f in s["stack"]]
            if "main.keepOuter" in funcs:
                assert funcs.count("main.keepInlB") == 1, funcs
                assert funcs.index("main.keepInlA") < funcs.index("main.keepInlB") \
                    < funcs.index("main.keepOuter"), funcs
                assert not funcs[0].startswith("runtime."), funcs
    finally:
        shutil.rmtree(d, ignore_errors=True)


TESTS = [(f"go{v}_{m or 'plain'}_inline_traces", (lambda n: lambda: check(n))(
    f"goinline{'-' + m if m else ''}-{v}"))
    for v in ("119", "123") for m in ("", "stripped", "pie")]
