/*
 * pull_endpoint: GET /api/sync/{entity}?since=V&limit=N, the HTTP side of a pull.
 *
 * Answers the changes to one entity after cursor V, a page at a time, as the
 * JSON of the wire contract (docs/PROTOCOL.md). OPTIONS (a preflight, for
 * sync-push too) is answered here as well.
 *
 * Order matters: the request's size limits (runtime.h), the config, then who
 * is asking (401 before anything is read), then the entity (404), whether the
 * token may see it (403), the query (400), and for per-user entities only the
 * caller's rows. Rows the app wrote since the log was last sealed are sealed
 * first (schema.h), in a short write transaction of its own.
 *
 * The shape of every endpoint (pull, push, events, client.js): _init sets up
 * what it holds between requests, _serve is the http_handler that runtime_run
 * calls with the endpoint as ctx, under the options in run, and _close
 * releases it all.
 */
#ifndef RHTMX_PULL_ENDPOINT_H
#define RHTMX_PULL_ENDPOINT_H

#include "app.h"
#include "http.h"
#include "runtime.h"

struct pull_endpoint {
    struct app app;
    struct runtime_opts run; /* one request at a time */
};

/* Set up ep for program name (static string); config_path NULL: locate it. */
void pull_endpoint_init(struct pull_endpoint *ep, const char *name, const char *config_path);

/* The handler: ctx is the struct pull_endpoint. */
void pull_endpoint_serve(struct http_req *req, void *ctx);

/* Release everything. */
void pull_endpoint_close(struct pull_endpoint *ep);

#endif
