/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * A snapshot: what the agent knows at one instant, one record per upstream with every
 * figure of the field table (lib/fields.h) and its histograms, plus the agent's own
 * health. The collector fills it; the exposition (metrics, json) and the doctor read it.
 * This header is all they need of the agent's state: it pulls in neither the loader nor
 * the census (a snapshot points to the census it was taken with; readers of it include
 * census.h themselves).
 */
#ifndef KW_SNAPSHOT_H
#define KW_SNAPSHOT_H

#include <stddef.h>
#include <linux/types.h>
#include "keepwatch.h"
#include "lib/fields.h"

struct kw_census_result;

/* One BPF program's statistics (kernel.bpf_stats_enabled). */
struct kw_prog_stat {
	char name[32];
	__u64 run_cnt;
	__u64 run_time_ns;
};

#define KW_MAX_PROGS 10

/* A job of the kernel side and what serves it on this kernel (see loader.c's jobs). */
struct kw_bpf_job {
	const char *job;     /* "requests", "resets_sent", ... */
	const char *program; /* "tp_btf/sock_recv_length", a fallback, or "none" */
};

#define KW_MAX_JOBS 8

#define KW_HIST_MAXSLOTS 32

struct kw_upstream {
	struct kw_key key;
	__u32 slot;				/* its slot in the kernel's counters array */
	__u64 val[KW_F_MAX];			/* by enum kw_field_id */
	__u64 hist[KW_H_MAX][KW_HIST_MAXSLOTS]; /* per slot, not cumulative */
	double hist_sum[KW_H_MAX];		/* in the exposed unit */
	double single_idle_sum[KW_BY_MAX]; /* s, idle before close of one-request connections */
	double last_change;		   /* s, CLOCK_MONOTONIC: for eviction */
	/* in an exposition view (view.h) only: */
	__u32 folded;	    /* peers summed in this peer="*" record */
	unsigned int flags; /* KW_UP_* */
};

/* kw_upstream.flags: what a record of an exposition view stands for. */
#define KW_UP_FOLDED	0x1 /* peer="*": the folded peers of its group */
#define KW_UP_COLLAPSED 0x2 /* port="*", netns="*": every such record of its direction */

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
	int bpf_stats_enabled;	       /* kernel.bpf_stats_enabled, -1 if unreadable */
	const struct kw_bpf_job *jobs; /* what serves each job, see kw_bpf_jobs() */
	unsigned int njobs;
	__u64 counters_since; /* s since the epoch: when the counts started (pinned maps) */
	/* the latest TCP census (TIME_WAIT, port headroom); owned by the collector, valid
	 * until the next kw_collect() */
	const struct kw_census_result *census; /* see census.h */
	double census_seconds;		       /* how long that census took */
	__u64 events_received;		       /* filled by the agent from its event log */
	__u64 events_dropped;
	/*
	 * An exposition view's (view.h): histograms per group (direction, netns, port; no
	 * peer), summed over its peers, instead of per upstream; and the peers folded.
	 */
	int hist_by_group;
	struct kw_upstream *groups; /* sorted; freed by kw_snapshot_free */
	size_t ngroups;
	__u64 peers_folded[KW_DIR_MAX];
};

/*
 * Room for n zeroed upstreams in s->u (a mapping of its own in huge pages when large,
 * s->u_mapped set), freed with the rest by kw_snapshot_free; 0 or -ENOMEM. A snapshot
 * whose u is allocated otherwise must have u_mapped 0.
 */
int kw_snapshot_alloc(struct kw_snapshot *s, size_t n);
void kw_snapshot_free(struct kw_snapshot *s);

/* Upstream keys in the order snapshots keep them (memcmp of the key). */
int kw_key_cmp(const struct kw_key *a, const struct kw_key *b);
/* The overflow upstream of a direction: counts the map had no room for. */
int kw_key_is_overflow(const struct kw_key *k);
/* The overflow upstream's record (not a view's record of a collapsed direction). */
int kw_upstream_is_overflow(const struct kw_upstream *u);

/* Label values of one upstream, formatted once per snapshot. */
struct kw_upstream_labels {
	const char *direction;
	char peer[48];
	char port[8];
	char netns[64];
};

/*
 * The labels every per-upstream series and JSON record carries ("other" for overflow,
 * "*" for what a view folded).
 */
void kw_upstream_labels(const struct kw_upstream *u, struct kw_upstream_labels *l);

#endif /* KW_SNAPSHOT_H */
