# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""--web.config.file: TLS with a certificate of the test's own CA (openssl), basic
authentication with bcrypt hashes (htpasswd), checked with real clients: curl, and a real
Prometheus scraping over TLS with basic auth; bad files stop the agent before it loads
anything, with a message that names the problem.
"""

import os
import shutil
import subprocess
import tempfile

import pytest

import kw
from kw import assert_eq
from test_prometheus import Prometheus

USER, PASSWORD = "prometheus", "s3cret pass"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def webdir():
    """A CA, a server certificate for 127.0.0.1 and localhost signed by it, a bcrypt hash
    of PASSWORD, and web.yml naming them (relative paths: from the file's folder)."""
    d = tempfile.mkdtemp(prefix="kw-web-")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=keepwatch test CA", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext", cwd=d)
    line = subprocess.run(["htpasswd", "-nbBC", "10", USER, PASSWORD], check=True,
                          capture_output=True, text=True, timeout=30).stdout.strip()
    bcrypt = line.split(":", 1)[1]
    assert bcrypt.startswith("$2y$10$"), f"htpasswd: actual {line!r}, expected a bcrypt hash"
    with open(os.path.join(d, "web.yml"), "w") as f:
        f.write("tls_server_config:\n"
                "  cert_file: server.pem\n"
                "  key_file: server.key\n"
                "  min_version: TLS12\n"
                "basic_auth_users:\n"
                f"  {USER}: '{bcrypt}'\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tls_agent(netns, webdir):
    a = kw.Agent([netns.client_ns, netns.server_ns],
                 extra_args=("--web.config.file", os.path.join(webdir, "web.yml")),
                 tls_ca=os.path.join(webdir, "ca.pem"), auth=(USER, PASSWORD))
    try:
        a.start()
        yield a
    finally:
        a.stop()


def curl(*args):
    """(exit status, HTTP status, body) of curl; the status is 0 when no answer came."""
    p = subprocess.run(["curl", "-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}",
                        *args], capture_output=True, text=True, timeout=20)
    body, _, code = p.stdout.rpartition("\n")
    return p.returncode, int(code or 0), body


def test_curl_over_tls_with_basic_auth(tls_agent, webdir):
    ca = os.path.join(webdir, "ca.pem")
    url = f"https://127.0.0.1:{tls_agent.port}"
    good = f"{USER}:{PASSWORD}"

    rc, status, body = curl("--cacert", ca, "-u", good, url + "/healthz")
    assert_eq("right password: curl exit, status, body", (rc, status, body), (0, 200, "ok\n"))
    # a real scrape: the page parses, and says what the agent is
    rc, status, body = curl("--cacert", ca, "-u", good, url + "/metrics")
    assert_eq("/metrics over TLS: curl exit, status", (rc, status), (0, 200))
    samples = kw.parse_prometheus(body)
    assert_eq("keepwatch_build_info series", len(kw.select(samples, "keepwatch_build_info")), 1)

    unauthorized = '{"error":"unauthorized"}\n'
    for what, auth in (("wrong password", ["-u", f"{USER}:wrong"]),
                       ("unknown user", ["-u", f"nobody:{PASSWORD}"]),
                       ("password with a suffix", ["-u", f"{good}x"]),
                       ("no credentials", [])):
        for path in ("/metrics", "/healthz", "/api/v1/upstreams", "/nope"):
            rc, status, body = curl("--cacert", ca, *auth, url + path)
            assert_eq(f"{what}, {path}: curl exit, status, body", (rc, status, body),
                      (0, 401, unauthorized))
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--cacert", ca,
                        url + "/metrics"], capture_output=True, text=True, timeout=20)
    assert 'WWW-Authenticate: Basic realm="keepwatch"' in p.stdout, \
        f"401 headers: actual {p.stdout!r}, expected a WWW-Authenticate for Basic"

    # the certificate is checked: without the test's CA, curl refuses it (60)
    rc, status, _ = curl("-u", good, url + "/healthz")
    assert_eq("without the CA: curl exit, status", (rc, status), (60, 0))
    # plain HTTP on the TLS port gets no answer (curl 52: empty reply)
    rc, status, _ = curl("-u", good, f"http://127.0.0.1:{tls_agent.port}/healthz")
    assert_eq("plain HTTP: curl exit, status", (rc, status), (52, 0))
    # TLS 1.1 is below min_version
    rc, status, _ = curl("--cacert", ca, "-u", good, "--tlsv1.1", "--tls-max", "1.1",
                         url + "/healthz")
    assert_eq("TLS 1.1: HTTP status", status, 0)
    assert rc != 0, "TLS 1.1: curl succeeded, expected a failed handshake"
    # still serving
    assert_eq("/healthz at the end", tls_agent.get("/healthz")[1], b"ok\n")


def test_cli_against_tls_agent(tls_agent, webdir):
    """The CLI with KEEPWATCH_CACERT and KEEPWATCH_USER; without them, a clear error."""
    env = dict(os.environ, KEEPWATCH_AGENT=tls_agent.url,
               KEEPWATCH_CACERT=os.path.join(webdir, "ca.pem"),
               KEEPWATCH_USER=f"{USER}:{PASSWORD}")
    p = subprocess.run([str(kw.KEEPWATCH), "upstreams", "-j"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert_eq("keepwatch upstreams -j over TLS: exit status", p.returncode, 0)
    assert '"upstreams"' in p.stdout, f"stdout: {p.stdout!r}"
    env["KEEPWATCH_USER"] = f"{USER}:wrong"
    p = subprocess.run([str(kw.KEEPWATCH), "upstreams"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert_eq("wrong password: exit status", p.returncode, 1)
    want = f"the agent at {tls_agent.url} answered HTTP 401 for /api/v1/upstreams: unauthorized"
    assert want in p.stderr, f"stderr: actual {p.stderr!r}, expected to contain {want!r}"


def test_prometheus_scrapes_over_tls_with_basic_auth(netns, nginx, tls_agent, webdir):
    ca = os.path.join(webdir, "ca.pem")
    job = (f"    scheme: https\n"
           f"    tls_config:\n      ca_file: {ca}\n"
           f"    basic_auth:\n      username: {USER}\n      password: '{PASSWORD}'\n"
           f"  - job_name: wrong-password\n"
           f"    scheme: https\n"
           f"    tls_config:\n      ca_file: {ca}\n"
           f"    basic_auth:\n      username: {USER}\n      password: wrong\n"
           f"    static_configs:\n      - targets: [\"127.0.0.1:{tls_agent.port}\"]\n")
    prom = Prometheus(f"127.0.0.1:{tls_agent.port}", job=job)
    try:
        prom.start()
        netns.run_client("keepalive", "--requests", "5")
        prom.wait_value('up{job="keepwatch"}', 1.0)
        prom.wait_value('up{job="wrong-password"}', 0.0)
        prom.wait_value('sum(keepwatch_requests_total{job="keepwatch",direction="inbound"})',
                        5.0)
        prom.wait_value('keepwatch_build_info{job="keepwatch"}', 1.0)
    finally:
        prom.stop()


def start_fails(args):
    """keepwatchd with args: its exit status and output (it must stop before BPF)."""
    kw.require_binary(kw.KEEPWATCHD)
    p = subprocess.run([str(kw.KEEPWATCHD), "--no-pin", "--listen",
                        f"127.0.0.1:{kw.free_port()}", *args],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def test_bad_web_config_stops_the_start(webdir, tmp_path):
    cases = [
        ("tls_server_config:\n  cert_file: server.pem\n  key_fil: server.key\n",
         "line 3: unknown key 'key_fil' in tls_server_config"),
        ("basic_auth_users:\n  alice: secret\n",
         "line 2: basic_auth_users: the password of 'alice' is not a bcrypt hash"),
        (f"tls_server_config:\n  cert_file: {webdir}/missing.pem\n"
         f"  key_file: {webdir}/server.key\n",
         f"tls_server_config: cert_file {webdir}/missing.pem: No such file or directory"),
        (f"tls_server_config:\n  cert_file: {webdir}/server.key\n"
         f"  key_file: {webdir}/server.pem\n",
         "tls_server_config: the key and certificate: "),
    ]
    for text, want in cases:
        path = tmp_path / "web.yml"
        path.write_text(text)
        rc, out = start_fails(["--web.config.file", str(path)])
        assert_eq(f"{text!r}: exit status", rc, 1)
        assert want in out, f"{text!r}: output {out!r}, expected to contain {want!r}"
        assert "attached" not in out, f"{text!r}: BPF was loaded before the config failed"
    rc, out = start_fails(["--web.config.file", str(tmp_path / "none.yml")])
    assert_eq("missing file: exit status", rc, 1)
    assert f"--web.config.file {tmp_path}/none.yml: No such file or directory" in out, out
