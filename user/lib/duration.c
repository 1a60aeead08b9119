// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Durations for people to read; see duration.h. */
#include <math.h>
#include <stdio.h>
#include "lib/duration.h"

void kw_format_duration(double seconds, char *out, size_t len)
{
	unsigned long long s = 0;

	if (isfinite(seconds) && seconds > 0)
		s = seconds < 1e18 ? (unsigned long long)seconds : 1000000000000000000ULL;
	if (s < 60)
		snprintf(out, len, "%llus", s);
	else if (s < 3600)
		snprintf(out, len, "%llum%02llus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, len, "%lluh%02llum", s / 3600, s % 3600 / 60);
	else
		snprintf(out, len, "%llud%02lluh", s / 86400, s % 86400 / 3600);
}
