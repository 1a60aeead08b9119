/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * A growable string buffer. data is NUL-terminated once anything was appended (even an
 * empty string); len excludes the NUL. The first allocation failure sets err to -ENOMEM
 * and makes every later append fail with it, so a writer can append a whole document and
 * check once at the end.
 */
#ifndef KW_BUF_H
#define KW_BUF_H

#include <stddef.h>

struct kw_buf {
	char *data; /* NULL until the first append */
	size_t len; /* bytes used, without the NUL */
	size_t cap; /* bytes allocated */
	int err;    /* 0, or -ENOMEM (sticky until reset) */
};

void kw_buf_init(struct kw_buf *b);
void kw_buf_free(struct kw_buf *b);
/* Empty the buffer, keep its memory, clear err. */
void kw_buf_reset(struct kw_buf *b);

/*
 * Room for extra more bytes and the NUL at data + len, so that a writer can fill them in
 * place and then set len (and the NUL) itself; 0 or the sticky -ENOMEM. Also used to
 * allocate a whole document's worth at once.
 */
int kw_buf_reserve(struct kw_buf *b, size_t extra);

/* Where to write extra more bytes in place (kw_buf_reserve), or NULL. */
static inline char *kw_buf_room(struct kw_buf *b, size_t extra)
{
	return kw_buf_reserve(b, extra) ? NULL : b->data + b->len;
}

/* Takes in what was written from kw_buf_room()'s pointer up to end, and the NUL after it. */
static inline void kw_buf_commit(struct kw_buf *b, char *end)
{
	b->len = end - b->data;
	*end = '\0';
}

int kw_buf_append(struct kw_buf *b, const char *s, size_t n);
int kw_buf_puts(struct kw_buf *b, const char *s);
int kw_buf_printf(struct kw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Hand the string over to the caller (free() it) and leave b empty and reusable. Returns ""
 * for a buffer never appended to; NULL with errno ENOMEM if an append had failed (the
 * truncated text is freed) or "" could not be allocated.
 */
char *kw_buf_steal(struct kw_buf *b);

#endif /* KW_BUF_H */
