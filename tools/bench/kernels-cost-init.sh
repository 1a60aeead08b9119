#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# /init of the guests' cost benchmark (tools/bench/kernels-cost.py builds the initramfs):
# busybox, Debian's `ip`, keepwatchd, kwtraffic, floorload and the floor object at
# /etc/kw-floor.bpf.o. The network of the kernel-matrix guests (tests/kernels/
# guest-init.sh): namespaces `lb` (client, 10.66.0.1) and `web` (server, 10.66.0.2)
# joined by veth, one kwtraffic keep-alive server in web. With kernel.bpf_stats_enabled=1,
# each round runs every load of /etc/kw-cost once under the agent and once under the
# empty programs, in alternating order (the agent first in odd rounds, the floor first in even ones).
#
# /etc/kw-cost, one line per load:   name conns reqs batches
#	`batches` runs of `kwtraffic client ... conns reqs 0 close`, one after the other.
#
# Reports on $KW_RESULTS, as the kernel-matrix guests do (KW lines, KW-BEGIN/END docs):
#   KW phase ROUND LOAD agent|floor requests=N seconds=S
#   docs before.ROUND.LOAD and after.ROUND.LOAD: the agent's keepwatch_bpf_* lines of
#   /metrics read just before and just after the load; floor.ROUND.LOAD: floorload's
#   output, its per-program bpf_stats just before the load ("stats 1") and after it.
#   doc programs: `floorload -l` with the agent loaded, after the rounds.
# Bounded: every client under `timeout`, every wait a bounded loop; the host kills the
# guest after its own timeout.

export PATH=/sbin:/bin:/usr/bin
IP=/sbin/ip
OUT=${KW_RESULTS:-/dev/ttyS1}
AGENT=127.0.0.1:9479
FLOOR=/etc/kw-floor.bpf.o
CLIENT_TIMEOUT=300 # s, each kwtraffic client
read -r ROUNDS </etc/kw-rounds

# say, doc, uptime_s, bye, fail; /proc, /sys, /dev, bpffs mounted
. /lib/kw-guest.sh
say "kernel $(uname -r)"
echo 1 >/proc/sys/kernel/bpf_stats_enabled || fail "kernel.bpf_stats_enabled=1"
say "bpf-stats $(cat /proc/sys/kernel/bpf_stats_enabled)"

for ko in /lib/modules/"$(uname -r)"/*.ko; do
	[ -e "$ko" ] || continue
	insmod "$ko" || fail "insmod $ko"
done
$IP link set lo up
for ns in lb web; do
	$IP netns add $ns || fail "ip netns add $ns"
	$IP -n $ns link set lo up
done
$IP link add kw-lb netns lb type veth peer name kw-web netns web || fail "ip link add veth"
$IP -n lb addr add 10.66.0.1/24 dev kw-lb
$IP -n web addr add 10.66.0.2/24 dev kw-web
$IP -n lb link set kw-lb up
$IP -n web link set kw-web up

# One server for every load; its keep-alive timeout (600 s) never closes a connection here.
$IP netns exec web kwtraffic serve 10.66.0.2 8001 600 >/tmp/server 2>&1 &
for _ in $(seq 1 100); do
	grep -q ready /tmp/server && break
	sleep 0.05
done
grep -q ready /tmp/server || { doc server /tmp/server; fail "server"; }
say "ready $(uptime_s)"

# run_load CONNS REQS BATCHES: the requests answered, from the clients' summaries.
run_load() {
	: >/tmp/clients
	for _ in $(seq 1 "$3"); do
		timeout $CLIENT_TIMEOUT $IP netns exec lb kwtraffic client 10.66.0.2 8001 "$1" "$2" \
			0 close >>/tmp/clients 2>&1 || { doc clients /tmp/clients; fail "client"; }
	done
	sed -n 's/.*responses=\([0-9]*\).*/\1/p' /tmp/clients | awk '{ n += $1 } END { print n + 0 }'
}

# The agent's own counters, without the rest of the page.
scrape() {
	wget -q -O /tmp/metrics http://$AGENT/metrics || fail "GET /metrics"
	grep '^keepwatch_bpf_' /tmp/metrics >"$1"
}

# Each phase: the programs attached, one batch of the load at most 100 requests a
# connection as a warm-up (qemu's TCG runs code slowly until it has translated it, and
# each phase's programs are new code), the programs' counters, the load, the counters.
warm_up() { run_load "$1" "$(($2 < 100 ? $2 : 100))" 1 >/dev/null; }

agent_phase() { # ROUND LOAD CONNS REQS BATCHES
	keepwatchd --no-pin --netns lb --netns web --listen $AGENT >/tmp/agent.log 2>&1 &
	agent=$!
	for _ in $(seq 1 600); do
		kill -0 $agent 2>/dev/null || { doc agent.log /tmp/agent.log; fail "agent exited"; }
		wget -q -O /dev/null http://$AGENT/healthz 2>/dev/null && break
		sleep 0.1
	done
	warm_up "$3" "$4"
	scrape /tmp/before
	t0=$(uptime_s)
	n=$(run_load "$3" "$4" "$5")
	t1=$(uptime_s)
	scrape /tmp/after
	kill $agent
	wait $agent
	say "phase $1 $2 agent requests=$n seconds=$(echo "$t1 $t0" | awk '{ print $1 - $2 }')"
	doc "before.$1.$2" /tmp/before
	doc "after.$1.$2" /tmp/after
}

# wait_for FILE PATTERN: at most 60 s.
wait_for() {
	for _ in $(seq 1 600); do
		grep -q "$2" "$1" && return 0
		kill -0 $floor 2>/dev/null || { doc floor.log /tmp/floor; fail "floorload exited"; }
		sleep 0.1
	done
	doc floor.log /tmp/floor
	fail "floorload: no '$2' after 60 s"
}

floor_phase() { # ROUND LOAD CONNS REQS BATCHES
	floorload $FLOOR >/tmp/floor 2>&1 &
	floor=$!
	wait_for /tmp/floor '^attached'
	warm_up "$3" "$4"
	kill -USR1 $floor
	wait_for /tmp/floor '^stats 1$'
	t0=$(uptime_s)
	n=$(run_load "$3" "$4" "$5")
	t1=$(uptime_s)
	kill -TERM $floor
	wait $floor || { doc floor.log /tmp/floor; fail "floorload exit $?"; }
	say "phase $1 $2 floor requests=$n seconds=$(echo "$t1 $t0" | awk '{ print $1 - $2 }')"
	doc "floor.$1.$2" /tmp/floor
}

for round in $(seq 1 "$ROUNDS"); do
	while read -r load conns reqs batches; do
		case $load in '' | '#'*) continue ;; esac
		if [ $((round % 2)) = 1 ]; then
			agent_phase "$round" "$load" "$conns" "$reqs" "$batches"
			floor_phase "$round" "$load" "$conns" "$reqs" "$batches"
		else
			floor_phase "$round" "$load" "$conns" "$reqs" "$batches"
			agent_phase "$round" "$load" "$conns" "$reqs" "$batches"
		fi
	done </etc/kw-cost
	say "round $round $(uptime_s)"
done

# What the agent's programs became on this kernel: instructions after the verifier, the
# calls left in them, native code size (floorload -l lists every loaded program).
keepwatchd --no-pin --netns lb --netns web --listen $AGENT >/tmp/agent.log 2>&1 &
agent=$!
for _ in $(seq 1 600); do
	wget -q -O /dev/null http://$AGENT/healthz 2>/dev/null && break
	sleep 0.1
done
floorload -l >/tmp/programs 2>&1 || { doc programs /tmp/programs; fail "floorload -l"; }
doc programs /tmp/programs
kill $agent
wait $agent
doc agent.log /tmp/agent.log
bye
