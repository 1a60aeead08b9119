# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""keepwatch doctor --prometheus: a real Prometheus scrapes two agents, one per host (the
proxy namespace with Varnish, the backend namespace with nginx), races are forced
between them, and the fleet doctor, reading Prometheus alone, diagnoses both hosts with
the agent's own rules and pairs the proxy's outbound upstream with the backend's inbound
one: both timeouts, both ends' races, and which host's setting to change.
"""

import json
import time

import pytest

import kw
from kw import assert_eq
from test_prometheus import Prometheus
from test_races import VARNISH_VCL

FAMILIES = pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
RACES = "keepwatch_keepalive_races_total"
K = 4  # requests through Varnish, 1.3 s apart: K - 1 races


def doctor(prom_url, *args):
    return kw.cli("doctor", "--prometheus", prom_url, *args, timeout=30)


def findings(up):
    return [f["id"] for f in up["findings"]]


def upstream(host, direction, peer, port):
    """The one upstream of a host's report with these labels."""
    ups = [u for u in host["upstreams"] if (u["direction"], u["peer"], u["port"])
           == (direction, peer, port)]
    assert_eq(f"{host['instance']}: {direction} upstreams of {peer}:{port}", len(ups), 1)
    return ups[0]


@FAMILIES
def test_fleet_doctor_pairs_proxy_and_backend(chain, v6):
    """The set-up of test_races.test_proxy_races_varnish (Varnish keeps the backend's
    closed connections because the proxy namespace drops the backend's FINs; nginx's
    keepalive_timeout 1s; K requests 1.3 s apart give K - 1 races on both hosts), but
    with one agent per host and a Prometheus scraping both. The fleet doctor finds the
    races on each host with the local doctor's findings, one pair (proxy outbound to the
    backend's address and port, backend inbound from the proxy's address), nginx's 1 s
    keep-alive inferred from the backend's closes (K - 1 of them folded: the last
    connection waits in FIN_WAIT1 for an ACK that never comes), Varnish's pool idle
    timeout (60 s) never seen, and so the proxy's setting to change."""
    net = chain
    varnish = nginx = prom = None
    agents = []
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
        proxy_back = net.proxy_back_v6 if v6 else net.proxy_back_v4
        front = net.proxy_front_v6 if v6 else net.proxy_front_v4
        varnish = kw.Varnish(net, net.proxy_ns, front,
                             VARNISH_VCL.format(host=backend)).start()
        proxy_agent = kw.Agent([net.proxy_ns])
        agents.append(proxy_agent.start())
        backend_agent = kw.Agent([net.backend_ns])
        agents.append(backend_agent.start())
        proxy_host = proxy_agent.url.removeprefix("http://")
        backend_host = backend_agent.url.removeprefix("http://")
        prom = Prometheus([proxy_host, backend_host]).start()
        url = f"http://127.0.0.1:{prom.port}"

        for i in range(K):
            if i:
                time.sleep(1.3)
            out = net.run_client_in(net.client_ns, "client-close", front, "--requests", 1)
            assert_eq(f"client request {i + 1}: responses", out["responses"], 1)
        st = varnish.stat()
        assert_eq("varnish MAIN.backend_retry", st["MAIN.backend_retry"], K - 1)
        prom.wait_value(f'sum({RACES}{{instance="{proxy_host}",side="client"}})', K - 1)
        prom.wait_value(f'sum({RACES}{{instance="{backend_host}",side="server"}})', K - 1)
        prom.wait_value(f'sum(keepwatch_connections_closed_total{{instance="{backend_host}"}})',
                        K - 1)
        prom.wait_value(f'count(keepwatch_netns_address_info{{instance="{backend_host}",'
                        f'address="{backend}"}})', 1)

        p = doctor(url, "-j", "--selector", '{job="keepwatch"}')
        assert_eq("doctor -j exit status", p.returncode, 0)
        doc = json.loads(p.stdout)
        hosts = {h["instance"]: h for h in doc["hosts"]}
        assert_eq("hosts", sorted(hosts), sorted([proxy_host, backend_host]))

        # each host, diagnosed by the agent's own rules
        px = hosts[proxy_host]
        out_up = upstream(px, "outbound", backend, 80)
        assert_eq("proxy outbound netns", out_up["netns"], net.proxy_ns)
        # request_cap too: each raced connection carried 2 requests (the one answered and
        # the one that met the reset) and the backend closed it; the agent says the same
        assert_eq("proxy outbound findings", findings(out_up),
                  ["upstream_closes_before_pool", "request_cap"])
        assert_eq("proxy outbound severity", out_up["findings"][0]["severity"], "critical")
        assert_eq("proxy outbound connections", out_up["reuse"]["connections"], K)
        assert_eq("proxy outbound timeouts", out_up["timeouts"], {"local": None, "peer": None})
        in_front = upstream(px, "inbound", net.client_v6 if v6 else net.client_v4, 80)
        assert_eq("proxy inbound findings", findings(in_front), [])
        assert_eq("proxy upstreams shown", len(px["upstreams"]), 2)
        bk = hosts[backend_host]
        in_up = upstream(bk, "inbound", proxy_back, 80)
        assert_eq("backend inbound netns", in_up["netns"], net.backend_ns)
        assert_eq("backend inbound findings", findings(in_up), ["keepalive_shorter_than_lb"])
        assert_eq("backend inbound severity", in_up["findings"][0]["severity"], "critical")
        assert_eq("backend upstreams shown", len(bk["upstreams"]), 1)
        ka = in_up["timeouts"]["local"]
        assert_eq("backend keep-alive", (ka["seconds"], ka["exact"], ka["samples"],
                                         ka["confidence"]), (1, True, K - 1, "medium"))
        # what /metrics does not carry is unknown, not 0
        assert_eq("single-use idle", in_up["reuse"]["single_use_idle_seconds"],
                  {"local": None, "peer": None})

        # one implementation: each agent's own doctor finds the same, upstream by upstream
        for a, host in ((proxy_agent, px), (backend_agent, bk)):
            local = json.loads(a.get("/api/v1/doctor")[1])
            assert_eq(f"{host['instance']}: the agent's findings",
                      [(u["direction"], u["peer"], u["port"], findings(u))
                       for u in local["upstreams"]],
                      [(u["direction"], u["peer"], u["port"], findings(u))
                       for u in host["upstreams"]])
            assert_eq(f"{host['instance']}: the agent's timeouts",
                      [u["timeouts"] for u in local["upstreams"]],
                      [u["timeouts"] for u in host["upstreams"]])

        # the pair
        assert_eq("pairs", len(doc["pairs"]), 1)
        pair = doc["pairs"][0]
        assert_eq("pair proxy end", {k: pair["proxy"][k] for k in
                                     ("instance", "netns", "peer", "port", "races")},
                  {"instance": proxy_host, "netns": net.proxy_ns, "peer": backend,
                   "port": 80, "races": K - 1})
        assert_eq("pair backend end", {k: pair["backend"][k] for k in
                                       ("instance", "netns", "peer", "port", "races")},
                  {"instance": backend_host, "netns": net.backend_ns, "peer": proxy_back,
                   "port": 80, "races": K - 1})
        assert_eq("pool idle timeout", pair["proxy"]["pool_idle_timeout"], None)
        assert_eq("backend keep-alive", pair["backend"]["keepalive_timeout"], ka)
        assert_eq("verdict", pair["verdict"], "misaligned")
        assert_eq("change: host", (pair["change"]["instance"], pair["change"]["role"]),
                  (proxy_host, "proxy"))
        assert "below the backend's keep-alive timeout of 1 s" in pair["change"]["fix"], \
            pair["change"]["fix"]

        # the same as text
        p = doctor(url)
        assert_eq("doctor exit status", p.returncode, 0)
        text = p.stdout
        for want in (f"== host {proxy_host} ==", f"== host {backend_host} ==",
                     "== pairs: proxy outbound <-> backend inbound (1) ==",
                     "  pool idle timeout (proxy):  not seen (no idle close)",
                     "  keep-alive (backend):       1 s (medium confidence)",
                     f"  races: {K - 1} at the proxy (client side), {K - 1} at the backend "
                     "(server side)",
                     "  MISALIGNED: the backend closes idle connections after 1 s",
                     f"    change on {proxy_host} (the proxy):",
                     "  CRITICAL: 3 keep-alive races: the backend reset requests"):
            assert want in text, f"{want!r} not in:\n{text}"

        # bad input: a selector Prometheus rejects, one that matches nothing
        for args, why in (((["--selector", '{job=~"("}']), "answered HTTP 400: "),
                          ((["--selector", '{job="nothing"}']), "no keepwatch series")):
            p = doctor(url, *args)
            assert_eq(f"{args}: exit status", p.returncode, 1)
            assert why in p.stderr, f"{args}: {why!r} not in {p.stderr!r}"
            p = doctor(url, "-j", *args)
            assert_eq(f"{args} -j: exit status", p.returncode, 1)
            assert why in json.loads(p.stdout)["error"], p.stdout
    finally:
        if prom is not None:
            prom.stop()
        for a in agents:
            a.stop()
        if varnish is not None:
            varnish.remove()
        if nginx is not None:
            nginx.remove()


def test_fleet_doctor_unreachable():
    """No Prometheus at the URL: a clear error, exit status 1, JSON with -j; a selector
    without --prometheus and a PEER with it are usage errors."""
    url = f"http://127.0.0.1:{kw.free_port()}"
    p = doctor(url)
    assert_eq("exit status", p.returncode, 1)
    assert f"cannot reach Prometheus at {url}" in p.stderr, p.stderr
    p = doctor(url, "-j")
    assert_eq("-j exit status", p.returncode, 1)
    assert f"cannot reach Prometheus at {url}" in json.loads(p.stdout)["error"], p.stdout
    p = kw.cli("doctor", "--selector", '{job="x"}')
    assert_eq("--selector alone: exit status", p.returncode, 2)
    assert "--selector goes with --prometheus" in p.stderr, p.stderr
    p = doctor(url, "10.0.0.2")
    assert_eq("PEER with --prometheus: exit status", p.returncode, 2)
