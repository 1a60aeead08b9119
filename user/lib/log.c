// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Logging to stderr with a level filter. The message is formatted into a local buffer
 * first and written with a single fprintf, which stdio locks, so concurrent messages stay
 * whole lines. The level is read and written atomically; the program name is set once at
 * start-up, before any thread runs.
 */
#include <stdarg.h>
#include <stdio.h>
#include "lib/log.h"

static int log_level = KW_LOG_INFO;
static const char *log_prog = "keepwatch";

void kw_log_set_level(int level)
{
	if (level < KW_LOG_ERROR)
		level = KW_LOG_ERROR;
	if (level > KW_LOG_DEBUG)
		level = KW_LOG_DEBUG;
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int kw_log_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void kw_log_set_prog(const char *name)
{
	if (name && *name)
		log_prog = name;
}

static const char *level_prefix(int level)
{
	switch (level) {
	case KW_LOG_WARN:
		return "warning: ";
	case KW_LOG_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

void kw_log(int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (level > kw_log_level())
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* drop one trailing newline so callers may or may not end with one */
	if (n > 0 && (size_t)n < sizeof(msg) && msg[n - 1] == '\n')
		msg[n - 1] = '\0';
	fprintf(stderr, "%s: %s%s%s\n", log_prog, level_prefix(level), msg,
		(size_t)n >= sizeof(msg) ? "..." : "");
}
