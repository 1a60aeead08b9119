#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Window probe of the overhead benchmark (bench.py, windows method).

    probe.py HOST PORT      (in the load's client namespace; commands on stdin)

Runs for as long as one continuous wrk run and answers one JSON line per command:

  take NAME ID...   hold the BPF programs ID... (by id: they outlive the process that
                    loaded them, which then exits and takes its own links with it)
  drop NAME         let them go (after `set -`)
  set NAME[xK] | set -
                    detach what is attached, then attach NAME's programs to their
                    tracepoints (tp_btf: BPF_RAW_TRACEPOINT_OPEN with the attach point
                    the program was loaded for), each K times (default once: more
                    links of one program are more runs of it, which prices the
                    kernel's dispatch to a program), or nothing
  sample            {"t_ns", "requests", "progs": {ID: [run_cnt, run_time_ns]}}:
                    nginx's stub_status request count (less this probe's own requests,
                    over one kept-alive connection) and bpf_stats of every program held,
                    read together; t_ns is CLOCK_MONOTONIC halfway through.

Switching a treatment takes well under a millisecond, so windows a fraction of a second
long alternate faster than this machine's throughput drifts (BENCHMARKS.md, Noise).
Standard library only: libbpf through ctypes, as bpfload.py.
"""

import ctypes
import ctypes.util
import http.client
import json
import os
import sys
import time


class Bpf:
    def __init__(self):
        lib = ctypes.CDLL(ctypes.util.find_library("bpf") or "libbpf.so.1", use_errno=True)
        lib.bpf_prog_get_fd_by_id.restype = ctypes.c_int
        lib.bpf_prog_get_fd_by_id.argtypes = [ctypes.c_uint32]
        lib.bpf_raw_tracepoint_open.restype = ctypes.c_int
        lib.bpf_raw_tracepoint_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.lib = lib

    def prog_fd(self, prog_id):
        fd = self.lib.bpf_prog_get_fd_by_id(prog_id)
        if fd < 0:
            raise OSError(-fd, f"program {prog_id}: {os.strerror(-fd)}")
        return fd

    def attach(self, prog_fd):
        fd = self.lib.bpf_raw_tracepoint_open(None, prog_fd)
        if fd < 0:
            raise OSError(-fd, f"attach: {os.strerror(-fd)}")
        return fd


def stats(fd):
    with open(f"/proc/self/fdinfo/{fd}") as f:
        info = dict(line.split(":", 1) for line in f if ":" in line)
    return [int(info["run_cnt"]), int(info["run_time_ns"])]


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: probe.py HOST PORT   (commands on stdin)")
    conn = http.client.HTTPConnection(argv[1], int(argv[2]), timeout=10)
    bpf = Bpf()
    held = {}  # name: {prog id: fd}
    links = []
    mine = 0
    for line in sys.stdin:
        words = line.split()
        try:
            if words[:1] == ["take"]:
                held[words[1]] = {int(i): bpf.prog_fd(int(i)) for i in words[2:]}
                out = {"ok": True}
            elif words[:1] == ["drop"]:
                for fd in held.pop(words[1]).values():
                    os.close(fd)
                out = {"ok": True}
            elif words[:1] == ["set"]:
                for fd in links:
                    os.close(fd)
                links = []
                if words[1] != "-":
                    name, _, times = words[1].rpartition("x")
                    if not times.isdigit():
                        name, times = words[1], "1"
                    links = [bpf.attach(fd) for _ in range(int(times))
                             for fd in held[name].values()]
                out = {"ok": True, "attached": len(links)}
            elif words == ["sample"]:
                progs = {i: stats(fd) for h in held.values() for i, fd in h.items()}
                t0 = time.monotonic_ns()
                conn.request("GET", "/kwb-status")
                body = conn.getresponse().read().decode()
                t1 = time.monotonic_ns()
                after = {i: stats(fd) for h in held.values() for i, fd in h.items()}
                mine += 1
                # "server accepts handled requests\n A H R\n": R counts this request too
                out = {"t_ns": (t0 + t1) // 2,
                       "requests": int(body.splitlines()[2].split()[2]) - mine,
                       # read on both sides of the request, averaged: the same instant
                       "progs": {i: [(progs[i][0] + v[0]) // 2, (progs[i][1] + v[1]) // 2]
                                 for i, v in after.items()}}
            else:
                out = {"error": f"unknown command {line.strip()!r}"}
        except (OSError, KeyError, IndexError, ValueError) as e:
            out = {"error": str(e)}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
