// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The doctor's rules (see doctor.h). Each rule reads one upstream's counters and inferred
 * timeouts and writes at most one finding with the numbers behind it, so that a user can
 * check the claim. The rules stay silent when nothing points to a misalignment: a false
 * alarm is a bug.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "addr.h"
#include "doctor.h"
#include "duration.h"
#include "metrics.h"

/* Confidence thresholds: samples in the timeout's slot, and their share of idle closes. */
#define HIGH_SAMPLES   10
#define HIGH_SHARE     0.9
#define MEDIUM_SAMPLES 3
#define MEDIUM_SHARE   0.7

/* Unused closes by us worth a warning: at least this many, and this share of our closes. */
#define UNUSED_MIN	 5
#define UNUSED_MIN_SHARE 0.1

/* A balancer's idle timeout plus this is the keep-alive we suggest. */
#define LB_MARGIN 5

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

/* ---- timeouts ---- */

/* Nearest whole number of a value in [0, 1e15): without libm, which the build does not link. */
static double whole(double v)
{
	return (double)(long long)(v + 0.5);
}

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

static int known(const struct kw_timeout *t)
{
	return t->confidence != KW_CONF_NONE;
}

/* "5 s", "between 2.1 and 4.5 s (about 3.2 s)", "over 300.5 s (about 412 s)" */
static void timeout_text(const struct kw_timeout *t, char *out, size_t len)
{
	if (t->exact)
		snprintf(out, len, "%g s", t->seconds);
	else if (isfinite(t->hi))
		snprintf(out, len, "between %g and %g s (about %.3g s)", t->lo, t->hi, t->seconds);
	else
		snprintf(out, len, "over %g s (about %.4g s)", t->lo, t->seconds);
}

/* "5 s (high confidence: 40 of 40 closes idle over 0.5 s)" */
static void timeout_basis(const struct kw_timeout *t, char *out, size_t len)
{
	char text[96];

	timeout_text(t, text, sizeof(text));
	snprintf(out, len, "%s (%s confidence: %llu of %llu closes idle over %g s)", text,
		 kw_confidence_name(t->confidence), (unsigned long long)t->samples,
		 (unsigned long long)t->idle_closes, KW_DOCTOR_MIN_IDLE);
}

/* ---- findings ---- */

struct ctx {
	const struct kw_upstream *u;
	const struct kw_doctor_opts *o;
	struct kw_diagnosis *d;
	char window[64]; /* "since the agent started, 3h12m ago" */
};

static __u64 val(const struct ctx *c, enum kw_field_id f)
{
	return c->u->val[f];
}

static struct kw_finding *add(struct ctx *c, const char *id, enum kw_severity sev,
			      const char *failure)
{
	struct kw_finding *f;

	if (c->d->nfindings == KW_DOCTOR_MAX_FINDINGS)
		return NULL;
	f = &c->d->finding[c->d->nfindings++];
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->severity = sev;
	f->failure = failure;
	return f;
}

/* Append to a fixed buffer, silently cut at its end. */
static void __attribute__((format(printf, 3, 4))) cat(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

/* Evidence about one side's idle closes: "we closed idle connections after 5 s (...)". */
static void cat_side(struct ctx *c, char *buf, size_t len, int by, const char *who,
		     const char *none)
{
	const struct kw_timeout *t = &c->d->timeout[by];
	char basis[192];

	if (!known(t)) {
		cat(buf, len, "; %s", none);
		return;
	}
	timeout_basis(t, basis, sizeof(basis));
	cat(buf, len, "; %s after %s", who, basis);
}

static void cat_race_idle(struct ctx *c, char *buf, size_t len)
{
	__u64 n = 0;
	unsigned int i;

	for (i = 0; i < kw_hists[KW_H_RACE_IDLE].nslots; i++)
		n += c->u->hist[KW_H_RACE_IDLE][i];
	if (n)
		cat(buf, len, " (connections idle %.3g s on average when closed)",
		    c->u->hist_sum[KW_H_RACE_IDLE] / n);
}

static void lb_fix(struct ctx *c, char *buf, size_t len)
{
	const struct kw_timeout *t = &c->d->timeout[KW_BY_LOCAL];
	double l = c->o->lb_idle_timeout, k = l + LB_MARGIN;
	char text[96];

	if (l > 0) {
		snprintf(buf, len,
			 "raise the keep-alive timeout above the balancer's idle timeout of %g s, "
			 "e.g. to %g s (nginx keepalive_timeout %gs; Apache KeepAliveTimeout %g; "
			 "Node server.keepAliveTimeout = %.0f; Gunicorn --keep-alive %g; Varnish "
			 "timeout_idle %g)",
			 l, k, k, k, k * 1000, k, k);
		return;
	}
	if (known(t)) {
		timeout_text(t, text, sizeof(text));
		snprintf(buf, len,
			 "the keep-alive timeout (%s here) must be longer than the balancer's idle "
			 "timeout; pass --lb-idle-timeout to get a number",
			 text);
	} else {
		snprintf(buf, len,
			 "the keep-alive timeout here must be longer than the balancer's idle "
			 "timeout; pass --lb-idle-timeout to get a number");
	}
}

/* a. inbound: we close idle connections the balancer still means to use. */
static void rule_keepalive_shorter_than_lb(struct ctx *c)
{
	const struct kw_timeout *ours = &c->d->timeout[KW_BY_LOCAL];
	const struct kw_timeout *theirs = &c->d->timeout[KW_BY_PEER];
	__u64 races = val(c, KW_F_RACE_SERVER);
	double l = c->o->lb_idle_timeout;
	struct kw_finding *f;
	char text[96];

	if (races) {
		f = add(c, "keepalive_shorter_than_lb", KW_SEV_CRITICAL, "502");
		if (!f)
			return;
		snprintf(f->summary, sizeof(f->summary),
			 "%llu keep-alive races: requests arrived on connections we had just "
			 "closed idle",
			 (unsigned long long)races);
		snprintf(f->evidence, sizeof(f->evidence),
			 "%llu requests met a connection we had closed (server-side races)",
			 (unsigned long long)races);
		cat_race_idle(c, f->evidence, sizeof(f->evidence));
	} else if (l > 0 && known(ours) && ours->seconds <= l) {
		f = add(c, "keepalive_shorter_than_lb", KW_SEV_WARNING, "502");
		if (!f)
			return;
		timeout_text(ours, text, sizeof(text));
		snprintf(f->summary, sizeof(f->summary),
			 "our keep-alive timeout (%s) is not longer than the balancer's idle "
			 "timeout (%g s)",
			 text, l);
		snprintf(f->evidence, sizeof(f->evidence), "no race seen yet");
	} else if (l <= 0 && known(ours) && !theirs->idle_closes && val(c, KW_F_REUSE)) {
		f = add(c, "keepalive_shorter_than_lb", KW_SEV_WARNING, "502");
		if (!f)
			return;
		timeout_text(ours, text, sizeof(text));
		snprintf(f->summary, sizeof(f->summary),
			 "we close idle keep-alive connections after %s and the peer never closes "
			 "one first",
			 text);
		snprintf(f->evidence, sizeof(f->evidence),
			 "no race seen yet; %llu requests on reused connections",
			 (unsigned long long)val(c, KW_F_REUSE));
	} else {
		return;
	}
	cat_side(c, f->evidence, sizeof(f->evidence), KW_BY_LOCAL, "we closed idle connections",
		 "we closed no connection idle over 0.5 s");
	cat_side(c, f->evidence, sizeof(f->evidence), KW_BY_PEER,
		 "the peer closed idle connections", "the peer never closed an idle connection");
	if (l > 0)
		cat(f->evidence, sizeof(f->evidence), "; the balancer's idle timeout is %g s", l);
	cat(f->evidence, sizeof(f->evidence), "; %s", c->window);
	lb_fix(c, f->fix, sizeof(f->fix));
}

/* b. outbound: the backend closes idle connections our pool still means to use. */
static void rule_upstream_closes_before_pool(struct ctx *c)
{
	const struct kw_timeout *pool = &c->d->timeout[KW_BY_LOCAL];
	const struct kw_timeout *backend = &c->d->timeout[KW_BY_PEER];
	__u64 races = val(c, KW_F_RACE_CLIENT);
	struct kw_finding *f;
	char text[96];

	if (races) {
		f = add(c, "upstream_closes_before_pool", KW_SEV_CRITICAL, "502");
		if (!f)
			return;
		snprintf(f->summary, sizeof(f->summary),
			 "%llu keep-alive races: the backend reset requests we sent on connections "
			 "it had closed",
			 (unsigned long long)races);
		snprintf(f->evidence, sizeof(f->evidence),
			 "%llu requests on reused connections were answered by a reset "
			 "(client-side races)",
			 (unsigned long long)races);
		cat_race_idle(c, f->evidence, sizeof(f->evidence));
	} else if (known(backend) && (!known(pool) || pool->seconds >= backend->seconds)) {
		f = add(c, "upstream_closes_before_pool", KW_SEV_WARNING, "502");
		if (!f)
			return;
		timeout_text(backend, text, sizeof(text));
		snprintf(f->summary, sizeof(f->summary),
			 "the backend closes idle connections after %s, before our pool does",
			 text);
		snprintf(f->evidence, sizeof(f->evidence), "no race seen yet");
	} else {
		return;
	}
	cat_side(c, f->evidence, sizeof(f->evidence), KW_BY_PEER,
		 "the backend closed idle connections",
		 "the backend never closed an idle connection");
	cat_side(c, f->evidence, sizeof(f->evidence), KW_BY_LOCAL,
		 "our pool closed idle connections", "our pool never closed an idle connection");
	cat(f->evidence, sizeof(f->evidence), "; %s", c->window);
	if (known(backend)) {
		timeout_text(backend, text, sizeof(text));
		snprintf(f->fix, sizeof(f->fix), "set the pool's idle timeout below %s", text);
	} else {
		snprintf(f->fix, sizeof(f->fix),
			 "set the pool's idle timeout below the backend's keep-alive timeout");
	}
	cat(f->fix, sizeof(f->fix),
	    " (HAProxy timeout http-keep-alive, nginx upstream keepalive_timeout, Varnish "
	    "backend_idle_timeout, Envoy idle_timeout), or raise the upstream's keep-alive "
	    "timeout above the pool's");
}

/* c. inbound: the balancer opens connections ahead of need and we close them unused. */
static void rule_preopened_closed_unused(struct ctx *c)
{
	const struct kw_timeout *ours = &c->d->timeout[KW_BY_LOCAL];
	__u64 unused = val(c, KW_F_UNUSED_LOCAL);
	__u64 closes = val(c, KW_F_CLOSED_LOCAL_FIN) + val(c, KW_F_CLOSED_LOCAL_RST);
	double l = c->o->lb_idle_timeout;
	int warn = unused >= UNUSED_MIN && unused >= UNUSED_MIN_SHARE * closes;
	struct kw_finding *f;
	char text[96];

	if (!unused)
		return;
	f = add(c, "preopened_closed_unused", warn ? KW_SEV_WARNING : KW_SEV_INFO,
		warn ? "502" : "wasted handshakes");
	if (!f)
		return;
	snprintf(f->summary, sizeof(f->summary),
		 "the balancer pre-opens connections that we close unused");
	if (known(ours)) {
		timeout_text(ours, text, sizeof(text));
		cat(f->summary, sizeof(f->summary), " after about %s", text);
	}
	snprintf(f->evidence, sizeof(f->evidence),
		 "%llu of the %llu connections we closed had carried no request; %llu closed "
		 "unused by the peer; %s",
		 (unsigned long long)unused, (unsigned long long)closes,
		 (unsigned long long)val(c, KW_F_UNUSED_PEER), c->window);
	if (warn)
		cat(f->evidence, sizeof(f->evidence),
		    "; a request sent on one as we close it fails with a 502");
	snprintf(f->fix, sizeof(f->fix),
		 "raise our idle timeout for new connections above the balancer's idle timeout");
	if (l > 0)
		cat(f->fix, sizeof(f->fix), " of %g s", l);
	cat(f->fix, sizeof(f->fix),
	    " (nginx client_header_timeout, Apache RequestReadTimeout header=), so that the "
	    "balancer closes unused connections first");
}

/* d. inbound: requests cut off when we closed with them unread. */
static void rule_aborted_with_unread(struct ctx *c)
{
	__u64 n = val(c, KW_F_ABORTED_UNREAD);
	struct kw_finding *f;

	if (!n)
		return;
	f = add(c, "aborted_with_unread", KW_SEV_WARNING, "502");
	if (!f)
		return;
	snprintf(f->summary, sizeof(f->summary),
		 "%llu requests cut off: we closed connections with a request unread",
		 (unsigned long long)n);
	snprintf(f->evidence, sizeof(f->evidence),
		 "%llu connections closed with a request unread (reset reason abort_on_close), "
		 "%s; the balancer answers such a request 502, or 504 if it waits",
		 (unsigned long long)n, c->window);
	snprintf(f->fix, sizeof(f->fix),
		 "lengthen the balancer's drain (deregistration) delay so it stops sending "
		 "before the server closes, and stop accepting requests before closing "
		 "connections");
}

static int cmp_findings(const void *pa, const void *pb)
{
	const struct kw_finding *a = pa, *b = pb;

	return (int)b->severity - (int)a->severity;
}

void kw_doctor_upstream(const struct kw_upstream *u, const struct kw_doctor_opts *o,
			struct kw_diagnosis *d)
{
	struct ctx c = { .u = u, .o = o, .d = d };
	char ago[32];
	unsigned int i, j;

	memset(d, 0, sizeof(*d));
	d->u = u;
	kw_timeout_infer(u->hist[KW_H_IDLE_LOCAL], kw_hists[KW_H_IDLE_LOCAL].nslots,
			 kw_hists[KW_H_IDLE_LOCAL].bounds, u->hist_sum[KW_H_IDLE_LOCAL],
			 &d->timeout[KW_BY_LOCAL]);
	kw_timeout_infer(u->hist[KW_H_IDLE_PEER], kw_hists[KW_H_IDLE_PEER].nslots,
			 kw_hists[KW_H_IDLE_PEER].bounds, u->hist_sum[KW_H_IDLE_PEER],
			 &d->timeout[KW_BY_PEER]);
	kw_format_duration(o->uptime, ago, sizeof(ago));
	snprintf(c.window, sizeof(c.window), "since the agent started, %s ago", ago);
	if (u->key.direction == KW_DIR_OUTBOUND) {
		rule_upstream_closes_before_pool(&c);
	} else {
		rule_keepalive_shorter_than_lb(&c);
		rule_preopened_closed_unused(&c);
		rule_aborted_with_unread(&c);
	}
	/* worst first, rule order among equals (insertion sort: stable) */
	for (i = 1; i < d->nfindings; i++) {
		struct kw_finding f = d->finding[i];

		for (j = i; j > 0 && cmp_findings(&d->finding[j - 1], &f) > 0; j--)
			d->finding[j] = d->finding[j - 1];
		d->finding[j] = f;
	}
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

/* ---- JSON ---- */

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

static json_t *diagnosis_json(const struct kw_diagnosis *d)
{
	struct kw_upstream_labels l;
	json_t *findings = json_array();
	unsigned int i;

	for (i = 0; i < d->nfindings; i++)
		json_array_append_new(findings, finding_json(&d->finding[i]));
	kw_upstream_labels(d->u, &l);
	return json_pack("{s:s, s:s, s:i, s:s, s:{s:o, s:o}, s:o}", "direction", l.direction,
			 "peer", l.peer, "port", (int)d->u->key.port, "netns", l.netns, "timeouts",
			 "local", timeout_json(&d->timeout[KW_BY_LOCAL]), "peer",
			 timeout_json(&d->timeout[KW_BY_PEER]), "findings", findings);
}

int kw_doctor_json(const struct kw_diagnosis *d, size_t n, const struct kw_doctor_opts *o,
		   struct kw_buf *out)
{
	json_t *ups = json_array(), *doc;
	char *text;
	size_t i;
	int err;

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
	if (!doc)
		return -ENOMEM;
	text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	err = kw_buf_puts(out, text);
	err = err ?: kw_buf_puts(out, "\n");
	free(text);
	return err;
}
