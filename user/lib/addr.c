// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Formatting and parsing of the 16-byte peer addresses declared in addr.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <stdio.h>
#include "lib/addr.h"
#include "lib/numfmt.h"
#include "lib/parse.h"

static const __u8 v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* a.b.c.d as inet_ntop writes it, without its sprintf: 10k upstreams' labels per scrape */
static size_t format_v4(const __u8 a[4], char *out)
{
	size_t n = 0;
	unsigned int i;

	for (i = 0; i < 4; i++) {
		if (i)
			out[n++] = '.';
		n += kw_fmt_u64(out + n, a[i]);
	}
	return n;
}

int kw_addr_format(const __u8 addr[16], char *out, size_t len)
{
	char tmp[KW_ADDR_STRLEN];
	size_t n;

	if (!memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix))) {
		format_v4(addr + 12, tmp);
	} else {
		if (!inet_ntop(AF_INET6, addr, tmp, sizeof(tmp)))
			return -errno;
	}
	n = strlen(tmp);
	if (n >= len) {
		if (len)
			out[0] = '\0';
		return -ENOSPC;
	}
	memcpy(out, tmp, n + 1);
	return 0;
}

void kw_addr_v4mapped(__u32 be_addr, __u8 out[16])
{
	memcpy(out, v4mapped_prefix, sizeof(v4mapped_prefix));
	memcpy(out + 12, &be_addr, 4);
}

int kw_addr_parse(const char *s, __u8 out[16])
{
	struct in6_addr a6;
	struct in_addr a4;

	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		kw_addr_v4mapped(a4.s_addr, out);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(out, &a6, 16);
		return 0;
	}
	return -EINVAL;
}

int kw_addr_format_endpoint(const __u8 addr[16], __u16 port, char *out, size_t len)
{
	char a[KW_ADDR_STRLEN];
	int n;

	if (kw_addr_format(addr, a, sizeof(a)))
		return -ENOSPC;
	n = snprintf(out, len, strchr(a, ':') ? "[%s]:%u" : "%s:%u", a, port);
	if (n < 0 || (size_t)n >= len) {
		if (len)
			out[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}

int kw_addr_parse_peer(const char *s, __u8 addr[16], __u16 *port)
{
	char host[KW_ADDR_STRLEN];
	__u8 a[16];
	__u16 p = 0;

	if (kw_addr_parse(s, a)) {
		if (!s || kw_parse_hostport(s, host, sizeof(host), &p) || kw_addr_parse(host, a))
			return -EINVAL;
	}
	memcpy(addr, a, 16);
	*port = p;
	return 0;
}

int kw_addr_is_v4mapped(const __u8 addr[16])
{
	return !memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix));
}

int kw_addr_is_loopback(const __u8 addr[16])
{
	static const __u8 v6_loopback[16] = { [15] = 1 };

	if (kw_addr_is_v4mapped(addr))
		return addr[12] == 127;
	return !memcmp(addr, v6_loopback, sizeof(v6_loopback));
}

int kw_addr_is_link_local(const __u8 addr[16])
{
	return !kw_addr_is_v4mapped(addr) && addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80;
}

int kw_addr_from_sockaddr(const struct sockaddr *sa, __u8 out[16])
{
	if (sa->sa_family == AF_INET) {
		kw_addr_v4mapped(((const struct sockaddr_in *)sa)->sin_addr.s_addr, out);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

int kw_addr_is_private(const __u8 addr[16])
{
	static const __u8 v6_loopback[16] = { [15] = 1 };

	if (kw_addr_is_v4mapped(addr)) {
		const __u8 *v = addr + 12;

		return v[0] == 10 || v[0] == 127 || (v[0] == 172 && (v[1] & 0xf0) == 16) ||
		       (v[0] == 192 && v[1] == 168) || (v[0] == 100 && (v[1] & 0xc0) == 64) ||
		       (v[0] == 169 && v[1] == 254);
	}
	return !memcmp(addr, v6_loopback, sizeof(v6_loopback)) || (addr[0] & 0xfe) == 0xfc ||
	       (addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80);
}
