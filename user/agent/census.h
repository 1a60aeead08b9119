/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The TIME_WAIT census and ephemeral-port headroom, per network namespace. A short-lived
 * thread enters each namespace in turn, runs the iter/tcp program there (one struct
 * kw_census per socket) and reads the namespace's port sysctls; pure functions then count
 * TIME_WAIT sockets per upstream and, per outbound destination (local address, peer
 * address, peer port), the ephemeral ports in use and how many are left.
 */
#ifndef KW_CENSUS_H
#define KW_CENSUS_H

#include <stddef.h>
#include <linux/types.h>
#include "keepwatch.h"

/* The kernel's TCP states the census uses (include/net/tcp_states.h). */
#define KW_TCP_TIME_WAIT 6
#define KW_TCP_LISTEN	 10

/* Sockets read from one namespace at most; beyond it the namespace counts as an error. */
#define KW_CENSUS_MAX_SOCKETS (1U << 21)

/* A namespace's port sysctls, as kw_census_add() takes them. */
struct kw_census_sysctl {
	__u32 port_lo;		  /* net.ipv4.ip_local_port_range, first port */
	__u32 port_hi;		  /* last port, included */
	__u32 tw_reuse;		  /* net.ipv4.tcp_tw_reuse: 0, 1, or 2 (loopback only) */
	__u8 reserved[65536 / 8]; /* net.ipv4.ip_local_reserved_ports, bit p%8 of byte p/8 */
};

/* TIME_WAIT sockets of one upstream. */
struct kw_census_tw {
	struct kw_key key;
	__u64 count;
};

/* One outbound destination of one namespace: where ephemeral ports run out. */
struct kw_census_dest {
	__u8 laddr[16];	     /* ours, network order, IPv4 v4-mapped */
	__u8 raddr[16];	     /* the peer's, likewise */
	__u32 netns;	     /* network namespace inode number */
	__u16 rport;	     /* the peer's port, host order */
	__u8 family;	     /* KW_AF_* of the peer (v4-mapped peers are INET) */
	__u64 in_use;	     /* sockets to it, any state, any local port */
	__u64 time_wait;     /* of those, in TIME_WAIT (FIN_WAIT2 substate included) */
	__u64 held;	     /* ports of the ephemeral range held: in-range sockets minus
				reusable TIME_WAIT ones */
	__u64 range;	     /* the namespace's usable ephemeral ports (kw_census_netns.range) */
	__u64 headroom;	     /* range - held, never below 0: connects left before EADDRNOTAVAIL */
	double growth_per_s; /* change of held per second since the previous census; 0 on the
				first one (see kw_census_diff) */
	double exhaustion_s; /* s, headroom / growth; INFINITY if not growing, 0 if exhausted */
};

/* One namespace the census read. */
struct kw_census_netns {
	__u32 inode;
	__u32 port_lo, port_hi; /* ip_local_port_range */
	__u32 reserved;		/* ip_local_reserved_ports inside the range */
	__u32 listening; /* listening ports inside the range, not reserved: connect() skips them */
	__u32 range;	 /* ports connect() can give: port_hi - port_lo + 1, less one if that is
			    odd (the kernel scans an even number), less reserved and listening */
	__u32 tw_reuse;	 /* tcp_tw_reuse: 0, 1, 2 (loopback only) */
	__u64 sockets;	 /* records the iterator gave (request sockets are not among them) */
	__u64 time_wait; /* of those, TIME_WAIT: equals /proc/net/sockstat's "tw" */
};

struct kw_census_result {
	struct kw_census_tw *tw; /* sorted by key (memcmp, as kw_key_cmp), as a snapshot is */
	size_t n_tw;
	struct kw_census_dest *dest; /* sorted by netns, laddr, raddr, rport */
	size_t n_dest;
	struct kw_census_netns *ns; /* sorted by inode */
	size_t n_ns;
	__u64 skipped;	  /* namespaces not found or not entered (a debug line each) */
	__u64 errors;	  /* namespaces entered but not read: iterator, sysctls, too many sockets */
	__u64 unreadable; /* processes whose namespace could not be read (kw_netns_unreadable) */
};

/*
 * Runs the census in each namespace of netns[] (duplicates once) from a thread of its own,
 * adding to out (zeroed first). link_fd is the bpf_link of kw_iter_tcp. A namespace that
 * cannot be found or entered is skipped and counted. 0, or -errno if nothing could run
 * (no thread, no memory); out is then empty.
 */
int kw_census_run(int link_fd, const __u32 *netns, unsigned int n, struct kw_census_result *out);

/*
 * Adds one namespace's census: its sockets rec[0..n) in any order, its sysctls.
 * A socket is accepted (inbound: upstream port = ours) when its port listens, or, its
 * listener gone, when its port is outside the ephemeral range and the peer's inside;
 * every other non-listener is outbound (upstream port = the peer's) and counts towards
 * its destination. Rows get growth 0 until kw_census_diff. 0, -EEXIST if the namespace is already in r,
 * -EINVAL on bad sysctls (port_lo > port_hi, port_hi > 65535), -ENOMEM.
 */
int kw_census_add(struct kw_census_result *r, __u32 netns, const struct kw_census_sysctl *sys,
		  const struct kw_census *rec, size_t n);

/*
 * Growth of each destination of cur since prev, taken seconds earlier: per second, and
 * the seconds left before its headroom is gone at that pace. A destination prev did not
 * have grew from 0 if prev read its namespace; otherwise (or with no prev, or seconds <= 0)
 * its growth is 0.
 */
void kw_census_diff(const struct kw_census_result *prev, struct kw_census_result *cur,
		    double seconds);

/*
 * Whether connect() may take the port of a TIME_WAIT socket between these addresses
 * under net.ipv4.tcp_tw_reuse (1: always; 2: loopback only, either end).
 */
int kw_tw_reuse_applies(__u32 tw_reuse, const __u8 laddr[16], const __u8 raddr[16]);

/* TIME_WAIT sockets of one upstream; 0 if it has none. */
__u64 kw_census_time_wait(const struct kw_census_result *r, const struct kw_key *key);

void kw_census_free(struct kw_census_result *r);

/*
 * The sysctl texts, as /proc/sys gives them (a trailing newline is allowed). Each returns
 * 0 or -EINVAL / -ERANGE and writes its output only on success.
 * "32768\t60999": 1 <= lo <= hi <= 65535.
 */
int kw_census_parse_port_range(const char *s, __u32 *lo, __u32 *hi);
/* "", "8080,9000-9010": ports 0..65535; sets the bits of bitmap (8192 bytes), clears the rest. */
int kw_census_parse_reserved(const char *s, __u8 *bitmap);
/* "0", "1" or "2". */
int kw_census_parse_tw_reuse(const char *s, __u32 *out);

#endif /* KW_CENSUS_H */
