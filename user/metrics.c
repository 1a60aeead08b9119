// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Renders a snapshot as Prometheus text: every row of the field table as one series per
 * upstream (families grouped, HELP/TYPE once), the histograms, then the agent's own
 * health, modelled on ebpf_exporter's self-metrics.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "expo.h"
#include "metrics.h"
#include "netns.h"

static const char *const error_reasons[KW_ERR_MAX] = {
	[KW_ERR_UPSTREAMS_FULL] = "upstreams_full",   [KW_ERR_SOCK_STORAGE] = "sock_storage",
	[KW_ERR_NO_UPSTREAM] = "no_upstream",	      [KW_ERR_FAMILY] = "family",
	[KW_ERR_EVENTS_RATE] = "events_rate_limited", [KW_ERR_RINGBUF_FULL] = "ringbuf_full",
};

void kw_upstream_labels(const struct kw_upstream *u, struct kw_upstream_labels *l)
{
	l->direction = u->key.direction == KW_DIR_OUTBOUND ? "outbound" : "inbound";
	if (kw_key_is_overflow(&u->key)) {
		snprintf(l->peer, sizeof(l->peer), "other");
		snprintf(l->port, sizeof(l->port), "other");
		snprintf(l->netns, sizeof(l->netns), "other");
		return;
	}
	if (kw_addr_format(u->key.addr, l->peer, sizeof(l->peer)))
		snprintf(l->peer, sizeof(l->peer), "?");
	snprintf(l->port, sizeof(l->port), "%u", u->key.port);
	kw_netns_name(u->key.netns, l->netns, sizeof(l->netns));
}

static unsigned int set_labels(struct kw_label *lab, const struct kw_upstream_labels *l)
{
	lab[0] = (struct kw_label){ "direction", l->direction };
	lab[1] = (struct kw_label){ "peer", l->peer };
	lab[2] = (struct kw_label){ "port", l->port };
	lab[3] = (struct kw_label){ "netns", l->netns };
	return 4;
}

static void render_fields(struct kw_expo *e, const struct kw_snapshot *s,
			  const struct kw_upstream_labels *ul)
{
	struct kw_label lab[6];
	unsigned int f, n, j;
	size_t i;

	for (f = 0; f < KW_F_MAX; f++) {
		const struct kw_field *fd = &kw_fields[f];

		kw_expo_family(e, fd->family, fd->type, fd->help);
		for (i = 0; i < s->n; i++) {
			n = set_labels(lab, &ul[i]);
			for (j = 0; j < 2 && fd->lname[j]; j++)
				lab[n++] = (struct kw_label){ fd->lname[j], fd->lvalue[j] };
			kw_expo_u64(e, fd->family, lab, n, s->u[i].val[f]);
		}
	}
}

static void render_hists(struct kw_expo *e, const struct kw_snapshot *s,
			 const struct kw_upstream_labels *ul)
{
	struct kw_label lab[6];
	unsigned int h, n;
	size_t i;

	for (h = 0; h < KW_H_MAX; h++) {
		const struct kw_hist_desc *hd = &kw_hists[h];

		kw_expo_family(e, hd->family, "histogram", hd->help);
		for (i = 0; i < s->n; i++) {
			n = set_labels(lab, &ul[i]);
			if (hd->lname)
				lab[n++] = (struct kw_label){ hd->lname, hd->lvalue };
			kw_expo_histogram(e, hd->family, lab, n, hd->bounds, s->u[i].hist[h],
					  hd->nslots, s->u[i].hist_sum[h]);
		}
	}
}

/* The agent's own families: declared once here, rendered below, documented by docs.c. */
const struct kw_self_family kw_self_families[KW_S_MAX] = {
	[KW_S_BUILD_INFO] = { "keepwatch_build_info", "gauge", "version",
			      "keepwatch's version (always 1)." },
	[KW_S_ATTACH_INFO] = { "keepwatch_bpf_attach_info", "gauge", "programs",
			       "The BPF programs attached, chosen by probing the kernel (always 1)." },
	[KW_S_BPF_ERRORS] = { "keepwatch_bpf_errors_total", "counter", "reason",
			      "Events the BPF programs could not count as they should, by reason." },
	[KW_S_UPSTREAMS] = { "keepwatch_upstreams", "gauge", NULL,
			     "Upstreams in the kernel map (the overflow entries included)." },
	[KW_S_CAPACITY] = { "keepwatch_upstreams_capacity", "gauge", NULL,
			    "Capacity of the kernel's upstream map (--max-upstreams plus overflow)." },
	[KW_S_EVICTED] = { "keepwatch_upstreams_evicted_total", "counter", NULL,
			   "Idle upstreams removed to make room in a nearly full map." },
	[KW_S_TRACKED] = { "keepwatch_tracked_connections", "gauge", NULL,
			   "Open connections with keepwatch state in the kernel." },
	[KW_S_STATS_ENABLED] = { "keepwatch_bpf_stats_enabled", "gauge", NULL,
				 "kernel.bpf_stats_enabled: 1 when program run counts and times are "
				 "kept, -1 if unreadable." },
	[KW_S_PROG_RUNS] = { "keepwatch_bpf_program_runs_total", "counter", "program",
			     "Runs of each BPF program (needs kernel.bpf_stats_enabled=1)." },
	[KW_S_PROG_SECONDS] = { "keepwatch_bpf_program_run_seconds_total", "counter", "program",
				"Time spent in each BPF program (needs kernel.bpf_stats_enabled=1)." },
	[KW_S_UPTIME] = { "keepwatch_agent_uptime_seconds", "gauge", NULL,
			  "Seconds since the agent started." },
};

static const char *self_family(struct kw_expo *e, enum kw_self_id id)
{
	const struct kw_self_family *f = &kw_self_families[id];

	kw_expo_family(e, f->name, f->type, f->help);
	return f->name;
}

static void self_labeled(struct kw_expo *e, enum kw_self_id id, const char *lvalue, double v)
{
	struct kw_label lab = { kw_self_families[id].label, lvalue };

	kw_expo_sample(e, kw_self_families[id].name, &lab, 1, v);
}

static void render_self(struct kw_expo *e, const struct kw_snapshot *s)
{
	unsigned int i;

	self_family(e, KW_S_BUILD_INFO);
	self_labeled(e, KW_S_BUILD_INFO, KW_VERSION, 1);
	self_family(e, KW_S_ATTACH_INFO);
	self_labeled(e, KW_S_ATTACH_INFO, s->attach_mode, 1);
	self_family(e, KW_S_BPF_ERRORS);
	for (i = 0; i < KW_ERR_MAX; i++)
		self_labeled(e, KW_S_BPF_ERRORS, error_reasons[i], s->errors[i]);
	kw_expo_u64(e, self_family(e, KW_S_UPSTREAMS), NULL, 0, s->n);
	kw_expo_u64(e, self_family(e, KW_S_CAPACITY), NULL, 0, s->capacity);
	kw_expo_u64(e, self_family(e, KW_S_EVICTED), NULL, 0, s->evicted);
	kw_expo_u64(e, self_family(e, KW_S_TRACKED), NULL, 0, s->live_sockets);
	kw_expo_sample(e, self_family(e, KW_S_STATS_ENABLED), NULL, 0, s->bpf_stats_enabled);
	self_family(e, KW_S_PROG_RUNS);
	for (i = 0; i < s->nprogs; i++)
		self_labeled(e, KW_S_PROG_RUNS, s->progs[i].name, s->progs[i].run_cnt);
	self_family(e, KW_S_PROG_SECONDS);
	for (i = 0; i < s->nprogs; i++)
		self_labeled(e, KW_S_PROG_SECONDS, s->progs[i].name, s->progs[i].run_time_ns / 1e9);
	kw_expo_sample(e, self_family(e, KW_S_UPTIME), NULL, 0, s->uptime);
}

int kw_metrics_render(const struct kw_snapshot *s, struct kw_buf *out)
{
	struct kw_upstream_labels *ul;
	struct kw_expo e;
	size_t i;

	ul = calloc(s->n ? s->n : 1, sizeof(*ul));
	if (!ul)
		return -ENOMEM;
	for (i = 0; i < s->n; i++)
		kw_upstream_labels(&s->u[i], &ul[i]);
	kw_expo_init(&e, out);
	render_fields(&e, s, ul);
	render_hists(&e, s, ul);
	render_self(&e, s);
	free(ul);
	if (e.err)
		return e.err;
	return out->err;
}
