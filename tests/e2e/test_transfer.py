# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""What the socket tells at close: payload bytes each way, retransmits, and the lifetime,
connect latency and RTT histograms.

Bytes are TCP payload: what the applications wrote and read, no TCP or IP header, no SYN
or FIN sequence number. So a transfer of known sizes gives exact counts on both sides,
and retransmitted data is counted once. Retransmits are forced with nftables dropping
the first transmission of chosen segments, and checked against the kernel's own
TcpRetransSegs of each namespace.
"""

import json
import subprocess

import pytest

import kw
from kw import assert_eq, sides

FAMILIES = pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])

P = "keepwatch_"
SENT = P + "bytes_sent_total"
RCVD = P + "bytes_received_total"
RETRANS = P + "retransmits_total"
OPENED = P + "connections_opened_total"
LIFETIME = P + "connection_lifetime_seconds"
CONNECT = P + "connect_latency_seconds"
RTT = P + "rtt_seconds"

PORT = 7780

# Reads `up` bytes, answers `down` bytes, then waits for the client's close: every byte
# of both ways is acknowledged before either end closes, and the client closes first.
SERVER = r"""
import socket, sys
host, port, conns, up, down = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
l = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((host, port))
l.listen(16)
print("ready", flush=True)
l.settimeout(30)
for _ in range(conns):
    s, _ = l.accept()
    s.settimeout(30)
    got = 0
    while got < up:
        b = s.recv(65536)
        if not b:
            sys.exit("short request")
        got += len(b)
    s.sendall(b"d" * down)
    while s.recv(65536):
        pass
    s.close()
"""

CLIENT = r"""
import socket, sys
host, port, conns, up, down = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
for _ in range(conns):
    c = socket.create_connection((host, port), timeout=30)
    c.sendall(b"u" * up)
    got = 0
    while got < down:
        b = c.recv(65536)
        if not b:
            sys.exit("short response")
        got += len(b)
    c.close()
"""


def transfer(net, v6, conns, up, down):
    """`conns` connections from the client to the server namespace, `up` bytes each way
    up and `down` bytes down."""
    host = net.server_addr(v6)
    args = [host, PORT, conns, up, down]
    server = net.spawn(net.server_ns, ["/usr/bin/python3", "-c", SERVER, *args],
                       stdout=subprocess.PIPE, text=True)
    assert_eq("server ready", server.stdout.readline().strip(), "ready")
    net.exec(net.client_ns, ["/usr/bin/python3", "-c", CLIENT, *map(str, args)], timeout=60)
    server.wait(timeout=30)
    assert_eq("server exit status", server.returncode, 0)


def labels_of(net, v6):
    inbound, outbound = sides(net, v6)
    return dict(inbound, port=str(PORT)), dict(outbound, port=str(PORT))


def upstream(agent, labels):
    """The JSON API's record of the upstream with these labels."""
    for u in agent.upstreams()["upstreams"]:
        if (u["direction"], u["peer"], str(u["port"]), u["netns"]) == (
                labels["direction"], labels["peer"], labels["port"], labels["netns"]):
            return u
    raise AssertionError(f"no upstream {labels} in the JSON API")


def retrans_segs(net, ns):
    return net.nstat(ns)["TcpRetransSegs"]


@FAMILIES
def test_bytes_exact(netns, agent, v6):
    """5 connections, 1,234 bytes up and 56,789 down each (the response is ~40 segments):
    the payload counts are exact on both sides, nothing is retransmitted, and every
    connection has one lifetime, one RTT and (outbound) one connect latency."""
    conns, up, down = 5, 1234, 56789
    transfer(netns, v6, conns, up, down)
    for ns in (netns.client_ns, netns.server_ns):
        assert_eq(f"nstat TcpRetransSegs in {ns}", retrans_segs(netns, ns), 0)
    inbound, outbound = labels_of(netns, v6)
    agent.wait_all([
        (OPENED, inbound, conns), (OPENED, outbound, conns),
        (SENT, outbound, conns * up), (RCVD, outbound, conns * down),
        (SENT, inbound, conns * down), (RCVD, inbound, conns * up),
        (RETRANS, inbound, 0), (RETRANS, outbound, 0),
        (LIFETIME + "_count", kw.per_port(inbound), conns),
        (LIFETIME + "_count", kw.per_port(outbound), conns),
        (RTT + "_count", kw.per_port(inbound), conns),
        (RTT + "_count", kw.per_port(outbound), conns),
        (CONNECT + "_count", kw.per_port(outbound), conns),
        # a connect in a namespace pair over veth takes well under a second
        (CONNECT + "_bucket", dict(kw.per_port(outbound), le="1"), conns),
    ])
    # The same in the JSON API, where the inbound side has no connect latency.
    u_in, u_out = upstream(agent, inbound), upstream(agent, outbound)
    assert_eq("JSON outbound bytes_sent", u_out["bytes_sent"], conns * up)
    assert_eq("JSON outbound bytes_received", u_out["bytes_received"], conns * down)
    assert_eq("JSON inbound bytes_sent", u_in["bytes_sent"], conns * down)
    assert_eq("JSON inbound bytes_received", u_in["bytes_received"], conns * up)
    assert_eq("JSON inbound retransmits", u_in["retransmits"], 0)
    assert_eq("JSON inbound connect_latency count", u_in["connect_latency"]["count"], 0)
    assert_eq("JSON outbound connect_latency count", u_out["connect_latency"]["count"], conns)
    assert_eq("JSON outbound connection_lifetime count",
              u_out["connection_lifetime"]["count"], conns)
    assert_eq("JSON inbound rtt count", u_in["rtt"]["count"], conns)


# The first arrival of each client SYN (server namespace) and of each response segment
# (client namespace: the one with PSH, the response is one segment) dropped, their
# retransmission let through. Dropped on input, on the far side of the veth: a packet
# dropped on output is reported to TCP, which sends it again as if for the first time.
DROP_FIRST_SYN = """
table inet kwdrop {{
    set seen {{ typeof tcp sport; flags dynamic,timeout; timeout 5m; }}
    chain in {{
        type filter hook input priority 0; policy accept;
        tcp dport {port} tcp flags & (syn|ack) == syn tcp sport @seen accept
        tcp dport {port} tcp flags & (syn|ack) == syn add @seen {{ tcp sport }} drop
    }}
}}
"""
DROP_FIRST_RESPONSE = """
table inet kwdrop {{
    set seen {{ typeof tcp dport . tcp sequence; flags dynamic,timeout; timeout 5m; }}
    chain in {{
        type filter hook input priority 0; policy accept;
        tcp sport {port} tcp flags & psh == psh tcp dport . tcp sequence @seen accept
        tcp sport {port} tcp flags & psh == psh add @seen {{ tcp dport . tcp sequence }} drop
    }}
}}
"""


@FAMILIES
def test_retransmits_exact(netns, agent, v6):
    """3 connections whose first SYN and first response segment are dropped: each
    connect() waits for the SYN's retry after the 1 s initial RTO (its latency lands in
    (1 s, 1.5 s]), and the server retransmits its response once. The kernel's
    TcpRetransSegs of each namespace says 3, and so does keepwatch, per side; the bytes
    are counted once all the same."""
    conns, up, down = 3, 300, 1000
    netns.nft(netns.server_ns, DROP_FIRST_SYN.format(port=PORT))
    netns.nft(netns.client_ns, DROP_FIRST_RESPONSE.format(port=PORT))
    transfer(netns, v6, conns, up, down)
    assert_eq("client nstat TcpRetransSegs", retrans_segs(netns, netns.client_ns), conns)
    assert_eq("server nstat TcpRetransSegs", retrans_segs(netns, netns.server_ns), conns)
    inbound, outbound = labels_of(netns, v6)
    agent.wait_all([
        (RETRANS, outbound, conns), (RETRANS, inbound, conns),
        (SENT, outbound, conns * up), (RCVD, outbound, conns * down),
        (SENT, inbound, conns * down), (RCVD, inbound, conns * up),
        (CONNECT + "_count", kw.per_port(outbound), conns),
        (CONNECT + "_bucket", dict(kw.per_port(outbound), le="1"), 0),
        (CONNECT + "_bucket", dict(kw.per_port(outbound), le="1.5"), conns),
    ])
    assert_eq("JSON outbound retransmits", upstream(agent, outbound)["retransmits"], conns)


def test_upstreams_json_has_the_new_figures(netns, agent):
    """keepwatch upstreams -j carries the bytes, retransmits and the three histograms."""
    transfer(netns, False, 1, 10, 20)
    inbound, outbound = labels_of(netns, False)
    agent.wait_all([(SENT, outbound, 10), (RCVD, outbound, 20)])
    out = kw.run([str(kw.KEEPWATCH), "--agent", agent.url, "upstreams", "-j"]).stdout
    ups = [u for u in json.loads(out)["upstreams"]
           if u["direction"] == "outbound" and str(u["port"]) == str(PORT)]
    assert_eq("outbound upstreams on the port", len(ups), 1)
    u = ups[0]
    assert_eq("bytes_sent", u["bytes_sent"], 10)
    assert_eq("bytes_received", u["bytes_received"], 20)
    assert_eq("retransmits", u["retransmits"], 0)
    for h in ("connection_lifetime", "connect_latency", "rtt"):
        assert_eq(f"{h} count", u[h]["count"], 1)


# --- connect failures: which the kernel shows, which it cannot -------------------------------

CF = P + "connect_failures_total"

# Each attempt prints its errno name (or "ok"); the sockets stay open until the end.
CONNECTS = r"""
import errno, socket, sys
server, port, unrouted = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fam = socket.AF_INET6 if ":" in server else socket.AF_INET
keep = []
def attempt(what, f):
    try:
        f()
        print(what, "ok")
    except OSError as e:
        print(what, errno.errorcode[e.errno])
def sock(bind_port=None):
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    keep.append(s)
    return s
# 1. no route to the destination: connect() fails in its route lookup
attempt("no_route", lambda: sock().connect((unrouted, port)))
# 2. bind() to a port a listener holds
l = sock(); l.bind(("", 45000)); l.listen()
attempt("bind_in_use", lambda: sock().bind(("", 45000)))
# 3. two sockets bound to one port (SO_REUSEADDR) connecting to one destination: the
#    second's 4-tuple is taken
a, b = sock(), sock()
a.bind(("", 45001)); b.bind(("", 45001))
attempt("first_bound", lambda: a.connect((server, port)))
attempt("tuple_taken", lambda: b.connect((server, port)))
# 4. every SYN dropped (tcp_syn_retries 1): the connect times out after one retry
c = sock(); c.settimeout(20)
attempt("syn_timeout", lambda: c.connect((server, port + 1)))
"""

DROP_SYNS = """
table inet kwdrop {{
    chain in {{
        type filter hook input priority 0; policy accept;
        tcp dport {port} tcp flags & (syn|ack) == syn drop
    }}
}}
"""


@FAMILIES
def test_connect_failures_seen_and_unseen(netns, agent, v6):
    """What the kernel shows of connect() failures (README, "Why connections are not
    reused"). Seen: a bound socket whose 4-tuple is taken fails before its SYN
    (EADDRNOTAVAIL, told from a close() during the connect by no SYN sent), and a SYN that
    times out (ETIMEDOUT, its retries in retransmits, as the kernel counts them). Unseen, no tracepoint on the way:
    a connect() with no route (ENETUNREACH) and a bind() to a port in use (EADDRINUSE)."""
    server = netns.server_addr(v6)
    unrouted = "fd99::1" if v6 else "10.99.0.1"
    netns.sysctl(netns.client_ns, {"net.ipv4.tcp_syn_retries": 1})
    netns.nft(netns.server_ns, DROP_SYNS.format(port=PORT + 1))
    listener = netns.spawn(netns.server_ns, ["/usr/bin/python3", "-c", SERVER, server, PORT,
                                             1, 0, 0], stdout=subprocess.PIPE, text=True)
    assert_eq("server ready", listener.stdout.readline().strip(), "ready")
    out = netns.exec(netns.client_ns, ["/usr/bin/python3", "-c", CONNECTS, server, PORT,
                                       unrouted], timeout=30).stdout
    got = dict(line.split() for line in out.splitlines())
    assert_eq("client's connects", got,
              {"no_route": "ENETUNREACH", "bind_in_use": "EADDRINUSE", "first_bound": "ok",
               "tuple_taken": "EADDRNOTAVAIL", "syn_timeout": "ETIMEDOUT"})
    # The SYN's retries: the kernel's own count (one retry allowed, a second can go out
    # when the timer fires a few ms before the 3 s the retry budget is worth)
    syn_retries = retrans_segs(netns, netns.client_ns)
    assert syn_retries in (1, 2), \
        f"client nstat TcpRetransSegs: actual {syn_retries}, expected 1 or 2"
    _, outbound = labels_of(netns, v6)
    timed_out = dict(outbound, port=str(PORT + 1))
    agent.wait_all([
        (CF, dict(outbound, errno="EADDRNOTAVAIL"), 1), (CF, outbound, 1),
        (CF, dict(timed_out, errno="ETIMEDOUT"), 1), (CF, timed_out, 1),
        (RETRANS, timed_out, syn_retries), (RETRANS, outbound, 0),
    ])
    samples = agent.metrics()
    unseen = kw.select(samples, CF, peer=unrouted)
    assert_eq(f"connect failures towards {unrouted} (no route: invisible)", unseen, [])
