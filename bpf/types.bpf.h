/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * keepwatch's BPF-only types: the values of the maps that never cross to user space (the
 * shared ones are in include/keepwatch.h), and the kernel constants vmlinux.h lacks
 * (macros are not in BTF).
 */
#ifndef KW_TYPES_BPF_H
#define KW_TYPES_BPF_H

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

/* One way of the per-CPU upstream slot cache (kw_slot_cache). */
struct kw_slot_cache {
	struct kw_key key;
	__u32 idx;
	__u32 gen;
};

#define SLOT_CACHE_WAYS 4

/* Listening ports of one network namespace, a bit each (kw_listening). */
struct kw_ports {
	__u64 bits[65536 / 64];
};

#endif /* KW_TYPES_BPF_H */
