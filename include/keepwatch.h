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
#include "kw_limits.h"

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

/*
 * Reset reasons as keepwatch names them. The kernel's enum sk_rst_reason (6.10 and later)
 * changes between versions: the BPF side maps it by name through BTF.
 */
#define KW_RST_NOT_SPECIFIED	    0
#define KW_RST_NO_SOCKET	    1 /* no socket for the packet's tuple */
#define KW_RST_TCP_FLAGS	    2 /* e.g. an ACK to a listener: the connection is gone */
#define KW_RST_ABORT_ON_DATA	    3 /* data arrived after we closed */
#define KW_RST_TIMEWAIT_SOCKET	    4 /* data arrived at our timewait socket */
#define KW_RST_ABORT_ON_CLOSE	    5 /* we closed with data unread */
#define KW_RST_ABORT_ON_LINGER	    6
#define KW_RST_ABORT_ON_MEMORY	    7
#define KW_RST_TCP_STATE	    8 /* close with SO_LINGER 0, or a disconnect */
#define KW_RST_KEEPALIVE_TIMEOUT    9
#define KW_RST_DISCONNECT_WITH_DATA 10
#define KW_RST_INVALID_SYN	    11
#define KW_RST_OTHER		    12 /* protocol errors: bad ACK, PAWS, MPTCP, ... */
#define KW_RST_MAX		    13

/* Our socket's state when a reset arrived. */
#define KW_RSTATE_ESTABLISHED 0
#define KW_RSTATE_SYN_SENT    1
#define KW_RSTATE_CLOSE_WAIT  2
#define KW_RSTATE_FIN_WAIT1   3
#define KW_RSTATE_FIN_WAIT2   4
#define KW_RSTATE_LAST_ACK    5
#define KW_RSTATE_CLOSING     6
#define KW_RSTATE_OTHER	      7
#define KW_RSTATE_MAX	      8

/* Why an outbound connect failed: index of kw_counters.connect_failures */
#define KW_CF_EADDRNOTAVAIL 0 /* no ephemeral port left for this destination */
#define KW_CF_ECONNREFUSED  1 /* reset answered our SYN */
#define KW_CF_ETIMEDOUT	    2 /* SYN retries ran out */
#define KW_CF_EHOSTUNREACH  3
#define KW_CF_ENETUNREACH   4
#define KW_CF_OTHER	    5
#define KW_CF_MAX	    6

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
 * Per-upstream counters, one slot of the kw_counters array, updated with atomic adds:
 * requests as they happen, everything else when a connection closes. A slot is a whole
 * number of cache lines; what every connection updates comes first, in two lines.
 */
struct kw_counters {
	__u64 opened;	/* connections established (active: opened + adopted - closed - lost) */
	__u64 requests; /* requests */
	__u64 used;	/* connections that carried a request (reused: requests - used) */
	__u64 closed[KW_BY_MAX][KW_HOW_MAX]; /* closes, by who closed first and how */
	__u64 time_wait_entered;	     /* our closes that left a TIME_WAIT socket here */
	__u64 idle_ms_sum[KW_BY_MAX];	     /* ms, idle time before close, by closer */
	__u64 reqs_sum[KW_BY_MAX];	     /* requests of closed connections, by closer */
	__u64 single_idle_ms_sum[KW_BY_MAX]; /* ms, idle before close of one-request connections */
	/*
	 * Keep-alive races: a request met a connection the other side had closed. Inbound
	 * upstreams count the server side (we closed, the request came), outbound ones the
	 * client side (we sent on a connection the peer had closed: a reset answered).
	 */
	__u64 races;
	__u64 aborted_unread;			   /* we closed with a request unread */
	__u64 idle_hist[KW_BY_MAX][KW_IDLE_SLOTS]; /* idle before close, by closer */
	/* requests per closed connection, by closer; slot 0: closed without a request */
	__u64 reqs_hist[KW_BY_MAX][KW_REQS_SLOTS];
	__u64 resets_sent[KW_RST_MAX];	     /* by KW_RST_* */
	__u64 resets_rcvd[KW_RSTATE_MAX];    /* by KW_RSTATE_* */
	__u64 race_idle_ms_sum;		     /* ms */
	__u64 race_idle_hist[KW_IDLE_SLOTS]; /* idle before the close a request met */
	__u64 race_gap_us_sum;		     /* us */
	__u64 race_gap_hist[KW_GAP_SLOTS];   /* from the close (FIN) to the request */
	__u64 connect_failures[KW_CF_MAX];   /* outbound connect() failures, by KW_CF_* */
	/* connections already established when the agent started, found by its walk */
	__u64 adopted;
	/* connections that closed while no agent ran (pinned maps), found at the next start */
	__u64 lost;
	/*
	 * At close, from the socket: payload bytes sent, each once (bytes_sent less
	 * bytes_retrans), and payload bytes received in order (bytes_received less the FIN);
	 * retransmitted segments (total_retrans), failed connects' SYN retries included.
	 */
	__u64 bytes_sent;     /* bytes */
	__u64 bytes_received; /* bytes */
	__u64 retransmits;    /* segments */
	/* established to the first close (FIN or RST, either end); adopted ones left out */
	__u64 lifetime_ms_sum; /* ms */
	__u64 lifetime_hist[KW_LIFETIME_SLOTS];
	/* outbound: connect() (SYN_SENT) to ESTABLISHED, SYN retries included */
	__u64 connect_us_sum; /* us */
	__u64 connect_hist[KW_CONNECT_SLOTS];
	/* the smoothed RTT at close (tcp_sock.srtt_us), of connections with an RTT sample */
	__u64 rtt_us_sum; /* us */
	__u64 rtt_hist[KW_RTT_SLOTS];
	__u64 pad[7]; /* to a whole number of cache lines */
};

/* kw_globals: index of each value */
#define KW_GLOBAL_GEN		 0 /* bumped by the agent before it evicts upstreams */
#define KW_GLOBAL_STORAGE_CONNS	 1 /* connections in socket storage now */
#define KW_GLOBAL_ACTIVE	 2 /* the generation (cfg_gen) of the programs that count now */
#define KW_GLOBAL_EVENTS	 3 /* events the agents of these maps received, written by them */
#define KW_GLOBAL_EVENTS_DROPPED 4 /* and dropped from their event logs */
#define KW_GLOBAL_MAX		 5

/* kw_conn.flags */
#define KW_CONN_CLOSING	 0x01 /* the first close was seen and recorded */
#define KW_CONN_RST_RCVD 0x04 /* a reset arrived */
#define KW_CONN_FOLDED	 0x08 /* folded into its upstream at CLOSE: nothing more to count */
#define KW_CONN_STORAGE	 0x10 /* in socket storage, not in kw_conns; counted live */
/*
 * Adopted at the agent's start with requests already behind it: how many is unknown, so
 * every request it carries now is a reuse, and its close stays out of the requests per
 * connection figures.
 */
#define KW_CONN_PRIOR 0x20

/*
 * An open connection: one cache line, in the kw_conns table at the entry of the
 * socket's address, or in socket storage when another open connection holds that entry.
 * The requests of a connection in the table reach its upstream's counters when it
 * closes: until then user space adds them, reading the table.
 */
struct kw_conn {
	__u64 owner; /* the owner's socket address (a number); 0: never used */
	__u32 hash;  /* and its sk_hash: a later socket at that address is another */
	/*
	 * Until the first close: ms (CLOCK_MONOTONIC, modulo 2^32) it was established, 0 if
	 * unknown (adopted). From the first close: us (modulo 2^32) of an idle first close.
	 */
	__u32 close_us;
	struct kw_key key;  /* its upstream */
	__u32 idx;	    /* the upstream's slot in kw_counters */
	__u32 requests;	    /* requests so far */
	__u32 mark;	    /* our write_seq at the last counted turn */
	__u32 idle_ms;	    /* idle time before the first close, ms */
	__u32 data_segs_in; /* at our close: data arriving later met a closed socket */
	__u8 closed_by;	    /* KW_BY_* */
	__u8 how;	    /* KW_HOW_* */
	__u8 flags;	    /* KW_CONN_* */
	/*
	 * Seen open: set when the state is made and by the agent's start-up walk for every
	 * tracked socket it meets; the agent clears it before the walk. An entry neither
	 * folded nor seen after the walk belongs to a socket that closed while no agent ran
	 * (user space reads it with flags, as one word).
	 */
	__u8 seen;
};

/*
 * A connect() in progress: when its socket entered SYN_SENT, in the kw_syns entry of the
 * socket's address (the kw_conns index), for the connect latency at ESTABLISHED.
 */
struct kw_syn {
	__u64 owner; /* the socket's address (a number), as kw_conn.owner */
	__u64 ns;    /* ns, CLOCK_MONOTONIC: entered SYN_SENT */
};

/*
 * kw_prog_totals: a program's runs and run time over every load on these pinned maps, by
 * name, written by the agent (a load's own statistics start from 0).
 */
#define KW_PROG_TOTALS 16
struct kw_prog_total {
	__u64 run_cnt;	   /* runs */
	__u64 run_time_ns; /* ns */
	char name[32];	   /* the program's name, NUL-terminated; empty: a free entry */
};

/* kw_meta: the state of the slot allocator. Slots 0 and 1 are the overflow upstreams. */
struct kw_meta {
	__u64 next_slot;    /* the next never-used slot of kw_counters */
	__u64 created_unix; /* s since the epoch: when the counters started (set by the agent) */
};

/* Notable events, rate limited in the kernel: kw_event.type */
#define KW_EV_RACE	   1 /* a keep-alive race (reason: KW_RST_* server side, KW_RSTATE_* client) */
#define KW_EV_RESET_SENT   2 /* reason: KW_RST_* */
#define KW_EV_RESET_RCVD   3 /* reason: KW_RSTATE_* */
#define KW_EV_IDLE_CLOSE   4 /* we closed a connection idle KW_RACE_MIN_QUIET_MS or more */
#define KW_EV_UNUSED_CLOSE 5 /* a connection closed without a request */
#define KW_EV_ABORT_UNREAD 6 /* we closed with a request unread */
#define KW_EV_MAX	   7

struct kw_event {
	__u64 ts_ns;	/* ns, CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u8 laddr[16]; /* our address, network order, IPv4 v4-mapped */
	__u8 raddr[16]; /* the peer's address, likewise */
	__u32 netns;	/* network namespace inode number */
	__u32 idle_ms;	/* ms, idle time before the close */
	__u32 gap_us;	/* us, race: from the close to the request or the reset */
	__u32 requests; /* requests the connection had carried */
	__u16 lport;	/* our port, host order */
	__u16 rport;	/* the peer's port, host order */
	__u8 type;	/* KW_EV_* */
	__u8 direction; /* KW_DIR_* */
	__u8 reason;	/* KW_RST_* or KW_RSTATE_*, see KW_EV_* */
	__u8 family;	/* KW_AF_* of the peer */
};

/* One socket of a network namespace, as the TCP census iterator writes it. */
struct kw_census {
	__u8 laddr[16]; /* ours, network order, IPv4 v4-mapped */
	__u8 raddr[16]; /* the peer's */
	__u16 lport;	/* host order */
	__u16 rport;	/* host order */
	__u8 state;	/* the kernel's TCP state (TCP_TIME_WAIT for timewait sockets) */
	__u8 family;	/* KW_AF_* of the socket */
	__u16 pad;
};

/* Error and loss counters: index of the per-CPU kw_errors array. */
#define KW_ERR_UPSTREAMS_FULL 0 /* upstream map full: counted in the overflow upstream */
#define KW_ERR_SOCK_STORAGE   1 /* socket storage could not be created: connection not tracked */
#define KW_ERR_FAMILY	      2 /* socket of another address family: not tracked */
#define KW_ERR_EVENTS_RATE    3 /* events over the rate limit: not sent */
#define KW_ERR_RINGBUF_FULL   4 /* events lost: the ring buffer was full */
#define KW_ERR_CONN_TABLE     5 /* kw_conns entry taken: tracked in socket storage (slower) */
#define KW_ERR_SYN_TABLE      6 /* kw_syns entry taken by another connect: latency not measured */
#define KW_ERR_MAX	      7

#endif /* KEEPWATCH_H */
