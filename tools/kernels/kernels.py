#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Debian's own kernels in qemu: fetch, extract, build an initramfs, boot.

Used by the kernel-matrix tests (tests/kernels/, `make test-kernels`), the guests' cost
benchmark (tools/bench/kernels-cost.py, `make bench-kernels`) and by hand:

  tools/kernels/kernels.py deps [ARCH]                         # apt-get install qemu...
  tools/kernels/kernels.py fetch [ARCH] linux-image-6.12-amd64 # prints the kernel's folder
  tools/kernels/kernels.py shell [ARCH] linux-image-amd64      # boot to a busybox shell

ARCH is keepwatch's name of an architecture, x86 (the default) or arm64 (ARCHES). The two
share everything but the qemu command, the package architecture, how the image is taken
out of the package and where the agent's binaries are built (build/ or build/arm64/).

A kernel is named by a Debian metapackage (linux-image-amd64, linux-image-6.12-arm64),
resolved through apt-cache at every run: old ABI versions leave the mirror, so no ABI
number is written down anywhere. The package is fetched with `apt-get download` into
build/kernels/cache/ (kept between runs) and only what a guest needs is taken out of it:
boot/vmlinuz-* (on x86 its compressed payload decompressed to the ELF vmlinux, which qemu
boots through PVH with no bootloader and no firmware; on arm64 the raw Image, gzip'd in
some builds, which qemu's virt board boots directly), boot/config-* (libbpf reads
CONFIG_HZ for __kconfig from /boot/config-$(uname -r)) and the veth module (a module in
Debian's configs). The guest's userland is of the guest's architecture: the host's
busybox and `ip` when it is the host's, else busybox-static and iproute2 of that
architecture, fetched the same way, with the libraries they need (the host's multiarch
folders, or the packages that are not installed). Standard library only; qemu runs under
TCG (no KVM needed).
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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("KW_BUILD") or REPO / "build")
CACHE = BUILD / "kernels" / "cache"
# Modules a guest loads, from the kernel package (a list: each after its dependencies).
MODULES = ["drivers/net/veth"]


@dataclass(frozen=True)
class Arch:
    """What differs between the architectures of the guests."""
    name: str          # keepwatch's name (make ARCH=, bpf/vmlinux/<name>/)
    deb: str           # Debian's name of it (package suffixes, :arch qualifiers)
    triplet: str       # the multiarch triplet (/usr/lib/<triplet>, <triplet>-gcc)
    qemu: list         # qemu and its board
    console: str       # the kernel console: the board's first serial port
    # The guest's second port, for the results: qemu's devices, and its name in the guest
    # (guest-init.sh reads it from KW_RESULTS, which the kernel passes to /init).
    results: list
    results_dev: str
    image: object      # vmlinuz bytes -> (bytes qemu boots, what it was compressed with)
    # Host packages the guests need: {a command or path: the package that has it}.
    host_packages: dict
    build_subdir: str  # where `make` puts its binaries, under build/ ("" for the host's)

    @property
    def binaries(self):
        return BUILD / self.build_subdir if self.build_subdir else BUILD

    @property
    def cc(self):
        return "gcc" if self.native else f"{self.triplet}-gcc"

    @property
    def native(self):
        return self.deb == host_deb_arch()


def host_deb_arch():
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                          text=True).stdout.strip()


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


def missing_host_packages(a):
    """The Debian packages to install for the guests of arch a (empty when all are there)."""
    return sorted({pkg for tool, pkg in a.host_packages.items()
                   if not (os.path.exists(tool) if tool.startswith("/") else shutil.which(tool))})


# --- fetch ---------------------------------------------------------------------------------

def resolve(meta, a):
    """The versioned image package a metapackage of arch a depends on now, and its
    version."""
    meta = f"{meta}:{a.deb}"
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
        show = run(["apt-cache", "show", "--no-all-versions", f"{pkg}:{a.deb}"]).decode()
        version = re.search(r"^Version:\s*(\S+)", show, re.M).group(1)
    return pkg, version


def download(pkg, version, a):
    """The package's .deb of arch a in the cache, downloaded unless it is there already."""
    CACHE.mkdir(parents=True, exist_ok=True)
    # apt-get names it as the archive does: an epoch's colon URL-encoded.
    deb = CACHE / f"{pkg}_{version.replace(':', '%3a')}_{a.deb}.deb"
    if not deb.exists():
        # Sandbox user root: the cache belongs to root and _apt could not write there.
        run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "-o",
             "DPkg::Lock::Timeout=600", "download", f"{pkg}:{a.deb}={version}"], cwd=CACHE,
            timeout=600)
        if not deb.exists():
            raise KernelError(f"apt-get download {pkg}:{a.deb}={version}: {deb.name} not found "
                              f"after it")
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


def extract_arm64_image(vmlinuz):
    """The arm64 Image qemu boots: Debian's vmlinuz is the raw Image (its header has the
    magic "ARM\\x64" at 0x38), or that Image gzip'd in some builds."""
    b = Path(vmlinuz).read_bytes()
    fmt = "none"
    if b.startswith(b"\x1f\x8b"):
        b, fmt = gzip.decompress(b), "gzip"
    if b[0x38:0x3c] != b"ARM\x64":
        raise KernelError(f"{vmlinuz}: not an arm64 Image (no ARM\\x64 magic at 0x38)")
    return b, fmt


ARCHES = {
    # PVH boot of the ELF vmlinux; the results on the second 16550 (ttyS1).
    "x86": Arch("x86", "amd64", "x86_64-linux-gnu", ["qemu-system-x86_64"], "ttyS0",
                ["-serial", "file:{results}"], "/dev/ttyS1", extract_vmlinux,
                {"qemu-system-x86_64": "qemu-system-x86", "/bin/busybox": "busybox-static",
                 "zstd": "zstd", "/usr/bin/ip": "iproute2"}, ""),
    # The virt board has one PL011 (ttyAMA0). The results go to a 16550 on its PCI bus
    # (qemu's pci-serial, 8250_pci: built into Debian's arm64 kernels, like the PCI host
    # bridge, so no module is needed before the first result), the guest's ttyS0.
    # virtconsole would need virtio_mmio (a module in both) and virtio_console (a module
    # in 6.1). -cpu max with the real pointer authentication algorithm is several times
    # slower under TCG: pauth-impdef=on (tools/kernels/boot-arm64.sh measures it).
    "arm64": Arch("arm64", "arm64", "aarch64-linux-gnu",
                  ["qemu-system-aarch64", "-M", "virt", "-cpu", "max,pauth-impdef=on"],
                  "ttyAMA0",
                  ["-chardev", "file,id=results,path={results}",
                   "-device", "pci-serial,chardev=results"], "/dev/ttyS0",
                  extract_arm64_image,
                  {"qemu-system-aarch64": "qemu-system-arm",
                   "qemu-aarch64-static": "qemu-user-static",
                   "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu"}, "arm64"),
}


def arch(name):
    if name not in ARCHES:
        raise KernelError(f"unknown architecture {name!r}: one of {', '.join(ARCHES)}")
    return ARCHES[name]


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


def fetch(meta, a):
    """The kernel of a metapackage of arch a, ready to boot: a dict with its version,
    folder, image (what qemu's -kernel takes), config, modules (host paths, uncompressed)
    and the times taken."""
    t0 = time.monotonic()
    pkg, version = resolve(meta, a)
    deb = download(pkg, version, a)
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
        image, fmt = a.image(tree / "boot" / f"vmlinuz-{kver}")
        (kdir / "vmlinux").write_bytes(image)
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
    return dict(meta=meta, arch=a, package=pkg, version=version, kver=kver, dir=kdir,
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
    """The shared libraries (and the dynamic loader) that ldd lists for the binaries:
    {guest path: host path}."""
    libs = {}
    for b in binaries:
        out = subprocess.run(["ldd", str(b)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if m:
                libs[m.group(1)] = m.group(1)
    return libs


def elf_needs(path):
    """The NEEDED sonames and the PT_INTERP of an ELF file of any architecture (readelf
    reads them all; ldd runs the binary, which a foreign one cannot)."""
    out = run(["readelf", "-d", "-l", "-W", path]).decode()
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", out)
    interp = re.search(r"Requesting program interpreter: ([^]]+)\]", out)
    return needed, interp.group(1) if interp else None


def foreign_shared_libs(binaries, a, roots):
    """shared_libs() for binaries of a foreign arch a: their NEEDED, transitively, found
    in the multiarch folders of `roots` (extracted packages, then the host "/"), and
    their loader: {guest path: host path}. Raises with the sonames found nowhere."""
    libs, todo, missing = {}, list(binaries), set()
    dirs = [Path(r) / d / a.triplet for r in roots for d in ("lib", "usr/lib")]
    while todo:
        needed, interp = elf_needs(todo.pop())
        if interp and interp not in libs:
            host = next((Path(r) / interp.lstrip("/") for r in roots
                         if (Path(r) / interp.lstrip("/")).exists()), None)
            if host is None:
                missing.add(interp)
                continue
            libs[interp] = host
        for so in needed:
            guest = f"/lib/{a.triplet}/{so}"
            if guest in libs:
                continue
            host = next((d / so for d in dirs if (d / so).exists()), None)
            if host is None:
                missing.add(so)
                continue
            libs[guest] = host
            todo.append(host)
    if missing:
        raise KernelError(f"{a.name} libraries found nowhere: {' '.join(sorted(missing))}")
    return libs


def foreign_packages(pkgs, a):
    """Packages pkgs of arch a extracted under build/kernels/<deb arch>/<package>/, with
    the libraries they depend on that the host has not installed for a, recursively
    (their first alternatives; libc6 and the like are there with the cross build): the
    roots to look into, pkgs' first. One apt-cache call a level: each takes a second."""
    roots, done, level = {}, set(pkgs), list(pkgs)
    while level:
        out = run(["apt-cache", "show", "--no-all-versions",
                   *[f"{p}:{a.deb}" for p in level]]).decode()
        deps = []
        for record in out.strip().split("\n\n"):
            pkg = re.search(r"^Package:\s*(\S+)", record, re.M).group(1)
            version = re.search(r"^Version:\s*(\S+)", record, re.M).group(1)
            roots[pkg] = extract_package(pkg, version, a)
            for field in re.findall(r"^(?:Pre-)?Depends:\s*(.*)$", record, re.M):
                for alt in field.split(","):
                    dep = alt.split("|")[0].split("(")[0].strip().split(":")[0]
                    if dep.startswith("lib") and dep not in done:
                        done.add(dep)
                        deps.append(dep)
        level = not_installed(deps, a)
    return [roots[p] for p in pkgs] + [r for p, r in roots.items() if p not in pkgs]


def not_installed(pkgs, a):
    """The packages of pkgs that dpkg has not installed for arch a."""
    if not pkgs:
        return []
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n",
                          *[f"{p}:{a.deb}" for p in pkgs]], capture_output=True, text=True)
    ok = {line.split()[0] for line in out.stdout.splitlines()
          if line.split()[1:2] == ["ii"]}
    return [p for p in pkgs if p not in ok]


def extract_package(pkg, version, a):
    """The folder package pkg (of arch a, at version) is extracted in, once a version."""
    deb = download(pkg, version, a)
    root = BUILD / "kernels" / a.deb / pkg
    stamp = root / ".extracted"
    if not (stamp.exists() and stamp.read_text() == deb.name):
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        run(["dpkg-deb", "-x", deb, root])
        stamp.write_text(deb.name)
    return root


def userland(a):
    """busybox, Debian's ip, the roots their libraries are found in, and busybox's
    applets, for the guests of arch a: the host's own when a is the host's, else
    busybox-static and iproute2 of arch a (busybox --list run by qemu-user)."""
    if a.native:
        ip = Path("/usr/bin/ip") if Path("/usr/bin/ip").exists() else Path("/sbin/ip")
        busybox = Path("/bin/busybox")
        applets = subprocess.run([busybox, "--list"], capture_output=True,
                                 text=True).stdout.split()
        return busybox, ip, ["/"], applets
    roots = foreign_packages(["busybox-static", "iproute2"], a)
    busybox = roots[0] / "bin" / "busybox"
    ip = next(roots[1] / d / "ip" for d in ("bin", "sbin", "usr/bin", "usr/sbin")
              if (roots[1] / d / "ip").is_file() and not (roots[1] / d / "ip").is_symlink())
    qemu_user = f"qemu-{a.triplet.split('-')[0]}-static"
    applets = run([qemu_user, busybox, "--list"]).decode().split()
    return busybox, ip, roots + ["/"], applets


def base_initramfs(binaries, files, a=None):
    """The part of the initramfs common to every kernel of arch a: busybox (every applet
    but `ip`, which is Debian's iproute2 for namespaces and veth), the binaries in
    /usr/bin with their libraries, and `files` ({guest path: bytes}, e.g. /init)."""
    a = a or ARCHES["x86"]
    c = Cpio()
    for d in ("proc", "sys", "dev", "run", "tmp", "root", "etc", "boot"):
        c.dir(d)
    c.symlink("var/run", "../run")
    busybox, ip, roots, applets = userland(a)
    c.file("bin/busybox", busybox.read_bytes())
    for applet in applets:
        if applet not in ("ip", "busybox"):
            c.symlink(f"bin/{applet}", "busybox")
    c.file("sbin/ip", ip.read_bytes())
    for b in binaries:
        c.file(f"usr/bin/{Path(b).name}", Path(b).read_bytes())
    libs = (shared_libs([ip, *binaries]) if a.native
            else foreign_shared_libs([ip, *binaries], a, roots))
    for guest, host in sorted(libs.items()):
        c.file(guest, Path(host).read_bytes())
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
    # what every /init sources: reporting, power-off, mounts
    c.file("lib/kw-guest.sh", (Path(__file__).parent / "guest-lib.sh").read_bytes(), 0o644)
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


# --- the guests' programs and reports -------------------------------------------------------

def build_kwtraffic(a):
    """tests/kernels/kwtraffic.c for arch a, static: the guests have no libc of their own.
    The kernel-matrix tests and the guests' cost benchmark both drive their traffic with
    it."""
    out = BUILD / "kernels" / ("kwtraffic" if a.native else f"{a.deb}/kwtraffic")
    out.parent.mkdir(parents=True, exist_ok=True)
    run([a.cc, "-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
         "-Wmissing-prototypes", "-Wstrict-prototypes", "-static",
         REPO / "tests/kernels/kwtraffic.c", "-o", out])
    return out


def parse_report(text):
    """A guest's report on its second port: {'lines': {key: [values]}, 'docs': {name:
    text}}, from `KW <key> <value>` lines and `KW-BEGIN <name>` ... `KW-END <name>`
    documents."""
    lines, docs, cur, buf = {}, {}, None, []
    for raw in text.replace("\r", "").splitlines():
        if cur is not None:
            if raw == f"KW-END {cur}":
                docs[cur] = "\n".join(buf) + "\n"
                cur = None
            else:
                buf.append(raw)
        elif raw.startswith("KW-BEGIN "):
            cur, buf = raw[len("KW-BEGIN "):], []
        elif raw.startswith("KW "):
            key, _, value = raw[3:].partition(" ")
            lines.setdefault(key, []).append(value)
    return dict(lines=lines, docs=docs)


# --- boot ----------------------------------------------------------------------------------

def qemu_command(k, initrd, console, results, append=""):
    """qemu for a guest with no display and no terminal: the kernel console goes to
    `console`, the guest's second port (KW_RESULTS in /init's environment) to `results`."""
    a = k["arch"]
    return [*a.qemu, "-accel", "tcg", "-m", "1024", "-smp", "1", "-nodefaults", "-no-reboot",
            "-display", "none", "-monitor", "none", "-serial", f"file:{console}",
            *[arg.format(results=results) for arg in a.results],
            "-kernel", k["vmlinux"], "-initrd", initrd,
            "-append", f"console={a.console} panic=-1 loglevel=4 KW_RESULTS={a.results_dev} "
                       f"{append}".strip()]


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


def install_host_packages(a):
    """apt-get install what the guests of arch a need and the host lacks (nothing when all
    is there)."""
    missing = missing_host_packages(a)
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
    args = argv[1:]
    cmd = args.pop(0) if args else None
    name = args.pop(0) if args and args[0] in ARCHES else "x86"
    a = ARCHES[name]
    if cmd == "deps" and not args:
        return install_host_packages(a)
    if cmd not in ("fetch", "shell") or len(args) != 1:
        print(f"usage: {argv[0]} deps [ARCH] | fetch [ARCH] METAPACKAGE | "
              f"shell [ARCH] METAPACKAGE  (ARCH: {', '.join(ARCHES)}; default x86)",
              file=sys.stderr)
        return 2
    try:
        k = fetch(args[0], a)
        if cmd == "fetch":
            print(k["dir"])
            return 0
        # A shell on the serial console, for poking at a kernel by hand.
        initrd = Path(k["dir"]) / "shell.cpio"
        init = b"#!/bin/sh\nmount -t proc p /proc; mount -t sysfs s /sys; " \
               b"mount -t devtmpfs d /dev\nmount -t bpf b /sys/fs/bpf; exec setsid cttyhack sh\n"
        bins = [a.binaries / "keepwatchd", a.binaries / "keepwatch"]
        initrd.write_bytes(base_initramfs([b for b in bins if b.exists()], {"init": init}, a)
                           + kernel_initramfs(k))
    except KernelError as e:
        print(f"kernels: {e}", file=sys.stderr)
        return 1
    cmd = [*a.qemu, "-accel", "tcg", "-m", "1024", "-nographic", "-no-reboot", "-kernel",
           k["vmlinux"], "-initrd", initrd, "-append", f"console={a.console} panic=-1"]
    return subprocess.call([str(c) for c in cmd])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
