/*
 * fcgi_pool: serve requests on many threads, for answers that last minutes.
 *
 * runtime.h serves one request at a time, which suits short requests. An event
 * stream holds its request for minutes, so sync-events serves requests on
 * several threads: each owns an FCGX_Request; one more thread only accepts
 * connections and queues them, so bursts leave the listen backlog at once
 * (fcgi_pool.c). Threads start on demand, when the last idle one has just
 * taken a request, and end again when more than a few are idle, so their
 * number follows the number of requests being handled, up to a ceiling. A
 * handler may hand its connection elsewhere and return (sync-events gives open
 * streams to its event loop, streams.h), so a few threads serve thousands of
 * streams. Stacks are small: they only run our handlers and SQLite.
 *
 * The stop signals (runtime.h) are taken by the calling thread with sigwait:
 * on_stop tells the handlers to finish, nothing new is accepted, and
 * fcgi_pool_run returns once every handler has returned. Each request goes
 * through runtime_serve(), as in the one-at-a-time loop. runtime_run() is the
 * one caller, under FastCGI with runtime_opts.max_threads set.
 */
#ifndef RHTMX_FCGI_POOL_H
#define RHTMX_FCGI_POOL_H

#include "http.h"

struct runtime_opts;

/* Run handler for every request until a stop signal, on at most
 * o->max_threads threads. Returns the exit status. */
int fcgi_pool_run(http_handler handler, void *ctx, const struct runtime_opts *o);

#endif
