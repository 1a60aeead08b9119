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
#include "doctor/model.h"

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
