#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# Regenerate the committed bpf/vmlinux/{x86,arm64}/vmlinux.h from Debian kernel packages, so
# the BPF object builds the same on any host, whatever kernel the build host runs
# (libbpf-tools keeps its headers the same way).
#   tools/gen-vmlinux.sh [ABI]     e.g. tools/gen-vmlinux.sh 6.12.118+deb12
#
# Source: Debian 12 (bookworm-security) kernel packages
#   linux-image-ABI-amd64-unsigned (amd64) and linux-image-ABI-arm64-unsigned:arm64,
# both at the same ABI. Without an argument ABI is what the metapackage
# linux-image-$SERIES-amd64 depends on now (SERIES defaults to 6.12): old ABI versions leave
# the mirror, the metapackage stays. The headers in the tree came from 6.12.118+deb12
# (package version 6.12.118-1~deb12u1); the first line of each header names its package.
#
# How: `apt-get download` the two packages (adding the arm64 architecture to dpkg if it is not
# there yet; needs root and `apt-get update` afterwards), `dpkg-deb -x` them, then
#   x86:   boot/vmlinuz is a bzImage holding a compressed ELF vmlinux (zstd in Debian's
#          build): find the compressor's magic, decompress, keep the ELF (as the kernel's
#          scripts/extract-vmlinux does); bpftool reads its .BTF section.
#   arm64: boot/vmlinuz is a raw Image (gzip'd in some builds), not an ELF: the .BTF section's
#          bytes are in it. Find the BTF header (magic 0xeb9f little-endian, version 1) and
#          cut out hdr_len + the larger of type_off+type_len and str_off+str_len bytes.
# and finally `bpftool btf dump file ... format c`. Needs apt, dpkg-deb, bpftool, python3 and
# the decompressors (zstd, xz-utils, gzip).
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*"; }

SERIES=${SERIES:-6.12}
BPFTOOL=${BPFTOOL:-$(command -v bpftool || echo /usr/sbin/bpftool)}
PYTHON=/usr/bin/python3
top=$(cd "$(dirname "$0")/.." && pwd)

[ $# -le 1 ] || die "usage: $prog [ABI]"
abi=${1:-}

# The ABI (6.12.118+deb12) the metapackage points at now.
resolve_abi() {
	local dep
	dep=$(apt-cache depends "linux-image-$SERIES-amd64" 2>/dev/null |
	      awk '/Depends: linux-image-/ { print $2; exit }')
	[ -n "$dep" ] || die "no package linux-image-$SERIES-amd64: run apt-get update?"
	dep=${dep#linux-image-}
	echo "${dep%-amd64}"
}

ensure_arm64() {
	dpkg --print-foreign-architectures | grep -qx arm64 && return 0
	say "adding the arm64 architecture to dpkg to download arm64 packages"
	dpkg --add-architecture arm64
	apt-get -o DPkg::Lock::Timeout=600 update -qq
}

# $1: a bzImage. Writes the ELF vmlinux it carries to $2.
extract_elf() {
	local img=$1 out=$2 magic cmd off
	for pair in '\x28\xb5\x2f\xfd:zstd -dcq' '\xfd\x37\x7a\x58\x5a\x00:xz -dcq' \
		    '\x1f\x8b\x08:gzip -dcq'; do
		magic=${pair%%:*} cmd=${pair#*:}
		for off in $(LC_ALL=C grep -obUaP "$magic" "$img" | cut -d: -f1); do
			# The payload is followed by other bytes: the decompressor complains
			# about them after writing the whole ELF, so its status is ignored.
			tail -c +$((off + 1)) "$img" | $cmd > "$out" 2>/dev/null || true
			[ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] && return 0
		done
	done
	die "$img: no compressed ELF found"
}

# $1: an arm64 Image (raw or gzip'd). Writes the kernel's raw BTF to $2.
extract_btf() {
	local img=$1 out=$2
	if [ "$(head -c 2 "$img" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
		gzip -dc < "$img" > "$out.image"
		img=$out.image
	fi
	"$PYTHON" - "$img" "$out" <<-'EOF'
	import struct, sys
	data = open(sys.argv[1], "rb").read()
	best = None
	pos = data.find(b"\x9f\xeb\x01\x00")
	while pos >= 0:
	    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<5I", data, pos + 4)
	    size = hdr_len + max(type_off + type_len, str_off + str_len)
	    # A plausible header: 24 bytes, sections inside the image, strings start with "\0".
	    if hdr_len == 24 and pos + size <= len(data) and data[pos + hdr_len + str_off] == 0:
	        if best is None or size > best[1]:
	            best = (pos, size)
	    pos = data.find(b"\x9f\xeb\x01\x00", pos + 1)
	if best is None:
	    sys.exit("no BTF header in " + sys.argv[1])
	open(sys.argv[2], "wb").write(data[best[0]:best[0] + best[1]])
	print("BTF: %d bytes at offset %d" % (best[1], best[0]))
	EOF
}

# $1: dpkg arch (amd64, arm64), $2: our arch dir (x86, arm64)
gen() {
	local darch=$1 arch=$2 pkg ver deb dir btf hdr
	pkg=linux-image-$abi-$darch-unsigned
	ver=$(apt-cache show "$pkg:$darch" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
	[ -n "$ver" ] || die "$pkg:$darch: not in the package lists"
	(cd "$work" && apt-get download -q "$pkg:$darch=$ver" > /dev/null 2>&1) ||
		die "$pkg:$darch $ver: download failed"
	deb=$(ls "$work/${pkg}_"*"_$darch.deb")
	dir=$work/$darch
	dpkg-deb -x "$deb" "$dir"
	btf=$work/$arch.btf
	if [ "$arch" = x86 ]; then
		extract_elf "$dir/boot/vmlinuz-$abi-$darch" "$btf"
	else
		extract_btf "$dir/boot/vmlinuz-$abi-$darch" "$btf"
	fi
	hdr=$top/bpf/vmlinux/$arch/vmlinux.h
	mkdir -p "${hdr%/*}"
	{
		echo "/* Generated by tools/gen-vmlinux.sh from $pkg $ver ($darch). */"
		"$BPFTOOL" btf dump file "$btf" format c
	} > "$hdr.tmp"
	mv "$hdr.tmp" "$hdr"
	say "$arch: $pkg $ver -> ${hdr#"$top"/} ($(stat -c %s "$hdr") bytes)"
}

[ -n "$abi" ] || abi=$(resolve_abi)
ensure_arm64
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt-get download runs as _apt where it can
gen amd64 x86
gen arm64 arm64
