#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# memtrace benchmark (`make bench`): overhead of memtrace against no
# tracer, the uprobe floor, bpftrace and heaptrack on the bench_* workloads,
# plus lost events, memory per live block, sampling accuracy and time to a
# first symbolized table.  Results: bench-results/{results.md,results.csv,
# bench.png}.  The work is done by tools/bench/bench.py; see its header for
# the knobs (BENCH_RUNS, BENCH_ITERS, BENCH_SECS, BENCH_QUICK=1, ...).
#
# Default run: about 5 minutes, BENCH_QUICK=1 about 1 minute (longer when
# other tracers run meanwhile: runs they disturb are redone).
set -eu

cd "$(dirname "$0")/.."

if ! command -v python3 >/dev/null 2>&1; then
	echo "bench: python3 is needed (apt-get install python3)" >&2
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "bench: not root: memtrace and bpftrace columns will be n/a" >&2
fi
for w in bench_tight bench_mixed; do
	if [ ! -x "build/workloads/$w" ]; then
		echo "bench: build/workloads/$w missing: run 'make build-tests'" >&2
		exit 1
	fi
done
# bpftrace wants a higher locked-memory limit on old kernels; harmless here
ulimit -l unlimited 2>/dev/null || true

python3 tools/bench/bench.py "$@"
# ring-buffer consumer capacity (mmap+munmap records, flat out)
python3 tools/bench/consumer_bench.py
# Go symbolization: pclntab open and 10,000 PCs of a large Go program
python3 tools/bench/gosym_bench.py
# Go heap profile: a Go allocation loop traced vs not; a 10,000-bucket read
python3 tools/bench/goheap_bench.py
# pre-OOM capture timing (real cgroup v1; skipped where none is writable)
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	python3 tools/bench/dump_bench.py 256
else
	python3 tools/bench/dump_bench.py 256 1024
fi
