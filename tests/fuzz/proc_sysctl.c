// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The files the census reads under /proc/sys/net/ipv4 in each namespace
 * (ip_local_port_range, ip_local_reserved_ports, tcp_tw_reuse; user/agent/census.c):
 * whatever they hold, the parsers refuse it or return values in range.
 */
#include <errno.h>
#include "fuzz.h"
#include "agent/census.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static __u8 bitmap[65536 / 8];
	char *s = fuzz_cstr(data, size);
	__u32 lo, hi, v;
	int err;

	err = kw_census_parse_port_range(s, &lo, &hi);
	FUZZ_CHECK(err == 0 || err == -EINVAL || err == -ERANGE);
	if (!err)
		FUZZ_CHECK(lo >= 1 && lo <= hi && hi <= 65535);
	err = kw_census_parse_reserved(s, bitmap);
	FUZZ_CHECK(err == 0 || err == -EINVAL || err == -ERANGE);
	if (!err && (!*s || !strcmp(s, "\n")))
		FUZZ_CHECK(!bitmap[0] && !memcmp(bitmap, bitmap + 1, sizeof(bitmap) - 1));
	err = kw_census_parse_tw_reuse(s, &v);
	FUZZ_CHECK(err == 0 || err == -EINVAL || err == -ERANGE);
	if (!err)
		FUZZ_CHECK(v <= 2);
	free(s);
	return 0;
}
