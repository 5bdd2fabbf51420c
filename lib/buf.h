/*
 * buf: a growable byte string, and sink: where output goes.
 *
 * A sink is a write callback plus its context. The JSON writer and the response
 * helpers write to sinks, so the same code streams a pull page straight into a
 * FastCGI stream or, in a unit test, into a buf.
 */
#ifndef RHTMX_BUF_H
#define RHTMX_BUF_H

#include <stddef.h>

struct sink {
    /* Writes n bytes; returns 0, or -1 when the peer is gone (further writes are dropped). */
    int (*write)(void *ctx, const char *p, size_t n);
    void *ctx;
};

struct buf {
    char *p;    /* always NUL-terminated once anything was appended; NULL when empty */
    size_t len;
    size_t cap;
};

/* Append n bytes. Aborts on out-of-memory (a 500 is no better than a crash here). */
void buf_add(struct buf *b, const char *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b); /* len = 0, keeps memory */
void buf_free(struct buf *b);  /* releases memory; buf_free on a zeroed buf is harmless */

/* A sink that appends to b. */
struct sink buf_sink(struct buf *b);

static inline int
sink_write(const struct sink *s, const char *p, size_t n)
{
    return s->write(s->ctx, p, n);
}

#endif
