/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The connection table: a connection's state (struct kw_conn) in the kw_conns entry of
 * its socket's address, or in socket storage when another open connection holds that
 * entry. Finding, creating, starting and releasing that state, and the connection's
 * clocks (idle time, time since an idle first close).
 *
 * Uses the maps kw_conns, kw_socks and kw_globals, the rodata cfg_conns_mask and
 * CONFIG_HZ (keepwatch.bpf.c); compat.bpf.h, counters.bpf.h, slots.bpf.h.
 */
#ifndef KW_CONN_BPF_H
#define KW_CONN_BPF_H

_Static_assert(sizeof(struct kw_conn) == 64, "a kw_conn is one cache line");

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
 *   a large share of the state program's cost under Connection: close.)
 * - Sockets next to each other in memory (a TCP socket takes more than 2 KiB) get
 *   entries on one page (the table is in 4 KiB pages: fewer TLB misses than a hash
 *   that scatters them) but never on the two lines of one pair, which the hardware
 *   fetches together: the two ends of a connection, written from two CPUs, on one pair
 *   made the receive program's run time bimodal (false sharing).
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
 * An entry of this socket's address still open when a new connection starts there: its
 * connection closed while its close was not seen (no programs counted then, or they were
 * being replaced). Folded as lost with the requests it kept, as the agent's start-up
 * sweep does, so that active comes right; claimed with one compare-and-swap of the word
 * of its flags and seen, as the sweep claims it, so that only one of the two folds it.
 */
static __always_inline void conn_fold_lost(struct kw_conn *c)
{
	__u64 *word = (__u64 *)&c->data_segs_in, w = *word, folded; /* bytes 56-63 */
	struct kw_counters *k;
	__u8 flags = w >> 48;
	__u32 reqs, idx;

	if (flags & (KW_CONN_FOLDED | KW_CONN_STORAGE))
		return;
	idx = c->idx;
	reqs = c->requests;
	folded = w | (__u64)KW_CONN_FOLDED << 48;
	if (__sync_val_compare_and_swap(word, w, folded) != w)
		return;
	k = counters(idx);
	if (!k)
		return;
	if (reqs)
		__sync_fetch_and_add(&k->requests, reqs);
	if (reqs && !(flags & KW_CONN_PRIOR))
		__sync_fetch_and_add(&k->used, 1);
	__sync_fetch_and_add(&k->lost, 1);
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
			if (old == addr)
				conn_fold_lost(c);
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

/*
 * Orders the stores to a connection's state before it against those after it, as seen by
 * user space reading the mmapped table on another CPU. x86 keeps stores in order (TSO)
 * and needs nothing. Elsewhere (arm64) a fetching atomic is the barrier BPF has: the
 * kernel's BPF memory model makes atomics with BPF_FETCH fully ordered (the arm64 JIT
 * emits LDADDAL, or an LL/SC loop with DMB). A few per connection, none per request.
 */
static __always_inline void conn_barrier(struct kw_conn *s)
{
#ifndef __TARGET_ARCH_x86
	volatile __u64 sink;

	sink = __sync_fetch_and_add((__u64 *)&s->data_segs_in, 0);
	(void)sink;
#endif
}

/*
 * The connection's state is done with: user space stops adding its requests, its entry
 * is free for the next connection, and one connection fewer is in socket storage.
 */
static __always_inline void conn_release(struct kw_conn *s)
{
	s->flags |= KW_CONN_FOLDED;
	conn_barrier(s); /* folded, before its requests reach the counters */
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

	if (!tp)
		return NULL;
	s = conn_new(sk);
	if (!s) {
		count_error(KW_ERR_SOCK_STORAGE);
		return NULL;
	}
	/*
	 * All but the owner: an entry or storage keeps its last connection's state. Seen
	 * first: the agent's start-up sweep takes an entry only while seen is 0, in one
	 * compare-and-swap of the word holding seen and flags, so it never takes one this
	 * has begun to fill. The flags last: user space reads an entry's requests only once
	 * it is not folded. Both orders need a barrier on weakly ordered CPUs (conn_barrier).
	 */
	s->seen = 1;
	conn_barrier(s);
	s->close_us = 0; /* conn_started() sets it for a connection seen established */
	s->key = *key;
	s->idx = upstream_slot(key);
	s->requests = 0;
	s->mark = tp->write_seq;
	s->idle_ms = 0;
	s->data_segs_in = 0;
	s->closed_by = 0;
	s->how = 0;
	conn_barrier(s);
	s->flags = (s->flags & KW_CONN_STORAGE) | flags;
	return s;
}

/* ms, CLOCK_MONOTONIC modulo 2^32, never 0 (0: not known) */
static __always_inline __u32 now_ms(__u64 now_ns)
{
	__u32 ms = now_ns / 1000000;

	return ms ? ms : 1;
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

/* Time since an idle first close (close_us), ns; gaps that matter are seconds. */
static __always_inline __u64 since_close_ns(const struct kw_conn *s)
{
	return (__u64)((__u32)(bpf_ktime_get_ns() / 1000) - s->close_us) * 1000;
}

#endif /* KW_CONN_BPF_H */
