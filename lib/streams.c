/*
 * streams: see streams.h.
 *
 * The loop thread waits in epoll_wait on an eventfd (adoptions, hub changes,
 * stop) and on every stream's connection, with a timeout until the earliest
 * of the streams' deadlines, kept in a binary min-heap (heartbeat, lifetime,
 * poll end, stall, close). A stream is in one of three states:
 *
 *   LIVE     takes events from its hub and writes them; heartbeats;
 *   ENDING   its last bytes ("bye" or "resync", the empty STDOUT record and
 *            FCGI_END_REQUEST) are queued; it has left the hub;
 *   CLOSING  everything was written and the write side shut down; the
 *            connection is closed when the web server closes its side, or
 *            after CLOSE_WAIT_MS (on TCP, closing with unread input would
 *            answer with a reset that can destroy the answer in flight).
 *
 * Nothing here blocks: writes use MSG_DONTWAIT and wait for EPOLLOUT, reads
 * of the connection only look for its end and FCGI_ABORT_REQUEST. The one
 * exception is a stream whose cursor fell behind the hub's ring: hub_take
 * then reads the gap from the database (a bounded batch of rows).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fcgi_record.h"
#include "log.h"
#include "db.h"
#include "streams.h"

#define TAKE_MAX 60000     /* bytes of events taken from the hub per call */
#define PUMP_TAKES 16      /* takes per stream per turn of the loop (about 1 MB) */
#define CLOSE_WAIT_MS 2000 /* for the web server to close first */
#define STOP_GRACE_MS 1000 /* at stop, for the last bytes to leave */

enum state { LIVE, ENDING, CLOSING };

struct st {
    struct streams_stream c;
    enum state state;
    struct buf out; /* FastCGI records not yet written, from off */
    size_t off;
    long long beat_at, stall_at, close_at, deadline; /* ms; stall_at 0: nothing waits */
    size_t heap_i;
    int want_out; /* EPOLLOUT is armed */
    int more;     /* a long backlog: pump again on the next turn (deadline now) */
    int rdhup;    /* the web server's side ended: its input is no longer watched */
    unsigned char in_hdr[FCGI_RECORD_HEADER_LEN]; /* the input's framing, to see aborts */
    size_t in_have, in_skip;
    struct st *prev, *next; /* every stream (loop thread) */
    struct st *qnext;       /* the adoption queue (under mu) */
};

struct streams {
    pthread_mutex_t mu; /* queue, count, stopping */
    struct st *queue;
    size_t count;
    int stopping;
    int changed; /* a hub has news (atomic) */
    int ep, efd;
    pthread_t thread;
    int started;

    /* The loop thread's alone. */
    struct st *all;
    struct st **heap;
    size_t nheap, capheap;
    struct buf scratch;
    int stop_started;
    long long stop_end;
};

long long
streams_now_ms(void)
{
    return db_now_ms(); /* one monotonic clock for every deadline (db.h) */
}

void
streams_say_bye(struct buf *b, long long cursor)
{
    buf_printf(b, "event: bye\nid: %lld\ndata: {\"version\":%lld}\n\n", cursor, cursor);
}

void
streams_say_resync(struct buf *b, long long version)
{
    buf_printf(b, "event: resync\ndata: {\"version\":%lld}\n\n", version);
}

/* ------------------------------------------------------------------ the deadline heap */

static int
earlier(const struct streams *l, size_t i, size_t j)
{
    return l->heap[i]->deadline < l->heap[j]->deadline;
}

static void
heap_swap(struct streams *l, size_t i, size_t j)
{
    struct st *t = l->heap[i];

    l->heap[i] = l->heap[j];
    l->heap[j] = t;
    l->heap[i]->heap_i = i;
    l->heap[j]->heap_i = j;
}

static void
heap_up(struct streams *l, size_t i)
{
    while (i > 0 && earlier(l, i, (i - 1) / 2)) {
        heap_swap(l, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
heap_down(struct streams *l, size_t i)
{
    for (;;) {
        size_t a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->nheap && earlier(l, a, m))
            m = a;
        if (b < l->nheap && earlier(l, b, m))
            m = b;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

static void
heap_add(struct streams *l, struct st *t)
{
    if (l->nheap == l->capheap) {
        size_t cap = l->capheap ? l->capheap * 2 : 1024;
        struct st **h = realloc(l->heap, cap * sizeof(*h));
        if (h == NULL)
            abort(); /* as buf.h: nothing sensible is left to do */
        l->heap = h;
        l->capheap = cap;
    }
    t->heap_i = l->nheap++;
    l->heap[t->heap_i] = t;
    heap_up(l, t->heap_i);
}

static void
heap_del(struct streams *l, struct st *t)
{
    size_t i = t->heap_i;

    if (i != --l->nheap) {
        heap_swap(l, i, l->nheap);
        heap_up(l, i);
        heap_down(l, i);
    }
}

/* Recompute t's deadline from its state and move it in the heap. */
static void
reschedule(struct streams *l, struct st *t)
{
    long long d;

    if (t->state != LIVE) {
        d = t->close_at;
    } else if (t->more) {
        d = 0;
    } else {
        d = t->beat_at;
        if (t->c.end_ms < d)
            d = t->c.end_ms;
        if (t->c.poll && t->c.poll_end_ms < d)
            d = t->c.poll_end_ms;
        if (t->stall_at > 0 && t->stall_at < d)
            d = t->stall_at;
    }
    t->deadline = d;
    heap_up(l, t->heap_i);
    heap_down(l, t->heap_i);
}

/* ------------------------------------------------------------------ one stream */

static void
filter_free(struct hub_filter *f)
{
    size_t i;

    for (i = 0; i < f->n; i++) {
        free(f->entities[i]);
        if (f->owners != NULL)
            free(f->owners[i]);
    }
    free(f->entities);
    free(f->owners);
}

/* Leave the hub and free the hub stream (once). */
static void
leave(struct st *t)
{
    if (t->c.s == NULL)
        return;
    hub_leave(t->c.hub, t->c.s);
    filter_free(&t->c.s->filter);
    free(t->c.s);
    t->c.s = NULL;
}

/* Forget t: its connection closed, out of the hub, the heap and the list. */
static void
drop(struct streams *l, struct st *t)
{
    close(t->c.fd); /* also takes it out of the epoll set */
    leave(t);
    heap_del(l, t);
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        l->all = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    buf_free(&t->out);
    free(t);
    pthread_mutex_lock(&l->mu);
    l->count--;
    pthread_mutex_unlock(&l->mu);
}

static void
interest(struct streams *l, struct st *t)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = (t->rdhup ? 0 : EPOLLIN | EPOLLRDHUP) | (t->want_out ? EPOLLOUT : 0);
    ev.data.ptr = t;
    epoll_ctl(l->ep, EPOLL_CTL_MOD, t->c.fd, &ev);
}

/* Queue n bytes of the answer as STDOUT records. */
static void
record(struct st *t, const char *p, size_t n)
{
    fcgi_record_stdout(&t->out, t->c.request_id, p, n);
}

/* Queue the end of the answer (bye first if bye is set) and leave the hub. */
static void
end(struct streams *l, struct st *t, int bye, long long now)
{
    if (t->state != LIVE)
        return;
    if (bye) {
        buf_reset(&l->scratch);
        streams_say_bye(&l->scratch, t->c.s->cursor);
        record(t, l->scratch.p, l->scratch.len);
    }
    fcgi_record_end(&t->out, t->c.request_id);
    leave(t);
    t->state = ENDING;
    t->close_at = now + (long long)STREAMS_STALL_S * 1000;
}

/* Write what waits. 0, or -1 when t was dropped. */
static int
flush(struct streams *l, struct st *t, long long now)
{
    size_t before = t->off;

    while (t->off < t->out.len) {
        ssize_t w =
            send(t->c.fd, t->out.p + t->off, t->out.len - t->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            t->off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (t->stall_at == 0 || t->off > before)
                t->stall_at = now + t->c.stall_ms;
            if (t->off >= STREAMS_OUT_LOW) {
                /* What was sent goes, or a slow but moving reader of a long
                 * backlog would keep all of it here. */
                memmove(t->out.p, t->out.p + t->off, t->out.len - t->off);
                t->out.len -= t->off;
                t->out.p[t->out.len] = '\0';
                t->off = 0;
            }
            if (!t->want_out) {
                t->want_out = 1;
                interest(l, t);
            }
            reschedule(l, t);
            return 0;
        }
        drop(l, t); /* the web server is gone */
        return -1;
    }
    if (t->out.cap > 16384)
        buf_free(&t->out); /* an idle stream keeps no big buffer */
    else
        buf_reset(&t->out);
    t->off = 0;
    t->stall_at = 0;
    if (t->want_out) {
        t->want_out = 0;
        interest(l, t);
    }
    if (t->state == ENDING) {
        if (t->c.keep || t->rdhup) {
            drop(l, t);
            return -1;
        }
        shutdown(t->c.fd, SHUT_WR);
        t->state = CLOSING;
        t->close_at = now + CLOSE_WAIT_MS;
    }
    reschedule(l, t);
    return 0;
}

/* Take what t's hub has for it and write it, while the connection takes it
 * (less than STREAMS_OUT_LOW bytes left unsent). A long backlog is taken
 * PUMP_TAKES chunks at a time, the rest on a later turn of the loop, so one
 * stream's replay does not hold up the others. 0, or -1 when t was dropped. */
static int
pump(struct streams *l, struct st *t, long long now)
{
    int takes = 0;

    t->more = 0;
    while (t->state == LIVE && t->out.len - t->off < STREAMS_OUT_LOW) {
        long long v = 0;
        struct err e;
        enum hub_next r;

        if (takes++ == PUMP_TAKES) {
            t->more = 1;
            break;
        }
        buf_reset(&l->scratch);
        r = hub_take(t->c.hub, t->c.s, &l->scratch, TAKE_MAX, &v, &e);
        if (r == HUB_EVENTS && l->scratch.len > 0) {
            record(t, l->scratch.p, l->scratch.len);
            t->beat_at = now + t->c.heartbeat_ms;
            if (t->c.poll)
                end(l, t, 1, now);
            if (flush(l, t, now) < 0)
                return -1;
            continue;
        }
        if (r == HUB_STOP || r == HUB_SCHEMA) { /* (the reconnect says the new schema) */
            end(l, t, 1, now);
        } else if (r == HUB_RESYNC) {
            buf_reset(&l->scratch);
            streams_say_resync(&l->scratch, v);
            record(t, l->scratch.p, l->scratch.len);
            end(l, t, 0, now);
        } else if (r == HUB_ERROR) {
            /* Broken off, not ended: the web server sees the answer cut and
             * the client an error; it reconnects after retry. */
            log_msg("events: %s", e.msg);
            drop(l, t);
            return -1;
        }
        break;
    }
    return flush(l, t, now);
}

/* A deadline of t passed. */
static void
on_timer(struct streams *l, struct st *t, long long now)
{
    static const char beat[] = ": keep-alive\n\n";

    if (t->state != LIVE) {
        drop(l, t); /* never drained, or the web server kept its side open */
        return;
    }
    if (t->more) {
        pump(l, t, now);
        return;
    }
    if (now >= t->c.end_ms || (t->c.poll && now >= t->c.poll_end_ms) ||
        (t->stall_at > 0 && now >= t->stall_at)) {
        /* Lifetime, poll or token over, or a reader that takes nothing: bye
         * after what it has, so it resumes from exactly there. */
        end(l, t, 1, now);
    } else if (now >= t->beat_at) {
        if (t->off == t->out.len)
            record(t, beat, sizeof(beat) - 1);
        t->beat_at = now + t->c.heartbeat_ms;
    }
    /* pump, not flush: writing out what waited makes room for more of a
     * backlog, and nothing else would come back for it. */
    pump(l, t, now);
}

/* The connection of t is readable, hung up or failed. */
static void
on_input(struct streams *l, struct st *t, uint32_t events, long long now)
{
    static const char beat[] = ": keep-alive\n\n";
    unsigned char in[4096];
    int aborted = 0;

    if (events & (EPOLLERR | EPOLLHUP)) {
        drop(l, t);
        return;
    }
    for (;;) {
        ssize_t n = recv(t->c.fd, in, sizeof(in), MSG_DONTWAIT);
        size_t i = 0;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 || t->state == CLOSING) {
            if (n != 0 && t->state == CLOSING)
                continue; /* discard: the answer is complete */
            drop(l, t);
            return;
        }
        if (n == 0) {
            /* The web server closed its side: gone, or only a half-close
             * after the request. A write tells. */
            t->rdhup = 1;
            interest(l, t);
            if (t->state == LIVE && t->off == t->out.len) {
                record(t, beat, sizeof(beat) - 1);
                t->beat_at = now + t->c.heartbeat_ms;
            }
            break;
        }
        while (i < (size_t)n) {
            if (t->in_skip > 0) {
                size_t k = (size_t)n - i < t->in_skip ? (size_t)n - i : t->in_skip;
                i += k;
                t->in_skip -= k;
                continue;
            }
            t->in_hdr[t->in_have++] = in[i++];
            if (t->in_have == sizeof(t->in_hdr)) {
                t->in_have = 0;
                t->in_skip = fcgi_record_body_len(t->in_hdr);
                aborted |= fcgi_record_type(t->in_hdr) == FCGI_RECORD_ABORT_REQUEST;
            }
        }
    }
    if (aborted)
        end(l, t, 0, now); /* the web server wants no more of this answer */
    pump(l, t, now);       /* EPOLLOUT may have come with the input: room for more */
}

/* ------------------------------------------------------------------ the loop */

static void
adopt(struct streams *l, struct st *t, long long now)
{
    struct epoll_event ev;

    t->state = LIVE;
    if (t->c.stall_ms <= 0)
        t->c.stall_ms = (long long)STREAMS_STALL_S * 1000;
    t->beat_at = now + t->c.heartbeat_ms;
    t->prev = NULL;
    t->next = l->all;
    if (l->all != NULL)
        l->all->prev = t;
    l->all = t;
    t->deadline = now;
    heap_add(l, t);
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = t;
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, t->c.fd, &ev) < 0) {
        log_msg("events: epoll: %s", strerror(errno));
        drop(l, t);
        return;
    }
    if (l->stop_started)
        end(l, t, 1, now);
    pump(l, t, now);
}

static void *
loop_main(void *arg)
{
    struct streams *l = arg;
    struct epoll_event evs[256];

    for (;;) {
        long long now = streams_now_ms(), wait = -1;
        int n, i, woken = 0;

        if (l->nheap > 0)
            wait = l->heap[0]->deadline > now ? l->heap[0]->deadline - now : 0;
        if (l->stop_started && (wait < 0 || wait > l->stop_end - now))
            wait = l->stop_end > now ? l->stop_end - now : 0;
        n = epoll_wait(l->ep, evs, 256, wait > 60000 ? 60000 : (int)wait);
        now = streams_now_ms();
        for (i = 0; i < n; i++) {
            struct st *t = evs[i].data.ptr;
            if (t == NULL) {
                woken = 1;
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
                on_input(l, t, evs[i].events, now);
            else if (evs[i].events & EPOLLOUT)
                pump(l, t, now); /* room again: more of a long backlog, if any */
        }
        if (woken) {
            struct st *q, *t, *next;
            uint64_t x;
            int stop;
            ssize_t r = read(l->efd, &x, sizeof(x));

            (void)r;
            pthread_mutex_lock(&l->mu);
            q = l->queue;
            l->queue = NULL;
            stop = l->stopping;
            pthread_mutex_unlock(&l->mu);
            if (stop && !l->stop_started) {
                l->stop_started = 1;
                l->stop_end = now + STOP_GRACE_MS;
                for (t = l->all; t != NULL; t = next) {
                    next = t->next;
                    end(l, t, 1, now);
                    flush(l, t, now);
                }
            }
            if (__atomic_exchange_n(&l->changed, 0, __ATOMIC_ACQ_REL)) {
                for (t = l->all; t != NULL; t = next) {
                    next = t->next;
                    pump(l, t, now);
                }
            }
            for (; q != NULL; q = next) {
                next = q->qnext;
                adopt(l, q, now);
            }
        }
        while (l->nheap > 0 && l->heap[0]->deadline <= now)
            on_timer(l, l->heap[0], now);
        if (l->stop_started && (l->all == NULL || now >= l->stop_end))
            break;
    }
    while (l->all != NULL)
        drop(l, l->all);
    return NULL;
}

/* ------------------------------------------------------------------ public */

struct streams *
streams_new(struct err *e)
{
    struct streams *l = calloc(1, sizeof(*l));
    struct epoll_event ev;
    sigset_t all, old;
    int started;

    if (l == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->ep < 0 || l->efd < 0) {
        err_set(e, 500, "internal", "epoll/eventfd: %s", strerror(errno));
        goto err;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->efd, &ev) < 0) {
        err_set(e, 500, "internal", "epoll_ctl: %s", strerror(errno));
        goto err;
    }
    /* Every signal blocked in the loop's thread: this runs before the runtime
     * blocks the stop signals (runtime.h), and a SIGTERM the kernel handed to
     * this thread would end the process at once instead of the graceful stop
     * the thread in sigwait starts. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    started = pthread_create(&l->thread, NULL, loop_main, l) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started) {
        err_set(e, 500, "internal", "cannot start the event stream loop");
        goto err;
    }
    l->started = 1;
    return l;
err:
    streams_free(l);
    return NULL;
}

static void
poke(struct streams *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->efd, &one, sizeof(one));

    (void)n; /* a full counter is as good as a write */
}

void
streams_free(struct streams *l)
{
    if (l == NULL)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stopping = 1;
        pthread_mutex_unlock(&l->mu);
        poke(l);
        pthread_join(l->thread, NULL);
    }
    while (l->queue != NULL) { /* adopted after the loop ended */
        struct st *t = l->queue;
        l->queue = t->qnext;
        close(t->c.fd);
        leave(t);
        free(t);
    }
    if (l->ep >= 0)
        close(l->ep);
    if (l->efd >= 0)
        close(l->efd);
    free(l->heap);
    buf_free(&l->scratch);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void
streams_adopt(struct streams *l, const struct streams_stream *st)
{
    struct st *t = calloc(1, sizeof(*t));

    if (t == NULL)
        abort(); /* as buf.h */
    t->c = *st;
    pthread_mutex_lock(&l->mu);
    t->qnext = l->queue;
    l->queue = t;
    l->count++;
    pthread_mutex_unlock(&l->mu);
    poke(l);
}

size_t
streams_count(struct streams *l)
{
    size_t n;

    pthread_mutex_lock(&l->mu);
    n = l->count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void
streams_wake(void *ctx)
{
    struct streams *l = ctx;

    __atomic_store_n(&l->changed, 1, __ATOMIC_RELEASE);
    poke(l);
}
