// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Text made safe for a terminal: control characters out, everything else as it was. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
