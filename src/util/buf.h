/*
 * buf: a growable byte buffer with a mandatory cap (curl's dynbuf idea).
 * Appending past the cap fails with BUF_TOOBIG and leaves the content as
 * it was, so the caller decides what "too big" means (skip, error, flush).
 * The data is always NUL-terminated (not counted in len).
 */
#ifndef MBTA_BUF_H
#define MBTA_BUF_H

#include <stddef.h>

enum { BUF_OK = 0, BUF_TOOBIG = -1, BUF_NOMEM = -2 };

struct buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t alloc;
    size_t max; /* the cap on len */
};

void buf_init(struct buf *b, size_t max);
void buf_fini(struct buf *b);
/* Empties the buffer, keeping its memory (shrinks it when it grew large). */
void buf_reset(struct buf *b);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes the first n bytes. */
void buf_consume(struct buf *b, size_t n);

#endif
