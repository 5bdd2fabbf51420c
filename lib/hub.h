/*
 * hub: the recent changes of one database, shared by every event stream of a
 * process.
 *
 * One feeder thread per hub waits on a watch (watch.h) and, when the database
 * may have changed, reads the new rows of _rhtmx_sync_log once (version > the
 * last it saw) and appends them, already formatted as SSE events, to an
 * in-memory ring. Each open stream (struct hub_stream) keeps its own cursor and
 * takes from the ring what its filter wants whenever its thread comes back for
 * more; while the thread waits, the feeder hands the stream its share itself
 * (see Delivery) and moves its cursor past changes its filter does not want,
 * so an idle stream costs nothing and a commit wakes no thread.
 *
 * The ring holds every log row with version in (base, head]. A stream whose
 * cursor is older than base (it resumed from an old Last-Event-ID, or fell
 * behind while the ring turned over) reads that gap from the database on the
 * hub's replay connection, bounded by base, and then continues from the ring:
 * the hand-over neither skips nor repeats a version.
 *
 * Delivery: while a stream's thread waits, the feeder hands it new events
 * itself, through the stream's deliver callback (a non-blocking write to its
 * connection) or, without one, into the stream's pending buffer with a wake-up.
 * A stream without a thread of its own (one of the event loop's, streams.h)
 * never waits here: the hub's listener (hub_listen) tells the loop that
 * something changed, and the loop takes each stream's share with hub_take.
 *
 * Locking: the hub's mutex guards the ring and the stream list; each stream's
 * own mutex guards its waiting state and, while it waits, its cursor; the
 * stream waits on its own condition variable under its own mutex. Order: hub,
 * then stream. The replay connection has its own mutex, never held together
 * with the others.
 */
#ifndef RHTMX_HUB_H
#define RHTMX_HUB_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "err.h"

struct hub;

/* What a stream wants: every change (n = 0), or the changes of n entities,
 * each with its owner rule. */
struct hub_filter {
    size_t n;
    char **entities; /* n entity names */
    /* The row rules: n values, or NULL for none. A NULL entry: every row of
     * that entity. A scope rule (scope_rule(), lib/scope.h: it starts with
     * SCOPE_RULE_MARK): the rows its probe finds in the user's scope, before
     * or after the change, and every "scope" event of the entity (a table its
     * scope reads changed). Otherwise an owner value: only rows whose owner
     * column, as text, equals it (rows without an owner belong to nobody, as
     * in auth.h). */
    char **owners;
};

/* 1 if a change of entity, whose row has owner (NULL: none), passes f; for a
 * scope rule, 1 if the entity is f's (the hub then probes the row). */
int hub_filter_match(const struct hub_filter *f, const char *entity, const char *owner);

/* What a deliver callback did with the bytes it was offered. */
enum hub_delivery {
    HUB_DELIVERED_ALL,  /* everything is on its way */
    HUB_DELIVERED_PART, /* some of it: the rest waits in the callback's own state and the
                           stream's thread must finish it before anything else (hub_next
                           returns HUB_EVENTS, possibly with nothing in out) */
    HUB_DELIVERED_NONE, /* nothing (it would block): the stream's thread takes the events */
    HUB_DELIVERY_FAILED /* the peer is gone */
};

/* One open stream. The caller owns the memory and fills filter, cursor and
 * (optionally) deliver before hub_join; between hub_join and hub_leave the hub
 * owns the rest, and the cursor may only be read by the stream's own thread
 * when hub_next has returned. */
struct hub_stream {
    struct hub_filter filter;
    long long cursor; /* every version up to it was handled (sent or filtered out) */

    /* Optional direct delivery. While the stream's thread waits in hub_next, the
     * feeder offers new events to deliver(ctx, p, n) instead of waking the thread:
     * fanning a commit out to 1,000 streams then costs 1,000 writes, not 1,000
     * thread wake-ups. It is called under the hub's locks and must not block.
     * NULL: the thread is woken and hub_next returns the events. */
    enum hub_delivery (*deliver)(void *ctx, const char *p, size_t n);
    void *deliver_ctx;

    /* private */
    pthread_mutex_t mu; /* waiting, kick, gone, pending; the cursor while waiting */
    pthread_cond_t cond;
    struct buf pending; /* events handed over by the feeder */
    struct hub_stream *prev, *next;
    unsigned long gen, schema_gen;
    int waiting, kick, gone, flush;
};

/* Open the database at path for reading, read its head and start the feeder.
 * ring: how many changes the ring holds (0: HUB_RING_DEFAULT). deadline: the
 * request's bound on waiting for the database (db_deadline; 0: the opening's
 * own). Returns a new hub (hub_free) or NULL with e set (503 busy when the
 * database stayed locked). */
#define HUB_RING_DEFAULT 4096
struct hub *hub_new(const char *path, size_t ring, long long deadline, struct err *e);

/* [pg] The same for a PostgreSQL database (cmake -DRHTMX_POSTGRES=ON): changes come by
 * LISTEN/NOTIFY (pg_hub.h). cf is copied. hub_path() is cf->shown. */
struct pgconf;
struct hub *hub_new_pg(const struct pgconf *cf, size_t ring, struct err *e);

/* Stop the feeder and release everything. No stream may be joined (call
 * hub_stop and wait for the streams to leave first). NULL is harmless. */
void hub_free(struct hub *h);

/* The database path the hub was opened with. Borrowed. */
const char *hub_path(const struct hub *h);

/* End every stream on purpose (hub_next returns HUB_STOP) and refuse new ones. */
void hub_stop(struct hub *h);

/* 1 if inotify watches the database (0: only the safety poll sees commits). */
int hub_watching(const struct hub *h);

/* The database's head and compaction horizon now, read fresh from the file,
 * waiting for locks until deadline (db_deadline; 0: DB_BUSY_TIMEOUT_MS). */
int hub_state(struct hub *h, long long *head, long long *horizon, long long deadline,
              struct err *e);

/* Register s. -1 with e set to 503 busy when max_streams streams are open or
 * the hub is stopping. */
int hub_join(struct hub *h, struct hub_stream *s, int max_streams, struct err *e);
/* Unregister s (it must have joined). */
void hub_leave(struct hub *h, struct hub_stream *s);
/* The number of joined streams. */
size_t hub_streams(struct hub *h);

/* The peer of s hung up (called from another thread): wake s with HUB_GONE. */
void hub_gone(struct hub *h, struct hub_stream *s);

enum hub_next {
    HUB_EVENTS,  /* out has events (or a partial delivery is to be finished, see
                    HUB_DELIVERED_PART); the cursor moved past them */
    HUB_TIMEOUT, /* the deadline passed with nothing to send */
    HUB_GONE,    /* hub_gone() was called: check the connection */
    HUB_STOP,    /* hub_stop(): end the stream on purpose */
    HUB_RESYNC,  /* the cursor cannot be resumed: *version is the head to resync to */
    HUB_SCHEMA,  /* the database's schema changed since the stream joined (or last heard
                    so): end the answer on purpose; the cursor is still good */
    HUB_ERROR,   /* database trouble, e set */
};

/* Wait for what s should do next, until deadline (CLOCK_MONOTONIC; NULL: no
 * limit). Events are appended to out, roughly at most max bytes per call. */
enum hub_next hub_next(struct hub *h, struct hub_stream *s, struct buf *out, size_t max,
                       const struct timespec *deadline, long long *version, struct err *e);

/* The same without waiting: HUB_TIMEOUT at once when there is nothing to do.
 * For a stream whose owner waits elsewhere (an event loop, streams.h) and
 * comes back when hub_listen's callback says something changed. */
enum hub_next hub_take(struct hub *h, struct hub_stream *s, struct buf *out, size_t max,
                       long long *version, struct err *e);

/* Call cb(ctx) after every change a stream may want: new changes in the ring,
 * a replaced database, a schema change, hub_stop. cb runs on the feeder's (or hub_stop's)
 * thread under the hub's lock: it must not block or call hub functions (an
 * eventfd write). One listener per hub; NULL removes it. */
void hub_listen(struct hub *h, void (*cb)(void *ctx), void *ctx);

/* Testing aid: the ring's bounds (versions in (base, head] are held). */
void hub_bounds(struct hub *h, long long *base, long long *head);

#endif
