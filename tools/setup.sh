#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Install the Debian 12 packages memtrace needs to build, test and bench,
# skipping those already present.  Run as root (or it just reports).
set -eu

PKGS="make gcc g++ clang llvm libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev
libcapstone-dev libncurses-dev pkg-config python3 gdb tmux util-linux
golang-go gnuplot-nox bpftrace heaptrack libc6-dev musl-tools
libjemalloc2 libtcmalloc-minimal4"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "memtrace: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "memtrace: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
