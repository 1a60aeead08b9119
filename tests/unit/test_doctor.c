// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The doctor on literal counts: timeout inference (every named bracket, ranges and their
 * estimates, the +Inf slot, confidence levels, empty histograms, closes right after a
 * response ignored), each rule and its negatives (aligned timeouts and no idle closes give
 * no finding; races are critical; the balancer's timeout in the fix), the order of
 * findings and upstreams, the peer filter, and the JSON document's shape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "addr.h"
#include "doctor.h"
#include "duration.h"

#define UPTIME 11520.0 /* 3h12m */

static struct kw_upstream up(unsigned int dir, const char *peer, __u16 port)
{
	struct kw_upstream u;

	memset(&u, 0, sizeof(u));
	u.key.direction = dir;
	u.key.family = KW_AF_INET;
	u.key.port = port;
	u.key.netns = 1;
	assert_int_equal(kw_addr_parse(peer, u.key.addr), 0);
	return u;
}

/* n closes by `by` after `seconds` idle: the counters and the histogram. */
static void closes(struct kw_upstream *u, int by, double seconds, __u64 n)
{
	enum kw_hist_id h = by == KW_BY_LOCAL ? KW_H_IDLE_LOCAL : KW_H_IDLE_PEER;

	u->hist[h][kw_idle_slot((__u64)(seconds * 1000 + 0.5))] += n;
	u->hist_sum[h] += seconds * n;
	u->val[by == KW_BY_LOCAL ? KW_F_CLOSED_LOCAL_FIN : KW_F_CLOSED_PEER_FIN] += n;
	u->val[KW_F_CONN] += n;
}

static struct kw_doctor_opts opts(double lb)
{
	struct kw_doctor_opts o = { .lb_idle_timeout = lb, .uptime = UPTIME };

	return o;
}

static void infer(const struct kw_upstream *u, int by, struct kw_timeout *t)
{
	enum kw_hist_id h = by == KW_BY_LOCAL ? KW_H_IDLE_LOCAL : KW_H_IDLE_PEER;

	kw_timeout_infer(u->hist[h], kw_hists[h].nslots, kw_hists[h].bounds, u->hist_sum[h], t);
}

static void assert_close(double got, double want)
{
	if (fabs(got - want) > 1e-9)
		fail_msg("%.12g, expected %.12g", got, want);
}

/* ---- timeouts ---- */

static void test_timeout_empty(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.0.0.1", 80);
	struct kw_timeout t;

	(void)state;
	infer(&u, KW_BY_LOCAL, &t);
	assert_int_equal(t.confidence, KW_CONF_NONE);
	assert_int_equal(t.samples, 0);
	assert_int_equal(t.idle_closes, 0);
	/* closes right after a response (idle <= 0.5 s) say nothing of a timeout */
	closes(&u, KW_BY_LOCAL, 0.0005, 100);
	closes(&u, KW_BY_LOCAL, 0.05, 100);
	closes(&u, KW_BY_LOCAL, 0.5, 100);
	infer(&u, KW_BY_LOCAL, &t);
	assert_int_equal(t.confidence, KW_CONF_NONE);
	assert_int_equal(t.idle_closes, 0);
}

static void test_timeout_brackets(void **state)
{
	static const double named[] = { 1, 2, 5, 10, 15, 20, 30, 45, 60, 65, 75, 120, 300 };
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		struct kw_upstream u = up(KW_DIR_INBOUND, "10.0.0.1", 80);
		struct kw_timeout t;

		/* a real timer fires a little late: 4 ms at HZ=250 */
		closes(&u, KW_BY_PEER, named[i] + 0.004, 10);
		infer(&u, KW_BY_PEER, &t);
		if (!t.exact || t.seconds != named[i])
			fail_msg("%g s: exact %d, seconds %g", named[i], t.exact, t.seconds);
		assert_true(t.lo < named[i] && t.hi > named[i] && t.hi - t.lo <= 1.0 + 1e-9);
		assert_int_equal(t.confidence, KW_CONF_HIGH);
		assert_int_equal(t.samples, 10);
		assert_close(t.share, 1.0);
	}
}

static void test_timeout_bracket_bounds(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.0.0.1", 80);
	struct kw_timeout t;

	(void)state;
	/* 1.1 s is still in (0.9, 1.1]; 1.101 s is not */
	closes(&u, KW_BY_LOCAL, 1.1, 3);
	infer(&u, KW_BY_LOCAL, &t);
	assert_true(t.exact);
	assert_close(t.seconds, 1);
	assert_close(t.lo, 0.9);
	assert_close(t.hi, 1.1);
	u = up(KW_DIR_INBOUND, "10.0.0.1", 80);
	closes(&u, KW_BY_LOCAL, 1.101, 3);
	infer(&u, KW_BY_LOCAL, &t);
	assert_false(t.exact);
	assert_close(t.lo, 1.1);
	assert_close(t.hi, 1.9);
}

static void test_timeout_ranges(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.0.0.1", 80);
	struct kw_timeout t;

	(void)state;
	/* every close in (2.1, 4.5]: the estimate is their mean */
	closes(&u, KW_BY_LOCAL, 3.0, 4);
	closes(&u, KW_BY_LOCAL, 3.4, 4);
	infer(&u, KW_BY_LOCAL, &t);
	assert_false(t.exact);
	assert_close(t.lo, 2.1);
	assert_close(t.hi, 4.5);
	assert_close(t.seconds, 3.2);
	assert_int_equal(t.confidence, KW_CONF_MEDIUM);
	/* closes elsewhere spoil the mean: the middle of the range */
	closes(&u, KW_BY_LOCAL, 0.01, 1);
	infer(&u, KW_BY_LOCAL, &t);
	assert_close(t.seconds, 3.3);
	assert_int_equal(t.samples, 8);
	assert_int_equal(t.idle_closes, 8);

	/* (0.5, 0.9] is narrow but names no timeout */
	u = up(KW_DIR_INBOUND, "10.0.0.1", 80);
	closes(&u, KW_BY_LOCAL, 0.7, 3);
	infer(&u, KW_BY_LOCAL, &t);
	assert_false(t.exact);
	assert_close(t.lo, 0.5);
	assert_close(t.hi, 0.9);

	/* beyond the last bound */
	u = up(KW_DIR_INBOUND, "10.0.0.1", 80);
	closes(&u, KW_BY_PEER, 400, 2);
	closes(&u, KW_BY_PEER, 600, 2);
	infer(&u, KW_BY_PEER, &t);
	assert_false(t.exact);
	assert_close(t.lo, 300.5);
	assert_true(isinf(t.hi));
	assert_close(t.seconds, 500);
	closes(&u, KW_BY_PEER, 0.2, 1);
	infer(&u, KW_BY_PEER, &t);
	assert_close(t.seconds, 300.5);
}

static void test_timeout_candidate(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.0.0.1", 80);
	struct kw_timeout t;

	(void)state;
	/* the slot with the most closes wins, however many short closes there are */
	closes(&u, KW_BY_LOCAL, 0.001, 1000);
	closes(&u, KW_BY_LOCAL, 3, 2);
	closes(&u, KW_BY_LOCAL, 65, 30);
	closes(&u, KW_BY_LOCAL, 100, 1);
	infer(&u, KW_BY_LOCAL, &t);
	assert_close(t.seconds, 65);
	assert_int_equal(t.samples, 30);
	assert_int_equal(t.idle_closes, 33);
	/* a tie: the shorter timeout, the one that fires first */
	u = up(KW_DIR_INBOUND, "10.0.0.1", 80);
	closes(&u, KW_BY_LOCAL, 5, 4);
	closes(&u, KW_BY_LOCAL, 1, 4);
	infer(&u, KW_BY_LOCAL, &t);
	assert_close(t.seconds, 1);
	assert_close(t.share, 0.5);
}

static void test_timeout_confidence(void **state)
{
	static const struct {
		__u64 in, out;
		enum kw_confidence want;
	} cases[] = {
		{ 10, 0, KW_CONF_HIGH },   { 9, 1, KW_CONF_MEDIUM }, { 18, 2, KW_CONF_HIGH },
		{ 17, 3, KW_CONF_MEDIUM }, { 3, 0, KW_CONF_MEDIUM }, { 7, 3, KW_CONF_MEDIUM },
		{ 6, 3, KW_CONF_LOW },	   { 2, 0, KW_CONF_LOW },    { 1, 0, KW_CONF_LOW },
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kw_upstream u = up(KW_DIR_INBOUND, "10.0.0.1", 80);
		struct kw_timeout t;

		closes(&u, KW_BY_LOCAL, 5, cases[i].in);
		closes(&u, KW_BY_LOCAL, 12, cases[i].out);
		infer(&u, KW_BY_LOCAL, &t);
		if (t.confidence != cases[i].want)
			fail_msg("%llu of %llu: confidence %s, expected %s",
				 (unsigned long long)cases[i].in,
				 (unsigned long long)(cases[i].in + cases[i].out),
				 kw_confidence_name(t.confidence),
				 kw_confidence_name(cases[i].want));
	}
}

/* ---- rules ---- */

static const struct kw_finding *find(const struct kw_diagnosis *d, const char *id)
{
	unsigned int i;

	for (i = 0; i < d->nfindings; i++)
		if (!strcmp(d->finding[i].id, id))
			return &d->finding[i];
	return NULL;
}

static void assert_no_findings(const struct kw_diagnosis *d)
{
	if (d->nfindings)
		fail_msg("unexpected finding %s: %s", d->finding[0].id, d->finding[0].summary);
}

static void assert_has(const char *text, const char *part)
{
	if (!strstr(text, part))
		fail_msg("\"%s\" not in \"%s\"", part, text);
}

/* A balancer in front of us that keeps idle connections 60 s, and we keep them 65 s. */
static void test_inbound_aligned(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	struct kw_doctor_opts o = opts(60);
	struct kw_diagnosis d;

	(void)state;
	u.val[KW_F_REQ] = 5000;
	u.val[KW_F_REUSE] = 4900;
	closes(&u, KW_BY_PEER, 60.003, 90);
	closes(&u, KW_BY_LOCAL, 65.004, 3);
	u.val[KW_F_UNUSED_PEER] = 20; /* the balancer closing its pre-opened ones: fine */
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
	assert_close(d.timeout[KW_BY_LOCAL].seconds, 65);
	assert_close(d.timeout[KW_BY_PEER].seconds, 60);
	/* the same without --lb-idle-timeout: the peer closes idle connections first */
	o = opts(0);
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
}

static void test_inbound_no_idle_closes(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	struct kw_doctor_opts o = opts(60);
	struct kw_diagnosis d;

	(void)state;
	u.val[KW_F_REQ] = 100;
	u.val[KW_F_REUSE] = 0;
	closes(&u, KW_BY_PEER, 0.001, 100); /* curl: one request, close */
	closes(&u, KW_BY_LOCAL, 0.01, 5);
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
	assert_int_equal(d.timeout[KW_BY_LOCAL].confidence, KW_CONF_NONE);
	o = opts(0);
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
	/* nothing at all */
	u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
}

static void test_inbound_races_critical(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	struct kw_doctor_opts o = opts(0);
	const struct kw_finding *f;
	struct kw_diagnosis d;

	(void)state;
	u.val[KW_F_REUSE] = 100;
	u.val[KW_F_RACE_SERVER] = 12;
	u.hist[KW_H_RACE_IDLE][kw_idle_slot(5000)] = 12;
	u.hist_sum[KW_H_RACE_IDLE] = 60.0;
	closes(&u, KW_BY_LOCAL, 5.004, 40);
	closes(&u, KW_BY_PEER, 8, 3); /* the balancer closes too: races decide anyway */
	kw_doctor_upstream(&u, &o, &d);
	f = find(&d, "keepalive_shorter_than_lb");
	assert_non_null(f);
	assert_int_equal(f->severity, KW_SEV_CRITICAL);
	assert_string_equal(f->failure, "502");
	assert_has(f->summary, "12 keep-alive races");
	assert_has(f->evidence, "12 requests met a connection we had closed");
	assert_has(f->evidence, "idle 5 s on average");
	assert_has(f->evidence, "5 s (high confidence: 40 of 40 closes idle over 0.5 s)");
	assert_has(f->evidence, "since the agent started, 3h12m ago");
	assert_has(f->fix, "keep-alive timeout (5 s here) must be longer than the balancer's "
			   "idle timeout; pass --lb-idle-timeout to get a number");

	/* with the balancer's timeout, the fix has numbers */
	o = opts(60);
	kw_doctor_upstream(&u, &o, &d);
	f = find(&d, "keepalive_shorter_than_lb");
	assert_non_null(f);
	assert_int_equal(f->severity, KW_SEV_CRITICAL);
	assert_has(f->evidence, "the balancer's idle timeout is 60 s");
	assert_string_equal(f->fix,
			    "raise the keep-alive timeout above the balancer's idle timeout of 60 "
			    "s, e.g. to 65 s (nginx keepalive_timeout 65s; Apache KeepAliveTimeout "
			    "65; Node server.keepAliveTimeout = 65000; Gunicorn --keep-alive 65; "
			    "Varnish timeout_idle 65)");
	o = opts(350);
	kw_doctor_upstream(&u, &o, &d);
	f = find(&d, "keepalive_shorter_than_lb");
	assert_non_null(f);
	assert_has(f->fix, "of 350 s, e.g. to 355 s (nginx keepalive_timeout 355s;");
	assert_has(f->fix, "= 355000;");

	/* races without any idle close of ours to time */
	u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	u.val[KW_F_RACE_SERVER] = 1;
	o = opts(0);
	kw_doctor_upstream(&u, &o, &d);
	f = find(&d, "keepalive_shorter_than_lb");
	assert_non_null(f);
	assert_int_equal(f->severity, KW_SEV_CRITICAL);
	assert_has(f->fix, "the keep-alive timeout here must be longer");
	assert_has(f->evidence, "we closed no connection idle over 0.5 s");
}

static void test_inbound_shorter_than_lb(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	struct kw_doctor_opts o = opts(60);
	const struct kw_finding *f;
	struct kw_diagnosis d;

	(void)state;
	/* no race yet, no reuse even: the balancer's timeout alone tells */
	closes(&u, KW_BY_LOCAL, 5.004, 20);
	kw_doctor_upstream(&u, &o, &d);
	f = find(&d, "keepalive_shorter_than_lb");
	assert_non_null(f);
	assert_int_equal(f->severity, KW_SEV_WARNING);
	assert_has(f->summary, "our keep-alive timeout (5 s) is not longer than the balancer's "
			       "idle timeout (60 s)");
	assert_has(f->evidence, "no race seen yet");
	assert_has(f->fix, "of 60 s, e.g. to 65 s");
	/* equal timeouts race as well */
	u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	closes(&u, KW_BY_LOCAL, 60, 20);
	kw_doctor_upstream(&u, &o, &d);
	assert_non_null(find(&d, "keepalive_shorter_than_lb"));
	/* a range: 2.1-4.5 s is shorter than 60 s */
	u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	closes(&u, KW_BY_LOCAL, 3, 5);
	kw_doctor_upstream(&u, &o, &d);
	f = find(&d, "keepalive_shorter_than_lb");
	assert_non_null(f);
	assert_has(f->summary, "between 2.1 and 4.5 s (about 3 s)");
	/* longer than the balancer's: aligned */
	u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	closes(&u, KW_BY_LOCAL, 75, 20);
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
}

static void test_inbound_no_lb(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	struct kw_doctor_opts o = opts(0);
	const struct kw_finding *f;
	struct kw_diagnosis d;

	(void)state;
	u.val[KW_F_REUSE] = 300;
	closes(&u, KW_BY_LOCAL, 5.004, 20);
	closes(&u, KW_BY_PEER, 0.002, 50); /* closes right after a response do not count */
	kw_doctor_upstream(&u, &o, &d);
	f = find(&d, "keepalive_shorter_than_lb");
	assert_non_null(f);
	assert_int_equal(f->severity, KW_SEV_WARNING);
	assert_has(f->summary, "we close idle keep-alive connections after 5 s and the peer "
			       "never closes one first");
	assert_has(f->evidence, "300 requests on reused connections");
	assert_has(f->evidence, "the peer never closed an idle connection");
	assert_has(f->fix, "(5 s here) must be longer than the balancer's idle timeout");
	/* the peer closes idle connections first at times: its timeout is the shorter */
	closes(&u, KW_BY_PEER, 4, 1);
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
	/* no reuse: nothing a race could hit */
	u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	closes(&u, KW_BY_LOCAL, 5.004, 20);
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
}

static void test_outbound_races_critical(void **state)
{
	struct kw_upstream u = up(KW_DIR_OUTBOUND, "10.77.2.2", 8080);
	struct kw_doctor_opts o = opts(60);
	const struct kw_finding *f;
	struct kw_diagnosis d;

	(void)state;
	u.val[KW_F_RACE_CLIENT] = 3;
	u.val[KW_F_RACE_SERVER] = 0;
	closes(&u, KW_BY_PEER, 2.004, 30);
	kw_doctor_upstream(&u, &o, &d);
	assert_int_equal(d.nfindings, 1);
	f = &d.finding[0];
	assert_string_equal(f->id, "upstream_closes_before_pool");
	assert_int_equal(f->severity, KW_SEV_CRITICAL);
	assert_string_equal(f->failure, "502");
	assert_has(f->summary, "3 keep-alive races");
	assert_has(f->evidence, "the backend closed idle connections after 2 s (high");
	assert_has(f->evidence, "our pool never closed an idle connection");
	assert_has(f->fix, "set the pool's idle timeout below 2 s (HAProxy timeout "
			   "http-keep-alive, nginx upstream keepalive_timeout, Varnish "
			   "backend_idle_timeout, Envoy idle_timeout), or raise the upstream's "
			   "keep-alive timeout above the pool's");
	/* races, but the backend's timeout unseen */
	u = up(KW_DIR_OUTBOUND, "10.77.2.2", 8080);
	u.val[KW_F_RACE_CLIENT] = 1;
	kw_doctor_upstream(&u, &o, &d);
	f = find(&d, "upstream_closes_before_pool");
	assert_non_null(f);
	assert_has(f->fix, "below the backend's keep-alive timeout (HAProxy");
}

static void test_outbound_backend_first(void **state)
{
	struct kw_upstream u = up(KW_DIR_OUTBOUND, "10.77.2.2", 8080);
	struct kw_doctor_opts o = opts(0);
	const struct kw_finding *f;
	struct kw_diagnosis d;

	(void)state;
	/* the backend closes after 2 s, our pool never */
	closes(&u, KW_BY_PEER, 2.004, 30);
	kw_doctor_upstream(&u, &o, &d);
	f = find(&d, "upstream_closes_before_pool");
	assert_non_null(f);
	assert_int_equal(f->severity, KW_SEV_WARNING);
	assert_has(f->summary, "the backend closes idle connections after 2 s, before our pool");
	assert_has(f->fix, "below 2 s");
	/* our pool closes later than the backend */
	closes(&u, KW_BY_LOCAL, 10, 5);
	kw_doctor_upstream(&u, &o, &d);
	f = find(&d, "upstream_closes_before_pool");
	assert_non_null(f);
	assert_has(f->evidence, "our pool closed idle connections after 10 s");
	/* as late: a race too */
	u = up(KW_DIR_OUTBOUND, "10.77.2.2", 8080);
	closes(&u, KW_BY_PEER, 5, 10);
	closes(&u, KW_BY_LOCAL, 5, 10);
	kw_doctor_upstream(&u, &o, &d);
	assert_non_null(find(&d, "upstream_closes_before_pool"));
}

static void test_outbound_aligned(void **state)
{
	struct kw_upstream u = up(KW_DIR_OUTBOUND, "10.77.2.2", 8080);
	struct kw_doctor_opts o = opts(60);
	struct kw_diagnosis d;

	(void)state;
	/* HAProxy's 1 s http-keep-alive before nginx's 5 s keepalive_timeout */
	u.val[KW_F_REUSE] = 1000;
	closes(&u, KW_BY_LOCAL, 1.002, 50);
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
	/* the backend closing now and then, later than the pool */
	closes(&u, KW_BY_PEER, 5, 2);
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
	/* outbound upstreams do not get the inbound rules */
	u.val[KW_F_UNUSED_LOCAL] = 40;
	u.val[KW_F_ABORTED_UNREAD] = 3;
	u.val[KW_F_RACE_SERVER] = 5;
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
	/* nothing at all */
	u = up(KW_DIR_OUTBOUND, "10.77.2.2", 8080);
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
}

static void test_preopened_unused(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	struct kw_doctor_opts o = opts(60);
	const struct kw_finding *f;
	struct kw_diagnosis d;

	(void)state;
	/* the balancer keeps 60 s, we close new connections after 65 s... */
	closes(&u, KW_BY_LOCAL, 65, 20);
	closes(&u, KW_BY_PEER, 60, 20);
	u.val[KW_F_UNUSED_LOCAL] = 5; /* ...5 of our 20 closes unused: a warning */
	kw_doctor_upstream(&u, &o, &d);
	assert_int_equal(d.nfindings, 1);
	f = &d.finding[0];
	assert_string_equal(f->id, "preopened_closed_unused");
	assert_int_equal(f->severity, KW_SEV_WARNING);
	assert_string_equal(f->failure, "502");
	assert_has(f->summary, "the balancer pre-opens connections that we close unused after "
			       "about 65 s");
	assert_has(f->evidence, "5 of the 20 connections we closed had carried no request");
	assert_has(f->fix, "above the balancer's idle timeout of 60 s");
	/* fewer than 5: info */
	u.val[KW_F_UNUSED_LOCAL] = 4;
	kw_doctor_upstream(&u, &o, &d);
	assert_int_equal(d.nfindings, 1);
	assert_int_equal(d.finding[0].severity, KW_SEV_INFO);
	assert_string_equal(d.finding[0].failure, "wasted handshakes");
	/* under 10% of our closes: info */
	closes(&u, KW_BY_LOCAL, 65, 80);
	u.val[KW_F_UNUSED_LOCAL] = 9;
	kw_doctor_upstream(&u, &o, &d);
	assert_int_equal(d.finding[0].severity, KW_SEV_INFO);
	u.val[KW_F_UNUSED_LOCAL] = 10;
	kw_doctor_upstream(&u, &o, &d);
	assert_int_equal(d.finding[0].severity, KW_SEV_WARNING);
	/* unused closes by the balancer are its own business */
	u.val[KW_F_UNUSED_LOCAL] = 0;
	u.val[KW_F_UNUSED_PEER] = 50;
	kw_doctor_upstream(&u, &o, &d);
	assert_no_findings(&d);
}

static void test_aborted_unread(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	struct kw_doctor_opts o = opts(60);
	const struct kw_finding *f;
	struct kw_diagnosis d;

	(void)state;
	u.val[KW_F_ABORTED_UNREAD] = 2;
	kw_doctor_upstream(&u, &o, &d);
	assert_int_equal(d.nfindings, 1);
	f = &d.finding[0];
	assert_string_equal(f->id, "aborted_with_unread");
	assert_int_equal(f->severity, KW_SEV_WARNING);
	assert_has(f->summary, "2 requests cut off");
	assert_has(f->evidence, "abort_on_close");
	assert_has(f->fix, "drain");
}

static void test_findings_order(void **state)
{
	struct kw_upstream u = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	struct kw_doctor_opts o = opts(60);
	struct kw_diagnosis d;

	(void)state;
	closes(&u, KW_BY_LOCAL, 65, 200);
	u.val[KW_F_UNUSED_LOCAL] = 1;	/* info */
	u.val[KW_F_ABORTED_UNREAD] = 1; /* warning */
	u.val[KW_F_RACE_SERVER] = 1;	/* critical */
	kw_doctor_upstream(&u, &o, &d);
	assert_int_equal(d.nfindings, 3);
	assert_string_equal(d.finding[0].id, "keepalive_shorter_than_lb");
	assert_string_equal(d.finding[1].id, "aborted_with_unread");
	assert_string_equal(d.finding[2].id, "preopened_closed_unused");
}

/* ---- the set ---- */

static void test_run(void **state)
{
	struct kw_upstream u[5];
	struct kw_doctor_opts o = opts(60);
	struct kw_diagnosis *d;
	size_t n;

	(void)state;
	u[0] = up(KW_DIR_INBOUND, "10.77.1.1", 80); /* aligned */
	closes(&u[0], KW_BY_PEER, 60, 10);
	u[1] = up(KW_DIR_INBOUND, "10.77.1.3", 80); /* no close: not shown */
	u[1].val[KW_F_CONN] = 3;
	u[2] = up(KW_DIR_OUTBOUND, "10.77.2.2", 8080); /* warning */
	closes(&u[2], KW_BY_PEER, 2, 10);
	u[3] = up(KW_DIR_INBOUND, "10.77.1.2", 80); /* critical */
	u[3].val[KW_F_RACE_SERVER] = 1;
	memset(&u[4], 0, sizeof(u[4])); /* the overflow upstream, only closes */
	closes(&u[4], KW_BY_PEER, 60, 10);
	assert_int_equal(kw_doctor_run(u, 5, &o, &d, &n), 0);
	assert_int_equal(n, 3);
	assert_ptr_equal(d[0].u, &u[3]);
	assert_ptr_equal(d[1].u, &u[2]);
	assert_ptr_equal(d[2].u, &u[0]);
	free(d);

	/* the overflow upstream with a finding is shown */
	u[4].val[KW_F_ABORTED_UNREAD] = 1;
	assert_int_equal(kw_doctor_run(u, 5, &o, &d, &n), 0);
	assert_int_equal(n, 4);
	free(d);

	/* one peer */
	assert_int_equal(kw_addr_parse_peer("10.77.2.2", o.peer, &o.port), 0);
	o.match_peer = 1;
	assert_int_equal(kw_doctor_run(u, 5, &o, &d, &n), 0);
	assert_int_equal(n, 1);
	assert_ptr_equal(d[0].u, &u[2]);
	free(d);
	assert_int_equal(kw_addr_parse_peer("10.77.2.2:8081", o.peer, &o.port), 0);
	assert_int_equal(kw_doctor_run(u, 5, &o, &d, &n), 0);
	assert_int_equal(n, 0);
	free(d);
	assert_int_equal(kw_addr_parse_peer("10.77.2.2:8080", o.peer, &o.port), 0);
	assert_int_equal(kw_doctor_run(u, 5, &o, &d, &n), 0);
	assert_int_equal(n, 1);
	free(d);

	/* nothing */
	assert_int_equal(kw_doctor_run(u, 0, &o, &d, &n), 0);
	assert_int_equal(n, 0);
	free(d);
}

static json_t *doctor_json(const struct kw_upstream *u, size_t nu, const struct kw_doctor_opts *o)
{
	struct kw_diagnosis *d;
	struct kw_buf b;
	json_error_t jerr;
	json_t *doc;
	size_t n;

	kw_buf_init(&b);
	assert_int_equal(kw_doctor_run(u, nu, o, &d, &n), 0);
	assert_int_equal(kw_doctor_json(d, n, o, &b), 0);
	free(d);
	doc = json_loads(b.data, 0, &jerr);
	if (!doc)
		fail_msg("bad JSON (%s): %s", jerr.text, b.data);
	kw_buf_free(&b);
	return doc;
}

static void test_json(void **state)
{
	struct kw_upstream u[2];
	struct kw_doctor_opts o = opts(60);
	const json_t *x, *t, *f;
	json_t *doc;

	(void)state;
	u[0] = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	closes(&u[0], KW_BY_LOCAL, 5, 10);
	u[1] = up(KW_DIR_OUTBOUND, "fd77::2", 8080);
	closes(&u[1], KW_BY_LOCAL, 3, 2);
	closes(&u[1], KW_BY_LOCAL, 3.4, 1);
	doc = doctor_json(u, 2, &o);
	assert_int_equal(json_integer_value(json_object_get(doc, "version")), 1);
	assert_true(json_real_value(json_object_get(doc, "uptime_seconds")) == UPTIME);
	assert_int_equal(json_integer_value(json_object_get(doc, "lb_idle_timeout")), 60);
	assert_int_equal(json_array_size(json_object_get(doc, "upstreams")), 2);

	x = json_array_get(json_object_get(doc, "upstreams"), 0);
	assert_string_equal(json_string_value(json_object_get(x, "direction")), "inbound");
	assert_string_equal(json_string_value(json_object_get(x, "peer")), "10.77.1.1");
	assert_int_equal(json_integer_value(json_object_get(x, "port")), 80);
	assert_string_equal(json_string_value(json_object_get(x, "netns")), "1");
	t = json_object_get(json_object_get(x, "timeouts"), "local");
	assert_true(json_is_integer(json_object_get(t, "seconds"))); /* 5, not 5.0 */
	assert_int_equal(json_integer_value(json_object_get(t, "seconds")), 5);
	assert_true(json_is_true(json_object_get(t, "exact")));
	assert_true(json_real_value(json_array_get(json_object_get(t, "range"), 0)) == 4.5);
	assert_true(json_real_value(json_array_get(json_object_get(t, "range"), 1)) == 5.5);
	assert_string_equal(json_string_value(json_object_get(t, "confidence")), "high");
	assert_int_equal(json_integer_value(json_object_get(t, "samples")), 10);
	assert_int_equal(json_integer_value(json_object_get(t, "idle_closes")), 10);
	assert_true(json_real_value(json_object_get(t, "share")) == 1.0);
	assert_true(json_is_null(json_object_get(json_object_get(x, "timeouts"), "peer")));
	f = json_array_get(json_object_get(x, "findings"), 0);
	assert_int_equal(json_object_size(f), 6);
	assert_string_equal(json_string_value(json_object_get(f, "id")),
			    "keepalive_shorter_than_lb");
	assert_string_equal(json_string_value(json_object_get(f, "severity")), "warning");
	assert_string_equal(json_string_value(json_object_get(f, "failure")), "502");
	assert_non_null(json_string_value(json_object_get(f, "summary")));
	assert_non_null(json_string_value(json_object_get(f, "evidence")));
	assert_non_null(json_string_value(json_object_get(f, "fix")));

	x = json_array_get(json_object_get(doc, "upstreams"), 1);
	assert_string_equal(json_string_value(json_object_get(x, "peer")), "fd77::2");
	assert_int_equal(json_array_size(json_object_get(x, "findings")), 0);
	t = json_object_get(json_object_get(x, "timeouts"), "local");
	assert_false(json_is_true(json_object_get(t, "exact")));
	assert_true(json_real_value(json_object_get(t, "seconds")) > 3.13);
	assert_true(json_real_value(json_object_get(t, "seconds")) < 3.14);
	assert_true(json_real_value(json_object_get(t, "share")) == 1);
	assert_string_equal(json_string_value(json_object_get(t, "confidence")), "medium");
	json_decref(doc);

	/* no balancer timeout, a +Inf range, a share that is no whole number */
	o = opts(0);
	u[0] = up(KW_DIR_INBOUND, "10.77.1.1", 80);
	closes(&u[0], KW_BY_PEER, 400, 2);
	closes(&u[0], KW_BY_PEER, 10, 1);
	doc = doctor_json(u, 1, &o);
	assert_true(json_is_null(json_object_get(doc, "lb_idle_timeout")));
	x = json_array_get(json_object_get(doc, "upstreams"), 0);
	t = json_object_get(json_object_get(x, "timeouts"), "peer");
	assert_true(json_real_value(json_array_get(json_object_get(t, "range"), 0)) == 300.5);
	assert_true(json_is_null(json_array_get(json_object_get(t, "range"), 1)));
	assert_true(json_real_value(json_object_get(t, "share")) == 0.667);
	assert_string_equal(json_string_value(json_object_get(t, "confidence")), "low");
	json_decref(doc);

	/* no upstream */
	doc = doctor_json(u, 0, &o);
	assert_int_equal(json_array_size(json_object_get(doc, "upstreams")), 0);
	json_decref(doc);
}

static void test_duration(void **state)
{
	static const struct {
		double s;
		const char *text;
	} cases[] = {
		{ 0, "0s" },	     { 0.9, "0s" },	 { 59.9, "59s" },     { 60, "1m00s" },
		{ 307, "5m07s" },    { 3599, "59m59s" }, { 3600, "1h00m" },   { 11520, "3h12m" },
		{ 86399, "23h59m" }, { 86400, "1d00h" }, { 187200, "2d04h" }, { -5, "0s" },
		{ NAN, "0s" },	     { INFINITY, "0s" },
	};
	char out[32];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kw_format_duration(cases[i].s, out, sizeof(out));
		assert_string_equal(out, cases[i].text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeout_empty),
		cmocka_unit_test(test_timeout_brackets),
		cmocka_unit_test(test_timeout_bracket_bounds),
		cmocka_unit_test(test_timeout_ranges),
		cmocka_unit_test(test_timeout_candidate),
		cmocka_unit_test(test_timeout_confidence),
		cmocka_unit_test(test_inbound_aligned),
		cmocka_unit_test(test_inbound_no_idle_closes),
		cmocka_unit_test(test_inbound_races_critical),
		cmocka_unit_test(test_inbound_shorter_than_lb),
		cmocka_unit_test(test_inbound_no_lb),
		cmocka_unit_test(test_outbound_races_critical),
		cmocka_unit_test(test_outbound_backend_first),
		cmocka_unit_test(test_outbound_aligned),
		cmocka_unit_test(test_preopened_unused),
		cmocka_unit_test(test_aborted_unread),
		cmocka_unit_test(test_findings_order),
		cmocka_unit_test(test_run),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_duration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
