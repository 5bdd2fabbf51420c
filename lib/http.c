/*
 * http: CGI/FastCGI request handling (see http.h).
 *
 * The two interfaces differ only in where bytes and variables come from, so a
 * request carries an optional FCGX_Request and each primitive (env, read,
 * write, flush) picks FastCGI streams or the process's stdio.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <zlib.h>

#include "fcgi_record.h"
#include "http.h"
#include "jsonw.h"
#include "log.h"

extern char **environ;

static const struct {
    int status;
    const char *reason;
} statuses[] = {
    {200, "OK"},
    {204, "No Content"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {503, "Service Unavailable"},
};

const char *
http_reason(int status)
{
    size_t i;

    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (statuses[i].status == status)
            return statuses[i].reason;
    return "Unknown";
}

int
http_is_cgi(void)
{
    return FCGX_IsCGI();
}

/* A request variable, or NULL. Borrowed. The edge's only way in. */
static const char *
http_env(const struct http_req *req, const char *name)
{
    if (req->fcgx != NULL)
        return FCGX_GetParam(name, req->fcgx->envp);
    return getenv(name);
}

static void
http_req_fill(struct http_req *req)
{
    struct http_in *in = &req->in;
    const char *v;

    v = http_env(req, "REQUEST_METHOD");
    req->method = v ? v : "";
    req->head = strcmp(req->method, "HEAD") == 0;
    v = http_env(req, "PATH_INFO");
    req->path_info = v ? v : "";
    v = http_env(req, "QUERY_STRING");
    req->query = v ? v : "";
    in->request_uri = http_env(req, "REQUEST_URI");
    in->script_name = http_env(req, "SCRIPT_NAME");
    in->content_type = http_env(req, "CONTENT_TYPE");
    in->content_length = http_env(req, "CONTENT_LENGTH");
    in->accept_encoding = http_env(req, "HTTP_ACCEPT_ENCODING");
    in->authorization = http_env(req, "HTTP_AUTHORIZATION");
    in->cookie = http_env(req, "HTTP_COOKIE");
    in->origin = http_env(req, "HTTP_ORIGIN");
    in->referer = http_env(req, "HTTP_REFERER");
    in->host = http_env(req, "HTTP_HOST");
    in->if_none_match = http_env(req, "HTTP_IF_NONE_MATCH");
    in->last_event_id = http_env(req, "HTTP_LAST_EVENT_ID");
    in->cors_method = http_env(req, "HTTP_ACCESS_CONTROL_REQUEST_METHOD");
    in->server_software = http_env(req, "SERVER_SOFTWARE");
    in->streaming = http_env(req, "RHTMX_SYNC_STREAMING");
    req->status = 200;
}

void
http_req_cgi(struct http_req *req)
{
    memset(req, 0, sizeof(*req));
    http_req_fill(req);
}

void
http_req_fcgx(struct http_req *req, FCGX_Request *r)
{
    memset(req, 0, sizeof(*req));
    req->fcgx = r;
    http_req_fill(req);
}

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
static int
out_flush(struct http_req *req, int last)
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
static int
raw_write(struct http_req *req, const char *p, size_t n)
{
    if (req->failed)
        return -1;
    if (req->fcgx != NULL) {
        if (req->out.len + n > OUT_GATHER && req->out.len > 0 && out_flush(req, 0) < 0)
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

/* Body bytes, after any compression, to the client; for HEAD only counted, so
 * the headers (Content-Encoding, Content-Length) are those of the GET. */
static int
body_out(struct http_req *req, const char *p, size_t n)
{
    if (req->head) {
        req->head_bytes += n;
        return req->failed ? -1 : 0;
    }
    return raw_write(req, p, n);
}

/* 1 if a header called name (any case) is queued on req. */
static int
header_queued(const struct http_req *req, const char *name)
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

static int
send_headers(struct http_req *req)
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
    if (raw_write(req, line, n) < 0)
        return -1;
    if (req->headers.len > 0 && raw_write(req, req->headers.p, req->headers.len) < 0)
        return -1;
    if (req->fcgx != NULL)
        req->out_head_end = req->out.len;
    return raw_write(req, "\r\n", 2);
}

/*
 * Content-Length for a FastCGI answer that is still whole in req->out at its
 * end (all but long pages and streams): the web server can then pass it on as
 * it is instead of chunking it, and the browser knows its size. Spliced in
 * before the headers' blank line. A HEAD answer gets the length its GET would
 * have had. Nothing when the handler queued its own, and never on 204 and 304
 * (RFC 9110 forbids it on 204; on 304 it would describe the cached body).
 */
static void
out_content_length(struct http_req *req)
{
    struct buf *o = &req->out;
    size_t at = req->out_head_end, tail;
    char line[48];
    int n;

    if (req->out_sent || !req->headers_sent || at > o->len || o->len - at < 2)
        return;
    if (req->status == 204 || req->status == 304 || header_queued(req, "Content-Length"))
        return;
    tail = o->len - at; /* the blank line and the body */
    n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n",
                 req->head ? req->head_bytes : tail - 2);
    buf_add(o, line, (size_t)n); /* room first, then make the gap */
    memmove(o->p + at + n, o->p + at, tail);
    memcpy(o->p + at, line, (size_t)n);
}

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
        if (body_out(req, (const char *)g->out, sizeof(g->out) - g->z.avail_out) < 0)
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
static int
gz_decide(struct http_req *req, int compress)
{
    int rc;

    req->gz_pending = 0;
    if (compress)
        gz_start(req);
    if (send_headers(req) < 0)
        rc = -1;
    else if (req->gz_held.len == 0)
        rc = 0;
    else if (req->gz != NULL)
        rc = gz_pump(req, req->gz_held.p, req->gz_held.len, Z_NO_FLUSH);
    else
        rc = body_out(req, req->gz_held.p, req->gz_held.len);
    buf_free(&req->gz_held);
    return rc;
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
        return req->gz_held.len > req->gz_min ? gz_decide(req, 1) : 0;
    }
    if (send_headers(req) < 0)
        return -1;
    if (req->gz != NULL)
        return gz_pump(req, p, n, Z_NO_FLUSH);
    return body_out(req, p, n);
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
http_gzip(struct http_req *req)
{
    if (req->headers_sent || req->gz != NULL || req->gz_pending)
        return req->gz != NULL || req->gz_pending;
    http_header(req, "Vary", "Accept-Encoding");
    if (!http_accepts_gzip(req))
        return 0;
    return gz_start(req);
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
http_flush(struct http_req *req)
{
    if (req->gz_pending && gz_decide(req, 0) < 0)
        return -1;
    if (send_headers(req) < 0)
        return -1;
    if (req->gz != NULL && gz_pump(req, "", 0, Z_SYNC_FLUSH) < 0)
        return -1;
    if (req->fcgx != NULL) {
        if (out_flush(req, 0) < 0)
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

static void cgi_drain_body(struct http_req *req);

void
http_req_finish(struct http_req *req)
{
    if (req->fcgx == NULL && !req->body_read)
        cgi_drain_body(req);
    if (req->gz_pending)
        gz_decide(req, 0); /* the whole answer stayed under the threshold */
    send_headers(req);
    if (req->gz != NULL) {
        struct gz *g = req->gz;
        gz_pump(req, "", 0, Z_FINISH);
        deflateEnd(&g->z);
        free(g);
        req->gz = NULL;
    }
    if (req->aborted) {
        /* No end record: FCGX_Finish_r's writes fail on the shut connection. */
        if (req->fcgx != NULL && req->fcgx->ipcFd >= 0)
            shutdown(req->fcgx->ipcFd, SHUT_RDWR);
        return;
    }
    if (req->fcgx != NULL) {
        out_content_length(req);
        out_flush(req, 1);
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

/* Drop the queued header called name (every line of it). */
static void
header_drop(struct http_req *req, const char *name)
{
    struct buf *h = &req->headers;
    size_t n = strlen(name), i = 0;

    while (i < h->len) {
        char *eol = memchr(h->p + i, '\n', h->len - i);
        size_t end = eol != NULL ? (size_t)(eol - h->p) + 1 : h->len;
        if (end - i > n && strncasecmp(h->p + i, name, n) == 0 && h->p[i + n] == ':') {
            memmove(h->p + i, h->p + end, h->len - end);
            h->len -= end - i;
        } else {
            i = end;
        }
    }
}

/*
 * An answer under way whose bytes have not left the process (FastCGI: all
 * still in req->out; CGI: all still in stdio's buffer; or only held back for
 * the gzip decision) is dropped, so that an error can be answered instead:
 * then headers_sent and body_bytes are 0 again. Otherwise nothing changes.
 */
static void
answer_take_back(struct http_req *req)
{
    if (req->headers_sent &&
        (req->fcgx != NULL ? req->out_sent : __fpending(stdout) != req->cgi_out))
        return;
    if (req->gz != NULL) {
        struct gz *g = req->gz;
        deflateEnd(&g->z);
        free(g);
        req->gz = NULL;
        header_drop(req, "Content-Encoding");
    }
    if (req->fcgx != NULL)
        buf_reset(&req->out);
    else
        __fpurge(stdout);
    req->cgi_out = 0;
    buf_free(&req->gz_held);
    req->gz_pending = 0;
    req->headers_sent = 0;
    req->body_bytes = 0;
}

/*
 * What a client is told of e. A 4xx message describes the request and goes as
 * it is. A 5xx message is for operators (file names, SQLite's own words such
 * as "database is locked"): the client gets a fixed sentence for its kind.
 */
static const char *
client_message(const struct err *e)
{
    if (e->status < 500)
        return e->msg;
    if (e->status == 503)
        return "the server is busy: retry shortly";
    if (strcmp(e->code, "config") == 0)
        return "server configuration error (details in the server's error log)";
    return "server error (details in the server's error log)";
}

/* The error log's line for e: every 5xx, a configuration problem once while
 * it lasts (app_ready and auth write the same line first, log_once keys it by
 * its text), anything else with the request it broke. */
static void
error_log(const struct http_req *req, const struct err *e)
{
    const char *script = req->in.script_name;

    if (e->status < 500)
        return;
    if (strcmp(e->code, "config") == 0)
        log_once("%s", e->msg);
    else
        log_msg("%s %s%s: %s", req->method, script != NULL ? script : "", req->path_info, e->msg);
}

void
http_error(struct http_req *req, const struct err *e)
{
    const char *msg = client_message(e);
    struct sink s;

    error_log(req, e);
    if (req->headers_sent || req->body_bytes > 0)
        answer_take_back(req);
    if (req->headers_sent || req->body_bytes > 0) {
        log_msg("answer already started, cut off: %s", e->msg);
        http_abort(req);
        return;
    }
    if (!header_queued(req, "Cache-Control")) /* a pull queued its own before it failed */
        http_header(req, "Cache-Control", "no-store");
    /* Every refusal for being busy says when to come back, whoever refused. */
    if (e->status == 503 && !header_queued(req, "Retry-After"))
        http_header(req, "Retry-After", HTTP_RETRY_AFTER);
    s = http_body(req, e->status, "application/json");
    jsonw_raw(&s, "{\"error\":{\"code\":");
    jsonw_cstring(&s, e->code);
    jsonw_raw(&s, ",\"message\":");
    jsonw_cstring(&s, msg);
    if (e->version > 0 || e->status == 410) { /* a resync's head, 0 included */
        jsonw_raw(&s, ",\"version\":");
        jsonw_int(&s, e->version);
    }
    jsonw_raw(&s, "}}\n");
}

void
http_abort(struct http_req *req)
{
    req->failed = 1; /* every later write is dropped */
    req->aborted = 1;
    req->gz_pending = 0;
    buf_free(&req->gz_held);
    if (req->fcgx == NULL)
        __fpurge(stdout); /* what stdio still holds never reaches the web server */
}

void
http_fail(struct http_req *req, int status, const char *code, const char *fmt, ...)
{
    struct err e;
    va_list ap;

    e.status = status;
    e.code = code;
    e.version = 0;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
    va_end(ap);
    http_error(req, &e);
}

int
http_path_segment(const struct http_req *req, char *out, size_t outlen)
{
    const char *p = req->path_info, *end;
    const char *uri;
    size_t n;

    if (*p == '\0') {
        uri = req->in.request_uri;
        if (uri == NULL)
            return -1;
        end = strchr(uri, '?');
        if (end == NULL)
            end = uri + strlen(uri);
        while (end > uri && end[-1] == '/')
            end--;
        p = end;
        while (p > uri && p[-1] != '/')
            p--;
    } else {
        while (*p == '/')
            p++;
        end = strchr(p, '/');
        if (end == NULL)
            end = p + strlen(p);
        else if (end[strspn(end, "/")] != '\0')
            return -1; /* "/todos/extra" is not a route */
    }
    n = (size_t)(end - p);
    if (n == 0 || n >= outlen)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static unsigned body_first_s = HTTP_BODY_FIRST_S, body_max_s = HTTP_BODY_MAX_S;

void
http_body_timeouts(unsigned first_s, unsigned max_s)
{
    body_first_s = first_s;
    body_max_s = max_s;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Up to n body bytes from stdin, waiting until deadline (ms). Bytes read, 0 at
 * the end of input, -1 on error, -2 when the deadline passed. */
static long
cgi_read(char *p, size_t n, long long deadline)
{
    for (;;) {
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        long long left = deadline - now_ms();
        ssize_t k;
        int r;

        if (left <= 0)
            return -2;
        r = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        k = read(STDIN_FILENO, p, n);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return (long)k;
    }
}

/* The same from the FastCGI stream: each blocking read of the socket is bounded
 * by a receive timeout, so a stalled web server cannot hold the process. */
static long
fcgx_read(struct http_req *req, char *p, size_t n, long long deadline)
{
    long long left = deadline - now_ms();
    struct timeval tv;
    int k, err;

    if (left <= 0)
        return -2;
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
    if (req->fcgx->ipcFd >= 0)
        setsockopt(req->fcgx->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    k = FCGX_GetStr(p, (int)n, req->fcgx->in);
    if (k > 0)
        return k;
    err = FCGX_GetError(req->fcgx->in);
    if (err == EAGAIN || err == EWOULDBLOCK || now_ms() >= deadline)
        return -2;
    return err != 0 ? -1 : 0;
}

/*
 * Under CGI, an answer given without reading the body (405, 415, 413, 401...)
 * must still take the body off stdin: Apache's mod_cgid writes the whole body
 * to the program before it reads the answer, and a program that exits first
 * makes it abort the answer. Up to 8 MiB, within the usual deadline.
 */
static void
cgi_drain_body(struct http_req *req)
{
    const char *cl = req->in.content_length;
    long long len = cl != NULL ? strtoll(cl, NULL, 10) : 0, start = now_ms();
    char chunk[16384];

    if (len > 8LL << 20)
        len = 8LL << 20;
    while (len > 0) {
        long n = cgi_read(chunk,
                          (size_t)(len < (long long)sizeof(chunk) ? len : (long long)sizeof(chunk)),
                          start + (long long)body_first_s * 1000);
        if (n <= 0)
            break;
        len -= n;
    }
}

int
http_read_body(struct http_req *req, long max, struct buf *out, struct err *e)
{
    const char *cl = req->in.content_length;
    char *end;
    long long len, start, deadline;
    size_t got = 0;
    int rc = -1;

    req->body_read = 1;
    if (cl == NULL || *cl == '\0')
        return err_set(e, 411, "bad_request", "a Content-Length is required");
    errno = 0;
    len = strtoll(cl, &end, 10);
    if (*end != '\0' || errno != 0 || len < 0 || cl[0] < '0' || cl[0] > '9')
        return err_set(e, 400, "bad_request", "invalid Content-Length");
    if (len > max)
        return err_set(e, 413, "too_large", "request body of %lld bytes is over the limit of %ld",
                       len, max);
    buf_reset(out);
    buf_add(out, "", 0);
    start = now_ms();
    deadline = start + (long long)body_first_s * 1000;
    while (got < (size_t)len) {
        char chunk[16384];
        size_t want = (size_t)len - got < sizeof(chunk) ? (size_t)len - got : sizeof(chunk);
        long n;

        if (deadline > start + (long long)body_max_s * 1000)
            deadline = start + (long long)body_max_s * 1000;
        n = req->fcgx != NULL ? fcgx_read(req, chunk, want, deadline)
                              : cgi_read(chunk, want, deadline);
        if (n == -2) {
            err_set(e, 408, "bad_request",
                    "request body too slow: %zu of %lld bytes after %lld seconds", got, len,
                    (now_ms() - start + 500) / 1000);
            goto out;
        }
        if (n <= 0) {
            err_set(e, 400, "bad_request", "request body ended after %zu of %lld bytes", got, len);
            goto out;
        }
        buf_add(out, chunk, (size_t)n);
        got += (size_t)n;
        deadline += (long long)n * 1000 / HTTP_BODY_MIN_RATE;
    }
    rc = 0;
out:
    if (req->fcgx != NULL && req->fcgx->ipcFd >= 0) {
        struct timeval none = {0, 0};
        setsockopt(req->fcgx->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    }
    return rc;
}

/* One limit of http_req_check: 0, or -1 with e set. */
static int
check_len(const char *v, size_t max, int status, const char *what, struct err *e)
{
    if (v != NULL && strlen(v) > max)
        return err_set(e, status, "bad_request", "%s longer than %zu bytes", what, max);
    return 0;
}

int
http_req_check(const struct http_req *req, struct err *e)
{
    char **env = req->fcgx != NULL ? req->fcgx->envp : environ;
    size_t total = 0;

    if (check_len(req->query, HTTP_MAX_QUERY, 414, "query string", e) < 0 ||
        check_len(req->path_info, HTTP_MAX_PATH, 414, "path", e) < 0 ||
        check_len(req->in.request_uri, HTTP_MAX_URI, 414, "request URI", e) < 0)
        return -1;
    for (; env != NULL && *env != NULL; env++) {
        const char *eq;
        size_t n;
        if (strncmp(*env, "HTTP_", 5) != 0 || (eq = strchr(*env, '=')) == NULL)
            continue;
        n = strlen(eq + 1);
        total += n;
        if (n > HTTP_MAX_HEADER) {
            char name[ERR_QUOTED], q[ERR_QUOTED];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - *env > 65 ? 65 : eq - *env), *env);
            return err_set(e, 431, "bad_request", "request header %s longer than %d bytes",
                           err_quote(q, name), HTTP_MAX_HEADER);
        }
    }
    if (total > HTTP_MAX_HEADERS)
        return err_set(e, 431, "bad_request", "request headers longer than %d bytes in all",
                       HTTP_MAX_HEADERS);
    return 0;
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int
http_query_str(const struct http_req *req, const char *name, char *out, size_t outlen,
               struct err *e)
{
    const char *p = req->query;
    size_t nlen = strlen(name);
    int found = 0;

    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t o = 0;
            if (found++)
                return err_set(e, 400, "bad_request", "query parameter '%s' given twice", name);
            for (; v < end; v++) {
                int c = (unsigned char)*v;
                if (c == '%') {
                    if (end - v < 3 || hexval(v[1]) < 0 || hexval(v[2]) < 0)
                        return err_set(e, 400, "bad_request",
                                       "query parameter '%s' is not valid percent-encoding", name);
                    c = hexval(v[1]) * 16 + hexval(v[2]);
                    v += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (c == 0 || o + 1 >= outlen)
                    return err_set(e, 400, "bad_request", "query parameter '%s' is too long", name);
                out[o++] = (char)c;
            }
            out[o] = '\0';
        } else if ((size_t)(end - p) == nlen && strncmp(p, name, nlen) == 0) {
            if (found++)
                return err_set(e, 400, "bad_request", "query parameter '%s' given twice", name);
            out[0] = '\0';
        }
        p = amp ? amp + 1 : end;
    }
    return found ? 1 : 0;
}

/* The integer of parameter spec from its text. 0, or -1 with e set (400). */
static int
int_value(const struct http_param *spec, const char *text, long long *out, struct err *e)
{
    char *end;

    errno = 0;
    if (text[0] < '0' || text[0] > '9')
        goto bad;
    *out = strtoll(text, &end, 10);
    if (*end != '\0' || errno != 0)
        goto bad;
    if (*out < spec->min || *out > spec->max)
        return err_set(e, 400, "bad_request", "query parameter '%s' must be within %lld..%lld",
                       spec->name, spec->min, spec->max);
    return 0;
bad:
    return err_set(e, 400, "bad_request", "query parameter '%s' must be a non-negative integer",
                   spec->name);
}

int
http_query_ints(const struct http_req *req, const struct http_param *specs, size_t n,
                long long *values, struct err *e)
{
    char tmp[32];
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        values[i] = specs[i].def;
        rc = http_query_str(req, specs[i].name, tmp, sizeof(tmp), e);
        if (rc < 0 || (rc > 0 && int_value(&specs[i], tmp, &values[i], e) < 0))
            return -1;
    }
    return 0;
}

/* "a, b or c" for the values of list, into out. */
static void
one_of_text(const char *const *list, char *out, size_t outlen)
{
    size_t i, o = 0;

    out[0] = '\0';
    for (i = 0; list[i] != NULL && o < outlen; i++) {
        const char *sep = i == 0 ? "" : list[i + 1] == NULL ? " or " : ", ";
        int k = snprintf(out + o, outlen - o, "%s%s", sep, list[i]);
        if (k < 0)
            break;
        o += (size_t)k;
    }
}

int
http_query(const struct http_req *req, const struct http_param *specs, size_t n,
           struct http_value *values, struct err *e)
{
    char allowed[128];
    size_t i, k;
    int rc;

    for (i = 0; i < n; i++) {
        struct http_value *v = &values[i];
        v->n = specs[i].def;
        v->text[0] = '\0';
        /* An integer's text stays short: 32 bytes, as http_query_ints reads it. */
        rc = http_query_str(req, specs[i].name, v->text,
                            specs[i].kind == HTTP_INT ? 32 : sizeof(v->text), e);
        if (rc < 0)
            return -1;
        v->given = rc > 0;
        if (v->given && specs[i].kind == HTTP_INT && int_value(&specs[i], v->text, &v->n, e) < 0)
            return -1;
        if (!v->given || specs[i].kind == HTTP_INT || specs[i].one_of == NULL)
            continue;
        for (k = 0; specs[i].one_of[k] != NULL; k++)
            if (strcmp(v->text, specs[i].one_of[k]) == 0)
                break;
        if (specs[i].one_of[k] == NULL) {
            one_of_text(specs[i].one_of, allowed, sizeof(allowed));
            return err_set(e, 400, "bad_request", "query parameter '%s' must be %s", specs[i].name,
                           allowed);
        }
    }
    return 0;
}
