#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# /init of the kernel-matrix guests (tests/kernels/test_kernels.py builds the initramfs):
# busybox, Debian's `ip`, keepwatchd, keepwatch and kwtraffic. Two namespaces joined by
# veth, `lb` (the client, 10.66.0.1, fd66::1) and `web` (the servers, 10.66.0.2,
# fd66::2); the agent watches both. One kwtraffic server per scenario of /etc/kw-scenarios
# in `web`, then every scenario's client at once in `lb`; then the agent's answers.
#
# Everything the host checks goes to the guest's second port, $KW_RESULTS (the kernel's
# command line sets it: /dev/ttyS1 on x86, a PCI 16550 on arm64's virt board) as
#   KW <key> <value>                       one line
#   KW-BEGIN <name> ... KW-END <name>      a document (JSON, Prometheus text, a log)
# and the guest powers off at the end, or at the first failed step ("KW fail <why>").

export PATH=/sbin:/bin:/usr/bin
# Debian's busybox sh runs its own applets before PATH: name iproute2's ip by its path.
IP=/sbin/ip
OUT=${KW_RESULTS:-/dev/ttyS1}
AGENT=127.0.0.1:9479

# say, doc, uptime_s, bye, fail; /proc, /sys, /dev, bpffs mounted
. /lib/kw-guest.sh
say "kernel $(uname -r)"
say "booted $(uptime_s)"

# veth is a module in Debian's configs; the host put it under /lib/modules/$(uname -r).
for ko in /lib/modules/"$(uname -r)"/*.ko; do
	[ -e "$ko" ] || continue
	insmod "$ko" || fail "insmod $ko"
	say "module $(basename "$ko" .ko)"
done

$IP link set lo up
for ns in lb web; do
	$IP netns add $ns || fail "ip netns add $ns"
	$IP -n $ns link set lo up
done
$IP link add kw-lb netns lb type veth peer name kw-web netns web || fail "ip link add veth"
$IP -n lb addr add 10.66.0.1/24 dev kw-lb
$IP -n lb addr add fd66::1/64 dev kw-lb nodad
$IP -n web addr add 10.66.0.2/24 dev kw-web
$IP -n web addr add fd66::2/64 dev kw-web nodad
$IP -n lb link set kw-lb up
$IP -n web link set kw-web up
say "network $(uptime_s)"

# The agent: a clean refusal (its exit status and message) is a result too, and the
# traffic still runs (the clients' view of it does not depend on the agent).
keepwatchd --no-pin --netns lb --netns web --listen $AGENT >/tmp/agent.log 2>&1 &
agent=$!
running=0
for _ in $(seq 1 600); do
	if ! kill -0 $agent 2>/dev/null; then
		wait $agent
		say "agent-exit $?"
		doc agent.log /tmp/agent.log
		break
	fi
	if wget -q -O /tmp/healthz http://$AGENT/healthz 2>/dev/null; then
		running=1
		say "agent-ready $(uptime_s)"
		break
	fi
	sleep 0.1
done
if [ $running = 0 ] && kill -0 $agent 2>/dev/null; then
	doc agent.log /tmp/agent.log
	fail "agent not answering after 60 s"
fi

# Servers first (each prints "ready" once it listens), then all the clients at once.
# A scenario: name family port idle_s linger2_s conns reqs pause_s end
addr() { if [ "$1" = ipv6 ]; then echo "fd66::$2"; else echo "10.66.0.$2"; fi; }
while read -r name family port idle linger2 conns reqs pause end; do
	case $name in '' | '#'*) continue ;; esac
	[ "$linger2" = 0 ] && linger2=
	$IP netns exec web kwtraffic serve "$(addr "$family" 2)" "$port" "$idle" $linger2 \
		>/tmp/server.$name 2>&1 &
	for _ in $(seq 1 100); do
		grep -q ready /tmp/server.$name && break
		sleep 0.05
	done
	grep -q ready /tmp/server.$name || { doc server.$name /tmp/server.$name; fail "server $name"; }
done </etc/kw-scenarios
say "servers-ready $(uptime_s)"
pids=
while read -r name family port idle linger2 conns reqs pause end; do
	case $name in '' | '#'*) continue ;; esac
	$IP netns exec lb kwtraffic client "$(addr "$family" 2)" "$port" "$conns" "$reqs" \
		"$pause" "$end" >/tmp/client.$name 2>&1 &
	pids="$pids $!"
done </etc/kw-scenarios
for p in $pids; do wait "$p"; done
say "traffic-done $(uptime_s)"
while read -r name rest; do
	case $name in '' | '#'*) continue ;; esac
	say "client $name $(cat /tmp/client.$name)"
done </etc/kw-scenarios

[ $running = 1 ] || bye
# The servers close their ends of client-closed connections as soon as they read the
# EOF, and the last FINs are still on their way when the clients exit: under TCG (arm64
# most) that can take longer than a fixed pause. Wait until no connection is active any
# more (every scenario ends with all closed), 15 s at most, then give the census (at
# most once a second) a fresh look.
i=0
while [ $i -lt 150 ]; do
	wget -q -O /tmp/upstreams http://$AGENT/api/v1/upstreams || fail "GET /api/v1/upstreams"
	grep -q '"active":[1-9]' /tmp/upstreams || break
	sleep 0.1
	i=$((i + 1))
done
say "settled $(uptime_s) after $i polls"
sleep 1.1
wget -q -O /tmp/upstreams http://$AGENT/api/v1/upstreams || fail "GET /api/v1/upstreams"
wget -q -O /tmp/metrics http://$AGENT/metrics || fail "GET /metrics"
keepwatch --agent http://$AGENT stat -j >/tmp/stat 2>&1
say "cli-exit $?"
doc upstreams /tmp/upstreams
doc metrics /tmp/metrics
doc stat /tmp/stat
kill $agent
wait $agent
say "agent-exit $?"
doc agent.log /tmp/agent.log
bye
