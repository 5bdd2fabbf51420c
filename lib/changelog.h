/*
 * changelog: reading _rhtmx_sync_log, the one source of truth for what changed.
 *
 * A pull reads a page of the newest change of each row after a cursor, plus
 * the cursor to use next, in one read transaction, and streams it out as the
 * JSON answer of the wire contract. The storage behind it is the SQLite file;
 * this interface is what a PostgreSQL backend would implement next.
 */
#ifndef RHTMX_CHANGELOG_H
#define RHTMX_CHANGELOG_H

#include "buf.h"
#include "db.h"
#include "err.h"

struct pull_args {
    const char *entity;
    long long since;    /* the cursor: changes after it */
    long long limit;    /* 1..max, already bounded by the caller */
    const char *owner;  /* only rows of this owner; NULL: all rows */
    int full;           /* a later page of a full sync: no horizon check (the client had an
                         * empty store, so nothing of it can have gone stale). Deletes still
                         * come: a row sent on an earlier page may be gone since. */
    const char *sql;    /* the query (schema_pull_sql), rows read from the table; NULL: the
                         * data the log holds (STMT_PULL) */
    const char *schema; /* the entity's schema fingerprint for the answer, or NULL */
    /* scope hook: binds sql's further parameters (scope_bind), or NULL */
    void (*bind)(sqlite3_stmt *st, const void *ctx);
    const void *bind_ctx;
};

/*
 * Write the pull answer for a to out:
 *   {"entity":E[,"schema":S],"changes":[...],"has_more":B,"version":V}
 * Nothing is written unless the read succeeds up to the first row, so on -1 the
 * caller can still answer with e: 410 resync_required (e->version = head) when
 * since is older than the compaction horizon, 5xx on database trouble. A read
 * that fails after the first row also returns -1 (5xx), with the answer
 * unfinished: part of it may have reached out, so the caller must break the
 * answer off rather than end it (http_error does either, as fits).
 * Reads in the caller's transaction when one is open (and leaves it open),
 * else in a read transaction of its own.
 */
int changelog_pull(struct db *d, const struct pull_args *a, const struct sink *out, struct err *e);

/*
 * 0 if a's cursor can be served from a log at head with horizon (either
 * backend), else -1 with e set to 410 resync_required (e->version = head).
 * Newer than the head: the database is not the one the client synced with
 * (restored from a backup, replaced), and its store holds rows this one may
 * never have had; whatever page it is on, it starts over, as the event stream
 * tells it to. Older than the horizon: what it missed may have been compacted
 * away.
 */
int changelog_cursor_check(const struct pull_args *a, long long head, long long horizon,
                           struct err *e);

/* The compaction horizon (versions at or below it may be gone), or -1. */
long long changelog_horizon(struct db *d, struct err *e);

#endif
