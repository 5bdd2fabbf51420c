/*
 * http_error: the one error responder. The status table, what a client is
 * told of an error (never the operator's text for a 5xx), the error log's
 * line for it, and what happens to an answer that had already started: taken
 * back if none of it left the process, else cut off (http_abort).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "http_int.h"
#include "jsonw.h"
#include "log.h"

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
        http_gz_drop(req);
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
    if (!http_header_queued(req, "Cache-Control")) /* a pull queued its own before it failed */
        http_header(req, "Cache-Control", "no-store");
    /* Every refusal for being busy says when to come back, whoever refused. */
    if (e->status == 503 && !http_header_queued(req, "Retry-After"))
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
