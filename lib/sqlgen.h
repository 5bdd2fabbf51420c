/*
 * sqlgen: the SQL text generated from the configuration and the tables.
 *
 * Every statement whose text depends on a configured entity (its triggers,
 * the log reconciliation and seal, the pull's query, a push's row
 * statements, the PRAGMAs that read a table's shape) is written here and
 * nowhere else. Identifiers come only from the configuration and PRAGMA
 * table_xinfo (schema.c checks them first) and are quoted by SQLite's own
 * printf: "%w" inside double quotes for identifiers, %Q for literals; values
 * are always bound parameters. The fixed statements are in db.c's table;
 * both kinds are prepared only by db.c (db_stmt, db_prepare, db_exec).
 *
 * Each function returns the text as a new string from sqlite3_malloc (the
 * caller sqlite3_free()s it), or NULL when out of memory.
 */
#ifndef RHTMX_SQLGEN_H
#define RHTMX_SQLGEN_H

#include <json-c/json.h>

struct entity;
struct table;

/* The statements around one name (a table, an index, a column, a trigger),
 * from one table in sqlgen.c:
 *   TABLE_XINFO   PRAGMA table_xinfo of the table
 *   INDEX_LIST    PRAGMA index_list of the table
 *   INDEX_INFO    PRAGMA index_info of the index
 *   SCOPE_OWNER   owner_column's scope expression: CAST("column" AS TEXT) = :user
 *   DROP_TRIGGER  DROP TRIGGER IF EXISTS "trigger";\n (scope.c's old triggers) */
enum sqlgen_named {
    SQLGEN_TABLE_XINFO,
    SQLGEN_INDEX_LIST,
    SQLGEN_INDEX_INFO,
    SQLGEN_SCOPE_OWNER,
    SQLGEN_DROP_TRIGGER,
};
char *sqlgen_named(enum sqlgen_named id, const char *name);

/* SELECT count(*) of t's table (rhtmx-sync status). */
char *sqlgen_count_rows(const struct table *t);

/* A push's statements on t's table. row: every column of the row with key
 * ?1; delete: the row with key ?1; last_key: the largest numeric key. */
char *sqlgen_row(const struct table *t);
char *sqlgen_delete(const struct table *t);
char *sqlgen_last_key(const struct table *t);
/* INSERT of the key (when with_key, as ?1) and each member of fields (the
 * following parameters, in the object's order); DEFAULT VALUES when both
 * are absent. */
char *sqlgen_insert(const struct table *t, int with_key, struct json_object *fields);
/* UPDATE of each member of fields (?1.., in order) of the row whose key is
 * the parameter after them. */
char *sqlgen_update(const struct table *t, struct json_object *fields);

/* What schema_install runs for t, as one script: the triggers, the log made
 * to agree with the table (every row again when all_rows), the seal, the
 * columns gone since the last install, and t's row in _rhtmx_sync_tables. */
char *sqlgen_install(const struct table *t, int all_rows);

/* schema_seal's statement for t (no ';'). */
char *sqlgen_seal(const struct table *t);

/* The pull's query for t (STMT_PULL's parameters), rows read from the table:
 * column 2 is 1 for a live row, whose columns follow from column 5 on, named
 * as in the table (changelog_pull writes them as the change's data). */
char *sqlgen_pull(const struct table *t);

/*
 * Sync rules (lib/scope.h). expr is a scope expression as scope.c made it (its
 * parameters :user and :_rhtmx_claim_NAME, its structure checked), placed
 * between parentheses on lines of its own; table and column names are quoted.
 *   scope_check    SELECT * FROM "table" WHERE (expr): what the authorizer sees
 *   scope_source   the same, parenthesised: the rows in scope, as a FROM item
 *   scope_triggers t's triggers on the tables its scope reads (t->scope->deps)
 *   rowid_bounds   the smallest and largest rowid of t's table
 *   scope_bootstrap  a new view of every row in scope (scope.c: numbered from the
 *                  rowid when dense, else by row_number())
 *   scope_diff     the rows whose visibility or content changed since a version
 *                  (all: also every row in scope and every row held visible)
 *   scope_pull     the pull's query over a view (STMT_PULL's parameters too)
 *   scope_row      one row, 1 when the row with key :_rhtmx_k is in scope
 *   scope_probe    an event stream's probe for entity en (from the config alone)
 */
char *sqlgen_scope_check(const char *table, const char *expr);
char *sqlgen_scope_source(const char *table, const char *expr);
char *sqlgen_scope_triggers(const struct table *t);
char *sqlgen_rowid_bounds(const struct table *t);
char *sqlgen_scope_bootstrap(const struct table *t, int dense, long long lo);
char *sqlgen_scope_diff(const struct table *t, int all);
char *sqlgen_scope_pull(const struct table *t);
char *sqlgen_scope_row(const struct table *t);
char *sqlgen_scope_probe(const struct entity *en, const char *expr);

#endif
