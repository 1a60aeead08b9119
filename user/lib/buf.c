// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The growable string buffer declared in buf.h: geometric growth, one sticky error, and
 * printf formatting straight into the spare capacity (formatting twice only when it does
 * not fit).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/buf.h"

#define KW_BUF_MIN_CAP 64

void kw_buf_init(struct kw_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
}

void kw_buf_free(struct kw_buf *b)
{
	free(b->data);
	kw_buf_init(b);
}

void kw_buf_reset(struct kw_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
	b->err = 0;
}

/* Make room for extra more bytes plus the NUL. */
static int buf_reserve(struct kw_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->err)
		return b->err;
	if (extra > SIZE_MAX - 1 - b->len)
		goto fail;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : KW_BUF_MIN_CAP;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		goto fail;
	if (!b->data)
		p[0] = '\0';
	b->data = p;
	b->cap = cap;
	return 0;
fail:
	b->err = -ENOMEM;
	return b->err;
}

int kw_buf_reserve(struct kw_buf *b, size_t extra)
{
	return buf_reserve(b, extra);
}

int kw_buf_append(struct kw_buf *b, const char *s, size_t n)
{
	int err;

	err = buf_reserve(b, n);
	if (err)
		return err;
	if (n)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int kw_buf_puts(struct kw_buf *b, const char *s)
{
	return kw_buf_append(b, s, strlen(s));
}

int kw_buf_printf(struct kw_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n, err;

	err = buf_reserve(b, 0);
	if (err)
		return err;
	room = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->data[b->len] = '\0';
		return -EINVAL;
	}
	if ((size_t)n >= room) {
		err = buf_reserve(b, n);
		if (err) {
			b->data[b->len] = '\0';
			return err;
		}
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += n;
	return 0;
}

char *kw_buf_steal(struct kw_buf *b)
{
	char *s;

	if (b->err) {
		kw_buf_free(b);
		errno = ENOMEM;
		return NULL;
	}
	s = b->data ? b->data : strdup("");
	kw_buf_init(b);
	if (!s)
		errno = ENOMEM;
	return s;
}
