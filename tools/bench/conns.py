#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Connection generators for the overhead benchmark (standard library only).

  conns.py peers --server IP --port P --first IP --count N [--deadline S]
      One HTTP/1.1 request on its own connection from each of N consecutive source
      addresses starting at --first (they must be configured locally), then close: N
      distinct peers for the server. Prints a JSON summary.
  conns.py hold-server --addr IP --ports P1,P2,... [--count N]
      Accept connections on every port and hold them open until SIGTERM/SIGINT.
  conns.py hold-client --server IP --ports P1,P2,... --count N [--deadline S]
      Open N connections spread over the ports (non-blocking, a bounded window in
      flight), print one JSON line when done, hold them until SIGTERM/SIGINT.

Every loop is bounded by --deadline.
"""

import argparse
import errno
import ipaddress
import json
import resource
import select
import signal
import socket
import sys
import time


def raise_nofile(n):
    """Room for n sockets: the soft limit up to the hard one (raising the hard limit needs
    CAP_SYS_RESOURCE, which containers often lack: spread the sockets over processes)."""
    want = n + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
                return
            except (ValueError, OSError):
                sys.exit(f"conns.py: {n} sockets need {want} file descriptors, the hard "
                         f"limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def stop_on_signals():
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: stop.append(s))
    return stop


def peers(a):
    first = ipaddress.ip_address(a.first)
    req = f"GET / HTTP/1.1\r\nHost: {a.server}\r\nConnection: close\r\n\r\n".encode()
    ok = failed = 0
    t0 = time.monotonic()
    deadline = t0 + a.deadline
    for i in range(a.count):
        if time.monotonic() > deadline:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.bind((str(first + i), 0))
            s.connect((a.server, a.port))
            s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.1 200"):
                ok += 1
            else:
                failed += 1
        except OSError:
            failed += 1
        finally:
            s.close()
    print(json.dumps({"ok": ok, "failed": failed, "seconds": round(time.monotonic() - t0, 3)}),
          flush=True)
    return 0 if ok + failed == a.count and not failed else 1


def hold_server(a):
    raise_nofile(a.count)
    stop = stop_on_signals()
    ep = select.epoll()
    listeners = {}
    for port in a.ports:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((a.addr, port))
        ls.listen(65535)
        ls.setblocking(False)
        ep.register(ls.fileno(), select.EPOLLIN)
        listeners[ls.fileno()] = ls
    held = []
    print(json.dumps({"listening": a.ports}), flush=True)
    while not stop:
        try:
            events = ep.poll(0.2)
        except InterruptedError:
            continue
        for fd, _ in events:
            ls = listeners[fd]
            while True:
                try:
                    c, _ = ls.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:
                    if e.errno in (errno.EMFILE, errno.ENFILE):
                        print(f"hold-server: {e}", file=sys.stderr)
                        break
                    raise
                held.append(c)
    for c in held:
        c.close()
    return 0


def hold_client(a):
    raise_nofile(a.count)
    stop = stop_on_signals()
    ep = select.epoll()
    pending = {}
    held = []
    failed = 0
    started = 0
    window = 1000
    t0 = time.monotonic()
    deadline = t0 + a.deadline
    while (started < a.count or pending) and not stop and time.monotonic() < deadline:
        while started < a.count and len(pending) < window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((a.server, a.ports[started % len(a.ports)]))
            started += 1
            if err in (0, errno.EINPROGRESS):
                pending[s.fileno()] = s
                ep.register(s.fileno(), select.EPOLLOUT)
            else:
                failed += 1
                s.close()
        try:
            events = ep.poll(0.2)
        except InterruptedError:
            continue
        for fd, _ in events:
            s = pending.pop(fd)
            ep.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                held.append(s)
            else:
                failed += 1
                s.close()
    print(json.dumps({"established": len(held), "failed": failed + len(pending),
                      "seconds": round(time.monotonic() - t0, 3)}), flush=True)
    for s in pending.values():
        s.close()
    while not stop:
        signal.pause()
    for s in held:
        s.close()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("peers")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--first", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--deadline", type=float, default=120)
    p = sub.add_parser("hold-server")
    p.add_argument("--addr", required=True)
    p.add_argument("--ports", type=lambda s: [int(x) for x in s.split(",")], required=True)
    p.add_argument("--count", type=int, default=100000)
    p = sub.add_parser("hold-client")
    p.add_argument("--server", required=True)
    p.add_argument("--ports", type=lambda s: [int(x) for x in s.split(",")], required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--deadline", type=float, default=120)
    a = ap.parse_args()
    return {"peers": peers, "hold-server": hold_server, "hold-client": hold_client}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
