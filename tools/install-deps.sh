#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# Install the Debian packages keepwatch needs, and only the missing ones.
#   tools/install-deps.sh [run]   build and run the agent
#   tools/install-deps.sh test    the above plus what the unit and end-to-end tests use
#   tools/install-deps.sh cross-arm64   Debian's aarch64 cross compiler, the arm64 libraries
#                                 (multiarch) and qemu-user to run the arm64 unit tests
# Idempotent and non-interactive. When everything is present it does not touch apt at all.
# Server packages (nginx, apache2, haproxy, varnish, prometheus) are installed without
# starting them on the host: a temporary policy-rc.d denies service starts, and any daemon
# that starts anyway is stopped and disabled afterwards.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*"; }

usage() {
	echo "usage: $prog [run|test]" >&2
	exit 2
}

# An entry "a|b" is satisfied by either package; when neither is there, "a" is installed.
run_pkgs=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libmicrohttpd-dev libjansson-dev
	  libcurl4-openssl-dev libgnutls28-dev libyaml-dev libcrypt-dev libncurses-dev make pkg-config
	  gcc iproute2)
test_pkgs=(libcmocka-dev clang-format python3-pytest python3-pyflakes "nginx-light|nginx" prometheus curl apache2-utils wrk
	   nftables apache2 haproxy varnish procps qemu-system-x86 busybox-static zstd systemd openssl
	   libclang-rt-14-dev python3-pyte)
cross_arm64_pkgs=(gcc-aarch64-linux-gnu qemu-user-static libbpf-dev:arm64 libelf-dev:arm64
		  zlib1g-dev:arm64 libmicrohttpd-dev:arm64 libjansson-dev:arm64
		  libcurl4-openssl-dev:arm64 libcmocka-dev:arm64 libgnutls28-dev:arm64
		  libyaml-dev:arm64 libcrypt-dev:arm64 libncurses-dev:arm64)
# Daemons the test packages may start: "service:process" (the name pgrep -x matches).
daemons=(nginx:nginx apache2:apache2 apache-htcacheclean:htcacheclean haproxy:haproxy
	 varnish:varnishd varnishncsa:varnishncsa prometheus:prometheus
	 prometheus-node-exporter:prometheus-node)

mode=${1:-run}
[ $# -le 1 ] || usage
case $mode in
run) wanted=("${run_pkgs[@]}") ;;
test) wanted=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
cross-arm64) wanted=("${run_pkgs[@]}" "${cross_arm64_pkgs[@]}") ;;
-h | --help) usage ;;
*) echo "$prog: unknown set '$mode'" >&2; usage ;;
esac

installed() {
	local status
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) || return 1
	[ "${status:0:2}" = "ii" ]
}

missing=()
for entry in "${wanted[@]}"; do
	ok=0
	IFS='|' read -r -a alts <<<"$entry"
	for p in "${alts[@]}"; do
		if installed "$p"; then ok=1; break; fi
	done
	[ $ok = 1 ] || missing+=("${alts[0]}")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

[ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]}; run as root to install them"
command -v apt-get >/dev/null || die "missing packages: ${missing[*]}; apt-get not found"

say "installing: ${missing[*]}"

# arm64 packages need the architecture known to dpkg (multiarch) before apt-get update.
case " ${missing[*]}" in
*:arm64*)
	dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64 ;;
esac

# Which daemons run now, so that we only stop what this install started.
daemon_pids() {
	local d
	for d in "${daemons[@]}"; do pgrep -x "${d#*:}" 2>/dev/null || true; done | sort -u
}
before=$(daemon_pids)

policy=/usr/sbin/policy-rc.d
created_policy=0
cleanup_policy() {
	if [ $created_policy = 1 ]; then rm -f "$policy"; fi
}
trap cleanup_policy EXIT
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# keepwatch install-deps: do not start services\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	created_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
apt-get -q update || die "apt-get update failed"
apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" ||
	die "apt-get install failed for: ${missing[*]}"

cleanup_policy
created_policy=0

# Stop and disable whatever started anyway (nothing should, with policy-rc.d in place).
after=$(daemon_pids)
new=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)
if [ -n "$new" ]; then
	say "stopping daemons started by the install: $(echo $new)"
	for d in "${daemons[@]}"; do
		s=${d%%:*}
		started=0
		for pid in $new; do
			[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "${d#*:}" ] && started=1
		done
		[ $started = 1 ] || continue
		if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
			systemctl disable --now "$s" >/dev/null 2>&1 || true
		elif [ -x "/etc/init.d/$s" ]; then
			"/etc/init.d/$s" stop >/dev/null 2>&1 || true
			update-rc.d "$s" disable >/dev/null 2>&1 || true
		fi
	done
	# Whatever is still alive of what we started: TERM, then KILL (bounded wait).
	for pid in $new; do kill -TERM "$pid" 2>/dev/null || true; done
	for _ in $(seq 1 50); do
		alive=0
		for pid in $new; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[ $alive = 1 ] || break
		sleep 0.1
	done
	for pid in $new; do kill -KILL "$pid" 2>/dev/null || true; done
fi

# Check the result.
still=()
for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
[ ${#still[@]} -eq 0 ] || die "still missing after install: ${still[*]}"
say "done"
