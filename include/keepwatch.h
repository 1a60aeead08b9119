/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The contract between the BPF programs and user space: upstream keys, per-upstream
 * counters, live-socket records and error slots. Fixed-width types only, largest fields
 * first, explicit padding; user space checks the sizes with _Static_assert.
 */
#ifndef KEEPWATCH_H
#define KEEPWATCH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif
#include "kw_hist.h"

/* kw_key.direction */
#define KW_DIR_INBOUND	0 /* we accepted it: the peer is a client or a balancer */
#define KW_DIR_OUTBOUND 1 /* we connected: the peer is a backend */
#define KW_DIR_MAX	2

/* First index of kw_counters.closed[][] and of the idle histograms */
#define KW_BY_LOCAL 0 /* we closed first */
#define KW_BY_PEER  1 /* the peer closed first */
#define KW_BY_MAX   2
/* Second index of kw_counters.closed[][] */
#define KW_HOW_FIN 0
#define KW_HOW_RST 1
#define KW_HOW_MAX 2

/* kw_key.family: AF_INET / AF_INET6 values, without pulling in socket headers */
#define KW_AF_INET  2
#define KW_AF_INET6 10

/*
 * An upstream: one peer of one network namespace, seen in one direction. Ephemeral
 * ports never enter a key. The overflow upstream (where counters go when the map is
 * full) has netns 0, an all-zero address and port 0.
 */
struct kw_key {
	__u8 addr[16]; /* peer address, network order; IPv4 as v4-mapped ::ffff:a.b.c.d */
	__u32 netns;   /* network namespace inode number */
	__u16 port; /* service port, host order: our listening port (inbound), the peer's (outbound) */
	__u8 direction; /* KW_DIR_* */
	__u8 family; /* KW_AF_INET or KW_AF_INET6: the peer's family (v4-mapped peers are INET) */
};

/*
 * Per-upstream counters, updated with atomic adds. Connections are folded in when they
 * close; requests on open connections are read from the live sockets (struct kw_live).
 */
struct kw_counters {
	__u64 opened;			     /* connections established */
	__u64 requests;			     /* requests carried by closed connections */
	__u64 reused;			     /* of those, requests after a connection's first */
	__u64 unused_closed;		     /* connections closed without a request */
	__u64 closed[KW_BY_MAX][KW_HOW_MAX]; /* closes, by who closed first and how */
	__u64 idle_ms_sum[KW_BY_MAX];	     /* ms, idle time before close, by closer */
	__u64 idle_hist[KW_BY_MAX][KW_IDLE_SLOTS]; /* idle before close, by closer */
	__u64 reqs_hist[KW_REQS_SLOTS];		   /* requests per closed connection */
};

/* One open tracked socket, as the socket-storage iterator writes it. */
struct kw_live {
	struct kw_key key;
	__u32 requests; /* requests so far */
	__u32 pad;
};

/* Error and loss counters: index of the per-CPU kw_errors array. */
#define KW_ERR_UPSTREAMS_FULL 0 /* upstream map full: counted in the overflow upstream */
#define KW_ERR_SOCK_STORAGE   1 /* socket storage could not be created: connection not tracked */
#define KW_ERR_NO_UPSTREAM    2 /* not even the overflow upstream was found: counts lost */
#define KW_ERR_FAMILY	      3 /* socket of another address family: not tracked */
#define KW_ERR_MAX	      4

#endif /* KEEPWATCH_H */
