# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The agent itself: connections open before it started, adopted at its start; counts
that survive a restart through the pinned maps, and connections that closed while no
agent ran, found at the next start; and a full upstream map whose overflow is counted,
not lost.

Exact counts, in namespaces of the test's own, against real nginx.
"""

import json
import os
import shutil
import socket
import time

import pytest

import kw
from kw import assert_eq, sides

P = "keepwatch_"
OPENED = P + "connections_opened_total"
REQS = P + "requests_total"
REUSED = P + "requests_reused_total"
ACTIVE = P + "connections_active"
ERRORS = P + "bpf_errors_total"
ADOPTED = P + "connections_adopted_total"
LOST = P + "connections_lost_total"
CLOSED = P + "connections_closed_total"
UNUSED = P + "connections_unused_closed_total"
PER_CONN = P + "requests_per_connection"
RACES = P + "keepalive_races_total"
RST_SENT = P + "resets_sent_total"
RST_RCVD = P + "resets_received_total"
RACE_IDLE = P + "race_idle_before_close_seconds"
RACE_GAP = P + "race_gap_seconds"


def ready_clients(netns, *shapes):
    """Race clients in the pair's client namespace, one per (connections, first requests
    on each), ready: their connections open and their first requests answered."""
    clients = [kw.ControlledClient(netns, netns.client_ns, netns.server_v4, "--conns", n,
                                   "--first", first) for n, first in shapes]
    for c in clients:
        c.wait_ready()
    return clients


@pytest.mark.nginx(keepalive_timeout="30s")
def test_adopts_connections_open_before_start(netns, nginx):
    """Five connections established before the agent starts: three that carried two
    requests each, two that carried none. The agent adopts them at its start (adopted 5,
    opened 0, active 5 on each side), then counts one more request on each: 5 requests,
    of which the 3 on connections used before are reuses (their first use was before the
    agent) and the 2 others first uses. Their closes count as any other; requests per
    connection only for the two whose whole life the agent saw."""
    inbound, outbound = sides(netns, False)
    used, fresh = ready_clients(netns, (3, 2), (2, 0))
    netns.wait_states(netns.server_ns, {"ESTAB": 5}, port=80)
    agent = kw.Agent([netns.client_ns, netns.server_ns])
    try:
        agent.start()
        assert "adopted 10 connections open before the start (2 namespaces walked, 0 not " \
            "found, 0 failed)" in agent.stderr(), agent.stderr()
        agent.wait_all([(m, labels, v) for labels in (inbound, outbound)
                        for m, v in ((ADOPTED, 5), (OPENED, 0), (ACTIVE, 5), (REQS, 0),
                                     (REUSED, 0), (CLOSED, 0))])
        used.go(0)
        fresh.go(0)
        assert_eq("responses on the connections used before", used.result()["responses"], 9)
        assert_eq("responses on the fresh connections", fresh.result()["responses"], 2)
        served = nginx.served()
        assert_eq("requests in nginx's access log", served["requests"], 11)
        exp = []
        for labels, closed_by in ((inbound, "peer"), (outbound, "local")):
            exp += [(ADOPTED, labels, 5), (OPENED, labels, 0), (ACTIVE, labels, 0),
                    (REQS, labels, 5), (REUSED, labels, 3), (UNUSED, labels, 0),
                    (CLOSED, labels, 5), (CLOSED, dict(labels, closed_by=closed_by), 5),
                    (PER_CONN + "_count", kw.per_port(labels), 2),
                    (PER_CONN + "_sum", kw.per_port(labels), 2),
                    (PER_CONN + "_bucket", dict(kw.per_port(labels), le="1"), 2)]
        agent.wait_all(exp)
    finally:
        agent.stop()


@pytest.mark.nginx(keepalive_timeout="5s")
def test_race_on_connection_open_before_start(netns, nginx):
    """A balancer's pool open before keepwatch started: 3 connections, one request each,
    then idle. The agent starts and adopts them; nginx closes them after 5 s idle and the
    client's second requests, 0.3 s later, meet the closes (nginx's timewait sockets
    answer with resets): 3 races on each side, as if the agent had seen them open.
    With --per-peer-histograms: the race histograms per peer, as before the per-port
    default, and none per port."""
    n = 3
    inbound, outbound = sides(netns, False)
    client = kw.ControlledClient(netns, netns.client_ns, netns.server_v4, "--conns", n,
                                 "--wait", 3)
    client.wait_ready()
    agent = kw.Agent([netns.client_ns, netns.server_ns], extra_args=("--per-peer-histograms",))
    try:
        agent.start()
        agent.wait_all([(ADOPTED, inbound, n), (ADOPTED, outbound, n)])
        client.go(5.3)
        out = client.result()
        assert_eq("client: what answered the second requests", out["outcome"], {"reset": n})
        assert_eq("client: socket state when sending the second request",
                  out["state_at_send"], {"CLOSE_WAIT": n})
        agent.wait_all([
            (RACES, dict(inbound, side="server"), n),
            (RST_SENT, dict(inbound, reason="timewait_socket"), n),
            (CLOSED, dict(inbound, closed_by="local", how="fin"), n),
            (RACE_IDLE + "_bucket", dict(inbound, le="4.5"), 0),
            (RACE_IDLE + "_bucket", dict(inbound, le="5.5"), n),
            (RACE_GAP + "_bucket", dict(inbound, le="0.1"), 0),
            (RACE_GAP + "_bucket", dict(inbound, le="0.5"), n),
            (REQS, inbound, 0),  # the first requests came before the agent
            (RACES, dict(outbound, side="client"), n),
            (RST_RCVD, dict(outbound, state="close_wait"), n),
            (CLOSED, dict(outbound, closed_by="peer", how="fin"), n),
            # the requests the resets answered: reuses, on connections used before
            (REQS, outbound, n),
            (REUSED, outbound, n),
            (ACTIVE, inbound, 0),
            (ACTIVE, outbound, 0),
        ])
        per_port = [ls for (name, ls) in agent.metrics()
                    if name.startswith(RACE_IDLE) and "peer" not in dict(ls)]
        assert_eq("race histogram series without a peer label", per_port, [])
    finally:
        agent.stop()


def pinned_agent(netns, pin_dir, *extra):
    a = kw.Agent([netns.client_ns, netns.server_ns], extra_args=extra)
    a.args.remove("--no-pin")
    a.args += ["--pin-dir", pin_dir]
    return a


def test_counts_survive_restart(netns, nginx):
    """Two agents one after the other on the same pins: the second goes on counting
    from the first's counts, including a connection that stayed open across the restart,
    and an agent with another --max-upstreams starts afresh. Two at once: the second
    refuses to start, and the first's counts stay exact."""
    pin_dir = f"/sys/fs/bpf/kw-test-{os.getpid()}-{netns.index}"
    inbound = dict(direction="inbound", peer=netns.client_addr(), port="80",
                   netns=netns.server_ns)
    agents = []
    try:
        first = pinned_agent(netns, pin_dir)
        agents.append(first)
        first.start()
        # a second agent on the same pins would count every event twice: it must refuse
        p = kw.run(pinned_agent(netns, pin_dir).args, timeout=20, check=False)
        assert p.returncode == 1 and "another keepwatchd uses the maps pinned in " + \
            pin_dir in p.stderr, f"second agent on the same pins: exit actual " \
            f"{p.returncode}, expected 1 with a clear error\nstderr: {p.stderr}"
        netns.run_client("keepalive", "--conns", 2, "--requests", 5)
        first.wait_all([(REQS, inbound, 10), (REUSED, inbound, 8), (ACTIVE, inbound, 0)])
        first.stop()

        second = pinned_agent(netns, pin_dir)
        agents.append(second)
        second.start()
        second.wait_all([(OPENED, inbound, 2), (REQS, inbound, 10)])
        netns.run_client("keepalive", "--conns", 1, "--requests", 5)
        second.wait_all([(OPENED, inbound, 3), (REQS, inbound, 15), (REUSED, inbound, 12),
                         (ACTIVE, inbound, 0)])
        second.stop()

        third = pinned_agent(netns, pin_dir, "--max-upstreams", "64")
        agents.append(third)
        third.start()
        assert "another layout" in third.stderr(), third.stderr()
        samples = third.metrics()
        assert kw.select(samples, REQS, **inbound) == [], \
            "a fresh start with another --max-upstreams still had the old upstream"
        third.stop()
    finally:
        for a in agents:
            if a.proc is not None and a.proc.poll() is None:
                a.stop(check=False)
        shutil.rmtree(pin_dir, ignore_errors=True)


def unpin_links(pin_dir, timeout=5):
    """Remove the link pins of pin_dir and wait until the kernel has let the links go (it
    frees them from a work queue, so their programs run on a moment)."""
    ids = []
    for name in os.listdir(pin_dir):
        if name.startswith("link_"):
            path = os.path.join(pin_dir, name)
            ids.append(json.loads(kw.run(["bpftool", "-j", "link", "show", "pinned",
                                          path]).stdout)["id"])
            os.unlink(path)
    deadline = time.monotonic() + timeout
    for i in ids:
        while kw.run(["bpftool", "link", "show", "id", i], check=False).returncode == 0:
            assert time.monotonic() < deadline, f"link {i} still there after {timeout}s"
            time.sleep(0.02)


@pytest.mark.nginx(keepalive_timeout="30s")
def test_connections_closed_while_no_agent_ran(netns, nginx):
    """Pinned maps: 3 connections carry 2 requests each under a first agent, which stops
    (its link pins removed: no programs run); they carry one more and close while none runs. The next agent finds their entries
    open and their sockets gone: 3 lost on each side and active 0, the 6 requests the
    first agent saw kept (the 3 made while none ran were never seen), and a connection
    open across the restart still tracked, not lost."""
    pin_dir = f"/sys/fs/bpf/kw-test-{os.getpid()}-{netns.index}-lost"
    inbound, outbound = sides(netns, False)
    agents = []
    try:
        first = pinned_agent(netns, pin_dir)
        agents.append(first)
        first.start()
        closing, staying = ready_clients(netns, (3, 2), (1, 1))
        first.wait_all([(m, labels, v) for labels in (inbound, outbound)
                        for m, v in ((OPENED, 4), (REQS, 7), (ACTIVE, 4))])
        first.stop()
        # the pinned links would keep the programs counting: without them none runs
        unpin_links(pin_dir)
        closing.go(0)
        assert_eq("responses on the connections that closed", closing.result()["responses"],
                  9)
        netns.wait_states(netns.server_ns, {"ESTAB": 1}, port=80)
        netns.wait_states(netns.client_ns, {"ESTAB": 1}, port=80)

        second = pinned_agent(netns, pin_dir)
        agents.append(second)
        second.start()
        assert "6 connections of the last run closed while no agent ran" in \
            second.stderr(), second.stderr()
        assert "adopted 0 connections" in second.stderr(), second.stderr()
        second.wait_all([(m, labels, v) for labels in (inbound, outbound)
                         for m, v in ((LOST, 3), (OPENED, 4), (CLOSED, 0),
                                      (ACTIVE, 1), (REQS, 7), (REUSED, 3))])
        # the connection open across the restart is counted on: one more request, closed
        staying.go(0)
        assert_eq("responses on the connection that stayed", staying.result()["responses"], 2)
        second.wait_all([(m, labels, v) for labels in (inbound, outbound)
                         for m, v in ((LOST, 3), (CLOSED, 1), (ACTIVE, 0), (REQS, 8),
                                      (REUSED, 4))])
    finally:
        for a in agents:
            if a.proc is not None and a.proc.poll() is None:
                a.stop(check=False)
        shutil.rmtree(pin_dir, ignore_errors=True)


# From each `src=n` argument's address, n connections to the server's port 80, each with
# one request (Connection: close), one after the other.
CONNECT_FROM = (
    "import socket, sys\n"
    "for arg in sys.argv[2:]:\n"
    "    src, n = arg.split('=')\n"
    "    for _ in range(int(n)):\n"
    "        s = socket.socket()\n"
    "        s.settimeout(5)\n"
    "        s.bind((src, 0))\n"
    "        s.connect((sys.argv[1], 80))\n"
    "        s.sendall(b'GET / HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n')\n"
    "        while s.recv(4096):\n"
    "            pass\n"
    "        s.close()\n")


def client_addresses(netns, addrs):
    """More addresses for the client, each known to the server's neighbour table (which
    is host-wide: permanent entries keep many peers from crowding it)."""
    for a in addrs:
        netns.exec(netns.client_ns, ["ip", "addr", "add", f"{a}/24", "dev", "veth0"])
        netns.exec(netns.server_ns, ["ip", "neigh", "replace", a, "lladdr",
                                     netns.client_mac, "dev", "veth0", "nud", "permanent"])


def connect_from(netns, counts):
    """counts[addr] one-request connections from each client address, to the server."""
    netns.exec(netns.client_ns, ["/usr/bin/python3", "-c", CONNECT_FROM, netns.server_v4,
                                 *(f"{a}={n}" for a, n in counts.items())], timeout=60)


SOURCES = 20


def test_full_map_goes_to_overflow(netns, nginx):
    """--max-upstreams 16 and 21 upstreams (20 client addresses inbound, one server
    outbound): the 5 inbound upstreams that find no slot are counted under
    peer="other", each in keepwatch_bpf_errors_total{reason="upstreams_full"}, and no
    connection or request is lost from the totals."""
    base = netns.client_v4.rsplit(".", 1)[0]
    addrs = [f"{base}.{100 + i}" for i in range(SOURCES)]
    client_addresses(netns, addrs)
    agent = kw.Agent([netns.client_ns, netns.server_ns],
                     extra_args=("--max-upstreams", "16"))
    try:
        agent.start()
        connect_from(netns, {a: 1 for a in addrs})
        agent.wait_all([
            (OPENED, dict(direction="inbound", netns=netns.server_ns), SOURCES - 5),
            (OPENED, dict(direction="inbound", peer="other"), 5),
            (REQS, dict(direction="inbound", peer="other"), 5),
            (OPENED, dict(direction="outbound", netns=netns.client_ns), SOURCES),
            (ERRORS, dict(reason="upstreams_full"), 5),
            (P + "upstreams", {}, 18),
            (P + "upstreams_capacity", {}, 18),
        ])
    finally:
        agent.stop()


CLIENTS = 12
SHOWN = 5


def test_peers_beyond_limit_folded(netns, nginx):
    """--max-peers-per-port 5 and 12 client addresses on nginx's port 80, address i
    making 1 + i % 4 connections of one request each: 5 peers shown on their own with
    their exact counts, the other 7 summed exactly in peer="*" (and counted in
    keepwatch_peers_folded), the total that of all 12. A second round from every address
    keeps the same peers shown (sticky) and every counter exact; the histograms are one
    per port, summing all 12."""
    base = netns.client_v4.rsplit(".", 1)[0]
    addrs = [f"{base}.{100 + i}" for i in range(CLIENTS)]
    conns = {a: 1 + i % 4 for i, a in enumerate(addrs)}
    client_addresses(netns, addrs)
    inbound = dict(direction="inbound", port="80", netns=netns.server_ns)
    agent = kw.Agent([netns.client_ns, netns.server_ns],
                     extra_args=("--max-peers-per-port", str(SHOWN)))
    try:
        agent.start()
        shown = None
        for rnd in (1, 2):
            connect_from(netns, conns)
            total = rnd * sum(conns.values())
            samples = agent.wait_all([(OPENED, inbound, total), (REQS, inbound, total),
                                      (CLOSED, inbound, total),
                                      (PER_CONN + "_count", inbound, total)])
            peers = {ls["peer"]: v for ls, v in kw.select(samples, OPENED, **inbound)}
            now = sorted(p for p in peers if p != "*")
            assert_eq("peers shown on their own", len(now), SHOWN)
            if shown is not None:
                assert_eq("peers shown after a second round (sticky)", now, shown)
            shown = now
            folded = [a for a in addrs if a not in shown]
            for a in shown:
                for m in (OPENED, REQS, CLOSED):
                    assert_eq(f"{m}{{peer={a}}}", agent.value(m, samples, peer=a, **inbound),
                              rnd * conns[a])
            for m in (OPENED, REQS, CLOSED):
                assert_eq(f'{m}{{peer="*"}}', agent.value(m, samples, peer="*", **inbound),
                          rnd * sum(conns[a] for a in folded))
            assert_eq("keepwatch_peers_folded{inbound}",
                      agent.value(P + "peers_folded", samples, direction="inbound"),
                      CLIENTS - SHOWN)
            assert_eq("histogram series of port 80 with a peer label",
                      [ls for ls, _ in kw.select(samples, PER_CONN + "_count", **inbound)
                       if "peer" in ls], [])
            series = sum(1 for (name, ls) in samples
                         if name.startswith(P) and "direction" in dict(ls)
                         and name != P + "peers_folded")
            assert_eq("keepwatch_exposition_series",
                      agent.value(P + "exposition_series", samples), series)
    finally:
        agent.stop()


def test_prometheus_rules_are_valid():
    """The recording rules and alerts shipped for a fleet load in Prometheus."""
    rules = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "deploy",
                         "keepwatch.rules.yml")
    out = kw.run(["promtool", "check", "rules", rules], check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 10 rules found" in out.stdout, out.stdout


def test_prometheus_rules_unit_tests():
    """Every recording rule and alert behaves as its unit tests say (promtool test rules):
    each alert fires with its labels and annotations where it must, and not before."""
    tests = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "deploy",
                         "keepwatch.rules.test.yml")
    out = kw.run(["promtool", "test", "rules", tests], check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout, out.stdout


def self_upstreams(agent):
    """The upstreams of the agent's own port, from one GET (itself a connection to it)."""
    doc = agent.upstreams()
    return [u for u in doc["upstreams"] if u["port"] == agent.port]


@pytest.mark.parametrize("watch_self", [False, True], ids=["default", "watch-self"])
def test_own_port_left_out(watch_self):
    """The agent's own HTTP port (here its only service port, --port) is no upstream by
    default: three CLI runs and the test's own GETs leave none. With --watch-self they
    count like any other: between two GETs, 3 CLI connections and the second GET's own,
    each with one request, inbound (the server) and outbound (the clients)."""
    agent = kw.Agent([])
    agent.args += ["--port", str(agent.port)] + (["--watch-self"] if watch_self else [])
    agent.start()
    try:
        before = self_upstreams(agent)
        for _ in range(3):
            p = kw.cli("--agent", agent.url, "stat", "-1", "-f", "backend_conn")
            assert_eq(f"keepwatch stat exit status\n{p.stderr}", p.returncode, 0)
        after = self_upstreams(agent)
        if not watch_self:
            assert_eq("upstreams of the agent's own port", before + after, [])
            return
        for direction in ("inbound", "outbound"):
            b = {u["peer"]: u for u in before if u["direction"] == direction}
            a = {u["peer"]: u for u in after if u["direction"] == direction}
            assert_eq(f"{direction} peers", sorted(a), ["127.0.0.1"])
            old = b.get("127.0.0.1", {"conn": 0, "req": 0})
            assert_eq(f"{direction} connections opened since the first GET",
                      a["127.0.0.1"]["conn"] - old["conn"], 4)
            assert_eq(f"{direction} requests since the first GET",
                      a["127.0.0.1"]["req"] - old["req"], 4)
    finally:
        agent.stop()


def test_port_in_use_stops_before_bpf():
    """The HTTP port is bound first: with it in use, the agent exits 1 naming it, before
    it has loaded, pinned or created anything (a new pin directory stays absent)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    pins = f"/sys/fs/bpf/kwtest-{os.getpid()}"
    try:
        p = kw.run([kw.KEEPWATCHD, "--listen", f"127.0.0.1:{port}", "--pin-dir", pins],
                   timeout=20, check=False)
        assert_eq(f"exit status\n{p.stderr}", p.returncode, 1)
        assert f"listen on 127.0.0.1:{port}: Address already in use" in p.stderr, p.stderr
        assert "attached" not in p.stderr, f"BPF was loaded first:\n{p.stderr}"
        assert_eq("pin directory left behind", os.path.exists(pins), False)
    finally:
        holder.close()
        shutil.rmtree(pins, ignore_errors=True)
