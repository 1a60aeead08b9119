#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# Boot Debian's arm64 kernel under qemu-system-aarch64 (TCG: no KVM needed, any host arch)
# with a busybox initramfs that prints the kernel release, checks that the kernel exports
# its BTF (/sys/kernel/btf/vmlinux) and powers off; prints how long each step took.
#   tools/kernels/boot-arm64.sh [-c CPU] [-s SMP] [ABI]
#       CPU  qemu -cpu value (default max,pauth-impdef=on: -cpu max with the real pointer
#            authentication algorithm is several times slower under TCG)
#       ABI  e.g. 6.12.118+deb12; default: what linux-image-$SERIES-arm64 depends on now
#            (SERIES=6.12): old ABI versions leave the mirror, the metapackage stays.
# Packages: linux-image-ABI-arm64-unsigned:arm64 (boot/vmlinuz is a raw arm64 Image, gzip'd
# in some builds) and busybox-static:arm64 (static, so it runs as the guest's /init), both
# fetched with apt-get download (the arm64 architecture is added to dpkg if missing), and
# qemu-system-arm and cpio (installed if missing). Files go under build/kernels/arm64/.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*"; }

SERIES=${SERIES:-6.12}
cpu=max,pauth-impdef=on
smp=1
while getopts c:s: opt; do
	case $opt in
	c) cpu=$OPTARG ;;
	s) smp=$OPTARG ;;
	*) die "usage: $prog [-c CPU] [-s SMP] [ABI]" ;;
	esac
done
shift $((OPTIND - 1))
abi=${1:-}

top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$top/build/kernels/arm64
mkdir -p "$dir"
chmod 755 "$dir" # apt-get download runs as _apt where it can

apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	say "adding the arm64 architecture to dpkg to download arm64 packages"
	dpkg --add-architecture arm64
	apt_get update -qq
fi
command -v qemu-system-aarch64 > /dev/null || apt_get install -y -qq qemu-system-arm > /dev/null
command -v cpio > /dev/null || apt_get install -y -qq cpio > /dev/null

if [ -z "$abi" ]; then
	abi=$(apt-cache depends "linux-image-$SERIES-arm64:arm64" 2>/dev/null |
	      awk '/Depends: linux-image-/ { print $2; exit }')
	[ -n "$abi" ] || die "no package linux-image-$SERIES-arm64:arm64: run apt-get update?"
	abi=${abi#linux-image-}
	abi=${abi%-arm64*}
fi

# $1: package:arch. Extracts it into $dir/root-<package> once.
fetch() {
	local pkg=${1%:*} root=$dir/root-${1%:*}
	[ -d "$root" ] && return 0
	rm -f "$dir/${pkg}_"*.deb
	(cd "$dir" && apt_get download -q "$1" > /dev/null 2>&1) || die "$1: download failed"
	dpkg-deb -x "$dir/${pkg}_"*.deb "$root.tmp"
	mv "$root.tmp" "$root"
}

kpkg=linux-image-$abi-arm64-unsigned
fetch "$kpkg:arm64"
fetch busybox-static:arm64

image=$dir/Image-$abi
if [ ! -s "$image" ]; then
	vmlinuz=$dir/root-$kpkg/boot/vmlinuz-$abi-arm64
	if [ "$(head -c 2 "$vmlinuz" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
		gzip -dc < "$vmlinuz" > "$image.tmp"
	else
		cp "$vmlinuz" "$image.tmp"
	fi
	mv "$image.tmp" "$image"
fi

# The initramfs: busybox and an /init that reports and powers off.
initrd=$dir/initramfs.cpio
rm -rf "$dir/initramfs"
mkdir -p "$dir/initramfs"/{bin,proc,sys,dev}
cp "$dir/root-busybox-static/bin/busybox" "$dir/initramfs/bin/busybox"
ln -s busybox "$dir/initramfs/bin/sh"
cat > "$dir/initramfs/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "kw-guest: uname -r: $(uname -r)"
if [ -r /sys/kernel/btf/vmlinux ]; then
	echo "kw-guest: btf: /sys/kernel/btf/vmlinux $(wc -c < /sys/kernel/btf/vmlinux) bytes"
else
	echo "kw-guest: btf: /sys/kernel/btf/vmlinux missing"
fi
echo "kw-guest: uptime $(cut -d' ' -f1 /proc/uptime) s"
poweroff -f
EOF
chmod 755 "$dir/initramfs/init"
(cd "$dir/initramfs" && find . | cpio -o -H newc --quiet > "$initrd")

say "booting $kpkg under qemu-system-aarch64 -cpu $cpu -smp $smp (TCG)"
start=$(date +%s.%N)
elapsed() { awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "+%.1f s", n - s }'; }
status=1
while IFS= read -r line; do
	line=${line%$'\r'}
	echo "$line" >> "$dir/console.log"
	case $line in
	kw-guest:*)
		echo "$prog: $(elapsed)  $line"
		case $line in *"btf: /sys/kernel/btf/vmlinux "*bytes) status=0 ;; esac
		;;
	esac
done < <(: > "$dir/console.log"
	 timeout 600 qemu-system-aarch64 -M virt -accel tcg -cpu "$cpu" -smp "$smp" -m 1024 \
		-nographic -no-reboot -kernel "$image" -initrd "$initrd" \
		-append "console=ttyAMA0 panic=-1 quiet" 2>&1)
echo "$prog: $(elapsed)  qemu exited; console in ${dir#"$top"/}/console.log"
exit $status
