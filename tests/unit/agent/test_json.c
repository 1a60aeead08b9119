// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The upstreams document, written directly, is byte for byte what the jansson tree it
 * replaced dumped (the reference below is that code): IPv4, IPv6 and overflow upstreams,
 * empty and full histograms, short-decimal and arbitrary sums, counters past 2^63.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <jansson.h>

#include "lib/addr.h"
#include "agent/json.h"
#include "agent/metrics.h"

static json_t *ref_hist(const struct kw_hist_desc *hd, const __u64 *slots, double sum)
{
	json_t *buckets, *h = json_object();
	__u64 cum = 0;
	unsigned int i;

	for (i = 0; i < hd->nslots; i++)
		cum += slots[i];
	if (!cum) {
		json_object_set_new(h, "sum", json_real(0));
		json_object_set_new(h, "count", json_integer(0));
		return h;
	}
	buckets = json_array();
	cum = 0;
	for (i = 0; i < hd->nslots; i++) {
		cum += slots[i];
		json_array_append_new(buckets,
				      json_pack("[oI]",
						i + 1 < hd->nslots ? json_real(hd->bounds[i]) :
								     json_string("+Inf"),
						(json_int_t)cum));
	}
	json_object_set_new(h, "buckets", buckets);
	json_object_set_new(h, "sum", json_real(sum));
	json_object_set_new(h, "count", json_integer(cum));
	return h;
}

static json_t *ref_upstream(const struct kw_upstream *u)
{
	struct kw_upstream_labels l;
	json_t *o = json_object();
	unsigned int i;

	kw_upstream_labels(u, &l);
	json_object_set_new(o, "direction", json_string(l.direction));
	json_object_set_new(o, "family",
			    json_string(u->key.family == KW_AF_INET6 ? "ipv6" : "ipv4"));
	json_object_set_new(o, "peer", json_string(l.peer));
	json_object_set_new(o, "port", json_integer(u->key.port));
	json_object_set_new(o, "netns", json_string(l.netns));
	json_object_set_new(o, "netns_inode", json_integer(u->key.netns));
	for (i = 0; i < KW_F_MAX; i++)
		json_object_set_new(o, kw_fields[i].field, json_integer(u->val[i]));
	json_object_set_new(o, "single_use_idle_seconds_sum",
			    json_pack("{sfsf}", "local", u->single_idle_sum[KW_BY_LOCAL], "peer",
				      u->single_idle_sum[KW_BY_PEER]));
	for (i = 0; i < KW_H_MAX; i++)
		json_object_set_new(o, kw_hists[i].field,
				    ref_hist(&kw_hists[i], u->hist[i], u->hist_sum[i]));
	return o;
}

static int ref_upstreams(const struct kw_snapshot *s, struct kw_buf *out)
{
	json_t *doc = json_object(), *arr = json_array();
	size_t i;

	for (i = 0; i < s->n; i++)
		json_array_append_new(arr, ref_upstream(&s->u[i]));
	json_object_set_new(doc, "version", json_integer(KW_JSON_VERSION));
	json_object_set_new(doc, "uptime_seconds", json_real(s->uptime));
	json_object_set_new(doc, "upstreams", arr);
	return kw_json_dump(doc, out);
}

#define N 6

static void fill(struct kw_upstream *u, unsigned int i)
{
	unsigned int h, k;

	memset(u, 0, sizeof(*u));
	if (i == 0) /* the overflow upstream: all zero */
		return;
	u->key.direction = i % 2 ? KW_DIR_INBOUND : KW_DIR_OUTBOUND;
	u->key.port = 8000 + i;
	u->key.netns = 4026531000u + i;
	if (i == 3) {
		u->key.family = KW_AF_INET6;
		inet_pton(AF_INET6, "fd00::1:2", u->key.addr);
	} else {
		u->key.family = KW_AF_INET;
		kw_addr_v4mapped(htonl(0x0a000000u + i), u->key.addr);
	}
	for (k = 0; k < KW_F_MAX; k++)
		u->val[k] = i == 4 ? UINT64_MAX - k : (__u64)k * i * 1000003u;
	for (h = 0; h < KW_H_MAX; h++) {
		if ((h + i) % 3 == 0)
			continue; /* empty */
		for (k = 0; k < kw_hists[h].nslots; k++)
			u->hist[h][k] = (k * 7 + i) % 5;
		u->hist_sum[h] = i == 5 ? 1.0 / (h + 3) : (double)(h * 1000 + i * 37) / 1000.0;
	}
	u->single_idle_sum[KW_BY_LOCAL] = i * 0.125;
	u->single_idle_sum[KW_BY_PEER] = i == 2 ? 1e13 : 1.0 / 3;
}

static void test_same_as_jansson(void **state)
{
	struct kw_upstream u[N];
	struct kw_snapshot s = { .u = u, .n = N, .uptime = 1234.5 };
	struct kw_buf got, want;
	unsigned int i;

	(void)state;
	for (i = 0; i < N; i++)
		fill(&u[i], i);
	kw_buf_init(&got);
	kw_buf_init(&want);
	assert_int_equal(kw_json_upstreams(&s, &got), 0);
	assert_int_equal(ref_upstreams(&s, &want), 0);
	assert_int_equal(got.len, want.len);
	assert_string_equal(got.data, want.data);

	/* and with no upstreams at all */
	s.n = 0;
	s.uptime = 0.001;
	kw_buf_reset(&got);
	kw_buf_reset(&want);
	assert_int_equal(kw_json_upstreams(&s, &got), 0);
	assert_int_equal(ref_upstreams(&s, &want), 0);
	assert_string_equal(got.data, want.data);
	kw_buf_free(&got);
	kw_buf_free(&want);
}

/* Keys are written unescaped: the tables' names must need no escaping. */
static void test_keys_plain(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < KW_F_MAX; i++)
		assert_int_equal(strcspn(kw_fields[i].field, "\"\\"), strlen(kw_fields[i].field));
	for (i = 0; i < KW_H_MAX; i++)
		assert_int_equal(strcspn(kw_hists[i].field, "\"\\"), strlen(kw_hists[i].field));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_as_jansson),
		cmocka_unit_test(test_keys_plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
