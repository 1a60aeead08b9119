// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * JSON documents of the agent's API. Keys of the per-upstream figures are the field
 * table's names (fields.h), histogram buckets are cumulative [le, count] pairs. The
 * small documents are built with jansson; the upstreams document, which grows with the
 * number of upstreams, is written directly (see kw_json_upstreams).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "agent/json.h"
#include "agent/metrics.h"
#include "lib/numfmt.h"

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

int kw_json_error(const char *msg, struct kw_buf *out)
{
	return kw_json_dump(json_pack("{ss}", "error", msg), out);
}

/*
 * GET /api/v1/upstreams is written directly, not built with jansson: at 10k upstreams
 * the tree would hold 1.5 million values, slow to build and large. The text is what jansson
 * wrote for the tree it replaced (json_dumps, JSON_COMPACT, JSON_REAL_PRECISION(12)):
 * the same keys in the same order, reals as kw_fmt_json_real, integers as json_int_t
 * (so a counter past 2^63 still reads as negative, as before), strings escaped as
 * jansson does. One difference: jansson drops a string that is not valid UTF-8 (with its
 * key); here its invalid bytes become U+FFFD.
 */

static char *copy(char *p, const void *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* Raw text of known length. */
static void put(struct kw_buf *b, const char *s, size_t n)
{
	kw_buf_append(b, s, n);
}

/* A string literal (only: sizeof gives its length). */
#define PUT(b, lit) put(b, "" lit, sizeof(lit) - 1)

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned int c = s[0], cp, len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* "s", escaped as jansson does: \" \\ \b \f \n \r \t, other controls as \u00XX. */
static void put_string(struct kw_buf *b, const char *str)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0, len;
	char *p;

	/* every byte takes at most 6 ("\u001F", "\uFFFD" for one invalid byte) */
	if (n > (SIZE_MAX - 2) / 6)
		goto fail;
	p = kw_buf_room(b, 6 * n + 2);
	if (!p)
		return;
	*p++ = '"';
	while (i < n) {
		unsigned char c = s[i];

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			*p++ = c;
			i++;
			continue;
		}
		if (c >= 0x80) {
			len = utf8_seq(s + i, n - i);
			if (len) {
				p = copy(p, s + i, len);
				i += len;
			} else {
				p = copy(p, "\\uFFFD", 6);
				i++;
			}
			continue;
		}
		*p++ = '\\';
		switch (c) {
		case '"':
		case '\\':
			*p++ = c;
			break;
		case '\b':
			*p++ = 'b';
			break;
		case '\f':
			*p++ = 'f';
			break;
		case '\n':
			*p++ = 'n';
			break;
		case '\r':
			*p++ = 'r';
			break;
		case '\t':
			*p++ = 't';
			break;
		default:
			*p++ = 'u';
			*p++ = '0';
			*p++ = '0';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
		i++;
	}
	*p++ = '"';
	kw_buf_commit(b, p);
	return;
fail:
	if (!b->err)
		b->err = -ENOMEM;
}

/* "key": -- keys are the tables' names, which need no escaping (checked by the tests) */
static void put_key(struct kw_buf *b, const char *key)
{
	size_t n = strlen(key);
	char *p = kw_buf_room(b, n + 3);

	if (!p)
		return;
	*p++ = '"';
	p = copy(p, key, n);
	*p++ = '"';
	*p++ = ':';
	kw_buf_commit(b, p);
}

static void put_int(struct kw_buf *b, json_int_t v)
{
	char *p = kw_buf_room(b, KW_NUM_MAX);

	if (p)
		kw_buf_commit(b, p + kw_fmt_i64(p, v));
}

static void put_real(struct kw_buf *b, double v)
{
	char *p = kw_buf_room(b, KW_NUM_MAX);

	if (p)
		kw_buf_commit(b, p + kw_fmt_json_real(p, v));
}

/* An empty histogram is {"sum":0.0,"count":0} without buckets: most of them are. */
static void put_hist(struct kw_buf *b, const struct kw_hist_desc *hd, const __u64 *slots,
		     double sum)
{
	__u64 cum = 0;
	unsigned int i;

	for (i = 0; i < hd->nslots; i++)
		cum += slots[i];
	if (!cum) {
		PUT(b, "{\"sum\":0.0,\"count\":0}");
		return;
	}
	PUT(b, "{\"buckets\":[");
	cum = 0;
	for (i = 0; i < hd->nslots; i++) {
		cum += slots[i];
		if (i)
			PUT(b, ",");
		PUT(b, "[");
		if (i + 1 < hd->nslots)
			put_real(b, hd->bounds[i]);
		else
			PUT(b, "\"+Inf\"");
		PUT(b, ",");
		put_int(b, (json_int_t)cum);
		PUT(b, "]");
	}
	PUT(b, "],\"sum\":");
	put_real(b, sum);
	PUT(b, ",\"count\":");
	put_int(b, (json_int_t)cum);
	PUT(b, "}");
}

static void put_upstream(struct kw_buf *b, const struct kw_upstream *u)
{
	struct kw_upstream_labels l;
	unsigned int i;

	kw_upstream_labels(u, &l);
	PUT(b, "{\"direction\":");
	put_string(b, l.direction);
	PUT(b, ",\"family\":");
	put_string(b, u->key.family == KW_AF_INET6 ? "ipv6" : "ipv4");
	PUT(b, ",\"peer\":");
	put_string(b, l.peer);
	PUT(b, ",\"port\":");
	put_int(b, u->key.port);
	PUT(b, ",\"netns\":");
	put_string(b, l.netns);
	PUT(b, ",\"netns_inode\":");
	put_int(b, u->key.netns);
	for (i = 0; i < KW_F_MAX; i++) {
		PUT(b, ",");
		put_key(b, kw_fields[i].field);
		put_int(b, (json_int_t)u->val[i]);
	}
	PUT(b, ",\"single_use_idle_seconds_sum\":{\"local\":");
	put_real(b, u->single_idle_sum[KW_BY_LOCAL]);
	PUT(b, ",\"peer\":");
	put_real(b, u->single_idle_sum[KW_BY_PEER]);
	PUT(b, "}");
	for (i = 0; i < KW_H_MAX; i++) {
		PUT(b, ",");
		put_key(b, kw_hists[i].field);
		put_hist(b, &kw_hists[i], u->hist[i], u->hist_sum[i]);
	}
	PUT(b, "}");
}

int kw_json_upstreams(const struct kw_snapshot *s, struct kw_buf *out)
{
	size_t i;

	PUT(out, "{\"version\":");
	put_int(out, KW_JSON_VERSION);
	PUT(out, ",\"uptime_seconds\":");
	put_real(out, s->uptime);
	PUT(out, ",\"upstreams\":[");
	for (i = 0; i < s->n; i++) {
		if (i)
			PUT(out, ",");
		put_upstream(out, &s->u[i]);
	}
	PUT(out, "]}\n");
	return out->err;
}
