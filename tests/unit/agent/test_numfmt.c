// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Number formatting: integers (and their length alone) at their digit-count edges and
 * limits; Prometheus values against the printf-and-strtod algorithm they replace, and JSON
 * reals against what jansson itself writes, over edge values, short decimals (the fast
 * path) and random doubles.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "agent/expo.h"
#include "lib/numfmt.h"

static void test_u64(void **state)
{
	static const struct {
		__u64 v;
		const char *s;
	} cases[] = {
		{ 0, "0" },
		{ 9, "9" },
		{ 10, "10" },
		{ 99, "99" },
		{ 100, "100" },
		{ 101, "101" },
		{ 999, "999" },
		{ 1000, "1000" },
		{ 4294967295u, "4294967295" },
		{ 4294967296u, "4294967296" },
		{ 9999999999999999999ull, "9999999999999999999" },
		{ 10000000000000000000ull, "10000000000000000000" },
		{ UINT64_MAX, "18446744073709551615" },
	};
	char out[KW_NUM_MAX];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(kw_fmt_u64(out, cases[i].v), strlen(cases[i].s));
		assert_string_equal(out, cases[i].s);
	}
}

/* The length without writing: at every power of ten and of two, and their neighbours. */
static void test_len_u64(void **state)
{
	char want[KW_NUM_MAX];
	__u64 p, v;
	int d, i;

	(void)state;
	for (i = 0; i < 64; i++) {
		for (d = -1; d <= 1; d++) {
			v = (1ull << i) + d;
			snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
			assert_int_equal(kw_len_u64(v), strlen(want));
		}
	}
	for (p = 1, i = 0; i < 20; i++, p *= 10) {
		for (d = -1; d <= 1; d++) {
			v = p + d;
			snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
			assert_int_equal(kw_len_u64(v), strlen(want));
		}
	}
	assert_int_equal(kw_len_u64(0), 1);
	assert_int_equal(kw_len_u64(UINT64_MAX), 20);
}

static void test_i64(void **state)
{
	static const long long cases[] = { 0, 1, -1, 9, -10, 12345, -99999, LLONG_MAX, LLONG_MIN };
	char out[KW_NUM_MAX], want[KW_NUM_MAX];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(want, sizeof(want), "%lld", cases[i]);
		assert_int_equal(kw_fmt_i64(out, cases[i]), strlen(want));
		assert_string_equal(out, want);
	}
}

static void json_reference(double v, char *out, size_t len)
{
	json_t *j = json_real(v);
	char *s;

	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));
	assert_non_null(s);
	snprintf(out, len, "%s", s);
	free(s);
	json_decref(j);
}

static unsigned int checked;

static void check(double v)
{
	char got[KW_NUM_MAX], want[64];
	size_t n;

	kw_expo_format_value(v, want, sizeof(want)); /* the printf algorithm it replaces */
	n = kw_fmt_prom(got, v);
	if (strcmp(got, want) || n != strlen(want))
		fail_msg("prom %.17g: got '%s' (%zu), want '%s'", v, got, n, want);
	if (isfinite(v)) {
		json_reference(v, want, sizeof(want));
		n = kw_fmt_json_real(got, v);
		if (strcmp(got, want) || n != strlen(want))
			fail_msg("json %.17g: got '%s' (%zu), want '%s'", v, got, n, want);
	}
	checked++;
}

static void check_both_signs(double v)
{
	check(v);
	check(-v);
}

static void test_edges(void **state)
{
	static const double cases[] = {
		0.0,
		1,
		0.5,
		0.1,
		0.001,
		0.0001,
		0.00015,
		0.00001,
		0.000015,
		1e-9,
		1.5e-9,
		1e-10,
		123.456,
		1.1,
		2.675,
		1.0 / 3,
		2.0 / 3,
		999999999999.0,
		999999999999.5,
		1e12,
		1e12 + 0.5,
		99999999999.9,
		999999999999999.0,
		99999999999999.9,
		999999999999999.9,
		1e15,
		1e15 + 0.5,
		9007199254740991.0,
		9007199254740992.0,
		9007199254740994.0,
		1e16,
		1e17,
		1e20,
		1e21,
		1e300,
		DBL_MAX,
		DBL_MIN,
		DBL_TRUE_MIN,
		DBL_EPSILON,
		4503599627370495.5,
		0.30000000000000004,
		300.5,
		59.999,
		18446744073709551615.0,
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_both_signs(cases[i]);
	check(NAN);
	check(INFINITY);
	check(-INFINITY);
}

static __u64 rng = 0x9e3779b97f4a7c15ull;

static __u64 next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* k / 10^d, as the histogram sums are (ms / 1000, us / 1e6), across every magnitude. */
static void test_short_decimals(void **state)
{
	unsigned int d, i, digits;

	(void)state;
	for (d = 0; d <= 12; d++) {
		double scale = 1;

		for (i = 0; i < d; i++)
			scale *= 10; /* exact up to 1e22 */
		for (digits = 1; digits <= 18; digits++) {
			__u64 mod = 1;

			for (i = 0; i < digits; i++)
				mod *= 10;
			for (i = 0; i < 200; i++)
				check_both_signs((double)(next() % mod) / scale);
		}
	}
	for (i = 0; i < 100000; i++)
		check((double)(next() % 400000000) / 1000.0);
}

static void test_random_doubles(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < 100000; i++) {
		__u64 bits = next();
		double v;

		memcpy(&v, &bits, sizeof(v));
		if (isfinite(v))
			check(v);
	}
	/* and a denser look at ordinary magnitudes */
	for (i = 0; i < 100000; i++)
		check_both_signs((double)(next() >> 11) / (double)(1ull << (next() % 64)));
}

static void test_json_not_finite(void **state)
{
	char out[KW_NUM_MAX];

	(void)state;
	assert_int_equal(kw_fmt_json_real(out, NAN), 4);
	assert_string_equal(out, "null");
	assert_int_equal(kw_fmt_json_real(out, -INFINITY), 4);
	assert_string_equal(out, "null");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_len_u64),
		cmocka_unit_test(test_i64),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_short_decimals),
		cmocka_unit_test(test_random_doubles),
		cmocka_unit_test(test_json_not_finite),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	printf("numfmt: %u values compared\n", checked);
	return failed;
}
