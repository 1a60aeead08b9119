// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * keepwatch's kernel side: follows every TCP connection from tracepoints and aggregates,
 * in the kernel, per upstream (netns, direction, peer address, service port).
 *
 * A connection gets per-socket state (socket storage) when it reaches ESTABLISHED. The
 * only per-request work is one storage lookup on the receive path, which counts a
 * request at each request/response turn. Everything else is folded into the upstream's
 * counters once, when the socket reaches CLOSE. Requests on connections still open are
 * read by user space through the socket-storage iterator, so the hot path never touches
 * the upstream map.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "keepwatch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET	    2
#define AF_INET6    10
#define IPPROTO_TCP 6
#define MSG_PEEK    2
#define EEXIST	    17

/* Filters, set by the agent before load. */
const volatile __u8 cfg_filter_netns = 0;
const volatile __u8 cfg_filter_ports = 0;

extern int CONFIG_HZ __kconfig;

/* kw_sock.flags */
#define SF_CLOSING  0x01 /* the first close was seen and recorded */
#define SF_FIN_SENT 0x02 /* our FIN is queued: it took one sequence number */
#define SF_RST_RCVD 0x04 /* a reset arrived */
#define SF_FOLDED   0x08 /* counted into the upstream; the iterator skips it */

/* Per-socket state, freed with the socket. */
struct kw_sock {
	struct kw_key key;
	__u32 requests; /* requests so far */
	__u32 mark;	/* our write_seq at the last counted turn */
	__u32 idle_ms;	/* idle time before the first close, ms */
	__u8 closed_by; /* KW_BY_* */
	__u8 how;	/* KW_HOW_* */
	__u8 flags;	/* SF_* */
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kw_sock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096 + KW_DIR_MAX); /* the agent sets it: --max-upstreams + overflow */
	__type(key, struct kw_key);
	__type(value, struct kw_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_upstreams SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KW_ERR_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kw_errors SEC(".maps");

/* Rare, notable events for the agent's event log (struct kw_event). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} kw_events SEC(".maps");

/* Allowed network namespaces (inode numbers), used when cfg_filter_netns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} kw_netns_allow SEC(".maps");

/* Allowed service ports (host order), used when cfg_filter_ports. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u8);
} kw_ports_allow SEC(".maps");

static __always_inline void count_error(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&kw_errors, &slot);

	if (v)
		*v += 1; /* per-CPU: no atomic needed */
}

static __always_inline struct kw_sock *sock_state(const struct sock *sk)
{
	return bpf_sk_storage_get(&kw_socks, (struct sock *)sk, NULL, 0);
}

/*
 * The upstream's counters, created on first use. When the map is full the counts go to
 * the direction's overflow upstream, which the agent creates at start-up.
 */
static struct kw_counters *upstream(const struct kw_key *key)
{
	static const struct kw_counters zero;
	struct kw_key overflow = { .direction = key->direction };
	struct kw_counters *c;
	long err;

	c = bpf_map_lookup_elem(&kw_upstreams, key);
	if (c)
		return c;
	err = bpf_map_update_elem(&kw_upstreams, key, &zero, BPF_NOEXIST);
	if (!err || err == -EEXIST) {
		c = bpf_map_lookup_elem(&kw_upstreams, key);
		if (c)
			return c;
	} else {
		count_error(KW_ERR_UPSTREAMS_FULL);
	}
	c = bpf_map_lookup_elem(&kw_upstreams, &overflow);
	if (!c)
		count_error(KW_ERR_NO_UPSTREAM);
	return c;
}

static __always_inline bool fill_key(const struct sock *sk, __u8 direction, struct kw_key *key)
{
	__u16 family = sk->__sk_common.skc_family;
	__u32 *a32 = (__u32 *)key->addr;

	key->direction = direction;
	key->netns = sk->__sk_common.skc_net.net->ns.inum;
	if (direction == KW_DIR_INBOUND)
		key->port = sk->__sk_common.skc_num;
	else
		key->port = bpf_ntohs(sk->__sk_common.skc_dport);

	if (family == AF_INET) {
		a32[0] = 0;
		a32[1] = 0;
		a32[2] = bpf_htonl(0xffff);
		a32[3] = sk->__sk_common.skc_daddr;
		key->family = KW_AF_INET;
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&key->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		/* A v4 peer of a dual-stack socket is an IPv4 upstream. */
		key->family = (a32[0] | a32[1]) == 0 && a32[2] == bpf_htonl(0xffff) ? KW_AF_INET :
										      KW_AF_INET6;
	} else {
		return false;
	}
	return true;
}

static __always_inline bool wanted(const struct kw_key *key)
{
	if (cfg_filter_netns && !bpf_map_lookup_elem(&kw_netns_allow, &key->netns))
		return false;
	if (cfg_filter_ports && !bpf_map_lookup_elem(&kw_ports_allow, &key->port))
		return false;
	return true;
}

/* A connection reached ESTABLISHED: give it state and count it opened. */
static __always_inline void on_established(const struct sock *sk, int oldstate)
{
	struct kw_counters *c;
	struct tcp_sock *tp;
	struct kw_sock *s;
	struct kw_key key = {};
	__u8 direction;

	if (oldstate == TCP_SYN_SENT)
		direction = KW_DIR_OUTBOUND;
	else if (oldstate == TCP_SYN_RECV)
		direction = KW_DIR_INBOUND;
	else
		return;
	if (!fill_key(sk, direction, &key)) {
		count_error(KW_ERR_FAMILY);
		return;
	}
	if (!wanted(&key))
		return;
	tp = bpf_skc_to_tcp_sock((struct sock *)sk);
	if (!tp)
		return;
	s = bpf_sk_storage_get(&kw_socks, (struct sock *)sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s) {
		count_error(KW_ERR_SOCK_STORAGE);
		return;
	}
	/* Storage may survive a disconnect and a new connect(): start afresh. */
	s->key = key;
	s->requests = 0;
	s->mark = tp->write_seq;
	s->idle_ms = 0;
	s->closed_by = 0;
	s->how = 0;
	s->flags = 0;

	c = upstream(&key);
	if (c)
		__sync_fetch_and_add(&c->opened, 1);
}

/* Idle time since the last data either way, from the kernel's own timestamps. */
static __always_inline __u32 idle_ms(const struct sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((struct sock *)sk);
	__u32 now, last, rcv;

	if (!tp)
		return 0;
	now = (__u32)bpf_jiffies64();
	last = tp->lsndtime;
	rcv = tp->inet_conn.icsk_ack.lrcvtime;
	if ((__s32)(rcv - last) > 0)
		last = rcv;
	return (__u64)(now - last) * 1000 / CONFIG_HZ;
}

/* The connection leaves ESTABLISHED: who closed first, how, after how long idle. */
static __always_inline void on_first_close(const struct sock *sk, struct kw_sock *s, int newstate)
{
	if (newstate == TCP_CLOSE_WAIT) {
		s->closed_by = KW_BY_PEER;
		s->how = KW_HOW_FIN;
	} else if (newstate == TCP_CLOSE) {
		s->closed_by = s->flags & SF_RST_RCVD ? KW_BY_PEER : KW_BY_LOCAL;
		s->how = KW_HOW_RST;
	} else {
		/* FIN_WAIT1: close() or shutdown(SHUT_WR) */
		s->closed_by = KW_BY_LOCAL;
		s->how = KW_HOW_FIN;
	}
	s->idle_ms = idle_ms(sk);
	s->flags |= SF_CLOSING;
}

/* The socket reached CLOSE: fold its whole life into the upstream, once. */
static __always_inline void fold(const struct sock *sk, struct kw_sock *s)
{
	__u32 reqs = s->requests;
	struct kw_counters *c;
	__u8 by = s->closed_by & 1, how = s->how & 1;

	/*
	 * Outbound, a request we sent that no response answered (a reset came instead, or
	 * we gave up) still counts, as Varnish counts it in backend_reuse.
	 */
	if (s->key.direction == KW_DIR_OUTBOUND) {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock((struct sock *)sk);

		if (tp && tp->write_seq - (s->flags & SF_FIN_SENT ? 1 : 0) != s->mark)
			reqs++;
	}
	/* Skipped by the iterator from now on; see the collector for why this goes first. */
	s->flags |= SF_FOLDED;

	c = upstream(&s->key);
	if (!c)
		return;
	__sync_fetch_and_add(&c->requests, reqs);
	if (reqs > 1)
		__sync_fetch_and_add(&c->reused, reqs - 1);
	if (!reqs)
		__sync_fetch_and_add(&c->unused_closed[by], 1);
	__sync_fetch_and_add(&c->closed[by][how], 1);
	__sync_fetch_and_add(&c->idle_ms_sum[by], s->idle_ms);
	__sync_fetch_and_add(&c->idle_hist[by][kw_idle_slot(s->idle_ms)], 1);
	__sync_fetch_and_add(&c->reqs_hist[kw_reqs_slot(reqs)], 1);
}

static __always_inline int handle_set_state(const struct sock *sk, int oldstate, int newstate)
{
	struct kw_sock *s;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_ESTABLISHED) {
		on_established(sk, oldstate);
		return 0;
	}
	s = sock_state(sk);
	if (!s || (s->flags & SF_FOLDED))
		return 0;
	if (oldstate == TCP_ESTABLISHED)
		on_first_close(sk, s, newstate);
	if (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK)
		s->flags |= SF_FIN_SENT;
	if (newstate == TCP_CLOSE)
		fold(sk, s);
	return 0;
}

/*
 * A request is counted at each turn: data received after we sent something since the
 * last counted receive. Inbound the first receive is the first request; outbound a
 * receive answers the request we sent. Multiple reads of one message count once.
 */
static __always_inline int handle_recv(struct sock *sk, int ret, int flags)
{
	struct tcp_sock *tp;
	struct kw_sock *s;
	__u32 seq;

	if (ret <= 0 || (flags & MSG_PEEK))
		return 0;
	s = sock_state(sk);
	if (!s)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	seq = tp->write_seq;
	if (seq != s->mark || (!s->requests && s->key.direction == KW_DIR_INBOUND)) {
		s->requests++;
		s->mark = seq;
	}
	return 0;
}

static __always_inline int handle_receive_reset(struct sock *sk)
{
	struct kw_sock *s = sock_state(sk);

	if (s)
		s->flags |= SF_RST_RCVD;
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(kw_set_state, const struct sock *sk, int oldstate, int newstate)
{
	return handle_set_state(sk, oldstate, newstate);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(kw_recv, struct sock *sk, int ret, int flags)
{
	return handle_recv(sk, ret, flags);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(kw_rcv_reset, struct sock *sk)
{
	return handle_receive_reset(sk);
}

/* Walks the open tracked sockets for user space: their requests so far. */
SEC("iter/bpf_sk_storage_map")
int kw_iter_socks(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct kw_sock *s = ctx->value;
	struct kw_live rec = {};

	if (!ctx->sk || !s || (s->flags & SF_FOLDED))
		return 0;
	rec.key = s->key;
	rec.requests = s->requests;
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
