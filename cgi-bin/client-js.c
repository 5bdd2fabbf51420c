/*
 * client-js: GET /api/sync/client.js
 *
 * Serves the browser library, compiled into this executable from
 * js/rhtmx-sync.js at build time (tools/embed), with a strong ETag per encoding
 * and 304 revalidation, a short public cache lifetime, and the gzip copy made
 * at build time for browsers that accept it. HEAD gets the headers of the GET
 * (the http layer sends no body). Needs no config and no database.
 */
#include <stdio.h>
#include <string.h>

#include "runtime.h"

extern const unsigned char client_js[], client_js_gz[];
extern const unsigned long client_js_len, client_js_gz_len;
extern const char client_js_etag[], client_js_gz_etag[];

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

static void
handle(struct http_req *req, void *ctx)
{
    int gz = http_accepts_gzip(req);
    const char *etag = gz ? client_js_gz_etag : client_js_etag;
    char len[32];
    struct sink out;

    (void)ctx;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        http_header(req, "Allow", "GET, HEAD");
        http_fail(req, 405, "method_not_allowed", "method %s is not allowed here (use GET)",
                  req->method);
        return;
    }
    http_header(req, "ETag", etag);
    http_header(req, "Cache-Control", "public, max-age=300");
    http_header(req, "Vary", "Accept-Encoding");
    if (etag_matches(req->in.if_none_match, etag)) {
        http_body(req, 304, NULL);
        return;
    }
    if (gz)
        http_header(req, "Content-Encoding", "gzip");
    snprintf(len, sizeof(len), "%lu", gz ? client_js_gz_len : client_js_len);
    http_header(req, "Content-Length", len);
    out = http_body(req, 200, "text/javascript; charset=utf-8");
    if (gz)
        sink_write(&out, (const char *)client_js_gz, client_js_gz_len);
    else
        sink_write(&out, (const char *)client_js, client_js_len);
}

int
main(void)
{
    return runtime_run(handle, NULL, NULL);
}
