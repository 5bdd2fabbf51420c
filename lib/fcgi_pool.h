/*
 * fcgi_pool: serve requests on many threads, for answers that last minutes.
 *
 * http_run serves one request at a time, which suits short requests. An event
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
 * SIGTERM, SIGINT, SIGHUP and SIGUSR1 (what web servers send to stop FastCGI
 * processes) start a graceful stop: on_stop tells the handlers to finish,
 * nothing new is accepted, and fcgi_pool_run returns once every handler has
 * returned. SIGPIPE is ignored: a peer that went away shows as a failed write.
 *
 * Under plain CGI the handler runs once, on the calling thread, with the same
 * signal handling.
 */
#ifndef RHTMX_FCGI_POOL_H
#define RHTMX_FCGI_POOL_H

#include <stddef.h>

#include "http.h"

struct fcgi_pool_opts {
    size_t max_threads; /* ceiling on request threads (0: 1024) */
    size_t spare;       /* idle threads kept (0: 4) */
    /* Called once, from the signal thread, when a stop signal arrives; it must
     * make long-running handlers return. May be NULL. */
    void (*on_stop)(void *ctx);
};

/* Run handler for every request until a stop signal. Returns the exit status. */
int fcgi_pool_run(http_handler handler, void *ctx, const struct fcgi_pool_opts *o);

/* The stack size of request threads, in bytes. */
size_t fcgi_pool_stack_size(void);

#endif
