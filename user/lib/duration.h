/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Durations for people to read, shared by the agent's doctor and the CLI. */
#ifndef KW_DURATION_H
#define KW_DURATION_H

#include <stddef.h>

/*
 * Whole seconds as the two largest units: "42s", "5m07s", "3h12m", "2d04h"; negative, NaN
 * and infinite values as "0s".
 */
void kw_format_duration(double seconds, char *out, size_t len);

#endif /* KW_DURATION_H */
