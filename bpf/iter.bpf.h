/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The iter/tcp walks the agent runs in each network namespace: the TCP census (every
 * socket's addresses and state) and, at its start, the adoption of the connections
 * established before the tracepoints were attached.
 *
 * Uses the map kw_listening (keepwatch.bpf.c); counters.bpf.h, tuple.bpf.h, filter.bpf.h,
 * conn.bpf.h.
 */
#ifndef KW_ITER_BPF_H
#define KW_ITER_BPF_H

/*
 * The TCP census of the reader's network namespace: every socket's addresses and state,
 * listeners first (the kernel walks the listening hash before the established one), so
 * user space can tell inbound TIME_WAIT sockets (our port listens) from outbound ones.
 */
static __always_inline int handle_census(struct bpf_iter__tcp *ctx)
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
static __always_inline int handle_adopt(struct bpf_iter__tcp *ctx)
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

#endif /* KW_ITER_BPF_H */
