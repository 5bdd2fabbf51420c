/*
 * changelog: see changelog.h.
 *
 * Cursor rules (the contract's): with has_more the next cursor is the last
 * change's version, so the next page starts right after it; without, it is
 * the global head read in the same transaction, so an entity that stays quiet
 * while others change is not rescanned from an old version on every poll.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "changelog.h"
#include "jsonw.h"
#include "utf8.h"

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

/*
 * The answer is staged in a 16 KB buffer before it reaches the caller's sink:
 * a change is nine small pieces, and each write through the HTTP sink pays
 * its own checks (a fifth of a 1,000-change page went there).
 */
struct stage {
    const struct sink *out;
    int rc; /* -1 once out failed */
    size_t n;
    char b[16384];
};

static int
stage_flush(struct stage *s)
{
    if (s->n > 0 && s->rc == 0 && sink_write(s->out, s->b, s->n) < 0)
        s->rc = -1;
    s->n = 0;
    return s->rc;
}

static int
stage_write(void *ctx, const char *p, size_t n)
{
    struct stage *s = ctx;

    if (n > sizeof(s->b) - s->n && stage_flush(s) < 0)
        return -1;
    if (n > sizeof(s->b)) /* a big row: straight through */
        return s->rc == 0 && sink_write(s->out, p, n) < 0 ? (s->rc = -1) : s->rc;
    memcpy(s->b + s->n, p, n);
    s->n += n;
    return s->rc;
}

/* Append n bytes to the stage; the common case is a memcpy. */
static inline int
stage_add(struct stage *s, const char *p, size_t n)
{
    if (n > sizeof(s->b) - s->n)
        return stage_write(s, p, n);
    memcpy(s->b + s->n, p, n);
    s->n += n;
    return s->rc;
}

#define STAGE_LIT(s, lit) stage_add((s), (lit), sizeof(lit) - 1)

static int
stage_int(struct stage *s, long long v)
{
    char tmp[24];
    return stage_add(s, tmp, jsonw_format_int(tmp, v));
}

/*
 * The names of a pull's row columns (sqlgen_pull: from column 5 on), each
 * written once per page as the JSON text that opens its member:
 * "{\"id\":", ",\"title\":". NULL when the statement reads the log's data.
 */
struct row_names {
    int n;       /* row columns */
    size_t *off; /* n + 1 offsets into text */
    struct buf text;
};

static void
row_names_free(struct row_names *r)
{
    free(r->off);
    buf_free(&r->text);
    memset(r, 0, sizeof(*r));
}

/* 0, or -1 out of memory. Reads the names of st's columns from 5 on. */
static int
row_names_init(struct row_names *r, sqlite3_stmt *st)
{
    struct sink s = buf_sink(&r->text);
    int i;

    memset(r, 0, sizeof(*r));
    r->n = sqlite3_column_count(st) - 5;
    if (r->n <= 0) {
        r->n = 0;
        return 0;
    }
    if ((r->off = calloc((size_t)r->n + 1, sizeof(*r->off))) == NULL)
        return -1;
    for (i = 0; i < r->n; i++) {
        r->off[i] = r->text.len;
        jsonw_raw(&s, i == 0 ? "{" : ",");
        jsonw_cstring(&s, sqlite3_column_name(st, 5 + i));
        jsonw_raw(&s, ":");
    }
    r->off[r->n] = r->text.len;
    return 0;
}

/* The row of a live change (columns 5 on) as a JSON object: integers written
 * here, everything else typed by jsonw_column (exact reals, escaped and
 * repaired text, blobs as hex). */
static int
write_row(struct stage *s, const struct sink *staged, sqlite3_stmt *st, const struct row_names *r)
{
    int i;

    for (i = 0; i < r->n; i++) {
        stage_add(s, r->text.p + r->off[i], r->off[i + 1] - r->off[i]);
        if (sqlite3_column_type(st, 5 + i) == SQLITE_INTEGER)
            stage_int(s, sqlite3_column_int64(st, 5 + i));
        else
            jsonw_column(staged, st, 5 + i);
    }
    return STAGE_LIT(s, "}");
}

/* One change object into s (whose sink is staged, for the general cases). An
 * integer key and the three action words are written directly; anything else
 * goes through jsonw's typed, escaping writer. */
static int
write_change(struct stage *s, const struct sink *staged, sqlite3_stmt *st,
             const struct row_names *r, int first)
{
    const char *action;

    if (first)
        STAGE_LIT(s, "{\"id\":");
    else
        STAGE_LIT(s, ",{\"id\":");
    if (sqlite3_column_type(st, 0) == SQLITE_INTEGER)
        stage_int(s, sqlite3_column_int64(st, 0));
    else
        jsonw_column(staged, st, 0);
    action = (const char *)sqlite3_column_text(st, 1);
    if (action != NULL && strcmp(action, "create") == 0)
        STAGE_LIT(s, ",\"action\":\"create\"");
    else if (action != NULL && strcmp(action, "update") == 0)
        STAGE_LIT(s, ",\"action\":\"update\"");
    else if (action != NULL && strcmp(action, "delete") == 0)
        STAGE_LIT(s, ",\"action\":\"delete\"");
    else {
        STAGE_LIT(s, ",\"action\":");
        jsonw_column(staged, st, 1);
    }
    if (r->n > 0) {
        if (sqlite3_column_int(st, 2) != 0) { /* a live row, read from the table */
            STAGE_LIT(s, ",\"data\":");
            write_row(s, staged, st, r);
        }
    } else if (sqlite3_column_type(st, 2) == SQLITE_TEXT) {
        /* data is JSON text the programs made from the row (schema_seal):
         * copied as is, unless the app stored text that is not UTF-8 (SQLite
         * copies it into the JSON as it is): then each bad byte becomes U+FFFD. */
        const char *data = (const char *)sqlite3_column_text(st, 2);
        size_t n = (size_t)sqlite3_column_bytes(st, 2);
        STAGE_LIT(s, ",\"data\":");
        if (utf8_valid(data, n) == n) {
            stage_add(s, data, n);
        } else {
            char *fixed = malloc(n * 3);
            if (fixed != NULL)
                stage_add(s, fixed, utf8_repair(fixed, data, n));
            else
                STAGE_LIT(s, "null");
            free(fixed);
        }
    }
    STAGE_LIT(s, ",\"version\":");
    stage_int(s, sqlite3_column_int64(st, 3));
    if (sqlite3_column_type(st, 4) == SQLITE_TEXT) {
        STAGE_LIT(s, ",\"client_id\":");
        jsonw_column(staged, st, 4);
    }
    return STAGE_LIT(s, "}");
}

int
changelog_cursor_check(const struct pull_args *a, long long head, long long horizon, struct err *e)
{
    if (a->since > head)
        err_set(e, 410, "resync_required",
                "cursor %lld is newer than the change log's head %lld (the database was "
                "restored or replaced): pull from since=0",
                a->since, head);
    else if (!a->full && a->since > 0 && a->since < horizon)
        err_set(e, 410, "resync_required",
                "cursor %lld is older than the retained change log (horizon %lld): pull from "
                "since=0",
                a->since, horizon);
    else
        return 0;
    e->version = head;
    return -1;
}

int
changelog_pull(struct db *d, const struct pull_args *a, const struct sink *out, struct err *e)
{
    sqlite3_stmt *st = NULL;
    long long head, horizon, last = 0, n = 0;
    int rc, has_more = 0, own = sqlite3_get_autocommit(d->h);
    struct stage stage;
    struct sink staged = {stage_write, &stage};
    struct row_names names = {0};

    assert(a->limit >= 1); /* bounded by the caller (pull_args) */
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
    if (changelog_cursor_check(a, head, horizon, e) < 0)
        goto err;
    if (a->sql != NULL) {
        if ((st = db_cached(d, a->sql, "pull", e)) == NULL)
            goto err;
    } else if ((st = db_stmt(d, STMT_PULL, e)) == NULL) {
        goto err;
    }
    sqlite3_bind_text(st, 1, a->entity, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->since);
    sqlite3_bind_int(st, 5, a->since == 0); /* a first page: live rows only, as creates */
    sqlite3_bind_int64(st, 3, a->limit + 1);
    if (a->owner != NULL)
        sqlite3_bind_text(st, 4, a->owner, -1, SQLITE_STATIC);
    if (a->bind != NULL)
        a->bind(st, a->bind_ctx);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(d, e, "pull");
        goto err;
    }
    if (row_names_init(&names, st) < 0) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }

    /* From here on the answer is 200: stream it. */
    stage.out = out;
    stage.rc = 0;
    stage.n = 0;
    out = &staged;
    jsonw_raw(out, "{\"entity\":");
    jsonw_cstring(out, a->entity);
    if (a->schema != NULL) { /* first: a client reading the tail finds what it always did */
        jsonw_raw(out, ",\"schema\":");
        jsonw_cstring(out, a->schema);
    }
    jsonw_raw(out, ",\"changes\":[");
    for (; rc == SQLITE_ROW; rc = sqlite3_step(st)) {
        if (n == a->limit) {
            has_more = 1;
            break;
        }
        if (write_change(&stage, out, st, &names, n == 0) < 0)
            break; /* the client went away; nothing more to do */
        last = sqlite3_column_int64(st, 3);
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        /* The page cannot be finished: it must not end as if it were (the
         * client would store the head as its cursor and never ask for the
         * rest). What is staged is dropped; the caller breaks the answer off,
         * or, if nothing of it was written yet, answers e instead. */
        db_fail(d, e, "pull");
        goto err;
    }
    jsonw_raw(out, "],\"has_more\":");
    jsonw_raw(out, has_more ? "true" : "false");
    jsonw_raw(out, ",\"version\":");
    jsonw_int(out, has_more ? last : head);
    jsonw_raw(out, "}\n");
    stage_flush(&stage);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* the owner was bound borrowed (and may be unset next time) */
    row_names_free(&names);
    if (own)
        db_rollback(d); /* a read transaction: nothing to commit */
    return 0;
err:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    row_names_free(&names);
    if (own)
        db_rollback(d);
    return -1;
}
