/*
 * fcgi_pool: see fcgi_pool.h.
 *
 * Thread accounting, all under pool.mu: nthreads counts the request threads,
 * idle those waiting for (or inside) the accept. A thread that accepted a
 * request starts a new one if it was the last idle thread; a thread that
 * finished its request ends if enough others are idle. A thread whose
 * connection the web server keeps open (FCGI_KEEP_CONN) waits on that
 * connection for its next request instead and is not idle.
 *
 * Stopping: the signal thread (the caller's, under FastCGI) sets stopping,
 * wakes the threads waiting for the acceptor's queue, and interrupts every
 * thread inside FCGX_Accept_r (blocked in accept(), or reading the next
 * request of a kept connection) and the acceptor with SIGUSR2, whose handler
 * does nothing but make the call fail with EINTR (FCGI_FAIL_ACCEPT_ON_INTR). It
 * repeats that every STOP_POKE_MS until no thread is left, since a signal that
 * arrives just before a thread enters accept() is lost. A signal, not the
 * listening socket shut down or a pipe: the socket is shared with the web
 * server's other processes of the program (a shutdown would end their accept
 * too), and libfcgi's accept() waits on nothing else. A thread serving a
 * request finishes it; if one is still at it STOP_GRACE_S after the signal, the
 * process exits at once (_exit) rather than hang.
 *
 * Every thread is joinable and joined before fcgi_pool_run returns, so none
 * still runs (or holds its stack and thread-local memory) when the program
 * closes its endpoint and exits. A request thread that ends takes the place of
 * gone, the one that ended before it, and joins that one once it has let go
 * of mu; fcgi_pool_run joins the last one and the acceptor.
 *
 * Bursts: one acceptor thread does nothing but accept() and queue the new
 * connections; request threads take them from the queue and let libfcgi read
 * the request from the given descriptor (FCGX_Accept_r skips its own accept()
 * when ipcFd is set; keepConnection set beforehand keeps its FCGX_Finish_r
 * from closing it). So the listen backlog, which the kernel caps at
 * net.core.somaxconn, is emptied as fast as connections arrive, not at the
 * pace the requests are answered: 5,000 pages opening at once wait in this
 * queue, not in a backlog that overflows into the web server's 500s. Without
 * the thread (FCGI_WEB_SERVER_ADDRS set: libfcgi's accept checks the peer
 * address) the request threads accept in turn, as before.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "fcgi_pool.h"
#include "log.h"
#include "monotime.h"
#include "parent.h"
#include "runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define STACK_SIZE (1024 * 1024) /* ASan's redzones make frames several times larger */
#else
#define STACK_SIZE (256 * 1024)
#endif
#define SEND_TIMEOUT_S 20 /* a web server that takes no bytes for this long is gone */
#define STOP_POKE_MS 20   /* at stop, SIGUSR2 to the threads in accept this often */
#define STOP_GRACE_S RUNTIME_STOP_GRACE_S

struct worker {
    pthread_t tid;
    int in_accept;
    struct worker *prev, *next;
};

static struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cond;   /* nthreads went down */
    pthread_cond_t queued; /* a connection was queued, or stopping */
    pthread_mutex_t accept_mu;
    /* The acceptor's queue (under mu): accepted connections, oldest at head. */
    int *q;
    size_t qhead, qlen, qcap;
    pthread_t acceptor;
    int acceptor_running, acceptor_done;
    pthread_attr_t attr;
    size_t nthreads, idle, max, spare;
    int stopping;
    /* The request thread that ended last, not joined yet (have_gone): the
     * next one to end joins it, fcgi_pool_run the last. */
    pthread_t gone;
    int have_gone;
    struct worker *workers;
    http_handler handler;
    void *ctx;
} pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .queued = PTHREAD_COND_INITIALIZER,
    .accept_mu = PTHREAD_MUTEX_INITIALIZER,
};

static void
on_usr2(int sig)
{
    (void)sig; /* only there to interrupt accept() */
}

static void
setup_signals(sigset_t *set)
{
    struct sigaction sa;

    runtime_stop_signals(set); /* blocked in every thread, taken with sigwait */
    pthread_sigmask(SIG_BLOCK, set, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_usr2; /* no SA_RESTART: accept() must fail with EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}

static void *worker_main(void *arg);

/* Start one more idle thread (under mu). */
static void
spawn(struct pool *p)
{
    struct worker *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return;
    p->nthreads++;
    p->idle++;
    w->next = p->workers;
    if (p->workers != NULL)
        p->workers->prev = w;
    p->workers = w;
    if (pthread_create(&w->tid, &p->attr, worker_main, w) != 0) {
        p->nthreads--;
        p->idle--;
        p->workers = w->next;
        if (w->next != NULL)
            w->next->prev = NULL;
        free(w);
        log_msg("cannot start a request thread (%zu running)", p->nthreads);
    }
}

/* 1 if errno from a failed accept is worth waiting out. */
static int
transient(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM || err == EAGAIN ||
           err == ECONNABORTED || err == EPROTO;
}

/* Append fd to the queue (under mu). -1 when out of memory. */
static int
queue_push(struct pool *p, int fd)
{
    if (p->qlen == p->qcap) {
        size_t cap = p->qcap ? p->qcap * 2 : 1024, i;
        int *q = malloc(cap * sizeof(*q));
        if (q == NULL)
            return -1;
        for (i = 0; i < p->qlen; i++)
            q[i] = p->q[(p->qhead + i) % p->qcap];
        free(p->q);
        p->q = q;
        p->qhead = 0;
        p->qcap = cap;
    }
    p->q[(p->qhead + p->qlen) % p->qcap] = fd;
    p->qlen++;
    return 0;
}

/* Accept connections on libfcgi's listen socket until stopping. */
static void *
acceptor_main(void *arg)
{
    struct pool *p = arg;

    for (;;) {
        int fd = accept(0, NULL, NULL), err = errno, stop;

        pthread_mutex_lock(&p->mu);
        stop = p->stopping;
        if (fd >= 0 && !stop && queue_push(p, fd) == 0) {
            pthread_cond_signal(&p->queued);
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        if (fd >= 0) {
            close(fd); /* stopping, or no memory: the web server retries */
        } else if (!stop && transient(err)) {
            static time_t last;
            time_t now = time(NULL);
            if (now != last)
                log_msg("accept: %s (retrying)", strerror(err));
            last = now;
            usleep(100 * 1000);
        } else if (!stop && err != EINTR) {
            log_msg("accept: %s: stopping", strerror(err));
            kill(getpid(), SIGTERM);
            break;
        }
        if (stop)
            break;
    }
    pthread_mutex_lock(&p->mu);
    p->acceptor_done = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* The next queued connection into r (under mu, waiting for one). 0, or -1
 * when stopping. */
static int
queue_take(struct pool *p, FCGX_Request *r)
{
    while (p->qlen == 0 && !p->stopping)
        pthread_cond_wait(&p->queued, &p->mu);
    if (p->stopping)
        return -1;
    r->ipcFd = p->q[p->qhead];
    r->keepConnection = 1; /* FCGX_Accept_r's FCGX_Finish_r must not close it */
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qlen--;
    return 0;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    struct pool *p = &pool;
    struct runtime_slot slot;
    FCGX_Request *r = &slot.r;
    int idle = 1; /* spawn() counted this thread as idle */
    pthread_t before;
    int join_before;

    memset(&slot, 0, sizeof(slot));
    FCGX_InitRequest(r, 0, FCGI_FAIL_ACCEPT_ON_INTR);
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        int kept = r->ipcFd >= 0, rc, err;

        /* With the acceptor, a connection from its queue; libfcgi then only
         * reads the request from it (accept_mu is not needed). */
        int queued = !kept && p->acceptor_running;

        if (queued && queue_take(p, r) < 0)
            break;
        pthread_mutex_unlock(&p->mu);
        if (!kept && !queued)
            pthread_mutex_lock(&p->accept_mu);
        pthread_mutex_lock(&p->mu);
        if (p->stopping) {
            if (!kept && !queued)
                pthread_mutex_unlock(&p->accept_mu);
            break;
        }
        w->in_accept = 1;
        pthread_mutex_unlock(&p->mu);

        rc = FCGX_Accept_r(r);
        err = errno;

        pthread_mutex_lock(&p->mu);
        w->in_accept = 0;
        if (!kept && !queued)
            pthread_mutex_unlock(&p->accept_mu);
        if (rc < 0) {
            if (p->stopping)
                break;
            if (!idle) {
                idle = 1; /* the kept connection ended: back to accepting */
                p->idle++;
            }
            if (err == EINTR)
                continue;
            if (transient(err)) {
                static time_t last;
                time_t now = time(NULL);
                if (now != last)
                    log_msg("accept: %s (retrying)", strerror(err));
                last = now;
                pthread_mutex_unlock(&p->mu);
                usleep(100 * 1000);
                pthread_mutex_lock(&p->mu);
                continue;
            }
            log_msg("accept: %s: stopping", strerror(err));
            kill(getpid(), SIGTERM);
            break;
        }
        if (idle) {
            idle = 0;
            p->idle--;
        }
        if (p->idle == 0 && p->nthreads < p->max)
            spawn(p);
        pthread_mutex_unlock(&p->mu);

        {
            struct timeval tv = {SEND_TIMEOUT_S, 0};
            setsockopt(r->ipcFd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        runtime_serve(&slot, p->handler, p->ctx);

        pthread_mutex_lock(&p->mu);
        if (r->ipcFd >= 0)
            continue; /* kept: the next request comes on this connection */
        if (p->idle >= p->spare)
            break; /* enough threads wait already */
        idle = 1;
        p->idle++;
    }
    /* Leaving, with mu held: this thread becomes gone, and joins the one
     * that was. */
    if (idle)
        p->idle--;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        p->workers = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    before = p->gone;
    join_before = p->have_gone;
    p->gone = pthread_self();
    p->have_gone = 1;
    p->nthreads--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    FCGX_Free(r, 1);
    buf_free(&slot.out);
    buf_free(&slot.headers);
    free(w);
    if (join_before)
        pthread_join(before, NULL);
    return NULL;
}

/* Wait (under mu) until every thread has ended or STOP_GRACE_S has passed
 * since the stop, interrupting those in accept. 0, or -1 when the time is up. */
static int
stop_threads(struct pool *p)
{
    struct timespec end = monotime_in_ms(STOP_GRACE_S * 1000L);

    while (p->nthreads > 0 || (p->acceptor_running && !p->acceptor_done)) {
        struct timespec ts;
        struct worker *w;

        if (!monotime_before(monotime_now(), end))
            return -1;
        for (w = p->workers; w != NULL; w = w->next)
            if (w->in_accept)
                pthread_kill(w->tid, SIGUSR2);
        if (p->acceptor_running && !p->acceptor_done)
            pthread_kill(p->acceptor, SIGUSR2);
        clock_gettime(CLOCK_REALTIME, &ts); /* the clock of p->cond */
        ts = monotime_add_ms(ts, STOP_POKE_MS);
        pthread_cond_timedwait(&p->cond, &p->mu, &ts);
    }
    return 0;
}

int
fcgi_pool_run(http_handler handler, void *ctx, const struct runtime_opts *o)
{
    struct pool *p = &pool;
    sigset_t set;
    int sig = 0;

    p->handler = handler;
    p->ctx = ctx;
    p->max = o->max_threads ? o->max_threads : 1024;
    p->spare = o->spare ? o->spare : 4;
    setup_signals(&set);
    parent_watch();
    if (FCGX_Init() != 0) {
        log_msg("cannot initialise FastCGI");
        parent_unwatch();
        return 1;
    }
    pthread_attr_init(&p->attr);
    /* One thread (a program that serves one request at a time) keeps the
     * default stack: its handler may run code we did not write (a linked or
     * loaded conflict resolver). */
    if (p->max > 1)
        pthread_attr_setstacksize(&p->attr, STACK_SIZE);
    pthread_mutex_lock(&p->mu);
    /* One request at a time takes connections from the socket only when it
     * can serve them: the web server's other processes get the rest. */
    if (p->max > 1 && getenv("FCGI_WEB_SERVER_ADDRS") == NULL &&
        pthread_create(&p->acceptor, &p->attr, acceptor_main, p) == 0)
        p->acceptor_running = 1;
    spawn(p);
    if (p->nthreads == 0) {
        pthread_mutex_unlock(&p->mu);
        parent_unwatch();
        return 1;
    }
    pthread_mutex_unlock(&p->mu);

    while (sigwait(&set, &sig) != 0)
        ;
    if (o->on_stop != NULL)
        o->on_stop(p->ctx);

    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->queued);
    if (stop_threads(p) < 0) {
        /* The threads use the caller's ctx: returning would free it under
         * them. */
        log_msg("%zu request(s) still running %d s after the stop signal: exiting", p->nthreads,
                STOP_GRACE_S);
        _exit(1);
    }
    /* Joined under mu: no thread takes it again once it counted itself out. */
    if (p->have_gone)
        pthread_join(p->gone, NULL); /* after it, every request thread has ended */
    p->have_gone = 0;
    if (p->acceptor_running)
        pthread_join(p->acceptor, NULL);
    p->acceptor_running = 0;
    while (p->qlen > 0) { /* accepted, never answered: the web server sees them close */
        close(p->q[p->qhead]);
        p->qhead = (p->qhead + 1) % p->qcap;
        p->qlen--;
    }
    free(p->q);
    p->q = NULL;
    pthread_mutex_unlock(&p->mu);
    pthread_attr_destroy(&p->attr);
    parent_unwatch();
    return 0;
}
