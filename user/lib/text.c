// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Text made safe for a terminal, names made valid labels; see text.h. */
#include <errno.h>
#include "lib/text.h"

char *kw_text_safe(char *s, int keep_newlines)
{
	unsigned char *p = (unsigned char *)s;

	for (; *p; p++) {
		if ((*p < 0x20 && !(keep_newlines && *p == '\n')) || *p == 0x7f)
			*p = '?';
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			p[0] = p[1] = '?'; /* U+0080..U+009F, e.g. CSI U+009B */
	}
	return s;
}

/*
 * The length of the valid UTF-8 character at p (1 to 4), or 0 if the bytes there are not
 * one: a stray continuation byte, a lead byte without its continuations, an overlong form
 * (C0, C1, E0 80..9F, F0 80..8F), a surrogate (ED A0..BF) or a code point past U+10FFFF
 * (F4 90.., F5..FF). The NUL that ends the string is no continuation byte, so a
 * character cut by it is not read past.
 */
static unsigned int utf8_char(const unsigned char *p)
{
	unsigned int n, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Whether the character of n bytes at p is written as escapes: controls and '\\'. */
static int needs_escape(const unsigned char *p, unsigned int n)
{
	if (n == 1)
		return p[0] < 0x20 || p[0] == 0x7f || p[0] == '\\';
	return n == 2 && p[0] == 0xc2 && p[1] <= 0x9f; /* C1: U+0080..U+009F */
}

int kw_text_escape_name(const char *name, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)name;
	size_t o = 0;
	unsigned int n, i;

	while (*p) {
		n = utf8_char(p);
		if (n && !needs_escape(p, n)) {
			if (o + n >= len)
				goto nospc;
			for (i = 0; i < n; i++)
				out[o++] = p[i];
			p += n;
			continue;
		}
		/* the invalid byte alone, or each byte of a control character */
		for (i = 0; i < (n ? n : 1); i++) {
			if (o + 4 >= len)
				goto nospc;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 0xf];
		}
		p += n ? n : 1;
	}
	if (o >= len)
		goto nospc;
	out[o] = '\0';
	return (int)o;
nospc:
	if (len)
		out[0] = '\0';
	return -ENOSPC;
}
