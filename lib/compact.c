/*
 * compact: see compact.h.
 *
 * One batch, under the write lock:
 *   1. pick the oldest COMPACT_BATCH removable entries (older than the cutoff,
 *      and a delete or not the newest entry of their row), in log order (id: a
 *      plain table scan, cheaper than walking the version index), noting the
 *      highest id and the highest tombstone version among them;
 *   2. delete exactly those (the same condition, up to that id: every removable
 *      entry at or below it is in the batch, as they were picked in id order);
 *   3. raise the horizon to the highest removed tombstone, never lower it.
 * Removing an older entry never changes whether a newer one is removable (SQLite
 * evaluates the whole WHERE before it deletes, as it reads the same table), so
 * the condition reads the same in steps 1 and 2. A scan with nothing to remove
 * costs about 1 s per million log entries.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "changelog.h"
#include "compact.h"
#include "log.h"

enum {
    C_PICK,      /* ?1 cutoff, ?2 batch -> max(id), max(version), count(*) */
    C_DELETE,    /* ?1 cutoff, ?2 up to id */
    C_HORIZON,   /* ?1 version: raise the horizon */
    C_MUTATIONS, /* ?1 cutoff: old push answers */
    C_STAMP,     /* ?1 unix time: when compaction last ran */
    C_LAST,      /* -> when compaction last ran, or no row */
    C_CUTOFF,    /* ?1 days -> the cutoff timestamp, in created_at's format */
    C_COUNT,     /* -> entries left */
    C__COUNT
};

/* Removable: older than the cutoff, and either a tombstone or superseded. */
#define REMOVABLE                                                                                  \
    "l.created_at < ?1 AND (l.action = 'delete' OR EXISTS ("                                       \
    " SELECT 1 FROM _rhtmx_sync_log AS m"                                                          \
    "  WHERE m.entity = l.entity AND m.entity_id = l.entity_id AND m.version > l.version))"

static const char *const sql[C__COUNT] = {
    /* Only a removed tombstone can leave a client stale (a removed superseded
     * entry still has its newer entry in the log), so only tombstones raise
     * the horizon: fewer needless resyncs. */
    [C_PICK] = "SELECT max(id), coalesce(max(CASE WHEN action = 'delete' THEN version END), 0),"
               " count(*) FROM (SELECT l.id, l.version, l.action"
               " FROM _rhtmx_sync_log AS l WHERE " REMOVABLE " ORDER BY l.id LIMIT ?2)",
    [C_DELETE] = "DELETE FROM _rhtmx_sync_log AS l WHERE l.id <= ?2 AND " REMOVABLE,
    [C_HORIZON] = "UPDATE _rhtmx_sync_state SET value = max(value, ?1) WHERE key = 'horizon'",
    [C_MUTATIONS] = "DELETE FROM _rhtmx_sync_mutations WHERE created_at < ?1",
    [C_STAMP] = ("INSERT INTO _rhtmx_sync_state (key, value) VALUES ('compacted_at', ?1)"
                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    [C_LAST] = "SELECT value FROM _rhtmx_sync_state WHERE key = 'compacted_at'",
    [C_CUTOFF] = "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' days')",
    [C_COUNT] = "SELECT count(*) FROM _rhtmx_sync_log",
};

struct stmts {
    sqlite3_stmt *s[C__COUNT];
};

static void
stmts_free(struct stmts *st)
{
    int i;

    for (i = 0; i < C__COUNT; i++)
        sqlite3_finalize(st->s[i]);
    memset(st, 0, sizeof(*st));
}

/* The statement id, prepared on first use and reset. NULL with e set. */
static sqlite3_stmt *
stmt(struct db *d, struct stmts *st, int id, struct err *e)
{
    if (st->s[id] == NULL && sqlite3_prepare_v2(d->h, sql[id], -1, &st->s[id], NULL) != SQLITE_OK) {
        db_fail(d, e, "compact: prepare");
        return NULL;
    }
    sqlite3_reset(st->s[id]);
    sqlite3_clear_bindings(st->s[id]);
    return st->s[id];
}

/* Step a statement that returns nothing. 0, or -1 with e set. */
static int
run(struct db *d, sqlite3_stmt *s, const char *what, struct err *e)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(d, e, what);
    return 0;
}

/* The cutoff for cfg's retention into out (created_at's format). */
static int
cutoff(struct db *d, struct stmts *st, const struct config *cfg, char *out, size_t n, struct err *e)
{
    sqlite3_stmt *s = stmt(d, st, C_CUTOFF, e);

    if (s == NULL)
        return -1;
    sqlite3_bind_int(s, 1, cfg->retention.days);
    if (sqlite3_step(s) != SQLITE_ROW || sqlite3_column_text(s, 0) == NULL) {
        sqlite3_reset(s);
        return db_fail(d, e, "compact: cutoff");
    }
    snprintf(out, n, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    return 0;
}

/*
 * One batch, inside the caller's write transaction. *removed is the number of
 * log entries removed (0 when nothing was left to remove).
 */
static int
batch(struct db *d, struct stmts *st, const char *cut, long long *removed, struct err *e)
{
    sqlite3_stmt *s;
    long long upto, top, n;

    *removed = 0;
    if ((s = stmt(d, st, C_PICK, e)) == NULL)
        return -1;
    sqlite3_bind_text(s, 1, cut, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, COMPACT_BATCH);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return db_fail(d, e, "compact: pick");
    }
    upto = sqlite3_column_int64(s, 0);
    top = sqlite3_column_int64(s, 1);
    n = sqlite3_column_int64(s, 2);
    sqlite3_reset(s);
    if (n == 0)
        return 0;

    if ((s = stmt(d, st, C_DELETE, e)) == NULL)
        return -1;
    sqlite3_bind_text(s, 1, cut, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, upto);
    if (run(d, s, "compact: delete", e) < 0)
        return -1;
    *removed = sqlite3_changes(d->h);

    if ((s = stmt(d, st, C_HORIZON, e)) == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, top);
    return run(d, s, "compact: raise horizon", e);
}

/* Old push answers, and the time stamp; inside the caller's transaction. */
static int
finish(struct db *d, struct stmts *st, const char *cut, long long *mutations, struct err *e)
{
    sqlite3_stmt *s;

    if ((s = stmt(d, st, C_MUTATIONS, e)) == NULL)
        return -1;
    sqlite3_bind_text(s, 1, cut, -1, SQLITE_STATIC);
    if (run(d, s, "compact: push answers", e) < 0)
        return -1;
    *mutations = sqlite3_changes(d->h);
    if ((s = stmt(d, st, C_STAMP, e)) == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)time(NULL));
    return run(d, s, "compact: time stamp", e);
}

static int
single_int(struct db *d, struct stmts *st, int id, long long *out, struct err *e)
{
    sqlite3_stmt *s = stmt(d, st, id, e);
    int rc;

    if (s == NULL)
        return -1;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(d, e, "compact: read");
    return rc == SQLITE_ROW ? 1 : 0;
}

int
compact_run(struct db *d, const struct config *cfg, struct compact_stats *out, struct err *e)
{
    struct stmts st = {{0}};
    struct compact_stats s = {0};
    char cut[40];
    long long n, m = 0;

    if (d->readonly)
        return err_set(e, 500, "database", "compact: the database is read-only");
    if (cutoff(d, &st, cfg, cut, sizeof(cut), e) < 0)
        goto err;
    do {
        if (db_begin_write(d, e) < 0)
            goto err;
        if (batch(d, &st, cut, &n, e) < 0 ||
            (n < COMPACT_BATCH && finish(d, &st, cut, &m, e) < 0) || db_commit(d, e) < 0) {
            db_rollback(d);
            goto err;
        }
        s.removed += n;
    } while (n == COMPACT_BATCH);
    s.mutations = m;
    s.horizon = changelog_horizon(d, e);
    if (s.horizon < 0 || (s.head = db_head(d, e)) < 0 ||
        single_int(d, &st, C_COUNT, &s.entries, e) < 0)
        goto err;
    stmts_free(&st);
    if (out != NULL)
        *out = s;
    return 0;
err:
    stmts_free(&st);
    return -1;
}

int
compact_maybe(struct db *d, const struct config *cfg)
{
    struct stmts st = {{0}};
    struct err e;
    long long last = 0, n = 0, m = 0, deadline;
    char cut[40];
    int rc = 0, has;

    if (d->readonly || !sqlite3_get_autocommit(d->h))
        return 0;
    has = single_int(d, &st, C_LAST, &last, &e);
    if (has < 0)
        goto fail;
    if (has == 1 && time(NULL) - last < COMPACT_INTERVAL && time(NULL) >= last)
        goto out;
    /* Due. Never make the caller wait: another writer holding the lock means
     * "next time". */
    deadline = d->deadline;
    db_deadline(d, db_now_ms()); /* passed already: no waiting */
    if (db_begin_write(d, &e) < 0) {
        db_deadline(d, deadline);
        if (e.status == 503)
            goto out;
        goto fail;
    }
    db_deadline(d, deadline);
    /* Again under the lock: another process may just have done it. */
    has = single_int(d, &st, C_LAST, &last, &e);
    if (has < 0)
        goto rollback;
    if (has == 1 && time(NULL) - last < COMPACT_INTERVAL && time(NULL) >= last) {
        db_rollback(d);
        goto out;
    }
    if (cutoff(d, &st, cfg, cut, sizeof(cut), &e) < 0 || batch(d, &st, cut, &n, &e) < 0 ||
        finish(d, &st, cut, &m, &e) < 0 || db_commit(d, &e) < 0)
        goto rollback;
    rc = 1;
    goto out;
rollback:
    db_rollback(d);
fail:
    log_msg("opportunistic compaction: %s", e.msg);
    rc = 0;
out:
    stmts_free(&st);
    return rc;
}
