# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""keepwatch top: the full screen under a pseudo-terminal (read back through pyte, a
terminal emulator, with TERM=vt100), its keys, SIGTERM and the terminal restored after;
the plain blocks when stdout is a pipe; against a fake agent whose answers make every
figure exact, and against the real agent with known traffic from real nginx.

Rates are increases over the agent's uptime between two samples, so with the fake
agent's uptime stepping 0.5 s per answer they are exact; with the real agent the
window is printed in each block's title and the rates follow from it.
"""

import json
import os
import re
import select
import signal
import struct
import subprocess
import termios
import fcntl
import threading
import time

import pyte
import pytest

import kw
from kw import assert_eq
from test_cli_agent import FakeAgent

COLS, ROWS = 80, 24


class StepAgent(FakeAgent):
    """A fake agent whose n-th answer (from 0) is at uptime 10 + 0.5 n with counters
    growing by the same step every answer: 10.0.0.2 outbound 2 connections, 20 requests
    (18 reused), 1 race and 2 resets per answer; 10.0.0.1 inbound 1, 5 (4 reused)."""

    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

        def answer(h):
            with self.lock:
                n = self.n
                self.n += 1
            body = json.dumps({"version": 1, "uptime_seconds": 10 + 0.5 * n, "upstreams": [
                {"direction": "outbound", "peer": "10.0.0.2", "port": 80, "netns": "kw-a",
                 "netns_inode": 1, "conn": 2 * n, "req": 20 * n, "reuse": 18 * n,
                 "race_client": n, "rst_rcvd_established": n, "rst_sent_no_socket": n,
                 "time_wait": 5, "active": 2},
                {"direction": "inbound", "peer": "10.0.0.1", "port": 80, "netns": "kw-b",
                 "netns_inode": 2, "conn": n, "req": 5 * n, "reuse": 4 * n, "active": 1},
            ]}).encode()
            h.send_response(200)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)

        super().__init__({"/api/v1/upstreams": answer})


# Every sample after the first, 80 columns (the screen's last column stays empty).
OUT_RATES = "out 10.0.0.2    80    4.0    40.0   90.0    2.0    4.0      5      2 kw-a"
IN_RATES = "in  10.0.0.1    80    2.0    10.0   80.0      0      0      0      1 kw-b"
HEADER = "DIR PEER      PORT CONN/s   REQ/s REUSE% RACE/s  RST/s     TW ACTIVE NETNS"


class PtyTop:
    """keepwatch top on a pseudo-terminal of COLS x ROWS, its screen in pyte."""

    def __init__(self, *args, term="vt100"):
        kw.require_binary(kw.KEEPWATCH)
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.before = termios.tcgetattr(self.slave)
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.args = [str(kw.KEEPWATCH), *args]
        env = dict(os.environ, TERM=term)
        self.proc = subprocess.Popen(self.args, stdin=self.slave, stdout=self.slave,
                                     stderr=self.slave, env=env)

    def text(self):
        return "\n".join(line.rstrip() for line in self.screen.display)

    def lines(self):
        return [line.rstrip() for line in self.screen.display]

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.master], [], [], min(left, 0.05))
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    return
                self.stream.feed(data)

    def wait_for(self, what, pred, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.05)
            if pred(self.lines()):
                return
        pytest.fail(f"keepwatch top: {what}: not seen after {timeout}s; the screen:\n{self.text()}",
                    pytrace=False)

    def key(self, keys):
        os.write(self.master, keys)

    def finish(self, timeout=5):
        """Wait for the exit; the exit status."""
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"keepwatch top did not exit within {timeout}s; the screen:\n"
                        f"{self.text()}", pytrace=False)
        self.pump(0.2)
        return status

    def assert_restored(self):
        after = termios.tcgetattr(self.slave)
        for i, name in enumerate(["iflag", "oflag", "cflag", "lflag"]):
            assert_eq(f"terminal {name} after keepwatch top", after[i], self.before[i])
        assert after[3] & termios.ICANON and after[3] & termios.ECHO, after[3]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def step_agent():
    with StepAgent() as fake:
        yield fake


def line_of(lines, start):
    return next((ln for ln in lines if ln.startswith(start)), None)


def test_screen_keys_and_quit(step_agent):
    """Sorted by REQ/s, then by REUSE% ('>'), reversed ('i'), totals ('t'), filtered to
    the inbound row ('/in' Enter); 'q' exits 0 with the terminal as it was."""
    t = PtyTop("--agent", step_agent.url, "top", "-i", "0.3")
    try:
        t.wait_for("rates", lambda ls: OUT_RATES in ls)
        ls = t.lines()
        assert re.fullmatch(r"up \d+s  window 0\.500 s  2/2 upstreams  by REQ/s", ls[0]), ls[0]
        assert_eq("header", ls[1], HEADER)
        assert_eq("rows by REQ/s", ls[2:4], [OUT_RATES, IN_RATES])
        assert ls[-1].startswith("q quit"), ls[-1]
        for ln in ls:
            assert len(ln) < COLS, f"line of {len(ln)} columns: {ln!r}"

        t.key(b">")
        t.wait_for("sort by REUSE%", lambda ls: "by REUSE%" in ls[0])
        t.key(b"i")
        t.wait_for("reversed order", lambda ls: " reversed" in ls[0] and ls[2] == IN_RATES)
        assert_eq("rows by REUSE% reversed", t.lines()[3], OUT_RATES)

        t.key(b"t")
        t.wait_for("totals", lambda ls: "by REUSE% totals" in ls[0] and ls[1].startswith(
            "DIR PEER      PORT   CONN     REQ REUSE%   RACE    RST"))
        t.key(b"t")
        t.wait_for("rates again", lambda ls: ls[1] == HEADER)

        t.key(b"/")
        t.wait_for("filter prompt", lambda ls: ls[-1].startswith("filter"))
        t.key(b"in\r")
        t.wait_for("the filter applied",
                   lambda ls: "1/2 upstreams" in ls[0] and "filter in" in ls[0])
        t.wait_for("one row", lambda ls: ls[2] == IN_RATES and ls[3] == "")

        t.key(b"q")
        assert_eq("exit status after q", t.finish(), 0)
        t.assert_restored()
    finally:
        t.close()


def test_screen_sigterm_and_agent_gone():
    """With no agent the screen says why on its last line and keeps trying; SIGTERM
    exits 0 with the terminal restored."""
    t = PtyTop("--agent", "http://127.0.0.1:1", "top", "-i", "0.2")
    try:
        t.wait_for("error line", lambda ls: ls[-1].startswith(
            "error (retrying): cannot reach the agent at http://127.0.0.1:1"))
        assert_eq("title", t.lines()[0], "no answer from the agent yet")
        t.pump(0.5)
        assert t.proc.poll() is None, "keepwatch top exited while the agent was away"
        t.proc.send_signal(signal.SIGTERM)
        assert_eq("exit status after SIGTERM", t.finish(), 0)
        t.assert_restored()
    finally:
        t.close()


def test_screen_iterations_and_xterm(step_agent):
    """-n bounds the screen too; TERM=xterm works as well."""
    t = PtyTop("--agent", step_agent.url, "top", "-i", "0.2", "-n", "2", "-s", "peer",
               term="xterm")
    try:
        assert_eq("exit status after -n 2", t.finish(timeout=10), 0)
        t.assert_restored()
        assert_eq("agent requests: the first sample and 2 more", step_agent.n, 3)
    finally:
        t.close()


def test_plain_blocks(step_agent):
    """stdout a pipe: one block per interval, after a first sample, exactly -n blocks."""
    p = kw.cli("--agent", step_agent.url, "top", "-n", "2", "-i", "0.2")
    assert_eq(f"exit status\n{p.stderr}", p.returncode, 0)
    block = ["{title}", HEADER, OUT_RATES, IN_RATES, ""]
    want = []
    for up in ("10s", "11s"):
        want += [b.format(title=f"up {up}  window 0.500 s  2/2 upstreams  by REQ/s")
                 for b in block]
    assert_eq("plain output", p.stdout.split("\n"), want + [""])

    p = kw.cli("--agent", step_agent.url, "top", "-n", "1", "-i", "0.2", "-t", "-s", "conn",
               "-f", "10.0.0.1:80")
    assert_eq(f"exit status\n{p.stderr}", p.returncode, 0)
    # answers 3 and 4: totals of the 5th (n = 4) answer
    assert_eq("plain totals, filtered", p.stdout.split("\n"), [
        "up 12s  window 0.500 s  1/2 upstreams  by CONN totals  filter 10.0.0.1:80",
        "DIR PEER      PORT   CONN     REQ REUSE%   RACE    RST     TW ACTIVE NETNS",
        "in  10.0.0.1    80      4      20   80.0      0      0      0      1 kw-b",
        "", ""])


def test_unknown_terminal():
    """A TERM terminfo does not know: said, exit 1, the terminal untouched."""
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        p = subprocess.run([str(kw.KEEPWATCH), "--agent", "http://127.0.0.1:1", "top"],
                           stdin=slave, stdout=slave, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, TERM="no-such-terminal"), timeout=10)
        assert_eq("exit status", p.returncode, 1)
        assert "TERM='no-such-terminal' is not in the terminfo database; -p" in p.stderr, \
            p.stderr
        assert_eq("terminal after", termios.tcgetattr(slave), before)
    finally:
        os.close(master)
        os.close(slave)


def test_plain_errors():
    p = kw.cli("--agent", "http://127.0.0.1:1", "top", "-n", "1")
    assert_eq("exit status with no agent", p.returncode, 1)
    assert "cannot reach the agent at http://127.0.0.1:1" in p.stderr, p.stderr
    for args, mention in ((["-i", "0"], "-i wants seconds"), (["-s", "bogus"], "-s wants"),
                          (["-n", "0"], "-n wants"), (["-f", ""], "empty glob"),
                          (["-j"], "no JSON output")):
        p = kw.cli("top", *args)
        assert_eq(f"exit status of top {' '.join(args)}", p.returncode, 2)
        assert mention in p.stdout + p.stderr, f"{args}: {p.stdout}{p.stderr}"


# --- the real agent ------------------------------------------------------------------

def wait_time_wait(agent, direction, expected, timeout=5):
    """The agent's census of TIME_WAIT (refreshed at most every second) settled."""
    end = time.monotonic() + timeout
    while True:
        tw = sum(u.get("time_wait", 0) for u in agent.upstreams()["upstreams"]
                 if u["direction"] == direction)
        if tw == expected or time.monotonic() > end:
            assert_eq(f"{direction} time_wait", tw, expected)
            return
        time.sleep(0.2)


def fields(line):
    return line.split()[:10] if line else None


def test_real_agent_screen_and_totals(netns, nginx, agent):
    """3 connections x 10 requests from the client to nginx: both ends' rows show 3
    connections, 30 requests, 90.0 % reused, no race or reset, the client's 3 TIME_WAIT
    sockets, none open; on the screen and in the plain totals."""
    out = netns.run_client("keepalive", "--conns", 3, "--requests", 10)
    assert_eq("client requests", out["requests"], 30)
    wait_time_wait(agent, "outbound", 3)
    srv, cli = netns.server_addr(), netns.client_addr()
    want_out = ["out", srv, "80", "3", "30", "90.0", "0", "0", "3", "0"]
    want_in = ["in", cli, "80", "3", "30", "90.0", "0", "0", "0", "0"]

    p = kw.cli("--agent", agent.url, "top", "-t", "-n", "1", "-i", "0.2", "-s", "peer")
    assert_eq(f"exit status\n{p.stderr}", p.returncode, 0)
    # this test's two upstreams, sorted by peer (the agent may show its "other" row too)
    rows = [fields(ln) for ln in p.stdout.splitlines()[2:]]
    rows = [f for f in rows if f and f[1] in (srv, cli)]
    assert_eq(f"plain rows (totals)\n{p.stdout}", rows, [want_in, want_out])

    t = PtyTop("--agent", agent.url, "top", "-t", "-i", "0.3")
    try:
        out_row, in_row = f"out {srv} ", f"in  {cli} "
        t.wait_for("both upstreams", lambda ls: line_of(ls, out_row) and line_of(ls, in_row))
        assert_eq("screen, outbound row", fields(line_of(t.lines(), out_row)), want_out)
        assert_eq("screen, inbound row", fields(line_of(t.lines(), in_row)), want_in)
        t.key(b"/")
        t.key(f"{srv}:80\r".encode())
        t.wait_for("the filter applied", lambda ls: re.search(r" 1/\d+ upstreams ", ls[0]))
        assert line_of(t.lines(), in_row) is None, t.text()
        assert_eq("screen, filtered", fields(line_of(t.lines(), out_row)), want_out)
        t.key(b"<<")
        t.wait_for("sort by PEER", lambda ls: "by PEER" in ls[0])
        t.key(b"q")
        assert_eq("exit status after q", t.finish(), 0)
        t.assert_restored()
    finally:
        t.close()


def rate_texts(count, window):
    """How top prints count / window when the window is printed as `window` (3 decimals):
    every text the true window, within half a millisecond of it, can give."""
    texts = set()
    for w in (window - 0.0005, window, window + 0.0005):
        v = count / w
        texts.add("0" if count == 0 else f"{v:.1f}" if v < 99.95 else f"{v:.0f}")
    return texts


def test_real_agent_rates(netns, nginx, agent):
    """Plain blocks every 4 s: nothing happens before the first (all rates 0); between
    the first and the second, 2 connections x 5 requests, so the second shows 2 / W
    connections and 10 / W requests per second (W its window), 80.0 % reused."""
    proc = subprocess.Popen([str(kw.KEEPWATCH), "--agent", agent.url, "top", "-n", "2",
                             "-i", "4", "-s", "peer"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        blocks, cur = [], []
        for line in proc.stdout:
            if line == "\n":
                blocks.append(cur)
                cur = []
                if len(blocks) == 1:
                    out = netns.run_client("keepalive", "--conns", 2, "--requests", 5)
                    assert_eq("client requests", out["requests"], 10)
                continue
            cur.append(line.rstrip("\n"))
        assert_eq(f"exit status\n{proc.stderr.read()}", proc.wait(timeout=10), 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_eq(f"blocks\n{blocks}", len(blocks), 2)
    first, second = blocks
    # no traffic yet: no upstream, or (had nginx's start-up touched one) none moving
    for ln in first[2:]:
        assert_eq(f"first block CONN/s, REQ/s: {ln}", ln.split()[3:5], ["0", "0"])
    window = float(second[0].split("window ")[1].split(" s")[0])
    ours = {("in", netns.client_addr()), ("out", netns.server_addr())}
    rows = {(ln.split()[0], ln.split()[1]): ln.split() for ln in second[2:]}
    assert_eq(f"second block upstreams\n{second}", sorted(ours & set(rows)), sorted(ours))
    for d, peer in sorted(ours):
        r = rows[(d, peer)]
        assert r[3] in rate_texts(2, window), f"{d} CONN/s {r[3]}, expected one of " \
            f"{rate_texts(2, window)} (2 / {window})"
        assert r[4] in rate_texts(10, window), f"{d} REQ/s {r[4]}, expected one of " \
            f"{rate_texts(10, window)} (10 / {window})"
        assert_eq(f"{d} REUSE%", r[5], "80.0")
        assert_eq(f"{d} RACE/s and RST/s", r[6:8], ["0", "0"])
