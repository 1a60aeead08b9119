/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * A writer of the Prometheus text exposition format 0.0.4 into a kw_buf. It keeps the
 * format's rules so callers cannot break them: HELP and TYPE once per family, the series
 * of a family grouped after them (restarting a family that was left fails with
 * -EALREADY), escaped HELP text and label values. (Histograms, cumulative with +Inf
 * equal to _count, are written by metrics.c straight into its pages.)
 *
 * The writer keeps pointers to the family names it was given (compared with strcmp), so
 * those strings must outlive it; string literals and the kw_fields table do. The first
 * error is sticky in e->err: every later call returns it and writes nothing, so a caller
 * may write a whole page and check once.
 */
#ifndef KW_EXPO_H
#define KW_EXPO_H

#include <linux/types.h>
#include "lib/buf.h"

#define KW_EXPO_MAX_FAMILIES 256

struct kw_label {
	const char *name;
	const char *value;
};

struct kw_expo {
	struct kw_buf *buf;
	const char *families[KW_EXPO_MAX_FAMILIES]; /* families started so far */
	unsigned int nfamilies;
	const char *cur; /* the family being written, NULL before the first */
	int err;	 /* first error, sticky */
};

void kw_expo_init(struct kw_expo *e, struct kw_buf *buf);

/*
 * Start (or stay in) family name: writes "# HELP" (skipped when help is NULL) and
 * "# TYPE" unless name is the current family. -EALREADY if the family was started
 * before and left, -EINVAL for an invalid metric name, -ENOSPC past
 * KW_EXPO_MAX_FAMILIES families.
 */
int kw_expo_family(struct kw_expo *e, const char *name, const char *type, const char *help);

/*
 * One sample "name{a="x",b="y"} value". name must be the current family or the family
 * followed by a suffix starting with '_' (x_bucket, x_sum, x_count); -EINVAL otherwise,
 * or for an invalid label name or a NULL label value. Integral values up to 2^53 print
 * as integers, other finite values in the shortest form that reads back exactly (at
 * most %.17g), the rest as +Inf, -Inf and NaN.
 */
int kw_expo_sample(struct kw_expo *e, const char *name, const struct kw_label *labels,
		   unsigned int nlabels, double value);

/* Same as kw_expo_sample with an exact unsigned 64-bit value. */
int kw_expo_u64(struct kw_expo *e, const char *name, const struct kw_label *labels,
		unsigned int nlabels, __u64 value);

/*
 * For writers of many series with the same labels (metrics.c): escape a label value once
 * (backslash, double quote, newline), and format a value as the writer does. Samples
 * written straight into the buffer this way must still follow kw_expo_family().
 */
void kw_expo_escape_label(struct kw_buf *b, const char *value);
void kw_expo_format_value(double v, char *out, size_t len);

#endif /* KW_EXPO_H */
