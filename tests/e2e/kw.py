# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Test bed for the end-to-end tests: network namespaces, nginx, the agent, the CLI.

Standard library only. Every wait is bounded in time; every process started here is
stopped at teardown, and every namespace created here is deleted, even on failure.
"""

import base64
import ipaddress
import json
import os
import re
import select as select_mod  # kw.select() is the metric selector
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The binaries under test: build/ unless $KW_BUILD names another output folder (make OUT=...).
BUILD = Path(os.environ.get("KW_BUILD") or REPO / "build")
KEEPWATCHD = BUILD / "keepwatchd"
KEEPWATCH = BUILD / "keepwatch"
PYTHON = "/usr/bin/python3"  # Debian's, not the first python3 on PATH
CLIENT = Path(__file__).resolve().with_name("client.py")
NGINX = "/usr/sbin/nginx"

NS_PREFIXES = ("kwc", "kwp", "kws")  # client, proxy, server (backend)
_ns_counter = 0


def run(cmd, timeout=30, check=True, input=None):
    """Run a command, capture text output; on failure raise with its output."""
    try:
        p = subprocess.run([str(c) for c in cmd], input=input, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(map(str, cmd))}: timed out after {timeout}s\n"
                             f"stdout: {e.stdout}\nstderr: {e.stderr}") from None
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))}: exit {p.returncode}\n"
                             f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def stop_process(p, timeout=5.0):
    """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit status."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return p.returncode


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_netns_pids(ns):
    """Kill every process left in a namespace we own (TERM, then KILL), bounded."""
    p = run(["ip", "netns", "pids", ns], check=False)
    pids = [int(x) for x in p.stdout.split()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(_pid_alive(x) for x in pids):
            time.sleep(0.05)
        pids = [x for x in pids if _pid_alive(x)]
        if not pids:
            return


def delete_netns(ns):
    kill_netns_pids(ns)
    run(["ip", "netns", "del", ns], check=False)


def cleanup_stale_netns():
    """Delete kwc-/kwp-/kws-<pid>-<n> namespaces left by test sessions that no longer run."""
    p = run(["ip", "netns", "list"], check=False)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(r"(kwc|kwp|kws)-(\d+)-(\d+)", name)
        if m and int(m.group(2)) != os.getpid() and not _pid_alive(int(m.group(2))):
            delete_netns(name)


# --- network namespaces -----------------------------------------------------------------

def _next_tag():
    """(index 1..250 for addresses, unique tag for names) of a new namespace set."""
    global _ns_counter
    _ns_counter += 1
    return (_ns_counter - 1) % 250 + 1, f"{os.getpid()}-{_ns_counter}"


class Namespaces:
    """Named network namespaces this test created, and commands inside them."""

    def __init__(self):
        self.procs = []
        self.created = []

    def add_ns(self, name):
        run(["ip", "netns", "add", name])
        self.created.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def link(self, a, b, dev_a, dev_b, v4=None, v6=None, mac=None):
        """A veth pair between namespaces a and b: dev_a in a, dev_b in b, with addresses
        (a's, b's) and MAC addresses (a's, b's), and permanent neighbour entries both ways
        (see NetnsPair for why)."""
        (a4, b4), (a6, b6), (amac, bmac) = v4, v6, mac
        steps = [
            ["ip", "-n", a, "link", "add", dev_a, "address", amac, "type", "veth",
             "peer", "name", dev_b, "address", bmac, "netns", b],
            ["ip", "-n", a, "addr", "add", f"{a4}/24", "dev", dev_a],
            ["ip", "-n", b, "addr", "add", f"{b4}/24", "dev", dev_b],
            ["ip", "-n", a, "addr", "add", f"{a6}/64", "dev", dev_a, "nodad"],
            ["ip", "-n", b, "addr", "add", f"{b6}/64", "dev", dev_b, "nodad"],
            ["ip", "-n", a, "link", "set", dev_a, "up"],
            ["ip", "-n", b, "link", "set", dev_b, "up"],
        ]
        for ns, dev, addrs, lladdr in ((a, dev_a, (b4, b6), bmac), (b, dev_b, (a4, a6), amac)):
            for addr in addrs:
                steps.append(["ip", "-n", ns, "neigh", "replace", addr, "lladdr", lladdr,
                              "dev", dev, "nud", "permanent"])
        for cmd in steps:
            run(cmd)

    def destroy(self):
        for p in self.procs:
            stop_process(p, timeout=3)
        for ns in self.created:
            delete_netns(ns)
        self.created = []

    # commands inside a namespace

    def exec(self, ns, cmd, timeout=30, check=True, input=None):
        return run(["ip", "netns", "exec", ns, *cmd], timeout=timeout, check=check, input=input)

    def spawn(self, ns, cmd, **kw):
        """Start a background process in `ns`; it is stopped at teardown."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(["ip", "netns", "exec", ns, *map(str, cmd)], **kw)
        self.procs.append(p)
        return p

    def sysctl(self, ns, settings):
        """Set sysctls in `ns`: sysctl(ns, {"net.ipv4.tcp_fin_timeout": 1})."""
        for k, v in settings.items():
            self.exec(ns, ["sysctl", "-q", "-w", f"{k}={v}"])

    def nft(self, ns, script):
        """Load an nftables ruleset (nft -f -) into `ns`."""
        self.exec(ns, ["nft", "-f", "-"], input=script)

    def nstat(self, ns):
        """Absolute SNMP/netstat counters of `ns` (nstat -a: no history file is touched)."""
        p = self.exec(ns, ["nstat", "--ignore", "--zeros", "--noupdate", "--json"])
        return json.loads(p.stdout)["kernel"]

    def ss(self, ns, *args):
        return self.exec(ns, ["ss", "-H", *args]).stdout

    def tcp_states(self, ns):
        """{state: count} of TCP sockets in `ns` (ss -tan, listeners included)."""
        counts = {}
        for line in self.ss(ns, "-tan").splitlines():
            if line.strip():
                st = line.split()[0]
                counts[st] = counts.get(st, 0) + 1
        return counts

    def wait_states(self, ns, want, timeout=5, port=None):
        """Poll until the TCP states of `ns` (only sockets with `port` at either end,
        if given; listeners left out) are exactly `want` ({state: n}); fail with the last
        seen otherwise. Returns the states."""
        deadline = time.monotonic() + timeout
        while True:
            counts = {}
            for line in self.ss(ns, "-tan").splitlines():
                f = line.split()
                if len(f) < 5 or f[0] == "LISTEN":
                    continue
                if port is not None and not (f[3].endswith(f":{port}") or
                                             f[4].endswith(f":{port}")):
                    continue
                counts[f[0]] = counts.get(f[0], 0) + 1
            if counts == want:
                return counts
            if time.monotonic() >= deadline:
                raise AssertionError(f"TCP states in {ns}: actual {counts}, expected {want} "
                                     f"(waited {timeout}s)")
            time.sleep(0.02)

    def sockstat(self, ns):
        """/proc/net/sockstat of `ns` as {"TCP": {"inuse": n, "tw": n, ...}, ...}."""
        text = self.exec(ns, ["cat", "/proc/net/sockstat"]).stdout
        out = {}
        for line in text.splitlines():
            proto, _, rest = line.partition(":")
            f = rest.split()
            out[proto] = {f[i]: int(f[i + 1]) for i in range(0, len(f) - 1, 2)}
        return out

    def client_cmd(self, mode, host, *args):
        return [PYTHON, str(CLIENT), mode, "--host", host, *map(str, args)]

    def run_client_in(self, ns, mode, host, *args, check=True, timeout=60):
        """Run tests/e2e/client.py in `ns`; return its JSON summary."""
        p = self.exec(ns, self.client_cmd(mode, host, *args), timeout=timeout, check=False)
        try:
            out = json.loads(p.stdout)
        except ValueError:
            raise AssertionError(f"client {mode}: exit {p.returncode}, no JSON\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}") from None
        if check and p.returncode != 0:
            raise AssertionError(f"client {mode}: exit {p.returncode}: {out}\n{p.stderr}")
        return out


class NetnsPair(Namespaces):
    """Two namespaces joined by a veth pair.

    client: 10.77.N.1/24, fd77:N::1/64     server: 10.77.N.2/24, fd77:N::2/64

    Each side knows the other's MAC address from a permanent neighbour entry, so no ARP
    or neighbour discovery happens. The kernel's neighbour tables are shared by all
    namespaces, and resolved entries count against one gc_thresh3 (1024 by default):
    anything else on the host that talks to many peers (a benchmark with 10,000 client
    addresses did) fills them, and then our ARP fails ("neighbor table overflow",
    connect() times out or gets EHOSTUNREACH). Permanent entries are exempt from that
    limit.
    """

    def __init__(self):
        super().__init__()
        self.index, tag = _next_tag()
        self.client_ns = f"kwc-{tag}"
        self.server_ns = f"kws-{tag}"
        n = self.index
        self.client_v4 = f"10.77.{n}.1"
        self.server_v4 = f"10.77.{n}.2"
        self.client_v6 = ipaddress.ip_address(f"fd77:{n}::1").compressed
        self.server_v6 = ipaddress.ip_address(f"fd77:{n}::2").compressed
        self.client_mac = f"02:77:00:00:{n:02x}:01"
        self.server_mac = f"02:77:00:00:{n:02x}:02"

    def client_addr(self, v6=False):
        return self.client_v6 if v6 else self.client_v4

    def server_addr(self, v6=False):
        return self.server_v6 if v6 else self.server_v4

    def create(self):
        for ns in (self.client_ns, self.server_ns):
            self.add_ns(ns)
        self.link(self.client_ns, self.server_ns, "veth0", "veth0",
                  v4=(self.client_v4, self.server_v4), v6=(self.client_v6, self.server_v6),
                  mac=(self.client_mac, self.server_mac))
        return self

    def run_client(self, mode, *args, v6=False, host=None, check=True, timeout=60):
        """Run tests/e2e/client.py in the client namespace; return its JSON summary."""
        return self.run_client_in(self.client_ns, mode, host or self.server_addr(v6), *args,
                                  check=check, timeout=timeout)


class NetnsChain(Namespaces):
    """Three namespaces in a row: client -- proxy -- backend, two veth pairs, no routing
    (the proxy terminates connections: the client only talks to the proxy, the proxy to
    the backend).

    client veth0 10.78.N.1, fd78:N::1  <->  proxy veth0 10.78.N.2, fd78:N::2
    proxy  veth1 10.79.N.1, fd79:N::1  <->  backend veth0 10.79.N.2, fd79:N::2

    server_ns is the backend, so that Nginx and Apache run there unchanged.
    """

    def __init__(self):
        super().__init__()
        self.index, tag = _next_tag()
        n = self.index
        self.client_ns, self.proxy_ns, self.server_ns = (f"kwc-{tag}", f"kwp-{tag}",
                                                         f"kws-{tag}")
        self.backend_ns = self.server_ns
        v6 = lambda net, h: ipaddress.ip_address(f"fd{net}:{n}::{h}").compressed  # noqa: E731
        self.client_v4, self.proxy_front_v4 = f"10.78.{n}.1", f"10.78.{n}.2"
        self.proxy_back_v4, self.backend_v4 = f"10.79.{n}.1", f"10.79.{n}.2"
        self.client_v6, self.proxy_front_v6 = v6(78, 1), v6(78, 2)
        self.proxy_back_v6, self.backend_v6 = v6(79, 1), v6(79, 2)

    def create(self):
        n = self.index
        for ns in (self.client_ns, self.proxy_ns, self.backend_ns):
            self.add_ns(ns)
        self.link(self.client_ns, self.proxy_ns, "veth0", "veth0",
                  v4=(self.client_v4, self.proxy_front_v4),
                  v6=(self.client_v6, self.proxy_front_v6),
                  mac=(f"02:78:00:00:{n:02x}:01", f"02:78:00:00:{n:02x}:02"))
        self.link(self.proxy_ns, self.backend_ns, "veth1", "veth0",
                  v4=(self.proxy_back_v4, self.backend_v4),
                  v6=(self.proxy_back_v6, self.backend_v6),
                  mac=(f"02:79:00:00:{n:02x}:01", f"02:79:00:00:{n:02x}:02"))
        return self


class ControlledClient:
    """tests/e2e/client.py race --control, running in the background in `ns`: it makes its
    first requests, says it is ready, and sends its second requests when told to go, so
    that the test can set the scene (wait for states, stop a server) in between."""

    def __init__(self, net, ns, host, *args):
        self.mode = "race"
        self.proc = net.spawn(ns, net.client_cmd("race", host, "--control", *args),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def _fail(self, why):
        stop_process(self.proc, timeout=2)
        out, err = self.proc.communicate()
        raise AssertionError(f"client race: {why}\nstdout: {out}\nstderr: {err}")

    def wait_ready(self, timeout=10):
        r, _, _ = select_mod.select([self.proc.stdout], [], [], timeout)
        if not r:
            self._fail(f"not ready after {timeout}s")
        line = self.proc.stdout.readline()
        try:
            doc = json.loads(line)
        except ValueError:
            doc = {}
        if "ready" not in doc:
            self._fail(f"expected a ready line, got {line!r}")
        return doc

    def go(self, delay):
        self.proc.stdin.write(f"go {delay}\n")
        self.proc.stdin.flush()

    def result(self, timeout=30, check=True):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._fail(f"no result within {timeout}s")
        lines = out.strip().splitlines()
        try:
            doc = json.loads(lines[-1])
        except (ValueError, IndexError):
            raise AssertionError(f"client race: exit {self.proc.returncode}, no JSON\n"
                                 f"stdout: {out}\nstderr: {err}") from None
        if check and self.proc.returncode != 0:
            raise AssertionError(f"client race: exit {self.proc.returncode}: {doc}\n{err}")
        return doc


# --- nginx ----------------------------------------------------------------------------

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format kw '$connection $connection_requests $remote_addr $status';
    access_log {dir}/access.log kw;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_timeout {keepalive_timeout};
    keepalive_requests {keepalive_requests};
{http_extra}
    server {{
        listen {port};
        listen [::]:{port};
{server_extra}
        location / {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, net, keepalive_timeout="1s", keepalive_requests=1000, port=80,
                 http_extra="", server_extra=""):
        self.net = net
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="kw-nginx-")
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, port=port,
                                      keepalive_timeout=keepalive_timeout,
                                      keepalive_requests=keepalive_requests,
                                      http_extra=http_extra, server_extra=server_extra))
        self.proc = None

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def served(self):
        """nginx's own count from its access log (one unbuffered line per request):
        {"connections": connections that carried a request, "requests": n,
         "per_connection": {connection serial: requests}}. Connections that closed
        without a request leave no line."""
        per_conn = {}
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                for line in f:
                    conn, n, _addr, _status = line.split()
                    per_conn[conn] = max(per_conn.get(conn, 0), int(n))
        except FileNotFoundError:
            pass
        return {"connections": len(per_conn), "requests": sum(per_conn.values()),
                "per_connection": per_conn}

    def start(self, timeout=10):
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = self.net.spawn(self.net.server_ns,
                                   [NGINX, "-p", self.dir, "-e",
                                    os.path.join(self.dir, "error.log"), "-c", self.conf],
                                   stdout=self.log, stderr=subprocess.STDOUT)
        # Ready when both listeners exist. Checked with ss, not with a request, so that no
        # connection is made that the agent could count.
        want = {f"0.0.0.0:{self.port}", f"[::]:{self.port}"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            lines = self.net.ss(self.net.server_ns, "-tln").splitlines()
            have = {ln.split()[3] for ln in lines if len(ln.split()) > 3}
            if want <= have:
                return self
            time.sleep(0.05)
        status = self.proc.poll()
        self.stop()
        with open(os.path.join(self.dir, "stderr.log")) as f:
            err = f.read()
        raise AssertionError(f"nginx in {self.net.server_ns} not listening on {sorted(want)} "
                             f"after {timeout}s (exit status {status})\n{err}\n"
                             f"{self.error_log()}")

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, timeout=5)  # SIGTERM: nginx's fast shutdown
            self.log.close()
            self.proc = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Apache ----------------------------------------------------------------------------

APACHE = "/usr/sbin/apache2"

# What Debian's apache2 needs to run from a config of its own, without apache2ctl and
# /etc/apache2/envvars: every path absolute (ServerRoot, PidFile, DefaultRuntimeDir for
# its runtime files, a file-based Mutex), the MPM and the modules loaded by hand
# (mod_log_config and mod_unixd are built in: loading them is an error), a User its
# workers switch to (the document root must be readable by www-data: mkdtemp makes 0700),
# and -DFOREGROUND so that it stays our child. "Listen 80" listens on both families.
APACHE_CONF = """\
ServerRoot {dir}
DefaultRuntimeDir {dir}
PidFile {dir}/apache2.pid
ServerName keepwatch-e2e
Listen {port}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
User www-data
Group www-data
Mutex file:{dir} default
ErrorLog {dir}/error.log
LogLevel warn
# client address and port, requests before this one on the connection, status
LogFormat "%a %{{remote}}p %k %s" kw
CustomLog {dir}/access.log kw
KeepAlive On
KeepAliveTimeout {keepalive_timeout}
MaxKeepAliveRequests {max_keepalive_requests}
StartServers 1
ServerLimit 1
ThreadsPerChild 64
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
DocumentRoot {dir}/htdocs
DirectoryIndex index.html
<Directory {dir}/htdocs>
    Require all granted
</Directory>
{extra}
"""


class Apache:
    """apache2 (mpm_event) in the server namespace with a config of its own; port 80,
    index.html is "ok\\n"."""

    def __init__(self, net, keepalive_timeout=1, max_keepalive_requests=100, port=80,
                 extra=""):
        self.net = net
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="kw-apache-")
        os.chmod(self.dir, 0o755)
        os.mkdir(os.path.join(self.dir, "htdocs"), 0o755)
        with open(os.path.join(self.dir, "htdocs", "index.html"), "w") as f:
            f.write("ok\n")
        os.chmod(os.path.join(self.dir, "htdocs", "index.html"), 0o644)
        self.conf = os.path.join(self.dir, "apache2.conf")
        with open(self.conf, "w") as f:
            f.write(APACHE_CONF.format(dir=self.dir, port=port,
                                       keepalive_timeout=keepalive_timeout,
                                       max_keepalive_requests=max_keepalive_requests,
                                       extra=extra))
        self.proc = None
        self.log = None

    def _read(self, name):
        try:
            with open(os.path.join(self.dir, name)) as f:
                return f.read()
        except OSError:
            return ""

    def served(self):
        """Apache's own count from its access log: {"connections": n, "requests": n,
        "per_connection": {"addr port": requests}} (%k counts the requests before this
        one; a connection is known by the client's address and port, which each test's
        client does not reuse within a test)."""
        per_conn = {}
        for line in self._read("access.log").splitlines():
            addr, port, k, _status = line.split()
            conn = f"{addr} {port}"
            per_conn[conn] = max(per_conn.get(conn, 0), int(k) + 1)
        return {"connections": len(per_conn), "requests": sum(per_conn.values()),
                "per_connection": per_conn}

    def start(self, timeout=10):
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = self.net.spawn(self.net.server_ns,
                                   [APACHE, "-f", self.conf, "-DFOREGROUND"],
                                   stdout=self.log, stderr=subprocess.STDOUT)
        wait_listening(self.net, self.net.server_ns, {f"*:{self.port}"}, self.proc, timeout,
                       lambda: f"apache2: {self._read('stderr.log')}\n"
                               f"{self._read('error.log')}")
        return self

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, timeout=5)  # SIGTERM: apache2 stops at once
            self.log.close()
            self.proc = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_listening(net, ns, want, proc, timeout, diagnose):
    """Wait until `ns` has listeners on every address:port of `want` (as ss -tln prints
    them); checked with ss, not a connection that the agent could count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        lines = net.ss(ns, "-tln").splitlines()
        have = {ln.split()[3] for ln in lines if len(ln.split()) > 3}
        if want <= have:
            return
        time.sleep(0.05)
    status = proc.poll()
    stop_process(proc)
    raise AssertionError(f"not listening on {sorted(want)} in {ns} after {timeout}s "
                         f"(exit status {status})\n{diagnose()}")


# --- Varnish ---------------------------------------------------------------------------

class Varnish:
    """varnishd in the foreground (-F) in namespace `ns`, listening on addr:80, with the
    given VCL; its work directory (-n) is private, so varnishstat reads its counters.
    -j none: no privilege separation jail (we run as root in a throwaway namespace)."""

    def __init__(self, net, ns, addr, vcl, port=80, params=()):
        self.net, self.ns, self.port = net, ns, port
        self.addr = f"[{addr}]" if ":" in addr else addr
        self.dir = tempfile.mkdtemp(prefix="kw-varnish-")
        self.vcl = os.path.join(self.dir, "default.vcl")
        with open(self.vcl, "w") as f:
            f.write(vcl)
        self.params = list(params)
        self.proc = None
        self.log = None

    def _stderr(self):
        try:
            with open(os.path.join(self.dir, "stderr.log")) as f:
                return f.read()
        except OSError:
            return ""

    def start(self, timeout=20):
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        cmd = ["varnishd", "-F", "-j", "none", "-n", os.path.join(self.dir, "work"),
               "-a", f"{self.addr}:{self.port}", "-f", self.vcl, "-s", "malloc,16m"]
        for p in self.params:
            cmd += ["-p", p]
        self.proc = self.net.spawn(self.ns, cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_listening(self.net, self.ns, {f"{self.addr}:{self.port}"}, self.proc, timeout,
                       self._stderr)
        return self

    def stat(self):
        """{"MAIN.backend_conn": value, ...} from varnishstat -1 -j."""
        p = self.net.exec(self.ns, ["varnishstat", "-n", os.path.join(self.dir, "work"),
                                    "-1", "-j"])
        doc = json.loads(p.stdout)
        counters = doc.get("counters", doc)
        return {k: v["value"] for k, v in counters.items()
                if isinstance(v, dict) and "value" in v}

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, timeout=10)
            self.log.close()
            self.proc = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- a small Python server --------------------------------------------------------------

SERVER = Path(__file__).resolve().with_name("server.py")


class PyServer:
    """tests/e2e/server.py MODE --conns N on port 80 of the server namespace (both
    families): it serves N connections in turn, then prints its JSON summary and exits."""

    def __init__(self, net, mode, conns, port=80):
        self.net, self.mode, self.conns, self.port = net, mode, conns, port
        self.proc = None

    def start(self, timeout=10):
        self.proc = self.net.spawn(self.net.server_ns,
                                   [PYTHON, SERVER, self.mode, "--conns", self.conns,
                                    "--port", self.port],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_listening(self.net, self.net.server_ns, {f"*:{self.port}"}, self.proc, timeout,
                       lambda: "server.py did not start")
        return self

    def result(self, timeout=15):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)
            out, err = self.proc.communicate()
            raise AssertionError(f"server.py {self.mode}: not done after {timeout}s\n"
                                 f"stdout: {out}\nstderr: {err}") from None
        try:
            doc = json.loads(out)
        except ValueError:
            raise AssertionError(f"server.py {self.mode}: exit {self.proc.returncode}, no JSON"
                                 f"\nstdout: {out}\nstderr: {err}") from None
        if self.proc.returncode != 0:
            raise AssertionError(f"server.py {self.mode}: exit {self.proc.returncode}: {doc}"
                                 f"\n{err}")
        return doc


# --- Prometheus text ------------------------------------------------------------------

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _parse_labels(line, i, lineno):
    """Parse `{a="x",b="y"}` starting at line[i] == '{'; return (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        while i < len(line) and line[i] in " \t":
            i += 1
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = _LABEL_RE.match(line, i)
        if not m:
            raise ValueError(f"line {lineno}: bad label name at column {i}: {line!r}")
        name = m.group(0)
        i = m.end()
        if line[i:i + 2] != '="':
            raise ValueError(f"line {lineno}: expected =\" after {name}: {line!r}")
        i += 2
        value = []
        while True:
            if i >= len(line):
                raise ValueError(f"line {lineno}: unterminated label value: {line!r}")
            ch = line[i]
            if ch == "\\":
                nxt = line[i + 1:i + 2]
                if nxt not in _ESCAPES:
                    raise ValueError(f"line {lineno}: bad escape \\{nxt} in label value")
                value.append(_ESCAPES[nxt])
                i += 2
            elif ch == '"':
                i += 1
                break
            else:
                value.append(ch)
                i += 1
        if name in labels:
            raise ValueError(f"line {lineno}: duplicate label {name}: {line!r}")
        labels[name] = "".join(value)
        while i < len(line) and line[i] in " \t":
            i += 1
        if i < len(line) and line[i] == ",":
            i += 1
        elif i < len(line) and line[i] == "}":
            return labels, i + 1
        else:
            raise ValueError(f"line {lineno}: expected , or }} in labels: {line!r}")


def parse_prometheus(text):
    """Parse Prometheus text format 0.0.4.

    Returns {(name, frozenset(labels.items())): float}. Raises ValueError on malformed
    input or a duplicate series.
    """
    samples = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _NAME_RE.match(line)
        if not m:
            raise ValueError(f"line {lineno}: bad metric name: {line!r}")
        name, i = m.group(0), m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, lineno)
        rest = line[i:].split()
        if not 1 <= len(rest) <= 2 or line[i:i + 1] not in (" ", "\t"):
            raise ValueError(f"line {lineno}: expected value [timestamp]: {line!r}")
        try:
            value = float(rest[0])
        except ValueError:
            raise ValueError(f"line {lineno}: bad value {rest[0]!r}") from None
        key = (name, frozenset(labels.items()))
        if key in samples:
            raise ValueError(f"line {lineno}: duplicate series: {line!r}")
        samples[key] = value
    return samples


def _label_matches(have, want):
    for k, v in want.items():
        if k not in have:
            return False
        if k == "le":
            try:
                if float(have[k]) != float(v):
                    return False
            except ValueError:
                return False
        elif have[k] != str(v):
            return False
    return True


def per_port(labels):
    """A histogram's labels by default: per port, summed over the peers (no peer label;
    --per-peer-histograms keeps it)."""
    return {k: v for k, v in labels.items() if k != "peer"}


def select(samples, name, **labels):
    """[(labels dict, value)] of the series `name` whose labels include `labels`."""
    return [(dict(ls), v) for (n, ls), v in samples.items()
            if n == name and _label_matches(dict(ls), labels)]


def fmt_series(name, labels):
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def fmt_num(v):
    if v is None:
        return "(no series)"
    return str(int(v)) if float(v).is_integer() else repr(v)


# --- the agent ------------------------------------------------------------------------

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                      "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
                      "runtime error:")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_binary(path):
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} not found or not executable: build it with "
                    f"`make` first", pytrace=False)


# Breakdowns of rare events that the agent writes only where they are not zero (user/
# metrics.c, skip_field: kw_field_sparse), except for the overflow upstream.
SPARSE_FAMILIES = ("keepwatch_resets_sent_total", "keepwatch_resets_received_total",
                   "keepwatch_connect_failures_total")
# The race side an upstream's direction cannot have is never written.
IMPOSSIBLE_RACE_SIDE = {"inbound": "client", "outbound": "server"}


def absent_means_zero(name, labels):
    """True when the agent leaves the series `name`{labels} out rather than write a 0."""
    if name in SPARSE_FAMILIES:
        return True
    if name == "keepwatch_keepalive_races_total" and "side" in labels:
        return IMPOSSIBLE_RACE_SIDE.get(labels.get("direction")) == labels["side"]
    return False


class Agent:
    def __init__(self, netns_names, extra_args=(), ready_timeout=20, tls_ca=None, auth=None):
        """tls_ca: the CA file to check the agent's certificate with (https; the agent
        needs --web.config.file in extra_args); auth: (user, password) for every request."""
        require_binary(KEEPWATCHD)
        self.port = free_port()
        self.url = f"{'https' if tls_ca else 'http'}://127.0.0.1:{self.port}"
        self.ssl = ssl.create_default_context(cafile=tls_ca) if tls_ca else None
        self.auth = auth
        self.args = [str(KEEPWATCHD), "--listen", f"127.0.0.1:{self.port}"]
        for ns in netns_names:
            self.args += ["--netns", ns]
        # $KW_AGENT_ARGS: flags for every agent of the run, e.g. the fallbacks of older
        # kernels ("--fallback requests --fallback reset_reasons --fallback tcp_sock").
        self.args += ["--no-pin", *extra_args, *os.environ.get("KW_AGENT_ARGS", "").split()]
        self.ready_timeout = ready_timeout
        self.errfile = tempfile.NamedTemporaryFile(prefix="kw-agent-", suffix=".log",
                                                   delete=False)
        self.output = ""  # the agent's stdout and stderr, once stopped
        self.proc = None

    def stderr(self):
        """The agent's output so far (stdout and stderr)."""
        if self.proc is None and self.output:
            return self.output
        try:
            with open(self.errfile.name, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self.errfile, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.ready_timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail_start(f"exited with status {self.proc.returncode}")
            try:
                status, _, _ = self.request("GET", "/healthz", timeout=1)
                if status == 200:
                    return self
                last = f"status {status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        self._fail_start(f"/healthz not 200 after {self.ready_timeout}s (last: {last})")

    def _fail_start(self, why):
        self.stop(check=False)
        pytest.fail(f"agent {' '.join(self.args)}: {why}\n--- agent output ---\n"
                    f"{self.output}", pytrace=False)

    def stop(self, check=True):
        """SIGTERM, wait, SIGKILL; with check, fail on a crash or a sanitizer report."""
        if self.proc is None:
            return
        died_early = self.proc.poll() is not None
        status = stop_process(self.proc, timeout=10)
        self.proc = None
        out = self.output = self.stderr()
        self.errfile.close()
        try:
            os.unlink(self.errfile.name)
        except OSError:
            pass
        if not check:
            return
        if any(p in out for p in SANITIZER_PATTERNS):
            pytest.fail(f"agent printed a sanitizer error:\n{out}", pytrace=False)
        if died_early:
            pytest.fail(f"agent died during the test (status {status}):\n{out}",
                        pytrace=False)

    # HTTP

    def request(self, method, path, body=None, timeout=5):
        """(status, headers, body bytes) without raising on 4xx/5xx."""
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if self.auth:
            token = base64.b64encode(":".join(self.auth).encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def get(self, path, timeout=5):
        try:
            status, headers, body = self.request("GET", path, timeout=timeout)
        except OSError as e:
            raise AssertionError(f"GET {path}: {e}\n--- agent output ---\n{self.stderr()}")
        if status != 200:
            raise AssertionError(f"GET {path}: status {status}, expected 200: {body[:500]!r}")
        return headers, body

    def metrics_text(self):
        return self.get("/metrics")[1].decode()

    def metrics(self):
        return parse_prometheus(self.metrics_text())

    def upstreams(self):
        return json.loads(self.get("/api/v1/upstreams")[1])

    def value(self, name, samples=None, **labels):
        """Sum of the series `name` whose labels include `labels`; raise if none match."""
        samples = self.metrics() if samples is None else samples
        matched = select(samples, name, **labels)
        if not matched:
            raise LookupError(f"no series {fmt_series(name, labels)}\n"
                              f"{self.describe(samples, name, labels)}")
        return sum(v for _, v in matched)

    def describe(self, samples, name, labels=None, limit=40):
        """The series of `name`'s family (those of the upstream in `labels`, if given),
        for failure messages."""
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        want = {k: v for k, v in (labels or {}).items() if k not in ("le", "closed_by", "how")}
        # In exposition order (parse_prometheus keeps it): buckets stay in le order.
        rows = [(n, ls, v) for (n, ls), v in samples.items()
                if (n == base or n.startswith(base + "_")) and _label_matches(dict(ls), want)]
        lines = [f"  {fmt_series(n, dict(ls))} {fmt_num(v)}" for n, ls, v in rows[:limit]]
        if len(rows) > limit:
            lines.append(f"  ... {len(rows) - limit} more")
        head = f"series of {base}" + (f" with {fmt_series('', want)}" if want else "")
        return head + ":\n" + ("\n".join(lines) if lines else "  (none)")

    def wait_for(self, name, expected, timeout=5, **labels):
        """Poll until value(name, **labels) == expected; fail with actual vs expected."""
        self.wait_all([(name, labels, expected)], timeout=timeout)

    def wait_all(self, expectations, timeout=5):
        """Poll until every (name, labels, expected) holds in one scrape; else fail listing
        every mismatch as actual vs expected."""
        deadline = time.monotonic() + timeout
        while True:
            samples = self.metrics()
            bad = []
            for name, labels, expected in expectations:
                matched = select(samples, name, **labels)
                actual = sum(v for _, v in matched) if matched else None
                if actual is None and expected == 0 and absent_means_zero(name, labels):
                    actual = 0
                if actual != expected:
                    bad.append((name, labels, expected, actual))
            if not bad:
                return samples
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        msg = [f"after {timeout}s, {len(bad)} of {len(expectations)} expectations failed:"]
        for name, labels, expected, actual in bad:
            msg.append(f"  {fmt_series(name, labels)}: actual {fmt_num(actual)}, "
                       f"expected {fmt_num(expected)}")
        shown = set()
        for name, labels, _, _ in bad:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            key = (base, fmt_series("", {k: v for k, v in labels.items()
                                         if k not in ("le", "closed_by", "how")}))
            if key not in shown:
                shown.add(key)
                msg.append(self.describe(samples, base, labels))
        pytest.fail("\n".join(msg), pytrace=False)


# --- the CLI --------------------------------------------------------------------------

def cli(*args, timeout=15):
    require_binary(KEEPWATCH)
    return run([KEEPWATCH, *args], timeout=timeout, check=False)


def assert_eq(what, actual, expected):
    """Equality that says what was compared, the actual and the expected value."""
    assert actual == expected, f"{what}: actual {actual}, expected {expected}"


def sides(net, v6):
    """Label sets of a namespace pair's inbound (nginx's side) and outbound (the
    client's side) upstreams on port 80."""
    inbound = dict(direction="inbound", peer=net.client_addr(v6), port="80",
                   netns=net.server_ns)
    outbound = dict(direction="outbound", peer=net.server_addr(v6), port="80",
                    netns=net.client_ns)
    return inbound, outbound
