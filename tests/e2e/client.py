# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Precise HTTP/1.1 client for the end-to-end tests, run inside a network namespace.

    ip netns exec NS /usr/bin/python3 tests/e2e/client.py MODE [options]

Modes (every socket has a timeout; every loop is bounded):
  keepalive     --conns C --requests R: open C connections, then send R sequential requests
                on each (round robin, each response read fully before the next request);
                --end close (default): the client closes each connection after its last
                response; --end wait: wait until the server closes each one (recv() == b"").
  close         --requests R: R connections, one request each with "Connection: close";
                the response is read to EOF (the server closes first), then the client closes.
  idle          --requests R --wait W: one connection, R requests, then idle until the
                server closes it (recv() returns b"" within W seconds), then close.
  client-close  one connection, --requests R (default 1), then the client closes first.
  unused        --conns C: connect and close without sending anything.

Prints one JSON object on stdout: mode, connections, requests (sent), responses (complete
responses received), server_closed (connections the server closed first), idle_seconds
(time from the last response to the server's FIN), and "error" on failure. Exit status 0 only when
every response arrived complete and the closes happened as the mode expects.
"""

import argparse
import json
import socket
import sys
import time


class ClientError(Exception):
    pass


def connect(host, port, timeout):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def build_request(host, path, close):
    hosthdr = f"[{host}]" if ":" in host else host
    lines = [f"GET {path} HTTP/1.1", f"Host: {hosthdr}", "User-Agent: keepwatch-e2e"]
    lines.append("Connection: close" if close else "Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Conn:
    """One connection with its own receive buffer, so that no byte of a response is lost."""

    def __init__(self, host, port, timeout):
        self.sock = connect(host, port, timeout)
        self.buf = b""
        self.timeout = timeout
        self.eof_seen = False  # the server's FIN was read as the end of a body

    def _fill(self, deadline):
        if time.monotonic() > deadline:
            raise ClientError("response timed out")
        data = self.sock.recv(65536)
        if not data:
            raise ClientError("connection closed in the middle of a response")
        self.buf += data

    def read_response(self):
        """Read one complete response; return (status, headers dict lower-case, body)."""
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise ClientError("response header too large")
            self._fill(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ClientError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(self.buf) < length:
                self._fill(deadline)
            body, self.buf = self.buf[:length], self.buf[length:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            raise ClientError("chunked responses are not supported")
        else:
            # Body delimited by the server's close.
            while True:
                if time.monotonic() > deadline:
                    raise ClientError("response timed out")
                data = self.sock.recv(65536)
                if not data:
                    break
                self.buf += data
            body, self.buf = self.buf, b""
            self.eof_seen = True
        return status, headers, body

    def request(self, host, path, close=False):
        self.sock.sendall(build_request(host, path, close))
        status, headers, body = self.read_response()
        if status != 200:
            raise ClientError(f"status {status}, expected 200")
        return headers, body

    def wait_server_close(self, wait):
        """Wait up to `wait` seconds for the server's FIN; return the seconds waited."""
        if self.eof_seen:
            return 0.0
        start = time.monotonic()
        deadline = start + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClientError(f"server did not close within {wait}s")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise ClientError(f"server did not close within {wait}s") from None
            if not data:
                return time.monotonic() - start
            raise ClientError(f"unexpected {len(data)} bytes while waiting for close")

    def close(self):
        self.sock.close()


def run(args, out):
    host, port, timeout = args.host, args.port, args.timeout

    def one_request(conn, close=False):
        out["requests"] += 1
        headers, body = conn.request(host, args.path, close)
        out["responses"] += 1
        return headers, body

    if args.mode == "keepalive":
        conns = []
        try:
            for _ in range(args.conns):
                conns.append(Conn(host, port, timeout))
                out["connections"] += 1
            for _ in range(args.requests):
                for c in conns:
                    headers, _ = one_request(c)
                    if headers.get("connection", "").lower() == "close":
                        raise ClientError("server refused keep-alive")
            for c in conns:
                if args.end == "wait":
                    out["idle_seconds"].append(c.wait_server_close(args.wait))
                    out["server_closed"] += 1
        finally:
            for c in conns:
                c.close()
    elif args.mode == "close":
        for _ in range(args.requests):
            c = Conn(host, port, timeout)
            out["connections"] += 1
            try:
                headers, _ = one_request(c, close=True)
                if headers.get("connection", "").lower() != "close":
                    raise ClientError("server did not answer Connection: close")
                # nginx closes first: read its FIN before closing our side.
                c.wait_server_close(timeout)
                out["server_closed"] += 1
            finally:
                c.close()
    elif args.mode == "idle":
        c = Conn(host, port, timeout)
        out["connections"] += 1
        try:
            for _ in range(args.requests):
                one_request(c)
            out["idle_seconds"].append(c.wait_server_close(args.wait))
            out["server_closed"] += 1
        finally:
            c.close()
    elif args.mode == "client-close":
        c = Conn(host, port, timeout)
        out["connections"] += 1
        try:
            for _ in range(args.requests):
                one_request(c)
        finally:
            c.close()
    elif args.mode == "unused":
        for _ in range(args.conns):
            c = Conn(host, port, timeout)
            out["connections"] += 1
            if args.hold > 0:
                time.sleep(args.hold)
            c.close()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["keepalive", "close", "idle", "client-close", "unused"])
    p.add_argument("--host", required=True, help="server address (IPv4 or IPv6)")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--path", default="/")
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--requests", type=int, default=None)
    p.add_argument("--wait", type=float, default=5.0,
                   help="seconds to wait for the server's close (idle, keepalive --end wait)")
    p.add_argument("--end", choices=["close", "wait"], default="close")
    p.add_argument("--hold", type=float, default=0.0, help="unused: seconds before closing")
    p.add_argument("--timeout", type=float, default=5.0, help="per-socket timeout, seconds")
    a = p.parse_args(argv)
    if a.requests is None:
        a.requests = {"keepalive": 10, "close": 20}.get(a.mode, 1)
    for name in ("conns", "requests"):
        v = getattr(a, name)
        if not 0 <= v <= 100000:
            p.error(f"--{name} out of range: {v}")
    if not 0 < a.wait <= 600 or not 0 < a.timeout <= 600 or not 0 <= a.hold <= 600:
        p.error("times must be in (0, 600] seconds")
    return a


def main(argv):
    args = parse_args(argv)
    out = {"mode": args.mode, "host": args.host, "port": args.port, "connections": 0,
           "requests": 0, "responses": 0, "server_closed": 0, "idle_seconds": []}
    try:
        run(args, out)
    except (OSError, ClientError, ValueError) as e:
        # Report what had happened so far, and fail.
        out["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
