#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# Make the host ready for the agent and the end-to-end tests: root, kernel BTF, bpffs on
# /sys/fs/bpf, tracefs on /sys/kernel/tracing (optional), and /var/run/netns for named
# network namespaces. Idempotent; prints nothing when there is nothing to do.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }
warn() { echo "$prog: warning: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (loading BPF programs needs it)"

[ -r /sys/kernel/btf/vmlinux ] ||
	die "/sys/kernel/btf/vmlinux not found: the kernel needs CONFIG_DEBUG_INFO_BTF=y"

# fstype of the mount at exactly $1 (empty if nothing is mounted there).
fstype_at() {
	awk -v m="$1" '$2 == m { t = $3 } END { print t }' /proc/self/mounts
}

bpffs=/sys/fs/bpf
if [ "$(fstype_at $bpffs)" != bpf ]; then
	mkdir -p "$bpffs" 2>/dev/null || true
	mount -t bpf bpf "$bpffs" || die "cannot mount bpffs on $bpffs"
	echo "$prog: mounted bpffs on $bpffs"
fi

tracefs=/sys/kernel/tracing
if [ "$(fstype_at $tracefs)" != tracefs ]; then
	if [ -d "$tracefs" ] && mount -t tracefs tracefs "$tracefs" 2>/dev/null; then
		echo "$prog: mounted tracefs on $tracefs"
	else
		warn "cannot mount tracefs on $tracefs (not needed for tp_btf programs)"
	fi
fi

netns_dir=/var/run/netns
if [ ! -d "$netns_dir" ]; then
	mkdir -p "$netns_dir" || die "cannot create $netns_dir"
fi
exit 0
