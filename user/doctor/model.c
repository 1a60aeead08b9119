// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* The model's few functions (see model.h): upstream keys and the TIME_WAIT reuse rule. */
#include <string.h>

#include "doctor/model.h"
#include "lib/addr.h"

int kw_key_cmp(const struct kw_key *a, const struct kw_key *b)
{
	return memcmp(a, b, sizeof(*a));
}

int kw_key_is_overflow(const struct kw_key *k)
{
	static const __u8 zero[16];

	return k->netns == 0 && k->port == 0 && !memcmp(k->addr, zero, sizeof(zero));
}

int kw_upstream_is_overflow(const struct kw_upstream *u)
{
	return !u->flags && kw_key_is_overflow(&u->key);
}

int kw_tw_reuse_applies(__u32 tw_reuse, const __u8 laddr[16], const __u8 raddr[16])
{
	return tw_reuse == 1 ||
	       (tw_reuse == 2 && (kw_addr_is_loopback(laddr) || kw_addr_is_loopback(raddr)));
}
