# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The agent on a kernel it cannot run on, made on this host in a mount namespace of its
own: /sys/kernel/btf is replaced by a tmpfs holding no vmlinux BTF, or BTF of a kernel
without the tracepoints keepwatch needs. The agent exits 1 naming the running kernel and
what it needs, and leaves no pin directory behind (it left an empty one)."""

import os
import subprocess

import pytest

import kw
from kw import assert_eq


def fake_btf(tmp_path):
    """Raw BTF with one struct and no tracepoint: a small BPF object's .BTF section."""
    src, obj, btf = tmp_path / "t.c", tmp_path / "t.o", tmp_path / "vmlinux"
    src.write_text("struct kw_fake { int a; };\nstruct kw_fake kw_fake_x;\n")
    kw.run(["clang", "-g", "-target", "bpf", "-c", str(src), "-o", str(obj)])
    kw.run(["llvm-objcopy", f"--dump-section=.BTF={btf}", str(obj)])
    return btf


@pytest.mark.parametrize("btf", ["none", "no-tracepoints"])
def test_kernel_too_old(tmp_path, btf):
    kw.require_binary(kw.KEEPWATCHD)
    pin_dir = f"/sys/fs/bpf/kwoldkernel{os.getpid()}"
    assert not os.path.exists(pin_dir), f"{pin_dir} exists before the test"
    copy = f"cp {fake_btf(tmp_path)} /sys/kernel/btf/vmlinux && " if btf != "none" else ""
    script = (f"mount -t tmpfs kwbtf /sys/kernel/btf && {copy}exec {kw.KEEPWATCHD} "
              f"--listen 127.0.0.1:{kw.free_port()} --pin-dir {pin_dir}")
    try:
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            script], capture_output=True, text=True, timeout=30)
        assert_eq(f"exit status\n{p.stderr}", p.returncode, 1)
        release = os.uname().release
        why = ("kernel BTF not found" if btf == "none" else
               "has no inet_sock_set_state tracepoint")
        for m in (why, f"Linux {release}", "keepwatch needs Linux 6.1 or later with BTF"):
            assert m in p.stderr, f"{m!r} not in:\n{p.stderr}"
        assert not os.path.exists(pin_dir), f"{pin_dir} left behind"
    finally:
        if os.path.isdir(pin_dir):
            os.rmdir(pin_dir)
