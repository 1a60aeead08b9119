/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The one logging module of the agent and the CLI: messages go to stderr as
 * "prog: message", with a "warning: " or "debug: " marker for those levels, and only when
 * their level is at or below the current one (KW_LOG_INFO unless changed). Each message is
 * written with one fprintf, so lines from several threads do not interleave.
 */
#ifndef KW_LOG_H
#define KW_LOG_H

enum { KW_LOG_ERROR, KW_LOG_WARN, KW_LOG_INFO, KW_LOG_DEBUG };

void kw_log_set_level(int level);
int kw_log_level(void);
/* name must outlive the logger (argv[0]'s basename or a string literal) */
void kw_log_set_prog(const char *name);

void kw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kw_err(...)  kw_log(KW_LOG_ERROR, __VA_ARGS__)
#define kw_warn(...) kw_log(KW_LOG_WARN, __VA_ARGS__)
#define kw_info(...) kw_log(KW_LOG_INFO, __VA_ARGS__)
#define kw_dbg(...)  kw_log(KW_LOG_DEBUG, __VA_ARGS__)

#endif /* KW_LOG_H */
