// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Checked parsing of numbers and host:port pairs. The integer parser does its own digit
 * loop instead of strtoull, which would accept leading spaces, a sign (wrapping "-1" to
 * 2^64-1) and base prefixes; the narrower parsers are range-limited wrappers around it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "lib/parse.h"

int kw_parse_u64(const char *s, __u64 min, __u64 max, __u64 *out)
{
	__u64 v = 0;
	const char *p;
	int overflow = 0;

	if (!s || !*s)
		return -EINVAL;
	for (p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	for (p = s; *p; p++) {
		unsigned int d = *p - '0';

		if (v > (~0ULL - d) / 10)
			overflow = 1;
		v = v * 10 + d;
	}
	if (overflow || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int kw_parse_u32(const char *s, __u32 min, __u32 max, __u32 *out)
{
	__u64 v;
	int err;

	err = kw_parse_u64(s, min, max, &v);
	if (err)
		return err;
	*out = (__u32)v;
	return 0;
}

int kw_parse_u16(const char *s, __u16 min, __u16 max, __u16 *out)
{
	__u64 v;
	int err;

	err = kw_parse_u64(s, min, max, &v);
	if (err)
		return err;
	*out = (__u16)v;
	return 0;
}

/* Characters allowed in a host name or address, brackets aside. */
static int host_chars_ok(const char *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = h[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != '_' && c != ':' && c != '%')
			return 0;
	}
	return 1;
}

int kw_parse_hostport(const char *s, char *host, size_t hostlen, __u16 *port)
{
	const char *h, *colon;
	size_t hlen;
	__u16 p;
	int err;

	if (!s)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = close - h;
		colon = close + 1;
		/* brackets are for IPv6 literals only */
		if (!hlen || !memchr(h, ':', hlen))
			return -EINVAL;
	} else {
		colon = strchr(s, ':');
		/* no port, or a bracketless IPv6 address */
		if (!colon || strchr(colon + 1, ':'))
			return -EINVAL;
		h = s;
		hlen = colon - s;
	}
	if (!host_chars_ok(h, hlen))
		return -EINVAL;
	err = kw_parse_u16(colon + 1, 1, 65535, &p);
	if (err)
		return err;
	if (hlen >= hostlen)
		return -ENAMETOOLONG;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = p;
	return 0;
}
