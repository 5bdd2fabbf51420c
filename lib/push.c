/*
 * push: one batch of client changes, applied exactly once (see push.h).
 *
 * Reading order: push_body_parse() (push_body.c) declares the body's shape and
 * refuses anything else before the database is touched; push_batch() runs the
 * transaction; change_run() is one change: find its key, check its columns,
 * then insert, update or delete, going through conflict_resolve() when the row
 * changed on the server after the change's client_version. Values move between
 * JSON and SQLite through sqljson.c.
 *
 * Outcomes. Each change ends as one record, the JSON object stored in
 * _rhtmx_sync_mutations.answer:
 *   {"id": K, "applied": true|false, "tmp": "tmp-..", "conflict": {...},
 *    "rejected": {...}}
 * ("tmp", "conflict" and "rejected" only when they apply). The answer is the
 * records folded together in request order, so a replayed mutation answers
 * exactly what it answered the first time.
 *
 * Statements. Identifiers come only from struct table (checked against
 * PRAGMA table_xinfo) and are quoted with sql_ident(); values are always bound.
 * Statements are prepared once per batch and reused for every change of it
 * (the INSERT/UPDATE ones per set of columns). They do not outlive the batch,
 * because app_ready() may reopen the connection between requests.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "conflict.h"
#include "jsonr.h"
#include "push.h"
#include "push_body.h"
#include "sqljson.h"
#include "utf8.h"

#define DYN_CACHE 16 /* INSERT/UPDATE statements kept per batch */
#define TMP_PREFIX "tmp-"

enum pstmt {
    PS_SAVEPOINT,
    PS_RELEASE,
    PS_ROLLBACK_TO,
    PS_MUT_GET,
    PS_MUT_PUT,
    PS_MUT_TMP,
    PS_LOG_NEWEST,
    PS_LOG_BASE,
    PS_ROW,      /* per table: every column of the row with key ?1 */
    PS_DELETE,   /* per table: delete the row with key ?1 */
    PS_LAST_KEY, /* per table: the largest numeric key (assign_key tables without rowid) */
    PS__COUNT
};

static const char *const pstmt_sql[PS__COUNT] = {
    [PS_SAVEPOINT] = "SAVEPOINT rhtmx_change",
    [PS_RELEASE] = "RELEASE rhtmx_change",
    [PS_ROLLBACK_TO] = "ROLLBACK TO rhtmx_change",
    [PS_MUT_GET] = "SELECT entity, answer, version FROM _rhtmx_sync_mutations"
                   " WHERE client_id = ?1 AND mutation_id = ?2",
    [PS_MUT_PUT] = "INSERT INTO _rhtmx_sync_mutations (client_id, mutation_id, entity, answer, "
                   "version) VALUES (?1, ?2, ?3, ?4, ?5)",
    /* The real key an earlier applied create of this client got for a temporary id. */
    [PS_MUT_TMP] = "SELECT json_extract(answer, '$.id') FROM _rhtmx_sync_mutations"
                   " WHERE client_id = ?1 AND entity = ?2 AND json_extract(answer, '$.tmp') = ?3"
                   "   AND json_extract(answer, '$.applied') LIMIT 1",
    /* The newest change to the row after client_version made by anyone but the
     * pushing client: its own earlier pushes (an echo it has not pulled yet, a
     * create earlier in the same batch) are never a conflict. */
    [PS_LOG_NEWEST] = "SELECT version, created_at FROM _rhtmx_sync_log"
                      " WHERE entity = ?1 AND entity_id = ?2 AND version > ?3"
                      "   AND (client_id IS NULL OR client_id <> ?4)"
                      " ORDER BY version DESC LIMIT 1",
    /* The row as the client last saw it: its newest entry at or before client_version. */
    [PS_LOG_BASE] = "SELECT data FROM _rhtmx_sync_log"
                    " WHERE entity = ?1 AND entity_id = ?2 AND version <= ?3"
                    " ORDER BY version DESC LIMIT 1",
};

struct push {
    struct db *d;
    const struct table *t;
    const struct push_opts *o;
    const struct push_body *b;
    long long now_ms;
    sqlite3_stmt *st[PS__COUNT];
    struct {
        char *sql;
        sqlite3_stmt *st;
    } dyn[DYN_CACHE];
    size_t ndyn;
    struct json_object *tmpmap; /* temporary id -> real key, for this batch */
    char *mkey;                 /* the client's key in _rhtmx_sync_mutations */
};

long long
push_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-01-02T03:04:05.678Z" (the log's created_at) as ms since 1970; 0 if unreadable. */
static long long
parse_time_ms(const char *s)
{
    struct tm tm;
    int ms = 0;

    memset(&tm, 0, sizeof(tm));
    if (s == NULL || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

/* ---- Statements ---- */

static sqlite3_stmt *
prepare(struct push *p, const char *sql, struct err *e)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v3(p->d->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        db_fail(p->d, e, "push: prepare");
        return NULL;
    }
    return st;
}

/* The table's own statements: PS_ROW and PS_DELETE. */
static void
table_sql(const struct table *t, enum pstmt id, struct buf *b)
{
    size_t i;

    if (id == PS_LAST_KEY) {
        /* Text and blobs sort above every number, so the range keeps to
         * numbers, and the primary key's index answers it in one step. */
        buf_adds(b, "SELECT ");
        sql_ident(b, t->cols[t->key].name);
        buf_adds(b, " FROM ");
        sql_ident(b, t->en->table);
        buf_adds(b, " WHERE ");
        sql_ident(b, t->cols[t->key].name);
        buf_adds(b, " <= 9223372036854775807 ORDER BY ");
        sql_ident(b, t->cols[t->key].name);
        buf_adds(b, " DESC LIMIT 1");
        return;
    }
    if (id == PS_ROW) {
        buf_adds(b, "SELECT ");
        for (i = 0; i < t->ncols; i++) {
            if (i > 0)
                buf_adds(b, ", ");
            sql_ident(b, t->cols[i].name);
        }
        buf_adds(b, " FROM ");
    } else {
        buf_adds(b, "DELETE FROM ");
    }
    sql_ident(b, t->en->table);
    buf_adds(b, " WHERE ");
    sql_ident(b, t->cols[t->key].name);
    buf_adds(b, " = ?1");
}

/* Statement id, reset, bindings cleared. Borrowed until push_close(). */
static sqlite3_stmt *
ps(struct push *p, enum pstmt id, struct err *e)
{
    struct buf sql = {0};

    if (p->st[id] == NULL) {
        if (pstmt_sql[id] != NULL) {
            p->st[id] = prepare(p, pstmt_sql[id], e);
        } else {
            table_sql(p->t, id, &sql);
            p->st[id] = prepare(p, sql.p, e);
            buf_free(&sql);
        }
        if (p->st[id] == NULL)
            return NULL;
    }
    sqlite3_reset(p->st[id]);
    sqlite3_clear_bindings(p->st[id]);
    return p->st[id];
}

/* A statement for sql, from this batch's cache when it was prepared before.
 * *owned is set when it is not cached and the caller must finalize it. */
static sqlite3_stmt *
dyn(struct push *p, const char *sql, int *owned, struct err *e)
{
    sqlite3_stmt *st;
    size_t i;

    *owned = 0;
    for (i = 0; i < p->ndyn; i++) {
        if (strcmp(p->dyn[i].sql, sql) == 0) {
            sqlite3_reset(p->dyn[i].st);
            sqlite3_clear_bindings(p->dyn[i].st);
            return p->dyn[i].st;
        }
    }
    st = prepare(p, sql, e);
    if (st == NULL)
        return NULL;
    if (p->ndyn < DYN_CACHE) {
        p->dyn[p->ndyn].sql = strdup(sql);
        p->dyn[p->ndyn].st = st;
        if (p->dyn[p->ndyn].sql != NULL) {
            p->ndyn++;
            return st;
        }
    }
    *owned = 1;
    return st;
}

static void
push_close(struct push *p)
{
    size_t i;

    for (i = 0; i < PS__COUNT; i++)
        sqlite3_finalize(p->st[i]);
    for (i = 0; i < p->ndyn; i++) {
        sqlite3_finalize(p->dyn[i].st);
        free(p->dyn[i].sql);
    }
    json_object_put(p->tmpmap);
    free(p->mkey);
    memset(p, 0, sizeof(*p));
}

/* Step a statement that returns nothing. */
static int
run(struct push *p, sqlite3_stmt *st, const char *what, struct err *e)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_fail(p->d, e, what);
    return 0;
}

static int
run_ps(struct push *p, enum pstmt id, const char *what, struct err *e)
{
    sqlite3_stmt *st = ps(p, id, e);

    return st == NULL ? -1 : run(p, st, what, e);
}

static int
set_client(struct push *p, const char *client_id, struct err *e)
{
    sqlite3_stmt *st = db_stmt(p->d, STMT_SET_CLIENT, e);

    if (st == NULL)
        return -1;
    if (client_id != NULL)
        sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
    return run(p, st, "push: set the client id", e);
}

/* ---- Rows and the log ---- */

/* The row with key `key` (JSON) as a new object of every column in *row, and
 * its key as stored in *kval (sqlite3_value_free), or *row = NULL if there is
 * none. -1 with e set on a database failure. */
static int
row_load(struct push *p, struct json_object *key, struct json_object **row, sqlite3_value **kval,
         struct err *e)
{
    const struct table *t = p->t;
    sqlite3_stmt *st = ps(p, PS_ROW, e);
    size_t i;
    int rc;

    *row = NULL;
    if (kval != NULL)
        *kval = NULL;
    if (st == NULL)
        return -1;
    sqljson_bind(st, 1, key, NULL);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *row = json_object_new_object();
        for (i = 0; i < t->ncols; i++)
            json_object_object_add(*row, t->cols[i].name,
                                   sqljson_value(sqlite3_column_value(st, (int)i)));
        if (kval != NULL)
            *kval = sqlite3_value_dup(sqlite3_column_value(st, (int)t->key));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(p->d, e, "push: read the row");
    return 0;
}

struct newest {
    int found;
    long long version;
    long long time_ms;
};

/* The newest log entry of the row whose stored key is kval written after
 * client_version by someone else than the pushing client: found = 0 if none,
 * i.e. no conflict. */
static int
log_newest(struct push *p, sqlite3_value *kval, long long client_version, struct newest *out,
           struct err *e)
{
    sqlite3_stmt *st = ps(p, PS_LOG_NEWEST, e);
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, p->t->en->name, -1, SQLITE_STATIC);
    sqlite3_bind_value(st, 2, kval);
    sqlite3_bind_int64(st, 3, client_version);
    sqlite3_bind_text(st, 4, p->b->client_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->found = 1;
        out->version = sqlite3_column_int64(st, 0);
        out->time_ms = parse_time_ms((const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(p->d, e, "push: read the change log");
    return 0;
}

/*
 * Column col of st, JSON this program or the triggers wrote earlier, parsed:
 * a new reference, or NULL with e set. Text the app stored that is not UTF-8
 * is in the log as it came (and in answers stored before it was repaired):
 * it is read repaired, as sqljson_value() gives a server row, so the two
 * compare and the strict reader takes it.
 */
static struct json_object *
stored_json(sqlite3_stmt *st, int col, int max_depth, struct err *e)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    struct json_object *o;
    char *fixed = NULL;

    if (text != NULL && utf8_valid(text, n) != n && (fixed = malloc(n * 3)) != NULL) {
        n = utf8_repair(fixed, text, n);
        text = fixed;
    }
    o = jsonr_parse(text ? text : "", n, max_depth, e);
    free(fixed);
    return o;
}

/* The row as the client last saw it (new object), or NULL when the log no longer
 * has it (never seen, deleted then, or compacted away). */
static int
log_base(struct push *p, sqlite3_value *kval, long long client_version, struct json_object **base,
         struct err *e)
{
    sqlite3_stmt *st = ps(p, PS_LOG_BASE, e);
    struct err ignored;
    int rc;

    *base = NULL;
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, p->t->en->name, -1, SQLITE_STATIC);
    sqlite3_bind_value(st, 2, kval);
    sqlite3_bind_int64(st, 3, client_version);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT) {
        *base = stored_json(st, 0, 4, &ignored);
        if (*base != NULL && !json_object_is_type(*base, json_type_object)) {
            json_object_put(*base);
            *base = NULL;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(p->d, e, "push: read the change log");
    return 0;
}

/* 1 if base is known and every column present in both base and row holds the
 * same value in each (a column the app added or dropped since is not a
 * change the client could have conflicted with). */
static int
same_where_both(struct json_object *base, struct json_object *row)
{
    struct json_object *v;

    if (base == NULL || row == NULL)
        return 0;
    json_object_object_foreach(base, f, bv)
    {
        if (json_object_object_get_ex(row, f, &v) && !conflict_value_equal(bv, v))
            return 0;
    }
    return 1;
}

/* Outcome of a write: 0 done, 1 the change can never apply (code and reason
 * filled), -1 the batch must stop (e set). */
struct refusal {
    const char *code;
    char reason[300];
};

static int
write_failed(struct push *p, int rc, struct refusal *r, const char *what, struct err *e)
{
    switch (rc) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
        r->code = "constraint";
        break;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        r->code = "bad_change";
        break;
    default:
        return db_fail(p->d, e, what);
    }
    snprintf(r->reason, sizeof(r->reason), "%s", sqlite3_errmsg(p->d->h));
    return 1;
}

/* Step a write; see struct refusal. */
static int
step_write(struct push *p, sqlite3_stmt *st, int owned, struct refusal *r, const char *what,
           struct err *e)
{
    int rc = sqlite3_step(st), out = 0;

    if (rc != SQLITE_DONE)
        out = write_failed(p, rc, r, what, e);
    sqlite3_reset(st);
    if (owned)
        sqlite3_finalize(st);
    return out;
}

/*
 * The key for a create that named none, in a table whose INTEGER PRIMARY KEY
 * is not the rowid (WITHOUT ROWID): the largest numeric key plus one, as
 * SQLite does for a rowid. Safe from races: the batch holds the write lock.
 * *key is a new reference, or NULL with r set when no key is left.
 */
static int
next_key(struct push *p, struct json_object **key, struct refusal *r, struct err *e)
{
    sqlite3_stmt *st = ps(p, PS_LAST_KEY, e);
    sqlite3_int64 last = 0;
    double real = 0;
    int rc, full = 0;

    *key = NULL;
    if (st == NULL)
        return -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
        last = sqlite3_column_int64(st, 0);
        full = last == INT64_MAX;
    } else if (rc == SQLITE_ROW) { /* a REAL the column could not make an integer */
        real = floor(sqlite3_column_double(st, 0));
        full = real >= 9223372036854775807.0;
        last = full || real < 0 ? 0 : (sqlite3_int64)real;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(p->d, e, "push: find the largest key");
    if (full) {
        r->code = "bad_change";
        snprintf(r->reason, sizeof(r->reason), "%s has no integer key left to assign",
                 p->t->en->name);
        return 1;
    }
    *key = json_object_new_int64(last < 0 ? 1 : last + 1);
    return 0;
}

/* INSERT the row: key (NULL: the server assigns it, see assign_key) and
 * fields. *newkey: the key it got (new reference). 0, 1 refused (r), -1. */
static int
row_insert(struct push *p, struct json_object *key, struct json_object *fields,
           struct json_object **newkey, struct refusal *r, struct err *e)
{
    const struct table *t = p->t;
    struct buf sql = {0};
    struct json_object *assigned = NULL;
    sqlite3_stmt *st;
    int i = 0, n = 0, owned, rc;

    *newkey = NULL;
    if (key == NULL && t->assign_key && !t->rowid_key) {
        if ((rc = next_key(p, &assigned, r, e)) != 0)
            return rc;
        key = assigned;
    }
    buf_adds(&sql, "INSERT INTO ");
    sql_ident(&sql, t->en->table);
    if (key == NULL && json_object_object_length(fields) == 0) {
        buf_adds(&sql, " DEFAULT VALUES");
    } else {
        buf_adds(&sql, " (");
        if (key != NULL) {
            sql_ident(&sql, t->cols[t->key].name);
            n++;
        }
        json_object_object_foreach(fields, f, v)
        {
            (void)v;
            if (n++ > 0)
                buf_adds(&sql, ", ");
            sql_ident(&sql, f);
        }
        buf_adds(&sql, ") VALUES (");
        for (i = 1; i <= n; i++)
            buf_printf(&sql, i > 1 ? ", ?%d" : "?%d", i);
        buf_adds(&sql, ")");
    }
    st = dyn(p, sql.p, &owned, e);
    buf_free(&sql);
    if (st == NULL) {
        rc = -1;
        goto out;
    }
    i = 1;
    if (key != NULL)
        sqljson_bind(st, i++, key, &t->cols[t->key]);
    json_object_object_foreach(fields, f2, v2)
        sqljson_bind(st, i++, v2, &t->cols[table_column(t, f2)]);
    rc = step_write(p, st, owned, r, "push: insert", e);
    if (rc != 0)
        goto out;
    /* Only a rowid comes back through last_insert_rowid(); any other key is
     * the one the row was inserted with. */
    if (key == NULL)
        *newkey = json_object_new_int64(sqlite3_last_insert_rowid(p->d->h));
    else
        *newkey = json_object_get(key);
out:
    json_object_put(assigned);
    return rc;
}

/* UPDATE the row whose stored key is kval with fields (nothing to do when empty). */
static int
row_update(struct push *p, sqlite3_value *kval, struct json_object *fields, struct refusal *r,
           struct err *e)
{
    const struct table *t = p->t;
    struct buf sql = {0};
    sqlite3_stmt *st;
    int i = 1, owned;

    if (fields == NULL || json_object_object_length(fields) == 0)
        return 0;
    buf_adds(&sql, "UPDATE ");
    sql_ident(&sql, t->en->table);
    buf_adds(&sql, " SET ");
    json_object_object_foreach(fields, f, v)
    {
        (void)v;
        if (i > 1)
            buf_adds(&sql, ", ");
        sql_ident(&sql, f);
        buf_printf(&sql, " = ?%d", i++);
    }
    buf_adds(&sql, " WHERE ");
    sql_ident(&sql, t->cols[t->key].name);
    buf_printf(&sql, " = ?%d", i);
    st = dyn(p, sql.p, &owned, e);
    buf_free(&sql);
    if (st == NULL)
        return -1;
    i = 1;
    json_object_object_foreach(fields, f2, v2)
        sqljson_bind(st, i++, v2, &t->cols[table_column(t, f2)]);
    sqlite3_bind_value(st, i, kval);
    return step_write(p, st, owned, r, "push: update", e);
}

static int
row_delete(struct push *p, sqlite3_value *kval, struct refusal *r, struct err *e)
{
    sqlite3_stmt *st = ps(p, PS_DELETE, e);

    if (st == NULL)
        return -1;
    sqlite3_bind_value(st, 1, kval);
    return step_write(p, st, 0, r, "push: delete", e);
}

/* ---- Outcome records ---- */

static struct json_object *
rec_new(struct json_object *id, int applied)
{
    struct json_object *rec = json_object_new_object();

    json_object_object_add(rec, "id", json_object_get(id));
    json_object_object_add(rec, "applied", json_object_new_boolean(applied));
    return rec;
}

static struct json_object *rec_rejected(const struct push_change *c, const char *code,
                                        const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static struct json_object *
rec_rejected(const struct push_change *c, const char *code, const char *fmt, ...)
{
    struct json_object *rec = rec_new(c->id, 0), *r = json_object_new_object();
    char reason[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    json_object_object_add(r, "mutation_id", json_object_new_string(c->mutation_id));
    json_object_object_add(r, "id", json_object_get(c->id));
    json_object_object_add(r, "code", json_object_new_string(code));
    json_object_object_add(r, "reason", json_object_new_string(reason));
    json_object_object_add(rec, "rejected", r);
    return rec;
}

/* ---- One change ---- */

static int
is_tmp(struct json_object *id)
{
    return id != NULL && json_object_is_type(id, json_type_string) &&
           strncmp(json_object_get_string(id), TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0;
}

/* The real key a temporary id was given, by this batch or an earlier one of
 * the same client: new reference in *key, or NULL if never created. */
static int
tmp_lookup(struct push *p, const char *tmp, struct json_object **key, struct err *e)
{
    struct json_object *v;
    sqlite3_stmt *st;
    int rc;

    *key = NULL;
    if (json_object_object_get_ex(p->tmpmap, tmp, &v)) {
        *key = json_object_get(v);
        return 0;
    }
    st = ps(p, PS_MUT_TMP, e);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, p->mkey, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->t->en->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, tmp, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *key = sqljson_value(sqlite3_column_value(st, 0));
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(p->d, e, "push: look up a temporary id");
    return 0;
}

/* Why key cannot be a key of t, or NULL. */
static const char *
key_problem(const struct table *t, struct json_object *key)
{
    char a = sqljson_affinity(t->cols[t->key].type);

    if (a == 'I' && !json_object_is_type(key, json_type_int))
        return t->assign_key ? "the id must be an integer (or, for a create, a temporary id "
                               "\"" TMP_PREFIX "...\")"
                             : "the id must be an integer";
    if (a == 'T' && !json_object_is_type(key, json_type_string))
        return "the id must be a string";
    return NULL;
}

/* The columns of data to write, without the key: a new object in *fields, or
 * a rejection record. */
static struct json_object *
change_fields(const struct push *p, const struct push_change *c, struct json_object **fields)
{
    const struct table *t = p->t;
    char q[ERR_QUOTED];
    const char *why;
    long col;

    *fields = json_object_new_object();
    if (c->data == NULL)
        return NULL;
    json_object_object_foreach(c->data, f, v)
    {
        col = table_column(t, f);
        if (col < 0 && schema_column_gone(p->d, t, f))
            return rec_rejected(c, "schema_changed",
                                "column '%s' is no longer in %s (the app changed its schema): "
                                "nothing of this change was applied",
                                err_quote(q, f), t->en->name);
        if (col < 0)
            return rec_rejected(c, "unknown_column", "unknown column '%s' in %s", err_quote(q, f),
                                t->en->name);
        if ((size_t)col == t->key)
            continue;
        if (t->cols[col].generated)
            return rec_rejected(c, "bad_change",
                                "column '%s' of %s is generated by the database: a push cannot "
                                "write it",
                                f, t->en->name);
        if ((why = sqljson_problem(v)) != NULL)
            return rec_rejected(c, "bad_change", "column '%s': %s", f, why);
        json_object_object_add(*fields, f, json_object_get(v));
    }
    return NULL;
}

/* 1 if v, a column value, is the owner value as text (42 and "42" are "42"). */
static int
owner_is(struct json_object *v, const char *owner)
{
    char tmp[32];

    if (json_object_is_type(v, json_type_string))
        return (size_t)json_object_get_string_len(v) == strlen(owner) &&
               strcmp(json_object_get_string(v), owner) == 0;
    if (json_object_is_type(v, json_type_int)) {
        snprintf(tmp, sizeof(tmp), "%" PRId64, json_object_get_int64(v));
        return strcmp(tmp, owner) == 0;
    }
    return 0;
}

/* The owner column's name when this push must keep to the caller's rows, else NULL. */
static const char *
owner_column(const struct push *p)
{
    return p->t->owner >= 0 && p->o->owner != NULL ? p->t->cols[p->t->owner].name : NULL;
}

/* Check what a custom resolver asked to write: known columns, storable values,
 * and no handing the row to another owner. */
static int
check_write(const struct push *p, struct json_object *w, struct err *e)
{
    const char *why, *ocol = owner_column(p);
    struct json_object *ov;

    if (w == NULL)
        return 0;
    if (ocol != NULL && json_object_object_get_ex(w, ocol, &ov) && !owner_is(ov, p->o->owner))
        return err_set(e, 500, "internal", "custom resolver for %s changed the owner column '%s'",
                       p->t->en->name, ocol);
    json_object_object_foreach(w, f, v)
    {
        long col = table_column(p->t, f);
        if (col < 0)
            return err_set(e, 500, "internal", "custom resolver for %s wrote unknown column '%s'",
                           p->t->en->name, f);
        if (p->t->cols[col].generated)
            return err_set(e, 500, "internal", "custom resolver for %s wrote generated column '%s'",
                           p->t->en->name, f);
        if ((why = sqljson_problem(v)) != NULL)
            return err_set(e, 500, "internal", "custom resolver for %s: column '%s': %s",
                           p->t->en->name, f, why);
    }
    return 0;
}

/* 1 if every field already has that value in row. */
static int
same_as_row(struct json_object *fields, struct json_object *row)
{
    struct json_object *rv;

    json_object_object_foreach(fields, f, v)
    {
        if (!json_object_object_get_ex(row, f, &rv) || !conflict_value_equal(v, rv))
            return 0;
    }
    return 1;
}

/* Run change c (inside its savepoint). Returns its outcome record (new
 * reference), or NULL with e set when the batch must stop. */
static struct json_object *
change_run(struct push *p, const struct push_change *c, struct err *e)
{
    const struct table *t = p->t;
    const char *keyname = t->cols[t->key].name, *tmp = NULL, *why, *ocol = owner_column(p);
    char q[ERR_QUOTED];
    struct json_object *rec = NULL, *key = NULL, *fields = NULL, *dk = NULL, *ov;
    struct json_object *server = NULL, *base = NULL, *after = NULL, *stored = NULL, *cf;
    struct conflict_result res = {0};
    struct rhtmx_conflict x;
    struct newest nw;
    struct refusal r = {0};
    sqlite3_value *kval = NULL;
    int has_dk, rc;

    if (!t->en->offline_writes) {
        rec = rec_rejected(c, "forbidden",
                           "entity '%s' does not accept writes from clients (offline_writes is "
                           "false)",
                           t->en->name);
        goto done;
    }

    /* The key: the change's id, a temporary id, or the key inside data. */
    has_dk = c->data != NULL && json_object_object_get_ex(c->data, keyname, &dk) && dk != NULL;
    if (t->assign_key && is_tmp(c->id)) {
        if (has_dk && !conflict_value_equal(dk, c->id)) {
            rec = rec_rejected(c, "bad_change", "data.%s differs from the change's id", keyname);
            goto done;
        }
        if (c->action == PUSH_CREATE) {
            tmp = json_object_get_string(c->id);
        } else {
            if (tmp_lookup(p, json_object_get_string(c->id), &key, e) < 0)
                goto fatal;
            if (key == NULL) {
                rec = rec_rejected(c, "not_found",
                                   "temporary id '%s' was never created by this client",
                                   err_quote(q, json_object_get_string(c->id)));
                goto done;
            }
        }
    } else if (c->id != NULL) {
        if (has_dk && !conflict_value_equal(dk, c->id)) {
            rec = rec_rejected(c, "bad_change", "data.%s differs from the change's id", keyname);
            goto done;
        }
        key = json_object_get(c->id);
    } else if (has_dk) {
        key = json_object_get(dk);
    } else if (!t->assign_key) {
        rec = rec_rejected(c, "bad_change",
                           "a create needs an id: %s.%s is not assigned by "
                           "the server",
                           t->en->name, keyname);
        goto done;
    }
    if (key != NULL && (why = key_problem(t, key)) != NULL) {
        rec = rec_rejected(c, "bad_change", "%s", why);
        goto done;
    }
    if ((rec = change_fields(p, c, &fields)) != NULL)
        goto done;

    if (key != NULL && row_load(p, key, &server, &kval, e) < 0)
        goto fatal;
    if (server != NULL && ocol != NULL &&
        (!json_object_object_get_ex(server, ocol, &ov) || !owner_is(ov, p->o->owner))) {
        rec = rec_rejected(c, "forbidden", "this %s belongs to another user", t->en->name);
        goto done;
    }
    /* A new row is the caller's whatever the client sent (it is set below); a
     * change to an existing row may not hand it to someone else. */
    if (ocol != NULL && (server != NULL || c->action != PUSH_CREATE) &&
        json_object_object_get_ex(fields, ocol, &ov) && !owner_is(ov, p->o->owner)) {
        rec = rec_rejected(c, "forbidden", "%s.%s is the owner: it must be your own user id",
                           t->en->name, ocol);
        goto done;
    }
    /* scope hook: a row outside the caller's scope is not theirs to touch */
    if (server != NULL && t->scope != NULL && p->o->scope != NULL) {
        if ((rc = scope_row_visible(p->d, t, kval, p->o->scope, e)) < 0)
            goto fatal;
        if (rc == 0) {
            rec = rec_rejected(c, "forbidden", "this %s is outside your scope", t->en->name);
            goto done;
        }
    }
    if (server == NULL) {
        if (c->action == PUSH_CREATE) {
            if (ocol != NULL)
                json_object_object_add(fields, ocol, json_object_new_string(p->o->owner));
            rc = row_insert(p, key, fields, &stored, &r, e);
            if (rc < 0)
                goto fatal;
            if (rc > 0)
                goto refused;
            rec = rec_new(stored, 1);
            if (tmp != NULL)
                json_object_object_add(rec, "tmp", json_object_new_string(tmp));
        } else if (c->action == PUSH_DELETE) {
            rec = rec_new(key, 1); /* already gone: acknowledged */
        } else {
            rec = rec_rejected(c, "not_found", "no %s with this id (it may have been deleted)",
                               t->en->name);
        }
        goto done;
    }

    /* The row exists (a create for an existing id updates it, see PUSH.md). */
    stored = sqljson_value(kval);
    if (log_newest(p, kval, c->client_version, &nw, e) < 0)
        goto fatal;
    if (!nw.found || (c->action != PUSH_DELETE && same_as_row(fields, server))) {
        rc = c->action == PUSH_DELETE ? row_delete(p, kval, &r, e)
                                      : row_update(p, kval, fields, &r, e);
        if (rc < 0)
            goto fatal;
        if (rc > 0)
            goto refused;
        rec = rec_new(stored, 1);
        goto done;
    }

    /* A conflict: the row changed on the server after the client's version. */
    if (log_base(p, kval, c->client_version, &base, e) < 0)
        goto fatal;
    /* Unless its entries after that version change nothing the client saw: an
     * UPDATE that wrote the values already there (every UPDATE logs), or the
     * rows logged again after the app changed its schema. */
    if (c->action != PUSH_DELETE && same_where_both(base, server)) {
        rc = row_update(p, kval, fields, &r, e);
        if (rc < 0)
            goto fatal;
        if (rc > 0)
            goto refused;
        rec = rec_new(stored, 1);
        goto done;
    }
    x = (struct rhtmx_conflict){
        .abi = RHTMX_RESOLVER_ABI,
        .entity = t->en->name,
        .table = t->en->table,
        .key = keyname,
        .action = push_action_name(c->action),
        .client_id = p->b->client_id,
        .mutation_id = c->mutation_id,
        .id = stored,
        .server = server,
        .client = c->action == PUSH_DELETE ? NULL : fields,
        .base = base,
        .client_version = c->client_version,
        .server_version = nw.version,
        .client_time_ms = p->now_ms,
        .server_time_ms = nw.time_ms,
    };
    if (conflict_resolve(t->en->strategy, &x, p->o->resolver, &res, e) < 0 ||
        check_write(p, res.write, e) < 0)
        goto fatal;
    if (res.delete_row)
        rc = row_delete(p, kval, &r, e);
    else
        rc = row_update(p, kval, res.write, &r, e);
    if (rc < 0)
        goto fatal;
    if (rc > 0)
        goto refused;
    if (row_load(p, stored, &after, NULL, e) < 0)
        goto fatal;
    rec = rec_new(stored, res.decision != CONFLICT_SERVER);
    cf = json_object_new_object();
    json_object_object_add(cf, "mutation_id", json_object_new_string(c->mutation_id));
    json_object_object_add(cf, "id", json_object_get(stored));
    json_object_object_add(cf, "strategy", json_object_new_string(strategy_name(t->en->strategy)));
    json_object_object_add(cf, "decision",
                           json_object_new_string(conflict_decision_name(res.decision)));
    json_object_object_add(cf, "server", after);
    json_object_object_add(cf, "version", json_object_new_int64(nw.version));
    json_object_object_add(rec, "conflict", cf);
    after = NULL;
    goto done;

refused:
    rec = rec_rejected(c, r.code, "%s", r.reason);
done:
    json_object_put(res.write);
    json_object_put(after);
    json_object_put(base);
    json_object_put(server);
    json_object_put(stored);
    json_object_put(fields);
    json_object_put(key);
    sqlite3_value_free(kval);
    return rec;
fatal:
    json_object_put(rec);
    rec = NULL;
    goto done;
}

/* ---- The batch ---- */

/* A stored outcome of mutation c: *rec (new reference) and the version it was
 * answered with, or *rec = NULL when the mutation is new. A mutation id used
 * before for another entity gets a rejection (not stored). */
static int
mutation_get(struct push *p, const struct push_change *c, struct json_object **rec,
             long long *version, struct err *e)
{
    sqlite3_stmt *st = ps(p, PS_MUT_GET, e);
    struct err perr;
    int rc;

    *rec = NULL;
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, p->mkey, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->mutation_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (strcmp((const char *)sqlite3_column_text(st, 0), p->t->en->name) != 0) {
            *rec =
                rec_rejected(c, "bad_change", "mutation_id '%s' was already used for entity '%s'",
                             c->mutation_id, (const char *)sqlite3_column_text(st, 0));
            *version = -1;
        } else {
            *rec = stored_json(st, 1, PUSH_BODY_MAX_DEPTH + 2, &perr);
            *version = sqlite3_column_int64(st, 2);
            if (*rec == NULL)
                err_set(e, 500, "database", "push: stored answer of %s/%s is unreadable: %s",
                        p->b->client_id, c->mutation_id, perr.msg);
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(p->d, e, "push: look up a mutation");
    return rc == SQLITE_ROW && *rec == NULL ? -1 : 0;
}

static int
mutation_put(struct push *p, const struct push_change *c, struct json_object *rec,
             long long version, struct err *e)
{
    sqlite3_stmt *st = ps(p, PS_MUT_PUT, e);

    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, p->mkey, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->mutation_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->t->en->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4,
                      json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE),
                      -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, version);
    return run(p, st, "push: record the mutation", e);
}

/* Remember an applied create's temporary id for later changes of the batch. */
static void
note_tmp(struct push *p, struct json_object *rec)
{
    struct json_object *tmp, *id, *applied;

    if (json_object_object_get_ex(rec, "tmp", &tmp) && json_object_object_get_ex(rec, "id", &id) &&
        json_object_object_get_ex(rec, "applied", &applied) && json_object_get_boolean(applied) &&
        json_object_is_type(tmp, json_type_string))
        json_object_object_add(p->tmpmap, json_object_get_string(tmp), json_object_get(id));
}

/* Fold the records into the answer and write it to out. */
static void
answer_write(struct json_object **recs, size_t n, long long version, struct buf *out)
{
    struct json_object *a = json_object_new_object(), *applied = json_object_new_array();
    struct json_object *ids = json_object_new_object(), *conflicts = json_object_new_array();
    struct json_object *rejected = json_object_new_array(), *v, *id = NULL;
    size_t i;

    for (i = 0; i < n; i++) {
        json_object_object_get_ex(recs[i], "id", &id);
        if (json_object_object_get_ex(recs[i], "applied", &v) && json_object_get_boolean(v)) {
            json_object_array_add(applied, json_object_get(id));
            if (json_object_object_get_ex(recs[i], "tmp", &v))
                json_object_object_add(ids, json_object_get_string(v), json_object_get(id));
        }
        if (json_object_object_get_ex(recs[i], "conflict", &v))
            json_object_array_add(conflicts, json_object_get(v));
        if (json_object_object_get_ex(recs[i], "rejected", &v))
            json_object_array_add(rejected, json_object_get(v));
    }
    json_object_object_add(a, "version", json_object_new_int64(version));
    json_object_object_add(a, "applied", applied);
    json_object_object_add(a, "ids", ids);
    json_object_object_add(a, "conflicts", conflicts);
    json_object_object_add(a, "rejected", rejected);
    buf_adds(out, json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
    buf_adds(out, "\n");
    json_object_put(a);
}

/* Run change i: its savepoint, the change, and the savepoint's end. */
/*
 * scope hook: after an applied change, the row (if it is still there) must be
 * in the caller's scope; otherwise *rec becomes a rejection, so the caller
 * rolls the change back.
 */
static int
scope_after(struct push *p, const struct push_change *c, struct json_object **rec, struct err *e)
{
    struct json_object *id = NULL, *applied = NULL, *row = NULL;
    sqlite3_value *kval = NULL;
    int rc = 0;

    if (p->t->scope == NULL || p->o->scope == NULL ||
        json_object_object_get_ex(*rec, "rejected", NULL) ||
        !json_object_object_get_ex(*rec, "applied", &applied) ||
        !json_object_get_boolean(applied) || !json_object_object_get_ex(*rec, "id", &id))
        return 0;
    if (row_load(p, id, &row, &kval, e) < 0)
        return -1;
    if (row != NULL && (rc = scope_row_visible(p->d, p->t, kval, p->o->scope, e)) == 0) {
        json_object_put(*rec);
        *rec = rec_rejected(c, "forbidden",
                            c->action == PUSH_CREATE && c->id != NULL
                                ? "the %s would be outside your scope: not written"
                                : "the change would move this %s out of your scope: not written",
                            p->t->en->name);
    }
    json_object_put(row);
    sqlite3_value_free(kval);
    return rc < 0 ? -1 : 0;
}

static struct json_object *
change_in_savepoint(struct push *p, const struct push_change *c, struct err *e)
{
    struct json_object *rec;

    if (run_ps(p, PS_SAVEPOINT, "push: savepoint", e) < 0)
        return NULL;
    rec = change_run(p, c, e);
    if (rec == NULL)
        return NULL; /* the whole transaction is rolled back */
    if (scope_after(p, c, &rec, e) < 0)
        goto err;
    if (json_object_object_get_ex(rec, "rejected", NULL) &&
        run_ps(p, PS_ROLLBACK_TO, "push: roll back a rejected change", e) < 0)
        goto err;
    if (run_ps(p, PS_RELEASE, "push: release", e) < 0)
        goto err;
    return rec;
err:
    json_object_put(rec);
    return NULL;
}

int
push_batch(struct db *d, const struct table *t, const struct push_opts *o, const char *body,
           size_t n, struct buf *out, struct err *e)
{
    struct push_body b;
    struct push p;
    struct json_object **recs = NULL;
    unsigned char *fresh = NULL;
    long long head, v, replayed = -1;
    int any_new = 0, rc = -1;
    size_t i;

    memset(&p, 0, sizeof(p));
    if (push_body_parse(&b, body, n, o->max_changes, e) < 0)
        goto out;
    if (t->en->strategy == STRATEGY_CUSTOM && o->resolver == NULL) {
        err_set(e, 500, "config",
                "entity '%s' uses strategy \"custom\" but no resolver is registered or named by "
                "push.resolver in the config",
                t->en->name);
        goto out;
    }
    recs = calloc(b.n ? b.n : 1, sizeof(*recs));
    fresh = calloc(b.n ? b.n : 1, 1);
    if (recs == NULL || fresh == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto out;
    }
    p.d = d;
    p.t = t;
    p.o = o;
    p.b = &b;
    p.now_ms = o->now_ms > 0 ? o->now_ms : push_now_ms();
    p.tmpmap = json_object_new_object();
    if (o->user != NULL) {
        size_t len = strlen(o->user) + strlen(b.client_id) + 2;
        p.mkey = malloc(len);
        if (p.mkey != NULL)
            snprintf(p.mkey, len, "%s/%s", o->user, b.client_id);
    } else {
        p.mkey = strdup(b.client_id);
    }
    if (p.mkey == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto out;
    }

    if (db_begin_write(d, e) < 0)
        goto out;
    if (set_client(&p, b.client_id, e) < 0)
        goto rollback;
    /* Rows the app wrote since the last seal become merge bases first. */
    if (schema_unsealed(d, t) && schema_seal(d, t, e) < 0)
        goto rollback;
    for (i = 0; i < b.n; i++) {
        const struct push_change *c = &b.changes[i];
        if (mutation_get(&p, c, &recs[i], &v, e) < 0)
            goto rollback;
        if (recs[i] != NULL) {
            if (v > replayed)
                replayed = v;
        } else {
            recs[i] = change_in_savepoint(&p, c, e);
            if (recs[i] == NULL)
                goto rollback;
            fresh[i] = 1;
            any_new = 1;
        }
        note_tmp(&p, recs[i]);
    }
    head = db_head(d, e);
    if (head < 0)
        goto rollback;
    for (i = 0; i < b.n; i++)
        if (fresh[i] && mutation_put(&p, &b.changes[i], recs[i], head, e) < 0)
            goto rollback;
    if (set_client(&p, NULL, e) < 0)
        goto rollback;
    /* And the rows this batch wrote: the client holds them now. */
    if (any_new && schema_seal(d, t, e) < 0)
        goto rollback;
    push_close(&p); /* statements done before COMMIT */
    if (db_commit(d, e) < 0)
        goto rollback;
    /* A batch answered entirely from stored outcomes answers their version too. */
    answer_write(recs, b.n, !any_new && replayed >= 0 ? replayed : head, out);
    rc = 0;
    goto out;
rollback:
    db_rollback(d);
out:
    push_close(&p);
    if (recs != NULL)
        for (i = 0; i < b.n; i++)
            json_object_put(recs[i]);
    free(recs);
    free(fresh);
    push_body_free(&b);
    return rc;
}
