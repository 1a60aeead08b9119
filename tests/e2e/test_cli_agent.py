# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The CLI against a fake agent on loopback that answers what a broken or hostile agent
might: terminal escape sequences in its strings, sums beyond 64 bits, more than the CLI
reads, a cut answer, no answer at all, bytes trickling in, something that is not JSON,
JSON cut short or of the wrong shape for every command, HTTP errors and redirects; and
with a proxy set in the environment, which the CLI must not use. Every failure is exit
status 1 with a message that says what was wrong, never a crash (also under ASan/UBSan:
run this file with KW_BUILD=build/asan after make OUT=build/asan SANITIZE=1).
"""

import http.server
import json
import socket
import threading
import time

import pytest

import kw
from kw import assert_eq

ESC = "\x1b"


def upstream(**over):
    u = {"direction": "outbound", "family": "ipv4", "peer": "10.0.0.2", "port": 80,
         "netns": "host", "netns_inode": 4026531840, "conn": 3, "req": 30, "reuse": 27,
         "closed_local_fin": 3, "closed_local_rst": 0, "closed_peer_fin": 0,
         "closed_peer_rst": 0, "unused_local": 0, "unused_peer": 0, "active": 0}
    u.update(over)
    return u


class FakeAgent:
    """An HTTP server on 127.0.0.1 answering every GET with answers[path] (bytes, or a
    callable writing to the handler)."""

    def __init__(self, answers):
        answers_ = answers

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                # "*": the answer to every path
                body = answers_.get(self.path.split("?")[0], answers_.get("*"))
                if callable(body):
                    return body(self)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def doc(*ups):
    return json.dumps({"version": 1, "uptime_seconds": 10, "upstreams": list(ups)}).encode()


def test_escape_sequences_not_printed():
    """Strings of the agent's answers (peers, namespaces, event reasons, the doctor's
    text, error messages) reach the terminal without their control characters."""
    evil = ESC + "]0;owned" + "\x07" + ESC + "[2J"
    events = {"version": 1, "next": 2, "dropped": 0, "events": [
        {"seq": 1, "time": "2026-11-23T13:05:01.123Z", "type": "race",
         "direction": "inbound", "local": "10.0.0.2:80", "peer": "10.0.0.1:5000",
         "netns": evil, "idle_seconds": 1.0, "gap_seconds": 0.001, "requests": 1,
         "reason": evil}]}
    doctor = {"version": 1, "upstreams": [
        {"direction": "inbound", "peer": "10.0.0.1", "port": 80, "netns": evil,
         "timeouts": {"local": None, "peer": None},
         "reuse": {"connections": 1, "requests": 1, "requests_per_connection": 1,
                   "closed": 1, "single_use": 1, "single_use_share": 1,
                   "single_use_closed_by": "local", "single_use_idle_seconds": 0},
         "findings": [{"id": "x", "severity": "warning", "failure": evil,
                       "summary": evil, "evidence": evil, "fix": evil}]}]}

    def error_answer(h):
        body = json.dumps({"error": evil}).encode()
        h.send_response(400)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    with FakeAgent({"/api/v1/upstreams": doc(upstream(netns=evil, peer=evil)),
                    "/api/v1/events": json.dumps(events).encode(),
                    "/api/v1/doctor": json.dumps(doctor).encode()}) as fake:
        for args in (["upstreams"], ["events"], ["doctor"], ["stat"]):
            p = kw.cli("--agent", fake.url, *args)
            assert ESC not in p.stdout + p.stderr and "\x07" not in p.stdout + p.stderr, \
                f"keepwatch {' '.join(args)} printed control characters:\n{p.stdout!r}"
    with FakeAgent({"/api/v1/upstreams": error_answer}) as fake:
        p = kw.cli("--agent", fake.url, "upstreams")
        assert_eq("exit status on an HTTP error", p.returncode, 1)
        assert ESC not in p.stderr and "?]0;owned" in p.stderr, f"stderr: {p.stderr!r}"


def test_stat_sums_saturate():
    big = 2 ** 63 - 1
    with FakeAgent({"/api/v1/upstreams": doc(upstream(conn=big), upstream(conn=big),
                                             upstream(conn=5))}) as fake:
        p = kw.cli("--agent", fake.url, "stat", "-1", "-f", "backend_conn")
        assert_eq(f"exit status\n{p.stderr}", p.returncode, 0)
        assert_eq("backend_conn", p.stdout.split()[1], str(2 ** 64 - 1))


def test_too_large_and_cut_answers():
    """An answer over the CLI's 64 MiB limit, and one cut short, each say so (not 'cannot
    reach the agent'), exit 1."""
    def cut(h):
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        h.wfile.write(b'{"version": 1, "upst')
        h.wfile.flush()

    big = b" " * (65 << 20)
    with FakeAgent({"/api/v1/upstreams": big}) as fake:
        p = kw.cli("--agent", fake.url, "upstreams", timeout=60)
        assert_eq("exit status, 65 MiB answer", p.returncode, 1)
        assert "sent more than 64 MiB" in p.stderr, p.stderr
        assert "make run" not in p.stderr, p.stderr
    with FakeAgent({"/api/v1/upstreams": cut}) as fake:
        p = kw.cli("--agent", fake.url, "upstreams")
        assert_eq("exit status, cut answer", p.returncode, 1)
        assert "cut its answer short" in p.stderr, p.stderr


@pytest.mark.parametrize("var", ["http_proxy", "HTTP_PROXY", "ALL_PROXY"])
def test_proxy_environment_ignored(var, monkeypatch):
    """A proxy in the environment (here one nobody answers) is not used to reach the
    agent: the CLI asks it directly."""
    monkeypatch.setenv(var, "http://127.0.0.1:9")
    with FakeAgent({"/api/v1/upstreams": doc(upstream())}) as fake:
        p = kw.cli("--agent", fake.url, "stat", "-1", "-f", "backend_conn")
        assert_eq(f"exit status with {var} set\n{p.stderr}", p.returncode, 0)
        assert_eq("backend_conn", p.stdout.split()[1], "3")


# --- a hostile or broken agent -----------------------------------------------------------

COMMANDS = ["stat", "upstreams", "events", "doctor"]
CONNECT_TIMEOUT = 3  # s, user/cli/keepwatch.c
TOTAL_TIMEOUT = 10  # s


def check_failure(p, what, *mentions):
    """Exit status 1 (no crash, no sanitizer report), and a message naming each mention."""
    out = p.stdout + p.stderr
    assert_eq(f"{what}: exit status\n{out}", p.returncode, 1)
    for bad in ("AddressSanitizer", "runtime error", "LeakSanitizer"):
        assert bad not in out, f"{what}: {bad}:\n{out}"
    for m in mentions:
        assert m in p.stderr, f"{what}: {m!r} not in stderr:\n{p.stderr}"


def answer(status, body, ctype="application/json", headers=()):
    def send(h):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
    return send


# The wrong shapes: valid JSON, but not the document each command reads.
WRONG_SHAPES = {
    "array": b"[1, 2, 3]",
    "empty-object": b"{}",
    "version-as-string": b'{"version": "1", "upstreams": [], "events": [], "next": 0}',
    "lists-as-objects": b'{"version": 1, "uptime_seconds": 1, "next": 0, "upstreams": {}, '
                        b'"events": {}}',
    "members-wrongly-typed": json.dumps({
        "version": 1, "uptime_seconds": "10", "next": "1", "dropped": [],
        "upstreams": [upstream(conn="3", peer=7, port="80", direction=1, netns=None)],
        "events": [{"seq": "1", "time": 5, "type": [], "direction": {}, "local": 1,
                    "peer": 2, "idle_seconds": "1"}]}).encode(),
}


@pytest.mark.parametrize("shape", list(WRONG_SHAPES))
@pytest.mark.parametrize("command", COMMANDS)
def test_wrong_shape(command, shape):
    with FakeAgent({"*": answer(200, WRONG_SHAPES[shape])}) as fake:
        p = kw.cli("--agent", fake.url, command)
        check_failure(p, f"{command} on {shape}", "unexpected answer from the agent",
                      f"'keepwatch {command}'")


BAD_BODIES = {
    "html": (b"<html><body>It works!</body></html>", "bad JSON from the agent"),
    # JSON, but no object or array: jansson's json_loadb refuses them as they come
    "string": (b'"upstreams"', "bad JSON from the agent"),
    "null": (b"null", "bad JSON from the agent"),
    "empty": (b"", "bad JSON from the agent"),
    "truncated": (b'{"version": 1, "uptime_seconds": 10, "upstreams": [{"direction": "out',
                  "bad JSON from the agent"),
    "nul-bytes": (b'{"version": 1\x00, "upstreams": []}', "bad JSON from the agent"),
    "not-utf8": (b'{"version": 1, "upstreams": ["\xff"]}', "bad JSON from the agent"),
}


@pytest.mark.parametrize("body", list(BAD_BODIES))
@pytest.mark.parametrize("command", COMMANDS)
def test_not_json(command, body):
    data, mention = BAD_BODIES[body]
    with FakeAgent({"*": answer(200, data, ctype="text/html")}) as fake:
        p = kw.cli("--agent", fake.url, command)
        check_failure(p, f"{command} on a {body} body", mention)
        p = kw.cli("--agent", fake.url, command, "-j")
        check_failure(p, f"{command} -j on a {body} body")
        assert_eq(f"{command} -j: the error as JSON on stdout", list(json.loads(p.stdout)),
                  ["error"])


@pytest.mark.parametrize("status", [400, 404, 500, 503])
@pytest.mark.parametrize("command", COMMANDS)
def test_http_errors(command, status):
    """4xx and 5xx, with the agent's JSON error body or an HTML page: the status, the
    path and the agent's own error text when it gave one."""
    err = json.dumps({"error": "since: not a sequence number"}).encode()
    with FakeAgent({"*": answer(status, err)}) as fake:
        p = kw.cli("--agent", fake.url, command)
        check_failure(p, f"{command} on HTTP {status}", f"answered HTTP {status} for /api/v1/",
                      ": since: not a sequence number")
    with FakeAgent({"*": answer(status, b"<h1>oops</h1>", ctype="text/html")}) as fake:
        p = kw.cli("--agent", fake.url, command)
        check_failure(p, f"{command} on HTTP {status} (HTML)", f"answered HTTP {status}")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_not_followed(status):
    """A redirect is not followed, to another host or to the same one: the agent never
    redirects, and following could take the request anywhere. The message names the
    target."""
    hits = []

    def target(h):
        hits.append(h.path)
        answer(200, doc(upstream()))(h)

    with FakeAgent({"/elsewhere/api/v1/upstreams": target}) as real:
        where = real.url + "/elsewhere/api/v1/upstreams"
        with FakeAgent({"*": answer(status, b"", headers=[("Location", where)])}) as fake:
            p = kw.cli("--agent", fake.url, "upstreams")
            check_failure(p, f"HTTP {status}", f"answered HTTP {status} for /api/v1/upstreams",
                          f"a redirect to {where}", "does not follow")
    assert_eq("requests that reached the redirect's target", hits, [])


class RawServer:
    """A listening socket on 127.0.0.1 whose connections are handed to serve(conn), each in
    a thread: for answers no HTTP server would give. Closed at exit."""

    def __init__(self, serve, backlog=16, accept=True):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.serve, self.accept = serve, accept
        self.conns, self.stop = [], threading.Event()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            self.serve(conn, self.stop)
        except OSError:
            pass

    def __enter__(self):
        if self.accept:
            threading.Thread(target=self._loop, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


def read_request(conn):
    buf = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in buf:
        data = conn.recv(4096)
        if not data:
            break
        buf += data


def timed_cli(*args):
    t0 = time.monotonic()
    p = kw.cli(*args, timeout=30)
    return p, time.monotonic() - t0


def test_silent_agent_times_out():
    """An agent that accepts the connection and the request, then never answers: the
    total time-out (10 s) ends it."""
    def silent(conn, stop):
        read_request(conn)
        stop.wait(30)

    with RawServer(silent) as fake:
        p, took = timed_cli("--agent", fake.url, "stat")
    check_failure(p, "silent agent", f"did not answer within {TOTAL_TIMEOUT} s")
    assert TOTAL_TIMEOUT <= took < TOTAL_TIMEOUT + 3, f"took {took:.1f} s"


def test_trickling_agent_times_out():
    """An agent sending its answer one byte a second, forever: the total time-out still
    ends it (an idle time-out would not)."""
    def trickle(conn, stop):
        read_request(conn)
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{"
        conn.sendall(head)
        while not stop.wait(1):
            conn.sendall(b" ")

    with RawServer(trickle) as fake:
        p, took = timed_cli("--agent", fake.url, "upstreams")
    check_failure(p, "trickling agent", f"did not answer within {TOTAL_TIMEOUT} s")
    assert TOTAL_TIMEOUT <= took < TOTAL_TIMEOUT + 3, f"took {took:.1f} s"


def test_connect_times_out():
    """A listening socket whose accept queue is full (nobody accepts; the kernel drops
    further SYNs): the connect time-out (3 s) ends it, and says it is the connect."""
    with RawServer(None, backlog=0, accept=False) as fake:
        host, port = "127.0.0.1", int(fake.url.rsplit(":", 1)[1])
        fillers = []
        for _ in range(2):  # backlog 0 holds one; the second makes sure it is full
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, port))
            fillers.append(s)
        time.sleep(0.2)
        try:
            p, took = timed_cli("--agent", fake.url, "stat")
        finally:
            for s in fillers:
                s.close()
    check_failure(p, "full accept queue", f"cannot connect to the agent at {fake.url} "
                  f"within {CONNECT_TIMEOUT} s")
    assert CONNECT_TIMEOUT <= took < CONNECT_TIMEOUT + 3, f"took {took:.1f} s"


RAW_ANSWERS = {
    # name: (bytes sent after the request, then the connection is closed; a mention)
    "nothing": (b"", "cut its answer short"),
    "not-http": (b"SSH-2.0-OpenSSH_9.2\r\n", "request to the agent at"),
    "bad-status-line": (b"HTTP/1.1 abc\r\n\r\n", "request to the agent at"),
    "body-shorter-than-length": (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}",
                                 "cut its answer short"),
    "bad-chunks": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n",
                   "cannot read the answer of the agent at"),
    "huge-header": (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n{}",
                    "request to the agent at"),
}


@pytest.mark.parametrize("name", list(RAW_ANSWERS))
def test_broken_http(name):
    data, mention = RAW_ANSWERS[name]

    def send(conn, stop):
        read_request(conn)
        try:
            conn.sendall(data)
        finally:
            conn.shutdown(socket.SHUT_RDWR)

    with RawServer(send) as fake:
        p = kw.cli("--agent", fake.url, "upstreams")
    check_failure(p, name, mention)
    assert "make run" not in p.stderr, p.stderr


def test_long_event_line():
    """An event whose reason is 2,000 characters: its line is cut with '~', and the
    command succeeds (it failed with 'No space left on device')."""
    ev = {"seq": 1, "time": "2026-11-23T13:05:01.123Z", "type": "race",
          "direction": "inbound", "local": "10.0.0.2:80", "peer": "10.0.0.1:5000",
          "netns": "host", "idle_seconds": 1.0, "gap_seconds": 0.001, "requests": 1,
          "reason": "r" * 2000}
    events = {"version": 1, "next": 1, "dropped": 0, "events": [ev]}
    with FakeAgent({"/api/v1/events": json.dumps(events).encode()}) as fake:
        p = kw.cli("--agent", fake.url, "events")
    assert_eq(f"exit status\n{p.stderr}", p.returncode, 0)
    line = p.stdout.rstrip("\n")
    assert_eq("the line's length (the CLI's 511 bytes)", len(line), 511)
    assert line.endswith("r~") and "race idle" in line, line


def test_agent_credentials_go_to_the_agent_only(monkeypatch):
    """KEEPWATCH_USER is the agent's basic authentication: sent to the agent, never to the
    Prometheus server doctor -P asks (another server, with its own access control)."""
    seen = {}

    def record(name, body):
        def handler(h):
            seen.setdefault(name, []).append(h.headers.get("Authorization"))
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        return handler

    empty = json.dumps({"status": "success",
                        "data": {"resultType": "vector", "result": []}}).encode()
    monkeypatch.setenv("KEEPWATCH_USER", "alice:secret")
    with FakeAgent({"*": record("agent", doc(upstream()))}) as agent, \
            FakeAgent({"*": record("prometheus", empty)}) as prom:
        kw.cli("--agent", agent.url, "upstreams")
        kw.cli("doctor", "--prometheus", prom.url)
    assert_eq("Authorization the agent got", seen.get("agent"), ["Basic YWxpY2U6c2VjcmV0"])
    assert_eq("Authorization Prometheus got", seen.get("prometheus"), [None])
