/*
 * schema: table introspection and change-capture triggers (see schema.h).
 *
 * Trigger shape, for entity E on table T with key K:
 *
 *   _rhtmx_sync_E_insert  AFTER INSERT              -> one 'create' of NEW.K
 *   _rhtmx_sync_E_update  AFTER UPDATE, K kept      -> one 'update' of NEW.K
 *                                  K changed       -> 'delete' of OLD.K, 'create' of NEW.K
 *   _rhtmx_sync_E_delete  AFTER DELETE              -> one 'delete' of OLD.K
 *
 * No entry carries data when it is written (data NULL): SQLite checks every
 * column a trigger names against the table's new columns when the app runs
 * ALTER TABLE DROP COLUMN, and refuses the drop if one is gone. The row's
 * JSON is made by the programs from the columns they read at that moment:
 * a pull reads it from the table (schema_pull_sql), and schema_seal copies
 * it into the newest unsealed entry of each row for conflict merges.
 *
 * Each entry takes the next version from _rhtmx_sync_state('head') inside the
 * writer's own transaction, so versions are strictly increasing across all
 * entities and writers and a rolled-back write leaves no trace. The pushing
 * client's id comes from _rhtmx_sync_context (NULL for everyone else).
 *
 * The trigger text is kept small on purpose: SQLite parses every trigger of
 * the schema when a connection first uses it, and a CGI program is a new
 * connection per request. So a key change is a branch of the update trigger
 * (an earlier template had a fourth trigger for it). The text of the
 * triggers, and of every other statement made from a table, is sqlgen.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "schema.h"
#include "scope.h"
#include "sha256.h"
#include "sqlgen.h"

/* Bumped whenever the generated trigger text changes, so old triggers are rebuilt. */
#define TRIGGER_TEMPLATE "t5"

int
schema_check_generated(const struct config *c, const struct table *t, struct err *e)
{
    const struct entity *en = t->en;

    if (t->cols[t->key].generated)
        return err_set(e, 500, "config",
                       "%s: entity '%s': key column '%s' of table '%s' is a generated column: "
                       "a push could not create a row",
                       c->path, en->name, en->key, en->table);
    if (t->owner >= 0 && t->cols[t->owner].generated)
        return err_set(e, 500, "config",
                       "%s: entity '%s': owner column '%s' of table '%s' is a generated column: "
                       "a push could not set the owner",
                       c->path, en->name, en->owner_column, en->table);
    return 0;
}

long
table_column(const struct table *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return (long)i;
    return -1;
}

static void
table_clear(struct table *t)
{
    size_t i;

    for (i = 0; i < t->ncols; i++) {
        free(t->cols[i].name);
        free(t->cols[i].type);
    }
    free(t->cols);
    free(t->signature);
    scope_free(t->scope);
}

void
schema_free(struct schema *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->ntables; i++)
        table_clear(&s->tables[i]);
    free(s->tables);
    free(s);
}

static long long
schema_cookie(struct db *d)
{
    return db_schema_cookie(d);
}

int
schema_stale(struct db *d, const struct schema *s)
{
    return schema_cookie(d) != s->cookie;
}

/* Read PRAGMA table_xinfo(T) into t. 0 rows means the table does not exist. */
static int
table_read(struct db *d, struct table *t, struct err *e)
{
    sqlite3_stmt *st = NULL;
    char *sql;
    size_t cap = 0;
    int rc;

    /* Its columns: cid, name, type, notnull, dflt_value, pk, hidden, in cid order.
     * table_xinfo rather than table_info: it lists generated columns too
     * (hidden 2 VIRTUAL, 3 STORED); hidden 1 is a virtual table's own. */
    sql = sqlgen_named(SQLGEN_TABLE_XINFO, t->en->table);
    st = db_prepare(d, sql, "read table_xinfo", e);
    sqlite3_free(sql);
    if (st == NULL)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct column *c;
        int hidden = sqlite3_column_int(st, 6);
        if (hidden == 1)
            continue;
        if (t->ncols == cap) {
            cap = cap ? cap * 2 : 8;
            t->cols = realloc(t->cols, cap * sizeof(*t->cols));
        }
        c = &t->cols[t->ncols++];
        c->name = strdup((const char *)sqlite3_column_text(st, 1));
        c->type =
            strdup(sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2) : "");
        c->notnull = sqlite3_column_int(st, 3);
        c->has_default = sqlite3_column_type(st, 4) != SQLITE_NULL;
        c->pk = sqlite3_column_int(st, 5);
        c->generated = hidden == 2 || hidden == 3;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(d, e, "read table_xinfo");
    return 0;
}

/*
 * How the key column of t is indexed, from PRAGMA index_list and index_info:
 * *unique 1 when a UNIQUE index (a PRIMARY KEY's or UNIQUE constraint's
 * automatic index, or a CREATE UNIQUE INDEX) covers exactly that column and
 * is not partial (only looked for when want_unique: this runs at every CGI
 * start, and a key that is the primary key needs no more); *pk_index 1 when
 * the table's primary key has an index of its own, which is how an INTEGER
 * PRIMARY KEY that is not the rowid (WITHOUT ROWID, or declared DESC)
 * differs from one that is. 0, or -1 with e set.
 */
static int
key_indexes(struct db *d, const struct table *t, int want_unique, int *unique, int *pk_index,
            struct err *e)
{
    sqlite3_stmt *list = NULL, *info = NULL;
    char *sql = NULL;
    int rc = -1, step;

    *unique = *pk_index = 0;
    sql = sqlgen_named(SQLGEN_INDEX_LIST, t->en->table);
    list = db_prepare(d, sql, "read index_list", e);
    sqlite3_free(sql);
    if (list == NULL)
        goto out;
    /* columns: seq, name, unique, origin ('c', 'u' or 'pk'), partial */
    while ((step = sqlite3_step(list)) == SQLITE_ROW) {
        const char *origin = (const char *)sqlite3_column_text(list, 3);
        int n = 0, on_key = 0;

        if (origin != NULL && strcmp(origin, "pk") == 0)
            *pk_index = 1;
        if (!want_unique || sqlite3_column_int(list, 2) != 1 || sqlite3_column_int(list, 4) != 0)
            continue;
        sql = sqlgen_named(SQLGEN_INDEX_INFO, (const char *)sqlite3_column_text(list, 1));
        info = db_prepare(d, sql, "read index_info", e);
        sqlite3_free(sql);
        if (info == NULL)
            goto out;
        /* columns: seqno, cid, name (NULL for an expression) */
        while ((step = sqlite3_step(info)) == SQLITE_ROW) {
            const char *col = (const char *)sqlite3_column_text(info, 2);
            n++;
            on_key = col != NULL && strcmp(col, t->cols[t->key].name) == 0;
        }
        sqlite3_finalize(info);
        info = NULL;
        if (step != SQLITE_DONE) {
            db_fail(d, e, "read index_info");
            goto out;
        }
        if (n == 1 && on_key)
            *unique = 1;
    }
    if (step != SQLITE_DONE) {
        db_fail(d, e, "read index_list");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(info);
    sqlite3_finalize(list);
    return rc;
}

/* t->fingerprint: the first 64 bits of SHA-256 over the key and each column's
 * name and declared type, in order, as hex. Clients compare it, not its parts. */
void
schema_fingerprint(struct table *t)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_LEN];
    struct sha256 h;
    size_t i;

    sha256_init(&h);
    sha256_update(&h, t->cols[t->key].name, strlen(t->cols[t->key].name) + 1);
    for (i = 0; i < t->ncols; i++) {
        sha256_update(&h, t->cols[i].name, strlen(t->cols[i].name) + 1);
        sha256_update(&h, t->cols[i].type, strlen(t->cols[i].type) + 1);
    }
    sha256_final(&h, md);
    for (i = 0; i < sizeof(t->fingerprint) / 2; i++) {
        t->fingerprint[2 * i] = hex[md[i] >> 4];
        t->fingerprint[2 * i + 1] = hex[md[i] & 15];
    }
    t->fingerprint[sizeof(t->fingerprint) - 1] = '\0';
}

static int
table_check(struct db *d, const struct config *c, struct table *t, struct err *e)
{
    const struct entity *en = t->en;
    long k;
    size_t i, npk = 0;
    int unique, pk_index, pk_key, integer_pk;
    struct buf sig = {0};

    if (t->ncols == 0)
        return err_set(e, 500, "config", "%s: entity '%s': table '%s' does not exist in %s",
                       c->path, en->name, en->table, c->database);
    k = table_column(t, en->key);
    if (k < 0)
        return err_set(e, 500, "config", "%s: entity '%s': table '%s' has no key column '%s'",
                       c->path, en->name, en->table, en->key);
    t->key = (size_t)k;
    t->owner = -1;
    if (en->owner_column != NULL) {
        t->owner = table_column(t, en->owner_column);
        if (t->owner < 0)
            return err_set(e, 500, "config", "%s: entity '%s': table '%s' has no owner column '%s'",
                           c->path, en->name, en->table, en->owner_column);
    }
    for (i = 0; i < t->ncols; i++) {
        if (t->cols[i].pk)
            npk++;
        if (strchr(t->cols[i].name, '"') != NULL || strchr(t->cols[i].name, '\\') != NULL)
            return err_set(e, 500, "config",
                           "%s: entity '%s': column name '%s' (quote or backslash) is not "
                           "supported",
                           c->path, en->name, t->cols[i].name);
    }
    if (schema_check_generated(c, t, e) < 0)
        return -1;
    /* A key that is not unique would merge rows in the clients (a pull shows
     * one of them) and a pushed delete would remove all of them. A table's
     * only primary key column is unique; anything else needs a unique index. */
    pk_key = npk == 1 && t->cols[t->key].pk == 1;
    integer_pk = pk_key && strcasecmp(t->cols[t->key].type, "INTEGER") == 0;
    unique = pk_key;
    pk_index = 0;
    if ((!pk_key || integer_pk) && key_indexes(d, t, !pk_key, &unique, &pk_index, e) < 0)
        return -1;
    if (!pk_key && !unique)
        return err_set(e, 500, "config",
                       "%s: entity '%s': key column '%s' of table '%s' is not unique (part of a "
                       "composite key, or no UNIQUE index of its own): one key would name "
                       "several rows; make it the only PRIMARY KEY column or give it a UNIQUE "
                       "index",
                       c->path, en->name, en->key, en->table);
    /* The rowid alias has no index of its own; any other primary key has one. */
    t->rowid_key = integer_pk && !pk_index;
    t->assign_key = integer_pk;
    /* The signature covers everything the trigger text depends on. */
    buf_printf(&sig, "%s|%s|%s|%s", TRIGGER_TEMPLATE, en->table, en->key,
               en->owner_column ? en->owner_column : "");
    for (i = 0; i < t->ncols; i++)
        buf_printf(&sig, "|%s %s", t->cols[i].name, t->cols[i].type);
    /* An INTEGER key that is not the rowid may hold other types (the blob
     * guard of json_value); the mark cannot be a column name (no quotes). */
    if (integer_pk && !t->rowid_key)
        buf_adds(&sig, "|\"not-rowid\"");
    t->signature = sig.p;
    schema_fingerprint(t);
    return 0;
}

struct schema *
schema_load(struct db *d, const struct config *c, struct err *e)
{
    struct schema *s = calloc(1, sizeof(*s));
    size_t i;

    if (s == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return NULL;
    }
    s->cookie = schema_cookie(d);
    s->tables = calloc(c->nentities, sizeof(*s->tables));
    s->ntables = c->nentities;
    for (i = 0; i < c->nentities; i++) {
        s->tables[i].en = &c->entities[i];
        if (table_read(d, &s->tables[i], e) < 0 || table_check(d, c, &s->tables[i], e) < 0)
            goto err;
        /* scope hook (lib/scope.h): compiled and checked here, part of the signature */
        if (scope_load(d, c, &s->tables[i], &s->tables[i].scope, e) < 0)
            goto err;
        if (scope_sign(&s->tables[i]) < 0) {
            err_set(e, 500, "internal", "out of memory");
            goto err;
        }
    }
    return s;
err:
    schema_free(s);
    return NULL;
}

const struct table *
schema_table(const struct schema *s, const char *name)
{
    size_t i;

    for (i = 0; i < s->ntables; i++)
        if (strcmp(s->tables[i].en->name, name) == 0)
            return &s->tables[i];
    return NULL;
}

/* Append generated sql to b and free it (NULL, out of memory: nothing). */
static void
append_sql(struct buf *b, char *sql)
{
    if (sql != NULL)
        buf_adds(b, sql);
    sqlite3_free(sql);
}

void
schema_seal_sql(struct buf *b, const struct table *t)
{
    append_sql(b, sqlgen_seal(t));
}

int
schema_seal(struct db *d, const struct table *t, struct err *e)
{
    char *sql = sqlgen_seal(t);
    int rc = db_exec(d, sql, e);

    sqlite3_free(sql);
    return rc;
}

int
schema_unsealed(struct db *d, const struct table *t)
{
    sqlite3_stmt *st;
    struct err e;
    int found;

    if ((st = db_stmt(d, STMT_UNSEALED, &e)) == NULL)
        return 0;
    sqlite3_bind_text(st, 1, t->en->name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return found;
}

int
schema_column_gone(struct db *d, const struct table *t, const char *name)
{
    struct err ignored;
    sqlite3_stmt *st = db_stmt(d, STMT_COLUMN_GONE, &ignored);
    int gone;

    if (st == NULL)
        return 0;
    sqlite3_bind_text(st, 1, t->en->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    gone = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* drops the borrowed strings */
    return gone;
}

void
schema_pull_sql(struct buf *b, const struct table *t)
{
    append_sql(b, sqlgen_pull(t));
}

/* The stored signature for t, or NULL (new string). */
static char *
stored_signature(struct db *d, const struct table *t)
{
    struct err ignored;
    sqlite3_stmt *st = db_stmt(d, STMT_SIGNATURE, &ignored);
    char *sig = NULL;

    if (st == NULL)
        return NULL;
    sqlite3_bind_text(st, 1, t->en->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        sig = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return sig;
}

int
schema_installed(struct db *d, const struct table *t)
{
    sqlite3_stmt *st;
    char prefix[100];
    struct err e;
    int ok;

    if ((st = db_stmt(d, STMT_INSTALLED, &e)) == NULL)
        return 0;
    snprintf(prefix, sizeof(prefix), "_rhtmx_sync_%s_", t->en->name);
    sqlite3_bind_text(st, 1, t->en->table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, t->signature, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->en->name, -1, SQLITE_STATIC);
    ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
    sqlite3_reset(st); /* ends its read of the schema, and drops the borrowed strings */
    sqlite3_clear_bindings(st);
    /* scope hook: and the triggers on the tables its scope reads (a table the
     * app rebuilt lost them) */
    return ok && (t->scope == NULL || scope_installed(d, t));
}

static int
install_one(struct db *d, const struct table *t, struct err *e)
{
    char *sig = stored_signature(d, t);
    char *sql;
    int rc;

    /* First sight of this entity: log the rows the log does not hold live.
     * Seen before (triggers dropped with a rebuilt table, columns changed, an
     * older template): log every row again, and a delete for every key the
     * table lost meanwhile. Then copy the rows into the new entries. */
    sql = sqlgen_install(t, sig != NULL);
    rc = db_exec(d, sql, e);
    sqlite3_free(sql);
    if (rc == 0) /* scope hook: the triggers of the tables its scope reads */
        rc = scope_install(d, t, e);
    free(sig);
    return rc;
}

int
schema_current(struct db *d, const struct schema *s)
{
    size_t i;

    for (i = 0; i < s->ntables; i++)
        if (!schema_installed(d, &s->tables[i]))
            return 0;
    return 1;
}

int
schema_install(struct db *d, struct schema *s, int *changed, struct err *e)
{
    size_t i;
    int n = 0;

    if (changed != NULL)
        *changed = 0;
    if (schema_current(d, s))
        return 0;
    if (d->readonly)
        return err_set(e, 500, "database",
                       "the database is read-only and its sync triggers are missing or old: run "
                       "'rhtmx-sync init' as its owner");
    if (db_begin_write(d, e) < 0)
        return -1;
    for (i = 0; i < s->ntables; i++) {
        if (schema_installed(d, &s->tables[i]))
            continue; /* someone else installed it while we waited for the lock */
        if (install_one(d, &s->tables[i], e) < 0)
            goto err;
        n++;
    }
    if (db_commit(d, e) < 0)
        goto err;
    s->cookie = schema_cookie(d); /* our own CREATE TRIGGERs moved it */
    if (changed != NULL)
        *changed = n;
    return 0;
err:
    db_rollback(d);
    return -1;
}
