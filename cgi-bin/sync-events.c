/*
 * sync-events: GET /api/sync/events?entities=a,b&since=V[&mode=poll]
 *
 * Tells open pages, within milliseconds, that data changed: a Server-Sent
 * Events stream (or one poll) per request, fed by one watcher per process
 * (docs/PROTOCOL.md, docs/EVENTS.md). Under FastCGI one process serves many
 * streams at once: a few threads accept and open answers (fcgi_pool.h), then
 * hand every open stream to one event loop (streams.h); under plain CGI it
 * answers one request and exits.
 *
 * What the threads share lives in `g`, under g.mu: the app (configuration,
 * schema), the hub of the configured database, the loop and the hang-up
 * watcher. A request holds g.mu only while it checks its input; the answer
 * itself runs without it.
 *
 * Descriptors: each open stream holds one (its FastCGI connection), so the
 * soft RLIMIT_NOFILE is raised to the hard limit at start. Beyond it, accept()
 * fails with EMFILE: the pool logs it once a second and retries every 100 ms,
 * and the web server's connections wait in the listen backlog meanwhile (see
 * docs/EVENTS.md, "Many pages").
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "app.h"
#include "auth.h"
#include "cors.h"
#include "events.h"
#include "fcgi_pool.h"
#include "hangup.h"
#include "hub.h"
#include "streams.h"

#define MAX_RETIRED 16
#define THREADS_OVER_CAP 16 /* without a loop: threads beyond max_streams, for 503s */
#define LOOP_THREADS 32     /* with a loop: threads that accept and open answers */

static struct {
    pthread_mutex_t mu;
    struct app app;
    struct hub *hub;                  /* of app.cfg->database */
    struct hub *retired[MAX_RETIRED]; /* hubs of a database the config no longer names */
    size_t nretired;
    struct streams *loop; /* NULL under CGI, or if it could not start */
    struct hangup *hangup;
    int hangup_failed;
    int stopping;
    int stream_cap; /* without the loop: events.max_streams at start, the thread ceiling */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The hub for the configured database, made or replaced as needed (under g.mu).
 * NULL with e set on failure. */
static struct hub *
current_hub(long long deadline, struct err *e)
{
    const char *path = g.app.cfg->database;
    size_t i;

    /* Free retired hubs whose streams have all ended. */
    for (i = 0; i < g.nretired;) {
        if (hub_streams(g.retired[i]) == 0) {
            hub_free(g.retired[i]);
            g.retired[i] = g.retired[--g.nretired];
        } else {
            i++;
        }
    }
    if (g.hub != NULL && strcmp(hub_path(g.hub), path) == 0)
        return g.hub;
    if (g.hub != NULL) {
        if (g.nretired == MAX_RETIRED) {
            err_set(e, 503, "busy", "the database changed too often: try again later");
            return NULL;
        }
        hub_stop(g.hub); /* its streams end with "bye" and reconnect to the new one */
        g.retired[g.nretired++] = g.hub;
        g.hub = NULL;
    }
#ifdef RHTMX_POSTGRES
    if (g.app.pg != NULL) /* [pg] LISTEN/NOTIFY */
        g.hub = hub_new_pg(g.app.cfg->pg, 0, e);
    else
#endif
        g.hub = hub_new(path, 0, deadline, e);
    if (g.hub != NULL && g.loop != NULL)
        hub_listen(g.hub, streams_wake, g.loop);
    return g.hub;
}

static void
handle(struct http_req *req, void *ctx)
{
    struct events_params p;
    struct identity who;
    struct hub *h = NULL;
    struct hangup *hu;
    struct err e;

    (void)ctx;
    memset(&p, 0, sizeof(p));
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "OPTIONS") != 0) {
        app_method_not_allowed(req, APP_ALLOW_EVENTS);
        return;
    }
    pthread_mutex_lock(&g.mu);
    if (g.stopping) {
        err_set(&e, 503, "busy", "the event server is shutting down");
        goto fail;
    }
    if (app_ready(&g.app, &e) < 0)
        goto fail;
    if (strcmp(req->method, "OPTIONS") == 0) {
        cors_options(g.app.cfg, req, APP_ALLOW_EVENTS, APP_CORS_EVENTS);
        pthread_mutex_unlock(&g.mu);
        return;
    }
    cors_headers(g.app.cfg, req);
    if (auth_request(g.app.cfg, req, &who, &e) < 0 ||
        events_parse(req, g.app.cfg, &who, &p, &e) < 0)
        goto fail;
    /* Without the loop (a thread per stream), a cap raised in the config since
     * the start would let streams take the threads kept for refusals: new
     * connections would then wait unanswered instead of getting 503. It
     * applies from the next start. With the loop, streams hold no thread. */
    if (g.loop == NULL && p.max_streams > g.stream_cap)
        p.max_streams = g.stream_cap;
    /* The bound app_ready() started holds for the rest of the request. */
    p.deadline = g.app.db != NULL ? g.app.db->deadline : 0; /* [pg] PostgreSQL: lock_timeout */
    if ((h = current_hub(p.deadline, &e)) == NULL)
        goto fail;
    if (g.loop == NULL && g.hangup == NULL && !g.hangup_failed &&
        (g.hangup = hangup_new(&e)) == NULL) {
        g.hangup_failed = 1;
        fprintf(stderr, "sync-events: %s (clients that leave are noticed at the next heartbeat)\n",
                e.msg);
    }
    hu = g.hangup;
    pthread_mutex_unlock(&g.mu);
    events_serve(h, hu, g.loop, &p, req);
    events_params_clear(&p);
    return;
fail:
    pthread_mutex_unlock(&g.mu);
    events_params_clear(&p);
    if (e.status == 503)
        events_busy(req, &e);
    else
        http_error(req, &e);
}

static void
on_stop(void *ctx)
{
    size_t i;

    (void)ctx;
    pthread_mutex_lock(&g.mu);
    g.stopping = 1;
    if (g.hub != NULL)
        hub_stop(g.hub);
    for (i = 0; i < g.nretired; i++)
        hub_stop(g.retired[i]);
    pthread_mutex_unlock(&g.mu);
}

int
main(void)
{
    struct fcgi_pool_opts o = {0};
    struct config *cfg;
    struct err e;
    size_t i;
    int rc, max_streams = 10000;

    /* A thread per stream would otherwise spread small allocations over up to 8
     * arenas per core, which fragments and keeps memory resident; events are
     * small and rare, so two arenas cost nothing in contention. */
    mallopt(M_ARENA_MAX, 2);
    /* Each open stream holds a descriptor: allow as many as the hard limit does. */
    {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    app_init(&g.app, "sync-events", NULL);
    if (!http_is_cgi() && (g.loop = streams_new(&e)) == NULL)
        fprintf(stderr, "sync-events: %s (a thread per stream instead)\n", e.msg);
    if (g.loop != NULL) {
        o.max_threads = LOOP_THREADS;
    } else {
        /* The thread ceiling follows the stream cap of the configuration at
         * start. Only the file is read: the database is the requests'
         * business, each within its own bound on waiting for it (a locked
         * database at start would otherwise hold up the first requests on top
         * of theirs). */
        if (!http_is_cgi() && g.app.config_path != NULL &&
            (cfg = config_load(g.app.config_path, &e)) != NULL) {
            max_streams = cfg->events.max_streams;
            config_free(cfg);
        }
        g.stream_cap = max_streams;
        o.max_threads = (size_t)max_streams + THREADS_OVER_CAP;
    }
    o.on_stop = on_stop;
    rc = fcgi_pool_run(handle, NULL, &o);

    streams_free(g.loop); /* bye to every stream still open (the hubs are stopped) */
    hub_free(g.hub);
    for (i = 0; i < g.nretired; i++)
        hub_free(g.retired[i]);
    hangup_free(g.hangup);
    app_close(&g.app);
    return rc;
}
