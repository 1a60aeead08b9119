/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The model the doctor reads, shared by keepwatchd (which fills it from the kernel's maps
 * and its census) and keepwatch (which fills it from a Prometheus server's answers): one
 * record per upstream with every figure of the field table (lib/fields.h) and its
 * histograms, and the ephemeral-port rows of a TCP census. Nothing here reads the kernel.
 */
#ifndef KW_MODEL_H
#define KW_MODEL_H

#include <stddef.h>
#include <linux/types.h>
#include "keepwatch.h"
#include "lib/fields.h"

#define KW_HIST_MAXSLOTS 32

struct kw_upstream {
	struct kw_key key;
	__u32 slot;				/* its slot in the kernel's counters array */
	__u64 val[KW_F_MAX];			/* by enum kw_field_id */
	__u64 hist[KW_H_MAX][KW_HIST_MAXSLOTS]; /* per slot, not cumulative */
	double hist_sum[KW_H_MAX];		/* in the exposed unit */
	double single_idle_sum[KW_BY_MAX];	/* s, idle before close of one-request connections;
					      NAN: not known (not in /metrics) */
	double last_change;			/* s, CLOCK_MONOTONIC: for eviction */
	/* in an exposition view (agent/view.h) only: */
	__u32 folded;	    /* peers summed in this peer="*" record */
	unsigned int flags; /* KW_UP_* */
};

/* kw_upstream.flags: what a record of an exposition view stands for. */
#define KW_UP_FOLDED	0x1 /* peer="*": the folded peers of its group */
#define KW_UP_COLLAPSED 0x2 /* port="*", netns="*": every such record of its direction */

/* Upstream keys in the order snapshots keep them (memcmp of the key). */
int kw_key_cmp(const struct kw_key *a, const struct kw_key *b);
/* The overflow upstream of a direction: counts the map had no room for. */
int kw_key_is_overflow(const struct kw_key *k);
/* The overflow upstream's record (not a view's record of a collapsed direction). */
int kw_upstream_is_overflow(const struct kw_upstream *u);

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

/* A local address of one namespace the census read (not loopback, not IPv6 link-local). */
struct kw_census_addr {
	__u8 addr[16]; /* network order, IPv4 v4-mapped */
	__u32 netns;
};

/* The addresses kept per namespace at most: more are counted in addr_dropped. */
#define KW_CENSUS_ADDRS_MAX 16

struct kw_census_result {
	struct kw_census_tw *tw; /* sorted by key (memcmp, as kw_key_cmp), as a snapshot is */
	size_t n_tw;
	struct kw_census_dest *dest; /* sorted by netns, laddr, raddr, rport */
	size_t n_dest;
	struct kw_census_netns *ns; /* sorted by inode */
	size_t n_ns;
	struct kw_census_addr *addr; /* in the order read, by namespace */
	size_t n_addr;
	__u64 addr_dropped; /* addresses beyond KW_CENSUS_ADDRS_MAX of a namespace */
	__u64 skipped;	    /* namespaces not found or not entered (a debug line each) */
	__u64 errors;	  /* namespaces entered but not read: iterator, sysctls, too many sockets */
	__u64 unreadable; /* processes whose namespace could not be read (kw_netns_unreadable) */
};

/*
 * Whether connect() may take the port of a TIME_WAIT socket between these addresses
 * under net.ipv4.tcp_tw_reuse (1: always; 2: loopback only, either end).
 */
int kw_tw_reuse_applies(__u32 tw_reuse, const __u8 laddr[16], const __u8 raddr[16]);

#endif /* KW_MODEL_H */
