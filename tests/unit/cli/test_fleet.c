// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * keepwatch doctor --prometheus, its pure part: a Prometheus answer (literal JSON) back
 * into model records (counters per upstream, cumulative buckets per slot, the group's
 * histograms on a group's only upstream, a record of the group when it has several
 * peers, per-peer histograms, the overflow upstream, what is not understood), the pairs
 * of proxy and backend upstreams by the hosts' addresses, the verdict and the setting to
 * change in each case (misaligned with the pool's timeout unknown or known, aligned), the
 * text, and answers of the wrong shape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/fleet.h"
#include "lib/addr.h"

/* An answer being written: a JSON array of series. */
struct answer {
	json_t *a;
};

static void series(struct answer *w, const char *name, const char *inst, const char *labels,
		   const char *value)
{
	char text[1024];
	json_error_t err;
	json_t *m;

	snprintf(text, sizeof(text),
		 "{\"__name__\": \"%s\", \"instance\": \"%s\", \"job\": \"kw\"%s%s}", name, inst,
		 *labels ? ", " : "", labels);
	m = json_loads(text, 0, &err);
	if (!m)
		fail_msg("bad test labels %s: %s", text, err.text);
	json_array_append_new(w->a, json_pack("{s:o, s:[f, s]}", "metric", m, "value", 1.5, value));
}

/* One upstream's counters: connections opened, requests, reused, closes and races. */
static void upstream(struct answer *w, const char *inst, const char *dir, const char *netns,
		     const char *port, const char *peer, const char *conns, const char *races)
{
	char l[256], lc[320];

	snprintf(l, sizeof(l),
		 "\"direction\": \"%s\", \"netns\": \"%s\", \"port\": \"%s\", "
		 "\"peer\": \"%s\"",
		 dir, netns, port, peer);
	series(w, "keepwatch_connections_opened_total", inst, l, conns);
	series(w, "keepwatch_requests_total", inst, l, conns);
	snprintf(lc, sizeof(lc), "%s, \"closed_by\": \"local\", \"how\": \"fin\"", l);
	series(w, "keepwatch_connections_closed_total", inst, lc, conns);
	snprintf(lc, sizeof(lc), "%s, \"side\": \"%s\"", l,
		 strcmp(dir, "inbound") ? "client" : "server");
	series(w, "keepwatch_keepalive_races_total", inst, lc, races);
}

/*
 * The idle_before_close histogram closed_by=local of a group (peer NULL) or upstream:
 * n closes in the slot whose upper bound is `le`, sum their total.
 */
static void idle_hist(struct answer *w, const char *inst, const char *dir, const char *netns,
		      const char *port, const char *peer, double le, const char *n, const char *sum)
{
	const struct kw_hist_desc *h = &kw_hists[KW_H_IDLE_LOCAL];
	char l[256], lb[320], b[32];
	unsigned int i;

	snprintf(l, sizeof(l),
		 "\"direction\": \"%s\", \"netns\": \"%s\", \"port\": \"%s\", "
		 "\"closed_by\": \"local\"%s%s%s",
		 dir, netns, port, peer ? ", \"peer\": \"" : "", peer ? peer : "",
		 peer ? "\"" : "");
	for (i = 0; i < h->nslots; i++) {
		if (i + 1 < h->nslots)
			snprintf(b, sizeof(b), "%g", h->bounds[i]);
		else
			snprintf(b, sizeof(b), "+Inf");
		snprintf(lb, sizeof(lb), "%s, \"le\": \"%s\"", l, b);
		series(w, "keepwatch_idle_before_close_seconds_bucket", inst, lb,
		       i + 1 < h->nslots && h->bounds[i] < le - 1e-9 ? "0" : n);
	}
	series(w, "keepwatch_idle_before_close_seconds_sum", inst, l, sum);
}

static void address(struct answer *w, const char *inst, const char *netns, const char *addr)
{
	char l[128];

	snprintf(l, sizeof(l), "\"netns\": \"%s\", \"address\": \"%s\"", netns, addr);
	series(w, "keepwatch_netns_address_info", inst, l, "1");
}

static void load(struct kw_fleet *f, struct answer *w)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(kw_fleet_add(f, w->a), 0);
	assert_int_equal(kw_fleet_finish(f), 0);
	json_decref(w->a);
}

static const struct kw_upstream *find(const struct kw_fleet_host *h, int dir, const char *peer,
				      __u16 port)
{
	__u8 a[16] = { 0 };
	size_t i;

	if (strcmp(peer, "*"))
		assert_int_equal(kw_addr_parse(peer, a), 0);
	for (i = 0; i < h->n; i++)
		if (h->u[i].key.direction == dir && h->u[i].key.port == port &&
		    !memcmp(h->u[i].key.addr, a, 16))
			return &h->u[i];
	fail_msg("no upstream %d %s:%u", dir, peer, port);
	return NULL;
}

/* The slot of the idle histograms whose upper bound is v. */
static unsigned int idle_slot(double v)
{
	unsigned int i;

	for (i = 0; fabs(kw_hists[KW_H_IDLE_LOCAL].bounds[i] - v) > 1e-9; i++)
		;
	return i;
}

static void test_records(void **state)
{
	struct answer w = { json_array() };
	const struct kw_upstream *u;
	struct kw_fleet f;
	unsigned int i;

	(void)state;
	/* host a: one peer on outbound port 80, its group's histogram; uptime; an address */
	upstream(&w, "a:9479", "outbound", "p", "80", "10.0.0.2", "12", "3");
	idle_hist(&w, "a:9479", "outbound", "p", "80", NULL, 1.1, "7", "7.07");
	series(&w, "keepwatch_agent_uptime_seconds", "a:9479", "", "3600.5");
	address(&w, "a:9479", "p", "10.0.0.1");
	/* two peers on inbound port 81: one record of the group, counters summed */
	upstream(&w, "a:9479", "inbound", "p", "81", "10.0.0.7", "2", "0");
	upstream(&w, "a:9479", "inbound", "p", "81", "*", "5", "1");
	idle_hist(&w, "a:9479", "inbound", "p", "81", NULL, 5.5, "6", "30");
	/* the overflow upstream */
	upstream(&w, "a:9479", "outbound", "other", "other", "other", "4", "0");
	/* host b: per-peer histograms, two peers on one port */
	upstream(&w, "b:9479", "inbound", "q", "80", "10.0.0.1", "10", "0");
	upstream(&w, "b:9479", "inbound", "q", "80", "10.0.0.9", "20", "0");
	idle_hist(&w, "b:9479", "inbound", "q", "80", "10.0.0.1", 2.1, "4", "8");
	idle_hist(&w, "b:9479", "inbound", "q", "80", "10.0.0.9", 10.5, "9", "90");
	/* not understood: no instance, no direction, an unknown family, a bad le */
	series(&w, "keepwatch_requests_total", "", "", "1");
	json_object_del(json_object_get(json_array_get(w.a, json_array_size(w.a) - 1), "metric"),
			"instance");
	series(&w, "keepwatch_requests_total", "a:9479", "\"peer\": \"10.0.0.2\"", "1");
	series(&w, "keepwatch_new_total", "a:9479",
	       "\"direction\": \"inbound\", \"netns\": \"p\", \"port\": \"80\", \"peer\": \"x\"",
	       "1");
	series(&w, "keepwatch_idle_before_close_seconds_bucket", "a:9479",
	       "\"direction\": \"outbound\", \"netns\": \"p\", \"port\": \"80\", "
	       "\"closed_by\": \"local\", \"le\": \"0.7\"",
	       "1");
	load(&f, &w);

	assert_int_equal(f.ignored, 4);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.h[0].instance, "a:9479");
	assert_true(f.h[0].uptime == 3600.5);
	assert_int_equal(f.h[0].n, 3);
	assert_int_equal(f.h[0].n_addr, 1);

	u = find(&f.h[0], KW_DIR_OUTBOUND, "10.0.0.2", 80);
	assert_int_equal(u->flags, 0);
	assert_int_equal(u->key.netns, 1);
	assert_string_equal(f.h[0].netns[0], "p");
	assert_int_equal(f.h[0].addr[0].netns, 1);
	assert_int_equal(u->val[KW_F_CONN], 12);
	assert_int_equal(u->val[KW_F_CLOSED_LOCAL_FIN], 12);
	assert_int_equal(u->val[KW_F_RACE_CLIENT], 3);
	for (i = 0; i < kw_hists[KW_H_IDLE_LOCAL].nslots; i++)
		assert_int_equal(u->hist[KW_H_IDLE_LOCAL][i], i == idle_slot(1.1) ? 7 : 0);
	assert_true(u->hist_sum[KW_H_IDLE_LOCAL] == 7.07);
	assert_true(isnan(u->single_idle_sum[KW_BY_LOCAL]));

	u = find(&f.h[0], KW_DIR_INBOUND, "*", 81);
	assert_int_equal(u->flags, KW_UP_FOLDED);
	assert_int_equal(u->folded, 2);
	assert_int_equal(u->val[KW_F_CONN], 7);
	assert_int_equal(u->val[KW_F_RACE_SERVER], 1);
	assert_int_equal(u->hist[KW_H_IDLE_LOCAL][idle_slot(5.5)], 6);

	/* the overflow: all-zero key, sorted first of its direction */
	u = find(&f.h[0], KW_DIR_OUTBOUND, "::", 0);
	assert_true(kw_upstream_is_overflow(u));
	assert_int_equal(u->val[KW_F_CONN], 4);

	assert_int_equal(f.h[1].n, 2);
	u = find(&f.h[1], KW_DIR_INBOUND, "10.0.0.1", 80);
	assert_int_equal(u->hist[KW_H_IDLE_LOCAL][idle_slot(2.1)], 4);
	assert_int_equal(u->hist[KW_H_IDLE_LOCAL][idle_slot(10.5)], 0);
	u = find(&f.h[1], KW_DIR_INBOUND, "10.0.0.9", 80);
	assert_int_equal(u->hist[KW_H_IDLE_LOCAL][idle_slot(10.5)], 9);
	kw_fleet_free(&f);
}

/*
 * A proxy host p (netns "px", 10.0.0.1) with an outbound upstream to 10.0.0.2:80 and one
 * to 10.0.0.3:80 (no scraped host owns it), a backend host b (netns "bk", 10.0.0.2) with
 * inbound upstreams on port 80 from the proxy and from a client, and on port 81 from the
 * proxy. Pool and keep-alive idle closes at pool_le and ka_le (0: none).
 */
static void two_hosts(struct kw_fleet *f, double pool_le, double ka_le, const char *races)
{
	struct answer w = { json_array() };

	address(&w, "p:1", "px", "10.0.0.1");
	upstream(&w, "p:1", "outbound", "px", "80", "10.0.0.2", "20", races);
	upstream(&w, "p:1", "outbound", "px", "80", "10.0.0.3", "20", "0");
	if (pool_le > 0)
		idle_hist(&w, "p:1", "outbound", "px", "80", "10.0.0.2", pool_le, "20", "1");
	address(&w, "b:1", "bk", "10.0.0.2");
	address(&w, "b:1", "bk", "fd00::2");
	upstream(&w, "b:1", "inbound", "bk", "80", "10.0.0.1", "20", races);
	upstream(&w, "b:1", "inbound", "bk", "80", "10.0.0.50", "20", "0");
	upstream(&w, "b:1", "inbound", "bk", "81", "10.0.0.1", "20", "0");
	if (ka_le > 0)
		idle_hist(&w, "b:1", "inbound", "bk", "80", "10.0.0.1", ka_le, "20", "1");
	load(f, &w);
}

static void test_pairs(void **state)
{
	struct kw_fleet_pair *p;
	struct kw_fleet f;
	size_t n;

	(void)state;
	two_hosts(&f, 0, 1.1, "3");
	assert_int_equal(kw_fleet_pairs(&f, &p, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].client_host, 0);
	assert_int_equal(p[0].server_host, 1);
	assert_ptr_equal(&f.h[0].u[p[0].client_u], find(&f.h[0], KW_DIR_OUTBOUND, "10.0.0.2", 80));
	assert_ptr_equal(&f.h[1].u[p[0].server_u], find(&f.h[1], KW_DIR_INBOUND, "10.0.0.1", 80));
	free(p);
	kw_fleet_free(&f);
}

/* The one pair's JSON of two_hosts(pool_le, ka_le, races). */
static json_t *pair_of(double pool_le, double ka_le, const char *races)
{
	struct kw_fleet f;
	json_t *doc, *pair;

	two_hosts(&f, pool_le, ka_le, races);
	doc = kw_fleet_json(&f);
	kw_fleet_free(&f);
	assert_non_null(doc);
	assert_int_equal(json_array_size(json_object_get(doc, "hosts")), 2);
	assert_int_equal(json_array_size(json_object_get(doc, "pairs")), 1);
	pair = json_incref(json_array_get(json_object_get(doc, "pairs"), 0));
	json_decref(doc);
	return pair;
}

static const char *str(const json_t *o, const char *k1, const char *k2)
{
	const json_t *v = json_object_get(o, k1);

	return json_string_value(k2 ? json_object_get(v, k2) : v);
}

static void test_verdicts(void **state)
{
	json_t *p;

	(void)state;
	/* races, the pool never closed idle: the proxy's setting, below the backend's 1 s */
	p = pair_of(0, 1.1, "3");
	assert_string_equal(str(p, "verdict", NULL), "misaligned");
	assert_string_equal(str(p, "change", "instance"), "p:1");
	assert_string_equal(str(p, "change", "role"), "proxy");
	assert_non_null(
		strstr(str(p, "change", "fix"), "below the backend's keep-alive timeout of 1 s"));
	assert_non_null(
		strstr(str(p, "summary", NULL), "(3 races seen at the proxy, 3 at the backend)"));
	assert_true(
		json_is_null(json_object_get(json_object_get(p, "proxy"), "pool_idle_timeout")));
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(json_object_get(p, "backend"),
								   "keepalive_timeout"),
						   "seconds")),
		1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "proxy"), "races")),
			 3);
	assert_string_equal(str(p, "backend", "peer"), "10.0.0.1");
	assert_string_equal(str(p, "backend", "netns"), "bk");
	assert_string_equal(str(p, "proxy", "peer"), "10.0.0.2");
	json_decref(p);

	/* the pool (15 s) outlasts the backend (10 s), no race yet: the backend's setting */
	p = pair_of(15.5, 10.5, "0");
	assert_string_equal(str(p, "verdict", NULL), "misaligned");
	assert_string_equal(str(p, "change", "instance"), "b:1");
	assert_string_equal(str(p, "change", "role"), "backend");
	assert_non_null(strstr(str(p, "change", "fix"),
			       "above the proxy pool's idle timeout of 15 s, e.g. to 20 s"));
	json_decref(p);

	/* the pool (5 s) closes before the backend (10 s): aligned, nothing to change */
	p = pair_of(5.5, 10.5, "0");
	assert_string_equal(str(p, "verdict", NULL), "aligned");
	assert_true(json_is_null(json_object_get(p, "change")));
	json_decref(p);

	/* no idle close on either end */
	p = pair_of(0, 0, "0");
	assert_string_equal(str(p, "verdict", NULL), "unknown");
	json_decref(p);
}

static void test_text(void **state)
{
	struct kw_buf b;
	struct kw_fleet f;
	json_t *doc;

	(void)state;
	two_hosts(&f, 0, 1.1, "3");
	doc = kw_fleet_json(&f);
	kw_fleet_free(&f);
	kw_buf_init(&b);
	assert_int_equal(kw_fleet_text(doc, &b), 0);
	assert_non_null(strstr(b.data, "== host p:1 ==\n"));
	assert_non_null(strstr(b.data, "\n== host b:1 ==\n"));
	assert_non_null(strstr(b.data, "== pairs: proxy outbound <-> backend inbound (1) ==\n"));
	assert_non_null(strstr(b.data, "\np:1 (netns px) to 10.0.0.2:80, served by b:1 (netns bk) "
				       "from 10.0.0.1\n"));
	assert_non_null(strstr(b.data, "  pool idle timeout (proxy):  not seen (no idle close)\n"));
	assert_non_null(strstr(b.data, "  keep-alive (backend):       1 s (high confidence)\n"));
	assert_non_null(strstr(b.data, "  races: 3 at the proxy (client side), 3 at the backend "
				       "(server side)\n"));
	assert_non_null(strstr(b.data, "    change on p:1 (the proxy): set the proxy pool's idle"));
	json_decref(doc);
	kw_buf_free(&b);
}

static void test_bad_answers(void **state)
{
	struct kw_fleet f = { 0 };
	json_t *bad = json_loads("[{\"value\": [1, \"2\"]}]", 0, NULL);
	json_t *obj = json_object(), *empty = json_array(), *doc;
	struct kw_buf b;

	(void)state;
	assert_int_equal(kw_fleet_add(&f, obj), -EPROTO);
	assert_int_equal(kw_fleet_add(&f, bad), -EPROTO);
	assert_int_equal(kw_fleet_add(&f, empty), 0);
	assert_int_equal(kw_fleet_finish(&f), 0);
	assert_int_equal(f.n, 0);
	kw_fleet_free(&f);
	kw_buf_init(&b);
	assert_int_equal(kw_fleet_text(obj, &b), -EPROTO);
	doc = json_loads("{\"hosts\": [{\"instance\": \"x\", \"version\": 2, \"upstreams\": []}],"
			 " \"pairs\": []}",
			 0, NULL);
	assert_int_equal(kw_fleet_text(doc, &b), -EPROTONOSUPPORT);
	kw_buf_free(&b);
	json_decref(doc);
	json_decref(bad);
	json_decref(obj);
	json_decref(empty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records),	    cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_verdicts),    cmocka_unit_test(test_text),
		cmocka_unit_test(test_bad_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
