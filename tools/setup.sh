#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Install the Debian 12 packages memtrace needs to build, test and bench,
# skipping those already present.  Run as root (or it just reports).
set -eu

PKGS="make gcc g++ clang llvm libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev
libcapstone-dev libncurses-dev pkg-config python3 gdb tmux util-linux
golang-go gnuplot-nox bpftrace heaptrack libc6-dev musl-tools"
# Only some tests and bench rounds use these (real jemalloc and tcmalloc,
# a second Go toolchain, real services, a debuginfod server): without them
# those tests are skipped, visibly, and nothing else fails.
OPTIONAL="libjemalloc2 libtcmalloc-minimal4 prometheus debuginfod
redis-server redis-tools memcached nginx apache2-utils"
# From bookworm-backports (added below when missing): Go 1.23 has the
# newer runtime layouts (mProf_Malloc's signature, deeper stacks).
BACKPORTS="golang-1.23"

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
# shellcheck disable=SC2086
backports=$(absent $BACKPORTS)
[ -z "$missing$optional$backports" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	if [ -n "$missing" ]; then
		echo "memtrace: missing packages:$missing (run as root to install)" >&2
		exit 1
	fi
	echo "memtrace: warning: optional packages missing:$optional$backports (their tests are skipped)" >&2
	exit 0
fi
echo "memtrace: installing:$missing$optional$backports"
export DEBIAN_FRONTEND=noninteractive
# bookworm-backports is an ordinary Debian suite; add it once.
if [ -n "$backports" ] &&
   ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	cat > /etc/apt/sources.list.d/memtrace-backports.sources <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
if ! apt-get update -qq && [ -n "$missing" ]; then
	echo "memtrace: apt-get update failed" >&2
	exit 1
fi
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
for p in $optional $backports; do
	# one at a time: one that cannot be had must not keep out the others
	apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 ||
		echo "memtrace: warning: could not install $p (its tests are skipped)" >&2
done
# Debian's services start themselves on install; tests start their own
# instances on loopback, so the packaged ones are stopped.
for s in prometheus redis-server memcached debuginfod nginx; do
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now "$s" >/dev/null 2>&1 || true
	fi
done
exit 0
