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
 * the condition reads the same in steps 1 and 2. The statements are db.c's
 * STMT_COMPACT_*. A scan with nothing to remove
 * costs about 1 s per million log entries.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "changelog.h"
#include "compact.h"
#include "log.h"

/* The cutoff for cfg's retention into out (created_at's format). */
static int
cutoff(struct db *d, const struct config *cfg, char *out, size_t n, struct err *e)
{
    sqlite3_stmt *s = db_stmt(d, STMT_COMPACT_CUTOFF, e);

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
batch(struct db *d, const char *cut, long long *removed, struct err *e)
{
    sqlite3_stmt *s;
    long long upto, top, n;

    *removed = 0;
    assert(!sqlite3_get_autocommit(d->h)); /* the caller holds the write lock */
    if ((s = db_stmt(d, STMT_COMPACT_PICK, e)) == NULL)
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

    if ((s = db_stmt(d, STMT_COMPACT_DELETE, e)) == NULL)
        return -1;
    sqlite3_bind_text(s, 1, cut, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, upto);
    if (db_done(d, s, "compact: delete", e) < 0)
        return -1;
    *removed = sqlite3_changes(d->h);

    if ((s = db_stmt(d, STMT_COMPACT_HORIZON, e)) == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, top);
    return db_done(d, s, "compact: raise horizon", e);
}

/* Old push answers, and the time stamp; inside the caller's transaction. */
static int
finish(struct db *d, const char *cut, long long *mutations, struct err *e)
{
    sqlite3_stmt *s;

    if ((s = db_stmt(d, STMT_COMPACT_MUTATIONS, e)) == NULL)
        return -1;
    sqlite3_bind_text(s, 1, cut, -1, SQLITE_STATIC);
    if (db_done(d, s, "compact: push answers", e) < 0)
        return -1;
    *mutations = sqlite3_changes(d->h);
    if ((s = db_stmt(d, STMT_COMPACT_STAMP, e)) == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)time(NULL));
    return db_done(d, s, "compact: time stamp", e);
}

static int
single_int(struct db *d, enum db_stmt id, long long *out, struct err *e)
{
    sqlite3_stmt *s = db_stmt(d, id, e);
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
    struct compact_stats s = {0};
    char cut[40];
    long long n, m = 0;

    if (d->readonly)
        return err_set(e, 500, "database", "compact: the database is read-only");
    if (cutoff(d, cfg, cut, sizeof(cut), e) < 0)
        goto err;
    do {
        if (db_begin_write(d, e) < 0)
            goto err;
        if (batch(d, cut, &n, e) < 0 || (n < COMPACT_BATCH && finish(d, cut, &m, e) < 0) ||
            db_commit(d, e) < 0) {
            db_rollback(d);
            goto err;
        }
        s.removed += n;
    } while (n == COMPACT_BATCH);
    s.mutations = m;
    s.horizon = changelog_horizon(d, e);
    if (s.horizon < 0 || (s.head = db_head(d, e)) < 0 ||
        single_int(d, STMT_LOG_COUNT, &s.entries, e) < 0)
        goto err;
    if (out != NULL)
        *out = s;
    return 0;
err:
    return -1;
}

int
compact_maybe(struct db *d, const struct config *cfg)
{
    struct err e;
    long long last = 0, n = 0, m = 0, deadline;
    char cut[40];
    int rc = 0, has;

    if (d->readonly || !sqlite3_get_autocommit(d->h))
        return 0;
    has = single_int(d, STMT_COMPACT_LAST, &last, &e);
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
    has = single_int(d, STMT_COMPACT_LAST, &last, &e);
    if (has < 0)
        goto rollback;
    if (has == 1 && time(NULL) - last < COMPACT_INTERVAL && time(NULL) >= last) {
        db_rollback(d);
        goto out;
    }
    if (cutoff(d, cfg, cut, sizeof(cut), &e) < 0 || batch(d, cut, &n, &e) < 0 ||
        finish(d, cut, &m, &e) < 0 || db_commit(d, &e) < 0)
        goto rollback;
    rc = 1;
    goto out;
rollback:
    db_rollback(d);
fail:
    log_msg("opportunistic compaction: %s", e.msg);
    rc = 0;
out:
    return rc;
}
