/*
 * changelog: see changelog.h.
 *
 * Cursor rules (the contract's): with has_more the next cursor is the last
 * change's version, so the next page starts right after it; without, it is
 * the global head read in the same transaction, so an entity that stays quiet
 * while others change is not rescanned from an old version on every poll.
 */
#include <stdio.h>

#include <sqlite3.h>

#include "changelog.h"
#include "jsonw.h"

long long
changelog_horizon(struct db *d, struct err *e)
{
    sqlite3_stmt *st = db_stmt(d, STMT_HORIZON, e);
    long long v = -1;

    if (st == NULL)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        db_fail(d, e, "read horizon");
    sqlite3_reset(st);
    return v;
}

/* One change object. */
static int
write_change(const struct sink *out, sqlite3_stmt *st, int first)
{
    int rc = 0;

    rc |= jsonw_raw(out, first ? "{\"id\":" : ",{\"id\":");
    rc |= jsonw_column(out, st, 0);
    rc |= jsonw_raw(out, ",\"action\":");
    rc |= jsonw_column(out, st, 1);
    if (sqlite3_column_type(st, 2) == SQLITE_TEXT) {
        /* data is JSON text made by json_object() in the trigger: copy as is. */
        rc |= jsonw_raw(out, ",\"data\":");
        rc |= sink_write(out, (const char *)sqlite3_column_text(st, 2),
                         (size_t)sqlite3_column_bytes(st, 2));
    }
    rc |= jsonw_raw(out, ",\"version\":");
    rc |= jsonw_int(out, sqlite3_column_int64(st, 3));
    if (sqlite3_column_type(st, 4) == SQLITE_TEXT) {
        rc |= jsonw_raw(out, ",\"client_id\":");
        rc |= jsonw_column(out, st, 4);
    }
    rc |= jsonw_raw(out, "}");
    return rc ? -1 : 0;
}

int
changelog_pull(struct db *d, const struct pull_args *a, const struct sink *out, struct err *e)
{
    sqlite3_stmt *st = NULL;
    long long head, horizon, last = 0, n = 0;
    int rc, has_more = 0, own = sqlite3_get_autocommit(d->h);

    /* The caller may have a read transaction open already (sync-pull does). */
    if (own && db_begin_read(d, e) < 0)
        return -1;
    st = db_stmt(d, STMT_CURSORS, e);
    if (st == NULL)
        goto err;
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL ||
        sqlite3_column_type(st, 1) == SQLITE_NULL) {
        db_fail(d, e, "read head and horizon");
        goto err;
    }
    head = sqlite3_column_int64(st, 0);
    horizon = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    st = NULL;
    if (a->since > 0 && a->since < horizon) {
        err_set(e, 410, "resync_required",
                "cursor %lld is older than the retained change log (horizon %lld): pull from "
                "since=0",
                a->since, horizon);
        e->version = head;
        goto err;
    }
    st = db_stmt(d, STMT_PULL, e);
    if (st == NULL)
        goto err;
    sqlite3_bind_text(st, 1, a->entity, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->since);
    sqlite3_bind_int64(st, 3, a->limit + 1);
    if (a->owner != NULL)
        sqlite3_bind_text(st, 4, a->owner, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(d, e, "pull");
        goto err;
    }

    /* From here on the answer is 200: stream it. */
    jsonw_raw(out, "{\"entity\":");
    jsonw_cstring(out, a->entity);
    jsonw_raw(out, ",\"changes\":[");
    for (; rc == SQLITE_ROW; rc = sqlite3_step(st)) {
        if (n == a->limit) {
            has_more = 1;
            break;
        }
        if (write_change(out, st, n == 0) < 0)
            break; /* the client went away; nothing more to do */
        last = sqlite3_column_int64(st, 3);
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        fprintf(stderr, "rhtmx-sync: pull %s: %s (answer truncated)\n", a->entity,
                sqlite3_errmsg(d->h));
    jsonw_raw(out, "],\"has_more\":");
    jsonw_raw(out, has_more ? "true" : "false");
    jsonw_raw(out, ",\"version\":");
    jsonw_int(out, has_more ? last : head);
    jsonw_raw(out, "}\n");
    sqlite3_reset(st);
    if (own)
        db_rollback(d); /* a read transaction: nothing to commit */
    return 0;
err:
    if (st != NULL)
        sqlite3_reset(st);
    if (own)
        db_rollback(d);
    return -1;
}
