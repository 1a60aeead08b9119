# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Keep-alive races and resets (issue 4), against real servers in namespaces.

A keep-alive race: the server closes an idle connection, and a request the client sends
on it meets the close. The kernel answers with a RST whose reason depends on where the
request lands (DESIGN.md section 3); each case is set up for sure here, the client waits
for it (the test watches the sockets with ss before letting the client go), and then
both ends are checked against independent counts: the client's own (what answered its
request: a reset and its errno, and the socket's state when it sent), nstat in both
namespaces, and for the proxy test the proxy's own counters.

  case             server side at the request           set up by
  abort_on_data    the connection, FIN_WAIT1            nftables drops the server's FINs
  timewait_socket  its timewait sock (FIN_WAIT2 sub.)   nothing (the default)
  tcp_flags        the listener                         tcp_fin_timeout 1, wait past it
  no_socket        nothing                              as tcp_flags, and nginx stopped
"""

import json
import re
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
RACES = P + "keepalive_races_total"
RST_SENT = P + "resets_sent_total"
RST_RCVD = P + "resets_received_total"
ABORTED = P + "connections_aborted_with_unread_total"
RACE_IDLE = P + "race_idle_before_close_seconds"
RACE_GAP = P + "race_gap_seconds"

N = 3  # races provoked per case

# The server's FINs, dropped on their way out (the client never learns of the close).
DROP_SERVER_FIN = """
table inet kw {
    chain out {
        type filter hook output priority 0; policy accept;
        tcp sport 80 tcp flags & fin == fin drop
    }
}
"""




def hist_slot(name, labels, lo, hi, n):
    """Expectations that the histogram `name` holds n values, all in the slot (lo, hi]
    (histograms per port: each port of these tests has one peer)."""
    labels = kw.per_port(labels)
    return [(name + "_bucket", dict(labels, le=lo), 0),
            (name + "_bucket", dict(labels, le=hi), n),
            (name + "_count", labels, n)]


# What each case looks like: the server's sockets on port 80 just before the client sends
# (ss state names), the client's socket state then, the errno its reset leaves, the
# delay from the first responses to the second requests, and the slots of the gap (close
# to request, server side) and of the client's idle time before it sent.
CASES = {
    "abort_on_data": dict(server_states={"FIN-WAIT-1": N}, client_state="ESTABLISHED",
                          errno="ECONNRESET", delay=1.3, gap=("0.1", "0.5"),
                          client_idle=("1.1", "1.9")),
    "timewait_socket": dict(server_states={"FIN-WAIT-2": N}, client_state="CLOSE_WAIT",
                            errno="EPIPE", delay=1.3, gap=("0.1", "0.5"),
                            client_idle=("1.1", "1.9")),
    "tcp_flags": dict(server_states={}, client_state="CLOSE_WAIT", errno="EPIPE", delay=3.0,
                      gap=("1", "5"), client_idle=("2.1", "4.5")),
    "no_socket": dict(server_states={}, client_state="CLOSE_WAIT", errno="EPIPE", delay=3.0,
                      gap=("1", "5"), client_idle=("2.1", "4.5")),
}
RSTATE = {"ESTABLISHED": "established", "CLOSE_WAIT": "close_wait"}
SS_STATE = {"ESTABLISHED": "ESTAB", "CLOSE_WAIT": "CLOSE-WAIT"}


def provoke_races(net, nginx, case, v6):
    """N connections, one request each, then (once the case's scene is set) a second
    request on each after nginx's keepalive_timeout (1 s) closed them. Returns the
    client's summary after checking it and the kernel's counts in both namespaces."""
    c = CASES[case]
    if case == "abort_on_data":
        net.nft(net.server_ns, DROP_SERVER_FIN)
    if case in ("tcp_flags", "no_socket"):
        net.sysctl(net.server_ns, {"net.ipv4.tcp_fin_timeout": 1})
    client = kw.ControlledClient(net, net.client_ns, net.server_addr(v6), "--conns", N,
                                 "--wait", 3)
    client.wait_ready()
    # nginx closes each connection after 1 s idle; its sockets then sit where the case
    # needs them (the timewait sock of tcp_fin_timeout 1 lives 1 s more).
    if case == "no_socket":
        net.wait_states(net.server_ns, {"FIN-WAIT-2": N}, port=80, timeout=5)
        nginx.stop()
        lst = net.ss(net.server_ns, "-tln")
        assert lst.strip() == "", f"listeners left in {net.server_ns} after nginx stopped:\n{lst}"
    net.wait_states(net.server_ns, c["server_states"], port=80, timeout=6)
    net.wait_states(net.client_ns, {SS_STATE[c["client_state"]]: N}, port=80, timeout=2)
    client.go(c["delay"])
    out = client.result()

    # The client's view: every second request met a reset, in the expected state.
    assert_eq("client connections", out["connections"], N)
    assert_eq("client: responses (the first requests only)", out["responses"], N)
    assert_eq("client: what answered the second requests", out["outcome"], {"reset": N})
    assert_eq("client: socket state when sending the second request", out["state_at_send"],
              {c["client_state"]: N})
    assert_eq("client: errno left by the resets", out["reset_errno"], {c["errno"]: N})
    assert c["delay"] - 0.05 <= out["delay_seconds"] <= c["delay"] + 0.5, \
        f"client: delay before the second requests: actual {out['delay_seconds']}s, " \
        f"expected about {c['delay']}s"

    # The kernel's: the server sent exactly N resets (N aborts on data for that case),
    # the client received N in ESTABLISHED or CLOSE_WAIT (TcpEstabResets) and sent none.
    s, cl = net.nstat(net.server_ns), net.nstat(net.client_ns)
    assert_eq("server nstat TcpOutRsts", s["TcpOutRsts"], N)
    assert_eq("server nstat TcpExtTCPAbortOnData", s["TcpExtTCPAbortOnData"],
              N if case == "abort_on_data" else 0)
    assert_eq("client nstat TcpEstabResets", cl["TcpEstabResets"], N)
    assert_eq("client nstat TcpOutRsts", cl["TcpOutRsts"], 0)
    served = nginx.served()
    assert_eq("requests in nginx's access log", served["requests"], N)
    return out


def race_expectations(net, case, v6):
    c = CASES[case]
    inbound, outbound = sides(net, v6)
    exp = [
        # the backend's (server) side: nginx's upstream of the client
        (RACES, dict(inbound, side="server"), N),
        (RACES, dict(inbound, side="client"), 0),
        (RST_SENT, dict(inbound, reason=case), N),
        (RST_SENT, inbound, N),  # and no reset of any other reason
        (RST_RCVD, inbound, 0),
        (ABORTED, inbound, 0),
        (OPENED, inbound, N),
        (REQS, inbound, N),  # the second requests were never read
        (CLOSED, dict(inbound, closed_by="local", how="fin"), N),
        # the client (proxy) side: its upstream nginx
        (RACES, dict(outbound, side="client"), N),
        (RACES, dict(outbound, side="server"), 0),
        (RST_RCVD, dict(outbound, state=RSTATE[c["client_state"]]), N),
        (RST_RCVD, outbound, N),
        (RST_SENT, outbound, 0),
        (OPENED, outbound, N),
        # a request a reset answered still counts, reused (Varnish's backend_reuse)
        (REQS, outbound, 2 * N),
        (REUSED, outbound, N),
    ]
    if c["client_state"] == "ESTABLISHED":
        exp.append((CLOSED, dict(outbound, closed_by="peer", how="rst"), N))
    else:
        exp.append((CLOSED, dict(outbound, closed_by="peer", how="fin"), N))
    # Server side: the connections were idle 1 s (nginx's keepalive_timeout) when
    # closed, and the requests came `delay - 1` s after the close.
    exp += hist_slot(RACE_IDLE, inbound, "0.9", "1.1", N)
    exp += hist_slot(RACE_GAP, inbound, *c["gap"], N)
    return exp


def client_idle_expectations(net, case, v6):
    """Client side, race_idle_before_close_seconds is documented as "how long the
    connection had been idle when it was closed": nginx closed it after 1 s idle, which the
    client saw (its FIN arrived) in every case but abort_on_data. There the client never
    learnt of the close; the only idle time it has is the one before it sent."""
    c = CASES[case]
    _, outbound = sides(net, v6)
    if c["client_state"] == "CLOSE_WAIT":
        # and the gap, from nginx's FIN to the reset, is the server's gap
        return (hist_slot(RACE_IDLE, outbound, "0.9", "1.1", N) +
                hist_slot(RACE_GAP, outbound, *c["gap"], N))
    return hist_slot(RACE_IDLE, outbound, *c["client_idle"], N)


@FAMILIES
@pytest.mark.parametrize("case", list(CASES))
def test_keepalive_race(netns, nginx, agent, case, v6):
    provoke_races(netns, nginx, case, v6)
    agent.wait_all(race_expectations(netns, case, v6))
    agent.wait_all(client_idle_expectations(netns, case, v6))


# --- e: events and doctor after races -------------------------------------------------

EVENT_KEYS = {"seq", "time", "type", "direction", "local", "peer", "netns", "idle_seconds",
              "gap_seconds", "requests", "reason"}


def events_of(agent, **query):
    path = "/api/v1/events" + ("?" + "&".join(f"{k}={v}" for k, v in query.items())
                               if query else "")
    return json.loads(agent.get(path)[1])


def endpoint(addr, port):
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


@FAMILIES
def test_events_after_races(netns, nginx, agent, v6):
    """GET /api/v1/events and `keepwatch events` after N timewait_socket races: N race
    events on each side naming the reason (server: the RST reason, client: its state), and
    N idle closes by nginx (idle 1 s)."""
    provoke_races(netns, nginx, "timewait_socket", v6)
    agent.wait_all(race_expectations(netns, "timewait_socket", v6))

    deadline = time.monotonic() + 5
    while True:
        doc = events_of(agent)
        races = [e for e in doc.get("events", []) if e.get("type") == "race"]
        if len(races) >= 2 * N or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    assert_eq("events document keys", sorted(doc), ["dropped", "events", "next", "version"])
    assert_eq("events version", doc["version"], 1)
    assert_eq("events dropped", doc["dropped"], 0)
    evs = doc["events"]
    for e in evs:
        assert_eq(f"keys of event {e}", set(e), EVENT_KEYS)
    seqs = [e["seq"] for e in evs]
    assert_eq("event seqs (consecutive from 1)", seqs, list(range(1, len(evs) + 1)))
    assert_eq("events next (the last seq)", doc["next"], seqs[-1] if seqs else 0)

    client, server = netns.client_addr(v6), netns.server_addr(v6)
    by = {}
    for e in evs:
        key = (e["type"], e["direction"], e["reason"], e["netns"])
        by[key] = by.get(key, 0) + 1
    want = {
        ("race", "inbound", "timewait_socket", netns.server_ns): N,
        ("race", "outbound", "close_wait", netns.client_ns): N,
        ("idle_close", "inbound", None, netns.server_ns): N,
    }
    assert_eq("events by (type, direction, reason, netns)", by, want)
    for e in evs:
        if e["direction"] == "inbound":
            assert e["local"] == endpoint(server, 80), f"inbound event local: {e}"
            assert e["peer"].rsplit(":", 1)[0].strip("[]") == client, f"event peer: {e}"
        else:
            assert e["peer"] == endpoint(server, 80), f"outbound event peer: {e}"
            assert e["local"].rsplit(":", 1)[0].strip("[]") == client, f"event local: {e}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]), \
            f"event time: {e['time']!r}, expected ISO 8601 UTC with ms"
        if e["type"] == "race":
            assert_eq(f"race event requests ({e})", e["requests"], 1)
            assert isinstance(e["gap_seconds"], (int, float)), f"race gap: {e}"
        else:
            assert_eq(f"gap of a non-race event ({e})", e["gap_seconds"], None)
        if e["type"] == "race" and e["direction"] == "inbound":
            assert 0.9 < e["idle_seconds"] <= 1.1, f"server race idle: {e}"
            assert 0.1 < e["gap_seconds"] <= 0.5, f"server race gap: {e}"
        if e["type"] == "idle_close":
            assert 0.9 < e["idle_seconds"] <= 1.1, f"idle close idle: {e}"

    # paging: since=N returns the events after N; limit caps them
    page = events_of(agent, since=2, limit=2)
    assert_eq("events since=2&limit=2 seqs", [e["seq"] for e in page["events"]], [3, 4])
    assert_eq("events since=2&limit=2 next", page["next"], 4)
    status, _, body = agent.request("GET", "/api/v1/events?limit=abc")
    assert_eq(f"GET /api/v1/events?limit=abc status ({body[:200]!r})", status, 400)

    # the CLI: one line per event, the race lines naming the reason
    p = kw.cli("--agent", agent.url, "events", "-n", 100)
    assert_eq(f"keepwatch events exit status\n{p.stderr}", p.returncode, 0)
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert_eq(f"keepwatch events lines\n{p.stdout}", len(lines), len(evs))
    race_lines = [ln for ln in lines if " race " in ln]
    assert_eq(f"keepwatch events race lines\n{p.stdout}", len(race_lines), 2 * N)
    for ln in race_lines:
        assert ln.endswith(" timewait_socket") or ln.endswith(" close_wait"), \
            f"race line does not end with its reason: {ln!r}"
        assert len(ln) < 100, f"event line of {len(ln)} columns: {ln!r}"
    srv = [ln for ln in race_lines if ln.endswith(" timewait_socket")]
    assert_eq(f"server race lines\n{p.stdout}", len(srv), N)
    for ln in srv:
        f = ln.split()
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", f[0]), f"time of {ln!r}"
        assert_eq(f"direction of {ln!r}", f[1], "in")
        assert_eq(f"local end of {ln!r}", f[2], endpoint(server, 80))
        # nginx's 1 s, in jiffies: 996 ms when its timer fires just before a tick
        assert re.search(r" idle (9[0-9]{2}ms|1\.0[0-9]*s) ", ln), \
            f"server race line without its idle of about 1 s: {ln!r}"
        assert " gap " in ln, f"race line without gap: {ln!r}"

    p = kw.cli("--agent", agent.url, "events", "-j", "-n", 100)
    assert_eq(f"keepwatch events -j exit status\n{p.stderr}", p.returncode, 0)
    cli_doc = json.loads(p.stdout)
    assert_eq("keepwatch events -j events", cli_doc["events"], evs)


DOCTOR_FINDING_KEYS = {"id", "severity", "summary", "evidence", "failure", "fix"}


def doctor(agent, *args):
    p = kw.cli("--agent", agent.url, "doctor", *args)
    assert_eq(f"keepwatch doctor {' '.join(args)} exit status\n{p.stdout}\n{p.stderr}",
              p.returncode, 0)
    return p.stdout


def worst_finding(what, key, u, fid):
    """The upstream's first (worst) finding, which must be `fid`; any other must be info
    (short_keepalive_internal comes with a 1 s keep-alive on a private hop that opened a
    connection a second or more, as 3 connections in a 2 s agent uptime do)."""
    fs = u["findings"]
    ids = [f["id"] for f in fs]
    assert ids and ids[0] == fid, f"{what}: findings of {key}: actual {ids}, expected " \
        f"{fid!r} first\n{json.dumps(fs)}"
    others = [(f["id"], f["severity"]) for f in fs[1:] if f["severity"] != "info"]
    assert not others, f"{what}: findings of {key} besides {fid!r} above info: {others}"
    return fs[0]


def doctor_upstreams(doc):
    assert_eq("doctor document version", doc.get("version"), 1)
    return {(u["direction"], u["peer"], str(u["port"]), u["netns"]): u
            for u in doc["upstreams"]}


@FAMILIES
def test_doctor_after_races(netns, nginx, agent, v6):
    """After N races: the inbound upstream gets a critical keepalive_shorter_than_lb (502)
    naming the N races, the outbound one a critical upstream_closes_before_pool; nginx's
    1 s keep-alive is inferred on both sides (local inbound, peer outbound)."""
    provoke_races(netns, nginx, "timewait_socket", v6)
    agent.wait_all(race_expectations(netns, "timewait_socket", v6))
    inbound, outbound = sides(netns, v6)
    key_in = ("inbound", inbound["peer"], "80", netns.server_ns)
    key_out = ("outbound", outbound["peer"], "80", netns.client_ns)

    api = json.loads(agent.get("/api/v1/doctor")[1])
    cli_doc = json.loads(doctor(agent, "-j"))
    for what, doc in (("GET /api/v1/doctor", api), ("keepwatch doctor -j", cli_doc)):
        ups = doctor_upstreams(doc)
        assert_eq(f"{what}: upstreams", sorted(ups), sorted([key_in, key_out]))
        assert_eq(f"{what}: lb_idle_timeout", doc["lb_idle_timeout"], None)
        for key, fid, side, who in ((key_in, "keepalive_shorter_than_lb", "local", "server"),
                                    (key_out, "upstream_closes_before_pool", "peer",
                                     "client")):
            u = ups[key]
            f = worst_finding(what, key, u, fid)
            assert_eq(f"{what}: finding keys", set(f), DOCTOR_FINDING_KEYS)
            assert_eq(f"{what}: severity of {fid}", f["severity"], "critical")
            assert_eq(f"{what}: failure of {fid}", f["failure"], "502")
            assert f"{N} keep-alive races" in f["summary"], \
                f"{what}: summary of {fid} does not count {N} races: {f['summary']!r}"
            t = u["timeouts"][side]
            assert t is not None, f"{what}: no {side} timeout inferred for {key}: {u}"
            assert_eq(f"{what}: {key} {side} timeout seconds", t["seconds"], 1)
            assert_eq(f"{what}: {key} {side} timeout exact", t["exact"], True)
            assert_eq(f"{what}: {key} {side} timeout samples", t["samples"], N)
    # one peer only
    only = json.loads(doctor(agent, outbound["peer"], "-j"))
    assert_eq("doctor PEER -j upstreams", sorted(doctor_upstreams(only)), [key_out])

    # The text: one block per upstream (a header naming it, its timeouts, its findings
    # with severity, summary, evidence and fix), lines within 79 columns.
    text = doctor(agent)
    for ln in text.splitlines():
        assert len(ln) <= 79, f"doctor line of {len(ln)} columns: {ln!r}"
    blocks = doctor_blocks(text)
    peer_in = inbound["peer"]
    peer_out = endpoint(outbound["peer"], 80)
    want_heads = {f"inbound from {peer_in} to port 80 (netns {netns.server_ns})",
                  f"outbound to {peer_out} (netns {netns.client_ns})"}
    assert_eq(f"doctor text upstream headers\n{text}", set(blocks), want_heads)
    for head, block in blocks.items():
        flat = " ".join(block.split())
        assert f"CRITICAL: {N} keep-alive races" in flat, \
            f"doctor block {head!r} has no 'CRITICAL: {N} keep-alive races':\n{block}"
        for part in ("evidence:", "fix:", "1 s"):
            assert part in flat, f"doctor block {head!r} has no {part!r}:\n{block}"


def doctor_blocks(text):
    """{header line: the block's text} of `keepwatch doctor`'s text: a block starts at an
    unindented "inbound ..." or "outbound ..." line."""
    blocks, head = {}, None
    for ln in text.splitlines():
        if ln.startswith(("inbound ", "outbound ")):
            head = ln.strip()
            blocks[head] = ""
        elif head is not None:
            blocks[head] += ln + "\n"
    return blocks


# --- c: the doctor against Apache and a balancer's idle timeout ------------------------

def wait_orphaned(net, ns, n, timeout=6):
    """Wait until `ns` holds exactly n sockets on port 80 in FIN-WAIT-2 that no process
    owns any more (ss -p shows no users): Apache has ended its lingering close (it keeps
    the socket SECONDS_TO_LINGER, 2 s, after its FIN, reading and discarding whatever
    comes) and the kernel holds the timewait sock alone."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [ln for ln in net.ss(ns, "-tanp", "sport", "= :80").splitlines()
                 if ln.strip() and not ln.startswith("LISTEN")]
        orphans = [ln for ln in lines if ln.startswith("FIN-WAIT-2") and "users:" not in ln]
        if len(orphans) == n and len(lines) == n:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{ns}: expected {n} orphaned FIN-WAIT-2 sockets on port 80 "
                                 f"after {timeout}s, have:\n" + "\n".join(lines))
        time.sleep(0.05)


@pytest.fixture
def apache(request, netns):
    opts = dict(getattr(request, "param", {}))
    server = kw.Apache(netns, **opts)
    try:
        yield server.start()
    finally:
        server.remove()


@pytest.mark.parametrize("apache", [dict(keepalive_timeout=1)], indirect=True)
@pytest.mark.agent_args("--lb-idle-timeout", "60")
def test_doctor_keepalive_shorter_than_lb(netns, apache, agent):
    """Apache with KeepAliveTimeout 1 behind a balancer whose idle timeout is 60 s (the
    agent is told so): the client, playing the balancer, keeps its connections idle and
    reuses them after Apache closed them. The doctor reports, on Apache's inbound
    upstream, keepalive_shorter_than_lb with the fix: a keep-alive of 65 s.

    The client sends once Apache's lingering close is over (see wait_orphaned), so each
    request meets a timewait sock and is reset: N races."""
    client = kw.ControlledClient(netns, netns.client_ns, netns.server_v4, "--conns", N,
                                 "--wait", 3)
    client.wait_ready()
    wait_orphaned(netns, netns.server_ns, N)
    netns.wait_states(netns.client_ns, {"CLOSE-WAIT": N}, port=80)
    client.go(0)
    out = client.result()
    assert_eq("client: what answered the second requests", out["outcome"], {"reset": N})
    assert_eq("server nstat TcpOutRsts", netns.nstat(netns.server_ns)["TcpOutRsts"], N)
    inbound, _ = sides(netns, False)
    agent.wait_all([(RACES, dict(inbound, side="server"), N),
                    (RST_SENT, dict(inbound, reason="timewait_socket"), N)]
                   + hist_slot(RACE_IDLE, inbound, "0.9", "1.1", N))

    key_in = ("inbound", inbound["peer"], "80", netns.server_ns)
    for what, doc in (("keepwatch doctor -j", json.loads(doctor(agent, "-j"))),
                      ("GET /api/v1/doctor", json.loads(agent.get("/api/v1/doctor")[1]))):
        assert_eq(f"{what}: lb_idle_timeout", doc["lb_idle_timeout"], 60)
        ups = doctor_upstreams(doc)
        assert key_in in ups, f"{what}: no diagnosis of {key_in}: {sorted(ups)}"
        u = ups[key_in]
        assert_eq(f"{what}: Apache's keep-alive timeout (local)", u["timeouts"]["local"]
                  and u["timeouts"]["local"]["seconds"], 1)
        f = worst_finding(what, key_in, u, "keepalive_shorter_than_lb")
        assert_eq(f"{what}: severity (there were races)", f["severity"], "critical")
        for needle in ("65 s", "KeepAliveTimeout 65", "60 s"):
            assert needle in f["fix"], f"{what}: fix does not name {needle!r}: {f['fix']!r}"
    text = " ".join(doctor(agent).split())
    for needle in ("balancer idle timeout: 60 s", "e.g. to 65 s", "Apache KeepAliveTimeout 65"):
        assert needle in text, f"keepwatch doctor text does not say {needle!r}:\n{text}"


@pytest.mark.parametrize("apache", [dict(keepalive_timeout=120)], indirect=True)
@pytest.mark.agent_args("--lb-idle-timeout", "60")
def test_doctor_aligned_no_finding(netns, apache, agent):
    """Apache with KeepAliveTimeout 120, above the balancer's 60 s: the client idles 1.5 s
    between requests and reuses its connections without trouble, then closes them. No
    race, and no finding on either upstream."""
    client = kw.ControlledClient(netns, netns.client_ns, netns.server_v4, "--conns", N,
                                 "--wait", 3)
    client.wait_ready()
    client.go(1.5)
    out = client.result()
    assert_eq("client: what answered the second requests", out["outcome"], {"response": N})
    served = apache.served()
    assert_eq("Apache access log requests per connection",
              sorted(served["per_connection"].values()), [2] * N)
    inbound, outbound = sides(netns, False)
    agent.wait_all([(REQS, inbound, 2 * N), (REUSED, inbound, N), (RACES, inbound, 0),
                    (RACES, outbound, 0), (CLOSED, dict(inbound, closed_by="peer"), N)])
    for what, doc in (("keepwatch doctor -j", json.loads(doctor(agent, "-j"))),
                      ("GET /api/v1/doctor", json.loads(agent.get("/api/v1/doctor")[1]))):
        assert_eq(f"{what}: lb_idle_timeout", doc["lb_idle_timeout"], 60)
        findings = {k: [f["id"] for f in u["findings"]]
                    for k, u in doctor_upstreams(doc).items()}
        assert all(not v for v in findings.values()), f"{what}: findings: {findings}"
    text = doctor(agent)
    assert "CRITICAL" not in text and "WARNING" not in text, \
        f"keepwatch doctor text has a finding:\n{text}"


@pytest.mark.xfail(strict=True, reason="not detected yet: a request that meets Apache's "
                   "lingering close gets no reset (see the docstring)")
@pytest.mark.parametrize("apache", [dict(keepalive_timeout=1)], indirect=True)
def test_race_into_lingering_close(netns, apache, agent):
    """A keep-alive race that leaves no reset. Apache (event MPM) ends an idle keep-alive
    connection with shutdown(SHUT_WR) (its FIN) and then lingers up to 2 s, reading and
    discarding whatever arrives, before close(). A request sent in that window is read
    and dropped: the client gets neither a response nor a reset (recv() returns the EOF
    already queued), and the balancer answers 502 when its read times out or sees EOF.

    The kernel sees all of it: on Apache's side data received in FIN_WAIT2 after our
    idle close; on the client's side a request sent in CLOSE_WAIT that nothing answered
    before the connection closed. Both are keep-alive races by keepwatch's definition
    ("a request met a connection the other side had closed"), and should count so.
    (Today keepwatch counts the discarded requests as requests on both sides, 2 N, where
    Apache's access log has N.)"""
    client = kw.ControlledClient(netns, netns.client_ns, netns.server_v4, "--conns", N,
                                 "--wait", 1)
    client.wait_ready()
    client.go(1.5)
    out = client.result()
    assert_eq("client: what answered the second requests", out["outcome"], {"none": N})
    assert_eq("Apache access log: requests answered", apache.served()["requests"], N)
    assert_eq("server nstat TcpOutRsts", netns.nstat(netns.server_ns)["TcpOutRsts"], 0)
    inbound, outbound = sides(netns, False)
    agent.wait_all([(RACES, dict(inbound, side="server"), N),
                    (RACES, dict(outbound, side="client"), N)])


# --- b: a real proxy (Varnish) reusing connections the backend closed --------------------

VARNISH_VCL = """\
vcl 4.1;
backend default {{
    .host = "{host}";
    .port = "80";
}}
sub vcl_recv {{
    return (pass);
}}
"""


@FAMILIES
def test_proxy_races_varnish(chain, v6):
    """Varnish (proxy namespace) in front of nginx (backend namespace, keepalive_timeout
    1s); the proxy namespace drops the backend's FINs (nftables, input), so Varnish keeps
    closed connections in its pool (its waiter never sees them readable) and reuses them.

    The client sends K requests through Varnish, one every 1.3 s. The first opens a
    backend connection; each later one is sent by Varnish on the pooled connection nginx
    closed 0.3 s before (a race: the backend resets it, reason abort_on_data: nginx's
    socket still waits in FIN_WAIT1 for the ACK of its FIN), and Varnish retries it on a
    new connection. So Varnish counts backend_conn K, backend_reuse K-1, backend_retry
    K-1; keepwatch must count the same on the proxy's outbound upstream, and K-1 races on
    both hosts, equal to the backend's RSTs (nstat TcpOutRsts, TcpExtTCPAbortOnData).

    Varnish config: the VCL above (pass everything: no caching), varnishd -F -j none
    (as root without the jail) -n <workdir> -a <front>:80 -s malloc,16m,
    backend_idle_timeout left at its default, 60 s (how long the pool keeps a connection)."""
    K = 4
    net = chain
    varnish = nginx = agent = None
    try:
        nginx = kw.Nginx(net, keepalive_timeout="1s").start()
        net.nft(net.proxy_ns, """
table inet kw {
    chain in {
        type filter hook input priority 0; policy accept;
        tcp sport 80 tcp flags & fin == fin drop
    }
}
""")
        backend = net.backend_v6 if v6 else net.backend_v4
        front = net.proxy_front_v6 if v6 else net.proxy_front_v4
        varnish = kw.Varnish(net, net.proxy_ns, front,
                             VARNISH_VCL.format(host=backend)).start()
        agent = kw.Agent([net.client_ns, net.proxy_ns, net.backend_ns]).start()

        for i in range(K):
            if i:
                time.sleep(1.3)
            out = net.run_client_in(net.client_ns, "client-close", front, "--requests", 1)
            assert_eq(f"client request {i + 1}: responses", out["responses"], 1)

        st = varnish.stat()
        assert_eq("varnish MAIN.backend_conn", st["MAIN.backend_conn"], K)
        assert_eq("varnish MAIN.backend_reuse", st["MAIN.backend_reuse"], K - 1)
        assert_eq("varnish MAIN.backend_retry", st["MAIN.backend_retry"], K - 1)
        b = net.nstat(net.backend_ns)
        assert_eq("backend nstat TcpOutRsts", b["TcpOutRsts"], K - 1)
        assert_eq("backend nstat TcpExtTCPAbortOnData", b["TcpExtTCPAbortOnData"], K - 1)
        assert_eq("nginx access log requests", nginx.served()["requests"], K)

        proxy_peer = net.proxy_back_v6 if v6 else net.proxy_back_v4
        out_up = dict(direction="outbound", peer=backend, port="80", netns=net.proxy_ns)
        in_up = dict(direction="inbound", peer=proxy_peer, port="80", netns=net.backend_ns)
        agent.wait_all([
            (OPENED, out_up, st["MAIN.backend_conn"]),
            (REUSED, out_up, st["MAIN.backend_reuse"]),
            (RACES, dict(out_up, side="client"), st["MAIN.backend_retry"]),
            (RST_RCVD, dict(out_up, state="established"), K - 1),
            (RACES, dict(in_up, side="server"), b["TcpOutRsts"]),
            (RST_SENT, dict(in_up, reason="abort_on_data"), b["TcpExtTCPAbortOnData"]),
            (RST_SENT, in_up, b["TcpOutRsts"]),
            (OPENED, in_up, K),
        ] + hist_slot(RACE_IDLE, in_up, "0.9", "1.1", K - 1)
          # 0.3 s after nginx's close plus the start of the client process in its
          # namespace, which a busy machine stretches past 0.2 s (seen: 0.5-0.66 s).
          + hist_slot(RACE_GAP, in_up, "0.1", "1", K - 1))
    finally:
        if agent is not None:
            agent.stop()
        if varnish is not None:
            varnish.remove()
        if nginx is not None:
            nginx.remove()


# --- d: linger-0 closes and aborts with unread data are not races -----------------------

def test_linger0_close_by_client(netns, nginx, agent):
    """The client closes with SO_LINGER {1, 0} after a response: a RST, reason tcp_state
    (tcp_close -> tcp_disconnect; nstat counts it as TcpExtTCPAbortOnData, which is why that
    counter is no race counter). Not a race on either side, nothing aborted unread."""
    n = 3
    for _ in range(n):
        out = netns.run_client("client-close", "--requests", 1, "--linger0")
        assert_eq("client responses", out["responses"], 1)
    cl, s = netns.nstat(netns.client_ns), netns.nstat(netns.server_ns)
    assert_eq("client nstat TcpOutRsts", cl["TcpOutRsts"], n)
    assert_eq("client nstat TcpExtTCPAbortOnData (linger 0)", cl["TcpExtTCPAbortOnData"], n)
    assert_eq("server nstat TcpEstabResets", s["TcpEstabResets"], n)
    inbound, outbound = sides(netns, False)
    agent.wait_all([
        (RST_SENT, dict(outbound, reason="tcp_state"), n),
        (RST_SENT, outbound, n),
        (CLOSED, dict(outbound, closed_by="local", how="rst"), n),
        (RST_RCVD, dict(inbound, state="established"), n),
        (CLOSED, dict(inbound, closed_by="peer", how="rst"), n),
        (RACES, inbound, 0), (RACES, outbound, 0),
        (ABORTED, inbound, 0), (ABORTED, outbound, 0),
        (RST_SENT, inbound, 0),
    ])


SERVER_MODES = {
    # mode: (requests answered, requests sent unanswered, reset reason)
    "linger0": (1, 0, "tcp_state"),
    "abort-unread": (0, 1, "abort_on_close"),
    "abort-unread-reused": (1, 1, "abort_on_close"),
}


@pytest.mark.parametrize("server_mode", list(SERVER_MODES))
def test_server_resets_not_races(netns, agent, server_mode):
    """A small Python server (tests/e2e/server.py) ends each connection with a RST:
      linger0              answers the request, then closes with SO_LINGER {1, 0}:
                           reason tcp_state, nothing unread;
      abort-unread         closes as soon as the first request has arrived, unread:
                           reason abort_on_close;
      abort-unread-reused  answers the first request, closes when the second has arrived,
                           unread: reason abort_on_close.
    The aborts count in keepwatch_connections_aborted_with_unread_total. None is a race
    on the server's side: the server never closed before the request came. On the
    client's side the first two are no race either (nothing of ours was unanswered when
    the linger-0 reset came; no request had been answered before the abort). The third
    is a reset in ESTABLISHED answering a request on a reused connection, but one the
    client had not left idle (the second request follows the first response at once):
    a busy connection cut off, not a keep-alive race, on either side."""
    n = 3
    answered, unanswered, reason = SERVER_MODES[server_mode]
    server = kw.PyServer(netns, server_mode, conns=n).start()
    ends = []
    for _ in range(n):
        out = netns.run_client("reset-wait", "--requests", answered, "--unanswered",
                               unanswered, "--wait", 3)
        assert_eq("client responses", out["responses"], answered)
        ends.append(out["end"])
    summary = server.result()
    assert_eq("server.py: connections", summary["connections"], n)
    assert_eq("server.py: requests answered", summary["requests"], n * answered)
    aborts = n if reason == "abort_on_close" else 0
    assert_eq("server.py: connections closed with bytes unread", summary["unread"], aborts)
    assert_eq("client: how each connection ended", ends, ["ECONNRESET"] * n)
    s, cl = netns.nstat(netns.server_ns), netns.nstat(netns.client_ns)
    assert_eq("server nstat TcpOutRsts", s["TcpOutRsts"], n)
    assert_eq("server nstat TcpExtTCPAbortOnClose", s["TcpExtTCPAbortOnClose"], aborts)
    assert_eq("server nstat TcpExtTCPAbortOnData (linger 0)", s["TcpExtTCPAbortOnData"],
              n - aborts)
    assert_eq("client nstat TcpEstabResets", cl["TcpEstabResets"], n)
    inbound, outbound = sides(netns, False)
    agent.wait_all([
        (RST_SENT, dict(inbound, reason=reason), n),
        (RST_SENT, inbound, n),
        (ABORTED, inbound, aborts),
        (CLOSED, dict(inbound, closed_by="local", how="rst"), n),
        (RACES, inbound, 0),
        (RST_RCVD, dict(outbound, state="established"), n),
        (RST_RCVD, outbound, n),
        (CLOSED, dict(outbound, closed_by="peer", how="rst"), n),
        (ABORTED, outbound, 0),
        (RST_SENT, outbound, 0),
        (RACES, dict(outbound, side="server"), 0),
        (RACES, dict(outbound, side="client"), 0),
    ])


def test_request_meets_idle_close_unread(netns, agent):
    """The race one step earlier: the request reaches the server just before its
    keep-alive timer closes the connection, so the server closes with it unread (reset
    reason abort_on_close), as nginx did in 2 of 10 races of a balancer-like run. The
    server (server.py abort-unread-reused) answers the first request and closes as soon
    as the second arrives, unread; the client sends that second request 0.8 s after the
    first response. Data after 500 ms or more of quiet is a request that met an idle
    close: a race on both sides (idle 0.8 s: slot (0.5, 0.9]), not a request cut off
    (aborted_with_unread 0). test_server_resets_not_races[abort-unread-reused] is the
    same with no pause: an abort, no server-side race."""
    n = 3
    server = kw.PyServer(netns, "abort-unread-reused", conns=n).start()
    for _ in range(n):
        out = netns.run_client("reset-wait", "--requests", 1, "--unanswered", 1, "--pause",
                               0.8, "--wait", 3)
        assert_eq("client: how the connection ended", out["end"], "ECONNRESET")
    summary = server.result()
    assert_eq("server.py: connections closed with bytes unread", summary["unread"], n)
    s = netns.nstat(netns.server_ns)
    assert_eq("server nstat TcpExtTCPAbortOnClose", s["TcpExtTCPAbortOnClose"], n)
    assert_eq("server nstat TcpOutRsts", s["TcpOutRsts"], n)
    inbound, outbound = sides(netns, False)
    agent.wait_all([
        (RACES, dict(inbound, side="server"), n),
        (RST_SENT, dict(inbound, reason="abort_on_close"), n),
        (ABORTED, inbound, 0),
        (RACES, dict(outbound, side="client"), n),
        (RST_RCVD, dict(outbound, state="established"), n),
    ] + hist_slot(RACE_IDLE, inbound, "0.5", "0.9", n))

