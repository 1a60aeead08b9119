// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The figures the doctor's rules stand on: the idle timeout each side of an upstream uses,
 * inferred from its idle-before-close histogram with a confidence, and how the upstream
 * reuses its connections (requests per connection, connections closed after one request,
 * closes right after a response) from its counters and requests histograms.
 */
#include <math.h>
#include <string.h>

#include "doctor/internal.h"

/* Confidence thresholds: samples in the timeout's slot, and their share of idle closes. */
#define HIGH_SAMPLES   10
#define HIGH_SHARE     0.9
#define MEDIUM_SAMPLES 3
#define MEDIUM_SHARE   0.7

/* ---- timeouts ---- */

static enum kw_confidence confidence(__u64 samples, double share)
{
	if (!samples)
		return KW_CONF_NONE;
	if (samples >= HIGH_SAMPLES && share >= HIGH_SHARE)
		return KW_CONF_HIGH;
	if (samples >= MEDIUM_SAMPLES && share >= MEDIUM_SHARE)
		return KW_CONF_MEDIUM;
	return KW_CONF_LOW;
}

/*
 * A slot names a timeout when it is at most 1 s wide around a whole number of seconds: the
 * brackets (0.9, 1.1], (1.9, 2.1], (4.5, 5.5] ... (299.5, 300.5] of kw_hist.h.
 */
static int is_bracket(double lo, double hi)
{
	double mid = (lo + hi) / 2;

	return isfinite(hi) && hi - lo <= 1.0 + 1e-9 && fabs(mid - whole(mid)) < 1e-6;
}

void kw_timeout_infer(const __u64 *slots, unsigned int nslots, const double *bounds, double sum,
		      struct kw_timeout *t)
{
	unsigned int i, best = 0;
	__u64 all = 0;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < nslots; i++) {
		double hi = i + 1 < nslots ? bounds[i] : INFINITY;

		all += slots[i];
		if (hi <= KW_DOCTOR_MIN_IDLE + 1e-9)
			continue; /* closes right after a response */
		t->idle_closes += slots[i];
		if (slots[i] > t->samples) {
			t->samples = slots[i];
			best = i;
		}
	}
	if (!t->samples)
		return;
	t->lo = best ? bounds[best - 1] : 0;
	t->hi = best + 1 < nslots ? bounds[best] : INFINITY;
	t->share = (double)t->samples / t->idle_closes;
	t->confidence = confidence(t->samples, t->share);
	t->exact = is_bracket(t->lo, t->hi);
	if (t->exact)
		t->seconds = whole((t->lo + t->hi) / 2);
	else if (t->samples == all && sum / all > t->lo && sum / all <= t->hi)
		t->seconds = sum / all; /* every close is in this slot: their mean */
	else
		t->seconds = isfinite(t->hi) ? (t->lo + t->hi) / 2 : t->lo;
}

/* ---- reuse ---- */

/* The requests-histogram slot that holds exactly n requests, or -1 if n shares its slot. */
static int exact_slot(unsigned int n)
{
	const struct kw_hist_desc *h = &kw_hists[KW_H_REQS_LOCAL];
	unsigned int i = kw_reqs_slot(n);

	if (i + 1 >= h->nslots || h->bounds[i] != n)
		return -1;
	return !i || h->bounds[i - 1] == n - 1.0 ? (int)i : -1;
}

static enum kw_hist_id reqs_hist(int by)
{
	return by == KW_BY_LOCAL ? KW_H_REQS_LOCAL : KW_H_REQS_PEER;
}

__u64 kw_closed_at(const struct kw_upstream *u, int by, unsigned int n)
{
	int i = exact_slot(n);

	return i < 0 ? 0 : u->hist[reqs_hist(by)][i];
}

__u64 kw_closed_over(const struct kw_upstream *u, int by, unsigned int n)
{
	const struct kw_hist_desc *h = &kw_hists[KW_H_REQS_LOCAL];
	unsigned int i, side;
	__u64 sum = 0;

	for (side = 0; side < KW_BY_MAX; side++) {
		if (by >= 0 && (int)side != by)
			continue;
		for (i = 0; i < h->nslots; i++)
			if (i && h->bounds[i - 1] >= n) /* the slot's values are all over n */
				sum += u->hist[reqs_hist(side)][i];
	}
	return sum;
}

__u64 kw_prompt_closes(const struct kw_upstream *u, int by)
{
	enum kw_hist_id id = by == KW_BY_LOCAL ? KW_H_IDLE_LOCAL : KW_H_IDLE_PEER;
	const struct kw_hist_desc *h = &kw_hists[id];
	unsigned int i;
	__u64 sum = 0;

	for (i = 0; i + 1 < h->nslots && h->bounds[i] <= KW_DOCTOR_MIN_IDLE + 1e-9; i++)
		sum += u->hist[id][i];
	return sum;
}

void kw_reuse_of(const struct kw_upstream *u, struct kw_reuse *r)
{
	int by;

	memset(r, 0, sizeof(*r));
	r->connections = u->val[KW_F_CONN];
	r->requests = u->val[KW_F_REQ];
	r->closed = u->val[KW_F_CLOSED_LOCAL_FIN] + u->val[KW_F_CLOSED_LOCAL_RST] +
		    u->val[KW_F_CLOSED_PEER_FIN] + u->val[KW_F_CLOSED_PEER_RST];
	for (by = 0; by < KW_BY_MAX; by++) {
		r->single[by] = kw_closed_at(u, by, 1);
		if (r->single[by])
			r->single_idle[by] = u->single_idle_sum[by] / r->single[by];
	}
}
