// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Number formatting declared in numfmt.h. Integers are written two digits at a time.
 * Doubles take a fast path when they are the nearest double to a short decimal k / 10^d
 * (the histogram sums are ms / 1000 and us / 1e6): %.Pg of such a value prints exactly
 * that decimal, so it is written from k directly; anything else goes through snprintf.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/numfmt.h"

/* 2^53: every integer up to it is exact in a double */
#define EXACT_INT 9007199254740992.0

static const char digit_pairs[201] = "00010203040506070809"
				     "10111213141516171819"
				     "20212223242526272829"
				     "30313233343536373839"
				     "40414243444546474849"
				     "50515253545556575859"
				     "60616263646566676869"
				     "70717273747576777879"
				     "80818283848586878889"
				     "90919293949596979899";

size_t kw_fmt_u64(char *out, __u64 v)
{
	char tmp[20];
	char *p = tmp + sizeof(tmp);
	size_t n;

	while (v >= 100) {
		unsigned int r = v % 100;

		v /= 100;
		p -= 2;
		memcpy(p, digit_pairs + 2 * r, 2);
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, digit_pairs + 2 * v, 2);
	} else {
		*--p = '0' + v;
	}
	n = tmp + sizeof(tmp) - p;
	memcpy(out, p, n);
	out[n] = '\0';
	return n;
}

/* 10^0 .. 10^19, the powers of ten a __u64 holds */
static const __u64 pow10_u64[20] = {
	1ull,
	10ull,
	100ull,
	1000ull,
	10000ull,
	100000ull,
	1000000ull,
	10000000ull,
	100000000ull,
	1000000000ull,
	10000000000ull,
	100000000000ull,
	1000000000000ull,
	10000000000000ull,
	100000000000000ull,
	1000000000000000ull,
	10000000000000000ull,
	100000000000000000ull,
	1000000000000000000ull,
	10000000000000000000ull,
};

size_t kw_len_u64(__u64 v)
{
	/*
	 * x < 2^bits has t or t + 1 digits, t = floor(bits * log10(2)) (1233 / 4096 is
	 * near enough log10(2) for bits up to 64): one comparison tells which. x = v | 1
	 * has the digits of v (no power of ten is odd but 1), and 0 gets its one digit.
	 */
	__u64 x = v | 1;
	unsigned int bits = 64 - __builtin_clzll(x), t = bits * 1233 >> 12;

	return t + 1 - (x < pow10_u64[t]);
}

size_t kw_fmt_i64(char *out, long long v)
{
	if (v >= 0)
		return kw_fmt_u64(out, v);
	out[0] = '-';
	/* -(v + 1) + 1 in unsigned: LLONG_MIN has no positive counterpart */
	return 1 + kw_fmt_u64(out + 1, (__u64)(-(v + 1)) + 1);
}

static const double pow10_tab[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9 };
#define MAX_DECIMALS 9

/*
 * Finds k and d (1 <= d <= 9) with a == k / 10^d rounded to the nearest double and
 * k < limit (limit <= 1e15 < 2^53, so k and the division are exact up to that rounding),
 * for a finite a > 0 that is not an integer. 0 when there is none.
 */
static int short_decimal(double a, double limit, __u64 *k, unsigned int *d)
{
	unsigned int i;

	for (i = 1; i <= MAX_DECIMALS; i++) {
		double scaled = a * pow10_tab[i];
		__u64 kk;

		if (!(scaled < limit - 1))
			return 0;
		kk = (__u64)(scaled + 0.5);
		if ((double)kk / pow10_tab[i] == a) {
			*k = kk;
			*d = i;
			return 1;
		}
	}
	return 0;
}

/*
 * k / 10^d in %g's fixed style (trailing zeros of the fraction dropped), or 0 when %g
 * would use the exponent style for it (an exponent below -4). k / 10^d is not an integer.
 */
static size_t fixed_decimal(char *out, int neg, __u64 k, unsigned int d)
{
	char digits[KW_NUM_MAX];
	size_t nd = kw_fmt_u64(digits, k), n = 0, frac;

	if ((long)nd - 1 - (long)d < -4)
		return 0;
	while (d && digits[nd - 1] == '0') {
		nd--;
		d--;
	}
	if (neg)
		out[n++] = '-';
	if (nd > d) {
		memcpy(out + n, digits, nd - d);
		n += nd - d;
		frac = d;
		out[n++] = '.';
		memcpy(out + n, digits + nd - d, frac);
		n += frac;
	} else {
		out[n++] = '0';
		out[n++] = '.';
		memset(out + n, '0', d - nd);
		n += d - nd;
		memcpy(out + n, digits, nd);
		n += nd;
	}
	out[n] = '\0';
	return n;
}

/* The fast path of both formats: a short decimal with at most `digits` significant ones. */
static size_t short_fixed(char *out, double v, double limit)
{
	unsigned int d;
	__u64 k;

	if (!short_decimal(fabs(v), limit, &k, &d))
		return 0;
	return fixed_decimal(out, v < 0, k, d);
}

/* The shortest %.15g .. %.17g that reads back as v. */
static size_t prom_slow(char *out, double v)
{
	int prec, n = 0;

	for (prec = 15; prec <= 17; prec++) {
		n = snprintf(out, KW_NUM_MAX, "%.*g", prec, v);
		if (prec == 17 || strtod(out, NULL) == v)
			break;
	}
	return n;
}

size_t kw_fmt_prom(char *out, double v)
{
	size_t n;

	if (isnan(v)) {
		memcpy(out, "NaN", 4);
		return 3;
	}
	if (isinf(v)) {
		memcpy(out, v > 0 ? "+Inf" : "-Inf", 5);
		return 4;
	}
	if (v == 0) { /* also -0 */
		memcpy(out, "0", 2);
		return 1;
	}
	/* the range test first: the cast is only defined for values that fit */
	if (v >= -EXACT_INT && v <= EXACT_INT && v == (double)(long long)v)
		return kw_fmt_i64(out, (long long)v);
	n = short_fixed(out, v, 1e15);
	return n ? n : prom_slow(out, v);
}

/* What jansson does after its snprintf: ".0" for integers, exponents as "e-5", "e20". */
static size_t json_slow(char *out, double v)
{
	char *e, *digits;
	int n;

	n = snprintf(out, KW_NUM_MAX - 2, "%.12g", v);
	if (n < 0 || n >= KW_NUM_MAX - 2)
		return 0; /* cannot happen: at most 19 characters */
	if (!strchr(out, '.') && !strchr(out, 'e')) {
		memcpy(out + n, ".0", 3);
		return n + 2;
	}
	e = strchr(out, 'e');
	if (!e)
		return n;
	e++;
	if (*e == '-')
		e++;
	digits = e;
	if (*digits == '+')
		digits++;
	while (*digits == '0' && digits[1])
		digits++;
	memmove(e, digits, strlen(digits) + 1);
	return strlen(out);
}

size_t kw_fmt_json_real(char *out, double v)
{
	size_t n;

	if (!isfinite(v)) {
		memcpy(out, "null", 5);
		return 4;
	}
	if (v == 0) {
		n = signbit(v) ? 5 : 4;
		memcpy(out, signbit(v) ? "-0.0" : "0.0", n);
		return n - 1;
	}
	if (v > -1e12 && v < 1e12 && v == (double)(long long)v) {
		n = kw_fmt_i64(out, (long long)v);
		memcpy(out + n, ".0", 3);
		return n + 2;
	}
	n = short_fixed(out, v, 1e12);
	return n ? n : json_slow(out, v);
}
