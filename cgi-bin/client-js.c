/*
 * client-js: GET /api/sync/client.js and GET /api/sync/sw.js
 *
 * Serves the browser library and its service worker, compiled into this
 * executable from js/rhtmx-sync.js and js/rhtmx-sync-sw.js at build time
 * (tools/embed), with a strong ETag per encoding and 304 revalidation, and
 * the gzip copy made at build time for browsers that accept it. The request's
 * last path segment picks the file ("sw.js": the worker; anything else: the
 * library, as before). HEAD gets the headers of the GET (the http layer sends
 * no body). Needs no config and no database.
 *
 * The library has a short public cache lifetime. The worker has none
 * ("no-cache": every use revalidates), so the browser's update check sees a
 * new build at once, and Service-Worker-Allowed "/" lets a page register it
 * for the whole site rather than only for /api/sync/ (docs/CLIENT.md,
 * "Offline page loads"). With RHTMX_SYNC_SW=off in the environment, sw.js is
 * the kill switch instead (js/rhtmx-sync-sw-off.js: a worker that removes
 * itself and its caches from every browser that checks for an update).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

extern const unsigned char client_js[], client_js_gz[];
extern const unsigned long client_js_len, client_js_gz_len;
extern const char client_js_etag[], client_js_gz_etag[];
extern const unsigned char sw_js[], sw_js_gz[];
extern const unsigned long sw_js_len, sw_js_gz_len;
extern const char sw_js_etag[], sw_js_gz_etag[];
extern const unsigned char sw_off_js[], sw_off_js_gz[];
extern const unsigned long sw_off_js_len, sw_off_js_gz_len;
extern const char sw_off_js_etag[], sw_off_js_gz_etag[];

/* One embedded file and how it is cached. */
struct asset {
    const unsigned char *raw, *gz;
    const unsigned long *raw_len, *gz_len; /* extern constants: addresses are constant */
    const char *etag, *gz_etag;
    const char *cache_control;
    const char *sw_allowed; /* Service-Worker-Allowed, or NULL */
};

static const struct asset library = {
    .raw = client_js,
    .gz = client_js_gz,
    .raw_len = &client_js_len,
    .gz_len = &client_js_gz_len,
    .etag = client_js_etag,
    .gz_etag = client_js_gz_etag,
    .cache_control = "public, max-age=300",
};
static const struct asset worker = {
    .raw = sw_js,
    .gz = sw_js_gz,
    .raw_len = &sw_js_len,
    .gz_len = &sw_js_gz_len,
    .etag = sw_js_etag,
    .gz_etag = sw_js_gz_etag,
    .cache_control = "no-cache",
    .sw_allowed = "/",
};
static const struct asset worker_off = {
    .raw = sw_off_js,
    .gz = sw_off_js_gz,
    .raw_len = &sw_off_js_len,
    .gz_len = &sw_off_js_gz_len,
    .etag = sw_off_js_etag,
    .gz_etag = sw_off_js_gz_etag,
    .cache_control = "no-cache",
    .sw_allowed = "/",
};

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

/* 1 when the request's last segment is "sw.js" (PATH_INFO, else REQUEST_URI,
 * else SCRIPT_NAME: servers route either way). */
static int
wants_worker(const struct http_req *req)
{
    char seg[16];
    const char *sn;
    size_t n;

    if (http_path_segment(req, seg, sizeof(seg)) == 0)
        return strcmp(seg, "sw.js") == 0;
    sn = http_env(req, "SCRIPT_NAME");
    n = sn ? strlen(sn) : 0;
    return n >= 6 && strcmp(sn + n - 6, "/sw.js") == 0;
}

/* The worker (or its kill switch, RHTMX_SYNC_SW=off in the program's
 * environment) for sw.js, else the library. */
static const struct asset *
requested(const struct http_req *req)
{
    const char *sw = getenv("RHTMX_SYNC_SW");

    if (!wants_worker(req))
        return &library;
    return sw != NULL && strcmp(sw, "off") == 0 ? &worker_off : &worker;
}

static void
handle(struct http_req *req, void *ctx)
{
    int gz = http_accepts_gzip(req);
    const struct asset *a = requested(req);
    const char *etag = gz ? a->gz_etag : a->etag;
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
    http_header(req, "Cache-Control", a->cache_control);
    http_header(req, "Vary", "Accept-Encoding");
    if (a->sw_allowed != NULL)
        http_header(req, "Service-Worker-Allowed", a->sw_allowed);
    if (etag_matches(http_env(req, "HTTP_IF_NONE_MATCH"), etag)) {
        http_body(req, 304, NULL);
        return;
    }
    if (gz)
        http_header(req, "Content-Encoding", "gzip");
    snprintf(len, sizeof(len), "%lu", gz ? *a->gz_len : *a->raw_len);
    http_header(req, "Content-Length", len);
    out = http_body(req, 200, "text/javascript; charset=utf-8");
    if (gz)
        sink_write(&out, (const char *)a->gz, *a->gz_len);
    else
        sink_write(&out, (const char *)a->raw, *a->raw_len);
}

int
main(void)
{
    return http_run(handle, NULL);
}
