/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Prometheus text exposition of a snapshot: per-upstream families, then self-metrics. */
#ifndef KW_METRICS_H
#define KW_METRICS_H

#include <sys/types.h>
#include "lib/buf.h"
#include "agent/snapshot.h"

#define KW_METRIC_PREFIX "keepwatch_"

/* The agent's own metric families. */
enum kw_self_id {
	KW_S_BUILD_INFO,
	KW_S_ATTACH_INFO,
	KW_S_BPF_ERRORS,
	KW_S_UPSTREAMS,
	KW_S_CAPACITY,
	KW_S_EVICTED,
	KW_S_TRACKED,
	KW_S_STATS_ENABLED,
	KW_S_PROG_RUNS,
	KW_S_PROG_SECONDS,
	KW_S_UPTIME,
	KW_S_EVENTS_RECEIVED,
	KW_S_EVENTS_DROPPED,
	KW_S_EXPO_SERIES,
	KW_S_PEERS_FOLDED,
	KW_S_PORTS_HELD,
	KW_S_PORTS_RANGE,
	KW_S_PORTS_HEADROOM,
	KW_S_PORTS_EXHAUSTION,
	KW_S_CENSUS_NETNS,
	KW_S_CENSUS_SECONDS,
	KW_S_NETNS_ADDRESS,
	KW_S_CENSUS_UNREADABLE,
	KW_S_MAX
};

struct kw_self_family {
	const char *name;
	const char *type;
	const char *label; /* its label(s), or NULL (documentation only for several) */
	const char *help;
};

extern const struct kw_self_family kw_self_families[KW_S_MAX];

/* Writes the whole exposition; 0 or -errno. */
int kw_metrics_render(const struct kw_snapshot *s, struct kw_buf *out);

/*
 * The same page read in parts, for a response sent while it is written: at 10k upstreams
 * the page is 90 MB, a part is what the socket takes next. The stream takes over the
 * snapshot, also when it fails (s is left empty; its upstreams are freed with the
 * stream), and no longer needs the collector: the census and the namespace names are
 * read at once. NULL with errno set.
 */
struct kw_metrics_stream;
struct kw_metrics_stream *kw_metrics_stream_new(struct kw_snapshot *s);
/*
 * Writes the next max bytes of the page into buf, fewer only where the page ends; returns
 * how many, 0 once the page has been read whole, or -errno.
 */
ssize_t kw_metrics_stream_read(struct kw_metrics_stream *m, char *buf, size_t max);
/* The whole page's length in bytes, known from the start. */
size_t kw_metrics_stream_size(const struct kw_metrics_stream *m);
void kw_metrics_stream_free(struct kw_metrics_stream *m);

#endif /* KW_METRICS_H */
