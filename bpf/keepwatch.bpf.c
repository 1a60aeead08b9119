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
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "keepwatch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET	     2
#define AF_INET6     10
#define IPPROTO_TCP  6
#define MSG_PEEK     2
#define RCV_SHUTDOWN 1
#define ETIMEDOUT    110
#define ECONNREFUSED 111
#define EHOSTUNREACH 113
#define ENETUNREACH  101
#define ETH_P_IPV6   0x86DD

/*
 * Filters, set by the agent before load: the network namespaces (inode numbers) and
 * service ports (host order) wanted; none means all. A few compares with constants the
 * verifier knows beat a hash lookup.
 */
const volatile __u32 cfg_netns[KW_MAX_FILTERS] = {};
const volatile __u32 cfg_n_netns = 0;
const volatile __u32 cfg_ports[KW_MAX_FILTERS] = {};
const volatile __u32 cfg_n_ports = 0;
/* kw_conns entries minus one (a power of two minus one; the agent sets it). */
const volatile __u32 cfg_conns_mask = KW_CONN_TABLE_DEFAULT - 1;
/* Slots in kw_counters: --max-upstreams plus the overflow slots (the agent sets it). */
const volatile __u32 cfg_capacity = KW_MAX_UPSTREAMS_DEFAULT + KW_DIR_MAX;
/* Events: at most this many per second and CPU, in bursts of up to cfg_events_burst. */
const volatile __u32 cfg_events_per_sec = KW_EVENTS_PER_SEC_DEFAULT;
const volatile __u32 cfg_events_burst = KW_EVENTS_BURST_DEFAULT;

extern int CONFIG_HZ __kconfig;
/* 6.2+: a cast the verifier inlines, no helper call; reads through it are fault-safe. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

_Static_assert(sizeof(struct kw_conn) == 64, "a kw_conn is one cache line");

/* A connection's addresses: the key of connections we closed while idle. */
struct kw_tuple {
	__u8 laddr[16]; /* ours, network order, IPv4 v4-mapped */
	__u8 raddr[16]; /* the peer's */
	__u32 netns;
	__u16 lport; /* host order */
	__u16 rport; /* host order */
};

/* What a late request needs to know about the connection it met. */
struct kw_closed {
	struct kw_key key;
	__u32 idx; /* the upstream's slot in kw_counters */
	__u32 pad;
	__u64 close_ns; /* ns, CLOCK_MONOTONIC */
	__u32 idle_ms;
	__u32 requests;
};

/* GCRA state of the per-CPU event rate limit. */
struct kw_rate {
	__u64 tat; /* theoretical arrival time, ns */
};

/*
 * Connections, by a hash of the socket's address (cfg_conns_mask + 1 entries, a power
 * of two), owned by socket address and sk_hash. Taking an entry is a compare-and-swap; finding one
 * is an inlined array lookup, no helper call.
 * Mmapable only for its page alignment: each entry is one cache line.
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
 * Recently used upstreams per CPU, in front of the kw_upstreams hash: most connections
 * of a host go to a few upstreams. An entry holds while KW_GLOBAL_GEN (bumped by the agent
 * before it evicts upstreams) has not moved.
 */
struct kw_slot_cache {
	struct kw_key key;
	__u32 idx;
	__u32 gen;
};

#define SLOT_CACHE_WAYS 4

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

static __always_inline __u64 *global(__u32 which)
{
	return bpf_map_lookup_elem(&kw_globals, &which);
}

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
struct kw_ports {
	__u64 bits[65536 / 64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kw_ports);
} kw_listening SEC(".maps");

/*
 * The tcp_sock of a full TCP socket. Callers know it is one (TCP state changes, sockets
 * that have our state): a cast the verifier inlines beats bpf_skc_to_tcp_sock's call,
 * 15 ns of the receive path's 130.
 */
static __always_inline struct tcp_sock *tcp_of(const struct sock *sk)
{
	return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
}

static __always_inline void count_error(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&kw_errors, &slot);

	if (v)
		*v += 1; /* per-CPU: no atomic needed */
}

/*
 * A socket's address as a number: its distance from the kw_conns map, as the verifier
 * lets root programs subtract pointers (any other arithmetic on them it forbids).
 */
static __always_inline __u64 sk_addr(const struct sock *sk)
{
	return (__u64)sk - (__u64)&kw_conns;
}

/*
 * A socket's entry in kw_conns: its address in KiB, modulo the table size.
 * - The kernel reuses a freed socket's memory for the next one, often on the same CPU,
 *   so a new connection mostly lands on an entry still in cache. (Entries picked by
 *   cookie, which only grows, swept the table: a cache miss for every new connection,
 *   half of the state program's time under Connection: close.)
 * - Sockets next to each other in memory (a TCP socket takes more than 2 KiB) get
 *   entries on one page (the table is in 4 KiB pages: fewer TLB misses than a hash
 *   that scatters them) but never on the two lines of one pair, which the hardware
 *   fetches together: the two ends of a connection, written from two CPUs, on one pair
 *   made the receive program bimodal (110 or 290 ns a run).
 */
static __always_inline __u32 conn_index(__u64 addr)
{
	return (__u32)(addr >> 10) & cfg_conns_mask;
}

/*
 * The state of a tracked connection, else NULL. The entry is the socket's if it holds
 * its address and its sk_hash (the hash of its addresses and namespace, in the first
 * cache line of the socket, which the kernel has just read): a socket the kernel put at
 * the address of a closed one has other addresses, or is the same connection again.
 */
static __always_inline struct kw_conn *conn_of(const struct sock *sk)
{
	__u64 addr = sk_addr(sk), *n;
	__u32 i = conn_index(addr);
	struct kw_conn *c;

	c = bpf_map_lookup_elem(&kw_conns, &i);
	if (c && c->owner == addr && c->hash == sk->__sk_common.skc_hash)
		return c;
	n = global(KW_GLOBAL_STORAGE_CONNS);
	if (!n || !*n)
		return NULL;
	return bpf_sk_storage_get(&kw_socks, (struct sock *)sk, NULL, 0);
}

/*
 * State for a connection just established: its kw_conns entry, taken over from a
 * connection that has closed, or socket storage when a live one holds the entry.
 */
static __always_inline struct kw_conn *conn_new(struct sock *sk)
{
	__u64 old, addr = sk_addr(sk), *n;
	__u32 i = conn_index(addr);
	struct kw_conn *c;

	c = bpf_map_lookup_elem(&kw_conns, &i);
	if (c) {
		old = c->owner;
		/* Free, closed, or this socket's before (a connect after a disconnect). */
		if ((!old || old == addr || (c->flags & KW_CONN_FOLDED)) &&
		    __sync_val_compare_and_swap(&c->owner, old, addr) == old) {
			c->hash = sk->__sk_common.skc_hash;
			return c;
		}
	}
	count_error(KW_ERR_CONN_TABLE);
	c = bpf_sk_storage_get(&kw_socks, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c)
		return NULL;
	if (!(c->flags & KW_CONN_STORAGE) || (c->flags & KW_CONN_FOLDED)) {
		n = global(KW_GLOBAL_STORAGE_CONNS);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	c->flags = KW_CONN_STORAGE;
	return c;
}

static __always_inline struct kw_counters *counters(__u32 idx)
{
	return bpf_map_lookup_elem(&kw_counters, &idx);
}

/*
 * The upstream's slot, created on first use: a slot evicted by the agent, else a fresh
 * one. When none is left the counts go to the direction's overflow slot.
 */
static __always_inline bool same_key(const struct kw_key *a, const struct kw_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4] &&
	       x[5] == y[5];
}

static __u32 upstream_slot_slow(const struct kw_key *key)
{
	__u32 *p, idx, zero = 0;
	struct kw_meta *m;

	p = bpf_map_lookup_elem(&kw_upstreams, key);
	if (p)
		return *p;
	if (bpf_map_pop_elem(&kw_free_slots, &idx)) {
		m = bpf_map_lookup_elem(&kw_meta, &zero);
		if (!m)
			return key->direction;
		idx = __sync_fetch_and_add(&m->next_slot, 1);
		if (idx >= cfg_capacity) {
			count_error(KW_ERR_UPSTREAMS_FULL);
			return key->direction;
		}
	}
	if (bpf_map_update_elem(&kw_upstreams, key, &idx, BPF_NOEXIST)) {
		/* Another CPU created it first: give the slot back and use theirs. */
		bpf_map_push_elem(&kw_free_slots, &idx, 0);
		p = bpf_map_lookup_elem(&kw_upstreams, key);
		if (p)
			return *p;
		count_error(KW_ERR_UPSTREAMS_FULL);
		return key->direction;
	}
	return idx;
}

static __always_inline __u32 upstream_slot(const struct kw_key *key)
{
	__u32 way = (key->direction ^ key->port ^ key->addr[15]) & (SLOT_CACHE_WAYS - 1);
	struct kw_slot_cache *e;
	__u32 idx, gen;
	__u64 *g;

	e = bpf_map_lookup_elem(&kw_slot_cache, &way);
	g = global(KW_GLOBAL_GEN);
	if (!e || !g)
		return upstream_slot_slow(key);
	gen = *g;
	if (e->gen == gen && same_key(&e->key, key))
		return e->idx;
	idx = upstream_slot_slow(key);
	e->key = *key;
	e->idx = idx;
	e->gen = gen;
	return idx;
}

static __always_inline void addr_v4(__u8 *addr, __be32 a)
{
	__u32 *a32 = (__u32 *)addr;

	a32[0] = 0;
	a32[1] = 0;
	a32[2] = bpf_htonl(0xffff);
	a32[3] = a;
}

static __always_inline bool is_v4mapped(const __u8 *addr)
{
	const __u32 *a32 = (const __u32 *)addr;

	return (a32[0] | a32[1]) == 0 && a32[2] == bpf_htonl(0xffff);
}

/*
 * Both ends of a socket from its sock_common, which full and timewait sockets share.
 * Our port comes from skc_num, which inet_put_port() zeroes before a full socket's last
 * state change: callers at CLOSE pass the port they kept.
 */
static __always_inline bool sk_tuple(const struct sock *sk, struct kw_tuple *t)
{
	__u16 family = sk->__sk_common.skc_family;

	t->netns = sk->__sk_common.skc_net.net->ns.inum;
	t->lport = sk->__sk_common.skc_num;
	t->rport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (family == AF_INET) {
		addr_v4(t->laddr, sk->__sk_common.skc_rcv_saddr);
		addr_v4(t->raddr, sk->__sk_common.skc_daddr);
		return true;
	}
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&t->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		return true;
	}
	return false;
}

/* The tuple of an incoming segment: the peer is its source. */
static __always_inline bool skb_tuple(const struct sk_buff *skb, struct kw_tuple *t)
{
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header, th = skb->transport_header;
	struct tcphdr tcp;

	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return false;
		__builtin_memcpy(t->laddr, &ip6.daddr, 16);
		__builtin_memcpy(t->raddr, &ip6.saddr, 16);
	} else {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return false;
		addr_v4(t->laddr, ip.daddr);
		addr_v4(t->raddr, ip.saddr);
	}
	if (bpf_probe_read_kernel(&tcp, sizeof(tcp), head + th))
		return false;
	t->lport = bpf_ntohs(tcp.dest);
	t->rport = bpf_ntohs(tcp.source);
	return true;
}

static __always_inline bool fill_key(const struct sock *sk, __u8 direction, struct kw_key *key)
{
	__u16 family = sk->__sk_common.skc_family;

	key->direction = direction;
	key->netns = sk->__sk_common.skc_net.net->ns.inum;
	if (direction == KW_DIR_INBOUND)
		key->port = sk->__sk_common.skc_num;
	else
		key->port = bpf_ntohs(sk->__sk_common.skc_dport);

	if (family == AF_INET) {
		addr_v4(key->addr, sk->__sk_common.skc_daddr);
		key->family = KW_AF_INET;
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&key->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		/* A v4 peer of a dual-stack socket is an IPv4 upstream. */
		key->family = is_v4mapped(key->addr) ? KW_AF_INET : KW_AF_INET6;
	} else {
		return false;
	}
	return true;
}

/* Whether v is in a filter list of n values; an empty list takes everything. */
static __always_inline bool listed(const volatile __u32 *list, __u32 n, __u32 v)
{
	__u32 i;

	if (!n)
		return true;
	for (i = 0; i < KW_MAX_FILTERS && i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

static __always_inline bool netns_wanted(__u32 netns)
{
	return listed(cfg_netns, cfg_n_netns, netns);
}

static __always_inline bool wanted(const struct kw_key *key)
{
	return netns_wanted(key->netns) && listed(cfg_ports, cfg_n_ports, key->port);
}

/* Token bucket (GCRA) per CPU: bursts of cfg_events_burst, then cfg_events_per_sec. */
static __always_inline bool event_allowed(__u64 now)
{
	__u64 interval = 1000000000ULL / (cfg_events_per_sec ? cfg_events_per_sec : 1);
	__u32 zero = 0;
	struct kw_rate *r;
	__u64 tat;

	r = bpf_map_lookup_elem(&kw_event_rate, &zero);
	if (!r)
		return false;
	tat = r->tat > now ? r->tat : now;
	if (tat - now > (__u64)cfg_events_burst * interval) {
		count_error(KW_ERR_EVENTS_RATE);
		return false;
	}
	r->tat = tat + interval;
	return true;
}

/* Sends one notable event; t describes the connection, key its upstream. */
static __always_inline void emit(__u8 type, const struct kw_key *key, const struct kw_tuple *t,
				 __u8 reason, __u32 idle_ms, __u64 gap_ns, __u32 requests)
{
	__u64 now = bpf_ktime_get_ns();
	struct kw_event *e;

	if (!event_allowed(now))
		return;
	e = bpf_ringbuf_reserve(&kw_events, sizeof(*e), 0);
	if (!e) {
		count_error(KW_ERR_RINGBUF_FULL);
		return;
	}
	e->ts_ns = now;
	__builtin_memcpy(e->laddr, t->laddr, 16);
	__builtin_memcpy(e->raddr, t->raddr, 16);
	e->netns = t->netns;
	e->idle_ms = idle_ms;
	e->gap_us = gap_ns / 1000 > 0xffffffff ? 0xffffffff : gap_ns / 1000;
	e->requests = requests;
	e->lport = t->lport;
	e->rport = t->rport;
	e->type = type;
	e->direction = key->direction;
	e->reason = reason;
	e->family = key->family;
	bpf_ringbuf_submit(e, 0);
}

/*
 * The connection's state is done with: user space stops adding its requests, its entry
 * is free for the next connection, and one connection fewer is in socket storage.
 */
static __always_inline void conn_release(struct kw_conn *s)
{
	s->flags |= KW_CONN_FOLDED;
	if (s->flags & KW_CONN_STORAGE) {
		__u64 *n = global(KW_GLOBAL_STORAGE_CONNS);

		if (n)
			__sync_fetch_and_add(n, -1);
	}
}

/* State for an established connection to the upstream key, with these flags. */
static __always_inline struct kw_conn *conn_start(struct sock *sk, const struct kw_key *key,
						  __u8 flags)
{
	struct tcp_sock *tp = tcp_of(sk);
	struct kw_conn *s;

	s = conn_new(sk);
	if (!s) {
		count_error(KW_ERR_SOCK_STORAGE);
		return NULL;
	}
	/*
	 * All but the owner: an entry or storage keeps its last connection's state. Seen
	 * first: the agent's start-up sweep takes an entry only while seen is 0, in one
	 * compare-and-swap of the word holding seen and flags, so it never takes one this
	 * has begun to fill (x86 stores are seen in order). The flags last: user space reads
	 * an entry's requests only once it is not folded.
	 */
	s->seen = 1;
	s->close_us = 0;
	s->key = *key;
	s->idx = upstream_slot(key);
	s->requests = 0;
	s->mark = tp->write_seq;
	s->idle_ms = 0;
	s->data_segs_in = 0;
	s->closed_by = 0;
	s->how = 0;
	s->flags = (s->flags & KW_CONN_STORAGE) | flags;
	return s;
}

/* A connection reached ESTABLISHED: give it state and count it opened. */
static __always_inline void on_established(const struct sock *sk, int oldstate)
{
	struct kw_counters *c;
	struct kw_conn *s;
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
	s = conn_start((struct sock *)sk, &key, 0);
	if (!s)
		return;
	/* Closes are counted at CLOSE: user space reads active as opened (+ adopted) - closed. */
	c = counters(s->idx);
	if (c)
		__sync_fetch_and_add(&c->opened, 1);
}

static __always_inline __u32 jiffies_to_ms(__u32 j)
{
	return (__u64)j * 1000 / CONFIG_HZ;
}

/* Idle time since the last data either way, from the kernel's own timestamps. */
static __always_inline __u32 idle_ms(struct tcp_sock *tp)
{
	__u32 now = (__u32)bpf_jiffies64();
	__u32 last = tp->lsndtime, rcv = tp->inet_conn.icsk_ack.lrcvtime;

	if ((__s32)(rcv - last) > 0)
		last = rcv;
	return jiffies_to_ms(now - last);
}

/*
 * We closed an inbound connection with a FIN: remember it by tuple, so that a request
 * arriving after the full socket is gone is still recognised as a race.
 */
static __always_inline void remember_close(const struct sock *sk, const struct kw_conn *s,
					   __u64 now)
{
	struct kw_closed v = {
		.key = s->key,
		.idx = s->idx,
		.close_ns = now,
		.idle_ms = s->idle_ms,
		.requests = s->requests,
	};
	struct kw_tuple t = {};

	if (sk_tuple(sk, &t))
		bpf_map_update_elem(&kw_closed_by_us, &t, &v, BPF_ANY);
}

/* Time since an idle first close (close_us), ns; gaps that matter are seconds. */
static __always_inline __u64 since_close_ns(const struct kw_conn *s)
{
	return (__u64)((__u32)(bpf_ktime_get_ns() / 1000) - s->close_us) * 1000;
}

/* The connection leaves ESTABLISHED: who closed first, how, after how long idle. */
static __always_inline void on_first_close(const struct sock *sk, struct kw_conn *s, int newstate)
{
	struct tcp_sock *tp = tcp_of(sk);
	__u64 now = 0;

	if (newstate == TCP_CLOSE_WAIT) {
		s->closed_by = KW_BY_PEER;
		s->how = KW_HOW_FIN;
	} else if (newstate == TCP_CLOSE) {
		s->closed_by = s->flags & KW_CONN_RST_RCVD ? KW_BY_PEER : KW_BY_LOCAL;
		s->how = KW_HOW_RST;
	} else {
		/* FIN_WAIT1: close() or shutdown(SHUT_WR) */
		s->closed_by = KW_BY_LOCAL;
		s->how = KW_HOW_FIN;
	}
	s->idle_ms = idle_ms(tp);
	/* Only a close after a quiet spell can be raced: the others skip the clock. */
	if (s->idle_ms >= KW_RACE_MIN_QUIET_MS) {
		now = bpf_ktime_get_ns();
		s->close_us = now / 1000;
	}
	s->data_segs_in = tp->data_segs_in;
	s->flags |= KW_CONN_CLOSING;
	if (s->closed_by == KW_BY_LOCAL && s->how == KW_HOW_FIN &&
	    s->key.direction == KW_DIR_INBOUND && s->idle_ms >= KW_RACE_MIN_QUIET_MS)
		remember_close(sk, s, now);
}

/* The socket reached CLOSE: fold its whole life into the upstream, once. */
static __always_inline void fold(const struct sock *sk, struct kw_conn *s, int oldstate)
{
	__u32 reqs = s->requests, add;
	struct kw_counters *c;
	__u8 by = s->closed_by & 1, how = s->how & 1;
	bool live = s->flags & KW_CONN_STORAGE; /* its requests are in the slot already */
	bool prior = s->flags & KW_CONN_PRIOR;	/* used before the agent started */
	bool unanswered = false;

	conn_release(s); /* before the counts move */
	c = counters(s->idx);
	if (!c)
		return;
	/*
	 * Outbound, a request we sent that no response answered (a reset came instead, or
	 * we gave up) still counts, as Varnish counts it in backend_reuse.
	 */
	if (s->key.direction == KW_DIR_OUTBOUND) {
		struct tcp_sock *tp = tcp_of(sk);

		/* From these states our FIN is queued: it took one sequence number. */
		bool fin = oldstate == TCP_FIN_WAIT1 || oldstate == TCP_FIN_WAIT2 ||
			   oldstate == TCP_CLOSING || oldstate == TCP_LAST_ACK;

		unanswered = tp->write_seq - (fin ? 1 : 0) != s->mark;
	}
	add = (live ? 0 : reqs) + unanswered;
	if (add)
		__sync_fetch_and_add(&c->requests, add);
	if (!prior && ((reqs && !live) || (!reqs && unanswered)))
		__sync_fetch_and_add(&c->used, 1);
	reqs += unanswered;
	/* Unused closes are reqs_hist's slot 0; active is opened + adopted - closed - lost. */
	__sync_fetch_and_add(&c->closed[by][how], 1);
	__sync_fetch_and_add(&c->idle_ms_sum[by], s->idle_ms);
	__sync_fetch_and_add(&c->idle_hist[by][kw_idle_slot(s->idle_ms)], 1);
	if (!prior) { /* of the others, only the requests since the agent started are known */
		__sync_fetch_and_add(&c->reqs_hist[by][kw_reqs_slot(reqs)], 1);
		__sync_fetch_and_add(&c->reqs_sum[by], reqs);
		if (reqs == 1)
			__sync_fetch_and_add(&c->single_idle_ms_sum[by], s->idle_ms);
	}
	/* FIN_WAIT2 or CLOSING to CLOSE with the peer's FIN seen: a TIME_WAIT socket is left. */
	if ((oldstate == TCP_FIN_WAIT2 || oldstate == TCP_CLOSING) &&
	    (sk->__sk_common.skc_flags & (1UL << SOCK_DONE)))
		__sync_fetch_and_add(&c->time_wait_entered, 1);

	if ((!reqs && !prior) ||
	    (by == KW_BY_LOCAL && how == KW_HOW_FIN && s->idle_ms >= KW_RACE_MIN_QUIET_MS)) {
		struct tcp_sock *tp = tcp_of(sk);
		struct kw_tuple t = {};

		if (!sk_tuple(sk, &t))
			return;
		t.lport = bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
		emit(reqs || prior ? KW_EV_IDLE_CLOSE : KW_EV_UNUSED_CLOSE, &s->key, &t, 0,
		     s->idle_ms, 0, reqs);
	}
}

/*
 * connect() gave up: SYN_SENT to CLOSE without ever being established. With no local
 * port (inet_hash_connect found none) it is EADDRNOTAVAIL, else the error the kernel left
 * in sk_err; a close() during the connect leaves neither and is not a failure.
 */
static __always_inline void on_connect_failed(const struct sock *sk)
{
	struct kw_key key = {};
	struct kw_counters *c;
	struct tcp_sock *tp;
	__u8 cf;

	tp = tcp_of(sk);
	if (!fill_key(sk, KW_DIR_OUTBOUND, &key) || !wanted(&key))
		return;
	switch (sk->sk_err) {
	case 0:
		if (tp->inet_conn.icsk_inet.inet_sport)
			return;
		cf = KW_CF_EADDRNOTAVAIL;
		break;
	case ECONNREFUSED:
		cf = KW_CF_ECONNREFUSED;
		break;
	case ETIMEDOUT:
		cf = KW_CF_ETIMEDOUT;
		break;
	case EHOSTUNREACH:
		cf = KW_CF_EHOSTUNREACH;
		break;
	case ENETUNREACH:
		cf = KW_CF_ENETUNREACH;
		break;
	default:
		cf = KW_CF_OTHER;
	}
	c = counters(upstream_slot(&key));
	if (c)
		__sync_fetch_and_add(&c->connect_failures[cf], 1);
}

static __always_inline int handle_set_state(const struct sock *sk, int oldstate, int newstate)
{
	struct kw_conn *s;

	/* Only TCP sockets get state (SCTP and DCCP pass here too): checked where it is made. */
	if (newstate == TCP_ESTABLISHED) {
		if (sk->sk_protocol == IPPROTO_TCP)
			on_established(sk, oldstate);
		return 0;
	}
	if (oldstate == TCP_SYN_SENT && newstate == TCP_CLOSE) {
		if (sk->sk_protocol == IPPROTO_TCP)
			on_connect_failed(sk);
		return 0;
	}
	/* The steps in between (FIN_WAIT2, CLOSING, LAST_ACK) need no state. */
	if (oldstate != TCP_ESTABLISHED && newstate != TCP_CLOSE)
		return 0;
	s = conn_of(sk);
	if (!s || (s->flags & KW_CONN_FOLDED))
		return 0;
	if (oldstate == TCP_ESTABLISHED)
		on_first_close(sk, s, newstate);
	if (newstate == TCP_CLOSE)
		fold(sk, s, oldstate);
	return 0;
}

/*
 * A request is counted at each turn: data received after we sent something since the
 * last counted receive. Inbound the first receive is the first request; outbound a
 * receive answers the request we sent. Multiple reads of one message count once.
 */
static __always_inline int handle_recv(struct sock *sk, int ret, int flags)
{
	struct kw_counters *c;
	struct tcp_sock *tp;
	struct kw_conn *s;
	__u32 seq;

	if (ret <= 0 || (flags & MSG_PEEK))
		return 0;
	s = conn_of(sk);
	if (!s)
		return 0;
	tp = tcp_of(sk); /* only TCP sockets get state */
	seq = tp->write_seq;
	if (seq == s->mark && (s->requests || s->key.direction != KW_DIR_INBOUND))
		return 0;
	s->requests++;
	s->mark = seq;
	/*
	 * A connection in kw_conns keeps its requests until it closes (user space adds
	 * those of open connections from the table): no atomic on a shared line per request.
	 * Connections user space cannot see count live; reused is requests minus used.
	 */
	if (!(s->flags & (KW_CONN_STORAGE | KW_CONN_FOLDED)))
		return 0;
	c = counters(s->idx);
	if (c) {
		__sync_fetch_and_add(&c->requests, 1);
		if (s->requests == 1 && !(s->flags & KW_CONN_PRIOR))
			__sync_fetch_and_add(&c->used, 1);
	}
	return 0;
}

/* keepwatch's name of the kernel's reset reason, resolved through BTF (6.10+). */
static __always_inline __u8 rst_reason(int r)
{
#define KW_REASON(kname, ours)                                                                     \
	if (bpf_core_enum_value_exists(enum sk_rst_reason, kname) &&                               \
	    r == bpf_core_enum_value(enum sk_rst_reason, kname))                                   \
		return ours;
	KW_REASON(SK_RST_REASON_NOT_SPECIFIED, KW_RST_NOT_SPECIFIED)
	KW_REASON(SK_RST_REASON_NO_SOCKET, KW_RST_NO_SOCKET)
	KW_REASON(SK_RST_REASON_TCP_FLAGS, KW_RST_TCP_FLAGS)
	KW_REASON(SK_RST_REASON_TCP_ABORT_ON_DATA, KW_RST_ABORT_ON_DATA)
	KW_REASON(SK_RST_REASON_TCP_TIMEWAIT_SOCKET, KW_RST_TIMEWAIT_SOCKET)
	KW_REASON(SK_RST_REASON_TCP_ABORT_ON_CLOSE, KW_RST_ABORT_ON_CLOSE)
	KW_REASON(SK_RST_REASON_TCP_ABORT_ON_LINGER, KW_RST_ABORT_ON_LINGER)
	KW_REASON(SK_RST_REASON_TCP_ABORT_ON_MEMORY, KW_RST_ABORT_ON_MEMORY)
	KW_REASON(SK_RST_REASON_TCP_STATE, KW_RST_TCP_STATE)
	KW_REASON(SK_RST_REASON_TCP_KEEPALIVE_TIMEOUT, KW_RST_KEEPALIVE_TIMEOUT)
	KW_REASON(SK_RST_REASON_TCP_DISCONNECT_WITH_DATA, KW_RST_DISCONNECT_WITH_DATA)
	KW_REASON(SK_RST_REASON_INVALID_SYN, KW_RST_INVALID_SYN)
#undef KW_REASON
	return KW_RST_OTHER;
}

static __always_inline __u8 rst_state(int state)
{
	switch (state) {
	case TCP_ESTABLISHED:
		return KW_RSTATE_ESTABLISHED;
	case TCP_SYN_SENT:
		return KW_RSTATE_SYN_SENT;
	case TCP_CLOSE_WAIT:
		return KW_RSTATE_CLOSE_WAIT;
	case TCP_FIN_WAIT1:
		return KW_RSTATE_FIN_WAIT1;
	case TCP_FIN_WAIT2:
		return KW_RSTATE_FIN_WAIT2;
	case TCP_LAST_ACK:
		return KW_RSTATE_LAST_ACK;
	case TCP_CLOSING:
		return KW_RSTATE_CLOSING;
	default:
		return KW_RSTATE_OTHER;
	}
}

static __always_inline void count_race(struct kw_counters *c, __u32 idle, __u64 gap_ns)
{
	__u64 gap_us = gap_ns / 1000;

	__sync_fetch_and_add(&c->races, 1);
	__sync_fetch_and_add(&c->race_idle_ms_sum, idle);
	__sync_fetch_and_add(&c->race_idle_hist[kw_idle_slot(idle)], 1);
	__sync_fetch_and_add(&c->race_gap_us_sum, gap_us);
	__sync_fetch_and_add(&c->race_gap_hist[kw_gap_slot(gap_us)], 1);
}

/* A reset we sent from a tracked full socket. */
static __always_inline void reset_from_socket(const struct sock *sk, struct kw_conn *s, __u8 why)
{
	struct tcp_sock *tp = tcp_of(sk);
	struct kw_counters *c = counters(s->idx);
	__u64 gap_ns = since_close_ns(s);
	struct kw_tuple t = {};
	__u32 idle = s->idle_ms;
	bool race = false;

	if (!c)
		return;
	__sync_fetch_and_add(&c->resets_sent[why], 1);
	if (why == KW_RST_ABORT_ON_DATA) {
		/* Data arrived after we closed an idle connection with a FIN. */
		race = (s->flags & KW_CONN_CLOSING) && s->closed_by == KW_BY_LOCAL &&
		       s->how == KW_HOW_FIN && s->idle_ms >= KW_RACE_MIN_QUIET_MS;
	} else if (why == KW_RST_ABORT_ON_CLOSE) {
		/*
		 * We closed with data unread. If it came after a quiet spell, it is a request
		 * that met a connection the server was closing as idle (the keep-alive timer
		 * fired as it arrived): the same race, one step earlier. Else a request cut off.
		 */
		__s32 quiet = tp->inet_conn.icsk_ack.lrcvtime - tp->lsndtime;

		idle = quiet > 0 ? jiffies_to_ms(quiet) : 0;
		race = s->key.direction == KW_DIR_INBOUND && idle >= KW_RACE_MIN_QUIET_MS;
		gap_ns = 0;
		if (!race)
			__sync_fetch_and_add(&c->aborted_unread, 1);
	}
	if (race)
		count_race(c, idle, gap_ns);
	if (!sk_tuple(sk, &t))
		return;
	/* inet_put_port() zeroed skc_num at CLOSE: our port from the inet socket. */
	t.lport = bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
	if (race) {
		/* One race per connection, even if its timewait socket meets another. */
		bpf_map_delete_elem(&kw_closed_by_us, &t);
		emit(KW_EV_RACE, &s->key, &t, why, idle, gap_ns, s->requests);
	} else {
		emit(why == KW_RST_ABORT_ON_CLOSE ? KW_EV_ABORT_UNREAD : KW_EV_RESET_SENT, &s->key,
		     &t, why, idle, 0, s->requests);
	}
}

/*
 * A reset with no full socket behind it: sent by a timewait socket, a listener (the
 * connection is gone) or nobody. The connection, if we closed it, is found by tuple.
 */
static __always_inline void reset_from_tuple(struct kw_tuple *t, __u8 why)
{
	struct kw_key key = { .direction = KW_DIR_INBOUND };
	struct kw_closed *closed;
	struct kw_counters *c;
	__u64 gap_ns = 0;
	__u32 idle = 0, reqs = 0, idx = KW_DIR_INBOUND;
	bool race = false;

	if (!netns_wanted(t->netns))
		return;
	closed = bpf_map_lookup_elem(&kw_closed_by_us, t);
	if (closed) {
		key = closed->key;
		idx = closed->idx;
		gap_ns = bpf_ktime_get_ns() - closed->close_ns;
		idle = closed->idle_ms;
		reqs = closed->requests;
		race = gap_ns <= KW_RACE_WINDOW_S * 1000000000ULL;
		bpf_map_delete_elem(&kw_closed_by_us, t);
	}
	/* Resets to tuples we never had (scans) go to the overflow upstream. */
	c = counters(idx);
	if (!c)
		return;
	__sync_fetch_and_add(&c->resets_sent[why], 1);
	if (race)
		count_race(c, idle, gap_ns);
	emit(race ? KW_EV_RACE : KW_EV_RESET_SENT, &key, t, why, idle, gap_ns, reqs);
}

static __always_inline int handle_send_reset(const struct sock *sk, const struct sk_buff *skb,
					     int reason)
{
	struct kw_tuple t = {};
	__u8 why = rst_reason(reason);
	int state;

	if (!sk) {
		/* NO_SOCKET: the tuple and the namespace come from the packet. */
		if (!skb || !skb->dev || !skb_tuple(skb, &t))
			return 0;
		t.netns = skb->dev->nd_net.net->ns.inum;
		reset_from_tuple(&t, why);
		return 0;
	}
	state = sk->__sk_common.skc_state;
	if (state == TCP_TIME_WAIT) {
		if (sk_tuple(sk, &t))
			reset_from_tuple(&t, why);
		return 0;
	}
	if (state == TCP_LISTEN || state == TCP_NEW_SYN_RECV) {
		if (!skb || !skb_tuple(skb, &t))
			return 0;
		t.netns = sk->__sk_common.skc_net.net->ns.inum;
		reset_from_tuple(&t, why);
		return 0;
	}
	if (sk->sk_protocol == IPPROTO_TCP) {
		struct kw_conn *s = conn_of(sk);

		if (s)
			reset_from_socket(sk, s, why);
	}
	return 0;
}

static __always_inline int handle_receive_reset(struct sock *sk)
{
	struct kw_conn *s = conn_of(sk);
	int state = sk->__sk_common.skc_state;
	struct kw_counters *c;
	struct tcp_sock *tp;
	struct kw_tuple t = {};
	__u32 idle = 0;
	__u64 gap_ns = 0;
	bool race = false;

	if (!s || (s->flags & KW_CONN_FOLDED))
		return 0;
	tp = tcp_of(sk);
	/*
	 * The kernel also passes here when data arrives after our close (it resets the
	 * connection itself, reason ABORT_ON_DATA): new data since our close, with our
	 * receive side shut, is that case, and tcp_send_reset counts it.
	 */
	if ((state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2) && (s->flags & KW_CONN_CLOSING) &&
	    (sk->sk_shutdown & RCV_SHUTDOWN) && tp->data_segs_in != s->data_segs_in)
		return 0;
	s->flags |= KW_CONN_RST_RCVD;
	c = counters(s->idx);
	if (!c)
		return 0;
	__sync_fetch_and_add(&c->resets_rcvd[rst_state(state)], 1);
	/*
	 * Client side: our request, unanswered, met a reset on a connection the peer had
	 * closed while idle (CLOSE_WAIT: its FIN came first; idle is the peer's when it
	 * closed) or on a used connection we had left idle (its FIN crossed our request;
	 * idle is how long it sat before we sent). A reset to a busy connection is not one.
	 */
	if (s->key.direction == KW_DIR_OUTBOUND && tp->write_seq != s->mark) {
		if (state == TCP_CLOSE_WAIT) {
			idle = s->idle_ms;
			race = idle >= KW_RACE_MIN_QUIET_MS; /* then close_us was taken */
			if (race)
				gap_ns = since_close_ns(s);
		} else if (state == TCP_ESTABLISHED &&
			   (s->requests > 0 || (s->flags & KW_CONN_PRIOR))) {
			__s32 d = tp->lsndtime - tp->inet_conn.icsk_ack.lrcvtime;

			idle = d > 0 ? jiffies_to_ms(d) : 0;
			race = idle >= KW_RACE_MIN_QUIET_MS;
		}
	}
	if (race)
		count_race(c, idle, gap_ns);
	if (sk_tuple(sk, &t))
		emit(race ? KW_EV_RACE : KW_EV_RESET_RCVD, &s->key, &t, rst_state(state), idle,
		     gap_ns, s->requests);
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

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(kw_send_reset, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	return handle_send_reset(sk, skb, reason);
}

/*
 * The TCP census of the reader's network namespace: every socket's addresses and state,
 * listeners first (the kernel walks the listening hash before the established one), so
 * user space can tell inbound TIME_WAIT sockets (our port listens) from outbound ones.
 */
SEC("iter/tcp")
int kw_iter_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct kw_census rec = {};
	struct kw_tuple t = {};

	if (!skc || skc->skc_state == TCP_NEW_SYN_RECV)
		return 0;
	if (!sk_tuple((const struct sock *)skc, &t))
		return 0;
	__builtin_memcpy(rec.laddr, t.laddr, 16);
	__builtin_memcpy(rec.raddr, t.raddr, 16);
	rec.lport = t.lport;
	rec.rport = t.rport;
	rec.state = skc->skc_state;
	rec.family = is_v4mapped(t.raddr) || skc->skc_family == AF_INET ? KW_AF_INET : KW_AF_INET6;
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

/*
 * Adoption, at the agent's start: connections established before its programs were
 * attached get state as if they had just been established (counted in adopted, not
 * opened), so their requests, closes and races are seen from now on. The direction comes
 * from the namespace's listening ports, walked first. A connection that has carried data
 * already is marked KW_CONN_PRIOR. Writes the namespace's inode per connection adopted.
 * Connections tracked already are marked seen: the agent then folds, as lost, the
 * entries of its namespaces that the walk did not mark (closed while no agent ran).
 */
SEC("iter/tcp")
int kw_iter_adopt(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct kw_key key = {};
	struct kw_counters *c;
	struct kw_ports *lp;
	struct tcp_sock *tp;
	struct kw_conn *s;
	struct sock *sk;
	__u32 zero = 0;
	__u64 bit, read;
	__u16 port;
	__u8 flags = 0;

	if (!skc)
		return 0;
	lp = bpf_map_lookup_elem(&kw_listening, &zero);
	if (!lp)
		return 0;
	port = skc->skc_num;
	bit = 1ULL << (port & 63);
	if (skc->skc_state == TCP_LISTEN) {
		lp->bits[(port >> 6) & 1023] |= bit;
		return 0;
	}
	tp = bpf_skc_to_tcp_sock(skc); /* not for timewait and request sockets */
	if (!tp)
		return 0;
	sk = (struct sock *)tp;
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	s = conn_of(sk);
	if (s) { /* tracked already: by this agent, or by the last one (pinned maps) */
		s->seen = 1;
		return 0;
	}
	if (skc->skc_state != TCP_ESTABLISHED)
		return 0;
	if (!fill_key(sk, lp->bits[(port >> 6) & 1023] & bit ? KW_DIR_INBOUND : KW_DIR_OUTBOUND,
		      &key) ||
	    !wanted(&key))
		return 0;
	/*
	 * Used before: inbound, a request was read (bytes received minus those still
	 * queued); outbound, a request was sent.
	 */
	read = tp->bytes_received - (__u32)(tp->rcv_nxt - tp->copied_seq);
	if (key.direction == KW_DIR_INBOUND ? read > 0 : tp->data_segs_out > 0)
		flags = KW_CONN_PRIOR;
	s = conn_start(sk, &key, flags);
	if (!s)
		return 0;
	/*
	 * Closed while we took it (the close found no state to fold): let the entry go. A
	 * close between its tracepoint and the state's store, a few instructions, is missed.
	 */
	if (skc->skc_state != TCP_ESTABLISHED) {
		conn_release(s);
		return 0;
	}
	c = counters(s->idx);
	if (c)
		__sync_fetch_and_add(&c->adopted, 1);
	bpf_seq_write(ctx->meta->seq, &key.netns, sizeof(key.netns));
	return 0;
}
