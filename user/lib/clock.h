/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* The one clock of user space: CLOCK_MONOTONIC in seconds, for rates, ages and timeouts. */
#ifndef KW_CLOCK_H
#define KW_CLOCK_H

/* s, CLOCK_MONOTONIC */
double kw_now(void);

#endif /* KW_CLOCK_H */
