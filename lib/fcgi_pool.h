/*
 * fcgi_pool: the FastCGI accept loop, on one thread or many.
 *
 * The FastCGI accept loop of every program (runtime.h). Pull, push and
 * client.js serve one request at a time: one request thread, which accepts
 * only when it is free, so the web server's other processes get the
 * connections it is not ready for. An event stream holds its request for
 * minutes, so sync-events serves requests on several threads: each owns an
 * FCGX_Request; one more thread only accepts connections and queues them, so
 * bursts leave the listen backlog at once (fcgi_pool.c). Threads start on
 * demand, when the last idle one has just taken a request, and end again when
 * more than a few are idle, so their number follows the number of requests being handled, up to a
 * ceiling. A handler may hand its connection elsewhere and return (sync-events gives open streams
 * to its event loop, streams.h), so a few threads serve thousands of streams. Their stacks are
 * small: they only run our handlers and SQLite (one thread alone keeps the default, for a conflict
 * resolver we did not write).
 *
 * The stop signals (runtime.h) are taken by the calling thread with sigwait:
 * on_stop tells the handlers to finish, nothing new is accepted, and
 * fcgi_pool_run returns once every handler has returned and every thread it
 * started has been joined (a handler still running RUNTIME_STOP_GRACE_S after
 * the signal ends the process instead). Each request goes
 * through runtime_serve(). runtime_run() is the one caller, under FastCGI.
 */
#ifndef RHTMX_FCGI_POOL_H
#define RHTMX_FCGI_POOL_H

#include "http.h"

struct runtime_opts;

/* Run handler for every request until a stop signal, on at most
 * o->max_threads threads. Returns the exit status. */
int fcgi_pool_run(http_handler handler, void *ctx, const struct runtime_opts *o);

#endif
