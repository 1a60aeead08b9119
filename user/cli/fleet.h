/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The pure logic of `keepwatch doctor --prometheus`: a Prometheus instant-query answer
 * holding the keepwatch series of many hosts becomes one set of model records per host
 * (doctor/model.h), the same doctor the agent runs diagnoses each host, and the proxy
 * hosts' outbound upstreams are paired with their backends' inbound ones: both ends'
 * timeouts side by side, the client-side races next to the server-side ones, and which
 * host's setting to change. No I/O here: the unit tests feed it literal answers.
 *
 * A host is a value of the `instance` label. Histograms are per group (direction,
 * netns, port) unless the agents run with per-peer histograms: a group's upstreams are
 * then diagnosed as one record (peer "*") unless the group has a single peer, so that
 * every rule reads counters and histograms of the same connections.
 */
#ifndef KW_CLI_FLEET_H
#define KW_CLI_FLEET_H

#include <stddef.h>
#include <jansson.h>
#include "doctor/doctor.h"
#include "lib/buf.h"

#define KW_FLEET_NAME_LEN 128

/* One local address of a host's namespace (keepwatch_netns_address_info). */
struct kw_fleet_addr {
	__u8 addr[16];
	__u32 netns; /* the host's netns id, see kw_fleet_host.netns */
};

struct kw_fleet_host {
	char instance[KW_FLEET_NAME_LEN];
	double uptime; /* keepwatch_agent_uptime_seconds; 0 if not scraped */
	/* the records the doctor reads, one per upstream or per group (flags KW_UP_FOLDED) */
	struct kw_upstream *u;
	size_t n;
	/* netns label values: key.netns i + 1 is netns[i]; 0 is the overflow's "other" */
	char (*netns)[64];
	size_t n_netns;
	struct kw_fleet_addr *addr;
	size_t n_addr;
	/* while reading: counter and histogram series by label set (fleet.c) */
	struct series *s;
	size_t n_s;
};

struct kw_fleet {
	struct kw_fleet_host *h; /* in the order their first series came */
	size_t n;
	__u64 ignored; /* series not understood (another version's families, bad labels) */
};

/*
 * Adds the series of one query answer's data.result (an array of {"metric": {...},
 * "value": [t, "v"]}). 0, -EPROTO for an answer of the wrong shape, -ENOMEM.
 */
int kw_fleet_add(struct kw_fleet *f, const json_t *result);

/*
 * Turns what was added into each host's records (sorted by key), histograms attached;
 * call once, after the last kw_fleet_add. 0 or -ENOMEM.
 */
int kw_fleet_finish(struct kw_fleet *f);

void kw_fleet_free(struct kw_fleet *f);

/* One pair: a client host's outbound upstream and the server host's inbound one. */
struct kw_fleet_pair {
	size_t client_host, client_u; /* indexes into f->h and its u */
	size_t server_host, server_u;
};

/*
 * The pairs: each outbound upstream whose peer address a host's namespace owns, with that
 * namespace's inbound upstream of the same port from one of the client namespace's
 * addresses (or the group's record when its peers are folded). *out: free() it.
 * 0 or -ENOMEM.
 */
int kw_fleet_pairs(const struct kw_fleet *f, struct kw_fleet_pair **out, size_t *nout);

/*
 * The report document: {"version": 1, "hosts": [{"instance", "uptime_seconds",
 * "lb_idle_timeout", "upstreams": the agent's doctor upstreams}], "pairs": [...]}; NULL
 * when out of memory.
 */
json_t *kw_fleet_json(const struct kw_fleet *f);

/* The report as text: each host's doctor report, then the pairs. 0, -EPROTO, -ENOMEM. */
int kw_fleet_text(const json_t *doc, struct kw_buf *out);

#endif /* KW_CLI_FLEET_H */
