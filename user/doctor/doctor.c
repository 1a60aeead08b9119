// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The doctor's driver (see doctor.h): for one upstream, infer both sides' timeouts
 * (infer.c), gather its reuse figures and its census row, run the rules (rules.c) and
 * order the findings worst first; for a snapshot, diagnose the upstreams worth showing and
 * order them worst first. The JSON document is json.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/internal.h"
#include "lib/duration.h"

const char *kw_confidence_name(enum kw_confidence c)
{
	static const char *const names[] = { "none", "low", "medium", "high" };

	return (unsigned int)c < 4 ? names[c] : "none";
}

const char *kw_severity_name(enum kw_severity s)
{
	static const char *const names[] = { "info", "warning", "critical" };

	return (unsigned int)s < 3 ? names[s] : "info";
}

static int ns_cmp(const void *pa, const void *pb)
{
	const struct kw_census_netns *a = pa, *b = pb;

	return a->inode < b->inode ? -1 : a->inode > b->inode;
}

/* Which row is closer to running out: less headroom, then less time left. */
static int worse_ports(const struct kw_census_dest *a, const struct kw_census_dest *b)
{
	if (a->headroom != b->headroom)
		return a->headroom < b->headroom;
	return a->exhaustion_s < b->exhaustion_s;
}

/* The census rows of an outbound upstream's destination: one per local address. */
static void find_ports(const struct kw_census_result *r, const struct kw_upstream *u,
		       struct kw_diagnosis *d)
{
	const struct kw_census_dest *best = NULL;
	struct kw_census_netns probe = { .inode = u->key.netns };
	const struct kw_census_netns *ns;
	size_t lo = 0, hi, i;

	if (!r || !r->n_dest || u->key.direction != KW_DIR_OUTBOUND || kw_key_is_overflow(&u->key))
		return;
	/* rows are sorted by namespace first: the first of this one */
	hi = r->n_dest;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->dest[mid].netns < u->key.netns)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < r->n_dest && r->dest[i].netns == u->key.netns; i++) {
		const struct kw_census_dest *x = &r->dest[i];

		if (x->rport != u->key.port || memcmp(x->raddr, u->key.addr, 16))
			continue;
		d->port_sources++;
		if (!best || worse_ports(x, best))
			best = x;
	}
	if (!best)
		return;
	d->has_ports = 1;
	d->ports = *best;
	ns = r->n_ns ? bsearch(&probe, r->ns, r->n_ns, sizeof(probe), ns_cmp) : NULL;
	if (ns)
		d->ports_ns = *ns;
}

/* The rules of the upstream's direction, in the table's order. */
static void run_rules(struct ctx *c)
{
	unsigned int dir = c->u->key.direction == KW_DIR_OUTBOUND ? KW_RULE_OUT : KW_RULE_IN;
	const struct kw_rule *r;

	for (r = kw_doctor_rules; r->id; r++) {
		if (!(r->dirs & dir))
			continue;
		c->rule = r;
		r->run(c);
	}
}

/*
 * Worst first, then in rule order. qsort is not stable: the rule's row makes the order
 * total (a rule reports at most one finding), and so the same as the rules ran in.
 */
static int cmp_findings(const void *pa, const void *pb)
{
	const struct kw_finding *a = pa, *b = pb;

	if (a->severity != b->severity)
		return (int)b->severity - (int)a->severity;
	return (a->rule > b->rule) - (a->rule < b->rule);
}

void kw_doctor_upstream(const struct kw_upstream *u, const struct kw_doctor_opts *o,
			struct kw_diagnosis *d)
{
	struct ctx c = { .u = u, .o = o, .d = d };
	char ago[32];

	memset(d, 0, sizeof(*d));
	d->u = u;
	kw_timeout_infer(u->hist[KW_H_IDLE_LOCAL], kw_hists[KW_H_IDLE_LOCAL].nslots,
			 kw_hists[KW_H_IDLE_LOCAL].bounds, u->hist_sum[KW_H_IDLE_LOCAL],
			 &d->timeout[KW_BY_LOCAL]);
	kw_timeout_infer(u->hist[KW_H_IDLE_PEER], kw_hists[KW_H_IDLE_PEER].nslots,
			 kw_hists[KW_H_IDLE_PEER].bounds, u->hist_sum[KW_H_IDLE_PEER],
			 &d->timeout[KW_BY_PEER]);
	kw_reuse_of(u, &d->reuse);
	find_ports(o->census, u, d);
	kw_format_duration(o->uptime, ago, sizeof(ago));
	snprintf(c.window, sizeof(c.window), "since the counts started, %s ago", ago);
	if (u->flags & KW_UP_FOLDED)
		snprintf(c.peer, sizeof(c.peer), "*:%u", u->key.port); /* a group's record */
	else if (kw_key_is_overflow(&u->key) ||
		 kw_addr_format_endpoint(u->key.addr, u->key.port, c.peer, sizeof(c.peer)))
		snprintf(c.peer, sizeof(c.peer), "other");
	c.rate = o->uptime > 0 ? u->val[KW_F_CONN] / o->uptime : -1;
	run_rules(&c);
	qsort(d->finding, d->nfindings, sizeof(d->finding[0]), cmp_findings);
}

/* ---- the set ---- */

static int matches(const struct kw_upstream *u, const struct kw_doctor_opts *o)
{
	if (!o->match_peer)
		return 1;
	if (kw_key_is_overflow(&u->key) || memcmp(u->key.addr, o->peer, 16))
		return 0;
	return !o->port || u->key.port == o->port;
}

static int worth_showing(const struct kw_diagnosis *d)
{
	const struct kw_upstream *u = d->u;

	if (d->nfindings)
		return 1;
	if (kw_key_is_overflow(&u->key))
		return 0;
	return u->val[KW_F_CLOSED_LOCAL_FIN] || u->val[KW_F_CLOSED_LOCAL_RST] ||
	       u->val[KW_F_CLOSED_PEER_FIN] || u->val[KW_F_CLOSED_PEER_RST];
}

static enum kw_severity worst(const struct kw_diagnosis *d)
{
	return d->nfindings ? d->finding[0].severity : KW_SEV_INFO;
}

static int cmp_diagnoses(const void *pa, const void *pb)
{
	const struct kw_diagnosis *a = pa, *b = pb;
	int c;

	c = (b->nfindings > 0) - (a->nfindings > 0);
	c = c ?: (int)worst(b) - (int)worst(a);
	/* then the snapshot's order, which is the key order */
	return c ?: (a->u > b->u) - (a->u < b->u);
}

int kw_doctor_run(const struct kw_upstream *u, size_t n, const struct kw_doctor_opts *o,
		  struct kw_diagnosis **out, size_t *nout)
{
	struct kw_diagnosis *d;
	size_t i, k = 0;

	d = calloc(n ?: 1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (!matches(&u[i], o))
			continue;
		kw_doctor_upstream(&u[i], o, &d[k]);
		if (worth_showing(&d[k]))
			k++;
	}
	if (k > 1)
		qsort(d, k, sizeof(*d), cmp_diagnoses);
	*out = d;
	*nout = k;
	return 0;
}
