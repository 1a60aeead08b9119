// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* The table of per-upstream figures declared in fields.h, and the histogram bounds. */
#include <stddef.h>
#include <linux/types.h>
#include "lib/fields.h"
#include "kw_hist.h"

const struct kw_field kw_fields[KW_F_MAX] = {
#define KW_X_ROW(id, f, fam, t, l1, v1, l2, v2, h, d)                                              \
	[KW_F_##id] = { .field = f,                                                                \
			.family = fam,                                                             \
			.type = t,                                                                 \
			.lname = { l1, l2 },                                                       \
			.lvalue = { v1, v2 },                                                      \
			.help = h,                                                                 \
			.desc = d },
	KW_FIELDS(KW_X_ROW)
#undef KW_X_ROW
};

/* The kernel's bounds (kw_hist.h) in the unit exposed: seconds, and requests as they are. */
#define MS_TO_S(v) (v) / 1e3,
#define US_TO_S(v) (v) / 1e6,
static const double idle_bounds[KW_IDLE_SLOTS - 1] = { KW_IDLE_BOUNDS_MS(MS_TO_S) };
static const double reqs_bounds[KW_REQS_SLOTS - 1] = { KW_REQS_BOUNDS(KW_BOUND) };
static const double gap_bounds[KW_GAP_SLOTS - 1] = { KW_GAP_BOUNDS_US(US_TO_S) };
static const double lifetime_bounds[KW_LIFETIME_SLOTS - 1] = { KW_LIFETIME_BOUNDS_MS(MS_TO_S) };
static const double connect_bounds[KW_CONNECT_SLOTS - 1] = { KW_CONNECT_BOUNDS_US(US_TO_S) };
static const double rtt_bounds[KW_RTT_SLOTS - 1] = { KW_RTT_BOUNDS_US(US_TO_S) };

#define REQS_HELP "Requests carried per connection, counted at close, by who closed first."
#define IDLE_HELP                                                                                  \
	"Idle time before a connection closed (since the last data either way), by closer."

const struct kw_hist_desc kw_hists[KW_H_MAX] = {
	[KW_H_IDLE_LOCAL] = { "idle_before_close_local", "keepwatch_idle_before_close_seconds",
			      "closed_by", "local", IDLE_HELP, KW_IDLE_SLOTS, idle_bounds },
	[KW_H_IDLE_PEER] = { "idle_before_close_peer", "keepwatch_idle_before_close_seconds",
			     "closed_by", "peer", IDLE_HELP, KW_IDLE_SLOTS, idle_bounds },
	[KW_H_REQS_LOCAL] = { "requests_per_connection_local", "keepwatch_requests_per_connection",
			      "closed_by", "local", REQS_HELP, KW_REQS_SLOTS, reqs_bounds },
	[KW_H_REQS_PEER] = { "requests_per_connection_peer", "keepwatch_requests_per_connection",
			     "closed_by", "peer", REQS_HELP, KW_REQS_SLOTS, reqs_bounds },
	[KW_H_RACE_IDLE] = { "race_idle_before_close", "keepwatch_race_idle_before_close_seconds",
			     NULL, NULL,
			     "Keep-alive races: how long the connection had been idle when it was "
			     "closed.",
			     KW_IDLE_SLOTS, idle_bounds },
	[KW_H_RACE_GAP] = { "race_gap", "keepwatch_race_gap_seconds", NULL, NULL,
			    "Keep-alive races: time from the close (FIN) to the request that met it "
			    "(server side) or to the reset (client side).",
			    KW_GAP_SLOTS, gap_bounds },
	[KW_H_LIFETIME] = { "connection_lifetime", "keepwatch_connection_lifetime_seconds", NULL,
			    NULL,
			    "Connection lifetime: from established to the first close (FIN or RST, "
			    "either end).",
			    KW_LIFETIME_SLOTS, lifetime_bounds },
	[KW_H_CONNECT] = { "connect_latency", "keepwatch_connect_latency_seconds", NULL, NULL,
			   "Outbound connects: from connect() (SYN_SENT) to established, SYN "
			   "retries included.",
			   KW_CONNECT_SLOTS, connect_bounds },
	[KW_H_RTT] = { "rtt", "keepwatch_rtt_seconds", NULL, NULL,
		       "The kernel's smoothed round-trip time of a connection when it closed.",
		       KW_RTT_SLOTS, rtt_bounds },
};

int kw_field_sparse(unsigned int id)
{
	return (id >= KW_F_RST_SENT_NOT_SPECIFIED && id <= KW_F_RST_RCVD_OTHER) ||
	       (id >= KW_F_CF_EADDRNOTAVAIL && id <= KW_F_CF_OTHER) || id == KW_F_ADOPTED ||
	       id == KW_F_LOST;
}
