/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Peer addresses as the BPF side stores them: 16 bytes in network order, IPv4 as
 * v4-mapped ::ffff:a.b.c.d. Formatting prints v4-mapped addresses as dotted quads and
 * everything else as IPv6 text.
 */
#ifndef KW_ADDR_H
#define KW_ADDR_H

#include <stddef.h>
#include <linux/types.h>

/* Longest text kw_addr_format writes, with the NUL (INET6_ADDRSTRLEN). */
#define KW_ADDR_STRLEN 46

/* 0, or -ENOSPC if out cannot hold the text and its NUL (out is then "" if len > 0). */
int kw_addr_format(const __u8 addr[16], char *out, size_t len);

/* be_addr is an IPv4 address in network order, as in struct in_addr. */
void kw_addr_v4mapped(__u32 be_addr, __u8 out[16]);

/* A dotted quad (stored v4-mapped) or IPv6 text (stored as is); -EINVAL otherwise. */
int kw_addr_parse(const char *s, __u8 out[16]);

/* Longest text kw_addr_format_endpoint writes, with the NUL: "[v6addr]:65535". */
#define KW_ENDPOINT_STRLEN (KW_ADDR_STRLEN + 8)

/* "10.0.0.2:80", "[fd77::2]:80"; 0 or -ENOSPC (out is then "" if len > 0). */
int kw_addr_format_endpoint(const __u8 addr[16], __u16 port, char *out, size_t len);

/*
 * "ADDR", "ADDR:PORT" or "[V6ADDR]:PORT" (a peer given on a command line or in a query):
 * *port is 0 when none is given. 0, or -EINVAL (nothing written).
 */
int kw_addr_parse_peer(const char *s, __u8 addr[16], __u16 *port);

/* Whether addr is v4-mapped (::ffff:a.b.c.d), as every IPv4 address is stored. */
int kw_addr_is_v4mapped(const __u8 addr[16]);
/* 127.0.0.0/8 (v4-mapped) or ::1, as the kernel's loopback tests (tcp_tw_reuse=2). */
int kw_addr_is_loopback(const __u8 addr[16]);
/* fe80::/10: an IPv6 link-local address, which means nothing off its link. */
int kw_addr_is_link_local(const __u8 addr[16]);
/* An AF_INET or AF_INET6 sockaddr's address as keepwatch stores it; -EAFNOSUPPORT else. */
struct sockaddr;
int kw_addr_from_sockaddr(const struct sockaddr *sa, __u8 out[16]);
/*
 * A private, loopback or link-local address: 10/8, 172.16/12, 192.168/16, 100.64/10,
 * 127/8, 169.254/16, ::1, fc00::/7, fe80::/10.
 */
int kw_addr_is_private(const __u8 addr[16]);

#endif /* KW_ADDR_H */
