/*
 * http_answer: the answer as a handler writes it: queued headers, the status
 * line and headers sent before the first body byte, the body sink (through
 * gzip when it is on, only counted for HEAD), flushes, and the end.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <fcgiapp.h>

#include "http.h"
#include "http_int.h"

/* Body bytes, after any compression, to the client; for HEAD only counted, so
 * the headers (Content-Encoding, Content-Length) are those of the GET. */
int
http_body_out(struct http_req *req, const char *p, size_t n)
{
    if (req->head) {
        req->head_bytes += n;
        return req->failed ? -1 : 0;
    }
    return http_out_write(req, p, n);
}

/* 1 if a header called name (any case) is queued on req. */
int
http_header_queued(const struct http_req *req, const char *name)
{
    size_t n = strlen(name);
    const char *p = req->headers.p, *end = p + req->headers.len;

    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if ((size_t)(end - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0)
            return 1;
        p = eol != NULL ? eol + 1 : NULL;
    }
    return 0;
}

void
http_header(struct http_req *req, const char *name, const char *value)
{
    if (req->headers_sent)
        return;
    buf_adds(&req->headers, name);
    buf_add(&req->headers, ": ", 2);
    buf_adds(&req->headers, value);
    buf_add(&req->headers, "\r\n", 2);
}

/* Append s to the n bytes at line (cap in all), as much as fits; the new length. */
static size_t
line_add(char *line, size_t n, size_t cap, const char *s)
{
    size_t k = strlen(s);

    if (k > cap - n)
        k = cap - n;
    memcpy(line + n, s, k);
    return n + k;
}

int
http_send_headers(struct http_req *req)
{
    char line[192],
        code[5] = {(char)('0' + req->status / 100 % 10), (char)('0' + req->status / 10 % 10),
                   (char)('0' + req->status % 10), ' ', '\0'};
    size_t n;

    if (req->headers_sent)
        return 0;
    req->headers_sent = 1;
    n = line_add(line, 0, sizeof(line), "Status: ");
    n = line_add(line, n, sizeof(line), code);
    n = line_add(line, n, sizeof(line), http_reason(req->status));
    n = line_add(line, n, sizeof(line), "\r\n");
    if (req->content_type != NULL) {
        n = line_add(line, n, sizeof(line), "Content-Type: ");
        n = line_add(line, n, sizeof(line), req->content_type);
        n = line_add(line, n, sizeof(line), "\r\n");
    }
    if (http_out_write(req, line, n) < 0)
        return -1;
    if (req->headers.len > 0 && http_out_write(req, req->headers.p, req->headers.len) < 0)
        return -1;
    if (req->fcgx != NULL)
        req->out_head_end = req->out.len;
    return http_out_write(req, "\r\n", 2);
}

static int
body_write(void *ctx, const char *p, size_t n)
{
    struct http_req *req = ctx;

    req->body_bytes += n;
    if (req->gz_pending) {
        if (req->failed)
            return -1;
        buf_add(&req->gz_held, p, n);
        return req->gz_held.len > req->gz_min ? http_gz_decide(req, 1) : 0;
    }
    if (http_send_headers(req) < 0)
        return -1;
    if (req->gz != NULL)
        return http_gz_write(req, p, n);
    return http_body_out(req, p, n);
}

struct sink
http_body(struct http_req *req, int status, const char *content_type)
{
    struct sink s = {body_write, req};

    if (!req->headers_sent) {
        req->status = status;
        req->content_type = content_type;
    }
    return s;
}

int
http_flush(struct http_req *req)
{
    if (req->gz_pending && http_gz_decide(req, 0) < 0)
        return -1;
    if (http_send_headers(req) < 0)
        return -1;
    if (req->gz != NULL && http_gz_sync(req) < 0)
        return -1;
    if (req->fcgx != NULL) {
        if (http_out_flush(req, 0) < 0)
            return -1;
        if (FCGX_FFlush(req->fcgx->out) < 0 || FCGX_GetError(req->fcgx->out) != 0) {
            req->failed = 1;
            return -1;
        }
    } else if (fflush(stdout) != 0) {
        req->failed = 1;
        return -1;
    }
    return req->failed ? -1 : 0;
}

void
http_req_finish(struct http_req *req)
{
    if (req->fcgx == NULL && !req->body_read)
        http_cgi_drain_body(req);
    if (req->gz_pending)
        http_gz_decide(req, 0); /* the whole answer stayed under the threshold */
    http_send_headers(req);
    if (req->gz != NULL)
        http_gz_finish(req);
    if (req->aborted) {
        /* No end record: FCGX_Finish_r's writes fail on the shut connection. */
        if (req->fcgx != NULL && req->fcgx->ipcFd >= 0)
            shutdown(req->fcgx->ipcFd, SHUT_RDWR);
        return;
    }
    if (req->fcgx != NULL) {
        http_out_content_length(req);
        http_out_flush(req, 1);
    } else {
        fflush(stdout);
    }
}

void
http_req_end(struct http_req *req)
{
    http_req_finish(req);
    buf_free(&req->out);
    buf_free(&req->headers);
}
