/*
 * pg_push: see pg_push.h.
 *
 * The PostgreSQL store of a push: the rules of the batch and of each change
 * are push.c's (push_batch_changes(), push_change_run()); this file gives them
 * its rows, change log and stored outcomes through struct push_batch_store and
 * struct push_store (push.h). pg_push_batch() runs the transaction around them.
 *
 * Identifiers come only from struct table (checked against pg_attribute) and
 * are quoted with pg_ident(); values are always bound parameters ($n), sent
 * as text: PostgreSQL casts each to the type of the column it goes to.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conflict.h"
#include "jsonr.h"
#include "jsonw.h"
#include "pg_json.h"
#include "pg_push.h"
#include "pg_schema.h"
#include "pg_scope.h"
#include "push_body.h"
#include "sqljson.h"

#define MAX_PARAMS 1100 /* a row's columns, plus the key */

/* The PostgreSQL store's batch (the ctx of its operations). */
struct pgpush {
    struct pg *p;
    const struct push_run *run; /* the batch it serves (borrowed) */
};

/* ---- Values ---- */

/* Text parameters for one statement: each value's text, or NULL for SQL NULL.
 * nul: the column of the first string value holding \u0000 (borrowed from
 * struct table), which a text parameter would cut there: write_run() refuses
 * the statement rather than write or find something else. */
struct params {
    const char *v[MAX_PARAMS];
    char *owned[MAX_PARAMS];
    int n;
    const char *nul;
};

static void
params_free(struct params *ps)
{
    int i;

    for (i = 0; i < ps->n; i++)
        free(ps->owned[i]);
    ps->n = 0;
}

static int
column_is(const struct column *col, const char *type)
{
    return col != NULL && strcmp(col->type, type) == 0;
}

/* Add v (checked by sqljson_problem) as the next parameter, for column col
 * (may be NULL): as PostgreSQL reads it for that column. A hex string for a
 * bytea column goes in as those bytes (what a pull sent for them). */
static void
params_add(struct params *ps, struct json_object *v, const struct column *col)
{
    char tmp[48], *s = NULL;

    if (ps->n >= MAX_PARAMS)
        return;
    switch (v == NULL ? json_type_null : json_object_get_type(v)) {
    case json_type_null:
        break;
    case json_type_boolean:
        s = strdup(column_is(col, "boolean") ? (json_object_get_boolean(v) ? "true" : "false")
                                             : (json_object_get_boolean(v) ? "1" : "0"));
        break;
    case json_type_int:
        snprintf(tmp, sizeof(tmp), "%" PRId64, json_object_get_int64(v));
        s = strdup(tmp);
        break;
    case json_type_double: {
        double d = json_object_get_double(v);
        if (isinf(d))
            snprintf(tmp, sizeof(tmp), "%s", d > 0 ? "Infinity" : "-Infinity");
        else
            snprintf(tmp, sizeof(tmp), "%.17g", d);
        s = strdup(tmp);
        break;
    }
    default:
        if (column_is(col, "bytea")) {
            size_t n = (size_t)json_object_get_string_len(v) + 3;
            if ((s = malloc(n)) != NULL)
                snprintf(s, n, "\\x%s", json_object_get_string(v));
        } else {
            s = strdup(json_object_get_string(v));
        }
        if (ps->nul == NULL && s != NULL &&
            strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
            ps->nul = col != NULL ? col->name : "?";
        break;
    }
    ps->owned[ps->n] = s;
    ps->v[ps->n] = s;
    ps->n++;
}

/* Columns first..first+ncols-1 of row r of res as a new JSON object (names
 * from t), in the form pulls send. NULL when out of memory. */
static struct json_object *
row_json(const PGresult *res, int r, int first, const struct table *t)
{
    struct buf b = {0};
    struct sink s = buf_sink(&b);
    struct json_object *o;
    struct err ignored;
    size_t i;

    jsonw_raw(&s, "{");
    for (i = 0; i < t->ncols; i++) {
        int c = first + (int)i;
        jsonw_raw(&s, i == 0 ? "" : ",");
        jsonw_cstring(&s, t->cols[i].name);
        jsonw_raw(&s, ":");
        pg_json_value(&s, PQftype(res, c), PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c));
    }
    jsonw_raw(&s, "}");
    o = jsonr_parse(b.p, b.len, 4, &ignored);
    buf_free(&b);
    return o;
}

/* Value (r, c) of res as JSON: a new reference, NULL for SQL NULL. */
static struct json_object *
value_json(const PGresult *res, int r, int c)
{
    struct buf b = {0};
    struct sink s = buf_sink(&b);
    struct json_object *o;
    struct err ignored;

    if (PQgetisnull(res, r, c))
        return NULL;
    pg_json_value(&s, PQftype(res, c), PQgetvalue(res, r, c));
    o = jsonr_parse(b.p, b.len, 2, &ignored);
    buf_free(&b);
    return o;
}

/* ---- Statements ---- */

/* A write that failed: 1 with r filled when the change can never apply
 * (a constraint, a value the column cannot take), else -1 with e set. */
static int
write_failed(struct pgpush *pp, PGresult *res, struct push_refusal *r, const char *what,
             struct err *e)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (state != NULL && strncmp(state, "23", 2) == 0)
        r->code = "constraint";
    else if (state != NULL && (strncmp(state, "22", 2) == 0 || strcmp(state, "42804") == 0))
        r->code = "bad_change";
    else
        return pg_fail(pp->p, res, what, e);
    snprintf(r->reason, sizeof(r->reason), "%s", msg != NULL ? msg : "refused by the database");
    return 1;
}

/* Run a write with ps; see struct push_refusal. *out (may be NULL) gets the result
 * of one that succeeded (caller PQclear()s it). A value holding \u0000 refuses the
 * change before anything runs. */
static int
write_run(struct pgpush *pp, const char *sql, struct params *ps, PGresult **out,
          struct push_refusal *r, const char *what, struct err *e)
{
    PGresult *res = NULL;
    ExecStatusType st;
    int rc = 0;

    if (out != NULL)
        *out = NULL;
    if (ps->nul != NULL) {
        r->code = "bad_change";
        snprintf(r->reason, sizeof(r->reason),
                 "column '%s': \\u0000 cannot be stored in PostgreSQL text", ps->nul);
        return 1;
    }
    res = pg_query_raw(pp->p, sql, ps->n, ps->v);
    st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = write_failed(pp, res, r, what, e);
    else if (out != NULL) {
        *out = res;
        res = NULL;
    }
    PQclear(res);
    return rc;
}

/* ---- Rows and the log ---- */

/* The row with key `key`, locked for this transaction: a new object of every
 * column in *row, and when h is not NULL its key as the log writes it in *h (a
 * new string, handle_free), or *row = NULL if there is none. 1 with r set when
 * key is no value of the key column's type; -1 with e set on a database
 * failure. */
static int
pg_store_row_load(void *ctx, struct json_object *key, struct json_object **row, void **h,
                  struct push_refusal *r, struct err *e)
{
    struct pgpush *pp = ctx;
    const struct table *t = pp->run->t;
    char *id = NULL;
    struct params ps = {0};
    struct buf sql = {0};
    PGresult *res = NULL;
    size_t i;
    int rc;

    *row = NULL;
    if (h != NULL)
        *h = NULL;
    buf_adds(&sql, "SELECT to_jsonb(r.*) ->> ");
    pg_literal(&sql, t->cols[t->key].name);
    for (i = 0; i < t->ncols; i++) {
        buf_adds(&sql, ", r.");
        pg_ident(&sql, t->cols[i].name);
    }
    buf_adds(&sql, " FROM ");
    pg_ident(&sql, t->en->table);
    buf_adds(&sql, " AS r WHERE r.");
    pg_ident(&sql, t->cols[t->key].name);
    buf_adds(&sql, " = $1 FOR UPDATE");
    params_add(&ps, key, &t->cols[t->key]);
    rc = write_run(pp, sql.p, &ps, &res, r, "push: read the row", e);
    if (rc == 0 && PQntuples(res) == 1) {
        *row = row_json(res, 0, 1, t);
        if (h != NULL)
            *h = id = strdup(PQgetvalue(res, 0, 0));
        if (*row == NULL || (h != NULL && id == NULL))
            rc = err_set(e, 500, "internal", "out of memory");
    }
    PQclear(res);
    params_free(&ps);
    buf_free(&sql);
    return rc;
}

/* The newest log entry of row id after client_version by anyone but the
 * pushing client (its own echoes are never a conflict): found = 0 if none. */
static int
pg_store_log_newest(void *ctx, void *h, long long client_version, struct push_newest *out,
                    struct err *e)
{
    struct pgpush *pp = ctx;
    const char *id = h;
    static const char sql[] =
        "SELECT version, (extract(epoch FROM created_at) * 1000)::bigint FROM _rhtmx_sync_log"
        " WHERE entity = $1 AND entity_id = $2 AND version > $3::bigint"
        "   AND (client_id IS NULL OR client_id <> $4)"
        " ORDER BY version DESC LIMIT 1";
    char cv[24];
    const char *params[4] = {pp->run->t->en->name, id, cv, pp->run->b.client_id};
    PGresult *res;

    memset(out, 0, sizeof(*out));
    snprintf(cv, sizeof(cv), "%lld", client_version);
    if ((res = pg_query(pp->p, sql, 4, params, "push: read the change log", e)) == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        out->found = 1;
        out->version = pg_int(res, 0, 0);
        out->time_ms = pg_int(res, 0, 1);
    }
    PQclear(res);
    return 0;
}

/* The row as the client last saw it (its newest entry at or before
 * client_version), read back through the table's row type so its values have
 * the server row's form; only the columns the entry holds. NULL when unknown. */
static int
pg_store_log_base(void *ctx, void *h, long long client_version, struct json_object **base,
                  struct err *e)
{
    struct pgpush *pp = ctx;
    const char *id = h;
    const struct table *t = pp->run->t;
    char cv[24];
    const char *params[3] = {t->en->name, id, cv};
    struct buf sql = {0};
    PGresult *res;
    size_t i;

    *base = NULL;
    snprintf(cv, sizeof(cv), "%lld", client_version);
    buf_adds(&sql, "SELECT l.data IS NOT NULL");
    for (i = 0; i < t->ncols; i++) {
        buf_adds(&sql, ", b.");
        pg_ident(&sql, t->cols[i].name);
    }
    for (i = 0; i < t->ncols; i++) {
        buf_adds(&sql, ", l.data ? ");
        pg_literal(&sql, t->cols[i].name);
    }
    buf_adds(&sql, " FROM (SELECT data FROM _rhtmx_sync_log WHERE entity = $1 AND entity_id = $2"
                   " AND version <= $3::bigint ORDER BY version DESC LIMIT 1) AS l,"
                   " jsonb_populate_record(NULL::");
    pg_ident(&sql, t->en->table);
    buf_adds(&sql, ", l.data) AS b");
    res = pg_query(pp->p, sql.p, 3, params, "push: read the change log", e);
    buf_free(&sql);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't') {
        *base = row_json(res, 0, 1, t);
        for (i = 0; *base != NULL && i < t->ncols; i++)
            if (PQgetvalue(res, 0, 1 + (int)t->ncols + (int)i)[0] != 't')
                json_object_object_del(*base, t->cols[i].name);
    }
    PQclear(res);
    return 0;
}

/* INSERT the row: key (NULL: the column's default assigns it) and fields.
 * *newkey: the key it got (new reference). 0, 1 refused (r), -1. */
static int
pg_store_row_insert(void *ctx, struct json_object *key, struct json_object *fields,
                    struct json_object **newkey, struct push_refusal *r, struct err *e)
{
    struct pgpush *pp = ctx;
    const struct table *t = pp->run->t;
    struct params ps = {0};
    struct buf sql = {0};
    PGresult *res = NULL;
    int i, rc;

    *newkey = NULL;
    buf_adds(&sql, "INSERT INTO ");
    pg_ident(&sql, t->en->table);
    if (key == NULL && json_object_object_length(fields) == 0) {
        buf_adds(&sql, " DEFAULT VALUES");
    } else {
        buf_adds(&sql, " (");
        if (key != NULL) {
            pg_ident(&sql, t->cols[t->key].name);
            params_add(&ps, key, &t->cols[t->key]);
        }
        json_object_object_foreach (fields, f, v) {
            if (ps.n > 0)
                buf_adds(&sql, ", ");
            pg_ident(&sql, f);
            params_add(&ps, v, &t->cols[table_column(t, f)]);
        }
        buf_adds(&sql, ") VALUES (");
        for (i = 1; i <= ps.n; i++)
            buf_printf(&sql, i > 1 ? ", $%d" : "$%d", i);
        buf_adds(&sql, ")");
    }
    buf_adds(&sql, " RETURNING ");
    pg_ident(&sql, t->cols[t->key].name);
    rc = write_run(pp, sql.p, &ps, &res, r, "push: insert", e);
    if (rc == 0)
        *newkey = value_json(res, 0, 0);
    PQclear(res);
    params_free(&ps);
    buf_free(&sql);
    return rc;
}

/* UPDATE the row with key `key` with fields (nothing to do when empty). */
static int
pg_store_row_update(void *ctx, void *h, struct json_object *key, struct json_object *fields,
                    struct push_refusal *r, struct err *e)
{
    struct pgpush *pp = ctx;
    const struct table *t = pp->run->t;
    struct params ps = {0};
    struct buf sql = {0};
    int rc;

    if (fields == NULL || json_object_object_length(fields) == 0)
        return 0;
    (void)h; /* this store finds the row by its key */
    buf_adds(&sql, "UPDATE ");
    pg_ident(&sql, t->en->table);
    buf_adds(&sql, " SET ");
    json_object_object_foreach (fields, f, v) {
        if (ps.n > 0)
            buf_adds(&sql, ", ");
        pg_ident(&sql, f);
        params_add(&ps, v, &t->cols[table_column(t, f)]);
        buf_printf(&sql, " = $%d", ps.n);
    }
    buf_adds(&sql, " WHERE ");
    pg_ident(&sql, t->cols[t->key].name);
    params_add(&ps, key, &t->cols[t->key]);
    buf_printf(&sql, " = $%d", ps.n);
    rc = write_run(pp, sql.p, &ps, NULL, r, "push: update", e);
    params_free(&ps);
    buf_free(&sql);
    return rc;
}

static int
pg_store_row_delete(void *ctx, void *h, struct json_object *key, struct push_refusal *r,
                    struct err *e)
{
    struct pgpush *pp = ctx;
    const struct table *t = pp->run->t;
    struct params ps = {0};
    struct buf sql = {0};
    int rc;

    (void)h; /* this store finds the row by its key */
    buf_adds(&sql, "DELETE FROM ");
    pg_ident(&sql, t->en->table);
    buf_adds(&sql, " WHERE ");
    pg_ident(&sql, t->cols[t->key].name);
    buf_adds(&sql, " = $1");
    params_add(&ps, key, &t->cols[t->key]);
    rc = write_run(pp, sql.p, &ps, NULL, r, "push: delete", e);
    params_free(&ps);
    buf_free(&sql);
    return rc;
}

/* ---- One change ---- */

/* push_tmp_fn of the PostgreSQL store: ctx is the struct pgpush. */
static int
pg_store_tmp_lookup(void *ctx, const char *tmp, struct json_object **key, struct err *e)
{
    struct pgpush *pp = ctx;
    static const char sql[] =
        "SELECT (answer::jsonb -> 'id')::text FROM _rhtmx_sync_mutations"
        " WHERE client_id = $1 AND entity = $2 AND answer::jsonb ->> 'tmp' = $3"
        "   AND (answer::jsonb -> 'applied') = 'true'::jsonb LIMIT 1";
    const char *params[3] = {pp->run->mkey, pp->run->t->en->name, tmp};
    struct err ignored;
    PGresult *res;

    *key = NULL;
    if ((res = pg_query(pp->p, sql, 3, params, "push: look up a temporary id", e)) == NULL)
        return -1;
    if (PQntuples(res) == 1)
        *key = jsonr_parse(PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)), 2, &ignored);
    PQclear(res);
    return 0;
}

/* What a key column of PostgreSQL type `type` holds: 'I' an integer, 'T' a
 * string, 0 anything else (struct push_store's key_affinity). */
static char
pg_store_key_affinity(const char *type)
{
    if (strcmp(type, "integer") == 0 || strcmp(type, "bigint") == 0 ||
        strcmp(type, "smallint") == 0)
        return 'I';
    if (strcmp(type, "text") == 0 || strncmp(type, "character", 9) == 0 ||
        strcmp(type, "uuid") == 0)
        return 'T';
    return 0;
}

/* push_gone_fn of the PostgreSQL store: ctx is the struct pgpush. */
static int
pg_store_column_gone(void *ctx, const struct table *t, const char *col)
{
    return pg_schema_column_gone(((struct pgpush *)ctx)->p, t, col);
}

/* ---- The store: a row's handle is its key's text (char *) ---- */

/* scope hook: 1 if row h (its key's text) is in the caller's scope, 0, -1. */
static int
pg_store_row_visible(void *ctx, void *h, struct err *e)
{
    const struct pgpush *pp = ctx;

    return pg_scope_row_visible(pp->p, pp->run->t, h, pp->run->o->scope, e);
}

/* ---- The batch ---- */

/* A stored outcome of mutation c: *rec (new reference) and the version it was
 * answered with, or *rec = NULL when the mutation is new. A mutation id used
 * before for another entity gets a rejection (not stored). */
static int
pg_store_mutation_get(void *ctx, const struct push_change *c, struct json_object **rec,
                      long long *version, struct err *e)
{
    struct pgpush *pp = ctx;
    static const char sql[] = "SELECT entity, answer, version FROM _rhtmx_sync_mutations"
                              " WHERE client_id = $1 AND mutation_id = $2";
    const char *params[2] = {pp->run->mkey, c->mutation_id};
    PGresult *res;
    struct err perr;
    int rc = 0;

    *rec = NULL;
    if ((res = pg_query(pp->p, sql, 2, params, "push: look up a mutation", e)) == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        if (strcmp(PQgetvalue(res, 0, 0), pp->run->t->en->name) != 0) {
            *rec = push_rec_rejected(c, "bad_change",
                                     "mutation_id '%s' was already used for entity '%s'",
                                     c->mutation_id, PQgetvalue(res, 0, 0));
            *version = -1;
        } else {
            *rec = jsonr_parse(PQgetvalue(res, 0, 1), strlen(PQgetvalue(res, 0, 1)),
                               PUSH_BODY_MAX_DEPTH + 2, &perr);
            *version = pg_int(res, 0, 2);
            if (*rec == NULL)
                rc = err_set(e, 500, "database", "push: stored answer of %s/%s is unreadable: %s",
                             pp->run->b.client_id, c->mutation_id, perr.msg);
        }
    }
    PQclear(res);
    return rc;
}

static int
pg_store_mutation_put(void *ctx, const struct push_change *c, struct json_object *rec,
                      long long version, struct err *e)
{
    struct pgpush *pp = ctx;
    static const char sql[] = "INSERT INTO _rhtmx_sync_mutations (client_id, mutation_id, entity,"
                              " answer, version) VALUES ($1, $2, $3, $4, $5::bigint)";
    char v[24];
    const char *params[5] = {pp->run->mkey, c->mutation_id, pp->run->t->en->name,
                             json_object_to_json_string_ext(
                                 rec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                             v};

    snprintf(v, sizeof(v), "%lld", version);
    return pg_exec(pp->p, sql, 5, params, "push: record the mutation", e);
}

/* A step of a change's savepoint (struct push_store). */
static int
pg_store_savepoint(void *ctx, enum push_savepoint step, struct err *e)
{
    static const struct {
        const char *sql, *what;
    } steps[] = {
        [PUSH_SAVEPOINT_OPEN] = {"SAVEPOINT rhtmx_change", "push: savepoint"},
        [PUSH_SAVEPOINT_ROLLBACK] = {"ROLLBACK TO SAVEPOINT rhtmx_change",
                                     "push: roll back a rejected change"},
        [PUSH_SAVEPOINT_RELEASE] = {"RELEASE SAVEPOINT rhtmx_change", "push: release"},
    };

    return pg_exec(((struct pgpush *)ctx)->p, steps[step].sql, 0, NULL, steps[step].what, e);
}

/* The log's head for push_batch_changes: ctx is the struct pgpush. */
static long long
pg_store_head_version(void *ctx, struct err *e)
{
    long long head, horizon;

    if (pg_cursors(((struct pgpush *)ctx)->p, &head, &horizon, e) < 0)
        return -1;
    return head;
}

static const struct push_store pg_store = {
    .tmp_lookup = pg_store_tmp_lookup,
    .column_gone = pg_store_column_gone,
    .key_affinity = pg_store_key_affinity,
    .row_load = pg_store_row_load,
    .row_visible = pg_store_row_visible,
    .log_newest = pg_store_log_newest,
    .log_base = pg_store_log_base,
    .row_insert = pg_store_row_insert,
    .row_update = pg_store_row_update,
    .row_delete = pg_store_row_delete,
    .handle_free = free,
    .mutation_get = pg_store_mutation_get,
    .mutation_put = pg_store_mutation_put,
    .head = pg_store_head_version,
    .savepoint = pg_store_savepoint,
};

int
pg_push_batch(struct pg *p, const struct table *t, const struct push_opts *o, const char *body,
              size_t n, struct buf *out, struct err *e)
{
    struct push_run run;
    struct pgpush pp = {p, &run};
    long long version;
    int any_new = 0, rc = -1;
    const char *client[1];

    if (push_batch_open(&run, &pg_store, &pp, t, o, body, n, e) < 0)
        goto out;
    if (pg_begin_write(p, e) < 0)
        goto out;
    /* The triggers stamp this on every entry the batch causes; it ends with
     * the transaction, so no other writer ever sees it. */
    client[0] = run.b.client_id;
    if (pg_exec(p, "SELECT set_config('rhtmx_sync.client_id', $1, true)", 1, client,
                "push: set the client id", e) < 0)
        goto rollback;
    /* One batch of a client at a time, as SQLite's BEGIN IMMEDIATE gives: a
     * retry sent while the first copy is still running waits here, then finds
     * the first copy's stored outcomes (READ COMMITTED reads what committed
     * before each statement) instead of applying the batch again and failing
     * on _rhtmx_sync_mutations' key. The two-key form does not meet the
     * one-key locks of install and compaction. */
    client[0] = run.mkey;
    if (pg_exec(p, "SELECT pg_advisory_xact_lock(hashtext('rhtmx_sync_push'), hashtext($1))", 1,
                client, "push: wait for the client's other batch", e) < 0)
        goto rollback;
    if (push_batch_changes(&run, &version, &any_new, e) < 0)
        goto rollback;
    if (pg_commit(p, e) < 0)
        goto rollback;
    push_answer_write(run.recs, run.b.n, version, out);
    rc = 0;
    goto out;
rollback:
    pg_rollback(p);
out:
    push_batch_close(&run);
    return rc;
}
