/*
 * events: see events.h.
 *
 * Timing of one answer (all on CLOCK_MONOTONIC):
 *   - heartbeat: a comment whenever nothing was written for events.heartbeat
 *     seconds (15 by default, well inside mod_fcgid's 40 s FcgidIOTimeout);
 *   - lifetime: the answer ends with "bye" between 90% and 100% of
 *     events.lifetime (240 s by default, under FcgidBusyTimeout's 300 s); the
 *     spread keeps browsers that connected together from reconnecting together;
 *   - poll: the answer ends with "bye" right after the first events, or after
 *     events.poll_wait seconds without any.
 *
 *
 * Under FastCGI (with a loop, streams.h) this thread only opens the answer:
 * headers, retry and the opening comment; then it hands the stream's
 * connection to the loop, which sends the backlog, the live events, the
 * heartbeats and the end, and the thread goes back to accepting. Under plain
 * CGI (or without a loop) the thread serves the answer to its end, waiting in
 * hub_next, and the hub's feeder writes new events to a FastCGI connection
 * itself while the thread waits (direct delivery, hub.h).
 *
 * Spreads: the lifetime (90-100%), the retry: field (events.retry_ms plus up
 * to half of it) and a busy answer's Retry-After (5-14 s) differ per answer,
 * so that N clients that connected, or were refused, in the same second do
 * not all come back in the same second.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "hints.h"
#include "jsonw.h"

#include <fcgiapp.h>

#include "events.h"
#include "fcgi_record.h"
#include "log.h"
#include "monotime.h"
#include "scope.h"
#ifdef RHTMX_POSTGRES
#include "pg_scope.h"
#endif
#include "streams.h"

#define EVENTS_CHUNK 65536 /* bytes of events per write */
#define RETRY_AFTER_MIN 5  /* a busy answer's Retry-After: 5..14 s */
#define RETRY_AFTER_SPREAD 10

/* ------------------------------------------------------------------ input */

/* Strict decimal 0..2^62, or -1. */
static long long
parse_version(const char *s)
{
    long long v = 0;

    if (*s == '\0' || strlen(s) > 19)
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v <= (1LL << 62) ? v : -1;
}

/* Add entity en with its owner rule for who (once). */
static int
add_entity(struct events_params *p, const struct config *cfg, const struct identity *who,
           const struct entity *en, struct err *e)
{
    struct hub_filter *f = &p->filter;
    const char *owner = NULL;
    char **n, **o, *rule = NULL;
    size_t i;
    int rc;

    for (i = 0; i < f->n; i++)
        if (strcmp(f->entities[i], en->name) == 0)
            return 0;
    if (auth_owner(who, en, &owner, e) < 0)
        return -1;
    n = realloc(f->entities, (f->n + 1) * sizeof(*n));
    /* scope hook (lib/scope.h, pg_scope.h): a scoped entity's rule replaces the
     * owner value */
    if (en->scope != NULL || en->owner_column != NULL) {
#ifdef RHTMX_POSTGRES
        if (cfg->pg != NULL)
            rule = pg_scope_rule(en, who->sub, who->claims);
        else
#endif
            rule = scope_rule(en, who->sub, who->claims);
        if (rule == NULL) {
            if (n != NULL)
                f->entities = n;
            return err_set(e, 500, "internal", "out of memory");
        }
        owner = rule;
    }
    if (n != NULL)
        f->entities = n;
    o = realloc(f->owners, (f->n + 1) * sizeof(*o));
    if (o != NULL)
        f->owners = o;
    rc = -1;
    if (n == NULL || o == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto out;
    }
    n[f->n] = strdup(en->name);
    o[f->n] = owner != NULL ? strdup(owner) : NULL;
    if (n[f->n] == NULL || (owner != NULL && o[f->n] == NULL)) {
        free(n[f->n]);
        free(o[f->n]);
        err_set(e, 500, "internal", "out of memory");
        goto out;
    }
    f->n++;
    rc = 0;
out:
    free(rule);
    return rc;
}

/* The entities of ?entities=a,b (list, modified), or every one who may see. */
static int
parse_entities(char *list, const struct config *cfg, const struct identity *who,
               struct events_params *p, struct err *e)
{
    const struct entity *en;
    char q[ERR_QUOTED];
    size_t i;
    int restricted;

    if (list != NULL) {
        char *save = NULL, *name;
        for (name = strtok_r(list, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
            if (!config_valid_name(name) || (en = config_entity(cfg, name)) == NULL)
                return err_set(e, 404, "not_found", "unknown entity '%s'", err_quote(q, name));
            if (auth_entity_allowed(who, name, e) < 0 || add_entity(p, cfg, who, en, e) < 0)
                return -1;
        }
        if (p->filter.n > 0)
            return 0;
    }
    /* Everything: an explicit list when the token or an owner rule narrows it. */
    restricted = who->nentities >= 0;
    for (i = 0; i < cfg->nentities; i++)
        restricted |= cfg->entities[i].owner_column != NULL || cfg->entities[i].scope != NULL;
    if (!restricted)
        return 0;
    for (i = 0; i < cfg->nentities; i++) {
        struct err ignored;
        en = &cfg->entities[i];
        if (auth_entity_allowed(who, en->name, &ignored) < 0)
            continue;
        if (add_entity(p, cfg, who, en, e) < 0)
            return -1;
    }
    if (p->filter.n == 0)
        return err_set(e, 403, "forbidden", "the token allows none of the synced entities");
    return 0;
}

int
events_parse(const struct http_req *req, const struct config *cfg, const struct identity *who,
             struct events_params *p, struct err *e)
{
    enum { P_ENTITIES, P_SINCE, P_MODE, P__COUNT };
    static const char *const modes[] = {"poll", "stream", NULL};
    static const struct http_param params[P__COUNT] = {
        [P_ENTITIES] = {"entities", 0, 0, 0, HTTP_TEXT, NULL},
        [P_SINCE] = {"since", 0, 1LL << 62, -1, HTTP_INT, NULL},
        [P_MODE] = {"mode", 0, 0, 0, HTTP_TEXT, modes},
    };
    struct http_value v[P__COUNT];
    const char *lei;

    memset(p, 0, sizeof(*p));
    p->heartbeat = cfg->events.heartbeat;
    p->lifetime = cfg->events.lifetime;
    p->poll_wait = cfg->events.poll_wait;
    p->max_streams = cfg->events.max_streams;
    p->retry_ms = cfg->events.retry_ms;
    p->expires = who->exp;

    if (http_query(req, params, P__COUNT, v, e) < 0 ||
        parse_entities(v[P_ENTITIES].given ? v[P_ENTITIES].text : NULL, cfg, who, p, e) < 0)
        return -1;
    p->cursor = v[P_SINCE].n;
    lei = req->in.last_event_id;
    if (lei != NULL && *lei != '\0') {
        p->cursor = parse_version(lei);
        if (p->cursor < 0)
            return err_set(e, 400, "bad_request", "Last-Event-ID must be a version number");
    }

    /* The server's "poll" and a client's mode=poll always win; then an explicit
     * stream; by default plain CGI polls (a process per open stream is what
     * shared hosts limit first), and so does Apache unless its config says
     * output is not buffered (hints.h); other FastCGI hosts stream. */
    if (cfg->events.mode == EVENTS_POLL || strcmp(v[P_MODE].text, "poll") == 0)
        p->poll = 1;
    else if (cfg->events.mode == EVENTS_STREAM || v[P_MODE].given)
        p->poll = 0;
    else
        p->poll = hints_poll(req, cfg);
    /* A poll answer ends on purpose, and a plain EventSource (or htmx's SSE
     * extension) asks again only after retry: keep that gap short, so a change
     * made in it waits at most this long. */
    if (p->poll && p->retry_ms > EVENTS_POLL_RETRY_MS)
        p->retry_ms = EVENTS_POLL_RETRY_MS;
    return 0;
}

void
events_params_clear(struct events_params *p)
{
    size_t i;

    for (i = 0; i < p->filter.n; i++) {
        free(p->filter.entities[i]);
        if (p->filter.owners != NULL)
            free(p->filter.owners[i]);
    }
    free(p->filter.entities);
    free(p->filter.owners);
    free(p->schemas);
    memset(p, 0, sizeof(*p));
}

void
events_schemas(struct events_params *p, const struct schema *s)
{
    struct buf b = {0};
    struct sink out = buf_sink(&b);
    size_t i, n = p->filter.n ? p->filter.n : s->ntables;
    int first = 1;

    jsonw_raw(&out, "{");
    for (i = 0; i < n; i++) {
        const struct table *t =
            p->filter.n ? schema_table(s, p->filter.entities[i]) : &s->tables[i];
        if (t == NULL)
            continue;
        jsonw_raw(&out, first ? "" : ",");
        jsonw_cstring(&out, t->en->name);
        jsonw_raw(&out, ":");
        jsonw_cstring(&out, t->fingerprint);
        first = 0;
    }
    jsonw_raw(&out, "}");
    free(p->schemas);
    p->schemas = b.p; /* the buf's memory, NUL-terminated */
}

/* ------------------------------------------------------------------ output */

/* A small spread for timers and Retry-After: 0..n-1. Not for secrets. */
static unsigned
spread(unsigned n)
{
    struct timespec t = monotime_now();
    unsigned long x = (unsigned long)t.tv_nsec * 2654435761u ^ (unsigned long)t.tv_sec ^
                      (unsigned long)(size_t)&t;
    return n ? (unsigned)(x % n) : 0;
}

/* Write b to the client and push it out; b is emptied. -1 when the peer is gone. */
static int
emit(struct http_req *req, const struct sink *out, struct buf *b)
{
    int rc = 0;

    if (b->len > 0)
        rc = sink_write(out, b->p, b->len);
    if (rc == 0)
        rc = http_flush(req);
    if (b->cap > 16384)
        buf_free(b); /* an idle stream keeps no big buffer */
    else
        buf_reset(b);
    return rc;
}

static void
bye(struct buf *b, long long cursor)
{
    streams_say_bye(b, cursor);
}

static void
resync(struct buf *b, long long version)
{
    streams_say_resync(b, version);
}

struct gone_ctx {
    struct hub *h;
    struct hub_stream *s;
};

static void
on_hangup(void *ctx)
{
    struct gone_ctx *g = ctx;
    hub_gone(g->h, g->s);
}

/* The FastCGI connection of a stream, for direct delivery. */
struct direct {
    int fd;
    int request_id;
    struct buf carry; /* the unsent rest of a record */
};

static enum hub_delivery
direct_deliver(void *ctx, const char *p, size_t n)
{
    struct direct *d = ctx;
    unsigned char hdr[FCGI_RECORD_HEADER_LEN];
    ssize_t w;

    if (d->carry.len > 0 || n > FCGI_RECORD_MAX_CONTENT)
        return HUB_DELIVERED_NONE;
    w = fcgi_record_send_one(d->fd, d->request_id, p, n, MSG_DONTWAIT);
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? HUB_DELIVERED_NONE
                                                                         : HUB_DELIVERY_FAILED;
    if ((size_t)w == sizeof(hdr) + n)
        return HUB_DELIVERED_ALL;
    if ((size_t)w < sizeof(hdr)) {
        fcgi_record_header(hdr, FCGI_RECORD_STDOUT, d->request_id, n);
        buf_add(&d->carry, (const char *)hdr + w, sizeof(hdr) - (size_t)w);
        buf_add(&d->carry, p, n);
    } else {
        buf_add(&d->carry, p + ((size_t)w - sizeof(hdr)), n - ((size_t)w - sizeof(hdr)));
    }
    return HUB_DELIVERED_PART;
}

/* Write what a partial direct delivery left, blocking (the socket's send
 * timeout bounds it). -1 when the peer is gone. */
static int
direct_finish(struct direct *d)
{
    size_t off = 0;

    while (off < d->carry.len) {
        ssize_t w = write(d->fd, d->carry.p + off, d->carry.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    buf_free(&d->carry);
    return 0;
}

void
events_busy(struct http_req *req, const struct err *e)
{
    char secs[16];

    snprintf(secs, sizeof(secs), "%u", RETRY_AFTER_MIN + spread(RETRY_AFTER_SPREAD));
    http_header(req, "Retry-After", secs);
    http_error(req, e);
}

/* A copy of f into c (owned: filter_free in streams.c frees it). -1 on no memory. */
static int
filter_copy(struct hub_filter *c, const struct hub_filter *f)
{
    size_t i;

    memset(c, 0, sizeof(*c));
    if (f->n == 0)
        return 0;
    c->entities = calloc(f->n, sizeof(*c->entities));
    c->owners = calloc(f->n, sizeof(*c->owners));
    if (c->entities == NULL || c->owners == NULL)
        goto err;
    for (; c->n < f->n; c->n++) {
        i = c->n;
        c->entities[i] = strdup(f->entities[i]);
        if (f->owners != NULL && f->owners[i] != NULL)
            c->owners[i] = strdup(f->owners[i]);
        if (c->entities[i] == NULL ||
            (f->owners != NULL && f->owners[i] != NULL && c->owners[i] == NULL)) {
            free(c->entities[i]);
            free(c->owners[i]);
            goto err;
        }
    }
    return 0;
err:
    for (i = 0; i < c->n; i++) {
        free(c->entities[i]);
        free(c->owners[i]);
    }
    free(c->entities);
    free(c->owners);
    memset(c, 0, sizeof(*c));
    return -1;
}

static long long
ms(struct timespec t)
{
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Give the stream s, joined to h, with its connection to loop l. The opening
 * lines are written (flushed) first, and the request's input is read to its
 * end (the empty FCGI_STDIN record, sent with a GET), so that libfcgi holds
 * nothing of it; then libfcgi lets go of the connection without closing it
 * (FCGX_Free(r, 0) and ipcFd -1: FCGX_Finish_r and the next FCGX_Accept_r
 * then neither write nor close it) and the loop owns it. -1 (nothing handed
 * over, the caller goes on) when the input has a body or the peer is gone.
 */
static int
hand_off(struct streams *l, struct hub *h, struct hub_stream *s, const struct events_params *p,
         struct http_req *req, struct timespec end, struct timespec poll_end)
{
    FCGX_Request *r = req->fcgx;
    struct streams_stream st;

    if (http_flush(req) < 0)
        return -1;
    if (!FCGX_HasSeenEOF(r->in) && FCGX_GetChar(r->in) != EOF)
        return -1; /* a GET with a body: served on this thread */
    memset(&st, 0, sizeof(st));
    st.hub = h;
    st.s = s;
    st.fd = r->ipcFd;
    st.request_id = r->requestId;
    st.keep = r->keepConnection;
    st.poll = p->poll;
    st.heartbeat_ms = (long long)p->heartbeat * 1000;
    st.end_ms = ms(end);
    st.poll_end_ms = ms(poll_end);
    FCGX_Free(r, 0);
    r->ipcFd = -1;
    req->failed = 1; /* the answer is the loop's: nothing more is written here */
    streams_adopt(l, &st);
    return 0;
}

void
events_serve(struct hub *h, struct hangup *hu, struct streams *l, const struct events_params *p,
             struct http_req *req)
{
    struct hub_stream local, *s = &local;
    struct gone_ctx g = {h, NULL};
    struct direct d = {-1, 0, {0}};
    struct buf b = {0};
    struct sink out;
    struct err e;
    struct timespec t, end, poll_end, beat;
    long long head = 0, horizon = 0, v = 0;
    unsigned long reg = 0;
    int fd;

    memset(&local, 0, sizeof(local));
    if (l != NULL && req->fcgx != NULL) {
        /* The loop will own it: on the heap, with its own filter. */
        s = calloc(1, sizeof(*s));
        if (s == NULL || filter_copy(&s->filter, &p->filter) < 0) {
            free(s);
            s = &local;
        }
    }
    if (s == &local)
        s->filter = p->filter; /* borrowed from p for the answer's life */
    g.s = s;
    if (req->fcgx != NULL && !p->poll && s == &local) {
        d.fd = req->fcgx->ipcFd;
        d.request_id = req->fcgx->requestId;
        s->deliver = direct_deliver;
        s->deliver_ctx = &d;
    }
    if (hub_join(h, s, p->max_streams, &e) < 0) {
        events_busy(req, &e);
        goto out;
    }
    if (hub_state(h, &head, &horizon, p->deadline, &e) < 0) {
        if (e.status == 503)
            events_busy(req, &e);
        else
            http_error(req, &e);
        goto leave;
    }

    http_header(req, "Cache-Control", "no-cache, no-transform");
    http_header(req, "X-Accel-Buffering", "no");
    out = http_body(req, 200, "text/event-stream");
    buf_printf(&b, "retry: %d\n\n: rhtmx-sync %s\n\n",
               p->retry_ms + (int)spread((unsigned)p->retry_ms / 2 + 1),
               p->poll ? "poll" : "stream");
    if (p->schemas != NULL)
        buf_printf(&b, "event: schema\ndata: %s\n\n", p->schemas);
    if (s == &local && emit(req, &out, &b) < 0)
        goto leave;

    if (p->cursor < 0) {
        s->cursor = head; /* no cursor: live changes from now on */
    } else if (p->cursor > head || p->cursor < horizon) {
        /* Newer than the head: the database is not the one the client synced
         * with (restored, replaced). Older than the horizon: the log no
         * longer holds every change after it. Either way: start over. */
        resync(&b, head);
        emit(req, &out, &b);
        goto leave;
    } else {
        s->cursor = p->cursor;
    }

    t = monotime_now();
    end = monotime_add_ms(t, (long long)p->lifetime * 1000 -
                                 (long long)spread((unsigned)p->lifetime * 100 + 1));
    if (p->expires > 0) {
        /* A stream ends with its token; the reconnect then needs a fresh one. */
        long long left = (p->expires - (long long)time(NULL)) * 1000;
        struct timespec x = monotime_add_ms(t, left > 0 ? left : 0);
        if (monotime_before(x, end))
            end = x;
    }
    poll_end = monotime_add_ms(t, (long long)p->poll_wait * 1000);
    beat = monotime_add_ms(t, (long long)p->heartbeat * 1000);

    if (s != &local) {
        /* The opening lines go out with the hand-over's flush. */
        if (b.len > 0 && sink_write(&out, b.p, b.len) < 0)
            goto leave;
        buf_reset(&b);
        if (hand_off(l, h, s, p, req, end, poll_end) == 0) {
            buf_free(&b);
            return; /* the loop owns s now */
        }
        if (req->failed)
            goto leave;
    }

    fd = req->fcgx != NULL ? req->fcgx->ipcFd : STDOUT_FILENO;
    reg = hangup_add(hu, fd, on_hangup, &g);
    for (;;) {
        struct timespec deadline = beat;
        enum hub_next r;

        if (monotime_before(end, deadline))
            deadline = end;
        if (p->poll && monotime_before(poll_end, deadline))
            deadline = poll_end;
        r = hub_next(h, s, &b, EVENTS_CHUNK, &deadline, &v, &e);
        t = monotime_now();
        if (d.carry.len > 0 && direct_finish(&d) < 0)
            goto done;
        switch (r) {
        case HUB_EVENTS:
            if (b.len == 0)
                break; /* a direct delivery was finished */
            if (p->poll)
                bye(&b, s->cursor);
            if (emit(req, &out, &b) < 0 || p->poll)
                goto done;
            beat = monotime_add_ms(t, (long long)p->heartbeat * 1000);
            break;
        case HUB_GONE: /* probe: a write fails if the peer is really gone */
        case HUB_TIMEOUT:
            if (r == HUB_TIMEOUT && !monotime_before(t, end))
                goto say_bye;
            if (r == HUB_TIMEOUT && p->poll && !monotime_before(t, poll_end))
                goto say_bye;
            if (r == HUB_GONE || !monotime_before(t, beat)) {
                buf_adds(&b, ": keep-alive\n\n");
                if (emit(req, &out, &b) < 0)
                    goto done;
                beat = monotime_add_ms(t, (long long)p->heartbeat * 1000);
            }
            break;
        case HUB_STOP:
        case HUB_SCHEMA: /* the reconnect's answer says the new fingerprints */
            goto say_bye;
        case HUB_RESYNC:
            buf_reset(&b);
            resync(&b, v);
            emit(req, &out, &b);
            goto done;
        case HUB_ERROR:
            /* Broken off, not ended: no "bye", nothing a client could take
             * for an answer that ended on purpose. It reconnects after
             * retry, from the last id it got: a natural back-off. */
            log_msg("events: %s", e.msg);
            http_abort(req);
            goto done;
        }
        if (!monotime_before(t, end))
            goto say_bye;
    }
say_bye:
    bye(&b, s->cursor);
    emit(req, &out, &b);
done:
    hangup_del(hu, reg);
leave:
    hub_leave(h, s);
out:
    if (s != &local) {
        size_t i;
        for (i = 0; i < s->filter.n; i++) {
            free(s->filter.entities[i]);
            free(s->filter.owners[i]);
        }
        free(s->filter.entities);
        free(s->filter.owners);
        free(s);
    }
    buf_free(&b);
    buf_free(&d.carry);
}
