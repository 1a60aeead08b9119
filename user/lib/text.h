/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Text from elsewhere (the agent's answers, namespace names) made safe to print on a
 * terminal: control characters, which could move the cursor, retitle the window or hide
 * what came before, are shown as '?'.
 */
#ifndef KW_TEXT_H
#define KW_TEXT_H

/*
 * Replaces, in place, every C0 control character (but newline, when keep_newlines) and
 * DEL with '?', and every C1 control character (U+0080 to U+009F, two bytes in UTF-8)
 * with "??". Returns s.
 */
char *kw_text_safe(char *s, int keep_newlines);

#endif /* KW_TEXT_H */
