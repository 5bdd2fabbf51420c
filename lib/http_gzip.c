/*
 * http_gzip: compressing the answer's body for clients that accept gzip, or
 * deciding to, once the body outgrows a threshold (http_gzip_over).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "http.h"
#include "http_int.h"

/* gzip state: a deflate stream and its output buffer. */
struct gz {
    z_stream z;
    unsigned char out[16384];
};

static int
gz_pump(struct http_req *req, const char *p, size_t n, int flush)
{
    struct gz *g = req->gz;
    int rc;

    g->z.next_in = (unsigned char *)(uintptr_t)p;
    g->z.avail_in = (uInt)n;
    do {
        g->z.next_out = g->out;
        g->z.avail_out = sizeof(g->out);
        rc = deflate(&g->z, flush);
        if (rc == Z_STREAM_ERROR)
            return -1;
        if (http_body_out(req, (const char *)g->out, sizeof(g->out) - g->z.avail_out) < 0)
            return -1;
    } while (g->z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    return 0;
}

/* Start compressing: deflate state and the Content-Encoding header. 1, or 0
 * when zlib cannot (the body then goes out as it is). */
static int
gz_start(struct http_req *req)
{
    struct gz *g = calloc(1, sizeof(*g));

    /* Level 6 (zlib's default): on pull pages it saves as much as 9 and costs a
     * third of it; level 1 leaves a third more bytes. */
    if (g == NULL || deflateInit2(&g->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(g);
        return 0;
    }
    req->gz = g;
    http_header(req, "Content-Encoding", "gzip");
    return 1;
}

/* End a pending gzip decision (http_gzip_over): compress the held bytes and
 * the rest if compress is set, else send them as they are. */
int
http_gz_decide(struct http_req *req, int compress)
{
    int rc;

    req->gz_pending = 0;
    if (compress)
        gz_start(req);
    if (http_send_headers(req) < 0)
        rc = -1;
    else if (req->gz_held.len == 0)
        rc = 0;
    else if (req->gz != NULL)
        rc = gz_pump(req, req->gz_held.p, req->gz_held.len, Z_NO_FLUSH);
    else
        rc = http_body_out(req, req->gz_held.p, req->gz_held.len);
    buf_free(&req->gz_held);
    return rc;
}

int
http_accepts_gzip(const struct http_req *req)
{
    const char *ae = req->in.accept_encoding;
    const char *p, *q;

    for (p = ae; p != NULL && (p = strstr(p, "gzip")) != NULL; p += 4) {
        if (p > ae && p[-1] != ' ' && p[-1] != ',')
            continue; /* "x-gzip" and the like */
        q = p + 4 + strspn(p + 4, " ");
        if (*q != ';')
            return 1;
        q += 1 + strspn(q + 1, " ");
        /* "gzip;q=0", "gzip;q=0.0", "gzip;q=0.000" refuse it. */
        return !(strncmp(q, "q=0", 3) == 0 && strspn(q + 3, ".0") == strcspn(q + 3, ", "));
    }
    return 0;
}

int
http_gzip_over(struct http_req *req, size_t min_bytes)
{
    if (req->headers_sent || req->gz != NULL || req->gz_pending || req->body_bytes > 0)
        return req->gz != NULL || req->gz_pending;
    http_header(req, "Vary", "Accept-Encoding");
    if (!http_accepts_gzip(req))
        return 0;
    req->gz_pending = 1;
    req->gz_min = min_bytes;
    return 1;
}

int
http_gz_write(struct http_req *req, const char *p, size_t n)
{
    return gz_pump(req, p, n, Z_NO_FLUSH);
}

int
http_gz_sync(struct http_req *req)
{
    return gz_pump(req, "", 0, Z_SYNC_FLUSH);
}

void
http_gz_drop(struct http_req *req)
{
    struct gz *g = req->gz;

    deflateEnd(&g->z);
    free(g);
    req->gz = NULL;
}

int
http_gz_finish(struct http_req *req)
{
    int rc = gz_pump(req, "", 0, Z_FINISH);

    http_gz_drop(req);
    return rc;
}
