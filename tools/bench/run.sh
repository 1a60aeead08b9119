#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# keepwatch overhead benchmark (`make bench`; see BENCHMARKS.md for the method).
#   tools/bench/run.sh            full run (~16 min)
#   tools/bench/run.sh --quick    short run (~4 min); also make bench BENCH_ARGS=--quick
#   tools/bench/run.sh --big      also the agent's RSS with 100k open connections
#   tools/bench/run.sh --help     every option
# Needs root, build/keepwatchd (make), nginx, wrk, bpftrace, bpftool, clang
# (tools/install-deps.sh test). Prints a Markdown report; raw JSON in build/bench/.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$repo/build/bench
py=/usr/bin/python3

# `make bench BENCH_ARGS=--quick`: make passes command-line variables to the recipe's
# environment. Word splitting of BENCH_ARGS is intended.
# shellcheck disable=SC2086
set -- ${BENCH_ARGS:-} "$@"

for a in "$@"; do
	case $a in -h | --help) exec $py "$here/bench.py" --help ;; esac
done
# Re-print the report of a saved run (no root needed): run.sh --render build/bench/X.json;
# the throughput of several runs as one: run.sh --pool build/bench/X.json Y.json ...
case ${1:-} in --render | --pool) exec $py "$here/bench.py" "$@" ;; esac

[ "$(id -u)" = 0 ] || die "must run as root (BPF, network namespaces)"
for c in nginx wrk bpftrace bpftool clang taskset ip curl; do
	command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] ||
		die "$c not found: run tools/install-deps.sh test"
done
[ -x "$repo/build/keepwatchd" ] || die "build/keepwatchd missing: run make (or make bench)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (wrk on CPU 0, nginx on CPU 1)"
"$repo/tools/prepare-host.sh"

mkdir -p "$out"
arch=$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
for variant in floor:"" floor-fallbacks:-DFALLBACKS; do
	clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_"$arch" -I"$repo/bpf/vmlinux/$arch" \
		${variant#*:} -c "$here/floor.bpf.c" -o "$out/${variant%%:*}.bpf.o"
done

# bench.py removes everything it starts, on Ctrl-C and SIGTERM too. Should it die
# without cleaning up (SIGKILL), remove what it left: its processes (pid file) and its
# namespaces (kwb-<tag>-*; the tag is this shell's pid).
export KWB_TAG=$$
cleanup() {
	local pid ns
	if [ -r "$out/.pids" ]; then
		while read -r pid; do
			kill "$pid" 2>/dev/null || true
		done <"$out/.pids"
		rm -f "$out/.pids"
	fi
	for ns in $(ip netns list 2>/dev/null | awk -v p="kwb-$KWB_TAG-" 'index($1, p) == 1 { print $1 }'); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
}
trap cleanup EXIT

# In the background so that this shell can forward SIGTERM; it is still in the terminal's
# process group, so Ctrl-C reaches it directly (it re-enables SIGINT, cleans up, exits 130).
$py "$here/bench.py" "$@" &
bench_pid=$!
trap '' INT
trap 'kill -TERM $bench_pid 2>/dev/null || true' TERM HUP
rc=0
while :; do
	if wait $bench_pid; then rc=0; else rc=$?; fi
	kill -0 $bench_pid 2>/dev/null || break
done
exit $rc
