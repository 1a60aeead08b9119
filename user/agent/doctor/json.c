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

#include "agent/doctor/internal.h"
#include "agent/json.h"
#include "agent/metrics.h"

/* Whole numbers as JSON integers (5, not 5.0). */
static json_t *number(double v)
{
	if (v >= 0 && v < 1e15 && v == (double)(long long)v)
		return json_integer((json_int_t)v);
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *timeout_json(const struct kw_timeout *t)
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

static json_t *reuse_json(const struct kw_reuse *r)
{
	return json_pack(
		"{s:I, s:I, s:o, s:I, s:I, s:o, s:{s:I, s:I}, s:{s:o, s:o}}", "connections",
		(json_int_t)r->connections, "requests", (json_int_t)r->requests,
		"requests_per_connection", ratio(r->requests, r->connections), "closed",
		(json_int_t)r->closed, "single_use",
		(json_int_t)(r->single[KW_BY_LOCAL] + r->single[KW_BY_PEER]), "single_use_share",
		ratio(r->single[KW_BY_LOCAL] + r->single[KW_BY_PEER], r->closed),
		"single_use_closed_by", "local", (json_int_t)r->single[KW_BY_LOCAL], "peer",
		(json_int_t)r->single[KW_BY_PEER], "single_use_idle_seconds", "local",
		ratio(r->single_idle[KW_BY_LOCAL] * r->single[KW_BY_LOCAL], r->single[KW_BY_LOCAL]),
		"peer",
		ratio(r->single_idle[KW_BY_PEER] * r->single[KW_BY_PEER], r->single[KW_BY_PEER]));
}

static json_t *diagnosis_json(const struct kw_diagnosis *d)
{
	struct kw_upstream_labels l;
	json_t *findings = json_array();
	unsigned int i;

	for (i = 0; i < d->nfindings; i++)
		json_array_append_new(findings, finding_json(&d->finding[i]));
	kw_upstream_labels(d->u, &l);
	return json_pack("{s:s, s:s, s:i, s:s, s:{s:o, s:o}, s:o, s:o}", "direction", l.direction,
			 "peer", l.peer, "port", (int)d->u->key.port, "netns", l.netns, "timeouts",
			 "local", timeout_json(&d->timeout[KW_BY_LOCAL]), "peer",
			 timeout_json(&d->timeout[KW_BY_PEER]), "reuse", reuse_json(&d->reuse),
			 "findings", findings);
}

int kw_doctor_json(const struct kw_diagnosis *d, size_t n, const struct kw_doctor_opts *o,
		   struct kw_buf *out)
{
	json_t *ups = json_array(), *doc;
	size_t i;

	if (!ups)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (json_array_append_new(ups, diagnosis_json(&d[i]))) {
			json_decref(ups);
			return -ENOMEM;
		}
	}
	doc = json_pack("{s:i, s:f, s:o, s:o}", "version", 1, "uptime_seconds", o->uptime,
			"lb_idle_timeout",
			o->lb_idle_timeout > 0 ? number(o->lb_idle_timeout) : json_null(),
			"upstreams", ups);
	return kw_json_dump(doc, out);
}
