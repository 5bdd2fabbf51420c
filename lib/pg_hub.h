/*
 * pg_hub: where the events hub (hub.h) gets changes from when the database is
 * PostgreSQL (cmake -DRHTMX_POSTGRES=ON): LISTEN/NOTIFY instead of watching
 * files.
 *
 * The capture triggers signal NOTIFY rhtmx_sync (pg_schema.h), which
 * PostgreSQL delivers to every listening session when the writer commits,
 * whoever the writer is (the PHP app, psql, a sync-push on another machine).
 * A source is one connection; the hub's feeder holds one that LISTENs and
 * waits on its socket (pg_src_wait), and reads what is new on it; a second one,
 * without LISTEN, serves replays and state reads for other threads. The
 * notification only says "something committed": the rows are read from the
 * log by version, in one REPEATABLE READ snapshot with the head, as a pull
 * reads them (pg_pull.h), so nothing is skipped however notifications are
 * merged or lost (a reconnect reads everything after the last version seen).
 */
#ifndef RHTMX_PG_HUB_H
#define RHTMX_PG_HUB_H

#include <stddef.h>

#include "err.h"
#include "pgconf.h"

struct pg_src;

/* Connect; listen: LISTEN on the channel. A new source (pg_src_free) or NULL
 * with e set (503 busy when the server cannot be reached). */
struct pg_src *pg_src_open(const struct pgconf *cf, int listen, struct err *e);
void pg_src_free(struct pg_src *s); /* NULL is harmless */

/* Wait until a notification arrives (WATCH_CHANGED), pg_src_wake() is called
 * (WATCH_WOKEN), or timeout_ms passed (0). A broken connection is opened again
 * (and reported as WATCH_CHANGED, so the caller reads what it missed). */
int pg_src_wait(struct pg_src *s, int timeout_ms);
/* Make the current or next pg_src_wait return WATCH_WOKEN. Any thread. */
void pg_src_wake(struct pg_src *s);

/* One change, as the hub keeps it: its SSE text (id: and data: lines), and
 * what filters look at. Borrowed for the duration of the callback. */
struct pg_change {
    long long version;
    const char *entity;
    const char *owner; /* NULL: none */
    const char *text;
    size_t len;
};

/*
 * In one snapshot: *head and *horizon, then (when cb is not NULL) the changes
 * with version in (after, upto] (upto < 0: the head), at most limit, in
 * version order, each passed to cb(ctx, change). *n: how many. 0, or -1 with
 * e set.
 */
int pg_src_read(struct pg_src *s, long long after, long long upto, int limit, long long *head,
                long long *horizon, void (*cb)(void *ctx, const struct pg_change *c), void *ctx,
                int *n, struct err *e);

/* What the synced tables look like now (pg_schema_cookie_synced): a number
 * that changes with the app's ALTER TABLE, which sends no NOTIFY. -1 when it
 * cannot be read (the connection is down: the next read reconnects). */
long long pg_src_cookie(struct pg_src *s);

#endif
