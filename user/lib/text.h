/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Text from elsewhere (the agent's answers, namespace names) made safe to print on a
 * terminal: control characters, which could move the cursor, retitle the window or hide
 * what came before, are shown as '?'.
 */
#ifndef KW_TEXT_H
#define KW_TEXT_H

#include <stddef.h>

/*
 * Replaces, in place, every C0 control character (but newline, when keep_newlines) and
 * DEL with '?', and every C1 control character (U+0080 to U+009F, two bytes in UTF-8)
 * with "??". Returns s.
 */
char *kw_text_safe(char *s, int keep_newlines);

/*
 * A name read from the system (a file name under /var/run/netns), which may be any bytes
 * but '/' and NUL, as a label: valid UTF-8 without control characters, so that JSON can
 * carry it and Prometheus accepts it. Each byte that is not part of a valid UTF-8
 * character (overlong forms, surrogates and code points past U+10FFFF included), each C0
 * control character, DEL, each C1 control character (U+0080 to U+009F) and the backslash
 * itself are written as "\xNN" (lower-case hex), one escape per byte, so that two names
 * never give the same label; everything else is copied. out holds len bytes with the NUL.
 * Returns the label's length, or -ENOSPC when it does not fit (out is then "" if len >
 * 0): a label cut short could equal another one's.
 */
int kw_text_escape_name(const char *name, char *out, size_t len);

#endif /* KW_TEXT_H */
