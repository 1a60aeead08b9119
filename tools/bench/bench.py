#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""keepwatch overhead benchmark. Run through tools/bench/run.sh (root; see BENCHMARKS.md).

Throughput: nginx (one worker on CPU 1) and wrk -t1 (CPU 0) in network namespaces, over
loopback ("lo") and over a veth pair ("veth"), keep-alive and Connection: close. Every
comparison is a series of interleaved pairs, base (nothing attached) against a treatment
(the agent, the empty floor programs, the bpftrace anchor, or base again: A/A), the order
alternating pair to pair (AB, BA, AB, ...). BPF cost from bpf_stats (run_cnt,
run_time_ns) of the programs each treatment loaded, read with bpftool before and after
each run. Then the agent's own figures: CPU and RSS under load, /metrics scrape time with
many upstreams, map memory per capacity, and (--big) RSS with 100k open connections.

Standard library only. Every process and namespace started here is removed at exit, on
Ctrl-C and on SIGTERM too.
"""

import argparse
import datetime
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUILD = REPO / "build"
KEEPWATCHD = BUILD / "bench" / "keepwatchd"  # a copy of build/keepwatchd taken at start
PY = "/usr/bin/python3"
NGINX = "/usr/sbin/nginx"
WRK_LUA = HERE / "wrk-report.lua"
ANCHOR_BT = HERE / "anchor.bt"
BPFLOAD = HERE / "bpfload.py"
CONNS = HERE / "conns.py"
PROBE = HERE / "probe.py"

PORT = 8080
SETTLE = 0.2  # seconds between attaching a treatment (or not) and starting wrk
SWITCH_SETTLE = 0.02  # seconds between the probe switching programs and a window
AGENT_LOAD_S = 5  # seconds the agent process is measured under each load (windows)

MODES = {"keepalive": [], "close": ["-H", "Connection: close"]}
# --agent-args and --floor: the agent's extra flags (e.g. the older kernels' fallbacks) and
# the empty programs that price the hooks it then uses.
AGENT_EXTRA = []
FLOORS = {"default": "floor.bpf.o", "fallbacks": "floor-fallbacks.bpf.o"}
FLOOR_OBJ = FLOORS["default"]
TARGET_NS = {"keepalive": 180, "close": 1500}


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


def _on_signal(signum, frame):
    raise Interrupted(f"signal {signum}")


def sh(cmd, timeout=60, check=True, input=None):
    cmd = [str(c) for c in cmd]
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{' '.join(cmd)}: timed out after {timeout}s") from None
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def stop_proc(p, sig=signal.SIGTERM, timeout=10):
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(sig)
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)
    except ProcessLookupError:
        pass


def wait_for(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def spread(xs):
    return {"n": len(xs), "median": quantile(xs, 0.5), "p25": quantile(xs, 0.25),
            "p75": quantile(xs, 0.75), "min": min(xs) if xs else None,
            "max": max(xs) if xs else None}


def trimmed_ratio(ratios, trim=0.1):
    """The geometric mean of the pairs' ratios without the lowest and highest 10%, and its
    95% confidence interval (Tukey-McLaughlin: the winsorized standard deviation over
    (1 - 2 trim) sqrt(n)). A slow spell of the host that catches one window of a pair
    gives the ratios long tails both ways; this keeps more of the data than the median
    does, and says how far the figure can be trusted."""
    lr = sorted(math.log(x) for x in ratios if x > 0)
    n = len(lr)
    k = int(n * trim)
    if n - 2 * k < 3:
        return None
    core = lr[k:n - k]
    wins = [lr[k]] * k + core + [lr[n - k - 1]] * k
    m = sum(core) / len(core)
    se = statistics.stdev(wins) / ((1 - 2 * k / n) * math.sqrt(n))
    return {"n": n, "mean": math.exp(m), "lo": math.exp(m - 1.96 * se),
            "hi": math.exp(m + 1.96 * se)}


# --- processes, namespaces ------------------------------------------------------------

class Registry:
    """Everything to undo at exit, most recent first. Also writes a pid file that
    run.sh's trap reads should this process die without running its cleanup."""

    def __init__(self, pidfile):
        self.undo = []
        self.procs = []
        self.pidfile = pidfile

    def add(self, fn, desc):
        self.undo.append((fn, desc))

    def proc(self, p):
        self.procs.append(p)
        self._write_pids()
        return p

    def _write_pids(self):
        live = [p.pid for p in self.procs if p.poll() is None]
        with open(self.pidfile, "w") as f:
            f.write("".join(f"{pid}\n" for pid in live))

    def spawn(self, cmd, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        return self.proc(subprocess.Popen([str(c) for c in cmd], **kw))

    def cleanup(self):
        for p in reversed(self.procs):
            stop_proc(p, timeout=5)
        while self.undo:
            fn, desc = self.undo.pop()
            try:
                fn()
            except Exception as e:  # keep cleaning up
                log(f"cleanup {desc}: {e}")
        self.procs = []
        try:
            os.unlink(self.pidfile)
        except OSError:
            pass


class Netns:
    def __init__(self, reg, name):
        self.name = name
        sh(["ip", "netns", "add", name])
        reg.add(self.destroy, f"netns {name}")
        sh(["ip", "-n", name, "link", "set", "lo", "up"])

    def cmd(self, cmd):
        return ["ip", "netns", "exec", self.name, *map(str, cmd)]

    def sysctl(self, key, value):
        sh(self.cmd(["sysctl", "-q", "-w", f"{key}={value}"]))

    def destroy(self):
        pids = sh(["ip", "netns", "pids", self.name], check=False).stdout.split()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(int(pid), sig)
                except (ProcessLookupError, ValueError):
                    pass
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists()
                                                      for p in pids):
                time.sleep(0.05)
            pids = [p for p in pids if Path(f"/proc/{p}").exists()]
            if not pids:
                break
        sh(["ip", "netns", "del", self.name], check=False)


def veth(a, b, addr_a, addr_b):
    sh(["ip", "-n", a.name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0",
        "netns", b.name])
    sh(["ip", "-n", a.name, "addr", "add", addr_a, "dev", "veth0"])
    sh(["ip", "-n", b.name, "addr", "add", addr_b, "dev", "veth0"])
    sh(["ip", "-n", a.name, "link", "set", "veth0", "up"])
    sh(["ip", "-n", b.name, "link", "set", "veth0", "up"])


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity 10;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    server {{
        listen {listen} backlog=16384;
        location / {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
        location = /kwb-status {{
            stub_status;
        }}
    }}
}}
"""


def start_nginx(reg, ns, listen):
    d = tempfile.mkdtemp(prefix="kwb-nginx-")
    reg.add(lambda: shutil.rmtree(d, ignore_errors=True), f"rm {d}")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, listen=listen))
    out = open(os.path.join(d, "stderr.log"), "w")
    p = reg.spawn(ns.cmd([NGINX, "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf]),
                  stdout=out, stderr=subprocess.STDOUT)
    port = listen.rsplit(":", 1)[-1]

    def listening():
        if p.poll() is not None:
            raise RuntimeError(f"nginx exited {p.returncode}: "
                               f"{Path(d, 'stderr.log').read_text()}")
        return f":{port} " in sh(ns.cmd(["ss", "-Htln"])).stdout + " "
    wait_for(listening, 10, f"nginx in {ns.name}")
    return p


# --- BPF programs and maps --------------------------------------------------------------

def progs():
    """{id: {name, type, run_time_ns, run_cnt}} of every loaded BPF program."""
    out = {}
    for p in json.loads(sh(["bpftool", "prog", "show", "-j"]).stdout or "[]"):
        out[p["id"]] = {"name": p.get("name", "?"), "type": p.get("type", "?"),
                        "run_time_ns": p.get("run_time_ns", 0), "run_cnt": p.get("run_cnt", 0)}
    return out


def maps():
    return {m["id"]: m for m in json.loads(sh(["bpftool", "map", "show", "-j"]).stdout or "[]")}


def owned_bpf(pid):
    """(prog ids, map ids) of the BPF objects a process holds open, from its fdinfo: the
    programs and maps of this process only, whatever else is loaded meanwhile."""
    progs_, maps_ = set(), set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return progs_, maps_
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        progs_.add(int(line.split()[1]))
                    elif line.startswith("map_id:"):
                        maps_.add(int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return progs_, maps_


def wait_progs_gone(ids, timeout=10):
    if ids:
        wait_for(lambda: not (set(ids) & set(progs())), timeout, "BPF programs released",
                 interval=0.05)


def proc_times(pid):
    """(utime, stime) of a process, seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


def proc_cpu_s(pid):
    """utime + stime of a process, seconds."""
    t = proc_times(pid)
    return None if t is None else t[0] + t[1]


def cpu_by_process():
    """{pid: (ppid, comm, cpu seconds)} of every user-space process."""
    out = {}
    tck = os.sysconf("SC_CLK_TCK")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        f = raw.rsplit(")", 1)[1].split()
        ppid = int(f[1])
        if int(d) == 2 or ppid == 2:  # kernel threads
            continue
        out[int(d)] = (ppid, comm, (int(f[11]) + int(f[12])) / tck)
    return out


def foreign_cpu(before, after):
    """CPU seconds used between two cpu_by_process() snapshots by processes that are not
    this benchmark or its descendants: other users of the machine (noise)."""
    me = os.getpid()

    def ours(pid):
        seen = 0
        while pid > 1 and seen < 64:
            if pid == me:
                return True
            pid = after.get(pid, before.get(pid, (0,)))[0]
            seen += 1
        return False
    used = {}
    for pid, (ppid, comm, cpu) in after.items():
        if ours(pid):
            continue
        d = cpu - before.get(pid, (0, "", 0.0))[2] if pid in before else cpu
        if d > 0:
            used[comm] = used.get(comm, 0.0) + d
    return used


def proc_mem_kb(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


# --- the agent ------------------------------------------------------------------------

def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path, timeout=30):
    """(status, body bytes, seconds) of one GET on a fresh connection."""
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, body, time.perf_counter() - t0
    finally:
        c.close()


def metric_value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


class Agent:
    def __init__(self, reg, netns, extra=()):
        self.reg = reg
        self.port = free_port()
        self.logf = tempfile.NamedTemporaryFile(prefix="kwb-agent-", suffix=".log", delete=False)
        reg.add(lambda: os.unlink(self.logf.name), "agent log")
        self.args = [KEEPWATCHD, "--no-pin", "--listen", f"127.0.0.1:{self.port}"]
        for ns in netns:
            self.args += ["--netns", ns]
        self.args += list(extra)
        self.p = None

    def start(self):
        self.p = self.reg.spawn(self.args, stdout=self.logf, stderr=subprocess.STDOUT)

        def ready():
            if self.p.poll() is not None:
                raise RuntimeError(f"agent exited {self.p.returncode}: "
                                   f"{Path(self.logf.name).read_text()}")
            try:
                return http_get(self.port, "/healthz", timeout=1)[0] == 200
            except OSError:
                return False
        wait_for(ready, 20, "agent /healthz")
        self.ids, self.map_ids = owned_bpf(self.p.pid)
        if not self.ids:
            raise RuntimeError("the agent holds no BPF program")
        return self

    @property
    def pid(self):
        return self.p.pid

    def get(self, path, timeout=30):
        return http_get(self.port, path, timeout)

    def metrics(self):
        st, body, _ = self.get("/metrics")
        if st != 200:
            raise RuntimeError(f"/metrics: status {st}: {body[:300]!r}; agent log: "
                               f"{Path(self.logf.name).read_text(errors='replace')[-500:]}")
        return body.decode()

    def stop(self):
        stop_proc(self.p)
        wait_progs_gone(self.ids)


# --- treatments -----------------------------------------------------------------------

class Treatment:
    """Something attached (or not) for one run. .ids: the BPF programs it loaded."""
    name = "base"
    ids = set()
    pid = None

    def start(self):
        return self

    def stop(self):
        pass


class AgentT(Treatment):
    name = "agent"

    def __init__(self, reg, netns):
        self.reg, self.netns = reg, netns

    def start(self):
        self.agent = Agent(self.reg, self.netns, AGENT_EXTRA).start()
        self.ids, self.pid = self.agent.ids, self.agent.pid
        return self

    def stop(self):
        self.agent.stop()


class _Spawned(Treatment):
    """A helper process that prints a ready line once its programs are attached."""
    ready_text = ""
    stop_sig = signal.SIGTERM

    def __init__(self, reg):
        self.reg = reg

    def command(self):
        raise NotImplementedError

    def start(self):
        self.out = tempfile.NamedTemporaryFile(prefix=f"kwb-{self.name}-", delete=False)
        self.reg.add(lambda: os.unlink(self.out.name), f"{self.name} log")
        self.p = self.reg.spawn(self.command(), stdout=self.out, stderr=subprocess.STDOUT)

        def ready():
            text = Path(self.out.name).read_text(errors="replace")
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.p.returncode}: {text}")
            return self.ready_text in text
        wait_for(ready, 30, f"{self.name} attached")
        self.ids = owned_bpf(self.p.pid)[0]
        self.pid = self.p.pid
        return self

    def stop(self):
        stop_proc(self.p, self.stop_sig, timeout=15)
        wait_progs_gone(self.ids)


class FloorT(_Spawned):
    name = "floor"
    ready_text = "attached 3"

    def command(self):
        return [PY, BPFLOAD, BUILD / "bench" / FLOOR_OBJ]


class AnchorT(_Spawned):
    name = "anchor"
    ready_text = "anchor: attached"
    stop_sig = signal.SIGINT

    def command(self):
        return ["bpftrace", "-B", "line", ANCHOR_BT]

    def start(self):
        super().start()

        # BEGIN has printed; also make sure every program is attached to its tracepoint.
        def attached():
            perf = json.loads(sh(["bpftool", "perf", "show", "-j"]).stdout or "[]")
            return sum(1 for x in perf
                       if x.get("prog_id") in self.ids and "tracepoint" in x) >= 3
        wait_for(attached, 10, "anchor programs attached", interval=0.05)
        return self


# --- throughput and BPF cost ----------------------------------------------------------

class Topology:
    def __init__(self, name, client, server, url, netns):
        self.name, self.client, self.server, self.url, self.netns = \
            name, client, server, url, netns


def make_topologies(reg, tag, names):
    tops = {}
    if "lo" in names:
        ns = Netns(reg, f"kwb-{tag}-lo")
        ns.sysctl("net.ipv4.ip_local_port_range", "1024 65535")
        ns.sysctl("net.core.somaxconn", 16384)
        start_nginx(reg, ns, f"127.0.0.1:{PORT}")
        tops["lo"] = Topology("lo", ns, ns, f"http://127.0.0.1:{PORT}/", [ns.name])
    if "veth" in names:
        c, s = Netns(reg, f"kwb-{tag}-c"), Netns(reg, f"kwb-{tag}-s")
        veth(c, s, "10.89.0.1/24", "10.89.0.2/24")
        c.sysctl("net.ipv4.ip_local_port_range", "1024 65535")
        s.sysctl("net.core.somaxconn", 16384)
        start_nginx(reg, s, f"10.89.0.2:{PORT}")
        tops["veth"] = Topology("veth", c, s, f"http://10.89.0.2:{PORT}/", [c.name, s.name])
    return tops


def wrk(top, mode, duration, conns):
    cmd = top.client.cmd(["taskset", "-c", "0", "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
                          "--timeout", "2s", "-s", WRK_LUA, *MODES[mode], top.url])
    p = sh(cmd, timeout=duration + 30)
    return wrk_summary(p.stdout + p.stderr)


def wrk_summary(out):
    """The KWBENCH line wrk-report.lua prints at the end of a run, with rps and errors."""
    for line in out.splitlines():
        if line.startswith("KWBENCH "):
            r = json.loads(line[8:])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["errors"] = sum(v for k, v in r.items() if k.startswith("err_"))
            return r
    raise RuntimeError(f"wrk printed no summary:\n{out}")


def bpf_delta(before, after, ids):
    """Per program name: runs and ns between two snapshots, for the given ids."""
    out = {}
    for i in ids:
        if i in before and i in after:
            name = after[i]["name"]
            d = out.setdefault(name, {"runs": 0, "ns": 0})
            d["runs"] += after[i]["run_cnt"] - before[i]["run_cnt"]
            d["ns"] += after[i]["run_time_ns"] - before[i]["run_time_ns"]
    return {k: v for k, v in out.items() if v["runs"] or v["ns"]}


def one_run(top, mode, t, args):
    """Attach t, run wrk, detach; everything measured about this run."""
    t.start()
    try:
        time.sleep(SETTLE)
        b = progs()
        cpu0 = proc_cpu_s(t.pid) if t.pid else None
        others0 = cpu_by_process()
        w0 = time.monotonic()
        r = wrk(top, mode, args.duration, args.connections)
        wall = time.monotonic() - w0
        others = foreign_cpu(others0, cpu_by_process())
        a = progs()
        run = {"treatment": t.name, "wrk": r, "wall_s": wall,
               "foreign_cpu_s": round(sum(others.values()), 3)}
        if sum(others.values()) > 0.05 * wall:
            run["foreign_cpu_by_comm"] = {k: round(v, 3) for k, v in others.items() if v >= 0.01}
        if t.ids:
            run["bpf"] = bpf_delta(b, a, t.ids)
        foreign = bpf_delta(b, a, set(a) - set(t.ids))
        if foreign:
            run["foreign_bpf"] = foreign
        if t.pid and cpu0 is not None:
            cpu1 = proc_cpu_s(t.pid)
            run["proc_cpu_s"] = cpu1 - cpu0 if cpu1 is not None else None
            run["proc_mem_kb"] = proc_mem_kb(t.pid)
        return run
    finally:
        t.stop()


def throughput_phase(reg, tops, args, results):
    comparisons = {"lo": args.compare, "veth": args.veth_compare}
    configs = [(top, mode, [c for c in comparisons[top] if c])
               for top in tops for mode in args.modes]
    makers = {"agent": lambda top: AgentT(reg, tops[top].netns),
              "floor": lambda top: FloorT(reg), "anchor": lambda top: AnchorT(reg),
              "aa": lambda top: Treatment()}
    total = sum(len(c) for _, _, c in configs) * 2 * args.pairs
    done = 0
    t0 = time.monotonic()
    runs = results.setdefault("runs", [])
    for rnd in range(args.pairs):
        for top, mode, comps in configs:
            k = len(comps)
            for j in range(k):
                idx = (j + rnd) % k  # the comparisons' order rotates round to round
                comp = comps[idx]
                # ABBA: each comparison's pairs alternate AB, BA, AB, ... round to round
                order = ("A", "B") if (rnd + idx) % 2 == 0 else ("B", "A")
                for slot in order:
                    t = Treatment() if slot == "A" else makers[comp](top)
                    run = one_run(tops[top], mode, t, args)
                    run.update({"topology": top, "mode": mode, "comparison": comp,
                                "pair": rnd, "slot": slot, "order": "".join(order)})
                    runs.append(run)
                    done += 1
                w = run["wrk"]
                left = (time.monotonic() - t0) / done * (total - done)
                log(f"pair {rnd + 1}/{args.pairs} {top}/{mode} {comp} {''.join(order)}: "
                    f"{pair_ratio(runs[-2:]):.3f} ({w['rps']:.0f} req/s last; "
                    f"{done}/{total} runs, ~{left:.0f}s left)")


class Probe:
    """tools/bench/probe.py in the load's client namespace: switches treatments' programs
    on and off, and reads nginx's request count and their bpf_stats at one instant."""

    def __init__(self, reg, top):
        host, port = top.url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
        self.p = reg.spawn(top.client.cmd([PY, PROBE, host, port]), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            raise RuntimeError(f"probe exited {self.p.poll()} after {line!r}")
        r = json.loads(out)
        if "error" in r:
            raise RuntimeError(f"probe: {line}: {r['error']}")
        return r

    def sample(self):
        s = self.cmd("sample")
        s["progs"] = {int(k): v for k, v in s["progs"].items()}
        return s

    def stop(self):
        self.p.stdin.close()
        stop_proc(self.p)


def linked_progs(pid):
    """Ids of the programs a process has attached to tracepoints (its links' fdinfo)."""
    ids = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return ids
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except (OSError, ValueError):
            continue
        # tracepoint links only: not, say, the agent's census iterator
        if info.get("link_type", "").strip() == "raw_tracepoint" and "prog_id" in info:
            ids.add(int(info["prog_id"]))
    return ids


def take_over(probe, name, t, results, top, mode):
    """Start treatment t under the load, hand the programs it attached to the probe, stop
    its process (its links go with it; the programs stay, held by the probe). For the
    agent, first its own CPU and memory under this load: the windows switch its programs
    only, so the process is measured here."""
    t.start()
    time.sleep(SETTLE)
    if name == "agent":
        cpu0, t0 = proc_cpu_s(t.pid), time.monotonic()
        time.sleep(AGENT_LOAD_S)
        results.setdefault("agent_load", []).append({
            "topology": top, "mode": mode, "cpu_s": proc_cpu_s(t.pid) - cpu0,
            "wall_s": time.monotonic() - t0, "mem_kb": proc_mem_kb(t.pid)})
    ids = linked_progs(t.pid)
    if not ids:
        raise RuntimeError(f"{name} attached no program")
    names = {i: p["name"] for i, p in progs().items() if i in ids}
    probe.cmd(f"take {name} " + " ".join(map(str, sorted(ids))))
    p = t.agent.p if name == "agent" else t.p
    stop_proc(p)

    def unlinked():
        links = json.loads(sh(["bpftool", "link", "show", "-j"]).stdout or "[]")
        return not any(x.get("prog_id") in ids for x in links)
    wait_for(unlinked, 10, f"{name}'s links gone", interval=0.05)
    return ids, names


def held_name(which):
    """The held treatment a window attaches: floorx8 is the floor's programs, 8 links each."""
    name, _, times = which.rpartition("x")
    return name if times.isdigit() else which


def attached(comp, slot):
    """What a window of comparison comp attaches in slot A or B, None for nothing. Base is
    nothing, except in B:A comparisons (agent:floor: the agent against the floor)."""
    if comp == "aa":
        return None
    b, _, a = comp.partition(":")
    return b if slot == "B" else (a or None)


def one_window(probe, comp, slot, held, t, args):
    """One measured window: nothing attached, a held treatment switched on by the probe,
    or a treatment t started (and stopped after) for the window."""
    which = attached(comp, slot)
    if which is None:
        probe.cmd("set -")
        ids, names = set(), {}
        time.sleep(SWITCH_SETTLE)
    elif held_name(which) in held:
        probe.cmd(f"set {which}")
        ids, names = held[held_name(which)]
        time.sleep(SWITCH_SETTLE)
    else:
        probe.cmd("set -")
        t.start()
        ids = set(t.ids)
        names = {i: p["name"] for i, p in progs().items() if i in ids}
        probe.cmd(f"take {comp} " + " ".join(map(str, sorted(ids))))
        time.sleep(SETTLE)
    try:
        s0 = probe.sample()
        time.sleep(args.window)
        s1 = probe.sample()
    finally:
        if t is not None:  # started for this window
            probe.cmd(f"drop {comp}")
            t.stop()
    sec = (s1["t_ns"] - s0["t_ns"]) / 1e9
    n = s1["requests"] - s0["requests"]
    run = {"treatment": comp if slot == "B" else "base",
           "wrk": {"requests": n, "duration_us": round(sec * 1e6), "rps": n / sec,
                   "errors": 0},
           "wall_s": sec}
    if ids:
        run["ids"] = sorted(ids)
        bpf = {}
        for i in ids:
            if i in s0["progs"] and i in s1["progs"]:
                d = bpf.setdefault(names.get(i, str(i)), {"runs": 0, "ns": 0})
                d["runs"] += s1["progs"][i][0] - s0["progs"][i][0]
                d["ns"] += s1["progs"][i][1] - s0["progs"][i][1]
        run["bpf"] = {k: v for k, v in bpf.items() if v["runs"] or v["ns"]}
    return run


def round_noise(rs, others0, foreign0, held):
    """Other users of the machine over a round of windows (bpftool and /proc are read
    around the round, not each window: what they cost would land in the next window),
    charged to every window of the round."""
    if not rs:
        return
    others = foreign_cpu(others0, cpu_by_process())
    foreign1 = progs()
    ours = set().union(*(h[0] for h in held.values())) if held else set()
    ours |= {i for r in rs for i in r.get("ids", ())}
    foreign = bpf_delta(foreign0, foreign1, set(foreign1) - ours)
    wall = sum(r["wall_s"] for r in rs)
    for r in rs:
        r["foreign_cpu_s"] = round(sum(others.values()) * r["wall_s"] / wall, 3)
        if sum(others.values()) > 0.05 * wall:
            r["foreign_cpu_by_comm"] = {k: round(v, 3) for k, v in others.items()
                                        if v >= 0.01}
        if foreign:
            r["foreign_bpf"] = foreign


def cost_window(probe, top, mode, comps, held, t, args, results):
    """One window per treatment with bpf_stats on, for the BPF cost (not paired)."""
    bpf_stats(True)
    try:
        for comp in comps:
            run = one_window(probe, comp, "B", held, t, args)
            run.update({"topology": top, "mode": mode, "comparison": comp})
            results.setdefault("cost_runs", []).append(run)
    finally:
        bpf_stats(args.pair_stats)
        probe.cmd("set -")
        time.sleep(SWITCH_SETTLE)


def bpf_stats(on):
    Path("/proc/sys/kernel/bpf_stats_enabled").write_text("1\n" if on else "0\n")


def windows_phase(reg, tops, args, results):
    """The windows method (default). Per topology and mode, one continuous wrk run. The
    agent and the floor are started once under it; the probe takes over the programs
    they attached and their processes exit; from then on the probe attaches and
    detaches those very programs, window by window, in well under a millisecond. The
    bpftrace anchor is started and stopped around each of its windows instead (its
    programs attach through perf events). Pairs are ordered as in the runs method
    (rotating comparisons, ABBA). Throughput here moves between levels every few
    seconds (BENCHMARKS.md, Noise): windows of a fraction of a second, switched in
    place, see the same level in A and B far more often than 2 s runs with a wrk and an
    agent start between them.

    The pairs run with kernel.bpf_stats_enabled=0, as on a host where nobody measures
    (the agent does not turn it on): bpf_stats itself costs two clock reads per program
    run. The BPF cost then comes from --cost-windows windows per treatment with
    bpf_stats on, spread evenly over the rounds (the anchor's after them).
    --pair-stats keeps bpf_stats on in the pairs too."""
    comparisons = {"lo": args.compare, "veth": args.veth_compare}
    configs = [(top, mode, [c for c in comparisons[top] if c])
               for top in tops for mode in args.modes]
    makers = {"agent": lambda top: AgentT(reg, tops[top].netns),
              "floor": lambda top: FloorT(reg), "anchor": lambda top: AnchorT(reg)}
    total = sum(2 * (min(args.pairs, args.anchor_pairs) if c == "anchor" else args.pairs)
                for _, _, cs in configs for c in cs)
    cost_every = max(1, args.pairs // max(1, args.cost_windows))
    done = 0
    t0 = time.monotonic()
    runs = results.setdefault("runs", [])
    blocks = results.setdefault("blocks", [])
    for top, mode, comps in configs:
        # long enough for every window; stopped by SIGINT when done
        budget = int(len(comps) * 2 * args.pairs * (args.window + 3)) + 120
        wp = reg.spawn(tops[top].client.cmd(
            ["taskset", "-c", "0", "wrk", "-t1", f"-c{args.connections}", f"-d{budget}s",
             "--timeout", "2s", "-s", WRK_LUA, *MODES[mode], tops[top].url]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        probe = Probe(reg, tops[top])
        try:
            bpf_stats(args.pair_stats)
            time.sleep(1)  # wrk's connections up, nginx warm
            held = {}
            for name in ("agent", "floor"):
                if any(held_name(w) == name for c in comps for w in c.split(":")):
                    held[name] = take_over(probe, name, makers[name](top), results,
                                           top, mode)
            for rnd in range(args.pairs):
                others0, foreign0, first = cpu_by_process(), progs(), len(runs)
                k = len(comps)
                for j in range(k):
                    idx = (j + rnd) % k  # the comparisons' order rotates round to round
                    comp = comps[idx]
                    if comp == "anchor" and rnd >= args.anchor_pairs:
                        continue
                    # ABBA: each comparison's pairs alternate AB, BA, AB, ... round to round
                    order = ("A", "B") if (rnd + idx) % 2 == 0 else ("B", "A")
                    for slot in order:
                        if wp.poll() is not None:
                            raise RuntimeError(f"wrk ended early: {wp.stdout.read()}")
                        t = makers[comp](top) if slot == "B" and comp == "anchor" else None
                        run = one_window(probe, comp, slot, held, t, args)
                        run.update({"topology": top, "mode": mode, "comparison": comp,
                                    "pair": rnd, "slot": slot, "order": "".join(order)})
                        runs.append(run)
                        done += 1
                    w = run["wrk"]
                    if (rnd + 1) % 10 == 0 or rnd + 1 == args.pairs:
                        left = (time.monotonic() - t0) / done * (total - done)
                        log(f"pair {rnd + 1}/{args.pairs} {top}/{mode} {comp} "
                            f"{''.join(order)}: {pair_ratio(runs[-2:]):.3f} ({w['rps']:.0f} "
                            f"req/s last; {done}/{total} windows, ~{left:.0f}s left)")
                round_noise(runs[first:], others0, foreign0, held)
                # BPF cost windows spread over the pairs: this machine's slow spells
                # slow the programs too (ns per request follows throughput)
                if held and (rnd + 1) % cost_every == 0:
                    cost_window(probe, top, mode, list(held), held, None, args, results)
            if "anchor" in comps:  # started per window: its cost windows come last
                for i in range(min(args.cost_windows, 5)):
                    cost_window(probe, top, mode, ["anchor"], held, makers["anchor"](top),
                                args, results)
            log(f"{top}/{mode}: BPF cost over {args.cost_windows} windows per treatment")
        finally:
            probe.stop()  # closes the held programs' fds: they are freed
            if wp.poll() is None:
                wp.send_signal(signal.SIGINT)  # wrk stops, reports, runs done()
            try:
                out, _ = wp.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                wp.kill()
                out, _ = wp.communicate()
        blocks.append({"topology": top, "mode": mode, "wrk": wrk_summary(out)})

def pair_ratio(two):
    a = next(r for r in two if r["slot"] == "A")
    b = next(r for r in two if r["slot"] == "B")
    return b["wrk"]["rps"] / a["wrk"]["rps"]


def summarize_throughput(results):
    runs = results.get("runs", [])
    summ = {}
    keys = sorted({(r["topology"], r["mode"], r["comparison"]) for r in runs},
                  key=lambda k: (k[0] != "lo", k[1] != "keepalive", k[2]))
    for top, mode, comp in keys:
        rs = [r for r in runs if (r["topology"], r["mode"], r["comparison"]) == (top, mode, comp)]
        pairs = {}
        for r in rs:
            pairs.setdefault(r["pair"], []).append(r)
        ratios = [pair_ratio(p) for p in pairs.values() if len(p) == 2]
        base = [r["wrk"]["rps"] for r in rs if r["slot"] == "A"]
        treat = [r for r in rs if r["slot"] == "B"]
        errors = sum(r["wrk"]["errors"] for r in rs)
        # the windows method: wrk's errors are known per continuous run only
        errors += sum(b["wrk"]["errors"] for b in results.get("blocks", [])
                      if (b["topology"], b["mode"]) == (top, mode))
        s = {"ratio": spread(ratios), "ratio_trimmed": trimmed_ratio(ratios),
             "base_rps": spread(base),
             "treat_rps": spread([r["wrk"]["rps"] for r in treat]), "errors": errors}
        # the windows method: BPF cost from windows of their own, with bpf_stats on
        cost = [r for r in results.get("cost_runs", [])
                if (r["topology"], r["mode"], r["comparison"]) == (top, mode, comp)]
        if comp in ("agent", "floor", "anchor"):
            s["bpf"] = bpf_cost(cost or treat)
        load = [x for x in results.get("agent_load", [])
                if (x["topology"], x["mode"]) == (top, mode)]
        if comp == "agent" and load:  # the windows method measures the process apart
            s["agent"] = {"cpu_s": sum(x["cpu_s"] for x in load),
                          "wall_s": sum(x["wall_s"] for x in load),
                          "rss_kb_max": max(x["mem_kb"].get("VmRSS", 0) for x in load),
                          "hwm_kb_max": max(x["mem_kb"].get("VmHWM", 0) for x in load)}
            s["agent"]["cpu_frac_pooled"] = s["agent"]["cpu_s"] / s["agent"]["wall_s"]
        elif comp == "agent":
            cpu = [r["proc_cpu_s"] / r["wall_s"] for r in treat if r.get("proc_cpu_s") is not None]
            rss = [r["proc_mem_kb"].get("VmRSS") for r in treat if r.get("proc_mem_kb")]
            hwm = [r["proc_mem_kb"].get("VmHWM") for r in treat if r.get("proc_mem_kb")]
            cpu_s = sum(r["proc_cpu_s"] for r in treat if r.get("proc_cpu_s") is not None)
            wall = sum(r["wall_s"] for r in treat if r.get("proc_cpu_s") is not None)
            s["agent"] = {"cpu_frac": spread(cpu), "cpu_s": cpu_s, "wall_s": wall,
                          "cpu_frac_pooled": cpu_s / wall if wall else None,
                          "rss_kb_max": max(rss) if rss else None,
                          "hwm_kb_max": max(hwm) if hwm else None}
        foreign = [r for r in rs if r.get("foreign_bpf")]
        s["runs_with_foreign_bpf"] = len(foreign)
        s["runs_with_foreign_cpu"] = sum(1 for r in rs if r.get("foreign_cpu_by_comm"))
        s["runs"] = len(rs)
        summ[f"{top}/{mode}/{comp}"] = s
    return summ


def bpf_cost(treat_runs):
    """Pooled over the runs: per program runs/request and ns/run, total ns/request."""
    req = sum(r["wrk"]["requests"] for r in treat_runs)
    progsum = {}
    per_run = []
    for r in treat_runs:
        tot = 0
        for name, d in r.get("bpf", {}).items():
            ps = progsum.setdefault(name, {"runs": 0, "ns": 0})
            ps["runs"] += d["runs"]
            ps["ns"] += d["ns"]
            tot += d["ns"]
        if r["wrk"]["requests"]:
            per_run.append(tot / r["wrk"]["requests"])
    out = {"requests": req, "programs": {}}
    for name, ps in sorted(progsum.items()):
        out["programs"][name] = {
            "runs": ps["runs"], "ns": ps["ns"],
            "ns_per_run": ps["ns"] / ps["runs"] if ps["runs"] else None,
            "runs_per_request": ps["runs"] / req if req else None,
            "ns_per_request": ps["ns"] / req if req else None}
    out["ns_per_request"] = sum(p["ns"] for p in progsum.values()) / req if req else None
    out["ns_per_request_runs"] = spread(per_run) if per_run else None
    return out


# --- agent figures --------------------------------------------------------------------

def map_memory(reg, tag, caps):
    ns = Netns(reg, f"kwb-{tag}-mm")
    out = {}
    for cap in caps:
        a = Agent(reg, [ns.name], ["--max-upstreams", cap]).start()
        try:
            time.sleep(0.3)
            m = maps()
            mine = {m[i]["name"]: m[i] for i in a.map_ids if i in m}
            up = mine.get("kw_upstreams", {})
            out[str(cap)] = {
                "kw_upstreams_bytes_memlock": up.get("bytes_memlock"),
                "kw_upstreams_max_entries": up.get("max_entries"),
                "all_maps_bytes_memlock": sum(x.get("bytes_memlock", 0) for x in mine.values()),
                "maps": {k: {"type": v.get("type"), "max_entries": v.get("max_entries"),
                             "bytes_memlock": v.get("bytes_memlock")} for k, v in mine.items()},
                "agent_rss_kb_idle": proc_mem_kb(a.pid).get("VmRSS")}
        finally:
            a.stop()
        log(f"map memory at --max-upstreams {cap}: kw_upstreams "
            f"{out[str(cap)]['kw_upstreams_bytes_memlock']} bytes")
    return out


def time_gets(agent, path, n, timeout=30, keep=None):
    """n GETs one after the other: median/min/max time, body size, the agent's CPU per
    GET (user and system: the kernel's iterators run in the agent's read() calls)."""
    times, size, body = [], 0, b""
    t0 = proc_times(agent.pid)
    for _ in range(n):
        st, body, dt = agent.get(path, timeout)
        if st != 200:
            raise RuntimeError(f"{path}: status {st}: {body[:300]!r}")
        times.append(dt)
        size = len(body)
    t1 = proc_times(agent.pid)
    if keep is not None:
        keep.append(body)
    return {"n": n, "median_ms": quantile(times, 0.5) * 1e3, "min_ms": min(times) * 1e3,
            "max_ms": max(times) * 1e3, "bytes": size,
            "agent_cpu_ms_per_get": (t1[0] + t1[1] - t0[0] - t0[1]) / n * 1e3,
            "agent_sys_ms_per_get": (t1[1] - t0[1]) / n * 1e3}


def curl_gets(agent, path, n, timeout=30):
    """n GETs with curl, a client whose reading costs little (Python's http.client spends
    ~70 ms just reading 90 MB): median/min/max of curl's time_total."""
    times = []
    for _ in range(n):
        p = sh(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                f"http://127.0.0.1:{agent.port}{path}"], timeout=timeout)
        code, t = p.stdout.split()
        if code != "200":
            raise RuntimeError(f"{path}: curl status {code}")
        times.append(float(t))
    return {"n": n, "median_ms": quantile(times, 0.5) * 1e3, "min_ms": min(times) * 1e3,
            "max_ms": max(times) * 1e3}


def scrape_figures(reg, tag, levels, gets):
    mc, ms = Netns(reg, f"kwb-{tag}-mc"), Netns(reg, f"kwb-{tag}-ms")
    veth(mc, ms, "10.87.0.1/24", "10.87.0.2/24")
    # The client's many source addresses are routed through its one veth address, so
    # that the server needs one neighbour entry, not one per peer (its table holds 1024).
    sh(["ip", "-n", ms.name, "route", "add", "10.88.0.0/16", "via", "10.87.0.1"])
    top = max(levels)
    t0 = time.monotonic()
    lines = [f"addr add 10.88.{i // 256}.{i % 256}/32 dev lo"
             for i in range(1, top + 1)]  # 10.88.0.1 ...
    sh(["ip", "-n", mc.name, "-batch", "-"], input="\n".join(lines) + "\n", timeout=300)
    log(f"{top} client addresses in {time.monotonic() - t0:.1f}s")
    ms.sysctl("net.core.somaxconn", 16384)
    start_nginx(reg, ms, f"10.87.0.2:{PORT}")
    out = {}
    for n in levels:
        cap = 4096 if n <= 3000 else 1 << (int(n * 1.25) - 1).bit_length()
        a = Agent(reg, [ms.name], ["--max-upstreams", cap]).start()
        try:
            t0 = time.monotonic()
            p = sh(mc.cmd([PY, CONNS, "peers", "--server", "10.87.0.2", "--port", PORT,
                           "--first", "10.88.0.1", "--count", n, "--deadline", 240]),
                   timeout=300, check=False)
            conn = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
            opened_s = time.monotonic() - t0
            # Upstreams enter the map at ESTABLISHED, so they are all there by now.
            ups = metric_value(a.metrics(), "keepwatch_upstreams")
            if not conn.get("ok") == n or not ups or ups < n:
                raise RuntimeError(f"wanted {n} upstreams: connections {conn}, "
                                   f"keepwatch_upstreams {ups}")
            m = time_gets(a, "/metrics", gets)
            mc_ = curl_gets(a, "/metrics", gets)
            j = time_gets(a, "/api/v1/upstreams", max(5, gets // 4))
            out[str(n)] = {"max_upstreams": cap, "connections": conn,
                           "open_seconds": round(opened_s, 2), "upstreams_gauge": ups,
                           "metrics": m, "metrics_curl": mc_, "api_upstreams": j,
                           "agent_mem_kb": proc_mem_kb(a.pid)}
            log(f"{n} upstreams: /metrics median {m['median_ms']:.1f} ms "
                f"({m['bytes']} bytes), JSON {j['median_ms']:.1f} ms")
        except RuntimeError as e:
            out[str(n)] = {"max_upstreams": cap, "error": str(e)}
            log(f"{n} upstreams: {e}")
        finally:
            a.stop()
    return out


def big_figure(reg, tag, count, out, gets=3):
    """The agent's RSS with `count` connections open (both ends on the host, so twice as
    many tracked sockets). Spread over processes of at most PER_PROC sockets each, one
    server port per process, because RLIMIT_NOFILE's hard limit may not be raisable."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    per_proc = min(15000, hard - 200) if hard != resource.RLIM_INFINITY else 15000
    nproc = -(-count // per_proc)
    bc, bs = Netns(reg, f"kwb-{tag}-bc"), Netns(reg, f"kwb-{tag}-bs")
    veth(bc, bs, "10.90.0.1/24", "10.90.0.2/24")
    bc.sysctl("net.ipv4.ip_local_port_range", "1024 65535")
    bs.sysctl("net.core.somaxconn", 65535)
    for ns in (bc, bs):
        ns.sysctl("net.ipv4.tcp_max_syn_backlog", 65535)
    a = Agent(reg, [bc.name, bs.name]).start()
    out.update({"connections_wanted": count, "processes": nproc,
                "agent_mem_kb_before": proc_mem_kb(a.pid)})
    log(f"big: {count} connections over {nproc} client/server process pairs")
    procs = []
    try:
        def logfile(what):
            f = tempfile.NamedTemporaryFile(prefix=f"kwb-{what}-", delete=False)
            reg.add(lambda: os.unlink(f.name), f"{what} log")
            return f
        servers, clients = [], []
        for i in range(nproc):
            f = logfile("holds")
            procs.append(reg.spawn(bs.cmd([PY, CONNS, "hold-server", "--addr", "10.90.0.2",
                                           "--ports", 9000 + i, "--count", per_proc]),
                                   stdout=f, stderr=subprocess.STDOUT))
            servers.append(f.name)
        wait_for(lambda: all("listening" in Path(x).read_text() for x in servers), 10,
                 "hold-servers listening")
        t0 = time.monotonic()
        left = count
        for i in range(nproc):
            n = min(per_proc, left)
            left -= n
            f = logfile("holdc")
            procs.append(reg.spawn(bc.cmd([PY, CONNS, "hold-client", "--server", "10.90.0.2",
                                           "--ports", 9000 + i, "--count", n,
                                           "--deadline", 150]),
                                   stdout=f, stderr=subprocess.STDOUT))
            clients.append(f.name)
        wait_for(lambda: all(Path(x).read_text().strip() for x in clients), 170,
                 "hold-clients")
        res = [json.loads(Path(x).read_text().strip().splitlines()[-1]) for x in clients]
        out["client"] = {"established": sum(r["established"] for r in res),
                         "failed": sum(r["failed"] for r in res),
                         "seconds": max(r["seconds"] for r in res)}
        out["open_seconds"] = round(time.monotonic() - t0, 1)
        log(f"big: {out['client']}")
        time.sleep(2)
        out["agent_mem_kb_open"] = proc_mem_kb(a.pid)
        out["server_sockstat"] = sh(bs.cmd(["cat", "/proc/net/sockstat"])).stdout
        # A scrape walks every tracked socket: it can take long here (see BENCHMARKS.md).
        bodies = []
        out["metrics"] = time_gets(a, "/metrics", gets, timeout=300, keep=bodies)
        out["tracked_connections"] = metric_value(bodies[-1].decode(),
                                                  "keepwatch_tracked_connections")
        out["agent_mem_kb_after_scrapes"] = proc_mem_kb(a.pid)
        log(f"big: tracked {out['tracked_connections']}, RSS "
            f"{out['agent_mem_kb_after_scrapes']}, /metrics {out['metrics']['median_ms']:.0f} ms")
    finally:
        t0 = time.monotonic()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            stop_proc(p, timeout=60)
        out["close_seconds"] = round(time.monotonic() - t0, 1)
        a.stop()
# --- profile --------------------------------------------------------------------------

def profile(reg, tag, mode, seconds, conns):
    """Where the agent's BPF time goes: perf samples (all CPUs, call graphs) under load on
    the lo topology, the samples inside the agent's programs attributed to the function
    each program called (or 'self'). Needs perf (not installed by install-deps.sh)."""
    perf = shutil.which("perf")
    if not perf:
        raise RuntimeError("--profile needs perf (Debian: linux-perf)")
    tops = make_topologies(reg, tag, ["lo"])
    top = tops["lo"]

    def bpf_ksyms():
        with open("/proc/kallsyms") as f:
            return {(int(ln.split()[0], 16), ln.split()[2]) for ln in f if " bpf_prog_" in ln}
    # The agent's functions are the BPF symbols that appear when it starts, told apart by
    # address: other agents on the machine load the same code under the same names.
    before = bpf_ksyms()
    a = Agent(reg, top.netns).start()
    try:
        after = sorted(bpf_ksyms())
        ranges = []
        for k, (addr, name) in enumerate(after):
            if (addr, name) in before:
                continue
            end = after[k + 1][0] if k + 1 < len(after) else addr + 65536
            ranges.append((addr, min(end, addr + 65536), name.split("_", 3)[-1]))
        data = tempfile.NamedTemporaryFile(prefix="kwb-perf-", suffix=".data", delete=False)
        reg.add(lambda: os.unlink(data.name), "perf data")
        wout = tempfile.NamedTemporaryFile(prefix="kwb-wrk-", delete=False)
        reg.add(lambda: os.unlink(wout.name), "wrk output")
        w = reg.spawn(top.client.cmd(["taskset", "-c", "0", "wrk", "-t1", f"-c{conns}",
                                      f"-d{seconds + 2}s", "-s", WRK_LUA, *MODES[mode],
                                      top.url]),
                      stdout=wout, stderr=subprocess.STDOUT)
        time.sleep(1)
        sh([perf, "record", "-q", "-a", "-g", "-F", "4999", "-o", data.name, "--", "sleep",
            seconds], timeout=seconds + 60)
        w.wait(seconds + 30)
        wrk_out = Path(wout.name).read_text()
        text = sh([perf, "script", "-i", data.name, "-F", "ip,sym"], timeout=300).stdout
    finally:
        a.stop()

    def ours(ip):
        for lo, hi, name in ranges:
            if lo <= ip < hi:
                return name
        return None
    total = 0
    by_prog, by_callee, leaves = {}, {}, {}
    for block in text.split("\n\n"):
        frames = []
        for ln in block.strip().splitlines():
            f = ln.split(None, 1)
            try:
                frames.append((int(f[0], 16), f[1].rsplit("+", 1)[0] if len(f) > 1 else "?"))
            except ValueError:
                continue
        if not frames:
            continue
        total += 1
        for k, (ip, _) in enumerate(frames):  # leaf first
            prog = ours(ip)
            if prog and prog.startswith("kw_"):
                callee = "self" if k == 0 else frames[k - 1][1]
                if ours(frames[k - 1][0]) if k else False:
                    callee = "self (subprogram " + ours(frames[k - 1][0]) + ")"
                by_prog[prog] = by_prog.get(prog, 0) + 1
                by_callee[(prog, callee)] = by_callee.get((prog, callee), 0) + 1
                if k >= 2:  # where inside the called function the time went
                    lk = (prog, callee, frames[0][1])
                    leaves[lk] = leaves.get(lk, 0) + 1
                break
    summary = [json.loads(ln[8:]) for ln in wrk_out.splitlines() if ln.startswith("KWBENCH ")]
    return {"mode": mode, "seconds": seconds, "samples": total, "by_program": by_prog,
            "wrk": summary[0] if summary else wrk_out[-500:],
            "by_callee": [{"program": p_, "callee": c, "samples": n,
                           "leaves": sorted(([lf, m] for (p2, c2, lf), m in leaves.items()
                                             if (p2, c2) == (p_, c)), key=lambda x: -x[1])[:8]}
                          for (p_, c), n in sorted(by_callee.items(), key=lambda x: -x[1])]}


def profile_report(pr):
    L = [f"### Profile of the agent's programs, {pr['mode']} (perf, all CPUs, "
         f"{pr['seconds']} s, {pr['samples']} samples)", ""]
    w = pr.get("wrk")
    if isinstance(w, dict):
        L += [f"Load: {w['requests']} requests in {w['duration_us'] / 1e6:.1f} s "
              f"({w['requests'] / (w['duration_us'] / 1e6):.0f} req/s).", ""]
    L.append("| program | % of all samples | called function | % of the program's samples "
             "| hottest functions under it (% of the program) |")
    L.append("|---|---|---|---|---|")
    for prog, n in sorted(pr["by_program"].items(), key=lambda x: -x[1]):
        for c in pr["by_callee"]:
            if c["program"] == prog and c["samples"] / n >= 0.02:
                lv = ", ".join(f"{lf} {100 * m / n:.0f}" for lf, m in c.get("leaves", [])[:4]
                               if m / n >= 0.02)
                L.append(f"| {prog} | {100 * n / pr['samples']:.2f} % | {c['callee']} "
                         f"| {100 * c['samples'] / n:.0f} % | {lv} |")
    L.append("")
    return "\n".join(L)


# --- report ---------------------------------------------------------------------------

def fmt(x, spec=".3f"):
    return "n/a" if x is None else format(x, spec)


def report(results):
    env = results["env"]
    L = []
    L.append(f"## keepwatch overhead benchmark, {env['date']}")
    L.append("")
    L.append(f"Machine: {env['cpu']}, {env['cpus']} vCPUs, kernel {env['kernel']}; "
             f"keepwatch {env.get('keepwatchd_version') or env['keepwatch']} (tree "
             f"{env['keepwatch']}); {env['nginx']}, {env['wrk']}, {env['bpftrace']}.")
    if env.get("method", "runs") == "windows":
        how = (f"windows of {env['window']:g} s under one continuous wrk run per topology "
               f"and mode ({env.get('anchor_pairs')} pairs for the anchor)")
        stats = ("kernel.bpf_stats_enabled=1 throughout" if env.get("pair_stats") else
                 "kernel.bpf_stats_enabled=0 in the pairs, 1 in the "
                 f"{env.get('cost_windows')} BPF cost windows per treatment")
    else:
        how = f"{env['duration']} s per run"
        stats = "kernel.bpf_stats_enabled=1 throughout"
    L.append(f"Command: `{env['command']}`; {env['pairs']} pairs per comparison, "
             f"{how}, wrk -t1 -c{env['connections']} on CPU 0, "
             f"nginx worker on CPU 1, {stats}.")
    L.append("")
    s = results["summary"]
    if s:
        throughput_tables(L, s)
    scrape_tables(L, results)
    commands_section(L, results)
    total = len(results.get("runs", []))
    if total:
        fb = sum(v.get("runs_with_foreign_bpf", 0) for v in s.values())
        fc = sum(v.get("runs_with_foreign_cpu", 0) for v in s.values())
        L.append(f"Noise from other users of the machine: in {fc} of {total} runs other "
                 f"processes used more than 5% of a CPU; in {fb} runs BPF programs not "
                 f"started by the benchmark ran.")
    if results.get("error"):
        L.append("")
        L.append("**The run failed**: " + results["error"].strip().splitlines()[-1])
    if not results.get("complete"):
        L.append("")
        L.append("**Incomplete run** (interrupted or failed): partial results only.")
    return "\n".join(L)


def throughput_tables(L, s):
    L.append("### Throughput (treatment / base, per interleaved pair)")
    L.append("")
    L.append("| topology | mode | treatment | pairs | base req/s (median) | ratio median "
             "| IQR | min–max | trimmed mean [95% CI] | errors |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for key, v in s.items():
        top, mode, comp = key.split("/")
        r = v["ratio"]
        t = v.get("ratio_trimmed")
        tm = f"{t['mean']:.3f} [{t['lo']:.3f}, {t['hi']:.3f}]" if t else "n/a"
        label = {"aa": "A/A (base again)", "agent": "agent", "floor": "floor (empty progs)",
                 "anchor": "bpftrace anchor"}.get(comp, comp_label(comp))
        L.append(f"| {top} | {mode} | {label} | {r['n']} | {fmt(v['base_rps']['median'], '.0f')} "
                 f"| **{fmt(r['median'])}** | {fmt(r['p25'])}–{fmt(r['p75'])} "
                 f"| {fmt(r['min'])}–{fmt(r['max'])} | {tm} | {v['errors']} |")
    L.append("")
    L.append("### BPF cost (bpf_stats, pooled over the treatment runs)")
    L.append("")
    L.append("| topology | mode | programs | BPF ns/request | per-run spread | target | "
             "per program: runs/request × ns/run |")
    L.append("|---|---|---|---|---|---|---|")
    for key, v in s.items():
        if "bpf" not in v:
            continue
        top, mode, comp = key.split("/")
        b = v["bpf"]
        target = f"≤ {TARGET_NS[mode]}" if comp == "agent" else ""
        per = ", ".join(f"{n} {fmt(p['runs_per_request'], '.2f')} × {fmt(p['ns_per_run'], '.0f')}"
                        for n, p in b["programs"].items())
        sp = b["ns_per_request_runs"]
        L.append(f"| {top} | {mode} | {comp} | **{fmt(b['ns_per_request'], '.0f')}** | "
                 f"{fmt(sp and sp['min'], '.0f')}–{fmt(sp and sp['max'], '.0f')} | {target} "
                 f"| {per} |")
    L.append("")
    ag = [(k, v["agent"]) for k, v in s.items() if "agent" in v]
    if ag:
        L.append("### Agent under load (agent runs)")
        L.append("")
        L.append("| topology | mode | agent CPU (utime+stime over all agent runs) | max RSS "
                 "| max HWM |")
        L.append("|---|---|---|---|---|")
        for k, v in ag:
            top, mode, _ = k.split("/")
            L.append(f"| {top} | {mode} | {v.get('cpu_s', 0) * 1e3:.0f} ms in "
                     f"{v.get('wall_s', 0):.0f} s = "
                     f"{fmt((v.get('cpu_frac_pooled') or 0) * 100, '.3f')} % of one core "
                     f"| {v['rss_kb_max']} KiB | {v['hwm_kb_max']} KiB |")
        L.append("")


def comp_label(comp):
    """agent:floor is 'agent / floor', floorx8 'floor × 8 links'."""
    def one(w):
        n = held_name(w)
        return n if n == w else f"{n} × {w[len(n) + 1:]} links"
    return " / ".join(one(w) for w in comp.split(":"))


def scrape_tables(L, results):
    sc = results.get("scrape")
    if sc:
        L.append("### /metrics with many upstreams (distinct client addresses)")
        L.append("")
        L.append("| upstreams | --max-upstreams | /metrics median (min–max), Python "
                 "| /metrics median (min–max), curl | bytes "
                 "| /api/v1/upstreams median | agent CPU per scrape | agent RSS |")
        L.append("|---|---|---|---|---|---|---|---|")
        for n, v in sc.items():
            if "error" in v:
                L.append(f"| {n} | {v['max_upstreams']} | error: {v['error'][:200]} | | | | | |")
                continue
            m, j = v["metrics"], v["api_upstreams"]
            c = v.get("metrics_curl")
            cs = f"{c['median_ms']:.1f} ms ({c['min_ms']:.1f}–{c['max_ms']:.1f})" if c else "n/a"
            L.append(f"| {n} ({fmt(v['upstreams_gauge'], '.0f')} in map) | {v['max_upstreams']} "
                     f"| {m['median_ms']:.1f} ms ({m['min_ms']:.1f}–{m['max_ms']:.1f}) | {cs} "
                     f"| {m['bytes']} | {j['median_ms']:.1f} ms | "
                     f"{m['agent_cpu_ms_per_get']:.1f} ms | {v['agent_mem_kb'].get('VmRSS')} KiB |")
        L.append("")
    mm = results.get("map_memory")
    if mm:
        L.append("### BPF map memory per configured capacity")
        L.append("")
        L.append("| --max-upstreams | kw_upstreams max_entries | kw_upstreams bytes_memlock "
                 "| all agent maps | maps ≥ 64 KiB | agent RSS idle |")
        L.append("|---|---|---|---|---|---|")
        for cap, v in mm.items():
            big = sorted(((x["bytes_memlock"] or 0, k) for k, x in v["maps"].items()
                          if (x["bytes_memlock"] or 0) >= 65536), reverse=True)
            L.append(f"| {cap} | {v['kw_upstreams_max_entries']} "
                     f"| {v['kw_upstreams_bytes_memlock']} "
                     f"({(v['kw_upstreams_bytes_memlock'] or 0) / 2**20:.1f} MiB) "
                     f"| {v['all_maps_bytes_memlock']} "
                     f"({v['all_maps_bytes_memlock'] / 2**20:.1f} MiB) "
                     f"| {', '.join(f'{k} {b / 2**20:.1f} MiB' for b, k in big)} "
                     f"| {v['agent_rss_kb_idle']} KiB |")
        L.append("")
    big = results.get("big")
    if big:
        L.append(f"### {big.get('connections_wanted')} open connections (--big)")
        L.append("")
        c = big.get("client", {})
        L.append(f"- connections established: {c.get('established')} "
                 f"(failed {c.get('failed')}, in {big.get('open_seconds')} s); "
                 f"keepwatch_tracked_connections = {fmt(big.get('tracked_connections'), '.0f')}")
        L.append(f"- agent RSS: before {big['agent_mem_kb_before'].get('VmRSS')} KiB, "
                 f"connections open {big.get('agent_mem_kb_open', {}).get('VmRSS')} KiB, "
                 f"after the scrapes {big.get('agent_mem_kb_after_scrapes', {}).get('VmRSS')} KiB "
                 f"(HWM {big.get('agent_mem_kb_after_scrapes', {}).get('VmHWM')} KiB)")
        if "metrics" in big:
            m = big["metrics"]
            L.append(f"- /metrics with them open ({m['n']} GETs): median {m['median_ms']:.0f} ms "
                     f"(min {m['min_ms']:.0f}, max {m['max_ms']:.0f}), agent CPU "
                     f"{m['agent_cpu_ms_per_get']:.0f} ms per scrape, of which "
                     f"{m['agent_sys_ms_per_get']:.0f} ms in the kernel")
        L.append("")


def commands_section(L, results):
    env = results["env"]
    d, c = env["duration"], env["connections"]
    windows = env.get("method", "runs") == "windows"
    if windows:
        d = "N"  # one continuous run per topology and mode, stopped by SIGINT
    L.append("### Commands")
    L.append("")
    L.append("```")
    L.append(f"# {env['command']}   (T = run.sh's pid; nginx: worker_processes 1; "
             f"worker_cpu_affinity 10; keepalive_requests 1000000; access_log off; "
             f"return 200 \"ok\\n\")")
    if windows and not env.get("pair_stats"):
        L.append("sysctl -w kernel.bpf_stats_enabled=0    # pairs; =1 around each BPF "
                 "cost window")
    else:
        L.append("sysctl -w kernel.bpf_stats_enabled=1                      # whole run")
    L.append(f"ip netns exec kwb-T-lo taskset -c 0 wrk -t1 -c{c} -d{d}s --timeout 2s "
             f"-s tools/bench/wrk-report.lua [-H 'Connection: close'] http://127.0.0.1:{PORT}/")
    L.append(f"ip netns exec kwb-T-c  taskset -c 0 wrk -t1 -c{c} -d{d}s --timeout 2s "
             f"-s tools/bench/wrk-report.lua [-H 'Connection: close'] http://10.89.0.2:{PORT}/"
             f"   # veth")
    L.append("build/keepwatchd --no-pin --listen 127.0.0.1:P --netns kwb-T-lo   "
             "# agent (veth: --netns kwb-T-c --netns kwb-T-s)")
    L.append("/usr/bin/python3 tools/bench/bpfload.py build/bench/floor.bpf.o   # floor")
    L.append("bpftrace -B line tools/bench/anchor.bt                            # anchor")
    if windows:
        L.append(f"ip netns exec kwb-T-lo /usr/bin/python3 tools/bench/probe.py 127.0.0.1 "
                 f"{PORT}   # takes the agent's and the floor's attached programs by id "
                 "(then their processes exit), attaches/detaches them per window; at both "
                 f"ends of each {env['window']:g} s window: nginx stub_status requests, "
                 "run_cnt and run_time_ns of the programs")
        L.append("cat /proc/PID/stat /proc/PID/status   # agent utime+stime over "
                 f"{AGENT_LOAD_S} s of each load before its programs are taken; VmRSS, VmHWM")
    else:
        L.append("bpftool prog show -j    # before/after each wrk run: run_cnt, run_time_ns "
                 "of the programs the treatment's process holds (/proc/PID/fdinfo prog_id)")
    if not windows:
        L.append("cat /proc/PID/stat /proc/PID/status   # agent utime+stime over the run; "
                 "VmRSS, VmHWM")
    L.append("keepwatchd --no-pin --max-upstreams N; bpftool map show -j   # kw_upstreams "
             "bytes_memlock")
    L.append("ip netns exec kwb-T-mc /usr/bin/python3 tools/bench/conns.py peers --server "
             f"10.87.0.2 --port {PORT} --first 10.88.0.1 --count N   # N upstreams; then "
             "GET /metrics x20")
    L.append("ip netns exec kwb-T-bs /usr/bin/python3 tools/bench/conns.py hold-server ...; "
             "ip netns exec kwb-T-bc ... hold-client ...   # --big, 7 process pairs")
    L.append("```")
    L.append("")


def environment(args):
    def ver(cmd):
        try:
            p = sh(cmd, check=False)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except Exception:
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "kernel": platform.release(), "cpu": cpu, "cpus": os.cpu_count(),
            "keepwatch": ver(["git", "-C", REPO, "describe", "--always", "--dirty"]),
            "nginx": ver([NGINX, "-v"]).replace("nginx version: ", ""),
            "wrk": ver(["wrk", "-v"]).split(" [")[0].replace("wrk ", "wrk "),
            "bpftrace": ver(["bpftrace", "--version"]),
            "loadavg": Path("/proc/loadavg").read_text().strip(),
            "command": args.command, "pairs": args.pairs, "duration": args.duration,
            "method": args.method, "window": args.window, "connections": args.connections,
            "anchor_pairs": args.anchor_pairs, "cost_windows": args.cost_windows,
            "pair_stats": args.pair_stats}


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="tools/bench/run.sh", description=(
        "keepwatch overhead benchmark: interleaved A/B throughput pairs, BPF ns per "
        "request, agent CPU/RSS, /metrics scrape time, map memory."),
        epilog="Also: tools/bench/run.sh --render build/bench/bench-STAMP.json re-prints the "
               "report of a saved run; tools/bench/run.sh --pool A.json B.json ... gives the "
               "throughput of several runs (windows method) as one. See BENCHMARKS.md.")
    ap.add_argument("--quick", action="store_true",
                    help="short run (~4 min): 20 pairs of windows (runs method: 4 pairs of "
                         "1 s runs), 5 cost windows, 4 anchor pairs, scrape at 100 and 1000 "
                         "upstreams")
    ap.add_argument("--big", action="store_true",
                    help="also the agent's RSS with 100k open connections (a few minutes)")
    ap.add_argument("--pairs", type=int, help="pairs per comparison (default 20)")
    ap.add_argument("--method", choices=("windows", "runs"), default="windows",
                    help="windows: one continuous wrk run per topology and mode, treatments "
                         "attached and detached under it, each measured over --window "
                         "seconds (default); runs: one wrk run of --duration per "
                         "treatment")
    ap.add_argument("--window", type=float, default=0.25,
                    help="seconds per measured window (windows method, default 0.25)")
    ap.add_argument("--cost-windows", type=int, default=50,
                    help="windows per treatment with bpf_stats on, for the BPF cost, spread "
                         "over the pairs (windows method, default 50)")
    ap.add_argument("--anchor-pairs", type=int, default=20,
                    help="pairs for the bpftrace anchor, started and stopped around each of "
                         "its windows (windows method, default 20)")
    ap.add_argument("--pair-stats", action="store_true",
                    help="keep kernel.bpf_stats_enabled=1 in the pairs too (windows method)")
    ap.add_argument("--duration", type=int, help="seconds per wrk run (runs method, "
                    "default 2)")
    ap.add_argument("--connections", type=int, default=32, help="wrk -c (default 32)")
    ap.add_argument("--topologies", default="lo,veth", help="lo,veth (default both)")
    ap.add_argument("--modes", default="keepalive,close", help="keepalive,close (default both)")
    ap.add_argument("--compare", default="agent,aa,anchor,floor",
                    help="treatments paired with base on lo (default agent,aa,anchor,floor); "
                    "the windows method also takes B:A pairs of held treatments (agent:floor, "
                    "the agent against the floor) and K links of one (floorx8)")
    ap.add_argument("--veth-compare", default="agent,aa,floor",
                    help="treatments paired with base on veth (default agent,aa,floor)")
    ap.add_argument("--scrape-levels", help="upstream counts for the scrape figure "
                    "(default 100,1000,10000; --quick 100,1000; 0 to skip)")
    ap.add_argument("--scrape-gets", type=int, default=20, help="GETs per level (default 20)")
    ap.add_argument("--big-connections", type=int, default=100000,
                    help="connections held open for --big (default 100000)")
    ap.add_argument("--big-gets", type=int, default=3,
                    help="timed /metrics GETs with the big population open (default 3)")
    ap.add_argument("--no-throughput", action="store_true", help="skip the A/B pairs")
    ap.add_argument("--profile", choices=list(MODES), help="only profile the agent's "
                    "programs with perf under this load (lo topology) and exit")
    ap.add_argument("--out", default=str(BUILD / "bench"), help="where the JSON goes")
    ap.add_argument("--agent-args", default="",
                    help="extra flags for the agent treatment, e.g. '--fallback requests "
                    "--fallback reset_reasons --fallback tcp_sock'")
    ap.add_argument("--floor", choices=list(FLOORS), default="default",
                    help="the empty programs of the floor: on the default hooks, or on the "
                    "fallbacks' (tcp_rcv_space_adjust for sock_recv_length)")
    args = ap.parse_args(argv)
    if args.pairs is None:
        args.pairs = (4 if args.quick else 20) if args.method == "runs" else \
            (20 if args.quick else 100)
    if args.quick:
        args.anchor_pairs = min(args.anchor_pairs, 4)
        args.cost_windows = min(args.cost_windows, 5)
    if args.duration is None:
        args.duration = 1 if args.quick else 2
    if args.scrape_levels is None:
        args.scrape_levels = "100,1000" if args.quick else "100,1000,10000"
    args.scrape_levels = [int(x) for x in args.scrape_levels.split(",") if int(x) > 0]
    args.topologies = [x for x in args.topologies.split(",") if x]
    args.modes = [x for x in args.modes.split(",") if x]
    args.compare = [x for x in args.compare.split(",") if x]
    args.veth_compare = [x for x in args.veth_compare.split(",") if x]
    for x in args.compare + args.veth_compare:
        if x in ("agent", "aa", "anchor", "floor"):
            continue
        # the windows method also pairs held treatments with each other (agent:floor, B
        # over A) and several links of one (floorx8: the floor's programs, 8 links each)
        if not re.fullmatch(r"(agent|floor)(x[1-9][0-9]*)?(:(agent|floor)(x[1-9][0-9]*)?)?", x):
            ap.error(f"unknown treatment {x}")
        if args.method != "windows":
            ap.error(f"{x}: only the windows method pairs these")
    for x in args.modes:
        if x not in MODES:
            ap.error(f"unknown mode {x}")
    for x in args.topologies:
        if x not in ("lo", "veth"):
            ap.error(f"unknown topology {x}")
    args.command = "tools/bench/run.sh" + ("" if not argv else " " + " ".join(argv))
    return args


def pool(paths):
    """The throughput pairs and BPF cost windows of several saved runs (windows method)
    as one: a comparison's pairs from five runs resolve what one run's cannot."""
    runs, cost, blocks = [], [], []
    for i, path in enumerate(paths):
        res = json.loads(Path(path).read_text())
        if res.get("env", {}).get("method", "runs") != "windows":
            sys.exit(f"bench.py --pool: {path}: not a run of the windows method")
        for r in res.get("runs", []):
            runs.append(dict(r, pair=f"{i}:{r['pair']}"))
        cost += res.get("cost_runs", [])
        blocks += res.get("blocks", [])
    s = summarize_throughput({"runs": runs, "cost_runs": cost, "blocks": blocks})
    L = [f"## Pooled: {len(paths)} runs (" + ", ".join(Path(p).name for p in paths) + ")", ""]
    throughput_tables(L, s)
    print("\n".join(L[:L.index("### BPF cost (bpf_stats, pooled over the treatment runs)")]))


def main(argv):
    if argv[:1] == ["--render"]:  # re-print the report of a saved run
        if len(argv) != 2:
            sys.exit("usage: bench.py --render build/bench/bench-STAMP.json")
        results = json.loads(Path(argv[1]).read_text())
        results["summary"] = summarize_throughput(results)
        print(report(results))
        return 0
    if argv[:1] == ["--pool"]:  # the throughput of several saved runs as one
        if len(argv) < 2:
            sys.exit("usage: bench.py --pool build/bench/bench-STAMP.json ...")
        pool(argv[1:])
        return 0
    args = parse_args(argv)
    global AGENT_EXTRA, FLOOR_OBJ
    AGENT_EXTRA = args.agent_args.split()
    FLOOR_OBJ = FLOORS[args.floor]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = os.environ.get("KWB_TAG") or str(os.getpid())
    reg = Registry(out / ".pids")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    # Started in the background by run.sh, which leaves SIGINT ignored: take it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stats_file = Path("/proc/sys/kernel/bpf_stats_enabled")
    stats_saved = stats_file.read_text().strip()
    results = {"env": environment(args)}
    results["env"]["bpf_stats_enabled_before"] = stats_saved
    results["env"]["agent_args"] = AGENT_EXTRA
    results["env"]["floor"] = FLOOR_OBJ
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    t_start = time.monotonic()
    ok = False
    rc = 0
    try:
        shutil.copy2(BUILD / "keepwatchd", KEEPWATCHD)
        results["env"]["keepwatchd_sha256"] = sh(["sha256sum", KEEPWATCHD]).stdout.split()[0]
        results["env"]["keepwatchd_version"] = sh([KEEPWATCHD, "--version"],
                                                   check=False).stdout.strip()
        before = cpu_by_process()
        time.sleep(1)
        noise = foreign_cpu(before, cpu_by_process())
        results["env"]["foreign_cpu_at_start"] = {k: round(v, 2) for k, v in noise.items()
                                                  if v >= 0.01}
        if sum(noise.values()) > 0.1:
            log(f"warning: other processes are busy ({results['env']['foreign_cpu_at_start']}"
                " CPU seconds in 1 s): expect noisy throughput figures")
        if args.profile:
            pr = profile(reg, tag, args.profile, args.duration if args.duration > 2 else 5,
                         args.connections)
            results["profile"] = pr
            md = profile_report(pr)
            path = out / f"profile-{args.profile}-{stamp}.json"
            path.write_text(json.dumps(results, indent=1) + "\n")
            print(md)
            print(f"raw results: {path}")
            ok = True
            return 0
        stats_file.write_text("1\n")
        reg.add(lambda: stats_file.write_text(stats_saved + "\n"), "bpf_stats_enabled")
        if not args.no_throughput:
            tops = make_topologies(reg, tag, args.topologies)
            if args.method == "windows":
                windows_phase(reg, tops, args, results)
            else:
                throughput_phase(reg, tops, args, results)
        results["summary"] = summarize_throughput(results)
        results["map_memory"] = map_memory(reg, tag, [4096, 65536])
        if args.scrape_levels:
            results["scrape"] = scrape_figures(reg, tag, args.scrape_levels, args.scrape_gets)
        if args.big:
            results["big"] = {}
            big_figure(reg, tag, args.big_connections, results["big"], args.big_gets)
        ok = True
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({e or 'Ctrl-C'}): cleaning up")
        rc = 130
    except Exception:
        import traceback
        results["error"] = traceback.format_exc()
        log(f"failed:\n{results['error']}")
        rc = 1
    finally:
        reg.cleanup()
    results["env"]["elapsed_s"] = round(time.monotonic() - t_start)
    results["summary"] = summarize_throughput(results)
    results["complete"] = ok
    path = out / f"bench-{stamp}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    md = report(results)
    (out / f"bench-{stamp}.md").write_text(md + "\n")
    for name, target in (("latest.json", path.name), ("latest.md", f"bench-{stamp}.md")):
        link = out / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    print(md)
    print(f"\nraw results: {path} (elapsed {results['env']['elapsed_s']} s)")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
