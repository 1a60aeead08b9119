// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Prometheus text exposition 0.0.4, written into a kw_buf. Both C exporters we studied
 * leave label values unescaped; here every label value goes through escape_into(), and
 * the family bookkeeping refuses to split a family, which Prometheus rejects.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent/expo.h"

/* 2^53: every integer up to it is exact in a double */
#define KW_EXPO_EXACT_INT 9007199254740992.0

void kw_expo_init(struct kw_expo *e, struct kw_buf *buf)
{
	memset(e, 0, sizeof(*e));
	e->buf = buf;
}

static int expo_fail(struct kw_expo *e, int err)
{
	if (!e->err)
		e->err = err;
	return e->err;
}

/* The buffer's sticky error becomes the writer's. */
static int expo_done(struct kw_expo *e)
{
	return e->buf->err ? expo_fail(e, e->buf->err) : 0;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; without ':' for label names. */
static int name_ok(const char *s, int colon)
{
	const char *p;

	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (p = s; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (colon && c == ':')))
			return 0;
	}
	return 1;
}

/* Copy s, escaping backslash and newline, and double quotes when quote is set. */
static void escape_into(struct kw_buf *b, const char *s, int quote)
{
	const char *run = s, *p;

	for (p = s; *p; p++) {
		const char *esc;

		if (*p == '\\')
			esc = "\\\\";
		else if (*p == '\n')
			esc = "\\n";
		else if (quote && *p == '"')
			esc = "\\\"";
		else
			continue;
		kw_buf_append(b, run, p - run);
		kw_buf_puts(b, esc);
		run = p + 1;
	}
	kw_buf_append(b, run, p - run);
}

void kw_expo_escape_label(struct kw_buf *b, const char *value)
{
	escape_into(b, value, 1);
}

/*
 * Integral values up to 2^53 as integers, other finite values in the shortest %.*g that
 * reads back to the same double (so 1.1 prints as 1.1, not 1.1000000000000001).
 */
void kw_expo_format_value(double v, char *out, size_t len)
{
	int prec;

	if (isnan(v)) {
		snprintf(out, len, "NaN");
	} else if (isinf(v)) {
		snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
	} else if (v == 0) {
		snprintf(out, len, "0"); /* also -0 */
	} else if (v >= -KW_EXPO_EXACT_INT && v <= KW_EXPO_EXACT_INT && v == (double)(long long)v) {
		/* the range test first: the cast is only defined for values that fit */
		snprintf(out, len, "%.0f", v);
	} else {
		for (prec = 15; prec < 17; prec++) {
			snprintf(out, len, "%.*g", prec, v);
			if (strtod(out, NULL) == v)
				return;
		}
		snprintf(out, len, "%.17g", v);
	}
}

int kw_expo_family(struct kw_expo *e, const char *name, const char *type, const char *help)
{
	unsigned int i;

	if (e->err)
		return e->err;
	if (!name_ok(name, 1))
		return expo_fail(e, -EINVAL);
	if (e->cur && !strcmp(e->cur, name))
		return 0;
	for (i = 0; i < e->nfamilies; i++)
		if (!strcmp(e->families[i], name))
			return expo_fail(e, -EALREADY);
	if (e->nfamilies >= KW_EXPO_MAX_FAMILIES)
		return expo_fail(e, -ENOSPC);
	e->families[e->nfamilies++] = name;
	e->cur = name;

	if (help) {
		kw_buf_printf(e->buf, "# HELP %s ", name);
		escape_into(e->buf, help, 0);
		kw_buf_puts(e->buf, "\n");
	}
	kw_buf_printf(e->buf, "# TYPE %s %s\n", name, type ? type : "untyped");
	return expo_done(e);
}

/* name must be the current family, or the family plus a "_suffix". */
static int in_family(const struct kw_expo *e, const char *name)
{
	size_t n;

	if (!e->cur || !name)
		return 0;
	n = strlen(e->cur);
	return !strncmp(name, e->cur, n) && (name[n] == '\0' || name[n] == '_');
}

static int labels_ok(const struct kw_label *labels, unsigned int nlabels)
{
	unsigned int i;

	if (nlabels && !labels)
		return 0;
	for (i = 0; i < nlabels; i++)
		if (!name_ok(labels[i].name, 0) || !labels[i].value)
			return 0;
	return 1;
}

/*
 * Write "name{labels,le="..."} value\n"; le is an extra label (NULL for none), value the
 * formatted number.
 */
static int write_series(struct kw_expo *e, const char *name, const char *suffix,
			const struct kw_label *labels, unsigned int nlabels, const char *le,
			const char *value)
{
	struct kw_buf *b = e->buf;
	unsigned int i;

	kw_buf_puts(b, name);
	kw_buf_puts(b, suffix);
	if (nlabels || le) {
		kw_buf_puts(b, "{");
		for (i = 0; i < nlabels; i++) {
			kw_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i].name);
			escape_into(b, labels[i].value, 1);
			kw_buf_puts(b, "\"");
		}
		if (le)
			kw_buf_printf(b, "%sle=\"%s\"", nlabels ? "," : "", le);
		kw_buf_puts(b, "}");
	}
	kw_buf_printf(b, " %s\n", value);
	return expo_done(e);
}

static int check_sample(struct kw_expo *e, const char *name, const struct kw_label *labels,
			unsigned int nlabels)
{
	if (e->err)
		return e->err;
	if (!in_family(e, name) || !name_ok(name, 1) || !labels_ok(labels, nlabels))
		return expo_fail(e, -EINVAL);
	return 0;
}

int kw_expo_sample(struct kw_expo *e, const char *name, const struct kw_label *labels,
		   unsigned int nlabels, double value)
{
	char v[64];
	int err;

	err = check_sample(e, name, labels, nlabels);
	if (err)
		return err;
	kw_expo_format_value(value, v, sizeof(v));
	return write_series(e, name, "", labels, nlabels, NULL, v);
}

int kw_expo_u64(struct kw_expo *e, const char *name, const struct kw_label *labels,
		unsigned int nlabels, __u64 value)
{
	char v[32];
	int err;

	err = check_sample(e, name, labels, nlabels);
	if (err)
		return err;
	snprintf(v, sizeof(v), "%llu", (unsigned long long)value);
	return write_series(e, name, "", labels, nlabels, NULL, v);
}
