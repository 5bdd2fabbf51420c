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
 * (an earlier template had a fourth trigger for it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "schema.h"
#include "sha256.h"
#include "sqljson.h"

/* Bumped whenever the generated trigger text changes, so old triggers are rebuilt. */
#define TRIGGER_TEMPLATE "t5"
/* json_object() takes at most 127 arguments by default: 60 columns per call. */
#define JSON_CHUNK 60

/* text between q quotes, each q inside doubled: the one SQL quoting rule. */
static void
sql_quote(struct buf *b, const char *text, char q)
{
    const char *run = text;

    buf_add(b, &q, 1);
    for (; *text; text++) {
        if (*text == q) {
            buf_add(b, run, (size_t)(text - run + 1));
            run = text; /* the quote goes out twice */
        }
    }
    buf_adds(b, run);
    buf_add(b, &q, 1);
}

void
sql_ident(struct buf *b, const char *name)
{
    sql_quote(b, name, '"');
}

void
sql_literal(struct buf *b, const char *text)
{
    sql_quote(b, text, '\'');
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
    struct buf sql = {0};
    size_t cap = 0;
    int rc;

    /* The PRAGMA itself rather than SELECT ... FROM pragma_table_xinfo(?): a
     * third of the cost to prepare, and this runs at every CGI start. Its
     * columns: cid, name, type, notnull, dflt_value, pk, hidden, in cid order.
     * table_xinfo rather than table_info: it lists generated columns too
     * (hidden 2 VIRTUAL, 3 STORED); hidden 1 is a virtual table's own. */
    buf_adds(&sql, "PRAGMA table_xinfo(");
    sql_ident(&sql, t->en->table);
    buf_adds(&sql, ")");
    rc = sqlite3_prepare_v2(d->h, sql.p, -1, &st, NULL);
    buf_free(&sql);
    if (rc != SQLITE_OK)
        return db_fail(d, e, "read table_xinfo");
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
    struct buf sql = {0};
    int rc = -1, step;

    *unique = *pk_index = 0;
    buf_adds(&sql, "PRAGMA index_list(");
    sql_ident(&sql, t->en->table);
    buf_adds(&sql, ")");
    if (sqlite3_prepare_v2(d->h, sql.p, -1, &list, NULL) != SQLITE_OK) {
        db_fail(d, e, "read index_list");
        goto out;
    }
    /* columns: seq, name, unique, origin ('c', 'u' or 'pk'), partial */
    while ((step = sqlite3_step(list)) == SQLITE_ROW) {
        const char *origin = (const char *)sqlite3_column_text(list, 3);
        int n = 0, on_key = 0;

        if (origin != NULL && strcmp(origin, "pk") == 0)
            *pk_index = 1;
        if (!want_unique || sqlite3_column_int(list, 2) != 1 || sqlite3_column_int(list, 4) != 0)
            continue;
        buf_reset(&sql);
        buf_adds(&sql, "PRAGMA index_info(");
        sql_ident(&sql, (const char *)sqlite3_column_text(list, 1));
        buf_adds(&sql, ")");
        if (sqlite3_prepare_v2(d->h, sql.p, -1, &info, NULL) != SQLITE_OK) {
            db_fail(d, e, "read index_info");
            goto out;
        }
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
    buf_free(&sql);
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

/*
 * Column i's value for JSON: blobs become hex text (JSON has no bytes), and
 * reals are written by us, not by json_object(), which in SQLite 3.40 gives
 * 15 significant digits (0.30000000000000004 becomes 0.3, DBL_MAX a number
 * past it) and a bare Inf, which is not JSON. The row's JSON is made in SQL
 * (a pull's query, the seal), and only built-in SQL will do:
 *
 *   printf('%!.17g') below 1e99, '%!.21g' from there: the shortest precision
 *   that reads back (strtod, JSON.parse) as the same double from SQLite's
 *   own digit generation, whose scaling by 1e100 steps is off by up to 5e-17
 *   (measured and explained in docs/PROTOCOL.md);
 *   Inf / -Inf become 9e999 / -9e999: valid JSON, read back as infinity.
 *
 * json() marks the text as JSON, so json_object() takes it as a number. A
 * column of TEXT affinity never holds a real (SQLite turns one into text), so
 * its branch is left out: each pull prepares this text.
 */
static void
json_value(struct buf *b, const struct table *t, size_t i, const char *row)
{
    struct buf v = {0};

    buf_printf(&v, "%s.", row);
    sql_ident(&v, t->cols[i].name);
    if (t->rowid_key && i == t->key) {
        buf_adds(b, v.p);
    } else {
        buf_printf(b, "CASE typeof(%s) WHEN 'blob' THEN hex(%s) ", v.p, v.p);
        if (sqljson_affinity(t->cols[i].type) != 'T')
            buf_printf(b,
                       "WHEN 'real' THEN json(replace(printf('%%!.*g',17+4*(abs(%s)>=1e99),%s),"
                       "'Inf','9e999')) ",
                       v.p, v.p);
        buf_printf(b, "ELSE %s END", v.p);
    }
    buf_free(&v);
}

/* The row `row` (NEW, OLD, or a table alias) as a JSON object expression. */
static void
json_row(struct buf *b, const struct table *t, const char *row)
{
    size_t i, start;

    /* First chunk in json_object(), later chunks added with json_insert(). */
    for (start = JSON_CHUNK; start < t->ncols; start += JSON_CHUNK)
        buf_adds(b, "json_insert(");
    buf_adds(b, "json_object(");
    for (i = 0; i < t->ncols; i++) {
        if (i > 0 && i % JSON_CHUNK == 0)
            buf_adds(b, "), ");
        else if (i > 0)
            buf_adds(b, ", ");
        if (i < JSON_CHUNK) {
            sql_literal(b, t->cols[i].name);
        } else {
            buf_adds(b, "'$.\"");
            for (const char *p = t->cols[i].name; *p; p++)
                buf_add(b, p, 1 + (*p == '\''));
            buf_adds(b, "\"'");
        }
        buf_adds(b, ", ");
        json_value(b, t, i, row);
    }
    buf_adds(b, ")");
}

/* The row's owner for the log, as text: a token's "sub" is text, and an
 * INTEGER user_id 42 must match "42". NULL for shared entities. */
static void
owner_value(struct buf *b, const struct table *t, const char *row)
{
    if (t->owner < 0) {
        buf_adds(b, "NULL");
        return;
    }
    buf_printf(b, "CAST(%s.", row);
    sql_ident(b, t->cols[t->owner].name);
    buf_adds(b, " AS TEXT)");
}

static void
trigger_name(struct buf *b, const struct table *t, const char *what)
{
    buf_printf(b, "\"_rhtmx_sync_%s_%s\"", t->en->name, what);
}

/* "OLD.key IS NOT NEW.key" when changed is 1, "OLD.key IS NEW.key" when it is 0. */
static void
key_changed(struct buf *b, const struct table *t, int changed)
{
    buf_adds(b, "OLD.");
    sql_ident(b, t->cols[t->key].name);
    buf_adds(b, changed ? " IS NOT NEW." : " IS NEW.");
    sql_ident(b, t->cols[t->key].name);
}

/*
 * One log append for `row`: bump head, insert the entry with the new head.
 * action is SQL text (a literal or an expression); only_rekey 1 makes both
 * statements apply only when the key changed. The entry names the row by its
 * key and carries no data: the triggers name no column but the key and the
 * owner, so the app's ALTER TABLE (DROP COLUMN checks every trigger of the
 * table against the new columns) never meets them. schema_seal() copies the
 * row into the entry afterwards, and a pull reads rows from the table.
 */
static void
log_append(struct buf *b, const struct table *t, const char *action, const char *row,
           int only_rekey)
{
    buf_adds(b, "UPDATE _rhtmx_sync_state SET value = value + 1 WHERE key = 'head'");
    if (only_rekey) {
        buf_adds(b, " AND ");
        key_changed(b, t, 1);
    }
    buf_adds(b, ";\nINSERT INTO _rhtmx_sync_log (entity, entity_id, action, data, version, "
                "client_id, owner) SELECT ");
    sql_literal(b, t->en->name);
    buf_printf(b, ", %s.", row);
    sql_ident(b, t->cols[t->key].name);
    buf_printf(b, ", %s, NULL, ", action);
    buf_adds(b, "(SELECT value FROM _rhtmx_sync_state WHERE key = 'head'), "
                "(SELECT client_id FROM _rhtmx_sync_context WHERE id = 1), ");
    owner_value(b, t, row);
    if (only_rekey) {
        buf_adds(b, " WHERE ");
        key_changed(b, t, 1);
    }
    buf_adds(b, ";\n");
}

/* "CREATE TRIGGER name AFTER event ON table" */
static void
trigger_open(struct buf *b, const struct table *t, const char *kind, const char *event)
{
    buf_adds(b, "CREATE TRIGGER ");
    trigger_name(b, t, kind);
    buf_printf(b, " AFTER %s ON ", event);
    sql_ident(b, t->en->table);
}

static void
triggers_sql(struct buf *b, const struct table *t)
{
    struct buf action = {0};
    size_t i;

    /* "rekey" was template t2's fourth trigger: an upgrade drops it. */
    static const char *const kinds[] = {"insert", "update", "rekey", "delete"};
    for (i = 0; i < 4; i++) {
        buf_adds(b, "DROP TRIGGER IF EXISTS ");
        trigger_name(b, t, kinds[i]);
        buf_adds(b, ";\n");
    }

    trigger_open(b, t, "insert", "INSERT");
    buf_adds(b, " BEGIN\n");
    log_append(b, t, "'create'", "NEW", 0);
    buf_adds(b, "END;\n");

    /* Every UPDATE logs, even one that changes nothing: comparing the columns
     * would name them all, and then the app could not drop one. */
    trigger_open(b, t, "update", "UPDATE");
    buf_adds(b, " BEGIN\n");
    /* A new key: the old one is gone for the clients, the row is new to them. */
    log_append(b, t, "'delete'", "OLD", 1);
    buf_adds(&action, "CASE WHEN ");
    key_changed(&action, t, 0);
    buf_adds(&action, " THEN 'update' ELSE 'create' END");
    log_append(b, t, action.p, "NEW", 0);
    buf_adds(b, "END;\n");
    buf_free(&action);

    trigger_open(b, t, "delete", "DELETE");
    buf_adds(b, " BEGIN\n");
    log_append(b, t, "'delete'", "OLD", 0);
    buf_adds(b, "END;\n");
}

/* "(SELECT action FROM the log WHERE the newest entry of key expr)" */
static void
newest_action(struct buf *b, const struct table *t, const char *keyexpr)
{
    /* +key: without affinity on either side the lookup can use the log's
     * index (with the key column's affinity it scanned every entry of the
     * entity for each row: minutes for 100,000 rows already in the log). */
    buf_adds(b, "(SELECT l.action FROM _rhtmx_sync_log AS l WHERE l.entity = ");
    sql_literal(b, t->en->name);
    buf_printf(b, " AND l.entity_id = +%s ORDER BY l.version DESC LIMIT 1)", keyexpr);
}

/*
 * Make the log agree with the table, versions after the head:
 *   every row whose newest entry is missing or a delete gets a 'create';
 *   with all_rows, every other row gets an 'update' (the triggers were
 *   missing for a while, as in a table rebuilt under its name, or its columns
 *   changed: any row may differ from what the clients hold);
 *   every key whose newest entry is live but which the table no longer has
 *   gets a 'delete'.
 * So a full sync after it equals the table. Entries carry no data until
 * schema_seal() runs (install_one runs it next).
 */
static void
reconcile_sql(struct buf *b, const struct table *t, int all_rows)
{
    const char *key = t->cols[t->key].name;
    struct buf rk = {0};

    buf_adds(&rk, "r.");
    sql_ident(&rk, key);

    buf_adds(b, "INSERT INTO _rhtmx_sync_log (entity, entity_id, action, data, version, owner)"
                " SELECT ");
    sql_literal(b, t->en->name);
    buf_printf(b, ", %s, CASE coalesce(", rk.p);
    newest_action(b, t, rk.p);
    buf_adds(b, ", 'delete') WHEN 'delete' THEN 'create' ELSE 'update' END, NULL, "
                "(SELECT value FROM _rhtmx_sync_state WHERE key = 'head') + "
                "row_number() OVER (ORDER BY ");
    buf_adds(b, rk.p);
    buf_adds(b, "), ");
    owner_value(b, t, "r");
    buf_adds(b, " FROM ");
    sql_ident(b, t->en->table);
    buf_adds(b, " AS r");
    if (!all_rows) {
        buf_adds(b, " WHERE coalesce(");
        newest_action(b, t, rk.p);
        buf_adds(b, ", 'delete') = 'delete'");
    }
    buf_printf(b, " ORDER BY %s;\n", rk.p);
    buf_adds(b, "UPDATE _rhtmx_sync_state SET value = max(value, (SELECT coalesce(max(version), 0)"
                " FROM _rhtmx_sync_log)) WHERE key = 'head';\n");

    /* Keys the log holds live that the table lost without a trigger seeing it. */
    buf_adds(b, "INSERT INTO _rhtmx_sync_log (entity, entity_id, action, data, version, owner)"
                " SELECT l.entity, l.entity_id, 'delete', NULL, "
                "(SELECT value FROM _rhtmx_sync_state WHERE key = 'head') + "
                "row_number() OVER (ORDER BY l.version), l.owner FROM _rhtmx_sync_log AS l"
                " WHERE l.entity = ");
    sql_literal(b, t->en->name);
    buf_adds(b, " AND l.action <> 'delete' AND NOT EXISTS (SELECT 1 FROM _rhtmx_sync_log AS m"
                " WHERE m.entity = l.entity AND m.entity_id = l.entity_id AND m.version > "
                "l.version) AND NOT EXISTS (SELECT 1 FROM ");
    sql_ident(b, t->en->table);
    buf_adds(b, " AS r WHERE ");
    buf_adds(b, rk.p);
    buf_adds(b, " = l.entity_id) ORDER BY l.version;\n");
    buf_adds(b, "UPDATE _rhtmx_sync_state SET value = max(value, (SELECT coalesce(max(version), 0)"
                " FROM _rhtmx_sync_log)) WHERE key = 'head';\n");
    buf_free(&rk);
}

/* The table's columns as a JSON array literal, for _rhtmx_sync_tables.columns. */
static void
columns_literal(struct buf *b, const struct table *t)
{
    struct buf arr = {0};
    size_t i;

    buf_adds(&arr, "[");
    for (i = 0; i < t->ncols; i++) {
        buf_adds(&arr, i ? ",\"" : "\"");
        buf_adds(&arr, t->cols[i].name); /* no quote or backslash: table_check */
        buf_adds(&arr, "\"");
    }
    buf_adds(&arr, "]");
    sql_literal(b, arr.p);
    buf_free(&arr);
}

/* Remember the columns the last install saw and no longer exist (a push
 * naming one is schema_changed, not unknown_column); forget a column that is
 * back. Runs before _rhtmx_sync_tables gets the new list. */
static void
gone_sql(struct buf *b, const struct table *t)
{
    buf_adds(b, "INSERT OR IGNORE INTO _rhtmx_sync_gone (entity, name) SELECT ");
    sql_literal(b, t->en->name);
    buf_adds(b, ", j.value FROM _rhtmx_sync_tables AS s, json_each(s.columns) AS j"
                " WHERE s.entity = ");
    sql_literal(b, t->en->name);
    buf_adds(b, " AND s.columns IS NOT NULL AND j.value NOT IN (SELECT value FROM json_each(");
    columns_literal(b, t);
    buf_adds(b, "));\nDELETE FROM _rhtmx_sync_gone WHERE entity = ");
    sql_literal(b, t->en->name);
    buf_adds(b, " AND name IN (SELECT value FROM json_each(");
    columns_literal(b, t);
    buf_adds(b, "));\n");
}

void
schema_seal_sql(struct buf *b, const struct table *t)
{
    buf_adds(b, "UPDATE _rhtmx_sync_log AS l SET data = CASE WHEN EXISTS (SELECT 1 FROM "
                "_rhtmx_sync_log AS m WHERE m.entity = l.entity AND m.entity_id = l.entity_id "
                "AND m.version > l.version) THEN 'null' ELSE coalesce((SELECT ");
    json_row(b, t, "r");
    buf_adds(b, " FROM ");
    sql_ident(b, t->en->table);
    buf_adds(b, " AS r WHERE r.");
    sql_ident(b, t->cols[t->key].name);
    buf_adds(b, " = l.entity_id), 'null') END WHERE l.entity = ");
    sql_literal(b, t->en->name);
    buf_adds(b, " AND l.data IS NULL AND l.action <> 'delete'");
}

int
schema_seal(struct db *d, const struct table *t, struct err *e)
{
    struct buf sql = {0};
    int rc;

    schema_seal_sql(&sql, t);
    rc = db_exec(d, sql.p, e);
    buf_free(&sql);
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
    sqlite3_stmt *st = NULL;
    int gone;

    if (sqlite3_prepare_v2(d->h, "SELECT 1 FROM _rhtmx_sync_gone WHERE entity = ?1 AND name = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, t->en->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    gone = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return gone;
}

void
schema_pull_sql(struct buf *b, const struct table *t)
{
    /* STMT_PULL's query (db.c explains it), with each live row's data read
     * from the table: the newest entry of a live row is the row as it is now,
     * in the same snapshot, whatever columns it has gained or lost since the
     * entry was written. */
    buf_adds(b, "SELECT l.entity_id, CASE WHEN ?5 THEN 'create' ELSE l.action END,"
                " CASE WHEN l.action = 'delete' THEN NULL ELSE ");
    json_row(b, t, "r");
    buf_adds(b, " END, l.version, l.client_id"
                " FROM _rhtmx_sync_log AS l"
                " LEFT JOIN _rhtmx_sync_log AS m INDEXED BY idx_sync_row_version"
                " ON m.entity = l.entity AND m.entity_id = l.entity_id AND m.version > l.version"
                " LEFT JOIN ");
    sql_ident(b, t->en->table);
    buf_adds(b, " AS r ON l.action <> 'delete' AND r.");
    sql_ident(b, t->cols[t->key].name);
    buf_adds(b, " = l.entity_id"
                " WHERE l.entity = ?1 AND l.version > ?2"
                " AND (NOT ?5 OR l.action <> 'delete')"
                " AND (?4 IS NULL OR l.owner = ?4)"
                " AND m.version IS NULL"
                " ORDER BY l.version LIMIT ?3");
}

/* The stored signature for t, or NULL (new string). */
static char *
stored_signature(struct db *d, const struct table *t)
{
    sqlite3_stmt *st = NULL;
    char *sig = NULL;

    if (sqlite3_prepare_v2(d->h, "SELECT signature FROM _rhtmx_sync_tables WHERE entity = ?1", -1,
                           &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, t->en->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        sig = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
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
    return ok;
}

static int
install_one(struct db *d, const struct table *t, struct err *e)
{
    struct buf sql = {0};
    char *sig = stored_signature(d, t);
    int rc;

    triggers_sql(&sql, t);
    /* First sight of this entity: log the rows the log does not hold live.
     * Seen before (triggers dropped with a rebuilt table, columns changed, an
     * older template): log every row again, and a delete for every key the
     * table lost meanwhile. Then copy the rows into the new entries. */
    reconcile_sql(&sql, t, sig != NULL);
    schema_seal_sql(&sql, t);
    buf_adds(&sql, ";\n");
    gone_sql(&sql, t);
    buf_adds(&sql, "INSERT OR REPLACE INTO _rhtmx_sync_tables (entity, tbl, signature, columns) "
                   "VALUES (");
    sql_literal(&sql, t->en->name);
    buf_adds(&sql, ", ");
    sql_literal(&sql, t->en->table);
    buf_adds(&sql, ", ");
    sql_literal(&sql, t->signature);
    buf_adds(&sql, ", ");
    columns_literal(&sql, t);
    buf_adds(&sql, ");\n");
    rc = db_exec(d, sql.p, e);
    buf_free(&sql);
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
