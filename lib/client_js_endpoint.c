/* client_js_endpoint: the browser library and its worker (see client_js_endpoint.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_js_endpoint.h"

static int
is_off(const char *v)
{
    return v != NULL && strcmp(v, "off") == 0;
}

void
client_js_endpoint_init(struct client_js_endpoint *ep, struct client_js_file library,
                        struct client_js_file worker, struct client_js_file worker_off)
{
    memset(ep, 0, sizeof(*ep));
    ep->library = library;
    ep->worker = worker;
    ep->worker_off = worker_off;
    ep->sw_off = is_off(getenv("RHTMX_SYNC_SW")); /* process-level, like RHTMX_SYNC_STREAMING */
}

void
client_js_endpoint_close(struct client_js_endpoint *ep)
{
    memset(ep, 0, sizeof(*ep));
}

/* 1 if an If-None-Match list contains etag (or is "*"). */
static int
etag_matches(const char *inm, const char *etag)
{
    size_t n = strlen(etag);
    const char *p;

    if (inm == NULL)
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    for (p = inm; (p = strstr(p, etag)) != NULL; p += n) {
        if (p == inm || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/')
            if (p[n] == '\0' || p[n] == ',' || p[n] == ' ')
                return 1;
    }
    return 0;
}

/* 1 if the request names sw.js: by its last path segment, else by SCRIPT_NAME
 * (servers route either way). */
static int
wants_worker(const struct http_req *req)
{
    char seg[16];
    const char *sn = req->in.script_name;
    size_t n = sn ? strlen(sn) : 0;

    if (http_path_segment(req, seg, sizeof(seg)) == 0)
        return strcmp(seg, "sw.js") == 0;
    return n >= 6 && strcmp(sn + n - 6, "/sw.js") == 0;
}

void
client_js_endpoint_serve(struct http_req *req, void *ctx)
{
    struct client_js_endpoint *ep = ctx;
    int worker = wants_worker(req);
    const struct client_js_file *f =
        !worker ? &ep->library
                : (ep->sw_off || is_off(req->in.sw_switch) ? &ep->worker_off : &ep->worker);
    int gz = http_accepts_gzip(req);
    const struct client_js_copy *c = gz ? &f->gz : &f->raw;
    char len[32];
    struct sink out;

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        http_header(req, "Allow", "GET, HEAD");
        http_fail(req, 405, "method_not_allowed", "method %s is not allowed here (use GET)",
                  req->method);
        return;
    }
    http_header(req, "ETag", c->etag);
    http_header(req, "Cache-Control", worker ? "no-cache" : "public, max-age=300");
    http_header(req, "Vary", "Accept-Encoding");
    if (worker)
        http_header(req, "Service-Worker-Allowed", "/");
    if (etag_matches(req->in.if_none_match, c->etag)) {
        http_body(req, 304, NULL);
        return;
    }
    if (gz)
        http_header(req, "Content-Encoding", "gzip");
    snprintf(len, sizeof(len), "%zu", c->len);
    http_header(req, "Content-Length", len);
    out = http_body(req, 200, "text/javascript; charset=utf-8");
    sink_write(&out, (const char *)c->bytes, c->len);
}
