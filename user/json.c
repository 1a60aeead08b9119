// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * JSON documents of the agent's API. Keys of the per-upstream figures are the field
 * table's names (fields.h), histogram buckets are cumulative [le, count] pairs.
 */
#include <errno.h>
#include <stdlib.h>
#include <jansson.h>

#include "json.h"
#include "metrics.h"

/* An empty histogram is {"count": 0, "sum": 0} without buckets: most of them are. */
static json_t *hist_json(const struct kw_hist_desc *hd, const __u64 *slots, double sum)
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

static json_t *upstream_json(const struct kw_upstream *u)
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
				    hist_json(&kw_hists[i], u->hist[i], u->hist_sum[i]));
	return o;
}

int kw_json_dump(json_t *doc, struct kw_buf *out)
{
	char *text;
	int err;

	if (!doc)
		return -ENOMEM;
	text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	err = kw_buf_puts(out, text);
	if (!err)
		err = kw_buf_puts(out, "\n");
	free(text);
	return err;
}

int kw_json_upstreams(const struct kw_snapshot *s, struct kw_buf *out)
{
	json_t *doc = json_object(), *arr = json_array();
	size_t i;

	for (i = 0; i < s->n; i++)
		json_array_append_new(arr, upstream_json(&s->u[i]));
	json_object_set_new(doc, "version", json_integer(KW_JSON_VERSION));
	json_object_set_new(doc, "uptime_seconds", json_real(s->uptime));
	json_object_set_new(doc, "upstreams", arr);
	return kw_json_dump(doc, out);
}

int kw_json_error(const char *msg, struct kw_buf *out)
{
	return kw_json_dump(json_pack("{ss}", "error", msg), out);
}
