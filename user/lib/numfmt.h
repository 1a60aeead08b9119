/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Numbers as text without printf for the common cases: a scrape of 10k upstreams writes
 * about 700k of them. Every function writes a NUL-terminated string into out, which must
 * hold KW_NUM_MAX bytes, and returns its length.
 */
#ifndef KW_NUMFMT_H
#define KW_NUMFMT_H

#include <stddef.h>
#include <linux/types.h>

#define KW_NUM_MAX 32 /* the longest is a %.17g double: "-1.2345678901234567e-308" */

/* Decimal, as "%llu" and "%lld". */
size_t kw_fmt_u64(char *out, __u64 v);
size_t kw_fmt_i64(char *out, long long v);
/* The length kw_fmt_u64 gives v, without writing it. */
size_t kw_len_u64(__u64 v);

/*
 * A Prometheus sample value: NaN, +Inf, -Inf; integral values up to 2^53 as integers
 * ("0" for -0 too); other values in the shortest of %.15g, %.16g and %.17g that reads
 * back to the same double.
 */
size_t kw_fmt_prom(char *out, double v);

/*
 * A JSON real as jansson writes it with JSON_REAL_PRECISION(12): %.12g, ".0" appended
 * when that looks like an integer, the exponent without '+' and leading zeros ("1e-5").
 * Not for NaN or infinities, which JSON cannot hold (jansson refuses them too): they
 * are written as null.
 */
size_t kw_fmt_json_real(char *out, double v);

#endif /* KW_NUMFMT_H */
