/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Request counting on the receive path, the only per-request work: one lookup of the
 * connection's state, and a count at each request/response turn.
 *
 * Uses compat.bpf.h, counters.bpf.h, conn.bpf.h.
 */
#ifndef KW_RECV_BPF_H
#define KW_RECV_BPF_H

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
	if (!tp)
		return 0;
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

#endif /* KW_RECV_BPF_H */
