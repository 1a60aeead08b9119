/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * keepwatch doctor: from a snapshot's upstreams, infer the idle timeout each side of each
 * upstream uses (from its idle-before-close histograms) and apply the rules that find the
 * keep-alive misalignments behind 502s: a keep-alive shorter than the balancer's idle
 * timeout, a backend closing before the pool, pre-opened connections closed unused,
 * requests cut off by aborts. Then why connections are not reused: single-use connections
 * (which side closes them after one request), a cap on requests per connection, short
 * keep-alive timeouts on internal hops, and, with a census, ephemeral ports running out.
 * Pure functions over struct kw_upstream values (and a census result, doctor/model.h):
 * the unit tests feed them literal counts, keepwatchd its snapshots, and keepwatch doctor
 * --prometheus the records it builds from a Prometheus server's answers (cli/fleet.h).
 */
#ifndef KW_DOCTOR_H
#define KW_DOCTOR_H

#include <stddef.h>
#include <linux/types.h>
#include <jansson.h>
#include "lib/buf.h"
#include "doctor/model.h"

/* Closes with an idle time at or under this are closes right after a response. */
#define KW_DOCTOR_MIN_IDLE (KW_RACE_MIN_QUIET_MS / 1e3) /* s: the quiet a race needs */

enum kw_confidence { KW_CONF_NONE, KW_CONF_LOW, KW_CONF_MEDIUM, KW_CONF_HIGH };

/*
 * The idle timeout one side uses, from its closes idle for more than KW_DOCTOR_MIN_IDLE:
 * the histogram slot holding the most of them. A narrow slot around a whole number of
 * seconds names that timeout (exact); a wide slot gives a range, estimated from the
 * histogram's sum when every close fell in it, from the range's middle otherwise.
 */
struct kw_timeout {
	enum kw_confidence confidence; /* KW_CONF_NONE: no idle close, nothing else is set */
	int exact;		       /* 1: a named timeout (the slot's middle) */
	double seconds;		       /* the timeout or the estimate */
	double lo, hi;		       /* the slot (lo, hi]; hi is INFINITY in the last slot */
	__u64 samples;		       /* closes in the slot */
	__u64 idle_closes;	       /* closes idle for more than KW_DOCTOR_MIN_IDLE */
	double share;		       /* samples / idle_closes */
};

enum kw_severity { KW_SEV_INFO, KW_SEV_WARNING, KW_SEV_CRITICAL };

struct kw_finding {
	const char *id; /* keepalive_shorter_than_lb, ... */
	enum kw_severity severity;
	const char *failure; /* "502", "504", "wasted handshakes", "connect failures", ... */
	char summary[256];
	char evidence[1024];
	char fix[512];
	unsigned int rule; /* the rule's row in the doctor's table: the order among equals */
};

/*
 * The most findings one upstream can get: inbound, the three timeout rules, one of the two
 * single-use rules (they exclude each other), request_cap and short_keepalive_internal;
 * outbound, upstream_closes_before_pool, the two port rules, one single-use rule,
 * request_cap and short_keepalive_internal.
 */
#define KW_DOCTOR_MAX_FINDINGS 6

/* How an upstream reuses its connections, from its counters and requests histograms. */
struct kw_reuse {
	__u64 connections;	       /* opened (backend_conn) */
	__u64 requests;		       /* all requests, open connections included */
	__u64 closed;		       /* closed connections, both closers, FIN or RST */
	__u64 single[KW_BY_MAX];       /* closed after exactly one request, by who closed first */
	double single_idle[KW_BY_MAX]; /* s, their mean idle before the close; 0 if none, NAN
					  if not known (single_idle_sum NAN: a fleet record) */
};

struct kw_diagnosis {
	const struct kw_upstream *u;
	struct kw_timeout timeout[KW_BY_MAX]; /* by KW_BY_LOCAL, KW_BY_PEER */
	struct kw_reuse reuse;
	/*
	 * Outbound, with a census: the destination row (one local address) closest to running
	 * out of ports, and its namespace's row; has_ports 0 otherwise. Copies: the census may
	 * be freed before the diagnosis.
	 */
	int has_ports;
	unsigned int port_sources; /* rows of this destination: local addresses in use */
	struct kw_census_dest ports;
	struct kw_census_netns ports_ns;
	struct kw_finding finding[KW_DOCTOR_MAX_FINDINGS];
	unsigned int nfindings; /* worst first */
};

struct kw_doctor_opts {
	double lb_idle_timeout; /* s, the balancer's idle timeout; 0 when unknown */
	double uptime;		/* s the counts cover: the agent's uptime */
	/* the latest census (port headroom of outbound destinations), or NULL */
	const struct kw_census_result *census;
	int match_peer; /* only upstreams of peer (and port, if not 0): see
			   kw_addr_parse_peer */
	__u8 peer[16];
	__u16 port;
	/* the JSON's netns label of an inode (NULL: the inode's number), with netns_arg */
	void (*netns_name)(__u32 inode, char *out, size_t len, void *arg);
	void *netns_arg;
};

/* The timeout slots of a KW_IDLE_SLOTS histogram (bounds in s, as kw_hists[] has them). */
void kw_timeout_infer(const __u64 *slots, unsigned int nslots, const double *bounds, double sum,
		      struct kw_timeout *t);

/* Connections, requests and single-use connections of one upstream. */
void kw_reuse_of(const struct kw_upstream *u, struct kw_reuse *r);

/* Timeouts and findings of one upstream. */
void kw_doctor_upstream(const struct kw_upstream *u, const struct kw_doctor_opts *o,
			struct kw_diagnosis *d);

/*
 * Diagnoses of the upstreams worth showing (any close or any finding; the overflow
 * upstreams only with a finding; only the matching peer with match_peer), the worst first,
 * in *out (free() it) and *nout. 0 or -ENOMEM.
 */
int kw_doctor_run(const struct kw_upstream *u, size_t n, const struct kw_doctor_opts *o,
		  struct kw_diagnosis **out, size_t *nout);

/*
 * The document of GET /api/v1/doctor; 0 or -ENOMEM. Per upstream: direction, peer, port,
 * netns, timeouts, reuse (connections, requests, requests_per_connection, closed,
 * single_use, single_use_share, single_use_closed_by, single_use_idle_seconds) and findings.
 */
int kw_doctor_json(const struct kw_diagnosis *d, size_t n, const struct kw_doctor_opts *o,
		   struct kw_buf *out);

/* A timeout as the document writes it: null when unknown. */
json_t *kw_doctor_timeout_json(const struct kw_timeout *t);

/* The "upstreams" array of that document alone (a fleet report has one per host); NULL. */
json_t *kw_doctor_upstreams_json(const struct kw_diagnosis *d, size_t n,
				 const struct kw_doctor_opts *o);

const char *kw_confidence_name(enum kw_confidence c);
const char *kw_severity_name(enum kw_severity s);

#endif /* KW_DOCTOR_H */
