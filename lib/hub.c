/*
 * hub: see hub.h.
 *
 * The feeder's schedule: after the watch reports a change it reads at once,
 * then again after 1, 2, 4, ... 1024 ms (about 2 s in all). A writer makes its
 * commit visible only after it wrote the WAL frames (the inotify event) and,
 * with synchronous=FULL (the sqlite3 shell's default), after an fsync that can
 * take tens or hundreds of milliseconds; one of these reads sees it. Then the
 * feeder sleeps until the next change or the safety poll (every few seconds,
 * or every second where inotify is unavailable), which also notices a
 * database file that was replaced.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db.h"
#include "hub.h"
#include "jsonw.h"
#include "log.h"
#include "scope.h"
#include "watch.h"
#ifdef RHTMX_POSTGRES
#include "pg_hub.h"
#endif

#define FEED_BATCH 512    /* rows per feeder read */
#define REPLAY_BATCH 256  /* rows per replay read */
#define DELIVER_MAX 60000 /* bytes the feeder hands one stream at once (one FastCGI record) */
#define PROBE_CACHE 16    /* scope probes kept prepared */
#define SAFETY_MS 5000    /* safety poll with inotify */
#define BLIND_MS 1000     /* poll interval without inotify */
static const int recheck_ms[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
#define NRECHECK ((int)(sizeof(recheck_ms) / sizeof(recheck_ms[0])))

/* A connection of the hub's (its statements: db.c's STMT_CURSORS and
 * STMT_EVENT_ROWS, whose columns are what format_event reads). */
struct conn {
    struct db *db;
};

/* A scope probe's answer for one rule (by hash), kept with the change. */
struct memo {
    uint64_t rule;
    int visible;
};

/* One change in the ring: its SSE text, and what filters look at. */
struct ev {
    long long version;
    const char *entity; /* inside mem */
    const char *owner;  /* inside mem, or NULL */
    const char *text;   /* inside mem */
    size_t len;
    char *mem;
    sqlite3_value *key; /* the row's key (owned), for scope probes */
    int dep;            /* a "scope" event: a table the entity's scope reads changed */
    struct memo *memo;  /* scope probes answered for it (owned) */
    size_t nmemo;
};

struct hub {
    char *path;
    pthread_mutex_t mu;
    struct ev *ring; /* circular: count entries from first */
    size_t cap, first, count;
    long long base, head, horizon;
    unsigned long gen;        /* bumped when the database was replaced or rewound */
    long long cookie;         /* PRAGMA schema_version (pg: pg_src_cookie), last looked at */
    unsigned long schema_gen; /* bumped when it changed: the app's DDL, or our triggers */
    int stopping;
    size_t nstreams;
    struct hub_stream *streams;
    void (*listener)(void *ctx); /* hub_listen: told of every change, under mu */
    void *listener_ctx;

    struct buf scratch; /* the feeder's, for building a stream's share of a batch */
    struct watch *watch;
    pthread_t feeder;
    int feeder_started;
    struct conn feed; /* the feeder thread's */

    pthread_mutex_t replay_mu;
    struct conn replay; /* under replay_mu */

    /* Scope probes (lib/scope.h), under probe_mu, which is taken last: after
     * mu or replay_mu, never before them. Opened at the first probe. */
    pthread_mutex_t probe_mu;
    struct db *probe;
    struct {
        char *sql;
        sqlite3_stmt *st;
    } probes[PROBE_CACHE];
    size_t nprobes;
#ifdef RHTMX_POSTGRES
    /* [pg] PostgreSQL (pg_hub.h): the feeder's LISTENing source instead of the watch and
     * feed, and the replay source (under replay_mu) instead of replay. */
    struct pg_src *pgfeed, *pgreplay;
#endif
};

/* ------------------------------------------------------------------ locking */

/*
 * The lock order of hub.h, asserted: a thread takes the hub's mutex before a
 * stream's, never the other way, and holds the replay mutex alone. Each
 * thread notes what it holds; taking a lock out of order is a bug, caught by
 * assert() in a debug build before it can deadlock in production.
 */
enum { HELD_HUB = 1, HELD_STREAM = 2, HELD_REPLAY = 4 };
static _Thread_local unsigned held;

static void
hub_lock(struct hub *h)
{
    assert(held == 0);
    pthread_mutex_lock(&h->mu);
    held |= HELD_HUB;
}

static void
hub_unlock(struct hub *h)
{
    assert(held & HELD_HUB);
    held &= ~(unsigned)HELD_HUB;
    pthread_mutex_unlock(&h->mu);
}

static void
stream_lock(struct hub_stream *s)
{
    assert((held & (HELD_STREAM | HELD_REPLAY)) == 0);
    pthread_mutex_lock(&s->mu);
    held |= HELD_STREAM;
}

static void
stream_unlock(struct hub_stream *s)
{
    assert(held & HELD_STREAM);
    held &= ~(unsigned)HELD_STREAM;
    pthread_mutex_unlock(&s->mu);
}

static void
replay_lock(struct hub *h)
{
    assert(held == 0);
    pthread_mutex_lock(&h->replay_mu);
    held |= HELD_REPLAY;
}

static void
replay_unlock(struct hub *h)
{
    assert(held == HELD_REPLAY);
    held = 0;
    pthread_mutex_unlock(&h->replay_mu);
}

/* ------------------------------------------------------------------ connections */

static void
conn_close(struct conn *c)
{
    db_free(c->db);
    c->db = NULL;
}

/* Open c on path, waiting for locks until deadline (db.h; 0: the opening's own
 * bound). The connection outlives the request: it keeps no deadline. */
static int
conn_open(struct conn *c, const char *path, long long deadline, struct err *e)
{
    memset(c, 0, sizeof(*c));
    c->db = db_open_by(path, deadline, e);
    if (c->db == NULL)
        return -1;
    db_deadline(c->db, 0);
    /* Prepared now, so a database without our tables fails here. */
    if (db_stmt(c->db, STMT_CURSORS, e) == NULL || db_stmt(c->db, STMT_EVENT_ROWS, e) == NULL) {
        db_fail(c->db, e, "prepare (are the sync tables installed?)");
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Head and horizon inside the caller's transaction. */
static int
conn_state(struct conn *c, long long *head, long long *horizon, struct err *e)
{
    sqlite3_stmt *st = db_stmt(c->db, STMT_CURSORS, e);
    int rc;

    if (st == NULL)
        return -1;
    rc = sqlite3_step(st);

    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return db_fail(c->db, e, "read head");
    }
    *head = sqlite3_column_int64(st, 0);
    *horizon = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return 0;
}

/* Append the SSE event of the current ROWS row to b:
 *   id: 47
 *   data: {"entity":"users","action":"update","id":1,"version":47[,"client_id":"c"]} */
static int
is_dep(sqlite3_stmt *st)
{
    const char *entity = (const char *)sqlite3_column_text(st, 0);
    return entity != NULL && strcmp(entity, SCOPE_LOG_ENTITY) == 0;
}

/* The entity a ROWS row is about: a "scope" entry names it in entity_id. */
static const char *
row_entity(sqlite3_stmt *st)
{
    return (const char *)sqlite3_column_text(st, is_dep(st) ? 1 : 0);
}

static void
format_event(struct buf *b, sqlite3_stmt *st)
{
    struct sink s = buf_sink(b);
    long long v = sqlite3_column_int64(st, 3);

    if (is_dep(st)) {
        /* A table the entity's scope reads changed: rows may have left or
         * entered the view; the client's next pull says which. */
        buf_printf(b, "id: %lld\ndata: {\"entity\":", v);
        jsonw_column(&s, st, 1);
        buf_printf(b, ",\"action\":\"scope\",\"version\":%lld}\n\n", v);
        return;
    }
    buf_printf(b, "id: %lld\ndata: {\"entity\":", v);
    jsonw_column(&s, st, 0);
    jsonw_raw(&s, ",\"action\":");
    jsonw_column(&s, st, 2);
    jsonw_raw(&s, ",\"id\":");
    jsonw_column(&s, st, 1);
    buf_printf(b, ",\"version\":%lld", v);
    if (sqlite3_column_type(st, 4) == SQLITE_TEXT) {
        jsonw_raw(&s, ",\"client_id\":");
        jsonw_column(&s, st, 4);
    }
    jsonw_raw(&s, "}\n\n");
}

static const char *
column_text(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NULL
                                                       : (const char *)sqlite3_column_text(st, col);
}

/* ------------------------------------------------------------------ filters */

int
hub_filter_match(const struct hub_filter *f, const char *entity, const char *owner)
{
    size_t i;

    if (f->n == 0)
        return 1;
    for (i = 0; i < f->n; i++) {
        if (strcmp(f->entities[i], entity) != 0)
            continue;
        if (f->owners == NULL || f->owners[i] == NULL || f->owners[i][0] == SCOPE_RULE_MARK)
            return 1;
        return owner != NULL && strcmp(owner, f->owners[i]) == 0;
    }
    return 0;
}

/* The scope rule of f for entity, or NULL. */
static const char *
filter_rule(const struct hub_filter *f, const char *entity)
{
    size_t i;

    for (i = 0; f->owners != NULL && i < f->n; i++)
        if (strcmp(f->entities[i], entity) == 0)
            return f->owners[i] != NULL && f->owners[i][0] == SCOPE_RULE_MARK ? f->owners[i]
                                                                              : NULL;
    return NULL;
}

static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Run rule's probe for key on the probe connection (probe_mu taken here). 1,
 * 0, or 0 with a log line on trouble: a stream is told nothing it may not see. */
static int
probe(struct hub *h, const char *rule, sqlite3_value *key)
{
    const char *sql = strchr(rule + 1, SCOPE_RULE_SEP);
    sqlite3_stmt **st = NULL;
    struct err e;
    size_t i;
    int r = -1;

    sql = sql != NULL ? strchr(sql + 1, SCOPE_RULE_SEP) : NULL;
    if (sql == NULL || key == NULL)
        return 0;
    pthread_mutex_lock(&h->probe_mu);
    if (h->probe == NULL && (h->probe = db_open(h->path, &e)) == NULL) {
        log_once("events: scope probes: %s", e.msg);
        goto out;
    }
    for (i = 0; i < h->nprobes; i++)
        if (strcmp(h->probes[i].sql, sql) == 0)
            st = &h->probes[i].st;
    if (st == NULL) {
        if (h->nprobes == PROBE_CACHE) { /* full: the oldest goes */
            sqlite3_finalize(h->probes[0].st);
            free(h->probes[0].sql);
            memmove(&h->probes[0], &h->probes[1], (PROBE_CACHE - 1) * sizeof(h->probes[0]));
            h->nprobes--;
        }
        h->probes[h->nprobes].sql = strdup(sql);
        h->probes[h->nprobes].st = NULL;
        st = &h->probes[h->nprobes++].st;
    }
    r = scope_rule_probe(h->probe, rule, st, key);
    if (r < 0)
        log_once("events: scope probe failed: %s", sqlite3_errmsg(h->probe->h));
out:
    pthread_mutex_unlock(&h->probe_mu);
    return r > 0;
}

static void
probe_close(struct hub *h)
{
    size_t i;

    pthread_mutex_lock(&h->probe_mu);
    for (i = 0; i < h->nprobes; i++) {
        sqlite3_finalize(h->probes[i].st);
        free(h->probes[i].sql);
    }
    h->nprobes = 0;
    db_free(h->probe);
    h->probe = NULL;
    pthread_mutex_unlock(&h->probe_mu);
}

/* 1 if s wants ring entry e (under mu): its filter, then, for a scoped
 * entity, the probe, answered once per rule and change. */
static int
wants(struct hub *h, const struct hub_stream *s, struct ev *e)
{
    const char *rule;
    struct memo *m;
    uint64_t k;
    size_t i;

    if (!hub_filter_match(&s->filter, e->entity, e->owner))
        return 0;
    rule = filter_rule(&s->filter, e->entity);
    if (rule == NULL)
        return !e->dep;
    if (e->dep)
        return 1;
    k = fnv1a(rule);
    for (i = 0; i < e->nmemo; i++)
        if (e->memo[i].rule == k)
            return e->memo[i].visible;
    m = realloc(e->memo, (e->nmemo + 1) * sizeof(*m));
    if (m == NULL)
        return probe(h, rule, e->key);
    e->memo = m;
    m[e->nmemo].rule = k;
    m[e->nmemo].visible = probe(h, rule, e->key);
    return m[e->nmemo++].visible;
}

/* The same for a row read from the database (replay): no memo. */
static int
wants_row(struct hub *h, const struct hub_stream *s, sqlite3_stmt *st)
{
    const char *entity = row_entity(st), *rule;

    if (entity == NULL || !hub_filter_match(&s->filter, entity, column_text(st, 5)))
        return 0;
    rule = filter_rule(&s->filter, entity);
    if (rule == NULL)
        return !is_dep(st);
    return is_dep(st) || probe(h, rule, sqlite3_column_value(st, 1));
}

static void
ev_free(struct ev *e)
{
    free(e->mem);
    sqlite3_value_free(e->key);
    free(e->memo);
}

/* ------------------------------------------------------------------ the ring */

static struct ev *
ring_at(struct hub *h, size_t i)
{
    return &h->ring[(h->first + i) % h->cap];
}

static void
ring_clear(struct hub *h)
{
    while (h->count > 0) {
        ev_free(ring_at(h, 0));
        h->first = (h->first + 1) % h->cap;
        h->count--;
    }
    h->first = 0;
}

/* Append ev (taking its memory). The oldest entry makes room when full. */
static void
ring_push(struct hub *h, struct ev *ev)
{
    if (h->count == h->cap) {
        struct ev *old = ring_at(h, 0);
        h->base = old->version;
        ev_free(old);
        h->first = (h->first + 1) % h->cap;
        h->count--;
    }
    *ring_at(h, h->count) = *ev;
    h->count++;
}

/* Index of the first entry with version > v (count if none). */
static size_t
ring_find(struct hub *h, long long v)
{
    size_t lo = 0, hi = h->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring_at(h, mid)->version <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Copy what s wants after its cursor into out (under mu). */
static void
ring_take(struct hub *h, struct hub_stream *s, struct buf *out, size_t max)
{
    size_t i;

    for (i = ring_find(h, s->cursor); i < h->count; i++) {
        struct ev *e = ring_at(h, i);
        s->cursor = e->version;
        if (wants(h, s, e)) {
            buf_add(out, e->text, e->len);
            if (out->len >= max)
                return;
        }
    }
    if (s->cursor < h->head)
        s->cursor = h->head;
}

/* Wake s (under its mu). */
static void
kick(struct hub_stream *s)
{
    s->kick = 1;
    pthread_cond_signal(&s->cond);
}

/*
 * After new entries: hand each waiting stream what it wants of them (under
 * mu). A stream that wants nothing just has its cursor moved past them; one
 * with a deliver callback gets them written without waking up; the others get
 * them in their pending buffer and a wake-up. Streams that are not waiting
 * look at the ring themselves when they come back.
 */
static void
notify(struct hub *h)
{
    struct hub_stream *s;
    size_t i;

    for (s = h->streams; s != NULL; s = s->next) {
        struct buf *b = &h->scratch;
        long long last;
        int more = 0;

        if (s->gen != h->gen)
            continue;
        stream_lock(s);
        if (!s->waiting || s->kick) {
            stream_unlock(s);
            continue;
        }
        buf_reset(b);
        last = s->cursor;
        for (i = ring_find(h, s->cursor); i < h->count; i++) {
            struct ev *e = ring_at(h, i);
            if (b->len >= DELIVER_MAX) {
                more = 1; /* the rest stays in the ring: the thread takes it */
                break;
            }
            last = e->version;
            if (wants(h, s, e))
                buf_add(b, e->text, e->len);
        }
        if (!more && last < h->head)
            last = h->head;
        if (b->len == 0) {
            s->cursor = last;
        } else if (s->deliver != NULL) {
            switch (s->deliver(s->deliver_ctx, b->p, b->len)) {
            case HUB_DELIVERED_ALL:
                s->cursor = last;
                break;
            case HUB_DELIVERED_PART:
                s->cursor = last;
                s->flush = 1;
                more = 1;
                break;
            case HUB_DELIVERED_NONE:
                more = 1;
                break;
            case HUB_DELIVERY_FAILED:
                s->gone = 1;
                more = 1;
                break;
            }
        } else {
            buf_add(&s->pending, b->p, b->len);
            s->cursor = last;
            more = 1;
        }
        if (more)
            kick(s);
        stream_unlock(s);
    }
    if (h->scratch.cap > DELIVER_MAX * 2)
        buf_free(&h->scratch);
    if (h->listener != NULL)
        h->listener(h->listener_ctx);
}

/* Wake every stream: it re-checks the hub's state (under mu). */
static void
wake_all(struct hub *h)
{
    struct hub_stream *s;

    for (s = h->streams; s != NULL; s = s->next) {
        stream_lock(s);
        kick(s);
        stream_unlock(s);
    }
    if (h->listener != NULL)
        h->listener(h->listener_ctx);
}

/* ------------------------------------------------------------------ the feeder */

/* The database was replaced or rewound (head went back): every cursor is
 * meaningless now. Streams get HUB_RESYNC through the generation change (a
 * resync covers a schema change too: cookie is taken as seen). */
static void
feed_reset(struct hub *h, long long head, long long horizon, long long cookie)
{
    hub_lock(h);
    ring_clear(h);
    h->base = h->head = head;
    h->horizon = horizon;
    h->cookie = cookie;
    h->gen++;
    wake_all(h);
    hub_unlock(h);
}

/* The database's schema changed (an ALTER TABLE of the app, a table rebuilt,
 * triggers made again): a change that may write no row of the log, which the
 * streams' clients must hear about all the same. Streams get HUB_SCHEMA
 * through the schema generation; their answers end, and the reconnect says
 * each entity's new fingerprint (events.h). */
static void
feed_schema(struct hub *h, long long cookie)
{
    if (cookie < 0 || cookie == h->cookie)
        return;
    hub_lock(h);
    h->cookie = cookie;
    h->schema_gen++;
    wake_all(h);
    hub_unlock(h);
}

/* A replaced database file: reopen both connections on the new file. The old
 * ones are closed first, so their -wal file (which the new file's connections
 * would otherwise take for theirs) is checkpointed and removed if they were
 * the last users. -1 if the new file cannot be opened yet (mid-replacement:
 * the next poll tries again). */
static int
feed_reopen(struct hub *h)
{
    struct err e;
    int rc = -1;

    conn_close(&h->feed);
    probe_close(h);
    replay_lock(h);
    conn_close(&h->replay);
    if (conn_open(&h->feed, h->path, 0, &e) == 0 && conn_open(&h->replay, h->path, 0, &e) == 0)
        rc = 0;
    else
        conn_close(&h->feed);
    replay_unlock(h);
    if (rc < 0)
        return -1;
    watch_rearm(h->watch);
    log_msg("events: %s was replaced; streams resync", h->path);
    return 0;
}

/* Read the rows after h->head into the ring, in batches. Returns -1 on
 * database trouble (logged; the next wake-up tries again). */
#ifdef RHTMX_POSTGRES
/* [pg] A batch being read from PostgreSQL into ring entries. */
struct pg_batch {
    struct ev *ev;
    size_t n;
};

static void
pg_batch_add(void *ctx, const struct pg_change *c)
{
    struct pg_batch *b = ctx;
    struct ev *ev = &b->ev[b->n++];
    size_t elen = strlen(c->entity), olen = c->owner ? strlen(c->owner) : 0;

    ev->version = c->version;
    ev->len = c->len;
    ev->mem = malloc(c->len + 1 + elen + 1 + olen + 1);
    if (ev->mem == NULL)
        abort();
    memcpy(ev->mem, c->text, c->len + 1);
    ev->text = ev->mem;
    memcpy(ev->mem + c->len + 1, c->entity, elen + 1);
    ev->entity = ev->mem + c->len + 1;
    if (c->owner != NULL) {
        memcpy(ev->mem + c->len + 1 + elen + 1, c->owner, olen + 1);
        ev->owner = ev->mem + c->len + 1 + elen + 1;
    }
}

/* [pg] feed() for PostgreSQL: the rows after h->head into the ring, in batches. */
static int
feed_pg(struct hub *h)
{
    for (;;) {
        struct pg_batch batch = {calloc(FEED_BATCH, sizeof(struct ev)), 0};
        long long head = 0, horizon = 0;
        struct err e;
        size_t i;
        int n;

        if (batch.ev == NULL)
            abort();
        if (pg_src_read(h->pgfeed, h->head, -1, FEED_BATCH, &head, &horizon, pg_batch_add, &batch,
                        &n, &e) < 0) {
            for (i = 0; i < batch.n; i++)
                free(batch.ev[i].mem);
            free(batch.ev);
            log_msg("events: %s", e.msg);
            return -1;
        }
        if (head < h->head) { /* the database was replaced or restored */
            for (i = 0; i < batch.n; i++)
                free(batch.ev[i].mem);
            free(batch.ev);
            feed_reset(h, head, horizon, h->cookie); /* no SQLite schema cookie here */
            return 0;
        }
        hub_lock(h);
        for (i = 0; i < batch.n; i++)
            ring_push(h, &batch.ev[i]);
        h->head = batch.n == FEED_BATCH ? batch.ev[batch.n - 1].version : head;
        h->horizon = horizon;
        if (batch.n > 0)
            notify(h);
        hub_unlock(h);
        free(batch.ev);
        if (batch.n < FEED_BATCH)
            break;
    }
    /* The app's ALTER TABLE writes no row and sends no NOTIFY: this read (after
     * a commit, or the safety read) is where streams learn of it. */
    feed_schema(h, pg_src_cookie(h->pgfeed));
    return 0;
}
#endif

static int
feed(struct hub *h)
{
    struct conn *c = &h->feed;
    sqlite3_stmt *st;
    struct err e;
    int replaced;

#ifdef RHTMX_POSTGRES
    if (h->pgfeed != NULL) /* [pg] */
        return feed_pg(h);
#endif
    replaced = watch_replaced(h->watch) || c->db == NULL;

    if (replaced && feed_reopen(h) < 0)
        return -1;
    for (;;) {
        long long head = 0, horizon = 0, last = h->head, cookie;
        struct ev *batch = NULL;
        size_t n = 0, i;
        int rc;

        if (c->db == NULL || db_begin_read(c->db, &e) < 0)
            return -1;
        if (conn_state(c, &head, &horizon, &e) < 0)
            goto err;
        cookie = db_schema_cookie(c->db);
        if (replaced || head < h->head) {
            db_rollback(c->db);
            feed_reset(h, head, horizon, cookie);
            return 0;
        }
        feed_schema(h, cookie);
        if (head == h->head) {
            db_rollback(c->db);
            if (horizon != h->horizon) {
                hub_lock(h);
                h->horizon = horizon;
                hub_unlock(h);
            }
            return 0;
        }
        if ((st = db_stmt(c->db, STMT_EVENT_ROWS, &e)) == NULL)
            goto err;
        sqlite3_bind_int64(st, 1, h->head);
        sqlite3_bind_int64(st, 2, head);
        sqlite3_bind_int64(st, 3, FEED_BATCH);
        batch = calloc(FEED_BATCH, sizeof(*batch));
        if (batch == NULL)
            abort();
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct buf b = {0};
            struct ev *ev = &batch[n++];
            const char *entity, *owner;
            size_t elen, olen;

            format_event(&b, st);
            ev->dep = is_dep(st);
            ev->key = sqlite3_value_dup(sqlite3_column_value(st, 1));
            /* After formatting: reading the owner as text may convert the column. */
            entity = row_entity(st);
            owner = column_text(st, 5);
            elen = strlen(entity ? entity : "");
            olen = owner ? strlen(owner) : 0;
            ev->version = last = sqlite3_column_int64(st, 3);
            ev->len = b.len;
            ev->mem = malloc(b.len + 1 + elen + 1 + olen + 1);
            if (ev->mem == NULL)
                abort();
            memcpy(ev->mem, b.p, b.len + 1);
            ev->text = ev->mem;
            memcpy(ev->mem + b.len + 1, entity ? entity : "", elen + 1);
            ev->entity = ev->mem + b.len + 1;
            if (owner != NULL) {
                memcpy(ev->mem + b.len + 1 + elen + 1, owner, olen + 1);
                ev->owner = ev->mem + b.len + 1 + elen + 1;
            }
            buf_free(&b);
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        db_rollback(c->db);
        if (rc != SQLITE_DONE) {
            for (i = 0; i < n; i++)
                ev_free(&batch[i]);
            free(batch);
            db_fail(c->db, &e, "read new changes");
            log_msg("events: %s", e.msg);
            return -1;
        }
        hub_lock(h);
        for (i = 0; i < n; i++)
            ring_push(h, &batch[i]);
        /* A full batch stops at its last row; otherwise everything up to head
         * was read (versions in between were compacted away). */
        h->head = n == FEED_BATCH ? last : head;
        h->horizon = horizon;
        notify(h);
        hub_unlock(h);
        free(batch);
        if (n < FEED_BATCH)
            return 0;
    }
err:
    db_rollback(c->db);
    log_msg("events: %s", e.msg);
    return -1;
}

static void *
feeder_main(void *arg)
{
    struct hub *h = arg;
    int recheck = NRECHECK; /* NRECHECK: no recheck pending */

    for (;;) {
        int timeout = recheck < NRECHECK                           ? recheck_ms[recheck]
                      : h->watch == NULL || watch_active(h->watch) ? SAFETY_MS
                                                                   : BLIND_MS;
        int r, stop;

#ifdef RHTMX_POSTGRES
        if (h->pgfeed != NULL) { /* [pg] a NOTIFY comes at commit: no rechecks needed */
            recheck = NRECHECK;
            r = pg_src_wait(h->pgfeed, SAFETY_MS);
        } else
#endif
            r = watch_wait(h->watch, timeout);

        hub_lock(h);
        stop = h->stopping;
        hub_unlock(h);
        if (stop)
            break;
        if (r & WATCH_CHANGED)
            recheck = 0;
        else if (r == WATCH_TIMEOUT && recheck < NRECHECK)
            recheck++;
        if (r == WATCH_WOKEN)
            continue;
        feed(h);
    }
    return NULL;
}

/* ------------------------------------------------------------------ public */

/* Wake the feeder from its wait. */
static void
hub_wake_feeder(struct hub *h)
{
#ifdef RHTMX_POSTGRES
    if (h->pgfeed != NULL) { /* [pg] */
        pg_src_wake(h->pgfeed);
        return;
    }
#endif
    watch_wake(h->watch);
}

/* A hub with its ring and locks, and nothing started. NULL with e set. */
static struct hub *
hub_alloc(const char *path, size_t ring, struct err *e)
{
    struct hub *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->replay_mu, NULL);
    pthread_mutex_init(&h->probe_mu, NULL);
    h->cap = ring ? ring : HUB_RING_DEFAULT;
    h->ring = calloc(h->cap, sizeof(*h->ring));
    h->path = strdup(path);
    if (h->ring == NULL || h->path == NULL) {
        err_set(e, 500, "internal", "out of memory");
        hub_free(h);
        return NULL;
    }
    return h;
}

/* The ring starts at head; the feeder thread starts. 0, or -1 with e set. */
static int
hub_start(struct hub *h, long long head, long long horizon, struct err *e)
{
    h->base = h->head = head;
    h->horizon = horizon;
    if (pthread_create(&h->feeder, NULL, feeder_main, h) != 0)
        return err_set(e, 500, "internal", "cannot start the events feeder thread");
    h->feeder_started = 1;
    return 0;
}

struct hub *
hub_new(const char *path, size_t ring, long long deadline, struct err *e)
{
    struct hub *h = hub_alloc(path, ring, e);
    long long head = 0, horizon = 0;

    if (h == NULL)
        return NULL;
    /* The watch first: a commit between reading the head and arming it would
     * otherwise wait for the safety poll. */
    h->watch = watch_new(path, e);
    if (h->watch == NULL)
        goto err;
    if (!watch_active(h->watch))
        log_msg("events: cannot watch %s with inotify (no inotify, or the per-user limit "
                "fs.inotify.max_user_instances is reached); polling it every %d ms",
                path, BLIND_MS);
    if (conn_open(&h->feed, path, deadline, e) < 0 || conn_open(&h->replay, path, deadline, e) < 0)
        goto err;
    db_deadline(h->feed.db, deadline);
    if (db_begin_read(h->feed.db, e) < 0)
        goto err;
    if (conn_state(&h->feed, &head, &horizon, e) < 0) {
        db_rollback(h->feed.db);
        goto err;
    }
    h->cookie = db_schema_cookie(h->feed.db);
    db_rollback(h->feed.db);
    db_deadline(h->feed.db, 0);
    if (hub_start(h, head, horizon, e) < 0)
        goto err;
    return h;
err:
    hub_free(h);
    return NULL;
}

#ifdef RHTMX_POSTGRES
struct hub *
hub_new_pg(const struct pgconf *cf, size_t ring, struct err *e)
{
    struct hub *h = hub_alloc(cf->shown, ring, e);
    long long head = 0, horizon = 0;
    int n;

    if (h == NULL)
        return NULL;
    /* LISTEN first: a commit between reading the head and listening would
     * otherwise wait for the safety poll. */
    if ((h->pgfeed = pg_src_open(cf, 1, e)) == NULL ||
        (h->pgreplay = pg_src_open(cf, 0, e)) == NULL ||
        pg_src_read(h->pgfeed, 0, 0, 0, &head, &horizon, NULL, NULL, &n, e) < 0)
        goto err;
    h->cookie = pg_src_cookie(h->pgfeed);
    if (hub_start(h, head, horizon, e) < 0)
        goto err;
    return h;
err:
    hub_free(h);
    return NULL;
}
#endif

void
hub_free(struct hub *h)
{
    if (h == NULL)
        return;
    if (h->feeder_started) {
        hub_lock(h);
        h->stopping = 1;
        hub_unlock(h);
        hub_wake_feeder(h);
        pthread_join(h->feeder, NULL);
    }
    if (h->ring != NULL)
        ring_clear(h);
    free(h->ring);
    buf_free(&h->scratch);
    conn_close(&h->feed);
    conn_close(&h->replay);
    probe_close(h);
    watch_free(h->watch);
#ifdef RHTMX_POSTGRES
    pg_src_free(h->pgfeed);
    pg_src_free(h->pgreplay);
#endif
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->replay_mu);
    pthread_mutex_destroy(&h->probe_mu);
    free(h->path);
    free(h);
}

const char *
hub_path(const struct hub *h)
{
    return h->path;
}

int
hub_watching(const struct hub *h)
{
#ifdef RHTMX_POSTGRES
    if (h->pgfeed != NULL) /* [pg] LISTEN sees every commit */
        return 1;
#endif
    return watch_active(h->watch);
}

void
hub_stop(struct hub *h)
{
    hub_lock(h);
    h->stopping = 1;
    wake_all(h);
    hub_unlock(h);
    hub_wake_feeder(h);
}

int
hub_state(struct hub *h, long long *head, long long *horizon, long long deadline, struct err *e)
{
    int rc = -1;

    replay_lock(h);
#ifdef RHTMX_POSTGRES
    if (h->pgreplay != NULL) { /* [pg] */
        int n;
        rc = pg_src_read(h->pgreplay, 0, 0, 0, head, horizon, NULL, NULL, &n, e);
        replay_unlock(h);
        return rc;
    }
#endif
    if (h->replay.db == NULL) {
        err_set(e, 500, "database", "%s: not open", h->path);
    } else {
        db_deadline(h->replay.db, deadline);
        if (db_begin_read(h->replay.db, e) == 0) {
            rc = conn_state(&h->replay, head, horizon, e);
            db_rollback(h->replay.db);
        }
        db_deadline(h->replay.db, 0);
    }
    replay_unlock(h);
    return rc;
}

int
hub_join(struct hub *h, struct hub_stream *s, int max_streams, struct err *e)
{
    pthread_condattr_t ca;

    hub_lock(h);
    if (h->stopping) {
        hub_unlock(h);
        return err_set(e, 503, "busy", "the event server is shutting down");
    }
    if (max_streams > 0 && h->nstreams >= (size_t)max_streams) {
        hub_unlock(h);
        return err_set(e, 503, "busy", "too many open event streams (%d): try again later",
                       max_streams);
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    memset(&s->pending, 0, sizeof(s->pending));
    s->gen = h->gen;
    s->schema_gen = h->schema_gen;
    s->waiting = s->kick = s->gone = s->flush = 0;
    s->prev = NULL;
    s->next = h->streams;
    if (h->streams != NULL)
        h->streams->prev = s;
    h->streams = s;
    h->nstreams++;
    hub_unlock(h);
    return 0;
}

void
hub_leave(struct hub *h, struct hub_stream *s)
{
    hub_lock(h);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    h->nstreams--;
    hub_unlock(h);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    buf_free(&s->pending);
}

size_t
hub_streams(struct hub *h)
{
    size_t n;

    hub_lock(h);
    n = h->nstreams;
    hub_unlock(h);
    return n;
}

void
hub_gone(struct hub *h, struct hub_stream *s)
{
    (void)h;
    stream_lock(s);
    s->gone = 1;
    kick(s);
    stream_unlock(s);
}

void
hub_bounds(struct hub *h, long long *base, long long *head)
{
    hub_lock(h);
    *base = h->base;
    *head = h->head;
    hub_unlock(h);
}

#ifdef RHTMX_POSTGRES
/* [pg] One replay batch for PostgreSQL (see replay). */
struct pg_replay {
    const struct hub_stream *s;
    struct buf *out;
    size_t max;
    long long cursor;
    int full;
};

static void
pg_replay_add(void *ctx, const struct pg_change *c)
{
    struct pg_replay *r = ctx;

    if (r->full)
        return;
    r->cursor = c->version;
    if (hub_filter_match(&r->s->filter, c->entity, c->owner)) {
        buf_add(r->out, c->text, c->len);
        if (r->out->len >= r->max)
            r->full = 1;
    }
}

static enum hub_next
replay_pg(struct hub *h, struct hub_stream *s, long long bound, struct buf *out, size_t max,
          long long *version, struct err *e)
{
    struct pg_replay r = {s, out, max, s->cursor, 0};
    long long head = 0, horizon = 0;
    int n, rc;

    replay_lock(h);
    rc = pg_src_read(h->pgreplay, s->cursor, bound, REPLAY_BATCH, &head, &horizon, pg_replay_add,
                     &r, &n, e);
    replay_unlock(h);
    if (rc < 0)
        return HUB_ERROR;
    if (s->cursor < horizon) {
        *version = head;
        return HUB_RESYNC;
    }
    if (!r.full && n < REPLAY_BATCH)
        r.cursor = bound; /* all of (cursor, bound] was read */
    s->cursor = r.cursor; /* not waiting: nobody else touches it */
    return HUB_EVENTS;
}
#endif

/*
 * Read the changes in (s->cursor, bound] from the database into out (called
 * without the hub's mu; s is not waiting, so nobody else touches its cursor). Returns
 * HUB_EVENTS (out may still be empty if the filter wanted nothing: the cursor
 * moved anyway), HUB_RESYNC or HUB_ERROR.
 */
static enum hub_next
replay(struct hub *h, struct hub_stream *s, long long bound, struct buf *out, size_t max,
       long long *version, struct err *e)
{
    struct conn *c = &h->replay;
    enum hub_next res = HUB_ERROR;
    long long cursor = s->cursor, head = 0, horizon = 0;
    sqlite3_stmt *st;
    int rc, n = 0;

#ifdef RHTMX_POSTGRES
    if (h->pgreplay != NULL) /* [pg] */
        return replay_pg(h, s, bound, out, max, version, e);
#endif
    replay_lock(h);
    if (c->db == NULL) {
        err_set(e, 500, "database", "%s: not open", h->path);
        goto out;
    }
    if (db_begin_read(c->db, e) < 0)
        goto out;
    if (conn_state(c, &head, &horizon, e) < 0)
        goto done;
    if (cursor < horizon) {
        *version = head;
        res = HUB_RESYNC;
        goto done;
    }
    if ((st = db_stmt(c->db, STMT_EVENT_ROWS, e)) == NULL)
        goto done;
    sqlite3_bind_int64(st, 1, cursor);
    sqlite3_bind_int64(st, 2, bound);
    sqlite3_bind_int64(st, 3, REPLAY_BATCH);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        cursor = sqlite3_column_int64(st, 3);
        if (wants_row(h, s, st)) {
            format_event(out, st);
            if (out->len >= max)
                break;
        }
    }
    if (rc == SQLITE_DONE && n < REPLAY_BATCH)
        cursor = bound; /* all of (cursor, bound] was read */
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(c->db, e, "replay changes");
        goto done;
    }
    res = HUB_EVENTS;
done:
    db_rollback(c->db);
out:
    replay_unlock(h);
    if (res == HUB_EVENTS)
        s->cursor = cursor; /* not waiting: nobody else touches it */
    return res;
}

/* hub_next and hub_take: wait (until deadline) only if wait is set. */
static enum hub_next
next(struct hub *h, struct hub_stream *s, struct buf *out, size_t max, int wait,
     const struct timespec *deadline, long long *version, struct err *e)
{
    int timed_out = !wait, gone;

    hub_lock(h);
    for (;;) {
        if (h->stopping) {
            hub_unlock(h);
            return HUB_STOP;
        }
        if (s->gen != h->gen) {
            *version = h->head;
            hub_unlock(h);
            return HUB_RESYNC;
        }
        if (s->schema_gen != h->schema_gen) {
            s->schema_gen = h->schema_gen;
            hub_unlock(h);
            return HUB_SCHEMA;
        }
        stream_lock(s);
        gone = s->gone;
        s->gone = 0;
        stream_unlock(s);
        if (gone) {
            hub_unlock(h);
            return HUB_GONE;
        }
        if (s->cursor < h->horizon) {
            *version = h->head;
            hub_unlock(h);
            return HUB_RESYNC;
        }
        if (s->cursor < h->base) {
            long long bound = h->base;
            enum hub_next r;
            hub_unlock(h);
            r = replay(h, s, bound, out, max, version, e);
            if (r != HUB_EVENTS || out->len > 0)
                return r;
            hub_lock(h);
            continue;
        }
        if (h->head > s->cursor) {
            ring_take(h, s, out, max);
            if (out->len > 0) {
                hub_unlock(h);
                return HUB_EVENTS;
            }
            continue;
        }
        if (timed_out) {
            hub_unlock(h);
            return HUB_TIMEOUT;
        }

        /* Wait. From here until waiting is cleared the feeder may move the
         * cursor, deliver, or fill pending (under s->mu). */
        stream_lock(s);
        s->waiting = 1;
        s->kick = 0;
        hub_unlock(h);
        while (!s->kick) {
            int rc = deadline == NULL ? pthread_cond_wait(&s->cond, &s->mu)
                                      : pthread_cond_timedwait(&s->cond, &s->mu, deadline);
            if (rc == ETIMEDOUT) {
                timed_out = 1;
                break;
            }
        }
        s->waiting = 0;
        s->kick = 0;
        if (s->flush) {
            /* A partial delivery: the caller finishes it before anything else. */
            s->flush = 0;
            stream_unlock(s);
            return HUB_EVENTS;
        }
        if (s->pending.len > 0) {
            buf_add(out, s->pending.p, s->pending.len);
            buf_reset(&s->pending);
            if (s->pending.cap > 16384)
                buf_free(&s->pending);
            stream_unlock(s);
            return HUB_EVENTS;
        }
        stream_unlock(s);
        hub_lock(h);
    }
}

enum hub_next
hub_next(struct hub *h, struct hub_stream *s, struct buf *out, size_t max,
         const struct timespec *deadline, long long *version, struct err *e)
{
    return next(h, s, out, max, 1, deadline, version, e);
}

enum hub_next
hub_take(struct hub *h, struct hub_stream *s, struct buf *out, size_t max, long long *version,
         struct err *e)
{
    return next(h, s, out, max, 0, NULL, version, e);
}

void
hub_listen(struct hub *h, void (*cb)(void *ctx), void *ctx)
{
    hub_lock(h);
    h->listener = cb;
    h->listener_ctx = ctx;
    hub_unlock(h);
}
