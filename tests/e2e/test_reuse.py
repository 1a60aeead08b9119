# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Connection reuse, TIME_WAIT and ephemeral ports (issue 5), against real servers (Apache,
nginx) and real clients (ab, the Python client) in namespaces.

Every count is exact and checked first against the servers' and the kernel's own view
(access logs, ab's report, ss, /proc/net/sockstat, nstat), then against the agent.
"""

import json
import re
import subprocess
import tempfile
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
PER_CONN = P + "requests_per_connection"
TW_ENTERED = P + "time_wait_entered_total"
TW_NOW = P + "time_wait_sockets"
CONNECT_FAIL = P + "connect_failures_total"

# Not landed when these tests were written: the names the doctor and the census are
# expected to use (user/doctor/doctor.h, user/agent/census.h). Change them here if they land otherwise.
HEADROOM = P + "ephemeral_port_headroom"
FINDING_REQUESTS_CAP = "request_cap"
FINDING_PORTS = "ports_running_out"




def per_conn_slot(labels, closed_by, lo, hi, n):
    """requests_per_connection{closed_by} holds n connections in the slot (lo, hi]."""
    lb = dict(kw.per_port(labels), closed_by=closed_by)
    return [(PER_CONN + "_bucket", dict(lb, le=lo), 0),
            (PER_CONN + "_bucket", dict(lb, le=hi), n)]


def doctor_json(agent):
    p = kw.cli("--agent", agent.url, "doctor", "-j")
    assert_eq(f"keepwatch doctor -j exit status\n{p.stdout}\n{p.stderr}", p.returncode, 0)
    doc = json.loads(p.stdout)
    assert_eq("doctor version", doc.get("version"), 1)
    return doc


def findings_of(doc, labels):
    for u in doc["upstreams"]:
        if (u["direction"], u["peer"], str(u["port"]), u["netns"]) == (
                labels["direction"], labels["peer"], labels["port"], labels["netns"]):
            return u["findings"]
    return None


def finding(doc, labels, fid):
    """The finding `fid` of the upstream `labels` in a doctor document; fail if absent."""
    found = findings_of(doc, labels)
    assert found is not None, f"doctor: no diagnosis of {labels}:\n{json.dumps(doc)}"
    ids = [f["id"] for f in found]
    assert fid in ids, f"doctor findings of {labels}: actual {ids}, expected {fid!r} " \
        f"among them\n{json.dumps(found)}"
    return found[ids.index(fid)]


# --- f: requests per connection ---------------------------------------------------------

@pytest.fixture
def apache_cap5(netns):
    """Apache with MaxKeepAliveRequests 5, which ends every connection after its 6th
    request: Apache counts the requests after the first (measured: 6, 6, 6 and 5
    requests for 23). The doctor reports the cap it sees, 6, and names the directive."""
    server = kw.Apache(netns, keepalive_timeout=5, max_keepalive_requests=5)
    try:
        yield server.start()
    finally:
        server.remove()


@FAMILIES
def test_apache_max_keepalive_requests(netns, apache_cap5, agent, v6):
    """Apache with MaxKeepAliveRequests 5: the client makes 23 requests, reusing each
    connection until Apache ends it (a "Connection: close" response, then its FIN).
    Connections carry 6, 6, 6 and 5 requests: the three full ones Apache closed
    (inbound closed_by="local", the exact slot (5, 6] of requests_per_connection), the
    last the client closed. The doctor finds the cap and names MaxKeepAliveRequests 5."""
    out = netns.run_client("reuse", "--requests", 23, v6=v6)
    assert_eq("client connections", out["connections"], 4)
    assert_eq("client responses", out["responses"], 23)
    assert_eq("client: connections Apache closed", out["server_closed"], 3)
    served = apache_cap5.served()
    assert_eq("Apache access log: requests per connection",
              sorted(served["per_connection"].values()), [5, 6, 6, 6])
    assert_eq("client nstat TcpActiveOpens", netns.nstat(netns.client_ns)["TcpActiveOpens"], 4)

    inbound, outbound = sides(netns, v6)
    agent.wait_all(
        [(OPENED, inbound, 4), (REQS, inbound, 23), (REUSED, inbound, 19),
         (CLOSED, dict(inbound, closed_by="local"), 3),
         (CLOSED, dict(inbound, closed_by="peer"), 1),
         (PER_CONN + "_count", dict(kw.per_port(inbound), closed_by="local"), 3),
         (OPENED, outbound, 4), (REQS, outbound, 23), (REUSED, outbound, 19)]
        + per_conn_slot(inbound, "local", "5", "6", 3)
        + per_conn_slot(inbound, "peer", "4", "5", 1)
        + per_conn_slot(outbound, "peer", "5", "6", 3)
        + per_conn_slot(outbound, "local", "4", "5", 1))

    doc = doctor_json(agent)
    f = finding(doc, inbound, "request_cap")
    assert "after 6 requests" in f["summary"], f"request_cap does not name 6: {f}"
    assert "MaxKeepAliveRequests 5 closes after 6 requests" in f["evidence"], \
        f"request_cap does not name Apache's directive: {f}"
    assert_eq("request_cap severity (a cap of 6 wastes most handshakes)", f["severity"],
              "warning")
    assert "MaxKeepAliveRequests" in f["fix"], f"request_cap fix: {f['fix']!r}"
    # the client's side sees the backend's cap too
    f = finding(doc, outbound, "request_cap")
    assert "after 6 requests" in f["summary"], f"outbound request_cap: {f}"


@pytest.mark.nginx(keepalive_timeout="0")
@FAMILIES
def test_nginx_keepalive_off(netns, nginx, agent, v6):
    """nginx with keepalive_timeout 0 answers every request with "Connection: close" and
    closes first: 10 requests take 10 connections, each single-use, all closed by nginx
    (inbound closed_by="local", outbound closed_by="peer")."""
    out = netns.run_client("reuse", "--requests", 10, v6=v6)
    assert_eq("client connections", out["connections"], 10)
    assert_eq("client responses", out["responses"], 10)
    assert_eq("client: connections nginx closed", out["server_closed"], 10)
    served = nginx.served()
    assert_eq("nginx access log (connections, requests)",
              (served["connections"], served["requests"]), (10, 10))
    inbound, outbound = sides(netns, v6)
    agent.wait_all(
        [(OPENED, inbound, 10), (REQS, inbound, 10), (REUSED, inbound, 0),
         (CLOSED, dict(inbound, closed_by="local", how="fin"), 10), (CLOSED, inbound, 10),
         (OPENED, outbound, 10), (REQS, outbound, 10), (REUSED, outbound, 0),
         (CLOSED, dict(outbound, closed_by="peer", how="fin"), 10), (CLOSED, outbound, 10),
         (PER_CONN + "_count", kw.per_port(inbound), 10),
         (PER_CONN + "_count", kw.per_port(outbound), 10)]
        + per_conn_slot(inbound, "local", "0", "1", 10)
        + per_conn_slot(outbound, "peer", "0", "1", 10))
    # single-use, all of them, and the doctor says the server is why, on both hosts
    doc = doctor_json(agent)
    for labels in (inbound, outbound):
        f = finding(doc, labels, "server_closes_after_each_response")
        assert "100%" in f["summary"], f"{labels}: not all single-use? {f}"
        assert "keepalive_timeout" in f["fix"], f"{labels}: fix {f['fix']!r}"


def test_http10_server_and_curl(netns, agent):
    """Seed 003's case: python's http.server (HTTP/1.0: it closes after each response)
    and a new curl per request, which closes as soon as it has read the response: 40
    connections, one request each, closed by both ends at once, so that neither end
    closes 90% of them first on either host. The doctor still names single-use traffic
    on both hosts, and blames the server."""
    n = 40
    addr = netns.server_addr()
    root = tempfile.mkdtemp(prefix="kw-http10-")  # an empty directory to list
    netns.spawn(netns.server_ns, ["/usr/bin/python3", "-m", "http.server", "--bind", addr,
                                  "8000", "--directory", root],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while ":8000 " not in netns.ss(netns.server_ns, "-ltn"):
        assert time.monotonic() < deadline, "python3 -m http.server: not listening in 10 s"
        time.sleep(0.1)
    for i in range(n):
        p = netns.exec(netns.client_ns, ["curl", "-sS", "-o", "/dev/null", "-w",
                                         "%{http_code} %{http_version}",  # curl prints 1.0 as 1
                                         f"http://{addr}:8000/"], check=False)
        assert_eq(f"curl {i + 1}: status and HTTP version", p.stdout, "200 1")
    inbound, outbound = sides(netns, False)
    inbound, outbound = dict(inbound, port="8000"), dict(outbound, port="8000")
    agent.wait_all([(OPENED, inbound, n), (REQS, inbound, n), (REUSED, inbound, 0),
                    (CLOSED, inbound, n), (OPENED, outbound, n), (REQS, outbound, n),
                    (REUSED, outbound, 0), (CLOSED, outbound, n),
                    (PER_CONN + "_count", kw.per_port(inbound), n),
                    (PER_CONN + "_count", kw.per_port(outbound), n)]
                   # one request each, whoever closed them (summed over closed_by)
                   + [(PER_CONN + "_bucket", dict(kw.per_port(labels), le=le), want)
                      for labels in (inbound, outbound) for le, want in (("0", 0), ("1", n))])
    doc = doctor_json(agent)
    for labels in (inbound, outbound):
        ids = [f["id"] for f in findings_of(doc, labels)]
        single = [i for i in ids if i in ("server_closes_after_each_response",
                                          "single_use_connections")]
        assert_eq(f"{labels['direction']}: single-use findings among {ids}", len(single), 1)
        f = finding(doc, labels, single[0])
        if single[0] == "single_use_connections":  # both closers together: all of them
            assert "100%" in f["summary"], f"{labels}: not all single-use? {f}"
            assert ("this server closes" in f["summary"] if labels is inbound
                    else "the backend closes" in f["summary"]), f"{labels}: blame {f}"
        else:  # the server closed 90% or more of them first: the share it closed
            share = int(re.search(r"(\d+)% of closed", f["summary"]).group(1))
            assert share >= 90, f"{labels}: {f['summary']}"


def ab_report(text):
    """The numbers of ab's report: {"Complete requests": 50, ...}."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.split() and value.split()[0].isdigit():
            out[key.strip()] = int(value.split()[0])
    return out


@FAMILIES
def test_ab_without_keepalive(netns, nginx, agent, v6):
    """ab -n 50 -c 1 without -k: HTTP/1.0 without keep-alive, so nginx closes after
    each response: 50 connections, 50 requests, none reused."""
    addr = netns.server_addr(v6)
    url = f"http://[{addr}]/" if v6 else f"http://{addr}/"
    p = netns.exec(netns.client_ns, ["ab", "-q", "-n", 50, "-c", 1, url], timeout=60)
    rep = ab_report(p.stdout)
    assert_eq(f"ab Complete requests\n{p.stdout}", rep.get("Complete requests"), 50)
    assert_eq(f"ab Failed requests\n{p.stdout}", rep.get("Failed requests"), 0)
    assert_eq(f"ab Keep-Alive requests\n{p.stdout}", rep.get("Keep-Alive requests", 0), 0)
    served = nginx.served()
    assert_eq("nginx access log (connections, requests)",
              (served["connections"], served["requests"]), (50, 50))
    assert_eq("client nstat TcpActiveOpens", netns.nstat(netns.client_ns)["TcpActiveOpens"],
              50)
    inbound, outbound = sides(netns, v6)
    agent.wait_all([(OPENED, inbound, 50), (REQS, inbound, 50), (REUSED, inbound, 0),
                    (OPENED, outbound, 50), (REQS, outbound, 50), (REUSED, outbound, 0),
                    (UNUSED, inbound, 0), (UNUSED, outbound, 0)]
                   + per_conn_slot(inbound, "local", "0", "1", 50)
                   + per_conn_slot(outbound, "peer", "0", "1", 50))
    # HTTP/1.0: nginx closes after each response; the doctor names ab without -k
    doc = doctor_json(agent)
    for labels in (inbound, outbound):
        f = finding(doc, labels, "server_closes_after_each_response")
        assert "ab without -k" in f["evidence"], f"{labels}: evidence {f['evidence']!r}"


# --- g: TIME_WAIT ------------------------------------------------------------------------

def time_wait_truth(net, ns):
    """(ss -tan state time-wait count, /proc/net/sockstat tw) of `ns`."""
    ss = len([ln for ln in net.ss(ns, "-tan", "state", "time-wait").splitlines()
              if ln.strip()])
    return ss, net.sockstat(ns)["TCP"]["tw"]


@FAMILIES
def test_time_wait_census(netns, nginx, agent, v6):
    """2,000 connections of one keep-alive request each, which the client closes first
    (after the response): every TIME_WAIT lands on the client, on its outbound upstream.
    keepwatch_time_wait_entered_total counts 2,000 as they are made; the census gauge
    keepwatch_time_wait_sockets equals ss's and /proc/net/sockstat's count, read right
    after the agent's scrape (a TIME_WAIT lasts 60 s: the numbers stay put)."""
    n = 2000
    out = netns.run_client("churn", "--conns", n, v6=v6, timeout=120)
    assert_eq("client connections", out["connections"], n)
    assert_eq("client responses", out["responses"], n)
    assert_eq("client connect errors", out["connect_errors"], {})
    inbound, outbound = sides(netns, v6)
    agent.wait_all([(OPENED, outbound, n), (CLOSED, dict(outbound, closed_by="local"), n),
                    (TW_ENTERED, outbound, n), (TW_ENTERED, inbound, 0)], timeout=10)
    # The census runs on its own schedule: wait (up to 12 s) until its gauge has moved.
    samples = None
    for _ in range(48):
        samples = agent.metrics()
        if agent.value(TW_NOW, samples, **outbound) > 0:
            break
        time.sleep(0.25)
    ss, tw = time_wait_truth(netns, netns.client_ns)
    assert_eq("client ns: ss TIME-WAIT vs /proc/net/sockstat tw", ss, tw)
    assert_eq("client ns: TIME-WAIT sockets (ss)", ss, n)
    assert_eq(f"{kw.fmt_series(TW_NOW, outbound)} vs ss -tan state time-wait",
              agent.value(TW_NOW, samples, **outbound), ss)
    assert_eq(f"{kw.fmt_series(TW_NOW, inbound)}", agent.value(TW_NOW, samples, **inbound), 0)
    assert_eq("server ns: TIME-WAIT sockets (ss, sockstat)",
              time_wait_truth(netns, netns.server_ns), (0, 0))


# --- h: ephemeral ports run out ----------------------------------------------------------

@FAMILIES
def test_ephemeral_ports_exhausted(netns, nginx, agent, v6):
    """The client namespace gets 100 ephemeral ports (ip_local_port_range 40000 40099) and
    tcp_tw_reuse 0; a churning client that closes first leaves each port in TIME_WAIT
    towards nginx, so of 150 connects the last 50 fail with EADDRNOTAVAIL. keepwatch
    counts exactly those, its headroom gauge for that destination reads 0, and the doctor
    says the ports ran out."""
    netns.sysctl(netns.client_ns, {"net.ipv4.ip_local_port_range": "40000 40099",
                                   "net.ipv4.tcp_tw_reuse": 0})
    out = netns.run_client("churn", "--conns", 150, v6=v6, timeout=60)
    assert_eq("client connections", out["connections"], 100)
    assert_eq("client connect errors", out["connect_errors"], {"EADDRNOTAVAIL": 50})
    ss, tw = time_wait_truth(netns, netns.client_ns)
    assert_eq("client ns TIME-WAIT (ss, sockstat)", (ss, tw), (100, 100))
    inbound, outbound = sides(netns, v6)
    agent.wait_all([(CONNECT_FAIL, dict(outbound, errno="EADDRNOTAVAIL"), 50),
                    (CONNECT_FAIL, outbound, 50), (OPENED, outbound, 100),
                    (TW_ENTERED, outbound, 100)])

    samples = agent.metrics()
    dest = dict(netns=netns.client_ns, local=netns.client_addr(v6),
                peer=netns.server_addr(v6), port="80")
    assert_eq(f"{kw.fmt_series(HEADROOM, dest)}\n{agent.describe(samples, HEADROOM)}",
              agent.value(HEADROOM, samples, **dest), 0)

    doc = doctor_json(agent)
    f = finding(doc, outbound, "connect_failures_no_port")
    assert_eq("connect_failures_no_port severity", f["severity"], "critical")
    assert "50 connects" in f["summary"], f"connect_failures_no_port summary: {f}"
    f = finding(doc, outbound, "ports_running_out")
    assert_eq("ports_running_out severity (headroom 0)", f["severity"], "critical")
    assert "40000 40099" in f["fix"], f"ports_running_out fix does not show the range: {f}"
