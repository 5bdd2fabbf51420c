/*
 * runtime: the serve path of every program (see runtime.h).
 *
 * Two ways in (CGI; FastCGI, always through fcgi_pool.c's accept loop, with
 * one thread or more) and one way through: runtime_serve() for a FastCGI
 * request, serve_cgi() for the CGI one, both built on check_and_handle().
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fcgi_pool.h"
#include "log.h"
#include "runtime.h"

void
runtime_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

/* The limits first, then the handler. */
static void
check_and_handle(struct http_req *req, http_handler handler, void *ctx)
{
    struct err e;

    if (http_req_check(req, &e) < 0)
        http_error(req, &e);
    else
        handler(req, ctx);
}

/*
 * How a FastCGI connection ends. libfcgi shuts its side down and then waits,
 * up to 2 s, for the web server to close first: on TCP, closing with unread
 * input makes the kernel answer with a reset that can destroy the answer in
 * flight. Once the request's input was read to its end (the empty FCGI_STDIN
 * record) the web server sends nothing more on the connection but an
 * FCGI_ABORT_REQUEST, after which it wants no answer anyway; so there is
 * nothing to reset, and the wait would only keep this process, which serves
 * one request at a time, idle for a round trip through the web server. The
 * connection is then closed at once (FCGX_Detach tells libfcgi so);
 * otherwise libfcgi's careful close stands. For a request without a body,
 * web servers send that empty record with the request itself (lighttpd,
 * mod_fcgid: tests/server), so looking for it here does not wait. A
 * connection the handler handed elsewhere (ipcFd -1) is not ours to close.
 */
static void
close_early(struct http_req *req)
{
    FCGX_Request *r = req->fcgx;
    const char *cl;

    if (req->failed || r->ipcFd < 0)
        return;
    if (!FCGX_HasSeenEOF(r->in)) {
        cl = req->in.content_length;
        if (cl != NULL && cl[0] != '\0' && strcmp(cl, "0") != 0)
            return; /* a body the handler did not read to its end */
        if (FCGX_GetChar(r->in) != EOF)
            return;
    }
    FCGX_Detach(r);
}

void
runtime_serve(struct runtime_slot *s, http_handler handler, void *ctx)
{
    struct http_req req;

    http_req_fcgx(&req, &s->r);
    /* The last request's buffers, emptied: no allocations per request for
     * them (a big one was already let go of by the http layer). */
    req.out = s->out;
    req.headers = s->headers;
    check_and_handle(&req, handler, ctx);
    http_req_finish(&req);
    s->out = req.out;
    s->headers = req.headers;
    buf_reset(&s->out);
    buf_reset(&s->headers);
    close_early(&req);
    FCGX_Finish_r(&s->r);
}

/* Under CGI, the thread that takes the stop signals and calls on_stop. */
static struct {
    pthread_mutex_t mu;
    pthread_t tid;
    sigset_t set;
    int done;
    const struct runtime_opts *o;
    void *ctx;
} cgi_sig = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *
cgi_signal_main(void *arg)
{
    int sig, done;

    (void)arg;
    for (;;) {
        if (sigwait(&cgi_sig.set, &sig) != 0)
            continue;
        pthread_mutex_lock(&cgi_sig.mu);
        done = cgi_sig.done;
        pthread_mutex_unlock(&cgi_sig.mu);
        if (done)
            return NULL;
        cgi_sig.o->on_stop(cgi_sig.ctx);
    }
}

/* The one CGI request. */
static int
serve_cgi(http_handler handler, void *ctx, const struct runtime_opts *o)
{
    static char outbuf[65536];
    struct http_req req;
    int have_thread = 0;

    signal(SIGPIPE, SIG_IGN);
    if (o != NULL && o->on_stop != NULL) {
        runtime_stop_signals(&cgi_sig.set);
        pthread_sigmask(SIG_BLOCK, &cgi_sig.set, NULL);
        cgi_sig.o = o;
        cgi_sig.ctx = ctx;
        have_thread = pthread_create(&cgi_sig.tid, NULL, cgi_signal_main, NULL) == 0;
    }
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    http_req_cgi(&req);
    check_and_handle(&req, handler, ctx);
    http_req_end(&req);
    /* The answer is whole: closing stdout ends it for the web server now,
     * while this process still closes its database (a checkpoint attempt,
     * freeing the parsed schema) and exits. */
    fclose(stdout);
    if (have_thread) {
        pthread_mutex_lock(&cgi_sig.mu);
        cgi_sig.done = 1;
        pthread_mutex_unlock(&cgi_sig.mu);
        pthread_kill(cgi_sig.tid, SIGUSR1);
        pthread_join(cgi_sig.tid, NULL);
    }
    return 0;
}

int
runtime_run(http_handler handler, void *ctx, const struct runtime_opts *o)
{
    struct runtime_opts one = {1, 0, NULL};

    if (FCGX_IsCGI())
        return serve_cgi(handler, ctx, o);
    if (o != NULL && o->max_threads > 0)
        return fcgi_pool_run(handler, ctx, o);
    if (o != NULL)
        one.on_stop = o->on_stop;
    return fcgi_pool_run(handler, ctx, &one); /* one request at a time */
}
