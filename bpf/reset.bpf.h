/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Resets, sent and received: naming the kernel's reason, finding the connection a reset
 * belongs to even when only a timewait socket, a listener or the packet is left, and
 * telling keep-alive races apart, on the server side (a request met our idle close) and on
 * the client side (our request met the peer's).
 *
 * Uses the map kw_closed_by_us (keepwatch.bpf.c); compat.bpf.h, counters.bpf.h,
 * tuple.bpf.h, filter.bpf.h, conn.bpf.h, events.bpf.h.
 */
#ifndef KW_RESET_BPF_H
#define KW_RESET_BPF_H

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

	if (!c || !tp)
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

/* A reset we send: why is its reason, the kernel's (6.10+) or inferred (compat.bpf.h). */
static __always_inline int handle_send_reset(const struct sock *sk, const struct sk_buff *skb,
					     __u8 why)
{
	struct kw_tuple t = {};
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
	if (!tp)
		return 0;
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

#endif /* KW_RESET_BPF_H */
