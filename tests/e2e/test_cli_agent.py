# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The CLI against a fake agent on loopback that answers what a broken or hostile agent
might: terminal escape sequences in its strings, sums beyond 64 bits, more than the CLI
reads, a cut answer; and with a proxy set in the environment, which the CLI must not use.
"""

import http.server
import json
import threading

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
                body = answers_.get(self.path.split("?")[0])
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
