/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Addresses: a socket's or an incoming segment's tuple (struct kw_tuple), a socket's
 * upstream key (struct kw_key), IPv4 addresses as v4-mapped IPv6 ones. Mind the byte
 * order: skc_num is host order, skc_dport and the segment's ports network order.
 */
#ifndef KW_TUPLE_BPF_H
#define KW_TUPLE_BPF_H

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

#endif /* KW_TUPLE_BPF_H */
