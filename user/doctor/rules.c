// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The doctor's rules (see doctor.h). Each rule reads one upstream's counters and inferred
 * timeouts and writes at most one finding with the numbers behind it, so that a user can
 * check the claim. The rules stay silent when nothing points to a misalignment: a false
 * alarm is a bug.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "doctor/internal.h"
#include "lib/duration.h"

/* Unused closes by us worth a warning: at least this many, and this share of our closes. */
#define NO_IDLE_CLOSE_BY_US "we closed no connection idle over %g s"
#define UNUSED_MIN	    5
#define UNUSED_MIN_SHARE    0.1

/* A balancer's idle timeout plus this is the keep-alive we suggest. */
#define LB_MARGIN 5

/*
 * Reuse rules. Each threshold is set so that healthy reuse stays silent: a false alarm is a
 * bug, a late warning is not.
 *
 * Single-use connections (server_closes_after_each_response, client_closes_...): at least
 * SINGLE_MIN_CONNS closed connections, so that a health check or a curl by hand says
 * nothing...
 */
#define SINGLE_MIN_CONNS 5
/* ...one side closed this % of all closed connections after exactly one request... */
#define SINGLE_PCT 90
/*
 * ...and closed this % of all closed connections right after a response (idle at most
 * KW_DOCTOR_MIN_IDLE). One request and then an idle timeout is an idle close, for the
 * timeout rules to judge, not a refusal to keep the connection.
 */
#define PROMPT_PCT 90
/*
 * single_use_connections: a server that closed this % of the connections first, right
 * after the response, closes after each response.
 */
#define SERVER_PROMPT_PCT 10

/* request_cap: at least this many connections the server closed after 2 requests or more... */
#define CAP_MIN_CONNS 3
/* ...this % of them at exactly N requests... */
#define CAP_PCT 80
/*
 * ...connections (either closer) that carried more than N are at most this % of those at N:
 * a cap lets none through (kept above 0 for turns counted twice, e.g. 100-continue)...
 */
#define CAP_OVER_PCT 10
/*
 * ...and the server's closes right after a response (idle at most KW_DOCTOR_MIN_IDLE) are at
 * least CAP_PCT% of the at-N count: a cap closes with the Nth response, while clients that
 * stop after N requests are closed by an idle timeout. The caps looked for, each with an
 * exact slot of the requests histogram (kw_hist.h):
 */
static const unsigned int caps[] = { 2, 3, 4, 5, 6, 100, 101, 1000, 1001 };
/* Caps up to this one waste most handshakes: a warning; larger ones are info. */
#define CAP_WARN_MAX 6

/* ports_running_out: a warning when ports run out within this many seconds... */
#define PORTS_WARN_S 600
/*
 * ...and this % of the range is held already: a pool opening its first connections
 * grows fast from nothing, which is no trend.
 */
#define PORTS_MIN_HELD_PCT 10

/* short_keepalive_internal: a timeout inferred at or under this (s), medium confidence... */
#define SHORT_KEEPALIVE_S 15
/* ...while connections are opened at this rate or more (per s over the window)... */
#define SHORT_KEEPALIVE_MIN_RATE 1.0
/* ...more than this % of closes were idle closes (over KW_DOCTOR_MIN_IDLE)... */
#define SHORT_KEEPALIVE_IDLE_PCT 50
/* ...with at least this many connections opened: a rate of 3 in the agent's first 2 s is
 * no churn worth a finding... */
#define SHORT_KEEPALIVE_MIN_CONNS 60
/* ...on an internal hop (a private peer address). The timeouts we suggest there, in s: */
#define INTERNAL_KEEPALIVE 300 /* the server's keep-alive */
#define INTERNAL_POOL_IDLE 240 /* the client's pool idle timeout, below it */

/* Linux keeps a TIME_WAIT socket, and its port, 60 s (TCP_TIMEWAIT_LEN). */
#define TIME_WAIT_S 60

/*
 * part >= pct% of all, and part <= pct% of all, in whole numbers: 90% of 30 is 27, not
 * 27.000000000000004. Counts stay far below 2^64 / 100.
 */
static int pct_at_least(__u64 part, __u64 all, unsigned int pct)
{
	return part * 100 >= all * pct;
}

static int pct_at_most(__u64 part, __u64 all, unsigned int pct)
{
	return part * 100 <= all * pct;
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

/* "5 s (high confidence: 40 of 40 closes idle over 0.5 s)", 0.5 being KW_DOCTOR_MIN_IDLE */
static void timeout_basis(const struct kw_timeout *t, char *out, size_t len)
{
	char text[96];

	timeout_text(t, text, sizeof(text));
	snprintf(out, len, "%s (%s confidence: %llu of %llu closes idle over %g s)", text,
		 kw_confidence_name(t->confidence), (unsigned long long)t->samples,
		 (unsigned long long)t->idle_closes, KW_DOCTOR_MIN_IDLE);
}

/* ---- findings ---- */

static __u64 val(const struct ctx *c, enum kw_field_id f)
{
	return c->u->val[f];
}

/*
 * The running rule's finding, with its id from the table; NULL if the diagnosis is full.
 * sev is at most the rule's worst (the rules table's column says so).
 */
static struct kw_finding *add(struct ctx *c, enum kw_severity sev, const char *failure)
{
	struct kw_finding *f;

	if (c->d->nfindings == KW_DOCTOR_MAX_FINDINGS)
		return NULL;
	f = &c->d->finding[c->d->nfindings++];
	memset(f, 0, sizeof(*f));
	f->id = c->rule->id;
	f->rule = c->rule - kw_doctor_rules;
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
/* What `by` closed idle after; none says why it is unknown (a %g is the quiet a race needs). */
static void cat_side(struct ctx *c, char *buf, size_t len, int by, const char *who,
		     const char *none)
{
	const struct kw_timeout *t = &c->d->timeout[by];
	char basis[192];

	if (!known(t)) {
		snprintf(basis, sizeof(basis), none, KW_DOCTOR_MIN_IDLE);
		cat(buf, len, "; %s", basis);
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
		f = add(c, KW_SEV_CRITICAL, "502");
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
		f = add(c, KW_SEV_WARNING, "502");
		if (!f)
			return;
		timeout_text(ours, text, sizeof(text));
		snprintf(f->summary, sizeof(f->summary),
			 "our keep-alive timeout (%s) is not longer than the balancer's idle "
			 "timeout (%g s)",
			 text, l);
		snprintf(f->evidence, sizeof(f->evidence), "no race seen yet");
	} else if (l <= 0 && known(ours) && !theirs->idle_closes && val(c, KW_F_REUSE)) {
		f = add(c, KW_SEV_WARNING, "502");
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
		 NO_IDLE_CLOSE_BY_US);
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
		f = add(c, KW_SEV_CRITICAL, "502");
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
		f = add(c, KW_SEV_WARNING, "502");
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
	f = add(c, warn ? KW_SEV_WARNING : KW_SEV_INFO, warn ? "502" : "wasted handshakes");
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
	f = add(c, KW_SEV_WARNING, "502");
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

/* ---- reuse ---- */

/* The server's side of an upstream: us inbound, the peer outbound. */
static int server_side(const struct kw_upstream *u)
{
	return u->key.direction == KW_DIR_OUTBOUND ? KW_BY_PEER : KW_BY_LOCAL;
}

/* A figure for people: 3 significant digits, whole from 100 up ("0.001", "2.5", "1066"). */
static char *fig(double v, char *out, size_t len)
{
	if (v >= 100 || v <= -100)
		snprintf(out, len, "%.0f", v);
	else
		snprintf(out, len, "%.3g", v);
	return out;
}

/* "50 connections opened since the counts started, 1h00m ago (2.5 a second)" */
static void cat_rate(struct ctx *c, char *buf, size_t len)
{
	char n[32];

	cat(buf, len, "; %llu connections opened %s", (unsigned long long)val(c, KW_F_CONN),
	    c->window);
	if (c->rate >= 0)
		cat(buf, len, " (%s a second)", fig(c->rate, n, sizeof(n)));
}

/* The census row: "ports to 10.0.0.2:80 from 10.0.0.1: 28000 of 28232 held, ..." */
static void cat_ports(struct ctx *c, char *buf, size_t len)
{
	const struct kw_census_dest *p = &c->d->ports;
	char local[KW_ADDR_STRLEN], n[32];

	if (!c->d->has_ports)
		return;
	if (kw_addr_format(p->laddr, local, sizeof(local)))
		snprintf(local, sizeof(local), "?");
	cat(buf, len,
	    "; ports to %s from %s: %llu of %llu usable held, %llu left; %llu sockets to it, "
	    "%llu (%.0f%%) in TIME_WAIT",
	    c->peer, local, (unsigned long long)p->held, (unsigned long long)p->range,
	    (unsigned long long)p->headroom, (unsigned long long)p->in_use,
	    (unsigned long long)p->time_wait, p->in_use ? 100.0 * p->time_wait / p->in_use : 0.0);
	if (p->growth_per_s > 0)
		cat(buf, len, "; held ports grow by %s a second",
		    fig(p->growth_per_s, n, sizeof(n)));
	if (c->d->ports_ns.inode)
		cat(buf, len, "; net.ipv4.ip_local_port_range %u %u, tcp_tw_reuse %u",
		    c->d->ports_ns.port_lo, c->d->ports_ns.port_hi, c->d->ports_ns.tw_reuse);
	if (c->d->port_sources > 1)
		cat(buf, len, "; %u local addresses connect to it", c->d->port_sources);
}

/* TIME_WAIT this upstream leaves here, then the census row where there is one. */
static void cat_time_wait(struct ctx *c, char *buf, size_t len)
{
	cat(buf, len, "; %llu TIME_WAIT sockets created here, %llu now",
	    (unsigned long long)val(c, KW_F_TIME_WAIT_ENTERED),
	    (unsigned long long)val(c, KW_F_TIME_WAIT));
	/* outbound, each holds one of our ephemeral ports */
	if (c->o->uptime > 0 && c->u->key.direction == KW_DIR_OUTBOUND &&
	    val(c, KW_F_TIME_WAIT_ENTERED))
		cat(buf, len, " (each holds its port %d s: about %.0f ports at this rate)",
		    TIME_WAIT_S,
		    (double)val(c, KW_F_TIME_WAIT_ENTERED) / c->o->uptime * TIME_WAIT_S);
	cat_ports(c, buf, len);
}

static void ports_fix(struct ctx *c, char *buf, size_t len)
{
	const struct kw_census_netns *ns = &c->d->ports_ns;
	int tw_on;

	snprintf(buf, len,
		 "reuse connections so that fewer are opened (HTTP/1.1 keep-alive with a pool: "
		 "nginx keepalive N in the upstream block); widen net.ipv4.ip_local_port_range");
	if (!c->d->has_ports || !ns->inode) {
		cat(buf, len,
		    "; set net.ipv4.tcp_tw_reuse=1 so that connect() takes ports held in TIME_WAIT; "
		    "connect from more source addresses (nginx proxy_bind, HAProxy source)");
		return;
	}
	cat(buf, len, " (now %u %u, %u usable)", ns->port_lo, ns->port_hi, ns->range);
	tw_on = kw_tw_reuse_applies(ns->tw_reuse, c->d->ports.laddr, c->u->key.addr);
	if (tw_on)
		cat(buf, len, "; net.ipv4.tcp_tw_reuse is already on (%u) here", ns->tw_reuse);
	else
		cat(buf, len,
		    "; set net.ipv4.tcp_tw_reuse=1 so that connect() takes ports held in TIME_WAIT "
		    "(now %u%s)",
		    ns->tw_reuse, ns->tw_reuse == 2 ? ": loopback only" : "");
	cat(buf, len, "; connect from more source addresses (nginx proxy_bind, HAProxy source)");
}

/* e. outbound, census: ephemeral ports to a destination run out. */
static void rule_ports_running_out(struct ctx *c)
{
	const struct kw_census_dest *p = &c->d->ports;
	char local[KW_ADDR_STRLEN], left[32];
	struct kw_finding *f;

	if (!c->d->has_ports || !p->range)
		return;
	if (kw_addr_format(p->laddr, local, sizeof(local)))
		snprintf(local, sizeof(local), "?");
	if (!p->headroom) {
		f = add(c, KW_SEV_CRITICAL, "connect failures");
		if (!f)
			return;
		snprintf(f->summary, sizeof(f->summary),
			 "connects to %s from %s will fail with EADDRNOTAVAIL now: no ephemeral "
			 "port is left",
			 c->peer, local);
	} else if (p->growth_per_s > 0 && p->exhaustion_s <= PORTS_WARN_S &&
		   pct_at_least(p->held, p->range, PORTS_MIN_HELD_PCT)) {
		f = add(c, KW_SEV_WARNING, "connect failures");
		if (!f)
			return;
		kw_format_duration(p->exhaustion_s, left, sizeof(left));
		snprintf(f->summary, sizeof(f->summary),
			 "ports to %s run out in %s at the current rate", c->peer, left);
	} else {
		return;
	}
	snprintf(f->evidence, sizeof(f->evidence), "from the latest census");
	cat_ports(c, f->evidence, sizeof(f->evidence));
	cat(f->evidence, sizeof(f->evidence),
	    "; %llu TIME_WAIT sockets created here %s; a proxy answers a failed connect 502",
	    (unsigned long long)val(c, KW_F_TIME_WAIT_ENTERED), c->window);
	ports_fix(c, f->fix, sizeof(f->fix));
}

/* f. outbound: connects failed for want of a port. */
static void rule_connect_failures_no_port(struct ctx *c)
{
	__u64 n = val(c, KW_F_CF_EADDRNOTAVAIL);
	struct kw_finding *f;

	if (!n)
		return;
	f = add(c, KW_SEV_CRITICAL, "connect failures");
	if (!f)
		return;
	snprintf(f->summary, sizeof(f->summary),
		 "%llu connects to %s failed with EADDRNOTAVAIL: no ephemeral port was left",
		 (unsigned long long)n, c->peer);
	snprintf(f->evidence, sizeof(f->evidence),
		 "%llu connect() failures with EADDRNOTAVAIL %s; a proxy answers them 502",
		 (unsigned long long)n, c->window);
	cat_rate(c, f->evidence, sizeof(f->evidence));
	cat_time_wait(c, f->evidence, sizeof(f->evidence));
	ports_fix(c, f->fix, sizeof(f->fix));
}

/*
 * One side closed nearly all connections after exactly one request, right after the
 * response: the share it closed, or 0 if the rule's thresholds are not met.
 */
static double single_use_share(struct ctx *c, int by)
{
	const struct kw_reuse *r = &c->d->reuse;

	if (r->closed < SINGLE_MIN_CONNS || !pct_at_least(r->single[by], r->closed, SINGLE_PCT) ||
	    !pct_at_least(kw_prompt_closes(c->u, by), r->closed, PROMPT_PCT))
		return 0;
	return r->single[by] > r->closed ? 1.0 : (double)r->single[by] / r->closed;
}

/* "48 of the 50 connections closed (96%) carried one request and ... closed them, 0.001 s" */
static void cat_single(struct ctx *c, char *buf, size_t len, int by, const char *closer)
{
	const struct kw_reuse *r = &c->d->reuse;
	char idle[32], per[32];

	cat(buf, len,
	    "%llu of the %llu connections closed carried exactly one request and %s closed "
	    "them first",
	    (unsigned long long)r->single[by], (unsigned long long)r->closed, closer);
	if (isfinite(r->single_idle[by]))
		cat(buf, len, ", %s s after the response on average",
		    fig(r->single_idle[by], idle, sizeof(idle)));
	cat(buf, len, "; %llu requests in all, %s per connection", (unsigned long long)r->requests,
	    fig(r->connections ? (double)r->requests / r->connections : 0, per, sizeof(per)));
}

static const char *single_failure(struct ctx *c)
{
	return c->u->key.direction == KW_DIR_OUTBOUND ?
		       "wasted handshakes, connect failures once ports run out" :
		       "wasted handshakes";
}

/* How to make the server keep its connections. */
static void server_single_fix(struct ctx *c, char *buf, size_t len)
{
	if (c->u->key.direction == KW_DIR_OUTBOUND)
		snprintf(
			buf, len,
			"send HTTP/1.1 without Connection: close and keep the connections (nginx: "
			"proxy_http_version 1.1; proxy_set_header Connection \"\"; keepalive N in "
			"the upstream block), and keep HTTP/1.1 keep-alive on at the backend (nginx "
			"keepalive_timeout above 0; Apache KeepAlive On)");
	else
		snprintf(buf, len,
			 "turn HTTP/1.1 keep-alive on and send no Connection: close (nginx "
			 "keepalive_timeout above 0; Apache KeepAlive On); if the clients send "
			 "HTTP/1.0 or Connection: close, make them keep connections (ab -k; nginx "
			 "in front: proxy_http_version 1.1, proxy_set_header Connection \"\", "
			 "keepalive N in the upstream block)");
}

/* How to make the client reuse its connections. */
static void client_single_fix(struct ctx *c, char *buf, size_t len)
{
	if (c->u->key.direction == KW_DIR_OUTBOUND)
		snprintf(buf, len,
			 "keep connections to the backend open and reuse them: HTTP/1.1 keep-alive "
			 "with a connection pool (nginx: keepalive N in the upstream block, "
			 "proxy_http_version 1.1, proxy_set_header Connection \"\"; HAProxy: "
			 "http-reuse safe, no option httpclose; a client library's pool)");
	else
		snprintf(buf, len,
			 "turn keep-alive on in the client or balancer and reuse connections (a "
			 "connection pool; ab -k; nginx in front: keepalive N in the upstream "
			 "block; HAProxy http-reuse)");
}

/* g. the server closes connections after each response: no keep-alive. */
static void rule_server_closes_after_each_response(struct ctx *c)
{
	int srv = server_side(c->u), out = c->u->key.direction == KW_DIR_OUTBOUND;
	double share = single_use_share(c, srv);
	struct kw_finding *f;

	if (!share)
		return;
	f = add(c, KW_SEV_WARNING, single_failure(c));
	if (!f)
		return;
	snprintf(f->summary, sizeof(f->summary),
		 "%s connections after each response: %.0f%% of closed connections carried a "
		 "single request",
		 out ? "the backend closes" : "we close", 100 * share);
	cat_single(c, f->evidence, sizeof(f->evidence), srv, out ? "the backend" : "we");
	cat(f->evidence, sizeof(f->evidence),
	    "; the requests were HTTP/1.0 or carried Connection: close (ab without -k, nginx "
	    "proxy_pass without proxy_http_version 1.1), or keep-alive is off at the server");
	cat_rate(c, f->evidence, sizeof(f->evidence));
	cat_time_wait(c, f->evidence, sizeof(f->evidence));
	server_single_fix(c, f->fix, sizeof(f->fix));
}

/* h. the client closes connections after each response: it does not reuse them. */
static void rule_client_closes_after_each_response(struct ctx *c)
{
	int out = c->u->key.direction == KW_DIR_OUTBOUND, cli = out ? KW_BY_LOCAL : KW_BY_PEER;
	double share = single_use_share(c, cli);
	struct kw_finding *f;

	if (!share)
		return;
	/* inbound, the clients are someone else's: worth knowing, rarely ours to fix */
	f = add(c, out ? KW_SEV_WARNING : KW_SEV_INFO, single_failure(c));
	if (!f)
		return;
	snprintf(f->summary, sizeof(f->summary),
		 "%s does not reuse connections: it closed %.0f%% of them after a single "
		 "request",
		 out ? "our client" : "the client", 100 * share);
	cat_single(c, f->evidence, sizeof(f->evidence), cli,
		   out ? "we (the client)" : "the client");
	cat(f->evidence, sizeof(f->evidence),
	    "; a client that opens a connection per request and closes it after the response "
	    "(a new curl per request, a library without a connection pool); with HTTP/1.0 or "
	    "Connection: close the server would close first instead");
	cat_rate(c, f->evidence, sizeof(f->evidence));
	cat_time_wait(c, f->evidence, sizeof(f->evidence));
	client_single_fix(c, f->fix, sizeof(f->fix));
}

/*
 * h2. nearly every connection carries one request, but neither end closed 90% of them:
 * both close at once (an HTTP/1.0 server and a client that closes after reading too; curl
 * against python's http.server). When the two FINs cross, each end sees itself close
 * first, so the two hosts' closed_by can differ, and the split says little. What does
 * say something: a server that keeps connections alive never closes one right after the
 * response, so if it did that for SERVER_PROMPT_PCT% of the connections or more, it closes
 * after each response (and the client may also close at once); else the client does.
 */
static void rule_single_use_connections(struct ctx *c)
{
	const struct kw_reuse *r = &c->d->reuse;
	int out = c->u->key.direction == KW_DIR_OUTBOUND, srv = server_side(c->u), cli = !srv;
	__u64 single = r->single[KW_BY_LOCAL] + r->single[KW_BY_PEER];
	__u64 prompt = kw_prompt_closes(c->u, KW_BY_LOCAL) + kw_prompt_closes(c->u, KW_BY_PEER);
	int by, server_culprit;
	struct kw_finding *f;

	if (single_use_share(c, KW_BY_LOCAL) || single_use_share(c, KW_BY_PEER))
		return; /* one end did it: rules g and h name it */
	if (r->closed < SINGLE_MIN_CONNS || !pct_at_least(single, r->closed, SINGLE_PCT) ||
	    !pct_at_least(prompt, r->closed, PROMPT_PCT))
		return;
	server_culprit = pct_at_least(kw_prompt_closes(c->u, srv), r->closed, SERVER_PROMPT_PCT);
	by = server_culprit ? srv : cli;
	f = add(c, server_culprit || out ? KW_SEV_WARNING : KW_SEV_INFO, single_failure(c));
	if (!f)
		return;
	snprintf(f->summary, sizeof(f->summary),
		 "connections are not reused: %.0f%% of closed connections carried a single "
		 "request, most likely because %s closes them after each response",
		 100.0 * single / r->closed,
		 server_culprit ? (out ? "the backend" : "this server") :
				  (out ? "our client" : "the client"));
	cat_single(c, f->evidence, sizeof(f->evidence), by,
		   by == KW_BY_LOCAL ? (out ? "we (the client)" : "we") :
				       (out ? "the backend" : "the client"));
	cat(f->evidence, sizeof(f->evidence),
	    "; the other %llu were closed first by %s: both ends close at once (when their "
	    "FINs cross, each end counts the close as its own, so the other host may count "
	    "them the other way round)",
	    (unsigned long long)r->single[!by],
	    (!by) == KW_BY_LOCAL ? "us" : (out ? "the backend" : "the client"));
	cat_rate(c, f->evidence, sizeof(f->evidence));
	cat_time_wait(c, f->evidence, sizeof(f->evidence));
	if (server_culprit)
		server_single_fix(c, f->fix, sizeof(f->fix));
	else
		client_single_fix(c, f->fix, sizeof(f->fix));
}

/* i. the server closes connections after a fixed number of requests. */
static void rule_request_cap(struct ctx *c)
{
	int srv = server_side(c->u), out = c->u->key.direction == KW_DIR_OUTBOUND;
	__u64 multi = kw_closed_over(c->u, srv, 1), at = 0, over = 0;
	unsigned int i, cap = 0;
	struct kw_finding *f;

	if (multi < CAP_MIN_CONNS)
		return;
	for (i = 0; i < sizeof(caps) / sizeof(caps[0]) && !cap; i++) {
		at = kw_closed_at(c->u, srv, caps[i]);
		if (pct_at_least(at, multi, CAP_PCT))
			cap = caps[i];
	}
	if (!cap)
		return;
	over = kw_closed_over(c->u, -1, cap);
	if (!pct_at_most(over, at, CAP_OVER_PCT) ||
	    !pct_at_least(kw_prompt_closes(c->u, srv), at, CAP_PCT))
		return;
	f = add(c, cap <= CAP_WARN_MAX ? KW_SEV_WARNING : KW_SEV_INFO, "wasted handshakes");
	if (!f)
		return;
	snprintf(f->summary, sizeof(f->summary),
		 "%s closes connections after %u requests: a cap on requests per connection",
		 out ? "the backend" : "this server", cap);
	snprintf(f->evidence, sizeof(f->evidence),
		 "%llu of the %llu connections %s closed after 2 requests or more carried exactly "
		 "%u, and %llu connections carried more; %llu of %s closes came right after a "
		 "response",
		 (unsigned long long)at, (unsigned long long)multi, out ? "the backend" : "we", cap,
		 (unsigned long long)over, (unsigned long long)kw_prompt_closes(c->u, srv),
		 out ? "the backend's" : "our");
	/* Apache's MaxKeepAliveRequests N lets a connection carry N + 1 requests. */
	if (cap <= 6 || cap == 101 || cap == 1001)
		cat(f->evidence, sizeof(f->evidence),
		    "; Apache's MaxKeepAliveRequests %u closes after %u requests", cap - 1, cap);
	if (cap == 101)
		cat(f->evidence, sizeof(f->evidence), ": 100 is Apache's default");
	if (cap == 100)
		cat(f->evidence, sizeof(f->evidence),
		    "; 100 is the default of nginx's keepalive_requests before 1.19.10");
	else if (cap == 1000)
		cat(f->evidence, sizeof(f->evidence),
		    "; 1000 is the default of nginx's keepalive_requests since 1.19.10");
	cat_rate(c, f->evidence, sizeof(f->evidence));
	snprintf(f->fix, sizeof(f->fix),
		 "raise the cap of %u requests per connection at the %s: Apache "
		 "MaxKeepAliveRequests 0 (unlimited) or 1000 and more; nginx keepalive_requests "
		 "1000 and more",
		 cap, out ? "backend" : "server");
}

/* The side with the shorter known timeout at or under SHORT_KEEPALIVE_S, or -1. */
static int short_side(struct ctx *c)
{
	int by, best = -1;

	for (by = 0; by < KW_BY_MAX; by++) {
		const struct kw_timeout *t = &c->d->timeout[by];

		if (t->confidence < KW_CONF_MEDIUM || t->seconds > SHORT_KEEPALIVE_S)
			continue;
		if (best < 0 || t->seconds < c->d->timeout[best].seconds)
			best = by;
	}
	return best;
}

/*
 * Minutes on both ends, the server's keep-alive above the client's idle timeout. A client
 * side already at minutes (the balancer's --lb-idle-timeout, or an inferred timeout) stays.
 */
static void internal_fix(struct ctx *c, char *buf, size_t len)
{
	int out = c->u->key.direction == KW_DIR_OUTBOUND;
	const struct kw_timeout *t = &c->d->timeout[out ? KW_BY_LOCAL : KW_BY_PEER];
	double client = 0, server;

	if (!out && c->o->lb_idle_timeout > 0)
		client = c->o->lb_idle_timeout;
	else if (t->confidence >= KW_CONF_MEDIUM)
		client = whole(t->seconds);
	if (client <= SHORT_KEEPALIVE_S)
		client = INTERNAL_POOL_IDLE; /* unknown or short: minutes */
	server = client + LB_MARGIN > INTERNAL_KEEPALIVE ? client + LB_MARGIN : INTERNAL_KEEPALIVE;
	if (out)
		snprintf(buf, len,
			 "raise the idle timeouts of this hop to minutes, the backend's keep-alive "
			 "above our pool's: e.g. the backend %g s (nginx keepalive_timeout %gs; "
			 "Apache KeepAliveTimeout %g) and the pool %g s (nginx upstream "
			 "keepalive_timeout %gs; HAProxy timeout http-keep-alive %gs; Varnish "
			 "backend_idle_timeout %g); both under any firewall or NAT idle timeout on "
			 "the path",
			 server, server, server, client, client, client, client);
	else
		snprintf(buf, len,
			 "raise the idle timeouts of this hop to minutes, our keep-alive above the "
			 "balancer's idle timeout: e.g. ours %g s (nginx keepalive_timeout %gs; "
			 "Apache KeepAliveTimeout %g) and the balancer's %g s; both under any "
			 "firewall or NAT idle timeout on the path",
			 server, server, server, client);
}

/* j. info: a keep-alive of seconds where minutes would do (seed 003). */
static void rule_short_keepalive_internal(struct ctx *c)
{
	static const char *const role[2][2] = {
		{ "our keep-alive timeout", "the client's or balancer's idle timeout" },
		{ "our pool's idle timeout", "the backend's keep-alive timeout" },
	};
	int out = c->u->key.direction == KW_DIR_OUTBOUND, by = short_side(c);
	__u64 idle = c->d->timeout[KW_BY_LOCAL].idle_closes + c->d->timeout[KW_BY_PEER].idle_closes;
	const struct kw_reuse *r = &c->d->reuse;
	char text[96], rate[32];
	struct kw_finding *f;

	if (by < 0 || c->rate < SHORT_KEEPALIVE_MIN_RATE || !r->closed ||
	    c->u->val[KW_F_CONN] < SHORT_KEEPALIVE_MIN_CONNS ||
	    pct_at_most(idle, r->closed, SHORT_KEEPALIVE_IDLE_PCT) ||
	    kw_key_is_overflow(&c->u->key) || !kw_addr_is_private(c->u->key.addr))
		return;
	f = add(c, KW_SEV_INFO, "wasted handshakes");
	if (!f)
		return;
	timeout_text(&c->d->timeout[by], text, sizeof(text));
	snprintf(f->summary, sizeof(f->summary),
		 "%s is %s while %s connections a second are opened: on an internal hop, "
		 "minutes would do",
		 role[out][by], text, fig(c->rate, rate, sizeof(rate)));
	snprintf(f->evidence, sizeof(f->evidence),
		 "%llu of the %llu closes were idle closes (over %g s); the peer has a private "
		 "address: an internal hop",
		 (unsigned long long)idle, (unsigned long long)r->closed, KW_DOCTOR_MIN_IDLE);
	cat_rate(c, f->evidence, sizeof(f->evidence));
	cat_side(c, f->evidence, sizeof(f->evidence), KW_BY_LOCAL,
		 out ? "our pool closed idle connections" : "we closed idle connections",
		 out ? "our pool never closed an idle connection" : NO_IDLE_CLOSE_BY_US);
	cat_side(c, f->evidence, sizeof(f->evidence), KW_BY_PEER,
		 out ? "the backend closed idle connections" : "the peer closed idle connections",
		 out ? "the backend never closed an idle connection" :
		       "the peer never closed an idle connection");
	internal_fix(c, f->fix, sizeof(f->fix));
}

/*
 * The rules, in the order findings of equal severity are listed. `worst` is the most
 * severe finding a rule reports: those marked "or milder" report a lesser severity when
 * the evidence is weaker (no race seen yet, few unused connections, a large request cap)
 * or the fix is not ours (inbound, the clients' single-use connections). Adding a rule is
 * one row here and its function above, which reports at most one finding through add().
 */
const struct kw_rule kw_doctor_rules[] = {
	/* outbound: our pool and our ephemeral ports */
	{ "connect_failures_no_port", KW_RULE_OUT, KW_SEV_CRITICAL, rule_connect_failures_no_port },
	{ "ports_running_out", KW_RULE_OUT, KW_SEV_CRITICAL /* or milder */,
	  rule_ports_running_out },
	{ "upstream_closes_before_pool", KW_RULE_OUT, KW_SEV_CRITICAL /* or milder */,
	  rule_upstream_closes_before_pool },
	/* inbound: the balancer in front of us */
	{ "keepalive_shorter_than_lb", KW_RULE_IN, KW_SEV_CRITICAL /* or milder */,
	  rule_keepalive_shorter_than_lb },
	{ "preopened_closed_unused", KW_RULE_IN, KW_SEV_WARNING /* or milder */,
	  rule_preopened_closed_unused },
	{ "aborted_with_unread", KW_RULE_IN, KW_SEV_WARNING, rule_aborted_with_unread },
	/* both: reuse */
	{ "server_closes_after_each_response", KW_RULE_BOTH, KW_SEV_WARNING,
	  rule_server_closes_after_each_response },
	{ "client_closes_after_each_response", KW_RULE_BOTH, KW_SEV_WARNING /* or milder */,
	  rule_client_closes_after_each_response },
	{ "single_use_connections", KW_RULE_BOTH, KW_SEV_WARNING /* or milder */,
	  rule_single_use_connections },
	{ "request_cap", KW_RULE_BOTH, KW_SEV_WARNING /* or milder */, rule_request_cap },
	{ "short_keepalive_internal", KW_RULE_BOTH, KW_SEV_INFO, rule_short_keepalive_internal },
	{ NULL, 0, KW_SEV_INFO, NULL },
};
