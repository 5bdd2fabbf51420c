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

struct table;

/* PRAGMA table_xinfo / index_list / index_info of the table or index name. */
char *sqlgen_table_xinfo(const char *table);
char *sqlgen_index_list(const char *table);
char *sqlgen_index_info(const char *index);

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

#endif
