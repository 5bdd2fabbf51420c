/* pull_endpoint: the pull request, from method to answer (see pull_endpoint.h). */
#include <string.h>

#include "auth.h"
#include "changelog.h"
#include "cors.h"
#include "hints.h"
#include "jsonr.h"
#include "pull_endpoint.h"
#include "scope.h"
#ifdef RHTMX_POSTGRES
#include "pg_pull.h"
#endif

enum { P_SINCE, P_LIMIT, P_FULL, P__COUNT };

/*
 * The app wrote rows of t since the log was last sealed (schema.h): copy them
 * into their entries before answering, so that whatever this client sees now
 * is the merge base its later pushes are compared against. A short write
 * transaction of its own, then the read transaction again; nothing to do for
 * a database this process cannot write (the answer reads rows from the table
 * all the same).
 */
static int
pull_seal(struct app *app, const struct table *t, struct err *e)
{
    if (app->db->readonly || !schema_unsealed(app->db, t))
        return 0;
    db_rollback(app->db);
    if (db_begin_write(app->db, e) < 0)
        return -1;
    if (schema_seal(app->db, t, e) < 0 || db_commit(app->db, e) < 0) {
        db_rollback(app->db);
        return -1;
    }
    return db_begin_read(app->db, e);
}

/* The answer from the configured backend. [pg] */
static int
pull_run(struct app *app, const struct table *t, const struct pull_args *a,
         const struct scope_who *w, const struct sink *out, struct err *e)
{
#ifdef RHTMX_POSTGRES
    if (app->pg != NULL)
        return pg_pull(app->pg, t, a, t->scope != NULL ? w : NULL, out, e);
#else
    (void)t;
    (void)w;
#endif
    return changelog_pull(app->db, a, out, e);
}

static void
bind_scope(sqlite3_stmt *st, const void *ctx)
{
    scope_bind(st, ctx);
}

/*
 * scope hook (lib/scope.h): for an entity with a scope, bring the caller's
 * view up to date and read it instead of the log. A cursor below the view's
 * birth (it was rebuilt: a new scope, other claims, or a user back after a
 * long absence) cannot be resumed: 410, as for one below the horizon.
 */
static int
pull_scope(struct app *app, const struct table *t, struct pull_args *a, struct scope_who *w,
           struct buf *sql, struct err *e)
{
    long long born, head;

    if (scope_reconcile(app->db, t, w, &born, e) < 0)
        return -1;
    if (!a->full && a->since > 0 && a->since < born) {
        if ((head = db_head(app->db, e)) < 0)
            return -1;
        err_set(e, 410, "resync_required",
                "cursor %lld is older than this user's view of %s (rebuilt at %lld): pull from "
                "since=0",
                a->since, t->en->name, born);
        e->version = head;
        return -1;
    }
    scope_pull_sql(sql, t);
    a->bind = bind_scope;
    a->bind_ctx = w;
    return 0;
}

static void
serve(struct http_req *req, struct app *app)
{
    const struct table *t;
    struct http_param params[P__COUNT] = {
        [P_SINCE] = {"since", 0, (1LL << 62), 0, HTTP_INT, NULL},
        [P_FULL] = {"full", 0, 1, 0, HTTP_INT, NULL}, /* 1: a later page of a full sync */
        [P_LIMIT] = {"limit", 1, 10000, 0, HTTP_INT, NULL},
    };
    struct http_value v[P__COUNT];
    struct identity who;
    struct pull_args a = {0};
    struct buf sql = {0};
    struct sink out;
    struct err e;
    struct scope_who w = {NULL, NULL};

    if (strcmp(req->method, "OPTIONS") == 0) { /* a preflight, for sync-push too */
        if (app_ready(app, &e) < 0)
            http_error(req, &e);
        else
            cors_options(app->cfg, req, APP_ALLOW_ENTITY, APP_CORS_ENTITY);
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        app_method_not_allowed(req, APP_ALLOW_ENTITY);
        return;
    }
    if (app_ready_read(app, &e) < 0) {
        http_error(req, &e);
        return;
    }
    cors_headers(app->cfg, req);
    if (auth_request(app->cfg, req, &who, &e) < 0) {
        http_error(req, &e);
        return;
    }
    if ((t = app_entity(app, req)) == NULL)
        return;
    if (auth_entity_allowed(&who, t->en->name, &e) < 0 ||
        auth_owner(&who, t->en, &a.owner, &e) < 0) {
        http_error(req, &e);
        return;
    }
    params[P_LIMIT].max = app->cfg->pull.max_limit;
    params[P_LIMIT].def = app->cfg->pull.default_limit;
    if (http_query(req, params, P__COUNT, v, &e) < 0) {
        http_error(req, &e);
        return;
    }
    a.entity = t->en->name;
    a.since = v[P_SINCE].n;
    a.limit = v[P_LIMIT].n;
    a.full = v[P_FULL].n == 1 || a.since == 0;
    a.schema = t->fingerprint;
    a.bind = NULL;
    a.bind_ctx = NULL;
    if (app->pg == NULL) { /* [pg] SQLite only: PostgreSQL's log holds its rows already */
        if (pull_seal(app, t, &e) < 0) {
            http_error(req, &e);
            return;
        }
        if (t->scope != NULL) {
            w.user = who.sub;
            if (t->scope->nclaims > 0)
                w.claims = jsonr_parse(who.claims, strlen(who.claims), 8, &e);
            if (pull_scope(app, t, &a, &w, &sql, &e) < 0) {
                http_error(req, &e);
                goto out;
            }
        } else {
            schema_pull_sql(&sql, t);
        }
        a.sql = sql.p;
    } else if (t->scope != NULL) { /* [pg] the scope hook is in pg_pull (pg_scope.h) */
        w.user = who.sub;
        if (t->scope->nclaims > 0)
            w.claims = jsonr_parse(who.claims, strlen(who.claims), 8, &e);
    }

    http_header(req, "Cache-Control", "no-store");
    hints_header(req, app->cfg);
    /* Pages compress about tenfold; a small answer is not worth a gzip header. */
    http_gzip_over(req, (size_t)app->cfg->pull.gzip_min_bytes);
    out = http_body(req, 200, "application/json");
    if (pull_run(app, t, &a, &w, &out, &e) < 0)
        http_error(req, &e);
out:
    buf_free(&sql);
    json_object_put(w.claims);
}

void
pull_endpoint_init(struct pull_endpoint *ep, const char *name, const char *config_path)
{
    memset(ep, 0, sizeof(*ep));
    app_init(&ep->app, name, config_path);
}

/* The read transaction app_ready_read() opened, if it did, ends here, after
 * the answer: the pull reads inside it. */
void
pull_endpoint_serve(struct http_req *req, void *ctx)
{
    struct pull_endpoint *ep = ctx;

    serve(req, &ep->app);
    if (ep->app.db != NULL)
        db_rollback(ep->app.db);
}

void
pull_endpoint_close(struct pull_endpoint *ep)
{
    app_close(&ep->app);
    memset(ep, 0, sizeof(*ep));
}
