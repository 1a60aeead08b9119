/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The one checked parser for numbers and addresses given on command lines and in
 * environment variables. Integers are plain decimal digits: no sign, no spaces, no base
 * prefix, nothing after the last digit. All functions return 0 or -errno (-EINVAL for bad
 * syntax, -ERANGE for a value out of [min, max]) and write *out only on success.
 */
#ifndef KW_PARSE_H
#define KW_PARSE_H

#include <stddef.h>
#include <linux/types.h>

int kw_parse_u64(const char *s, __u64 min, __u64 max, __u64 *out);
int kw_parse_u32(const char *s, __u32 min, __u32 max, __u32 *out);
int kw_parse_u16(const char *s, __u16 min, __u16 max, __u16 *out);

/*
 * "host:port", "[v6addr]:port" or ":port" (host "" meaning any address). host is copied
 * without brackets; a bracketless IPv6 address is rejected (-EINVAL) because its last
 * colon is ambiguous. Port in 1..65535 (-ERANGE), -ENAMETOOLONG if host does not fit in
 * hostlen bytes with its NUL.
 */
int kw_parse_hostport(const char *s, char *host, size_t hostlen, __u16 *port);

#endif /* KW_PARSE_H */
