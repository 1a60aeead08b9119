// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* The monotonic clock in seconds; see clock.h. */
#include <time.h>

#include "lib/clock.h"

double kw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
