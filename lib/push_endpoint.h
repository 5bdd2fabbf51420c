/*
 * push_endpoint: POST /api/sync/{entity}, the HTTP side of push.
 *
 * What sync-push runs for every request, kept in lib/ so that a program built
 * on the library can serve the same endpoint with its own conflict resolver
 * linked in:
 *
 *   static int my_resolve(const struct rhtmx_conflict *c, struct rhtmx_resolution *out,
 *                         void *ctx) { ... }
 *
 *   int main(void) {
 *       struct push_endpoint ep;
 *       int rc;
 *       push_endpoint_init(&ep, "my-push", NULL);
 *       push_endpoint_set_resolver(&ep, my_resolve, NULL);
 *       rc = runtime_run(push_endpoint_serve, &ep, NULL);
 *       push_endpoint_close(&ep);
 *       return rc;
 *   }
 *
 * Without a registered function, entities with strategy "custom" use the
 * shared object named by the config's push.resolver (loaded on first use,
 * reloaded when the config names another one).
 *
 * Checks, in order: method (405, Allow: POST), configuration (500), who is
 * asking (401, auth.h), entity (404), whether the token may touch it and the
 * request is not cross-site (403), Content-Type application/json (415), body
 * size against
 * push.max_body_bytes (413; 411 without a Content-Length), then the batch
 * (400 malformed, 413 more than push.max_changes changes). 503 busy carries
 * Retry-After; the details of any 5xx go to the error log only (http_error).
 *
 * The endpoint's shape (_init, _serve, _close, run) is that of every endpoint:
 * see pull_endpoint.h.
 */
#ifndef RHTMX_PUSH_ENDPOINT_H
#define RHTMX_PUSH_ENDPOINT_H

#include "app.h"
#include "http.h"
#include "runtime.h"
#include "resolver.h"

struct push_endpoint {
    struct app app;
    struct resolver *linked; /* registered by the program, or NULL */
    struct resolver *loaded; /* from push.resolver, or NULL */
    struct runtime_opts run; /* one request at a time */
};

/* Set up ep for program name (static string); config_path NULL: locate it. */
void push_endpoint_init(struct push_endpoint *ep, const char *name, const char *config_path);

/* Use fn (called with ctx) for every entity with strategy "custom", instead of
 * any shared object the config names. 0, or -1 when out of memory. */
int push_endpoint_set_resolver(struct push_endpoint *ep, rhtmx_resolver_fn fn, void *ctx);

/* The http_handler: ctx is the struct push_endpoint. */
void push_endpoint_serve(struct http_req *req, void *ctx);

void push_endpoint_close(struct push_endpoint *ep);

#endif
