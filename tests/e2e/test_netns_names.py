# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Namespace names as labels: a name under /var/run/netns is any bytes but '/' and NUL.
One that is not UTF-8, or holds control characters, is shown with \\xNN escapes in
/metrics, the JSON API and the CLI, which answer 200 with valid UTF-8 (they answered 500
with an empty body, and /metrics wrote the raw byte into its labels)."""

import json

import kw
from kw import assert_eq

P = "keepwatch_"
RST_SENT = P + "resets_sent_total"
RST_RCVD = P + "resets_received_total"


class OddNamePair(kw.NetnsPair):
    """A NetnsPair whose server namespace's name has byte 0xff and an ESC in it (Python
    passes the lone surrogate U+DCFF to ip(8) as the byte 0xff)."""

    def __init__(self):
        super().__init__()
        tag = self.server_ns[len("kws-"):]
        self.server_ns = f"kws-\udcff\x1b-{tag}"
        # the label the agent makes of it: each byte escaped, as lower-case \xNN
        self.server_label = f"kws-\\xff\\x1b-{tag}"


def test_netns_name_not_utf8():
    net = OddNamePair()
    agent = server = None
    try:
        net.create()
        agent = kw.Agent([net.client_ns, net.server_ns]).start()
        server = kw.PyServer(net, "linger0", conns=1).start()
        out = net.run_client("reset-wait", "--requests", 1, "--wait", 3)
        assert_eq("client: how the connection ended", out["end"], "ECONNRESET")
        server.result()
        inbound, outbound = kw.sides(net, False)
        inbound["netns"] = net.server_label
        agent.wait_all([(RST_SENT, inbound, 1), (RST_RCVD, outbound, 1)])

        # /metrics: valid UTF-8, the name escaped once more as a label value ("\\xff")
        _, body = agent.get("/metrics")
        text = body.decode("utf-8")  # raises on invalid UTF-8
        assert "\\\\xff\\\\x1b" in text and "\x1b" not in text, \
            [ln for ln in text.splitlines() if "kws-" in ln][:5]
        assert_eq("inbound resets sent under the escaped name",
                  agent.value(RST_SENT, **inbound), 1)

        # the JSON API: 200, UTF-8 JSON, the escaped name in the namespace's entries
        for path in ("/api/v1/upstreams", "/api/v1/events", "/api/v1/doctor"):
            status, _, body = agent.request("GET", path)
            assert_eq(f"GET {path} status ({body[:200]!r})", status, 200)
            doc = json.loads(body.decode("utf-8"))
            rows = doc["events" if path.endswith("events") else "upstreams"]
            # "other": the overflow record, always there in the upstreams
            names = sorted({r["netns"] for r in rows} - {"other"})
            assert_eq(f"{path}: namespaces", names, sorted([net.client_ns, net.server_label]))
        events = json.loads(agent.get("/api/v1/events")[1])["events"]
        got = sorted((e["type"], e["netns"]) for e in events)
        assert_eq("events (type, netns)", got,
                  [("reset_received", net.client_ns), ("reset_sent", net.server_label)])

        # the CLI prints the label as the agent wrote it (its column may be cut)
        p = kw.cli("--agent", agent.url, "upstreams")
        assert_eq(f"keepwatch upstreams exit status\n{p.stderr}", p.returncode, 0)
        assert "kws-\\xff\\x1b-" in p.stdout, p.stdout
    finally:
        if agent is not None:
            agent.stop()
        net.destroy()
