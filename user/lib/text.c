// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Text made safe for a terminal; see text.h. */
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
