#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Debian's own kernels in qemu: fetch, extract, build an initramfs, boot.

Used by the kernel-matrix tests (tests/kernels/, `make test-kernels`) and by hand:

  tools/kernels/kernels.py deps                           # apt-get install qemu, busybox...
  tools/kernels/kernels.py fetch linux-image-6.12-amd64   # prints the kernel's folder
  tools/kernels/kernels.py shell linux-image-amd64        # boot to a busybox shell

A kernel is named by a Debian metapackage (linux-image-amd64, linux-image-6.12-amd64),
resolved through apt-cache at every run: old ABI versions leave the mirror, so no ABI
number is written down anywhere. The package is fetched with `apt-get download` into
build/kernels/cache/ (kept between runs) and only what a guest needs is taken out of it:
boot/vmlinuz-* (its compressed payload decompressed to the ELF vmlinux, which qemu boots
through PVH with no bootloader and no firmware), boot/config-* (libbpf reads CONFIG_HZ
for __kconfig from /boot/config-$(uname -r)) and the veth module (a module in Debian's
configs). Standard library only; qemu runs under TCG (no KVM needed).
"""

import bz2
import gzip
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("KW_BUILD") or REPO / "build")
CACHE = BUILD / "kernels" / "cache"
QEMU = "qemu-system-x86_64"
# Host packages the guests need: qemu, busybox (the guest's userland), zstd (6.12's
# bzImage payload), iproute2 (its `ip` goes into the guest for namespaces and veth).
HOST_PACKAGES = {"qemu-system-x86_64": "qemu-system-x86", "/bin/busybox": "busybox-static",
                 "zstd": "zstd", "/usr/bin/ip": "iproute2"}
# Modules a guest loads, from the kernel package (a list: each after its dependencies).
MODULES = ["drivers/net/veth"]


class KernelError(Exception):
    """A step that failed, with what it was and why."""


def run(cmd, timeout=300, **kw):
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise KernelError(f"{' '.join(map(str, cmd))}: timed out after {timeout} s") from None
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip()
        raise KernelError(f"{' '.join(map(str, cmd))}: exit {p.returncode}: {err}")
    return p.stdout


def missing_host_packages():
    """The Debian packages to install for the guests (empty when all are there)."""
    return sorted({pkg for tool, pkg in HOST_PACKAGES.items()
                   if not (os.path.exists(tool) if tool.startswith("/") else shutil.which(tool))})


# --- fetch ---------------------------------------------------------------------------------

def resolve(meta):
    """The versioned image package a metapackage depends on now, and its version."""
    try:
        out = run(["apt-cache", "show", "--no-all-versions", meta]).decode()
    except KernelError as e:
        raise KernelError(f"{e}\n(is {meta} in the configured archive? apt-cache policy "
                          f"{meta}; apt-get update)") from None
    m = re.search(r"^Depends:.*?\b(linux-image-[^\s,(]+)(?:\s*\(=\s*([^)\s]+)\))?", out, re.M)
    if not m:
        raise KernelError(f"apt-cache show {meta}: no linux-image dependency\n{out}")
    pkg, version = m.groups()
    if not version:
        show = run(["apt-cache", "show", "--no-all-versions", pkg]).decode()
        version = re.search(r"^Version:\s*(\S+)", show, re.M).group(1)
    return pkg, version


def download(pkg, version):
    """The package's .deb in the cache, downloaded unless it is there already."""
    CACHE.mkdir(parents=True, exist_ok=True)
    deb = CACHE / f"{pkg}_{version.split(':')[-1]}_amd64.deb"
    if not deb.exists():
        # Sandbox user root: the cache belongs to root and _apt could not write there.
        run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "-o",
             "DPkg::Lock::Timeout=600", "download", f"{pkg}={version}"], cwd=CACHE, timeout=600)
        if not deb.exists():
            raise KernelError(f"apt-get download {pkg}={version}: {deb.name} not found after it")
    return deb


# bzImage payload formats (scripts/extract-vmlinux tries the same magics).
MAGICS = [(b"\x1f\x8b\x08", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
          (b"\x5d\x00\x00", "lzma"), (b"BZh", "bzip2")]


def decompress(data, fmt):
    if fmt == "gzip":
        return gzip.GzipFile(fileobj=__import__("io").BytesIO(data)).read()
    if fmt in ("xz", "lzma"):
        d = lzma.LZMADecompressor(lzma.FORMAT_XZ if fmt == "xz" else lzma.FORMAT_ALONE)
        return d.decompress(data)
    if fmt == "bzip2":
        return bz2.BZ2Decompressor().decompress(data)
    p = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True)
    return p.stdout  # trailing bytes after the frame make zstd complain: the ELF check decides


def extract_vmlinux(bzimage):
    """The ELF vmlinux inside an x86 bzImage. The setup header says where the compressed
    payload is (payload_offset and payload_length, boot protocol 2.08+); its last 4 bytes
    are the decompressed size the build appends. Falls back to scanning for the magics."""
    b = Path(bzimage).read_bytes()
    candidates = []
    if b[0x202:0x206] == b"HdrS" and struct.unpack_from("<H", b, 0x206)[0] >= 0x208:
        setup_sects = b[0x1f1] or 4
        off, length = struct.unpack_from("<II", b, 0x248)
        start = (setup_sects + 1) * 512 + off
        candidates.append(b[start:start + length - 4])
    for magic, _ in MAGICS:
        i = b.find(magic)
        while i >= 0 and len(candidates) < 32:
            candidates.append(b[i:])
            i = b.find(magic, i + 1)
    for data in candidates:
        for magic, fmt in MAGICS:
            if data.startswith(magic):
                try:
                    out = decompress(data, fmt)
                except (OSError, EOFError, lzma.LZMAError, ValueError):
                    continue
                if out[:4] == b"\x7fELF":
                    return out, fmt
    raise KernelError(f"{bzimage}: no compressed ELF vmlinux found in it")


def elf_modinfo(ko):
    """The key=value strings of a module's .modinfo section."""
    b = Path(ko).read_bytes()
    shoff, = struct.unpack_from("<Q", b, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", b, 0x3a)
    secs = [struct.unpack_from("<IIQQQQ", b, shoff + i * shentsize) for i in range(shnum)]
    names = secs[shstrndx]
    for name, _, _, _, off, size in secs:
        end = b.index(b"\0", names[4] + name)
        if b[names[4] + name:end] == b".modinfo":
            return dict(s.split("=", 1) for s in b[off:off + size].decode().split("\0")
                        if "=" in s)
    return {}


def fetch(meta):
    """The kernel of a metapackage, ready to boot: a dict with its version, folder,
    vmlinux, config, modules (host paths, uncompressed) and the times taken."""
    t0 = time.monotonic()
    pkg, version = resolve(meta)
    deb = download(pkg, version)
    t1 = time.monotonic()
    kver = pkg[len("linux-image-"):]
    kdir = BUILD / "kernels" / kver
    stamp = kdir / ".extracted"
    if not (stamp.exists() and stamp.read_text() == deb.name):
        if kdir.exists():
            shutil.rmtree(kdir)
        tree = kdir / "pkg"
        tree.mkdir(parents=True)
        # Only the image, its config and the modules (dpkg-deb -x would write 400 MB).
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
        run(["tar", "-x", "-C", tree, "--wildcards", "./boot/*",
             *[f"*/modules/{kver}/kernel/{m}.ko*" for m in MODULES]], stdin=tar.stdout)
        if tar.wait() != 0:
            raise KernelError(f"dpkg-deb --fsys-tarfile {deb}: exit {tar.returncode}")
        vmlinux, fmt = extract_vmlinux(tree / "boot" / f"vmlinuz-{kver}")
        (kdir / "vmlinux").write_bytes(vmlinux)
        (kdir / "payload").write_text(fmt + "\n")
        shutil.copy(tree / "boot" / f"config-{kver}", kdir / "config")
        for m in MODULES:
            found = list(tree.glob(f"*/modules/{kver}/kernel/{m}.ko*"))
            if not found:
                raise KernelError(f"{deb.name}: no module {m}")
            data = found[0].read_bytes()
            for magic, fmt in MAGICS:
                if data.startswith(magic):
                    data = decompress(data, fmt)
            ko = kdir / "modules" / (Path(m).name + ".ko")
            ko.parent.mkdir(exist_ok=True)
            ko.write_bytes(data)
            deps = elf_modinfo(ko).get("depends", "")
            if deps:
                raise KernelError(f"{m}.ko of {kver} needs modules {deps}: add them to MODULES")
        shutil.rmtree(tree)
        stamp.write_text(deb.name)
    return dict(meta=meta, package=pkg, version=version, kver=kver, dir=kdir,
                vmlinux=kdir / "vmlinux", config=kdir / "config",
                modules=[kdir / "modules" / (Path(m).name + ".ko") for m in MODULES],
                download_seconds=t1 - t0, extract_seconds=time.monotonic() - t1)


# --- initramfs -----------------------------------------------------------------------------

class Cpio:
    """A newc cpio archive (the initramfs format), built in memory."""

    def __init__(self):
        self.out = bytearray()
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b""):
        hdr = b"070701" + b"".join(b"%08X" % v for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
        self.ino += 1
        self.out += hdr + name.encode() + b"\0"
        self.out += b"\0" * (-len(self.out) % 4) + data
        self.out += b"\0" * (-len(self.out) % 4)

    def dir(self, path):
        path = path.strip("/")
        if not path or path in self.dirs:
            return
        self.dir(os.path.dirname(path))
        self.dirs.add(path)
        self._entry(path, stat.S_IFDIR | 0o755)

    def file(self, path, data, mode=0o755):
        path = path.strip("/")
        self.dir(os.path.dirname(path))
        self._entry(path, stat.S_IFREG | mode, data)

    def symlink(self, path, target):
        path = path.strip("/")
        self.dir(os.path.dirname(path))
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def bytes(self):
        self._entry("TRAILER!!!", 0)
        return bytes(self.out) + b"\0" * (-len(self.out) % 512)


def shared_libs(binaries):
    """The shared libraries (and the dynamic loader) that ldd lists for the binaries."""
    libs = set()
    for b in binaries:
        out = subprocess.run(["ldd", str(b)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if m:
                libs.add(m.group(1))
    return sorted(libs)


def base_initramfs(binaries, files):
    """The part of the initramfs common to every kernel: busybox (every applet but `ip`,
    which is Debian's iproute2 for namespaces and veth), the binaries in /usr/bin with
    their libraries, and `files` ({guest path: bytes}, e.g. /init)."""
    c = Cpio()
    for d in ("proc", "sys", "dev", "run", "tmp", "root", "etc", "boot"):
        c.dir(d)
    c.symlink("var/run", "../run")
    c.file("bin/busybox", Path("/bin/busybox").read_bytes())
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True,
                             text=True).stdout.split()
    for a in applets:
        if a not in ("ip", "busybox"):
            c.symlink(f"bin/{a}", "busybox")
    ip = Path("/usr/bin/ip") if Path("/usr/bin/ip").exists() else Path("/sbin/ip")
    c.file("sbin/ip", ip.read_bytes())
    for b in binaries:
        c.file(f"usr/bin/{Path(b).name}", Path(b).read_bytes())
    for lib in shared_libs([ip, *binaries]):
        c.file(lib, Path(lib).read_bytes())
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
    for path, data in files.items():
        c.file(path, data)
    return c.bytes()


def kernel_initramfs(k):
    """The part of one kernel: its config in /boot and its modules."""
    c = Cpio()
    c.file(f"boot/config-{k['kver']}", Path(k["config"]).read_bytes(), 0o644)
    for ko in k["modules"]:
        c.file(f"lib/modules/{k['kver']}/{ko.name}", ko.read_bytes(), 0o644)
    return c.bytes()


# --- boot ----------------------------------------------------------------------------------

def qemu_command(k, initrd, console, results, append=""):
    """qemu for a guest with no display and no terminal: the kernel console goes to
    `console`, the guest's second serial port (/dev/ttyS1) to `results`."""
    return [QEMU, "-accel", "tcg", "-m", "1024", "-smp", "1", "-nodefaults", "-no-reboot",
            "-display", "none", "-monitor", "none",
            "-serial", f"file:{console}", "-serial", f"file:{results}",
            "-kernel", k["vmlinux"], "-initrd", initrd,
            "-append", f"console=ttyS0 panic=-1 loglevel=4 {append}".strip()]


def start(k, base, timeout):
    """Boots kernel k with the base initramfs under `timeout` seconds (then qemu is
    killed); returns the running Popen, with its files in k['dir']."""
    d = Path(k["dir"])
    initrd = d / "initrd.cpio"
    # The kernel unpacks concatenated cpio archives in order.
    initrd.write_bytes(base + kernel_initramfs(k))
    for f in ("console.log", "results.log"):
        (d / f).unlink(missing_ok=True)
    cmd = ["timeout", "--kill-after=5", str(timeout),
           *qemu_command(k, initrd, d / "console.log", d / "results.log")]
    (d / "qemu.cmd").write_text(" ".join(map(str, cmd)) + "\n")
    p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                         stdout=open(d / "qemu.out", "wb"), stderr=subprocess.STDOUT)
    p.started = time.monotonic()
    return p


def install_host_packages():
    """apt-get install what the guests need and the host lacks (nothing when all is there)."""
    missing = missing_host_packages()
    if not missing:
        return 0
    print(f"kernels: installing {' '.join(missing)}", flush=True)
    opts = ["-o", "DPkg::Lock::Timeout=600", "-q", "-y"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.call(["apt-get", *opts, "install", "--no-install-recommends", *missing],
                       env=env) != 0:
        # The lists may be stale (a mirror dropped the version they name): once more after
        # an update.
        if (subprocess.call(["apt-get", *opts, "update"], env=env) != 0 or
                subprocess.call(["apt-get", *opts, "install", "--no-install-recommends",
                                 *missing], env=env) != 0):
            print(f"kernels: apt-get install {' '.join(missing)} failed", file=sys.stderr)
            return 1
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == "deps":
        return install_host_packages()
    if len(argv) != 3 or argv[1] not in ("fetch", "shell"):
        print(f"usage: {argv[0]} deps | fetch METAPACKAGE | shell METAPACKAGE",
              file=sys.stderr)
        return 2
    try:
        k = fetch(argv[2])
    except KernelError as e:
        print(f"kernels: {e}", file=sys.stderr)
        return 1
    if argv[1] == "fetch":
        print(k["dir"])
        return 0
    # A shell on the serial console, for poking at a kernel by hand.
    initrd = Path(k["dir"]) / "shell.cpio"
    init = b"#!/bin/sh\nmount -t proc p /proc; mount -t sysfs s /sys; mount -t devtmpfs d /dev\n" \
           b"mount -t bpf b /sys/fs/bpf; exec setsid cttyhack sh\n"
    initrd.write_bytes(base_initramfs([BUILD / "keepwatchd", BUILD / "keepwatch"],
                                      {"init": init}) + kernel_initramfs(k))
    cmd = [QEMU, "-accel", "tcg", "-m", "1024", "-nographic", "-no-reboot", "-kernel",
           k["vmlinux"], "-initrd", initrd, "-append", "console=ttyS0 panic=-1"]
    return subprocess.call([str(c) for c in cmd])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
