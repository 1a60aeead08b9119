/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Reads the BPF maps into a snapshot: one record per upstream with every figure of the
 * field table (fields.h), the histograms, and the agent's own health (errors, map fill,
 * evictions, program statistics). The upstream map gives each upstream's slot, the
 * mmapped counters array its counts; TIME_WAIT and port headroom come from the census.
 */
#ifndef KW_COLLECTOR_H
#define KW_COLLECTOR_H

#include <pthread.h>
#include <linux/types.h>
#include "keepwatch.h"
#include "agent/census.h"
#include "agent/loader.h"
#include "agent/snapshot.h"

/*
 * What eviction keeps of an upstream between snapshots: when its figures last changed.
 * A digest of the figures stands in for them (48 bytes instead of 2 KB an upstream).
 */
struct kw_seen {
	struct kw_key key;
	__u32 slot;
	__u64 digest; /* of val[] */
	double last_change;
};

struct kw_collector {
	const struct kw_bpf *bpf;
	pthread_mutex_t lock;
	struct kw_seen *prev; /* the last snapshot's upstreams, sorted by key, for eviction */
	size_t nprev;
	__u64 evicted;
	double started;
	double evict_idle;  /* s an upstream must be unchanged and idle before eviction */
	const __u32 *netns; /* the namespaces to census; none: every one found */
	unsigned int n_netns;
	__u64 *open_req; /* per slot: requests of open connections, then connections */
	__u64 *floor;	 /* per slot: requests and reused last served (never go back) */
	struct kw_census_result census; /* the latest, and when it was taken */
	double census_at;
	double census_seconds;
};

/* netns: the namespaces watched (--netns), n_netns 0 for all. */
int kw_collector_init(struct kw_collector *c, const struct kw_bpf *bpf, const __u32 *netns,
		      unsigned int n_netns);
void kw_collector_fini(struct kw_collector *c);
/* Takes a snapshot; free it with kw_snapshot_free. 0 or -errno. */
int kw_collect(struct kw_collector *c, struct kw_snapshot *s);
/* Told of each upstream evicted, with its counts as they were last read. */
typedef void kw_evicted_fn(void *ctx, const struct kw_upstream *u);
/* Deletes idle upstreams once the map is over 90% full; returns how many. gone: or NULL. */
int kw_collector_evict(struct kw_collector *c, kw_evicted_fn *gone, void *ctx);

#endif /* KW_COLLECTOR_H */
