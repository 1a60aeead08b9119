// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The doctor's JSON document (GET /api/v1/doctor, see kw_doctor_json in doctor.h): per
 * upstream its inferred timeouts, its reuse figures and its findings, in the order
 * kw_doctor_run gave them. Whole numbers are written as integers, ratios rounded to three
 * decimals; what is unknown is null.
 */
#include <errno.h>
#include <math.h>
#include <jansson.h>

#include "doctor/internal.h"
#include <stdio.h>
#include <stdlib.h>

/* Whole numbers as JSON integers (5, not 5.0). */
static json_t *number(double v)
{
	if (v >= 0 && v < 1e15 && v == (double)(long long)v)
		return json_integer((json_int_t)v);
	return isfinite(v) ? json_real(v) : json_null();
}

json_t *kw_doctor_timeout_json(const struct kw_timeout *t)
{
	if (!known(t))
		return json_null();
	return json_pack("{s:o, s:b, s:[o, o], s:s, s:I, s:I, s:o}", "seconds", number(t->seconds),
			 "exact", t->exact, "range", number(t->lo), number(t->hi), "confidence",
			 kw_confidence_name(t->confidence), "samples", (json_int_t)t->samples,
			 "idle_closes", (json_int_t)t->idle_closes, "share",
			 json_real(whole(t->share * 1000) / 1000));
}

static json_t *finding_json(const struct kw_finding *f)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", f->id, "severity",
			 kw_severity_name(f->severity), "summary", f->summary, "evidence",
			 f->evidence, "failure", f->failure, "fix", f->fix);
}

/* A ratio rounded to 3 decimals; null without a denominator. */
static json_t *ratio(double num, double den)
{
	return den > 0 ? number(whole(num / den * 1000) / 1000) : json_null();
}

/* The mean idle of single-use closes; null when not known (a fleet record: not in /metrics). */
static json_t *idle_json(const struct kw_reuse *r, int by)
{
	if (!isfinite(r->single_idle[by]))
		return json_null();
	return ratio(r->single_idle[by] * r->single[by], r->single[by]);
}

static json_t *reuse_json(const struct kw_reuse *r)
{
	return json_pack("{s:I, s:I, s:o, s:I, s:I, s:o, s:{s:I, s:I}, s:{s:o, s:o}}",
			 "connections", (json_int_t)r->connections, "requests",
			 (json_int_t)r->requests, "requests_per_connection",
			 ratio(r->requests, r->connections), "closed", (json_int_t)r->closed,
			 "single_use", (json_int_t)(r->single[KW_BY_LOCAL] + r->single[KW_BY_PEER]),
			 "single_use_share",
			 ratio(r->single[KW_BY_LOCAL] + r->single[KW_BY_PEER], r->closed),
			 "single_use_closed_by", "local", (json_int_t)r->single[KW_BY_LOCAL],
			 "peer", (json_int_t)r->single[KW_BY_PEER], "single_use_idle_seconds",
			 "local", idle_json(r, KW_BY_LOCAL), "peer", idle_json(r, KW_BY_PEER));
}

/* The labels of /metrics: "other" for the overflow upstream. */
static void labels(const struct kw_upstream *u, const struct kw_doctor_opts *o, char *peer,
		   size_t plen, char *netns, size_t nlen)
{
	if (kw_upstream_is_overflow(u)) {
		snprintf(peer, plen, "other");
		snprintf(netns, nlen, "other");
		return;
	}
	if (u->flags & KW_UP_FOLDED)
		snprintf(peer, plen, "*"); /* a record of several peers (a fleet group's) */
	else if (kw_addr_format(u->key.addr, peer, plen))
		snprintf(peer, plen, "?");
	if (o->netns_name)
		o->netns_name(u->key.netns, netns, nlen, o->netns_arg);
	else
		snprintf(netns, nlen, "%u", u->key.netns);
}

static json_t *diagnosis_json(const struct kw_diagnosis *d, const struct kw_doctor_opts *o)
{
	char peer[KW_ADDR_STRLEN], netns[64];
	json_t *findings = json_array();
	unsigned int i;

	for (i = 0; i < d->nfindings; i++)
		json_array_append_new(findings, finding_json(&d->finding[i]));
	labels(d->u, o, peer, sizeof(peer), netns, sizeof(netns));
	return json_pack("{s:s, s:s, s:i, s:s, s:{s:o, s:o}, s:o, s:o}", "direction",
			 d->u->key.direction == KW_DIR_OUTBOUND ? "outbound" : "inbound", "peer",
			 peer, "port", (int)d->u->key.port, "netns", netns, "timeouts", "local",
			 kw_doctor_timeout_json(&d->timeout[KW_BY_LOCAL]), "peer",
			 kw_doctor_timeout_json(&d->timeout[KW_BY_PEER]), "reuse",
			 reuse_json(&d->reuse), "findings", findings);
}

json_t *kw_doctor_upstreams_json(const struct kw_diagnosis *d, size_t n,
				 const struct kw_doctor_opts *o)
{
	json_t *ups = json_array();
	size_t i;

	if (!ups)
		return NULL;
	for (i = 0; i < n; i++) {
		if (json_array_append_new(ups, diagnosis_json(&d[i], o))) {
			json_decref(ups);
			return NULL;
		}
	}
	return ups;
}

int kw_doctor_json(const struct kw_diagnosis *d, size_t n, const struct kw_doctor_opts *o,
		   struct kw_buf *out)
{
	json_t *ups = kw_doctor_upstreams_json(d, n, o), *doc;
	char *text;
	int err;

	if (!ups)
		return -ENOMEM;
	doc = json_pack("{s:i, s:f, s:o, s:o}", "version", 1, "uptime_seconds", o->uptime,
			"lb_idle_timeout",
			o->lb_idle_timeout > 0 ? number(o->lb_idle_timeout) : json_null(),
			"upstreams", ups);
	if (!doc)
		return -ENOMEM;
	/* as the agent's other documents (agent/json.c): compact, with a newline */
	text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	err = kw_buf_puts(out, text);
	err = err ?: kw_buf_puts(out, "\n");
	free(text);
	return err;
}
