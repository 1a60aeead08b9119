// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * keepwatch's kernel side: follows every TCP connection from tracepoints and aggregates,
 * in the kernel, per upstream (netns, direction, peer address, service port).
 *
 * A connection gets per-socket state (socket storage) when it reaches ESTABLISHED,
 * holding its upstream's slot in the counters array. The only per-request work is one
 * storage lookup on the receive path, which counts a request at each request/response
 * turn straight into the upstream's slot (an array lookup the verifier inlines, no hash).
 * Everything else is folded into the upstream's counters once, when the socket reaches
 * CLOSE. User space reads the counters array through mmap.
 *
 * Resets are rare and get the expensive work: naming the kernel's reason, finding the
 * connection a reset belongs to even when only a timewait socket, a listener or the
 * packet is left (a short-lived map of connections we closed while idle), telling
 * keep-alive races apart, and sending notable events to user space, rate limited.
 *
 * This file holds the maps, the settings the agent sets before load and the programs,
 * each a one-line wrapper around a handler; the logic is in the headers beside it, one per
 * concern, included below the maps.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "keepwatch.h"
#include "types.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Filters, set by the agent before load: the network namespaces (inode numbers) and
 * service ports (host order) wanted; none means all. A few compares with constants the
 * verifier knows beat a hash lookup.
 */
const volatile __u32 cfg_netns[KW_MAX_FILTERS] = {};
const volatile __u32 cfg_n_netns = 0;
const volatile __u32 cfg_ports[KW_MAX_FILTERS] = {};
const volatile __u32 cfg_n_ports = 0;
/*
 * The agent's own HTTP server: its namespace, port (0: count it like any other, with
 * --watch-self) and address (network order, IPv4 v4-mapped); cfg_self_any: it listens on
 * every address.
 */
const volatile __u32 cfg_self_netns = 0;
const volatile __u32 cfg_self_port = 0;
const volatile __u32 cfg_self_addr[4] = {};
const volatile __u32 cfg_self_any = 0;
/* kw_conns entries minus one (a power of two minus one; the agent sets it). */
const volatile __u32 cfg_conns_mask = KW_CONN_TABLE_DEFAULT - 1;
/* Slots in kw_counters: --max-upstreams plus the overflow slots (the agent sets it). */
const volatile __u32 cfg_capacity = KW_MAX_UPSTREAMS_DEFAULT + KW_DIR_MAX;
/* Events: at most this many per second and CPU, in bursts of up to cfg_events_burst. */
const volatile __u32 cfg_events_per_sec = KW_EVENTS_PER_SEC_DEFAULT;
const volatile __u32 cfg_events_burst = KW_EVENTS_BURST_DEFAULT;
/*
 * 1: tcp_of() casts with the bpf_rdonly_cast kfunc (6.2+); 0: it calls
 * bpf_skc_to_tcp_sock(). The loader clears it on a kernel without the kfunc: see
 * compat.bpf.h.
 */
const volatile __u32 cfg_use_rdonly_cast = 1;
/*
 * 1: the fentry programs on tcp_v4/v6_send_reset count the resets of timewait sockets and
 * of no socket, and kw_send_reset_noreason leaves them (compat.bpf.h).
 */
const volatile __u32 cfg_bare_resets_fentry = 0;
/* This load's generation: its programs count while KW_GLOBAL_ACTIVE holds it (in_charge). */
const volatile __u64 cfg_gen = 0;

extern int CONFIG_HZ __kconfig;

/*
 * Connections, by a hash of the socket's address (cfg_conns_mask + 1 entries, a power
 * of two), owned by socket address and sk_hash. Taking an entry is a compare-and-swap;
 * finding one is an inlined array lookup, no helper call. Mmapable only for its page
 * alignment: each entry is one cache line.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KW_CONN_TABLE_DEFAULT);
	__type(key, __u32);
	__type(value, struct kw_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_conns SEC(".maps");

/*
 * Connects in progress (struct kw_syn), at the kw_conns index of the socket's address:
 * one plain store at SYN_SENT, one load at ESTABLISHED, for the connect latency. Not
 * pinned: a connect in progress across an agent restart goes unmeasured.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KW_CONN_TABLE_DEFAULT);
	__type(key, __u32);
	__type(value, struct kw_syn);
} kw_syns SEC(".maps");

/*
 * Recently used upstreams per CPU, in front of the kw_upstreams hash: most connections
 * of a host go to a few upstreams. An entry holds while KW_GLOBAL_GEN (bumped by the agent
 * before it evicts upstreams) has not moved.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLOT_CACHE_WAYS);
	__type(key, __u32);
	__type(value, struct kw_slot_cache);
} kw_slot_cache SEC(".maps");

/*
 * KW_GLOBAL_GEN: the eviction generation, written by the agent only.
 * KW_GLOBAL_STORAGE_CONNS: connections in socket storage now; while there are none, a
 * socket missing from kw_conns is untracked without asking the storage.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KW_GLOBAL_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_globals SEC(".maps");

/* Connections whose kw_conns entry belonged to another live connection. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kw_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_socks SEC(".maps");

/* Upstream key to its slot in kw_counters. Sizes: the agent sets them to cfg_capacity. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KW_MAX_UPSTREAMS_DEFAULT + KW_DIR_MAX);
	__type(key, struct kw_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_upstreams SEC(".maps");

/* The counters, one slot per upstream; slots 0 and 1 are the overflow upstreams. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KW_MAX_UPSTREAMS_DEFAULT + KW_DIR_MAX);
	__type(key, __u32);
	__type(value, struct kw_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_counters SEC(".maps");

/* Slots freed by the agent's eviction, zeroed, ready for new upstreams. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, KW_MAX_UPSTREAMS_DEFAULT + KW_DIR_MAX);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_free_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kw_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KW_ERR_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_errors SEC(".maps");

/* Program statistics over every load, written by the agent only (struct kw_prog_total). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KW_PROG_TOTALS);
	__type(key, __u32);
	__type(value, struct kw_prog_total);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_prog_totals SEC(".maps");

/* Rare, notable events for the agent's event log (struct kw_event). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, KW_EVENTS_RINGBUF_BYTES);
} kw_events SEC(".maps");

/*
 * Inbound connections we closed with a FIN, by tuple: a request that arrives after the
 * full socket is gone (at its timewait socket, at the listener, or at no socket at all)
 * is matched here. LRU: old entries make room by themselves.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KW_CLOSED_BY_US_ENTRIES);
	__type(key, struct kw_tuple);
	__type(value, struct kw_closed);
} kw_closed_by_us SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kw_rate);
} kw_event_rate SEC(".maps");

/*
 * The listening ports of the namespace the adoption walk is in (iter/tcp walks the
 * listeners first): an established socket on one of them was accepted. One walk at a
 * time, at the agent's start; the agent clears the bitmap before each namespace.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kw_ports);
} kw_listening SEC(".maps");

/*
 * The logic, by concern. The headers use the maps and the rodata above, so they come
 * after them; each uses only the ones included before it.
 */
#include "compat.bpf.h"
#include "counters.bpf.h"
#include "tuple.bpf.h"
#include "filter.bpf.h"
#include "slots.bpf.h"
#include "conn.bpf.h"
#include "events.bpf.h"
#include "close.bpf.h"
#include "recv.bpf.h"
#include "reset.bpf.h"
#include "iter.bpf.h"

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(kw_set_state, const struct sock *sk, int oldstate, int newstate)
{
	if (!in_charge())
		return 0;
	return handle_set_state(sk, oldstate, newstate);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(kw_recv, struct sock *sk, int ret, int flags)
{
	if (!in_charge())
		return 0;
	return handle_recv(sk, ret, flags);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(kw_rcv_reset, struct sock *sk)
{
	if (!in_charge())
		return 0;
	return handle_receive_reset(sk);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(kw_send_reset, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	if (!in_charge())
		return 0;
	return handle_send_reset(sk, skb, rst_reason(reason));
}

/* The fallbacks, chosen by the loader where the kernel lacks the above (compat.bpf.h). */

/* Requests before sock_recv_length (6.3). */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(kw_recv_rcvspace, struct sock *sk)
{
	if (!in_charge())
		return 0;
	return handle_recv(sk, 1, 0);
}

/* Resets sent before the reason argument (6.10). */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(kw_send_reset_noreason, const struct sock *sk, const struct sk_buff *skb)
{
	if (!in_charge() || (cfg_bare_resets_fentry && rst_bare(sk)))
		return 0;
	return handle_send_reset(sk, skb, rst_reason_inferred(sk, skb));
}

/* Resets of timewait sockets and of no socket, where the tracepoint misses them. */
SEC("fentry/tcp_v4_send_reset")
int BPF_PROG(kw_v4_send_reset, const struct sock *sk, struct sk_buff *skb)
{
	if (!in_charge() || !rst_bare(sk))
		return 0;
	return handle_send_reset(sk, skb, rst_reason_inferred(sk, skb));
}

SEC("fentry/tcp_v6_send_reset")
int BPF_PROG(kw_v6_send_reset, const struct sock *sk, struct sk_buff *skb)
{
	if (!in_charge() || !rst_bare(sk))
		return 0;
	return handle_send_reset(sk, skb, rst_reason_inferred(sk, skb));
}

/* The TCP census of the reader's network namespace (struct kw_census per socket). */
SEC("iter/tcp")
int kw_iter_tcp(struct bpf_iter__tcp *ctx)
{
	return handle_census(ctx);
}

/* Adoption of the connections established before the agent started. */
SEC("iter/tcp")
int kw_iter_adopt(struct bpf_iter__tcp *ctx)
{
	return handle_adopt(ctx);
}
