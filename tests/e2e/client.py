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
  race          --conns C: --first F (default 1) requests on each of C connections, round
                robin, then print a "ready" line
                and wait for "go SECONDS" on stdin (or --delay SECONDS without --control):
                SECONDS after the last response, send a second request on each connection
                and watch what answers it: a response, or a reset (the socket reaches
                CLOSE; SO_ERROR says ECONNRESET or EPIPE), or nothing within --wait.
  reuse         --requests R: R sequential keep-alive requests, on one connection until
                the server closes it (a response with "Connection: close", then its FIN),
                then on a new one; the client closes the last connection.
  churn         --conns C: C connections in turn, one keep-alive request each, the client
                closing first (its side keeps the TIME_WAIT); a connect() that fails with
                EADDRNOTAVAIL is counted and the loop goes on, any other error stops it.
  reset-wait    --requests R [--unanswered U] [--pause P]: R requests on one connection,
                then (P seconds later) U more sent without waiting for an answer, then
                wait up to --wait for the server to end it, and report how ("end"):
                "eof" (FIN), "ECONNRESET" or "none".

--linger0 (client-close, churn): close with SO_LINGER {1, 0}, which sends a RST.

Prints one JSON object on stdout (race: a "ready" line first): mode, connections,
requests (sent), responses (complete responses received), server_closed (connections the
server closed first), idle_seconds (time from the last response to the server's FIN),
mode-specific results (race: state_at_send, outcome, reset_errno, delay_seconds; churn:
connect_errors; reset-wait: end), and "error" on failure. Exit status 0 only when every
response arrived complete and the closes happened as the mode expects.
"""

import argparse
import errno
import json
import select
import socket
import struct
import sys
import time

# Linux TCP states, as struct tcp_info's first byte gives them (include/net/tcp_states.h).
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
              11: "CLOSING"}


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

    def state(self):
        """The socket's TCP state name, from TCP_INFO."""
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return TCP_STATES.get(info[0], str(info[0]))

    def peer_closed(self):
        """True when the peer's FIN has been read or is waiting (recv would return b"")."""
        if self.eof_seen:
            return True
        try:
            return self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False

    def set_linger0(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self):
        self.sock.close()


def errno_name(n):
    return errno.errorcode.get(n, str(n))


def watch_second_request(c, deadline):
    """After a request on a connection that may have been closed: wait until `deadline`
    (time.monotonic()) for a response or for the socket to be reset. Returns "response", "reset"
    or "none", and the errno name the reset left (SO_ERROR, or a recv() error), if any.

    A reset is seen through the socket's state (CLOSE), not through recv() alone: once
    the peer's FIN has been queued, recv() returns b"" and never reports the reset."""
    seen = None  # an error a peek returned: reading it clears SO_ERROR
    while True:
        if c.state() == "CLOSE":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            return "reset", errno_name(err) if err else seen
        if not c.eof_seen:
            try:
                data = c.sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                if data.startswith(b"HTTP/1."):
                    return "response", None
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                seen = errno_name(e.errno)
        if time.monotonic() >= deadline:
            return "none", None
        time.sleep(0.005)


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
            if args.linger0:
                c.set_linger0()
        finally:
            c.close()
    elif args.mode == "race":
        run_race(args, out)
    elif args.mode == "reuse":
        c = None
        try:
            while out["requests"] < args.requests:
                if c is None:
                    c = Conn(host, port, timeout)
                    out["connections"] += 1
                headers, _ = one_request(c)
                if headers.get("connection", "").lower() == "close":
                    c.wait_server_close(timeout)
                    out["server_closed"] += 1
                    c.close()
                    c = None
        finally:
            if c is not None:
                c.close()
    elif args.mode == "churn":
        out["connect_errors"] = {}
        for _ in range(args.conns):
            try:
                c = Conn(host, port, timeout)
            except OSError as e:
                if e.errno != errno.EADDRNOTAVAIL:
                    raise
                name = errno_name(e.errno)
                out["connect_errors"][name] = out["connect_errors"].get(name, 0) + 1
                continue
            out["connections"] += 1
            try:
                one_request(c)
                if args.linger0:
                    c.set_linger0()
            finally:
                c.close()
    elif args.mode == "reset-wait":
        c = Conn(host, port, timeout)
        out["connections"] += 1
        try:
            for _ in range(args.requests):
                one_request(c)
            if args.pause > 0:
                time.sleep(args.pause)
            for _ in range(args.unanswered):
                out["requests"] += 1
                c.sock.sendall(build_request(host, args.path, False))
            c.sock.settimeout(args.wait)
            try:
                data = c.sock.recv(65536)
                out["end"] = "eof" if data == b"" else f"{len(data)} bytes"
            except ConnectionResetError:
                out["end"] = "ECONNRESET"
            except socket.timeout:
                out["end"] = "none"
        finally:
            c.close()
    elif args.mode == "unused":
        for _ in range(args.conns):
            c = Conn(host, port, timeout)
            out["connections"] += 1
            if args.hold > 0:
                time.sleep(args.hold)
            c.close()


def run_race(args, out):
    """See "race" in the module's help. out gets: state_at_send {state: n} (ESTABLISHED:
    the server's FIN had not arrived, CLOSE_WAIT: it had), outcome {response|reset|none:
    n}, reset_errno {name: n}, delay_seconds (actual, from the last first response to the
    first second request)."""
    host, port, timeout = args.host, args.port, args.timeout
    conns = []
    out.update(state_at_send={}, outcome={}, reset_errno={}, delay_seconds=None)
    try:
        for _ in range(args.conns):
            conns.append(Conn(host, port, timeout))
            out["connections"] += 1
        for _ in range(args.first):
            for c in conns:
                out["requests"] += 1
                headers, _ = c.request(host, args.path)
                out["responses"] += 1
                if headers.get("connection", "").lower() == "close":
                    raise ClientError("server refused keep-alive")
        last = time.monotonic()
        delay = args.delay
        if args.control:
            print(json.dumps({"ready": out["connections"]}), flush=True)
            r, _, _ = select.select([sys.stdin], [], [], args.control_timeout)
            if not r:
                raise ClientError(f"no 'go' on stdin within {args.control_timeout}s")
            words = sys.stdin.readline().split()
            if len(words) != 2 or words[0] != "go":
                raise ClientError(f"expected 'go SECONDS' on stdin, got {words}")
            delay = float(words[1])
        left = last + delay - time.monotonic()
        if left > 0:
            time.sleep(left)
        out["delay_seconds"] = round(time.monotonic() - last, 3)
        for c in conns:
            st = c.state()
            out["state_at_send"][st] = out["state_at_send"].get(st, 0) + 1
            out["requests"] += 1
            try:
                c.sock.sendall(build_request(host, args.path, False))
            except OSError as e:
                # Not expected (the RST comes after the send), but say what happened.
                out["send_errors"] = out.get("send_errors", 0) + 1
                out.setdefault("send_errno", []).append(errno_name(e.errno))
        deadline = time.monotonic() + args.wait  # one wait for all the connections
        for c in conns:
            what, err = watch_second_request(c, deadline)
            out["outcome"][what] = out["outcome"].get(what, 0) + 1
            if what == "response":
                out["responses"] += 1
            if err:
                out["reset_errno"][err] = out["reset_errno"].get(err, 0) + 1
    finally:
        for c in conns:
            c.close()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["keepalive", "close", "idle", "client-close", "unused",
                                    "race", "reuse", "churn", "reset-wait"])
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
    p.add_argument("--delay", type=float, default=1.5,
                   help="race: seconds from the last response to the second requests")
    p.add_argument("--first", type=int, default=1,
                   help="race: requests on each connection before the wait (round robin)")
    p.add_argument("--control", action="store_true",
                   help="race: print a ready line, then take 'go SECONDS' from stdin")
    p.add_argument("--control-timeout", type=float, default=30.0,
                   help="race --control: seconds to wait for 'go'")
    p.add_argument("--unanswered", type=int, default=0,
                   help="reset-wait: requests sent after the others, without waiting")
    p.add_argument("--pause", type=float, default=0.0,
                   help="reset-wait: seconds before the unanswered requests")
    p.add_argument("--linger0", action="store_true",
                   help="client-close, churn: close with SO_LINGER {1, 0} (a RST)")
    a = p.parse_args(argv)
    if a.requests is None:
        a.requests = {"keepalive": 10, "close": 20, "reuse": 10}.get(a.mode, 1)
    for name in ("conns", "requests", "unanswered", "first"):
        v = getattr(a, name)
        if not 0 <= v <= 100000:
            p.error(f"--{name} out of range: {v}")
    if not 0 < a.wait <= 600 or not 0 < a.timeout <= 600 or not 0 <= a.hold <= 600 \
            or not 0 <= a.delay <= 600 or not 0 < a.control_timeout <= 600 \
            or not 0 <= a.pause <= 600:
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
