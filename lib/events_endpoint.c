/* events_endpoint: GET /api/sync/events, the process side (see events_endpoint.h). */
#include <malloc.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>

#include "auth.h"
#include "cors.h"
#include "events.h"
#include "events_endpoint.h"
#include "log.h"

#define THREADS_OVER_CAP 16 /* without a loop: threads beyond max_streams, for 503s */
#define LOOP_THREADS 32     /* with a loop: threads that accept and open answers */

/* The hub for the configured database, made or replaced as needed (under ep->mu).
 * NULL with e set on failure. */
static struct hub *
current_hub(struct events_endpoint *ep, long long deadline, struct err *e)
{
    const char *path = ep->app.cfg->database;
    size_t i;

    /* Free retired hubs whose streams have all ended. */
    for (i = 0; i < ep->nretired;) {
        if (hub_streams(ep->retired[i]) == 0) {
            hub_free(ep->retired[i]);
            ep->retired[i] = ep->retired[--ep->nretired];
        } else {
            i++;
        }
    }
    if (ep->hub != NULL && strcmp(hub_path(ep->hub), path) == 0)
        return ep->hub;
    if (ep->hub != NULL) {
        if (ep->nretired == EVENTS_MAX_RETIRED) {
            err_set(e, 503, "busy", "the database changed too often: try again later");
            return NULL;
        }
        hub_stop(ep->hub); /* its streams end with "bye" and reconnect to the new one */
        ep->retired[ep->nretired++] = ep->hub;
        ep->hub = NULL;
    }
#ifdef RHTMX_POSTGRES
    if (ep->app.pg != NULL) /* [pg] LISTEN/NOTIFY */
        ep->hub = hub_new_pg(ep->app.cfg->pg, 0, e);
    else
#endif
        ep->hub = hub_new(path, 0, deadline, e);
    if (ep->hub != NULL && ep->loop != NULL)
        hub_listen(ep->hub, streams_wake, ep->loop);
    return ep->hub;
}

void
events_endpoint_serve(struct http_req *req, void *ctx)
{
    struct events_endpoint *ep = ctx;
    struct events_params p;
    struct identity who;
    struct hub *h = NULL;
    struct hangup *hu;
    struct err e;

    memset(&p, 0, sizeof(p));
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "OPTIONS") != 0) {
        app_method_not_allowed(req, APP_ALLOW_EVENTS);
        return;
    }
    pthread_mutex_lock(&ep->mu);
    if (ep->stopping) {
        err_set(&e, 503, "busy", "the event server is shutting down");
        goto fail;
    }
    if (app_ready(&ep->app, &e) < 0)
        goto fail;
    if (strcmp(req->method, "OPTIONS") == 0) {
        cors_options(ep->app.cfg, req, APP_ALLOW_EVENTS, APP_CORS_EVENTS);
        pthread_mutex_unlock(&ep->mu);
        return;
    }
    cors_headers(ep->app.cfg, req);
    if (auth_request(ep->app.cfg, req, &who, &e) < 0 ||
        events_parse(req, ep->app.cfg, &who, &p, &e) < 0)
        goto fail;
    events_schemas(&p, ep->app.schema);
    /* Without the loop (a thread per stream), a cap raised in the config since
     * the start would let streams take the threads kept for refusals: new
     * connections would then wait unanswered instead of getting 503. It
     * applies from the next start. With the loop, streams hold no thread. */
    if (ep->loop == NULL && p.max_streams > ep->stream_cap)
        p.max_streams = ep->stream_cap;
    /* The bound app_ready() started holds for the rest of the request. */
    p.deadline = ep->app.db != NULL ? ep->app.db->deadline : 0; /* [pg] PostgreSQL: lock_timeout */
    if ((h = current_hub(ep, p.deadline, &e)) == NULL)
        goto fail;
    if (ep->loop == NULL && ep->hangup == NULL && !ep->hangup_failed &&
        (ep->hangup = hangup_new(&e)) == NULL) {
        ep->hangup_failed = 1;
        log_msg("%s (clients that leave are noticed at the next heartbeat)", e.msg);
    }
    hu = ep->hangup;
    pthread_mutex_unlock(&ep->mu);
    events_serve(h, hu, ep->loop, &p, req);
    events_params_clear(&p);
    return;
fail:
    pthread_mutex_unlock(&ep->mu);
    events_params_clear(&p);
    if (e.status == 503)
        events_busy(req, &e);
    else
        http_error(req, &e);
}

/* A stop signal: every stream ends with bye (runtime.h's on_stop). */
static void
on_stop(void *ctx)
{
    struct events_endpoint *ep = ctx;
    size_t i;

    pthread_mutex_lock(&ep->mu);
    ep->stopping = 1;
    if (ep->hub != NULL)
        hub_stop(ep->hub);
    for (i = 0; i < ep->nretired; i++)
        hub_stop(ep->retired[i]);
    pthread_mutex_unlock(&ep->mu);
}

void
events_endpoint_init(struct events_endpoint *ep, const char *name, const char *config_path)
{
    struct config *cfg;
    struct rlimit rl;
    struct err e;
    int max_streams = 10000;

    memset(ep, 0, sizeof(*ep));
    pthread_mutex_init(&ep->mu, NULL);
    /* A thread per stream would otherwise spread small allocations over up to 8
     * arenas per core, which fragments and keeps memory resident; events are
     * small and rare, so two arenas cost nothing in contention. */
    mallopt(M_ARENA_MAX, 2);
    /* Each open stream holds a descriptor: allow as many as the hard limit does. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    app_init(&ep->app, name, config_path);
    if (!http_is_cgi() && (ep->loop = streams_new(&e)) == NULL)
        log_msg("%s (a thread per stream instead)", e.msg);
    if (ep->loop != NULL) {
        ep->run.max_threads = LOOP_THREADS;
    } else {
        /* The thread ceiling follows the stream cap of the configuration at
         * start. Only the file is read: the database is the requests'
         * business, each within its own bound on waiting for it (a locked
         * database at start would otherwise hold up the first requests on top
         * of theirs). */
        if (!http_is_cgi() && ep->app.config_path != NULL &&
            (cfg = config_load(ep->app.config_path, &e)) != NULL) {
            max_streams = cfg->events.max_streams;
            config_free(cfg);
        }
        ep->stream_cap = max_streams;
        ep->run.max_threads = (size_t)max_streams + THREADS_OVER_CAP;
    }
    ep->run.on_stop = on_stop;
}

void
events_endpoint_close(struct events_endpoint *ep)
{
    size_t i;

    streams_free(ep->loop); /* bye to every stream still open (the hubs are stopped) */
    hub_free(ep->hub);
    for (i = 0; i < ep->nretired; i++)
        hub_free(ep->retired[i]);
    hangup_free(ep->hangup);
    app_close(&ep->app);
    pthread_mutex_destroy(&ep->mu);
    memset(ep, 0, sizeof(*ep));
}
