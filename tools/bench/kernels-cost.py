#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The BPF cost of the agent's programs in Debian's own kernels, booted in qemu: the older
kernels' fallbacks (6.1) against the preferred programs (6.12), each against empty
programs on the same hooks (BENCHMARKS.md, "2026-12-04: the fallbacks' cost on 6.1, in
qemu guests").

    tools/bench/kernels-cost.py [--kernels 6.1,6.12] [--rounds 10] [--keepalive 4x2000]
                                [--close 50x20] [--timeout 900]      (make bench-kernels)

Per kernel one boot (tools/kernels/kernels.py: fetch, extract, initramfs, qemu under TCG)
with tools/bench/kernels-cost-init.sh as /init: kernel.bpf_stats_enabled=1, then each
round runs each load once under the agent (keepwatchd --no-pin on the two test
namespaces; its keepwatch_bpf_program_* counters read from /metrics with busybox wget
just before and after the load) and once under the empty programs (floorload with
floor.bpf.o, or floor-fallbacks.bpf.o on 6.1, whose receive program is on
tcp_rcv_space_adjust as the agent's is there; its bpf_stats read at its exit), in
alternating order. Loads, by kwtraffic over veth (tests/kernels/kwtraffic.c):
keep-alive, C connections x R sequential requests each; close, B batches of C
connections x 1 request (the client closes first). Every request is seen twice, at the
client and at the server, as on the host benchmark.

BPF ns per request = sum over the hooks' programs of run_time_ns / requests answered.
TCG emulates the CPU, so the nanoseconds are the emulator's; the agent against the floor
in the same boot (difference and ratio) is what compares programs. Prints Markdown; the
raw figures go to build/bench/kernels-cost-STAMP.json (and kernels-cost-latest.{json,md}).
Needs build/keepwatchd (make), clang, libbpf-dev, qemu-system-x86 (kernels.py deps).
"""

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "kernels"))
import kernels  # noqa: E402

OUT = kernels.BUILD / "bench"
# name: (Debian metapackage, floor object, what the agent's requests job is expected on)
KERNELS = {
    "6.1": ("linux-image-amd64", "floor-fallbacks", "tp_btf/tcp_rcv_space_adjust"),
    "6.12": ("linux-image-6.12-amd64", "floor", "tp_btf/sock_recv_length"),
}


def build(a):
    """The floor objects (as tools/bench/run.sh builds them), floorload (dynamic: the
    initramfs gets its libraries) and kwtraffic: {name: path}."""
    OUT.mkdir(parents=True, exist_ok=True)
    here = REPO / "tools" / "bench"
    out = {}
    for name, flags in (("floor", []), ("floor-fallbacks", ["-DFALLBACKS"])):
        out[name] = OUT / f"{name}.bpf.o"
        kernels.run(["clang", "-g", "-O2", "-Wall", "-Werror", "-target", "bpf",
                     f"-D__TARGET_ARCH_{a.name}", f"-I{REPO}/bpf/vmlinux/{a.name}", *flags,
                     "-c", here / "floor.bpf.c", "-o", out[name]])
    out["floorload"] = OUT / "floorload"
    kernels.run([a.cc, "-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
                 "-Wmissing-prototypes", "-Wstrict-prototypes", here / "floorload.c",
                 "-lbpf", "-o", out["floorload"]])
    out["kwtraffic"] = kernels.build_kwtraffic(a)
    return out


def prom_programs(text):
    """{program: [runs, ns]} from the agent's keepwatch_bpf_program_* lines."""
    progs = {}
    for fam, name, value in re.findall(
            r'^keepwatch_bpf_program_(runs_total|run_seconds_total)\{program="([^"]+)"\} (\S+)$',
            text, re.M):
        p = progs.setdefault(name, [0, 0])
        if fam == "runs_total":
            p[0] = int(value)
        else:
            p[1] = round(float(value) * 1e9)
    return progs


def phases(report):
    """Each phase of the guest's report: {round, load, who, requests, seconds, progs:
    {program: (runs, ns)}}."""
    out = []
    docs = report["docs"]
    for line in report["lines"].get("phase", []):
        rnd, load, who, *kv = line.split()
        f = dict(x.split("=", 1) for x in kv)
        key = f"{rnd}.{load}"
        if who == "agent":
            before = prom_programs(docs[f"before.{key}"])
            after = prom_programs(docs[f"after.{key}"])
            progs = {p: (after[p][0] - before.get(p, [0, 0])[0],
                         after[p][1] - before.get(p, [0, 0])[1]) for p in after}
        else:
            # floorload's reports, "prog NAME RUNS NS" lines each ended by "stats K": the
            # first just before the load, the last after it.
            reports = [{m[0]: (int(m[1]), int(m[2])) for m in
                        re.findall(r"^prog (\S+) (\d+) (\d+)$", r, re.M)}
                       for r in re.split(r"^stats \d+$", docs[f"floor.{key}"], flags=re.M)]
            before, after = reports[0], reports[-2]  # the split leaves a tail after the last
            progs = {p: (after[p][0] - before[p][0], after[p][1] - before[p][1])
                     for p in after}
        out.append(dict(round=int(rnd), load=load, who=who, requests=int(f["requests"]),
                        seconds=float(f["seconds"]), progs=progs))
    return out


def attach_info(report):
    """The agent's {job: program}, from the first scrape."""
    first = next((v for k, v in report["docs"].items() if k.startswith("before.")), "")
    return dict(re.findall(r'^keepwatch_bpf_attach_info\{job="([^"]*)",program="([^"]*)"\} 1$',
                           first, re.M))


def programs(report):
    """The agent's programs as this kernel loaded them: {name: (xlated instructions,
    calls left, JITed bytes)} (floorload -l; names cut at 15 characters)."""
    return {m[0]: tuple(map(int, m[1:])) for m in
            re.findall(r"^info \d+ (kw_\S+) (\d+) (\d+) (\d+) \d+ \d+$",
                       report["docs"].get("programs", ""), re.M)}


def boot(name, meta, floor_obj, a, bins, loads, rounds, timeout):
    """One guest run to power-off: its report and timings."""
    k = kernels.fetch(meta, a)
    # The bench's own folder: a `make test-kernels` meanwhile writes to k["dir"].
    k = dict(k, dir=OUT / "kernels" / k["kver"])
    k["dir"].mkdir(parents=True, exist_ok=True)
    cost = "".join(f"{n} {c} {r} {b}\n" for n, c, r, b in loads).encode()
    base = kernels.base_initramfs(
        [a.binaries / "keepwatchd", bins["kwtraffic"], bins["floorload"]],
        {"init": (REPO / "tools/bench/kernels-cost-init.sh").read_bytes(),
         "etc/kw-cost": cost, "etc/kw-rounds": f"{rounds}\n".encode(),
         "etc/kw-floor.bpf.o": (bins[floor_obj]).read_bytes()}, a)
    print(f"kernels-cost: {name}: booting {k['package']} {k['version']} "
          f"({rounds} rounds, timeout {timeout} s)", file=sys.stderr, flush=True)
    p = kernels.start(k, base, timeout)
    status = p.wait()
    seconds = time.monotonic() - p.started
    results = k["dir"] / "results.log"
    report = kernels.parse_report(results.read_text(errors="replace")
                                  if results.exists() else "")
    lines = report["lines"]
    if status != 0 or "done" not in lines or "fail" in lines:
        tail = "\n".join((k["dir"] / "console.log").read_text(errors="replace")
                         .splitlines()[-15:]) if (k["dir"] / "console.log").exists() else ""
        raise kernels.KernelError(
            f"{name}: the guest did not finish (qemu exit {status}, {seconds:.0f} s; "
            f"fail: {lines.get('fail')}); see {k['dir']}/console.log and results.log\n{tail}")
    print(f"kernels-cost: {name}: {lines['kernel'][0]}, guest {seconds:.0f} s",
          file=sys.stderr, flush=True)
    return dict(name=name, package=k["package"], version=k["version"],
                release=lines["kernel"][0], seconds=seconds, jobs=attach_info(report),
                programs=programs(report), phases=phases(report))


# --- the report ----------------------------------------------------------------------------

def ns_per_request(ph):
    return sum(ns for _, ns in ph["progs"].values()) / ph["requests"]


def fmt_range(vals, f="{:.0f}"):
    return f"{f.format(min(vals))}–{f.format(max(vals))}" if len(vals) > 1 else ""


def summarise(run, load):
    """Per round: agent and floor ns/request, their difference and ratio; per program:
    runs/request and ns/run, pooled over the rounds."""
    ph = [p for p in run["phases"] if p["load"] == load]
    rounds = sorted({p["round"] for p in ph})
    by = {(p["round"], p["who"]): p for p in ph}
    agent = [ns_per_request(by[r, "agent"]) for r in rounds]
    floor = [ns_per_request(by[r, "floor"]) for r in rounds]
    progs = {}
    for who in ("agent", "floor"):
        req = sum(by[r, who]["requests"] for r in rounds)
        names = sorted({n for r in rounds for n in by[r, who]["progs"]})
        for n in names:
            runs = sum(by[r, who]["progs"].get(n, (0, 0))[0] for r in rounds)
            ns = sum(by[r, who]["progs"].get(n, (0, 0))[1] for r in rounds)
            progs[who, n] = (runs / req, ns / runs if runs else 0)
    return dict(load=load, rounds=len(rounds), requests=by[rounds[0], "agent"]["requests"],
                agent=agent, floor=floor, diff=[x - y for x, y in zip(agent, floor)],
                ratio=[x / y for x, y in zip(agent, floor)], progs=progs,
                seconds={w: statistics.median(by[r, w]["seconds"] for r in rounds)
                         for w in ("agent", "floor")})


def report(runs, loads, rounds):
    med = statistics.median
    out = ["| kernel | load | requests a phase | agent ns/req | floor ns/req "
           "| agent − floor | agent / floor |", "|---|---|---|---|---|---|---|"]
    sums = {}
    for run in runs:
        for load, *_ in loads:
            s = sums[run["name"], load] = summarise(run, load)
            out.append(
                f"| {run['name']} | {load} | {s['requests']} "
                f"| **{med(s['agent']):.0f}** ({fmt_range(s['agent'])}) "
                f"| **{med(s['floor']):.0f}** ({fmt_range(s['floor'])}) "
                f"| **{med(s['diff']):.0f}** ({fmt_range(s['diff'])}) "
                f"| **{med(s['ratio']):.2f}** ({fmt_range(s['ratio'], '{:.2f}')}) |")
    out += ["", "Medians over the rounds (min–max in brackets); each round pairs one agent "
            "phase with one floor phase.", "",
            "| kernel | load | programs | program | runs/request | ns/run |",
            "|---|---|---|---|---|---|"]
    for run in runs:
        for load, *_ in loads:
            s = sums[run["name"], load]
            for (who, n), (rpr, npr) in sorted(s["progs"].items()):
                out.append(f"| {run['name']} | {load} | {who} | {n} | {rpr:.3f} | {npr:.0f} |")
    if len(runs) > 1:
        out += ["", "| load | " + " | ".join(f"{r['name']}: agent − floor" for r in runs)
                + " | " + " | ".join(f"{r['name']}: agent / floor" for r in runs) + " |",
                "|---|" + "---|" * (2 * len(runs))]
        for load, *_ in loads:
            out.append(f"| {load} | "
                       + " | ".join(f"{med(sums[r['name'], load]['diff']):.0f}" for r in runs)
                       + " | "
                       + " | ".join(f"{med(sums[r['name'], load]['ratio']):.2f}"
                                    for r in runs) + " |")
    out += ["", "| kernel | agent program | instructions (after the verifier) | calls left "
            "| JITed bytes |", "|---|---|---|---|---|"]
    for run in runs:
        # The kernel keeps 15 characters of a name: the full one from /metrics.
        full = {n for p in run["phases"] if p["who"] == "agent" for n in p["progs"]}
        for n, (insns, calls, jited) in sorted(run["programs"].items()):
            if not n.startswith("kw_iter"):
                n = next((f for f in sorted(full) if f.startswith(n)), n)
                out.append(f"| {run['name']} | {n} | {insns} | {calls} | {jited} |")
    out += [""]
    for run in runs:
        jobs = ", ".join(f"{j} {p}" for j, p in run["jobs"].items()
                         if j in ("requests", "reset_reasons", "resets_without_socket",
                                  "tcp_sock"))
        secs = ", ".join(f"{load} {sums[run['name'], load]['seconds']['agent']:.1f} s"
                         for load, *_ in loads)
        out.append(f"- {run['name']}: {run['package']} {run['version']} ({run['release']}), "
                   f"guest {run['seconds']:.0f} s, {rounds} rounds; a phase's load took "
                   f"{secs} (median, agent); the agent's {jobs}.")
    return "\n".join(out) + "\n"


def parse_load(s, what):
    m = re.fullmatch(r"(\d+)x(\d+)", s)
    if not m or not 0 < int(m.group(1)) <= 64 or not 0 < int(m.group(2)) <= 100000:
        raise argparse.ArgumentTypeError(f"bad {what} '{s}': CONNSxN, 1-64 connections")
    return int(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", default="6.1,6.12",
                    help="comma-separated, of: " + ", ".join(KERNELS))
    ap.add_argument("--rounds", type=int, default=10,
                    help="agent and floor phases of each load per boot (default 10)")
    ap.add_argument("--keepalive", default="4x2000", type=lambda s: parse_load(s, "keepalive"),
                    help="keep-alive load: CONNSxREQUESTS (default 4x2000)")
    ap.add_argument("--close", default="50x20", type=lambda s: parse_load(s, "close"),
                    help="close load: CONNSxBATCHES of one request each (default 50x20)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per guest (default 900)")
    args = ap.parse_args()
    names = args.kernels.split(",")
    bad = [n for n in names if n not in KERNELS]
    if bad or not 1 <= args.rounds <= 20:
        ap.error(f"unknown kernels {bad}" if bad else "--rounds: 1 to 20")
    a = kernels.arch("x86")
    if not a.native:
        ap.error("the guests are x86: run on an x86_64 host")
    if not (a.binaries / "keepwatchd").exists():
        ap.error(f"{a.binaries / 'keepwatchd'} missing: run make")
    missing = kernels.missing_host_packages(a)
    if missing:
        ap.error(f"missing {' '.join(missing)}: tools/kernels/kernels.py deps x86")
    loads = [("keepalive", *args.keepalive, 1), ("close", args.close[0], 1, args.close[1])]
    try:
        bins = build(a)
        runs = [boot(n, KERNELS[n][0], KERNELS[n][1], a, bins, loads, args.rounds,
                     args.timeout) for n in names]
    except kernels.KernelError as e:
        print(f"kernels-cost: {e}", file=sys.stderr)
        return 1
    for run in runs:
        want = KERNELS[run["name"]][2]
        if run["jobs"].get("requests") != want:
            print(f"kernels-cost: {run['name']}: requests on {run['jobs'].get('requests')}, "
                  f"expected {want}", file=sys.stderr)
            return 1
    md = report(runs, loads, args.rounds)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    raw = json.dumps(dict(stamp=stamp, args=vars(args) | dict(loads=loads), runs=runs),
                     indent=1)
    for f, text in ((f"kernels-cost-{stamp}.json", raw), ("kernels-cost-latest.json", raw),
                    ("kernels-cost-latest.md", md)):
        (OUT / f).write_text(text)
    print(md, end="")
    print(f"kernels-cost: raw results in {OUT / f'kernels-cost-{stamp}.json'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
