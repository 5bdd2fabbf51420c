/*
 * client_js_endpoint: GET /api/sync/client.js and GET /api/sync/sw.js, the
 * browser library and its service worker.
 *
 * Serves the files the program embedded at build time (tools/embed: each raw
 * and as a gzip copy, each copy with a strong ETag), with 304 revalidation
 * against If-None-Match and the gzip copy for browsers that accept it. The
 * request's last path segment picks the file ("sw.js": the worker; anything
 * else: the library), or SCRIPT_NAME where the server routes by it. HEAD gets
 * the headers of the GET (the http layer sends no body). Needs no config and
 * no database.
 *
 * The library has a short public cache lifetime. The worker has none
 * ("no-cache": every use revalidates), so the browser's update check sees a
 * new build at once, and Service-Worker-Allowed "/" lets a page register it
 * for the whole site rather than only for /api/sync/ (docs/CLIENT.md,
 * "Offline page loads"). With RHTMX_SYNC_SW=off, in the program's environment
 * or set by the web server for the request, sw.js is the kill switch instead:
 * a worker that removes itself and its caches from every browser that checks
 * for an update.
 *
 * The endpoint's shape (_init, _serve, _close, run) is that of every endpoint:
 * see pull_endpoint.h.
 */
#ifndef RHTMX_CLIENT_JS_ENDPOINT_H
#define RHTMX_CLIENT_JS_ENDPOINT_H

#include <stddef.h>

#include "http.h"
#include "runtime.h"

/* One encoding of one file: its bytes and its ETag (borrowed, static). */
struct client_js_copy {
    const unsigned char *bytes;
    size_t len;
    const char *etag;
};

/* One embedded file, both encodings. */
struct client_js_file {
    struct client_js_copy raw, gz;
};

struct client_js_endpoint {
    struct client_js_file library, worker, worker_off;
    int sw_off;              /* RHTMX_SYNC_SW=off in the program's environment */
    struct runtime_opts run; /* one request at a time */
};

/* Set up ep to serve the library, the worker and the kill-switch worker. */
void client_js_endpoint_init(struct client_js_endpoint *ep, struct client_js_file library,
                             struct client_js_file worker, struct client_js_file worker_off);

/* The handler: ctx is the struct client_js_endpoint. */
void client_js_endpoint_serve(struct http_req *req, void *ctx);

/* Nothing to release; for the shape's sake. */
void client_js_endpoint_close(struct client_js_endpoint *ep);

#endif
