// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Numbers, host:port pairs and peers as given on command lines and in queries
 * (user/lib/parse.c, user/lib/addr.c). Besides crashes and undefined behaviour it checks
 * that what is accepted is what was written: a number equals its digits read by strtoull,
 * a peer formatted and parsed again is the same address and port.
 */
#include <errno.h>
#include "fuzz.h"
#include "lib/addr.h"
#include "lib/parse.h"

static void numbers(const char *s)
{
	unsigned long long want;
	__u64 v;
	__u32 v32;
	__u16 v16;
	char *end;

	if (!kw_parse_u64(s, 0, ~0ULL, &v)) {
		FUZZ_CHECK(*s >= '0' && *s <= '9');
		errno = 0;
		want = strtoull(s, &end, 10);
		FUZZ_CHECK(!*end && !errno && want == v);
	}
	if (!kw_parse_u32(s, 1, 65536, &v32))
		FUZZ_CHECK(v32 >= 1 && v32 <= 65536);
	if (!kw_parse_u16(s, 7, 9, &v16))
		FUZZ_CHECK(v16 >= 7 && v16 <= 9);
}

static void hostport(const char *s)
{
	char host[16];
	__u16 port;

	if (!kw_parse_hostport(s, host, sizeof(host), &port)) {
		FUZZ_CHECK(port >= 1 && strlen(host) < sizeof(host));
		FUZZ_CHECK(!strchr(host, '[') && !strchr(host, ']'));
	}
}

static void peer(const char *s)
{
	char text[KW_ENDPOINT_STRLEN];
	__u8 a[16], b[16];
	__u16 port, port2;

	if (kw_addr_parse_peer(s, a, &port))
		return;
	if (port)
		FUZZ_CHECK(!kw_addr_format_endpoint(a, port, text, sizeof(text)));
	else
		FUZZ_CHECK(!kw_addr_format(a, text, sizeof(text)));
	FUZZ_CHECK(!kw_addr_parse_peer(text, b, &port2));
	FUZZ_CHECK(!memcmp(a, b, 16) && port == port2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);

	numbers(s);
	hostport(s);
	peer(s);
	free(s);
	return 0;
}
