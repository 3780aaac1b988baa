/* buf: see buf.h. */
#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_KEEP (64 * 1024) /* what buf_reset keeps of a buffer that grew */

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->alloc = 0;
    b->max = max;
}

void buf_fini(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

void buf_reset(struct buf *b)
{
    if (b->alloc > BUF_KEEP) {
        free(b->data);
        b->data = NULL;
        b->alloc = 0;
    }
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int buf_grow(struct buf *b, size_t need)
{
    if (need > b->max)
        return BUF_TOOBIG;
    if (need + 1 <= b->alloc)
        return BUF_OK;
    size_t a = b->alloc ? b->alloc : 256;
    while (a < need + 1)
        a *= 2;
    if (a > b->max + 1)
        a = b->max + 1;
    char *p = realloc(b->data, a);
    if (!p)
        return BUF_NOMEM;
    b->data = p;
    b->alloc = a;
    return BUF_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n > b->max - b->len)
        return BUF_TOOBIG;
    int r = buf_grow(b, b->len + n);
    if (r)
        return r;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return BUF_OK;
}

int buf_putc(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return BUF_NOMEM;
    if ((size_t)n < sizeof(tmp))
        return buf_append(b, tmp, (size_t)n);
    if ((size_t)n > b->max - b->len)
        return BUF_TOOBIG;
    int r = buf_grow(b, b->len + (size_t)n);
    if (r)
        return r;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return BUF_OK;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = '\0';
}
