#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Load a BPF object file, attach every program in it, hold until SIGTERM/SIGINT.

    bpfload.py OBJ

Used by the overhead benchmark for the empty 'floor' programs (bpftool 7.1 cannot attach
tp_btf programs). Standard library only: libbpf through ctypes. Prints one line
"attached N: name,name,..." on stdout once every program is attached, then waits; on a
signal it detaches, closes the object and exits 0. Exit 1 on any load or attach error.
"""

import ctypes
import ctypes.util
import os
import signal
import sys


def main():
    if len(sys.argv) != 2:
        print("usage: bpfload.py OBJ", file=sys.stderr)
        return 2
    path = sys.argv[1]
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    vp = ctypes.c_void_p
    lib.bpf_object__open_file.restype = vp
    lib.bpf_object__open_file.argtypes = [ctypes.c_char_p, vp]
    lib.bpf_object__load.restype = ctypes.c_int
    lib.bpf_object__load.argtypes = [vp]
    lib.bpf_object__next_program.restype = vp
    lib.bpf_object__next_program.argtypes = [vp, vp]
    lib.bpf_program__name.restype = ctypes.c_char_p
    lib.bpf_program__name.argtypes = [vp]
    lib.bpf_program__attach.restype = vp
    lib.bpf_program__attach.argtypes = [vp]
    lib.bpf_link__destroy.restype = ctypes.c_int
    lib.bpf_link__destroy.argtypes = [vp]
    lib.bpf_object__close.restype = None
    lib.bpf_object__close.argtypes = [vp]
    # libbpf 1.x returns NULL and sets errno on error.

    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: stop.append(s))

    obj = lib.bpf_object__open_file(path.encode(), None)
    if not obj:
        print(f"bpfload: open {path}: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    links = []
    try:
        err = lib.bpf_object__load(obj)
        if err:
            print(f"bpfload: load {path}: {os.strerror(-err)}", file=sys.stderr)
            return 1
        names = []
        prog = lib.bpf_object__next_program(obj, None)
        while prog:
            pname = lib.bpf_program__name(prog).decode()
            link = lib.bpf_program__attach(prog)
            if not link:
                print(f"bpfload: attach {pname}: {os.strerror(ctypes.get_errno())}",
                      file=sys.stderr)
                return 1
            links.append(link)
            names.append(pname)
            prog = lib.bpf_object__next_program(obj, prog)
        print(f"attached {len(names)}: {','.join(names)}", flush=True)
        while not stop:
            signal.pause()
        return 0
    finally:
        for link in links:
            lib.bpf_link__destroy(link)
        lib.bpf_object__close(obj)


if __name__ == "__main__":
    sys.exit(main())
