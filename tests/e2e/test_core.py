# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Core end-to-end tests: connection reuse, closes, idle time, unused connections, the
exposition, the CLI and bad input, against real nginx in a namespace pair.

Every count is exact. Each test has its own namespaces, so only its own traffic counts;
series are selected by direction, peer, port and netns name:
  inbound  (nginx's side):  direction="inbound",  peer=<client addr>, port="80", netns=<server>
  outbound (client's side): direction="outbound", peer=<server addr>, port="80", netns=<client>
Before checking the agent, each test checks the kernel's and nginx's own view (nstat, ss,
the access log), so that a failure says whether the test bed or keepwatch is wrong.
"""

import json
import re
import socket
import time

import pytest

import kw
from kw import assert_eq, sides

FAMILIES = pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])

P = "keepwatch_"
OPENED = P + "connections_opened_total"
REQS = P + "requests_total"
REUSED = P + "requests_reused_total"
CLOSED = P + "connections_closed_total"
UNUSED = P + "connections_unused_closed_total"
ACTIVE = P + "connections_active"
PER_CONN = P + "requests_per_connection"
IDLE = P + "idle_before_close_seconds"



def side(labels, *, opened, reqs, reused, unused, closed, closed_by, how="fin",
         per_conn=()):
    """Expectations for one upstream whose connections are all closed by now.

    closed: total closes; all of them by `closed_by` with `how` (so the other three
    closed_by/how series of the upstream sum to 0), the unused ones too. per_conn: (le,
    cumulative count) pairs of requests_per_connection; its _count is `opened` and its
    _sum is `reqs`.
    """
    exp = [
        (OPENED, labels, opened),
        (REQS, labels, reqs),
        (REUSED, labels, reused),
        (UNUSED, labels, unused),
        (UNUSED, dict(labels, closed_by=closed_by), unused),
        (CLOSED, labels, closed),
        (CLOSED, dict(labels, closed_by=closed_by, how=how), closed),
        (ACTIVE, labels, 0),
        (PER_CONN + "_count", kw.per_port(labels), opened),
        (PER_CONN + "_sum", kw.per_port(labels), reqs),
    ]
    exp += [(PER_CONN + "_bucket", dict(kw.per_port(labels), le=le), n) for le, n in per_conn]
    return exp



def assert_client(out, connections, requests, server_closed):
    assert_eq("client connections", out["connections"], connections)
    assert_eq("client requests sent", out["requests"], requests)
    assert_eq("client complete responses", out["responses"], requests)
    assert_eq("client: connections the server closed first", out["server_closed"],
              server_closed)


def wait_time_wait(net, ns, expected, timeout=3):
    """Wait until `ns` holds `expected` TIME-WAIT sockets (the side that closed first)."""
    deadline = time.monotonic() + timeout
    while True:
        states = net.tcp_states(ns)
        if states.get("TIME-WAIT", 0) == expected or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    assert_eq(f"TIME-WAIT sockets in {ns} (ss -tan: {states})", states.get("TIME-WAIT", 0),
              expected)


def assert_ground_truth(net, nginx, opens, served_conns, requests, client_tw, server_tw):
    """The kernel's and nginx's view: `opens` connections (client nstat TcpActiveOpens),
    `served_conns` of them carried `requests` requests (nginx's access log), no reset
    either way, and TIME-WAIT only on the side that closed first.

    Not the server's TcpPassiveOpens: it can count one connection twice (seen 21 for 20
    IPv6 connections in a fresh namespace while the host was busy: the client's RTO fired
    spuriously, TCPSpuriousRtxHostQueues=1, and two segments of one handshake created two
    children, one of them dropped at once), while ss and nginx saw 20."""
    c, s = net.nstat(net.client_ns), net.nstat(net.server_ns)
    assert_eq("client nstat TcpActiveOpens", c["TcpActiveOpens"], opens)
    served = nginx.served()
    assert_eq("connections with a request in nginx's access log", served["connections"],
              served_conns)
    assert_eq("requests in nginx's access log", served["requests"], requests)
    for name, counters in (("client", c), ("server", s)):
        for k in ("TcpOutRsts", "TcpEstabResets", "TcpAttemptFails", "TcpExtTCPAbortOnData",
                  "TcpExtTCPAbortOnClose"):
            assert_eq(f"{name} nstat {k}", counters[k], 0)
    wait_time_wait(net, net.client_ns, client_tw)
    wait_time_wait(net, net.server_ns, server_tw)


# --- a, d: keep-alive reuse ---------------------------------------------------------------

@FAMILIES
def test_keepalive_reuse(netns, nginx, agent, v6):
    """3 connections x 10 sequential requests; the client closes each after its last
    response (FIN), so nginx's side sees the peer close first."""
    out = netns.run_client("keepalive", "--conns", 3, "--requests", 10, v6=v6)
    assert_client(out, connections=3, requests=30, server_closed=0)
    assert_ground_truth(netns, nginx, opens=3, served_conns=3, requests=30, client_tw=3,
                        server_tw=0)

    inbound, outbound = sides(netns, v6)
    per_conn = [("5", 0), ("10", 3), ("+Inf", 3)]
    agent.wait_all(
        side(inbound, opened=3, reqs=30, reused=27, unused=0, closed=3, closed_by="peer",
             per_conn=per_conn) +
        side(outbound, opened=3, reqs=30, reused=27, unused=0, closed=3, closed_by="local",
             per_conn=per_conn))


@pytest.mark.nginx(keepalive_timeout="30s")
def test_requests_of_open_connections(netns, nginx, agent):
    """3 requests on each of 4 connections that stay open: the kernel keeps an open
    connection's requests in its own state until it closes, the agent adds them at
    every scrape, so they show while the connections are open (12 requests, 8 reused, 4
    active), and neither twice nor lost once a fourth request each and the closes have
    moved them into the upstream's counters (16, 12, 0 active). The race client reads
    its last responses without consuming them, so its close is a reset."""
    inbound, outbound = sides(netns, False)
    client = kw.ControlledClient(netns, netns.client_ns, netns.server_v4, "--conns", 4,
                                 "--first", 3)
    client.wait_ready()
    agent.wait_all([(m, labels, v) for labels in (inbound, outbound)
                    for m, v in ((OPENED, 4), (REQS, 12), (REUSED, 8), (ACTIVE, 4),
                                 (CLOSED, 0))])
    client.go(0)
    out = client.result()
    assert_eq("client responses", out["responses"], 16)
    per_conn = [("3", 0), ("4", 4), ("+Inf", 4)]
    agent.wait_all(
        side(inbound, opened=4, reqs=16, reused=12, unused=0, closed=4, closed_by="peer",
             how="rst", per_conn=per_conn) +
        side(outbound, opened=4, reqs=16, reused=12, unused=0, closed=4, closed_by="local",
             how="rst", per_conn=per_conn))


CONN_TABLE = 1024
HELD = 600


@pytest.mark.nginx(keepalive_timeout="30s")
@pytest.mark.agent_args("--conn-table", str(CONN_TABLE))
def test_conn_table_full_goes_to_socket_storage(netns, nginx, agent):
    """--conn-table 1024 and 600 connections open at once: 1,200 sockets for 1,024
    entries, so at least 176 find their entry taken and are followed in socket storage
    instead (keepwatch_bpf_errors_total{reason="conn_table_full"}); 3 requests on each,
    and every count stays exact."""
    out = netns.run_client("keepalive", "--conns", HELD, "--requests", 3, timeout=120)
    assert_client(out, connections=HELD, requests=3 * HELD, server_closed=0)

    inbound, outbound = sides(netns, False)
    per_conn = [("2", 0), ("3", HELD), ("+Inf", HELD)]
    samples = agent.wait_all(
        side(inbound, opened=HELD, reqs=3 * HELD, reused=2 * HELD, unused=0, closed=HELD,
             closed_by="peer", per_conn=per_conn) +
        side(outbound, opened=HELD, reqs=3 * HELD, reused=2 * HELD, unused=0,
             closed=HELD, closed_by="local", per_conn=per_conn), timeout=10)
    taken = sum(v for _, v in kw.select(samples, P + "bpf_errors_total",
                                        reason="conn_table_full"))
    assert taken >= 2 * HELD - CONN_TABLE, (
        f"{2 * HELD} sockets open at once in a table of {CONN_TABLE}: at least "
        f"{2 * HELD - CONN_TABLE} must be in socket storage, conn_table_full says {taken}")


# --- b: Connection: close -------------------------------------------------------------

@FAMILIES
def test_connection_close(netns, nginx, agent, v6):
    """20 requests, each on its own connection with "Connection: close".

    What nginx really does (measured with the client's recv() and the kernel's counters):
    it answers with "Connection: close" and closes its socket right after the response
    with a FIN (not a RST): the client reads the body, then recv() returns b"" (the FIN),
    then the client closes. nstat shows TcpOutRsts 0 and TcpEstabResets 0 on both sides,
    and the 20 TIME-WAIT sockets are all on nginx's side (the active closer), none on the
    client's. So inbound: closed_by="local",how="fin"; outbound: closed_by="peer",how="fin".
    """
    out = netns.run_client("close", "--requests", 20, v6=v6)
    assert_client(out, connections=20, requests=20, server_closed=20)
    assert_ground_truth(netns, nginx, opens=20, served_conns=20, requests=20, client_tw=0,
                        server_tw=20)

    inbound, outbound = sides(netns, v6)
    per_conn = [("0", 0), ("1", 20), ("+Inf", 20)]
    agent.wait_all(
        side(inbound, opened=20, reqs=20, reused=0, unused=0, closed=20, closed_by="local",
             per_conn=per_conn) +
        side(outbound, opened=20, reqs=20, reused=0, unused=0, closed=20, closed_by="peer",
             per_conn=per_conn))


# --- c: idle close by the server, close by the client ---------------------------------------

@FAMILIES
def test_idle_close_by_server(netns, nginx, agent, v6):
    """One request, then idle until nginx's keepalive_timeout (1s) closes the connection.

    The idle time is measured from the last data either way to the close, so both sides
    see about 1 s: the slot (0.9, 1.1] of idle_before_close_seconds."""
    out = netns.run_client("idle", "--requests", 1, "--wait", 2.5, v6=v6)
    assert_client(out, connections=1, requests=1, server_closed=1)
    idle = out["idle_seconds"][0]
    assert 0.9 < idle <= 1.1, f"client-side idle before nginx's close: actual {idle:.3f}s, " \
        "expected in (0.9, 1.1] (nginx keepalive_timeout 1s)"
    assert_ground_truth(netns, nginx, opens=1, served_conns=1, requests=1, client_tw=0,
                        server_tw=1)

    inbound, outbound = sides(netns, v6)
    per_conn = [("0", 0), ("1", 1)]
    exp = side(inbound, opened=1, reqs=1, reused=0, unused=0, closed=1, closed_by="local",
               per_conn=per_conn)
    exp += side(outbound, opened=1, reqs=1, reused=0, unused=0, closed=1, closed_by="peer",
                per_conn=per_conn)
    for labels, closed_by in ((inbound, "local"), (outbound, "peer")):
        lb = dict(kw.per_port(labels), closed_by=closed_by)
        exp += [(IDLE + "_bucket", dict(lb, le="0.9"), 0),
                (IDLE + "_bucket", dict(lb, le="1.1"), 1),
                (IDLE + "_count", lb, 1)]
    agent.wait_all(exp)


@FAMILIES
def test_close_by_client(netns, nginx, agent, v6):
    """One request; the client closes first right after the response."""
    out = netns.run_client("client-close", "--requests", 1, v6=v6)
    assert_client(out, connections=1, requests=1, server_closed=0)
    assert_ground_truth(netns, nginx, opens=1, served_conns=1, requests=1, client_tw=1,
                        server_tw=0)

    inbound, outbound = sides(netns, v6)
    per_conn = [("0", 0), ("1", 1)]
    agent.wait_all(
        side(inbound, opened=1, reqs=1, reused=0, unused=0, closed=1, closed_by="peer",
             per_conn=per_conn) +
        side(outbound, opened=1, reqs=1, reused=0, unused=0, closed=1, closed_by="local",
             per_conn=per_conn))


# --- e: a connection that never carried a request ---------------------------------------

@FAMILIES
def test_unused_connection(netns, nginx, agent, v6):
    """Connect and close without sending: the client closes first (FIN); nginx reads EOF
    and closes too. The connection counts as unused on both sides, with 0 requests."""
    out = netns.run_client("unused", "--conns", 1, v6=v6)
    assert_client(out, connections=1, requests=0, server_closed=0)
    assert_ground_truth(netns, nginx, opens=1, served_conns=0, requests=0, client_tw=1,
                        server_tw=0)

    inbound, outbound = sides(netns, v6)
    per_conn = [("0", 1), ("1", 1)]
    agent.wait_all(
        side(inbound, opened=1, reqs=0, reused=0, unused=1, closed=1, closed_by="peer",
             per_conn=per_conn) +
        side(outbound, opened=1, reqs=0, reused=0, unused=1, closed=1, closed_by="local",
             per_conn=per_conn))


# --- f: the exposition passes promtool ----------------------------------------------------

def some_traffic(net, agent):
    """Keep-alive on IPv4, Connection: close on IPv6, one unused connection; wait until
    the agent has folded all of it."""
    net.run_client("keepalive", "--conns", 3, "--requests", 10)
    net.run_client("close", "--requests", 5, v6=True)
    net.run_client("unused", "--conns", 1)
    in4, out4 = sides(net, False)
    in6, out6 = sides(net, True)
    agent.wait_all([(OPENED, out4, 4), (OPENED, out6, 5), (OPENED, in4, 4), (OPENED, in6, 5),
                    (ACTIVE, dict(direction="outbound"), 0),
                    (ACTIVE, dict(direction="inbound"), 0)])


def test_promtool_check_metrics(netns, nginx, agent):
    some_traffic(netns, agent)
    headers, body = agent.get("/metrics")
    ctype = headers.get("Content-Type", "")
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, \
        f"/metrics Content-Type: actual {ctype!r}, expected 'text/plain; version=0.0.4'"
    p = kw.run(["promtool", "check", "metrics"], input=body.decode(), check=False)
    assert p.returncode == 0, f"promtool check metrics: exit {p.returncode}, expected 0\n" \
        f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    kw.parse_prometheus(body.decode())  # and our parser agrees it is well formed


# --- g: the CLI agrees with /metrics --------------------------------------------------------

def upstream_rows(doc, what):
    """{(direction, peer, port, netns): (conn, req, reuse)} of an upstreams document
    ({"version": 1, "upstreams": [...]}; JSON keys are the field names of user/lib/fields.h),
    the overflow entries (peer "other") left out."""
    assert isinstance(doc, dict) and doc.get("version") == 1, \
        f"{what}: expected an object with version 1, got: {str(doc)[:300]}"
    rows = {}
    for u in doc.get("upstreams", []):
        if u["peer"] == "other":
            continue
        key = (u["direction"], u["peer"], str(u["port"]), u["netns"])
        assert key not in rows, f"{what}: upstream {key} listed twice"
        rows[key] = (u["conn"], u["req"], u["reuse"])
    return rows


def test_cli_stat_matches_metrics(netns, nginx, agent):
    some_traffic(netns, agent)
    samples = agent.metrics()
    conn = agent.value(OPENED, samples, direction="outbound")
    reuse = agent.value(REUSED, samples, direction="outbound")
    assert_eq("sum of outbound keepwatch_connections_opened_total", conn, 4 + 5)
    assert_eq("sum of outbound keepwatch_requests_reused_total", reuse, 27)

    p = kw.cli("--agent", agent.url, "stat", "-1", "-f", "backend_conn,backend_reuse")
    assert p.returncode == 0, f"keepwatch stat -1: exit {p.returncode}\n{p.stderr}"
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(lines) == 2, f"keepwatch stat -1 -f backend_conn,backend_reuse: actual " \
        f"{len(lines)} lines, expected 2:\n{p.stdout}"
    for ln in lines:
        assert len(ln) < 80, f"stat line is {len(ln)} columns, expected < 80: {ln!r}"
    got = {ln.split()[0]: float(ln.split()[1]) for ln in lines}
    assert_eq(f"keepwatch stat -1 fields\n{p.stdout}", sorted(got),
              ["backend_conn", "backend_reuse"])
    assert_eq("stat backend_conn vs /metrics", got["backend_conn"], conn)
    assert_eq("stat backend_reuse vs /metrics", got["backend_reuse"], reuse)

    p = kw.cli("--agent", agent.url, "stat", "-j", "-f", "backend_conn")
    assert p.returncode == 0, f"keepwatch stat -j: exit {p.returncode}\n{p.stderr}"
    doc = json.loads(p.stdout)
    assert_eq("stat -j version", doc.get("version"), 1)
    assert isinstance(doc.get("uptime_seconds"), (int, float)), f"uptime_seconds: {doc}"
    assert_eq("stat -j counters", sorted(doc.get("counters", {})), ["backend_conn"])
    c = doc["counters"]["backend_conn"]
    assert_eq("stat -j backend_conn value vs /metrics", c["value"], conn)
    for k in ("rate", "description"):
        assert k in c, f"stat -j backend_conn has no {k!r}: {c}"

    # upstreams: the API and the CLI list exactly this test's four upstreams, with the
    # counts of /metrics.
    want = {}
    for v6 in (False, True):
        for labels in sides(netns, v6):
            key = (labels["direction"], labels["peer"], labels["port"], labels["netns"])
            want[key] = tuple(int(agent.value(n, samples, **labels))
                              for n in (OPENED, REQS, REUSED))
    api = upstream_rows(agent.upstreams(), "/api/v1/upstreams")
    assert_eq("/api/v1/upstreams (direction, peer, port, netns): (conn, req, reuse)", api, want)
    p = kw.cli("--agent", agent.url, "upstreams", "-j")
    assert p.returncode == 0, f"keepwatch upstreams -j: exit {p.returncode}\n{p.stderr}"
    cli = upstream_rows(json.loads(p.stdout), "keepwatch upstreams -j")
    assert_eq("keepwatch upstreams -j (direction, peer, port, netns): (conn, req, reuse)",
              cli, want)


# --- h: bad input ---------------------------------------------------------------------

@pytest.mark.parametrize("args,mention", [
    (["--bogus"], "bogus"),
    (["--max-upstreams", "abc"], None),
    (["--listen", "127.0.0.1:99999"], None),
    (["--pin-dir", "/sys/fs/bpf/kw.test"], "takes no dot in a name"),
    (["--pin-dir", "/" + "x" * 250], "is longer than 199 characters"),
    (["--pin-dir", "relative/dir"], "is not an absolute path"),
    (["--fallback", "everything"], "is not requests, reset_reasons or tcp_sock"),
], ids=["unknown-flag", "max-upstreams-abc", "listen-port-99999", "pin-dir-dot",
        "pin-dir-long", "pin-dir-relative", "fallback-unknown"])
def test_agent_usage_errors(args, mention):
    kw.require_binary(kw.KEEPWATCHD)
    p = kw.run([kw.KEEPWATCHD, *args, "--no-pin"], timeout=10, check=False)
    assert p.returncode == 2, f"keepwatchd {' '.join(args)}: exit actual {p.returncode}, " \
        f"expected 2\nstderr: {p.stderr}"
    assert p.stderr.strip(), f"keepwatchd {' '.join(args)}: nothing on stderr"
    if mention:
        assert mention in p.stderr, f"keepwatchd {' '.join(args)}: stderr does not name " \
            f"{mention!r}: {p.stderr}"


def test_cli_usage_errors():
    p = kw.cli("bogus-command")
    assert p.returncode == 2, f"keepwatch bogus-command: exit actual {p.returncode}, " \
        f"expected 2\nstderr: {p.stderr}"
    assert "bogus-command" in p.stderr, f"stderr does not name the command: {p.stderr}"

    p = kw.cli("--agent", "http://127.0.0.1:1", "stat")
    assert p.returncode == 1, f"keepwatch stat with no agent: exit actual {p.returncode}, " \
        f"expected 1\nstderr: {p.stderr}"
    assert "cannot reach the agent" in p.stderr, \
        f"stderr: actual {p.stderr!r}, expected to contain 'cannot reach the agent'"


def raw_exchange(port, data, timeout=3.0):
    """Send raw bytes to the agent; return everything it sends until it closes, or what
    came within `timeout` (None: no answer at all and the connection still open)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return buf
            if not chunk:
                return buf
            buf += chunk
            if b"\r\n\r\n" in buf:
                return buf
        return buf if buf else None


def test_agent_http_bad_requests(netns, agent):
    for data in (b"GARBAGE\r\n\r\n", b"GET /metrics\r\n\r\n"):
        reply = raw_exchange(agent.port, data)
        assert reply is not None, f"{data!r}: no answer and connection still open after 3s"
        if reply:
            status = reply.split(b"\r\n", 1)[0]
            assert re.match(rb"HTTP/1\.[01] 4\d\d ", status), \
                f"{data!r}: actual status line {status!r}, expected a 4xx (or a close)"
        status, _, _ = agent.request("GET", "/healthz")
        assert_eq(f"/healthz after {data!r}", status, 200)

    status, _, body = agent.request("POST", "/metrics", body=b"x=1")
    assert_eq("POST /metrics status", status, 405)
    status, _, body = agent.request("GET", "/nope")
    assert_eq("GET /nope status", status, 404)
    status, _, _ = agent.request("GET", "/healthz")
    assert_eq("/healthz at the end", status, 200)
