/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * A connection's life at inet_sock_set_state: state and the opened count at ESTABLISHED;
 * at the first close who closed, how and after how long idle (and, for an idle inbound
 * connection we closed, its tuple, for a late request to find); at CLOSE its whole life
 * folded into its upstream's counters, once; connect() failures.
 *
 * Uses the map kw_closed_by_us (keepwatch.bpf.c); compat.bpf.h, counters.bpf.h,
 * tuple.bpf.h, filter.bpf.h, slots.bpf.h, conn.bpf.h, events.bpf.h.
 */
#ifndef KW_CLOSE_BPF_H
#define KW_CLOSE_BPF_H

/*
 * connect() began: note when, in the kw_syns entry of the socket's address. No filter
 * here (the key is made at ESTABLISHED): a plain store is cheaper than the test.
 */
static __always_inline void on_syn_sent(const struct sock *sk)
{
	__u64 addr = sk_addr(sk);
	__u32 i = conn_index(addr);
	struct kw_syn *e = bpf_map_lookup_elem(&kw_syns, &i);

	if (!e)
		return;
	e->owner = addr;
	e->ns = bpf_ktime_get_ns();
}

/* An outbound connection is established: how long its connect() took, us. */
static __always_inline void count_connect(const struct sock *sk, struct kw_counters *c, __u64 now)
{
	__u64 addr = sk_addr(sk), us;
	__u32 i = conn_index(addr);
	struct kw_syn *e = bpf_map_lookup_elem(&kw_syns, &i);

	if (!e || e->owner != addr || now < e->ns) {
		count_error(KW_ERR_SYN_TABLE);
		return;
	}
	us = (now - e->ns) / 1000;
	__sync_fetch_and_add(&c->connect_us_sum, us);
	__sync_fetch_and_add(&c->connect_hist[kw_connect_slot(us)], 1);
}

/* A connection reached ESTABLISHED: give it state and count it opened. */
static __always_inline void on_established(const struct sock *sk, int oldstate)
{
	struct kw_counters *c;
	struct kw_conn *s;
	struct kw_key key = {};
	__u8 direction;
	__u64 now;

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
	now = bpf_ktime_get_ns();
	s->close_us = now_ms(now); /* the lifetime's start, until the first close */
	/* Closes are counted at CLOSE: user space reads active as opened (+ adopted) - closed. */
	c = counters(s->idx);
	if (!c)
		return;
	__sync_fetch_and_add(&c->opened, 1);
	if (direction == KW_DIR_OUTBOUND)
		count_connect(sk, c, now);
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

/* The connection leaves ESTABLISHED: who closed first, how, after how long idle. */
static __always_inline void on_first_close(const struct sock *sk, struct kw_conn *s, int newstate)
{
	struct tcp_sock *tp = tcp_of(sk);
	struct kw_counters *c;
	__u64 now;
	__u32 ms;

	if (!tp)
		return;
	/* The lifetime, established to now, while close_us still holds its start. */
	now = bpf_ktime_get_ns();
	c = counters(s->idx);
	if (c && s->close_us) {
		ms = now_ms(now) - s->close_us;
		__sync_fetch_and_add(&c->lifetime_ms_sum, ms);
		__sync_fetch_and_add(&c->lifetime_hist[kw_lifetime_slot(ms)], 1);
	}
	s->close_us = 0;
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
	/* Only a close after a quiet spell can be raced: the others need no close time. */
	if (s->idle_ms >= KW_RACE_MIN_QUIET_MS)
		s->close_us = now / 1000;
	s->data_segs_in = tp->data_segs_in;
	s->flags |= KW_CONN_CLOSING;
	if (s->closed_by == KW_BY_LOCAL && s->how == KW_HOW_FIN &&
	    s->key.direction == KW_DIR_INBOUND && s->idle_ms >= KW_RACE_MIN_QUIET_MS)
		remember_close(sk, s, now);
}

/*
 * The socket's own figures at CLOSE: payload bytes each way, retransmits and the smoothed
 * RTT. bytes_sent counts the payload of every segment sent, retransmissions again (which
 * bytes_retrans counts): their difference is what was sent, each byte once, delivered or
 * not. bytes_received counts the peer's payload in order, and its FIN (one sequence number,
 * which SOCK_DONE marks; never its SYN).
 */
static __always_inline void count_transfer(const struct sock *sk, struct kw_counters *c)
{
	struct tcp_sock *tp = tcp_of(sk);
	__u64 rcvd;
	__u32 rtt;

	if (!tp)
		return;
	rcvd = tp->bytes_received;
	if ((sk->__sk_common.skc_flags & (1UL << SOCK_DONE)) && rcvd)
		rcvd--;
	__sync_fetch_and_add(&c->bytes_sent, tp->bytes_sent - tp->bytes_retrans);
	__sync_fetch_and_add(&c->bytes_received, rcvd);
	if (tp->total_retrans)
		__sync_fetch_and_add(&c->retransmits, tp->total_retrans);
	rtt = tp->srtt_us >> 3;
	if (tp->srtt_us) {
		__sync_fetch_and_add(&c->rtt_us_sum, rtt);
		__sync_fetch_and_add(&c->rtt_hist[kw_rtt_slot(rtt)], 1);
	}
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

		unanswered = tp && tp->write_seq - (fin ? 1 : 0) != s->mark;
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
	count_transfer(sk, c);

	if ((!reqs && !prior) ||
	    (by == KW_BY_LOCAL && how == KW_HOW_FIN && s->idle_ms >= KW_RACE_MIN_QUIET_MS)) {
		struct tcp_sock *tp = tcp_of(sk);
		struct kw_tuple t = {};

		if (!tp || !sk_tuple(sk, &t))
			return;
		t.lport = bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
		emit(reqs || prior ? KW_EV_IDLE_CLOSE : KW_EV_UNUSED_CLOSE, &s->key, &t, 0,
		     s->idle_ms, 0, reqs);
	}
}

/*
 * connect() gave up: SYN_SENT to CLOSE without ever being established: the error the
 * kernel left in sk_err, or none when it failed before sending its SYN (segs_out 0):
 * inet_hash_connect() found no free local port, or the socket was bound to a port whose
 * 4-tuple with this destination is taken; connect() returns EADDRNOTAVAIL for both. A
 * close() during the connect leaves no error either, but its SYN went out: not a failure.
 */
static __always_inline void on_connect_failed(const struct sock *sk)
{
	struct kw_key key = {};
	struct kw_counters *c;
	struct tcp_sock *tp;
	__u8 cf;

	tp = tcp_of(sk);
	if (!tp || !fill_key(sk, KW_DIR_OUTBOUND, &key) || !wanted(&key))
		return;
	switch (sk->sk_err) {
	case 0:
		if (tp->segs_out)
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
	if (!c)
		return;
	__sync_fetch_and_add(&c->connect_failures[cf], 1);
	if (tp->total_retrans) /* the SYN's retries */
		__sync_fetch_and_add(&c->retransmits, tp->total_retrans);
}

static __always_inline int handle_set_state(const struct sock *sk, int oldstate, int newstate)
{
	struct kw_conn *s;

	/* Only TCP sockets get state (SCTP and DCCP pass here too): checked where it is made. */
	if (newstate == TCP_SYN_SENT) {
		if (sk->sk_protocol == IPPROTO_TCP)
			on_syn_sent(sk);
		return 0;
	}
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

#endif /* KW_CLOSE_BPF_H */
