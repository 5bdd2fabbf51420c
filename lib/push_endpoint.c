/* push_endpoint: the push request, from method to answer (see push_endpoint.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "compact.h"
#include "cors.h"
#include "hints.h"
#include "jsonr.h"
#include "push.h"
#include "push_endpoint.h"
#ifdef RHTMX_POSTGRES
#include "pg_compact.h"
#include "pg_push.h"
#endif

void
push_endpoint_init(struct push_endpoint *ep, const char *name, const char *config_path)
{
    memset(ep, 0, sizeof(*ep));
    app_init(&ep->app, name, config_path);
}

int
push_endpoint_set_resolver(struct push_endpoint *ep, rhtmx_resolver_fn fn, void *ctx)
{
    struct resolver *r = resolver_new(fn, ctx);

    if (r == NULL)
        return -1;
    resolver_free(ep->linked);
    ep->linked = r;
    return 0;
}

void
push_endpoint_close(struct push_endpoint *ep)
{
    resolver_free(ep->linked);
    resolver_free(ep->loaded);
    app_close(&ep->app);
    memset(ep, 0, sizeof(*ep));
}

/* 1 if the Content-Type is application/json, with or without parameters. */
static int
is_json(const char *ct)
{
    static const char want[] = "application/json";

    if (ct == NULL)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return 0;
    ct += sizeof(want) - 1;
    return *ct == '\0' || *ct == ';' || *ct == ' ' || *ct == '\t';
}

/* The resolver for table t: the registered one, else the configured shared
 * object (loaded now if it is not yet, or if the config names another). */
static int
resolver_for(struct push_endpoint *ep, const struct table *t, const struct resolver **out,
             struct err *e)
{
    const struct config *c = ep->app.cfg;

    *out = NULL;
    if (t->en->strategy != STRATEGY_CUSTOM)
        return 0;
    if (ep->linked != NULL) {
        *out = ep->linked;
        return 0;
    }
    if (c->push.resolver == NULL)
        return 0; /* push_batch answers the 500 naming the entity */
    if (!resolver_is(ep->loaded, c->push.resolver, c->push.resolver_symbol)) {
        resolver_free(ep->loaded);
        ep->loaded = resolver_load(c->push.resolver, c->push.resolver_symbol, e);
        if (ep->loaded == NULL) {
            char m[sizeof(e->msg)];
            snprintf(m, sizeof(m), "%s", e->msg);
            return err_set(e, 500, "config", "%s: %s", c->path, m);
        }
    }
    *out = ep->loaded;
    return 0;
}

/* push_batch() on the configured backend. [pg] */
static int
push_run(struct app *app, const struct table *t, const struct push_opts *o, const char *body,
         size_t n, struct buf *out, struct err *e)
{
#ifdef RHTMX_POSTGRES
    if (app->pg != NULL)
        return pg_push_batch(app->pg, t, o, body, n, out, e);
#endif
    return push_batch(app->db, t, o, body, n, out, e);
}

void
push_endpoint_serve(struct http_req *req, void *ctx)
{
    struct push_endpoint *ep = ctx;
    struct push_opts o = {0};
    struct scope_who sw = {NULL, NULL};
    struct identity who;
    const struct table *t;
    struct buf body = {0}, answer = {0};
    struct sink s;
    struct err e;

    o.now_ms = push_now_ms();                  /* arrival, before any waiting: the LWW clock */
    if (strcmp(req->method, "OPTIONS") == 0) { /* where the web server sends it here */
        if (app_ready(&ep->app, &e) < 0)
            http_error(req, &e);
        else
            cors_options(ep->app.cfg, req, APP_ALLOW_ENTITY, APP_CORS_ENTITY);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        app_method_not_allowed(req, APP_ALLOW_ENTITY);
        return;
    }
    if (app_ready(&ep->app, &e) < 0) {
        http_error(req, &e);
        return;
    }
    cors_headers(ep->app.cfg, req);
    if (auth_request(ep->app.cfg, req, &who, &e) < 0) {
        http_error(req, &e);
        return;
    }
    if ((t = app_entity(&ep->app, req)) == NULL)
        return;
    if (auth_entity_allowed(&who, t->en->name, &e) < 0 ||
        auth_origin_ok(ep->app.cfg, req, &e) < 0 || auth_owner(&who, t->en, &o.owner, &e) < 0) {
        http_error(req, &e);
        return;
    }
    o.user = who.anonymous ? NULL : who.sub;
    if (!is_json(req->in.content_type)) {
        http_fail(req, 415, "unsupported_media_type",
                  "a push must be sent as Content-Type: application/json");
        return;
    }
    o.max_changes = ep->app.cfg->push.max_changes;
    if (t->scope != NULL) { /* scope hook (lib/scope.h) */
        sw.user = who.sub;
        if (t->scope->nclaims > 0)
            sw.claims = jsonr_parse(who.claims, strlen(who.claims), 8, &e);
        o.scope = &sw;
    }
    if (resolver_for(ep, t, &o.resolver, &e) < 0 ||
        http_read_body(req, ep->app.cfg->push.max_body_bytes, &body, &e) < 0 ||
        push_run(&ep->app, t, &o, body.p ? body.p : "", body.len, &answer, &e) < 0) {
        http_error(req, &e); /* the database's words stay in the log */
        goto out;
    }
    http_header(req, "Cache-Control", "no-store");
    hints_header(req, ep->app.cfg);
    s = http_body(req, 200, "application/json");
    sink_write(&s, answer.p, answer.len);
    /* Log retention without cron: at most one bounded batch, at most every
     * COMPACT_INTERVAL, never waiting for the lock (see compact.h). */
    http_flush(req);
#ifdef RHTMX_POSTGRES
    if (ep->app.pg != NULL) /* [pg] */
        pg_compact_maybe(ep->app.pg, ep->app.cfg);
    else
#endif
        compact_maybe(ep->app.db, ep->app.cfg);
out:
    buf_free(&body);
    buf_free(&answer);
    json_object_put(sw.claims);
}
