#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Install the Debian 12 packages memtrace needs to build, test and bench,
# skipping those already present.  Run as root (or it just reports).
set -eu

PKGS="make gcc g++ clang llvm libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev
libcapstone-dev libncurses-dev pkg-config python3 gdb tmux util-linux
golang-go gnuplot-nox bpftrace heaptrack libc6-dev musl-tools"
# Only some tests use these (real jemalloc and tcmalloc): without them
# those tests are skipped, visibly, and nothing else fails.
OPTIONAL="libjemalloc2 libtcmalloc-minimal4"

absent() {
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "ok installed" || printf ' %s' "$p"
	done
}

# shellcheck disable=SC2086
missing=$(absent $PKGS)
# shellcheck disable=SC2086
optional=$(absent $OPTIONAL)
[ -z "$missing$optional" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	if [ -n "$missing" ]; then
		echo "memtrace: missing packages:$missing (run as root to install)" >&2
		exit 1
	fi
	echo "memtrace: warning: optional packages missing:$optional (their tests are skipped)" >&2
	exit 0
fi
echo "memtrace: installing:$missing$optional"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq && [ -n "$missing" ]; then
	echo "memtrace: apt-get update failed" >&2
	exit 1
fi
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ -n "$optional" ]; then
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $optional >/dev/null 2>&1 ||
		echo "memtrace: warning: could not install$optional (their tests are skipped)" >&2
fi
exit 0
