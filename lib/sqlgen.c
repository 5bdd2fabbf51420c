/*
 * sqlgen: see sqlgen.h.
 *
 * The triggers' shape, and why they log the key only, is explained in
 * schema.c. Whatever changes their text must bump TRIGGER_TEMPLATE there, so
 * installed triggers are rebuilt.
 *
 * Quoting is SQLite's: "\"%w\"" doubles the double quotes of an identifier,
 * %Q makes a string literal (doubling single quotes), %q the inside of one.
 */
#include <assert.h>

#include <sqlite3.h>

#include "schema.h"
#include "scope.h"
#include "sqljson.h"
#include "sqlgen.h"

/* json_object() takes at most 127 arguments by default: 60 columns per call. */
#define JSON_CHUNK 60

/* The finished text of s (NULL when out of memory). */
static char *
finish(sqlite3_str *s)
{
    if (sqlite3_str_errcode(s) != SQLITE_OK) {
        sqlite3_free(sqlite3_str_finish(s));
        return NULL;
    }
    return sqlite3_str_finish(s);
}

static const char *
key_name(const struct table *t)
{
    assert(t->key < t->ncols); /* schema.c found the key among the columns */
    return t->cols[t->key].name;
}

/* The statements built around one identifier: the "%w" in each is its name. */
static const char *const named_sql[] = {
    /* The PRAGMA itself rather than SELECT ... FROM pragma_table_xinfo(?): a
     * third of the cost to prepare, and this runs at every CGI start. */
    [SQLGEN_TABLE_XINFO] = "PRAGMA table_xinfo(\"%w\")",
    [SQLGEN_INDEX_LIST] = "PRAGMA index_list(\"%w\")",
    [SQLGEN_INDEX_INFO] = "PRAGMA index_info(\"%w\")",
    [SQLGEN_SCOPE_OWNER] = "CAST(\"%w\" AS TEXT) = :user",
    [SQLGEN_DROP_TRIGGER] = "DROP TRIGGER IF EXISTS \"%w\";\n",
};

char *
sqlgen_named(enum sqlgen_named id, const char *name)
{
    assert((size_t)id < sizeof(named_sql) / sizeof(named_sql[0]));
    return sqlite3_mprintf(named_sql[id], name);
}

char *
sqlgen_count_rows(const struct table *t)
{
    return sqlite3_mprintf("SELECT count(*) FROM \"%w\"", t->en->table);
}

char *
sqlgen_row(const struct table *t)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    size_t i;

    sqlite3_str_appendall(s, "SELECT ");
    for (i = 0; i < t->ncols; i++)
        sqlite3_str_appendf(s, i > 0 ? ", \"%w\"" : "\"%w\"", t->cols[i].name);
    sqlite3_str_appendf(s, " FROM \"%w\" WHERE \"%w\" = ?1", t->en->table, key_name(t));
    return finish(s);
}

char *
sqlgen_delete(const struct table *t)
{
    return sqlite3_mprintf("DELETE FROM \"%w\" WHERE \"%w\" = ?1", t->en->table, key_name(t));
}

char *
sqlgen_last_key(const struct table *t)
{
    /* Text and blobs sort above every number, so the range keeps to numbers,
     * and the primary key's index answers it in one step. */
    return sqlite3_mprintf("SELECT \"%w\" FROM \"%w\" WHERE \"%w\" <= 9223372036854775807 "
                           "ORDER BY \"%w\" DESC LIMIT 1",
                           key_name(t), t->en->table, key_name(t), key_name(t));
}

char *
sqlgen_insert(const struct table *t, int with_key, struct json_object *fields)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    int i, n = 0;

    sqlite3_str_appendf(s, "INSERT INTO \"%w\"", t->en->table);
    if (!with_key && json_object_object_length(fields) == 0) {
        sqlite3_str_appendall(s, " DEFAULT VALUES");
        return finish(s);
    }
    sqlite3_str_appendall(s, " (");
    if (with_key) {
        sqlite3_str_appendf(s, "\"%w\"", key_name(t));
        n++;
    }
    json_object_object_foreach (fields, f, v) {
        (void)v;
        sqlite3_str_appendf(s, n++ > 0 ? ", \"%w\"" : "\"%w\"", f);
    }
    sqlite3_str_appendall(s, ") VALUES (");
    for (i = 1; i <= n; i++)
        sqlite3_str_appendf(s, i > 1 ? ", ?%d" : "?%d", i);
    sqlite3_str_appendall(s, ")");
    return finish(s);
}

char *
sqlgen_update(const struct table *t, struct json_object *fields)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    int i = 1;

    sqlite3_str_appendf(s, "UPDATE \"%w\" SET ", t->en->table);
    json_object_object_foreach (fields, f, v) {
        (void)v;
        sqlite3_str_appendf(s, i > 1 ? ", \"%w\" = ?%d" : "\"%w\" = ?%d", f, i);
        i++;
    }
    sqlite3_str_appendf(s, " WHERE \"%w\" = ?%d", key_name(t), i);
    return finish(s);
}

/*
 * Column i's value for JSON: blobs become hex text (JSON has no bytes), and
 * reals are written by us, not by json_object(), which in SQLite 3.40 gives
 * 15 significant digits (0.30000000000000004 becomes 0.3, DBL_MAX a number
 * past it) and a bare Inf, which is not JSON. The row's JSON is made in SQL
 * (the seal; a pull writes the columns with jsonw), and only built-in SQL will do:
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
json_value(sqlite3_str *s, const struct table *t, size_t i, const char *row)
{
    const char *c = t->cols[i].name;

    if (t->rowid_key && i == t->key) {
        sqlite3_str_appendf(s, "%s.\"%w\"", row, c);
        return;
    }
    sqlite3_str_appendf(s, "CASE typeof(%s.\"%w\") WHEN 'blob' THEN hex(%s.\"%w\") ", row, c, row,
                        c);
    if (sqljson_affinity(t->cols[i].type) != 'T')
        sqlite3_str_appendf(s,
                            "WHEN 'real' THEN json(replace(printf('%%!.*g',17+4*(abs(%s.\"%w\")>="
                            "1e99),%s.\"%w\"),'Inf','9e999')) ",
                            row, c, row, c);
    sqlite3_str_appendf(s, "ELSE %s.\"%w\" END", row, c);
}

/* The row `row` (NEW, OLD, or a table alias) as a JSON object expression. */
static void
json_row(sqlite3_str *s, const struct table *t, const char *row)
{
    size_t i, start;

    /* First chunk in json_object(), later chunks added with json_insert(). */
    for (start = JSON_CHUNK; start < t->ncols; start += JSON_CHUNK)
        sqlite3_str_appendall(s, "json_insert(");
    sqlite3_str_appendall(s, "json_object(");
    for (i = 0; i < t->ncols; i++) {
        if (i > 0 && i % JSON_CHUNK == 0)
            sqlite3_str_appendall(s, "), ");
        else if (i > 0)
            sqlite3_str_appendall(s, ", ");
        if (i < JSON_CHUNK)
            sqlite3_str_appendf(s, "%Q, ", t->cols[i].name);
        else
            sqlite3_str_appendf(s, "'$.\"%q\"', ", t->cols[i].name);
        json_value(s, t, i, row);
    }
    sqlite3_str_appendall(s, ")");
}

/* The row's owner for the log, as text: a token's "sub" is text, and an
 * INTEGER user_id 42 must match "42". NULL for shared entities. */
static void
owner_value(sqlite3_str *s, const struct table *t, const char *row)
{
    if (t->owner < 0)
        sqlite3_str_appendall(s, "NULL");
    else
        sqlite3_str_appendf(s, "CAST(%s.\"%w\" AS TEXT)", row, t->cols[t->owner].name);
}

/* "OLD.key IS NOT NEW.key" when changed is 1, "OLD.key IS NEW.key" when it is 0. */
static void
key_changed(sqlite3_str *s, const struct table *t, int changed)
{
    sqlite3_str_appendf(s, changed ? "OLD.\"%w\" IS NOT NEW.\"%w\"" : "OLD.\"%w\" IS NEW.\"%w\"",
                        key_name(t), key_name(t));
}

/*
 * One log append for `row`: bump head, insert the entry with the new head.
 * action is an SQL literal, or NULL for 'update' when the key stayed and
 * 'create' when it changed (the update trigger's NEW row); only_rekey 1 makes both
 * statements apply only when the key changed. The entry names the row by its
 * key and carries no data: the triggers name no column but the key and the
 * owner, so the app's ALTER TABLE (DROP COLUMN checks every trigger of the
 * table against the new columns) never meets them. schema_seal() copies the
 * row into the entry afterwards, and a pull reads rows from the table.
 */
static void
log_append(sqlite3_str *s, const struct table *t, const char *action, const char *row,
           int only_rekey)
{
    sqlite3_str_appendall(s, "UPDATE _rhtmx_sync_state SET value = value + 1 WHERE key = 'head'");
    if (only_rekey) {
        sqlite3_str_appendall(s, " AND ");
        key_changed(s, t, 1);
    }
    sqlite3_str_appendf(s,
                        ";\nINSERT INTO _rhtmx_sync_log (entity, entity_id, action, data, version, "
                        "client_id, owner) SELECT %Q, %s.\"%w\", ",
                        t->en->name, row, key_name(t));
    if (action != NULL) {
        sqlite3_str_appendall(s, action);
    } else {
        sqlite3_str_appendall(s, "CASE WHEN ");
        key_changed(s, t, 0);
        sqlite3_str_appendall(s, " THEN 'update' ELSE 'create' END");
    }
    sqlite3_str_appendall(s, ", NULL, (SELECT value FROM _rhtmx_sync_state WHERE key = 'head'), "
                             "(SELECT client_id FROM _rhtmx_sync_context WHERE id = 1), ");
    owner_value(s, t, row);
    if (only_rekey) {
        sqlite3_str_appendall(s, " WHERE ");
        key_changed(s, t, 1);
    }
    sqlite3_str_appendall(s, ";\n");
}

/* "CREATE TRIGGER name AFTER event ON table" */
static void
trigger_open(sqlite3_str *s, const struct table *t, const char *kind, const char *event)
{
    sqlite3_str_appendf(s, "CREATE TRIGGER \"_rhtmx_sync_%w_%w\" AFTER %s ON \"%w\"", t->en->name,
                        kind, event, t->en->table);
}

static void
triggers(sqlite3_str *s, const struct table *t)
{
    /* "rekey" was template t2's fourth trigger: an upgrade drops it. */
    static const char *const kinds[] = {"insert", "update", "rekey", "delete"};
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        sqlite3_str_appendf(s, "DROP TRIGGER IF EXISTS \"_rhtmx_sync_%w_%w\";\n", t->en->name,
                            kinds[i]);

    trigger_open(s, t, "insert", "INSERT");
    sqlite3_str_appendall(s, " BEGIN\n");
    log_append(s, t, "'create'", "NEW", 0);
    sqlite3_str_appendall(s, "END;\n");

    /* Every UPDATE logs, even one that changes nothing: comparing the columns
     * would name them all, and then the app could not drop one. */
    trigger_open(s, t, "update", "UPDATE");
    sqlite3_str_appendall(s, " BEGIN\n");
    /* A new key: the old one is gone for the clients, the row is new to them. */
    log_append(s, t, "'delete'", "OLD", 1);
    log_append(s, t, NULL, "NEW", 0);
    sqlite3_str_appendall(s, "END;\n");

    trigger_open(s, t, "delete", "DELETE");
    sqlite3_str_appendall(s, " BEGIN\n");
    log_append(s, t, "'delete'", "OLD", 0);
    sqlite3_str_appendall(s, "END;\n");
}

/* "(SELECT action FROM the log WHERE the newest entry of key r.key)" */
static void
newest_action(sqlite3_str *s, const struct table *t)
{
    /* +key: without affinity on either side the lookup can use the log's
     * index (with the key column's affinity it scanned every entry of the
     * entity for each row: minutes for 100,000 rows already in the log). */
    sqlite3_str_appendf(s,
                        "(SELECT l.action FROM _rhtmx_sync_log AS l WHERE l.entity = %Q AND "
                        "l.entity_id = +r.\"%w\" ORDER BY l.version DESC LIMIT 1)",
                        t->en->name, key_name(t));
}

/* Raise the head to the newest version the log holds. */
#define RAISE_HEAD                                                                                 \
    "UPDATE _rhtmx_sync_state SET value = max(value, (SELECT coalesce(max(version), 0)"            \
    " FROM _rhtmx_sync_log)) WHERE key = 'head';\n"

/*
 * Make the log agree with the table, versions after the head:
 *   every row whose newest entry is missing or a delete gets a 'create';
 *   with all_rows, every other row gets an 'update' (the triggers were
 *   missing for a while, as in a table rebuilt under its name, or its columns
 *   changed: any row may differ from what the clients hold);
 *   every key whose newest entry is live but which the table no longer has
 *   gets a 'delete'.
 * So a full sync after it equals the table. Entries carry no data until the
 * seal runs (sqlgen_install puts it next).
 */
static void
reconcile(sqlite3_str *s, const struct table *t, int all_rows)
{
    const char *key = key_name(t);

    sqlite3_str_appendf(s,
                        "INSERT INTO _rhtmx_sync_log (entity, entity_id, action, data, version, "
                        "owner) SELECT %Q, r.\"%w\", CASE coalesce(",
                        t->en->name, key);
    newest_action(s, t);
    sqlite3_str_appendf(s,
                        ", 'delete') WHEN 'delete' THEN 'create' ELSE 'update' END, NULL, "
                        "(SELECT value FROM _rhtmx_sync_state WHERE key = 'head') + "
                        "row_number() OVER (ORDER BY r.\"%w\"), ",
                        key);
    owner_value(s, t, "r");
    sqlite3_str_appendf(s, " FROM \"%w\" AS r", t->en->table);
    if (!all_rows) {
        sqlite3_str_appendall(s, " WHERE coalesce(");
        newest_action(s, t);
        sqlite3_str_appendall(s, ", 'delete') = 'delete'");
    }
    sqlite3_str_appendf(s, " ORDER BY r.\"%w\";\n", key);
    sqlite3_str_appendall(s, RAISE_HEAD);

    /* Keys the log holds live that the table lost without a trigger seeing it. */
    sqlite3_str_appendf(s,
                        "INSERT INTO _rhtmx_sync_log (entity, entity_id, action, data, version, "
                        "owner) SELECT l.entity, l.entity_id, 'delete', NULL, "
                        "(SELECT value FROM _rhtmx_sync_state WHERE key = 'head') + "
                        "row_number() OVER (ORDER BY l.version), l.owner FROM _rhtmx_sync_log AS l"
                        " WHERE l.entity = %Q AND l.action <> 'delete' AND NOT EXISTS (SELECT 1 "
                        "FROM _rhtmx_sync_log AS m WHERE m.entity = l.entity AND m.entity_id = "
                        "l.entity_id AND m.version > l.version) AND NOT EXISTS (SELECT 1 FROM "
                        "\"%w\" AS r WHERE r.\"%w\" = l.entity_id) ORDER BY l.version;\n",
                        t->en->name, t->en->table, key);
    sqlite3_str_appendall(s, RAISE_HEAD);
}

/* The table's columns as a JSON array in a string literal, for
 * _rhtmx_sync_tables.columns: '["id","title"]'. A name holds no double quote
 * or backslash (schema.c checks), so it is JSON as it is; %q doubles its
 * single quotes for the literal. */
static void
columns_literal(sqlite3_str *s, const struct table *t)
{
    size_t i;

    sqlite3_str_appendall(s, "'[");
    for (i = 0; i < t->ncols; i++)
        sqlite3_str_appendf(s, i ? ",\"%q\"" : "\"%q\"", t->cols[i].name);
    sqlite3_str_appendall(s, "]'");
}

/* Remember the columns the last install saw and no longer exist (a push
 * naming one is schema_changed, not unknown_column); forget a column that is
 * back. Runs before _rhtmx_sync_tables gets the new list. */
static void
gone(sqlite3_str *s, const struct table *t)
{
    sqlite3_str_appendf(s,
                        "INSERT OR IGNORE INTO _rhtmx_sync_gone (entity, name) SELECT %Q, j.value "
                        "FROM _rhtmx_sync_tables AS s, json_each(s.columns) AS j WHERE s.entity = "
                        "%Q AND s.columns IS NOT NULL AND j.value NOT IN (SELECT value FROM "
                        "json_each(",
                        t->en->name, t->en->name);
    columns_literal(s, t);
    sqlite3_str_appendf(s,
                        "));\nDELETE FROM _rhtmx_sync_gone WHERE entity = %Q AND name IN (SELECT "
                        "value FROM json_each(",
                        t->en->name);
    columns_literal(s, t);
    sqlite3_str_appendall(s, "));\n");
}

static void
seal(sqlite3_str *s, const struct table *t)
{
    sqlite3_str_appendall(s, "UPDATE _rhtmx_sync_log AS l SET data = CASE WHEN EXISTS (SELECT 1 "
                             "FROM _rhtmx_sync_log AS m WHERE m.entity = l.entity AND "
                             "m.entity_id = l.entity_id AND m.version > l.version) THEN 'null' "
                             "ELSE coalesce((SELECT ");
    json_row(s, t, "r");
    sqlite3_str_appendf(s,
                        " FROM \"%w\" AS r WHERE r.\"%w\" = l.entity_id), 'null') END WHERE "
                        "l.entity = %Q AND l.data IS NULL AND l.action <> 'delete'",
                        t->en->table, key_name(t), t->en->name);
}

char *
sqlgen_seal(const struct table *t)
{
    sqlite3_str *s = sqlite3_str_new(NULL);

    seal(s, t);
    return finish(s);
}

char *
sqlgen_install(const struct table *t, int all_rows)
{
    sqlite3_str *s = sqlite3_str_new(NULL);

    triggers(s, t);
    reconcile(s, t, all_rows);
    seal(s, t);
    sqlite3_str_appendall(s, ";\n");
    gone(s, t);
    sqlite3_str_appendf(s,
                        "INSERT OR REPLACE INTO _rhtmx_sync_tables (entity, tbl, signature, "
                        "columns) VALUES (%Q, %Q, %Q, ",
                        t->en->name, t->en->table, t->signature);
    columns_literal(s, t);
    sqlite3_str_appendall(s, ");\n");
    return finish(s);
}

char *
sqlgen_pull(const struct table *t)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    size_t i;

    /* STMT_PULL's query (db.c explains it), with each live row read from the
     * table: the newest entry of a live row is the row as it is now, in the
     * same snapshot, whatever columns it has gained or lost since the entry
     * was written. Column 2 is 1 for a live row, whose columns follow from
     * column 5 on, each named as in the table: changelog.c writes their
     * values with jsonw (exact reals on every platform; SQLite's printf
     * rounds them where long double is a double, as under valgrind). */
    sqlite3_str_appendall(s, "SELECT l.entity_id, CASE WHEN ?5 THEN 'create' ELSE l.action END,"
                             " l.action <> 'delete', l.version, l.client_id");
    for (i = 0; i < t->ncols; i++)
        sqlite3_str_appendf(s, ", r.\"%w\" AS \"%w\"", t->cols[i].name, t->cols[i].name);
    sqlite3_str_appendf(s,
                        " FROM _rhtmx_sync_log AS l"
                        " LEFT JOIN _rhtmx_sync_log AS m INDEXED BY idx_sync_row_version"
                        " ON m.entity = l.entity AND m.entity_id = l.entity_id AND m.version > "
                        "l.version LEFT JOIN \"%w\" AS r ON l.action <> 'delete' AND r.\"%w\" = "
                        "l.entity_id"
                        " WHERE l.entity = ?1 AND l.version > ?2"
                        " AND (NOT ?5 OR l.action <> 'delete')"
                        " AND (?4 IS NULL OR l.owner = ?4)"
                        " AND m.version IS NULL"
                        " ORDER BY l.version LIMIT ?3",
                        t->en->table, key_name(t));
    return finish(s);
}

/* ---- Sync rules (lib/scope.h) ---- */

char *
sqlgen_scope_check(const char *table, const char *expr)
{
    return sqlite3_mprintf("SELECT * FROM \"%w\" WHERE (\n%s\n)", table, expr);
}

char *
sqlgen_scope_source(const char *table, const char *expr)
{
    return sqlite3_mprintf("(SELECT * FROM \"%w\" WHERE (\n%s\n))", table, expr);
}

char *
sqlgen_scope_triggers(const struct table *t)
{
    static const char *const events[] = {"INSERT", "UPDATE", "DELETE"};
    sqlite3_str *s = sqlite3_str_new(NULL);
    size_t i, j;

    for (i = 0; i < t->scope->ndeps; i++) {
        for (j = 0; j < 3; j++) {
            /* One entry per entity at the newest version: a bulk change of the
             * table is one event, and a pull only asks "anything after?". */
            sqlite3_str_appendf(
                s,
                "CREATE TRIGGER \"_rhtmx_sync_%w_dep_%w_%c\" AFTER %s ON \"%w\" "
                "BEGIN\nUPDATE _rhtmx_sync_state SET value = value + 1 WHERE key = "
                "'head';\nDELETE FROM _rhtmx_sync_log WHERE entity = '%s' AND "
                "entity_id = %Q;\nINSERT INTO _rhtmx_sync_log (entity, entity_id, "
                "action, data, version) VALUES ('%s', %Q, 'update', 'null', "
                "(SELECT value FROM _rhtmx_sync_state WHERE key = 'head'));\nEND;\n",
                t->en->name, t->scope->deps[i], "iud"[j], events[j], t -> scope -> deps[i],
                SCOPE_LOG_ENTITY, t -> en -> name, SCOPE_LOG_ENTITY, t -> en -> name);
        }
    }
    return finish(s);
}

char *
sqlgen_rowid_bounds(const struct table *t)
{
    return sqlite3_mprintf("SELECT min(rowid), max(rowid) FROM \"%w\"", t->en->table);
}

char *
sqlgen_scope_bootstrap(const struct table *t, int dense, long long lo)
{
    if (dense) /* unaliased, so that the expression may name the table */
        return sqlite3_mprintf(
            "INSERT INTO _rhtmx_sync_view (vid, entity_id, visible, action, "
            "version, client_id) SELECT :_rhtmx_vid, \"%w\".\"%w\", 1, 'create', "
            ":_rhtmx_head + 1 + rowid - %lld, NULL FROM \"%w\" WHERE (\n%s\n)",
            t->en->table, key_name(t), lo, t->en->table, t->scope->expr);
    return sqlite3_mprintf(
        "INSERT INTO _rhtmx_sync_view (vid, entity_id, visible, action, version, "
        "client_id) SELECT :_rhtmx_vid, r.\"%w\", 1, 'create', :_rhtmx_head + "
        "row_number() OVER (), NULL FROM %s AS r WHERE 1",
        key_name(t), t->scope->source);
}

char *
sqlgen_scope_diff(const struct table *t, int all)
{
    sqlite3_str *s = sqlite3_str_new(NULL);

    sqlite3_str_appendf(
        s,
        "INSERT INTO _rhtmx_sync_view (vid, entity_id, visible, action, version, client_id) "
        "SELECT :_rhtmx_vid, c._rhtmx_k, c._rhtmx_v, CASE WHEN NOT c._rhtmx_v THEN 'delete' "
        "WHEN c._rhtmx_was THEN 'update' ELSE 'create' END, :_rhtmx_head + row_number() OVER "
        "(ORDER BY c._rhtmx_k), (SELECT l.client_id FROM _rhtmx_sync_log AS l WHERE l.entity = "
        ":_rhtmx_e AND l.entity_id = c._rhtmx_k ORDER BY l.version DESC LIMIT 1) FROM (SELECT "
        "k._rhtmx_k, EXISTS (SELECT 1 FROM %s AS r WHERE r.\"%w\" = k._rhtmx_k) AS _rhtmx_v, "
        "coalesce((SELECT w.visible FROM _rhtmx_sync_view AS w WHERE w.vid = :_rhtmx_vid AND "
        "w.entity_id = k._rhtmx_k), 0) AS _rhtmx_was, EXISTS (SELECT 1 FROM _rhtmx_sync_log AS l "
        "WHERE l.entity = :_rhtmx_e AND l.entity_id = k._rhtmx_k AND l.version > "
        ":_rhtmx_checked) AS _rhtmx_changed FROM (SELECT DISTINCT entity_id AS _rhtmx_k FROM "
        "_rhtmx_sync_log WHERE entity = :_rhtmx_e AND version > :_rhtmx_checked",
        t->scope->source, key_name(t));
    if (all)
        sqlite3_str_appendf(s,
                            " UNION SELECT r.\"%w\" FROM %s AS r UNION SELECT entity_id FROM "
                            "_rhtmx_sync_view WHERE vid = :_rhtmx_vid AND visible",
                            key_name(t), t->scope->source);
    sqlite3_str_appendall(s, ") AS k) AS c WHERE c._rhtmx_v <> c._rhtmx_was OR (c._rhtmx_v AND "
                             "c._rhtmx_changed) ON CONFLICT (vid, entity_id) DO UPDATE SET "
                             "visible = excluded.visible, action = excluded.action, version = "
                             "excluded.version, client_id = excluded.client_id");
    return finish(s);
}

char *
sqlgen_scope_pull(const struct table *t)
{
    sqlite3_str *s = sqlite3_str_new(NULL);

    /* ?5 first: a named parameter takes the number after the largest one
     * seen before it, and the scope's come in the FROM clause. A row the view
     * holds visible but out of scope now is left out (the next
     * reconciliation sends its delete): never sent with its data. */
    sqlite3_str_appendall(s, "SELECT v.entity_id, CASE WHEN ?5 THEN 'create' ELSE v.action END,"
                             " CASE WHEN v.visible THEN ");
    json_row(s, t, "r");
    sqlite3_str_appendf(s,
                        " END, v.version, v.client_id FROM _rhtmx_sync_view AS v LEFT JOIN %s "
                        "AS r ON v.visible AND r.\"%w\" = v.entity_id WHERE v.vid = (SELECT id "
                        "FROM _rhtmx_sync_viewers WHERE entity = ?1 AND viewer = :user) AND "
                        "v.version > ?2 AND (NOT ?5 OR v.visible) AND (NOT v.visible OR "
                        "r.\"%w\" IS NOT NULL) ORDER BY v.version LIMIT ?3",
                        t->scope->source, key_name(t), key_name(t));
    return finish(s);
}

char *
sqlgen_scope_row(const struct table *t)
{
    return sqlite3_mprintf("SELECT EXISTS (SELECT 1 FROM %s AS r WHERE r.\"%w\" = :_rhtmx_k)",
                           t->scope->source, key_name(t));
}

char *
sqlgen_scope_probe(const struct entity *en, const char *expr)
{
    return sqlite3_mprintf("SELECT EXISTS (SELECT 1 FROM (SELECT * FROM \"%w\" WHERE (\n%s\n)) "
                           "AS r WHERE r.\"%w\" = :_rhtmx_k) OR EXISTS (SELECT 1 FROM "
                           "_rhtmx_sync_view WHERE vid = (SELECT id FROM _rhtmx_sync_viewers "
                           "WHERE entity = %Q AND viewer = :user) AND entity_id = :_rhtmx_k AND "
                           "visible)",
                           en->table != NULL ? en->table : en->name, expr,
                           en->key != NULL ? en->key : "id", en->name);
}
