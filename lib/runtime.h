/*
 * runtime: how a program serves its requests, under CGI or FastCGI.
 *
 * One serve path for every program. Under plain CGI (FCGX_IsCGI()) the
 * request is the process environment, stdin and stdout: it is served once, and
 * stdout is closed as soon as the answer is whole, so the web server ends the
 * response while the program still tidies up (closing its database) and exits.
 * Under FastCGI requests are served by the one accept loop of fcgi_pool.h:
 * on one thread, one request at a time (the default: short requests, and the
 * web server's other processes take the connections this one is not ready
 * for), or with runtime_opts.max_threads on that many, for answers that last
 * minutes. Either way each request passes the same steps (runtime_serve): the
 * limits of http_req_check (414/431), the handler, the end of the answer, and
 * the connection's early close.
 *
 * Signals: SIGTERM, SIGINT, SIGHUP and SIGUSR1 (what web servers send to stop
 * FastCGI processes) start a graceful stop: on_stop tells long-running
 * handlers to finish, nothing new is accepted, the requests being served are
 * finished, and runtime_run returns once the handlers have returned and every
 * thread the runtime started has been joined. A request still being served
 * RUNTIME_STOP_GRACE_S after the signal ends the process at once (exit status
 * 1), as a hung request does when the web server is gone (parent.h). Under CGI they only call
 * on_stop (when given), so a long answer ends on purpose. SIGPIPE is ignored: a peer that went away
 * shows as a failed write.
 */
#ifndef RHTMX_RUNTIME_H
#define RHTMX_RUNTIME_H

#include <signal.h>
#include <stddef.h>

#include <fcgiapp.h>

#include "buf.h"
#include "http.h"

#define RUNTIME_STOP_GRACE_S 10

struct runtime_opts {
    size_t max_threads; /* 0: one request at a time; else this many threads at most */
    size_t spare;       /* pool: idle threads kept (0: 4) */
    /* Called once per stop signal, from a thread of its own; it must make
     * long-running handlers return. May be NULL. */
    void (*on_stop)(void *ctx);
};

/* Serve handler (with ctx) until the end: one request under CGI, else until a
 * stop signal. o may be NULL (one request at a time, no on_stop). Returns the
 * process exit status. */
int runtime_run(http_handler handler, void *ctx, const struct runtime_opts *o);

/* What a FastCGI thread keeps between its requests: libfcgi's request and
 * the answer's buffers, reused so a request allocates none for them. */
struct runtime_slot {
    FCGX_Request r;
    struct buf out, headers;
};

/* Serve the request just accepted into s->r: limits, handler, the end of the
 * answer, the early close, FCGX_Finish_r. */
void runtime_serve(struct runtime_slot *s, http_handler handler, void *ctx);

/* The stop signals, into set. */
void runtime_stop_signals(sigset_t *set);

#endif
