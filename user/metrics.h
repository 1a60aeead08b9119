/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Prometheus text exposition of a snapshot: per-upstream families, then self-metrics. */
#ifndef KW_METRICS_H
#define KW_METRICS_H

#include "buf.h"
#include "collector.h"

#define KW_METRIC_PREFIX "keepwatch_"

/* Label values of one upstream, formatted once per snapshot. */
struct kw_upstream_labels {
	const char *direction;
	char peer[48];
	char port[8];
	char netns[64];
};

void kw_upstream_labels(const struct kw_upstream *u, struct kw_upstream_labels *l);
/* Writes the whole exposition; 0 or -errno. */
int kw_metrics_render(const struct kw_snapshot *s, struct kw_buf *out);

#endif /* KW_METRICS_H */
