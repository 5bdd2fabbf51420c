/*
 * events_endpoint: GET /api/sync/events?entities=a,b&since=V[&mode=poll], the
 * process side of the event streams.
 *
 * Tells open pages, within milliseconds, that data changed: a Server-Sent
 * Events stream (or one poll) per request, fed by one watcher per process
 * (docs/PROTOCOL.md, docs/EVENTS.md). Under FastCGI one process serves many
 * streams at once: a few threads accept and open answers (run.max_threads,
 * fcgi_pool.h), then hand every open stream to one event loop (streams.h);
 * under plain CGI it answers one request and exits. The answer itself is
 * events.h's.
 *
 * What the threads share lives in the endpoint, under mu: the app
 * (configuration, schema), the hub of the configured database, the loop and
 * the hang-up watcher. A request holds mu only while it checks its input; the
 * answer runs without it. A stop signal (run.on_stop) ends every stream with
 * bye.
 *
 * Descriptors: each open stream holds one (its FastCGI connection), so init
 * raises the soft RLIMIT_NOFILE to the hard limit. Beyond it, accept() fails
 * with EMFILE: the pool logs it once a second and retries every 100 ms, and
 * the web server's connections wait in the listen backlog meanwhile (see
 * docs/EVENTS.md, "Many pages").
 *
 * The endpoint's shape (_init, _serve, _close, run) is that of every endpoint:
 * see pull_endpoint.h.
 */
#ifndef RHTMX_EVENTS_ENDPOINT_H
#define RHTMX_EVENTS_ENDPOINT_H

#include <pthread.h>

#include "app.h"
#include "hangup.h"
#include "http.h"
#include "hub.h"
#include "runtime.h"
#include "streams.h"

#define EVENTS_MAX_RETIRED 16

struct events_endpoint {
    pthread_mutex_t mu;
    struct app app;
    struct hub *hub;                         /* of app.cfg->database */
    struct hub *retired[EVENTS_MAX_RETIRED]; /* hubs of a database the config no longer names */
    size_t nretired;
    struct streams *loop; /* NULL under CGI, or if it could not start */
    struct hangup *hangup;
    int hangup_failed;
    int stopping;
    int stream_cap;          /* without the loop: events.max_streams at start, the thread ceiling */
    struct runtime_opts run; /* threads and the stop, set by init */
};

/* Set up ep for program name (static string); config_path NULL: locate it.
 * Raises the descriptor limit and starts the event loop under FastCGI. */
void events_endpoint_init(struct events_endpoint *ep, const char *name, const char *config_path);

/* The handler: ctx is the struct events_endpoint. */
void events_endpoint_serve(struct http_req *req, void *ctx);

/* Release everything: streams still open get bye. */
void events_endpoint_close(struct events_endpoint *ep);

#endif
