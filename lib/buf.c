/* buf: see buf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static void
buf_grow(struct buf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 256;

    if (b->len + need + 1 <= b->cap)
        return;
    while (cap < b->len + need + 1)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (b->p == NULL) {
        fputs("rhtmx-sync: out of memory\n", stderr);
        abort();
    }
    b->cap = cap;
}

void
buf_add(struct buf *b, const char *p, size_t n)
{
    buf_grow(b, n);
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}

void
buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int
buf_sink_write(void *ctx, const char *p, size_t n)
{
    buf_add(ctx, p, n);
    return 0;
}

struct sink
buf_sink(struct buf *b)
{
    struct sink s = {buf_sink_write, b};
    return s;
}
