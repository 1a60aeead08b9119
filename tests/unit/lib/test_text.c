// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Text made safe for a terminal: control characters out, everything else as it was. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "lib/text.h"

static void check(const char *in, int keep_newlines, const char *want)
{
	char buf[128];

	strcpy(buf, in);
	assert_string_equal(kw_text_safe(buf, keep_newlines), want);
}

static void test_controls(void **state)
{
	(void)state;
	check("10.0.0.1:80 blue", 0, "10.0.0.1:80 blue");
	check("\x1b[2J\x1b]0;pwned\x07ns", 0, "?[2J?]0;pwned?ns");
	check("a\rb\tc\x7f", 0, "a?b?c?");
	check("line\nnext", 0, "line?next");
	check("line\nnext\r\n", 1, "line\nnext?\n");
	/* C1 controls in UTF-8 (CSI U+009B), and printable UTF-8 kept */
	check("\xc2\x9b"
	      "31m",
	      0, "??31m");
	check("caf\xc3\xa9 \xc2\xa0x", 0, "caf\xc3\xa9 \xc2\xa0x");
	/* a lone lead byte at the end is left as it is */
	check("x\xc2", 0, "x\xc2");
	check("", 0, "");
}

/* name as a label, and its length */
static void check_name(const char *name, const char *want)
{
	char out[128];
	int n = kw_text_escape_name(name, out, sizeof(out));

	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
}

static void test_escape_name(void **state)
{
	(void)state;
	check_name("", "");
	check_name("blue-1", "blue-1");
	/* valid UTF-8 of every length kept: U+00E9, U+20AC, U+1F600, U+10FFFF */
	check_name("caf\xc3\xa9", "caf\xc3\xa9");
	check_name("\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf",
		   "\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf");
	/* an invalid byte alone, at the start, the middle and the end */
	check_name("\xff", "\\xff");
	check_name("a\xff"
		   "b",
		   "a\\xffb");
	check_name("ab\x80", "ab\\x80");
	/* a lead byte cut short by the end, or by a byte that continues nothing */
	check_name("x\xc3", "x\\xc3");
	check_name("\xe2\x82z", "\\xe2\\x82z");
	check_name("\xf0\x9f\x98", "\\xf0\\x9f\\x98");
	/* overlong forms: C0 AF ('/'), E0 80 AF, F0 80 80 AF */
	check_name("\xc0\xaf", "\\xc0\\xaf");
	check_name("\xc1\xbf", "\\xc1\\xbf");
	check_name("\xe0\x80\xaf", "\\xe0\\x80\\xaf");
	check_name("\xe0\x9f\xbf", "\\xe0\\x9f\\xbf");
	check_name("\xe0\xa0\x80", "\xe0\xa0\x80"); /* U+0800, the first of three bytes */
	check_name("\xf0\x8f\xbf\xbf", "\\xf0\\x8f\\xbf\\xbf");
	/* surrogates U+D800 and U+DFFF; U+D7FF and U+E000 beside them are fine */
	check_name("\xed\xa0\x80", "\\xed\\xa0\\x80");
	check_name("\xed\xbf\xbf", "\\xed\\xbf\\xbf");
	check_name("\xed\x9f\xbf\xee\x80\x80", "\xed\x9f\xbf\xee\x80\x80");
	/* past U+10FFFF: F4 90 80 80, and lead bytes F5 to FF */
	check_name("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
	check_name("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80");
	/* control characters: C0, DEL, C1 (U+0080, U+009F); U+00A0 kept */
	check_name("a\x1b[2J\x7f", "a\\x1b[2J\\x7f");
	check_name("\n\t", "\\x0a\\x09");
	check_name("\xc2\x80\xc2\x9f\xc2\xa0", "\\xc2\\x80\\xc2\\x9f\xc2\xa0");
	/* the backslash itself, so that no name reads as another's escape */
	check_name("\\xff", "\\x5cxff");
}

static void test_escape_name_room(void **state)
{
	char out[8];

	(void)state;
	/* 7 bytes and the NUL fit exactly; one more does not */
	assert_int_equal(kw_text_escape_name("1234567", out, sizeof(out)), 7);
	assert_string_equal(out, "1234567");
	assert_int_equal(kw_text_escape_name("12345678", out, sizeof(out)), -ENOSPC);
	assert_string_equal(out, "");
	/* an escape fits whole or not at all: "abc\xff" is 7 */
	assert_int_equal(kw_text_escape_name("abc\xff", out, sizeof(out)), 7);
	assert_string_equal(out, "abc\\xff");
	assert_int_equal(kw_text_escape_name("abcd\xff", out, sizeof(out)), -ENOSPC);
	assert_string_equal(out, "");
	/* a character of several bytes likewise */
	assert_int_equal(kw_text_escape_name("abcdef\xc3\xa9", out, sizeof(out)), -ENOSPC);
	assert_int_equal(kw_text_escape_name("abcde\xc3\xa9", out, sizeof(out)), 7);
	/* no room at all: nothing written */
	out[0] = 'z';
	assert_int_equal(kw_text_escape_name("a", out, 0), -ENOSPC);
	assert_int_equal(out[0], 'z');
	assert_int_equal(kw_text_escape_name("", out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(kw_text_escape_name("a", out, 1), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_escape_name),
		cmocka_unit_test(test_escape_name_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
