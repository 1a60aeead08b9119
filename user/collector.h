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
#include "fields.h"
#include "census.h"
#include "loader.h"

#define KW_HIST_MAXSLOTS 32

struct kw_upstream {
	struct kw_key key;
	__u32 slot;				/* its slot in the kernel's counters array */
	__u64 val[KW_F_MAX];			/* by enum kw_field_id */
	__u64 hist[KW_H_MAX][KW_HIST_MAXSLOTS]; /* per slot, not cumulative */
	double hist_sum[KW_H_MAX];		/* in the exposed unit */
	double single_idle_sum[KW_BY_MAX]; /* s, idle before close of one-request connections */
	double last_change;		   /* s, CLOCK_MONOTONIC: for eviction */
};

struct kw_snapshot {
	struct kw_upstream *u; /* sorted by key */
	size_t n;
	size_t u_mapped; /* bytes of u's own mapping (kw_snapshot_alloc), 0 if malloc'd */
	__u64 errors[KW_ERR_MAX];
	__u64 capacity;	    /* upstream map capacity, overflow entries included */
	__u64 evicted;	    /* upstreams evicted since start */
	__u64 live_sockets; /* tracked open sockets */
	double uptime;	    /* s since the agent started */
	struct kw_prog_stat progs[KW_MAX_PROGS];
	unsigned int nprogs;
	int bpf_stats_enabled;	 /* kernel.bpf_stats_enabled, -1 if unreadable */
	const char *attach_mode; /* the programs attached, see kw_bpf_attach_mode() */
	__u64 counters_since;	 /* s since the epoch: when the counts started (pinned maps) */
	/* the latest TCP census (TIME_WAIT, port headroom); owned by the collector, valid
	 * until the next kw_collect() */
	const struct kw_census_result *census;
	double census_seconds; /* how long that census took */
	__u64 events_received; /* filled by the agent from its event log */
	__u64 events_dropped;
};

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
/*
 * Room for n zeroed upstreams in s->u (a mapping of its own in huge pages when large,
 * s->u_mapped set), freed with the rest by kw_snapshot_free; 0 or -ENOMEM. A snapshot
 * whose u is allocated otherwise must have u_mapped 0.
 */
int kw_snapshot_alloc(struct kw_snapshot *s, size_t n);
void kw_snapshot_free(struct kw_snapshot *s);
/* Deletes idle upstreams once the map is over 90% full; returns how many. */
int kw_collector_evict(struct kw_collector *c);

int kw_key_cmp(const struct kw_key *a, const struct kw_key *b);
/* The overflow upstream of a direction: counts the map had no room for. */
int kw_key_is_overflow(const struct kw_key *k);
double kw_now(void);

#endif /* KW_COLLECTOR_H */
