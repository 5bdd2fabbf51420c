/*
 * client_js_endpoint: GET /api/sync/client.js, the browser library.
 *
 * Serves js/rhtmx-sync.js as the program embedded it at build time
 * (tools/embed: the raw file and a gzip copy, each with a strong ETag), with
 * 304 revalidation against If-None-Match, a short public cache lifetime, and
 * the gzip copy for browsers that accept it. HEAD gets the headers of the GET
 * (the http layer sends no body). Needs no config and no database.
 *
 * The endpoint's shape (_init, _serve, _close, run) is that of every endpoint:
 * see pull_endpoint.h.
 */
#ifndef RHTMX_CLIENT_JS_ENDPOINT_H
#define RHTMX_CLIENT_JS_ENDPOINT_H

#include <stddef.h>

#include "http.h"
#include "runtime.h"

/* One encoding of the library: its bytes and its ETag (borrowed, static). */
struct client_js_copy {
    const unsigned char *bytes;
    size_t len;
    const char *etag;
};

struct client_js_endpoint {
    struct client_js_copy raw, gz;
    struct runtime_opts run; /* one request at a time */
};

/* Set up ep to serve raw, and gz to clients that accept gzip. */
void client_js_endpoint_init(struct client_js_endpoint *ep, struct client_js_copy raw,
                             struct client_js_copy gz);

/* The handler: ctx is the struct client_js_endpoint. */
void client_js_endpoint_serve(struct http_req *req, void *ctx);

/* Nothing to release; for the shape's sake. */
void client_js_endpoint_close(struct client_js_endpoint *ep);

#endif
