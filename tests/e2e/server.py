# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""A small HTTP server for the end-to-end tests that ends connections the way real servers
sometimes do, with a RST. Run inside a network namespace:

    ip netns exec NS /usr/bin/python3 tests/e2e/server.py MODE --conns N [--port 80]

It listens on [::]:PORT (IPv4 too), serves N connections one after the other, then prints
one JSON object (connections, requests answered, unread: connections closed with bytes
unread in the receive queue) and exits. Every wait is bounded.

Modes:
  linger0              read one request, answer it (keep-alive), then close with
                       SO_LINGER {1, 0}: a RST with nothing unread.
  abort-unread         wait until the first request has arrived, close without reading
                       it: a RST (the kernel's reason: abort on close).
  abort-unread-reused  answer the first request, wait until the second has arrived, close
                       without reading it.
"""

import argparse
import json
import select
import socket
import struct
import sys
import termios
import fcntl
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n"


def read_request(s, timeout):
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError("request timed out")
        data = s.recv(65536)
        if not data:
            raise ConnectionError("client closed before a full request")
        buf += data
    return buf


def wait_readable(s, timeout):
    r, _, _ = select.select([s], [], [], timeout)
    if not r:
        raise TimeoutError(f"nothing to read within {timeout}s")
    time.sleep(0.05)  # let the whole request land


def unread_bytes(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def serve(conn, mode, out, timeout):
    conn.settimeout(timeout)
    if mode in ("linger0", "abort-unread-reused"):
        read_request(conn, timeout)
        conn.sendall(RESPONSE)
        out["requests"] += 1
    if mode == "linger0":
        time.sleep(0.05)  # the response reaches the client before the RST
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        wait_readable(conn, timeout)
    if unread_bytes(conn) > 0:
        out["unread"] += 1
    conn.close()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["linger0", "abort-unread", "abort-unread-reused"])
    p.add_argument("--conns", type=int, required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--timeout", type=float, default=10.0)
    a = p.parse_args(argv)
    if not 1 <= a.conns <= 10000:
        p.error("--conns out of range")
    out = {"mode": a.mode, "connections": 0, "requests": 0, "unread": 0}
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind(("::", a.port))
    ls.listen(128)
    ls.settimeout(a.timeout)
    try:
        for _ in range(a.conns):
            conn, _ = ls.accept()
            out["connections"] += 1
            serve(conn, a.mode, out, a.timeout)
    except (OSError, TimeoutError, ConnectionError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out))
        return 1
    finally:
        ls.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
