# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""A real Prometheus (Debian's) scrapes the agent with the shipped rules loaded, and
PromQL queries return exactly what the traffic was: the metrics, as a fleet sees them.
"""

import json
import re
import os
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import kw
from kw import assert_eq, sides

DEPLOY = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "deploy")


class Prometheus:
    """prometheus on 127.0.0.1, scraping the agent (or each of a list of agents) every
    second, rules from tools/deploy; job adds lines to the scrape job (scheme, tls_config,
    basic_auth)."""

    def __init__(self, target, job=""):
        targets = ", ".join(f'"{t}"' for t in ([target] if isinstance(target, str) else target))
        self.dir = tempfile.mkdtemp(prefix="kw-prom-")
        self.port = kw.free_port()
        with open(os.path.join(DEPLOY, "keepwatch.rules.yml")) as f:
            rules = f.read()
        with open(os.path.join(self.dir, "keepwatch.rules.yml"), "w") as f:
            f.write(rules)
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - keepwatch.rules.yml
scrape_configs:
  - job_name: keepwatch
    static_configs:
      - targets: [{targets}]
{job}""")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.dir}/prometheus.yml",
             f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}:\n"
                                     + open(self.log.name).read()[-2000:])
            try:
                if self.api("/-/ready", raw=True):
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("prometheus not ready in 30 s:\n" + open(self.log.name).read()[-2000:])

    def api(self, path, raw=False, **params):
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def query(self, promql):
        """{labels (frozenset of items): value} of an instant query."""
        doc = self.api("/api/v1/query", query=promql)
        assert doc["status"] == "success", doc
        return {frozenset(r["metric"].items()): float(r["value"][1])
                for r in doc["data"]["result"]}

    def wait_value(self, promql, expected, timeout=20):
        """Poll until the query's one result equals expected; fail with actual vs expected."""
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.query(promql)
            if len(got) == 1 and list(got.values())[0] == expected:
                return
            time.sleep(0.5)
        raise AssertionError(f"{promql}: actual {got}, expected one series = {expected}")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        subprocess.run(["rm", "-rf", self.dir], check=False)


def test_prometheus_scrapes_exact_values(netns, nginx, agent):
    """1, then 2 more connections x 10 requests to nginx; Prometheus, scraping the agent,
    answers PromQL with the exact counts on both ends, its target up, the rules loaded,
    and the reuse ratio recorded over the second phase: 18 reused of 20 requests."""
    prom = Prometheus(agent.url.removeprefix("http://")).start()
    try:
        inbound, outbound = sides(netns, False)

        def sel(labels):
            return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"

        prom.wait_value('up{job="keepwatch"}', 1)
        out = netns.run_client("keepalive", "--conns", 1, "--requests", 10)
        assert_eq("client requests, first phase", out["requests"], 10)
        prom.wait_value("keepwatch_requests_total" + sel(inbound), 10)
        out = netns.run_client("keepalive", "--conns", 2, "--requests", 10)
        assert_eq("client requests, second phase", out["requests"], 20)
        for labels in (inbound, outbound):
            prom.wait_value("keepwatch_connections_opened_total" + sel(labels), 3)
            prom.wait_value("keepwatch_requests_total" + sel(labels), 30)
            prom.wait_value("keepwatch_requests_reused_total" + sel(labels), 27)
            prom.wait_value("sum(keepwatch_connections_closed_total" + sel(labels) + ")", 3)
            prom.wait_value("keepwatch_connections_active" + sel(labels), 0)
        # Both counters' rates share their samples' times, so the recorded ratio is the
        # ratio of their increases since their first samples: 18 / 20 when the first
        # scrape came after the first phase (as is likely), in any case what Prometheus
        # holds; checked to float precision.
        first = {}
        for name in ("keepwatch_requests_reused_total", "keepwatch_requests_total"):
            doc = prom.api("/api/v1/query", query=name + sel(inbound) + "[5m]")
            first[name] = float(doc["data"]["result"][0]["values"][0][1])
        want = (27 - first["keepwatch_requests_reused_total"]) / \
            (30 - first["keepwatch_requests_total"])
        prom.wait_value(f"round(keepwatch:reuse_ratio:rate5m{sel(inbound)}, 0.0001)",
                        round(want, 4))
        rules = prom.api("/api/v1/rules")
        names = sorted(r.get("name", "") for g in rules["data"]["groups"] for r in g["rules"])
        assert_eq("rules loaded", len(names), 10)
    finally:
        prom.stop()


# --- the Grafana dashboard ---------------------------------------------------------------

DASHBOARD = os.path.join(DEPLOY, "keepwatch-dashboard.json")
QUESTIONS = ("Reuse", "Closes", "Keep-alive races", "Resets", "TIME_WAIT", "The agent")


def dashboard_queries():
    """(panel title, PromQL with the dashboard's variables set to match everything)."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"].replace("$instance", ".*").replace("$port", ".*")
            out.append((p["title"], expr))
    return out


def test_dashboard_structure():
    """One row per question, in order, each with its panels; every panel queries
    Prometheus through the dashboard's datasource variable, has a unique id and a place
    of its own on the grid, and uses only keepwatch's metric families or recording
    rules."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    assert_eq("dashboard uid", dash["uid"], "keepwatch")
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert_eq("rows", len(rows), len(QUESTIONS))
    for row, question in zip(rows, QUESTIONS):
        assert row.startswith(question), f"row {row!r}: expected it to start with {question!r}"
    ids = [p["id"] for p in dash["panels"]]
    assert_eq("unique panel ids", len(set(ids)), len(ids))
    cells = set()
    current = None
    per_row = {}
    for p in dash["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']!r} overlaps another at {x},{y}"
                cells.add((x, y))
        assert g["x"] + g["w"] <= 24, f"panel {p['title']!r} is wider than the grid"
        if p["type"] == "row":
            current = p["title"]
            per_row[current] = 0
            continue
        per_row[current] += 1
        assert_eq(f"{p['title']}: datasource", p["datasource"]["uid"], "${datasource}")
        assert p.get("targets"), f"panel {p['title']!r} has no query"
    for row, n in per_row.items():
        assert n >= 2, f"row {row!r}: {n} panels, expected at least 2"
    families = set(re.findall(r"`(keepwatch_[a-z_]+)`",
                              kw.run([str(kw.KEEPWATCHD), "--metrics-doc"]).stdout))
    with open(os.path.join(DEPLOY, "keepwatch.rules.yml")) as f:
        records = set(re.findall(r"record: (\S+)", f.read()))
    for title, expr in dashboard_queries():
        for name in re.findall(r"\b(keepwatch[:_][a-z0-9_:]+)", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in families or name in records, \
                f"panel {title!r}: {name} is neither a keepwatch metric nor a recording rule"


def test_dashboard_queries_run(netns, nginx, agent):
    """Every query of the dashboard is valid PromQL for a real Prometheus scraping the
    agent, and the reuse row shows the traffic."""
    prom = Prometheus(agent.url.removeprefix("http://")).start()
    try:
        prom.wait_value('up{job="keepwatch"}', 1)
        netns.run_client("keepalive", "--conns", 2, "--requests", 5)
        prom.wait_value("sum(keepwatch_requests_total)", 20)
        for title, expr in dashboard_queries():
            doc = prom.api("/api/v1/query", query=expr)
            assert_eq(f"panel {title!r}: query status", doc["status"], "success")
    finally:
        prom.stop()
