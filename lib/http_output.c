/*
 * http_output: the answer's bytes on their way to the web server. Under CGI
 * they go to stdout (stdio buffers them); under FastCGI they are gathered and
 * sent in big records (fcgi_record.h), with a Content-Length spliced in when
 * the whole answer is still in hand at its end.
 */
#include <stdio.h>
#include <string.h>

#include <fcgiapp.h>

#include "fcgi_record.h"
#include "http.h"
#include "http_int.h"

/*
 * FastCGI output in big records. libfcgi frames what it is given in records of
 * at most 8 KB (its buffer), so a 200 KB pull page cost 25 writes here and as
 * many wake-ups of the web server. The answer is gathered in req->out instead
 * and sent in records of up to 64 KB straight to the connection, each after
 * libfcgi's own buffer was flushed so that the order holds. The last few
 * kilobytes go through libfcgi, which sends them in one write with its
 * end-of-request records, so a small answer is still a single write.
 */
#define OUT_GATHER FCGI_RECORD_GATHER
#define OUT_TAIL 8000 /* fits libfcgi's 8 KB buffer with its record header */

/* n bytes at p as FCGI_STDOUT records on the connection, after what libfcgi
 * holds. 0, or -1. */
static int
fcgx_records(struct http_req *req, const char *p, size_t n)
{
    FCGX_Request *r = req->fcgx;

    req->out_sent = 1;
    if (FCGX_FFlush(r->out) < 0 || FCGX_GetError(r->out) != 0)
        return -1;
    return fcgi_record_send(r->ipcFd, r->requestId, p, n);
}

/* Send what req->out gathered: all of it in records, or, at the end of the
 * answer (last), all but a tail that libfcgi sends with its closing records. */
int
http_out_flush(struct http_req *req, int last)
{
    struct buf *o = &req->out;
    size_t direct = o->len, tail = 0;
    int rc = 0;

    if (last && o->len > 0) {
        tail = o->len < OUT_TAIL ? o->len : OUT_TAIL;
        direct = o->len - tail;
    }
    if (!req->failed && direct > 0 && fcgx_records(req, o->p, direct) < 0)
        rc = -1;
    if (!req->failed && rc == 0 && tail > 0 &&
        FCGX_PutStr(o->p + direct, (int)tail, req->fcgx->out) != (int)tail)
        rc = -1;
    if (rc < 0)
        req->failed = 1;
    if (o->cap > 16384)
        buf_free(o); /* a long-lived stream keeps no big buffer */
    else
        buf_reset(o);
    return req->failed ? -1 : 0;
}

/* Raw bytes to the client. */
int
http_out_write(struct http_req *req, const char *p, size_t n)
{
    if (req->failed)
        return -1;
    if (req->fcgx != NULL) {
        if (req->out.len + n > OUT_GATHER && req->out.len > 0 && http_out_flush(req, 0) < 0)
            return -1;
        if (n >= OUT_GATHER) {
            if (fcgx_records(req, p, n) < 0) {
                req->failed = 1;
                return -1;
            }
            return 0;
        }
        buf_add(&req->out, p, n);
        return 0;
    }
    req->cgi_out += n;
    if (fwrite(p, 1, n, stdout) != n) {
        req->failed = 1;
        return -1;
    }
    return 0;
}

/*
 * Content-Length for a FastCGI answer that is still whole in req->out at its
 * end (all but long pages and streams): the web server can then pass it on as
 * it is instead of chunking it, and the browser knows its size. Spliced in
 * before the headers' blank line. A HEAD answer gets the length its GET would
 * have had. Nothing when the handler queued its own, and never on 204 and 304
 * (RFC 9110 forbids it on 204; on 304 it would describe the cached body).
 */
void
http_out_content_length(struct http_req *req)
{
    struct buf *o = &req->out;
    size_t at = req->out_head_end, tail;
    char line[48];
    int n;

    if (req->out_sent || !req->headers_sent || at > o->len || o->len - at < 2)
        return;
    if (req->status == 204 || req->status == 304 || http_header_queued(req, "Content-Length"))
        return;
    tail = o->len - at; /* the blank line and the body */
    n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n",
                 req->head ? req->head_bytes : tail - 2);
    buf_add(o, line, (size_t)n); /* room first, then make the gap */
    memmove(o->p + at + n, o->p + at, tail);
    memcpy(o->p + at, line, (size_t)n);
}
