# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# What every guest's /init shares (kernels.py puts this file at /lib/kw-guest.sh of each
# initramfs; an /init sources it after setting OUT): reporting on $OUT, the host reading
#   KW <key> <value>                       one line
#   KW-BEGIN <name> ... KW-END <name>      a document (JSON, Prometheus text, a log)
# powering off, and the file systems a guest needs.

say() { echo "KW $*" >"$OUT"; }
doc() { echo "KW-BEGIN $1" >"$OUT"; cat "$2" >"$OUT" 2>&1; echo "KW-END $1" >"$OUT"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
bye() {
	say "done $(uptime_s)"
	sync
	poweroff -f
}
fail() {
	say "fail $*"
	bye
}

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo 1 >/proc/sys/kernel/printk # keep the console quiet but for panics
