// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Names read from the system as labels (kw_text_escape_name, used where the agent reads
 * /var/run/netns): the label is valid UTF-8 (jansson takes it as a JSON string), holds no
 * control character, fits its buffer, and gives back the name when its escapes are read
 * (so two names never share a label). Also the terminal filter the CLI runs on the
 * agent's texts (kw_text_safe): no control character left, the length kept.
 */
#include <errno.h>
#include <jansson.h>
#include "fuzz.h"
#include "lib/text.h"

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The name back from its label: "\xNN" is the byte NN; 0, or -1 on a malformed escape. */
static int unescape(const char *label, char *out)
{
	while (*label) {
		if (*label != '\\') {
			*out++ = *label++;
			continue;
		}
		if (label[1] != 'x' || hexval(label[2]) < 0 || hexval(label[3]) < 0)
			return -1;
		*out++ = (char)(hexval(label[2]) << 4 | hexval(label[3]));
		label += 4;
	}
	*out = '\0';
	return 0;
}

/* No C0 control (but newlines where kept) nor DEL; with c1_too, no C1 either. */
static void no_controls(const unsigned char *p, int c1_too, int newlines)
{
	for (; *p; p++) {
		FUZZ_CHECK((*p >= 0x20 || (newlines && *p == '\n')) && *p != 0x7f);
		if (c1_too)
			FUZZ_CHECK(!(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f));
	}
}

static void label(const char *name, size_t room)
{
	char *out = malloc(room ? room : 1), *back;
	json_t *js;
	int n;

	if (!out)
		abort();
	n = kw_text_escape_name(name, out, room);
	if (n < 0) {
		FUZZ_CHECK(n == -ENOSPC && (!room || !out[0]));
		free(out);
		return;
	}
	FUZZ_CHECK((size_t)n == strlen(out) && (size_t)n < room);
	js = json_stringn(out, n); /* NULL for invalid UTF-8 */
	FUZZ_CHECK(js);
	json_decref(js);
	no_controls((const unsigned char *)out, 1, 0);
	back = malloc(n + 1);
	if (!back)
		abort();
	FUZZ_CHECK(!unescape(out, back) && !strcmp(back, name));
	free(back);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	size_t len = strlen(s);

	label(s, 4 * len + 1); /* room for every byte escaped */
	label(s, 64);	       /* KW_NETNS_NAMELEN */
	label(s, len / 2);
	kw_text_safe(s, size & 1);
	FUZZ_CHECK(strlen(s) == len);
	no_controls((const unsigned char *)s, 1, size & 1);
	free(s);
	return 0;
}
