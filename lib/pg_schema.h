/*
 * pg_schema: the library's tables in PostgreSQL, the configured tables as
 * PostgreSQL describes them, and the PL/pgSQL triggers that capture every
 * write to them (cmake -DRHTMX_POSTGRES=ON).
 *
 * The counterpart of db.c's migrations and schema.c for the second backend.
 * The change log has the same columns as SQLite's (_rhtmx_sync_log: entity,
 * entity_id as text, action, data, version, client_id, owner, created_at),
 * and the same rule for versions: one counter row, _rhtmx_sync_state('head'),
 * which every logging trigger increments inside the writer's transaction.
 *
 * Why a counter row, and what it costs: docs/ARCHITECTURE.md "PostgreSQL:
 * versions in commit order". In short, the UPDATE of that one row holds its row lock until the
 * writer's transaction ends, so a second writer of any synced table waits
 * for the first to commit or roll back before it gets its version: versions
 * are handed out in commit order, and a reader's snapshot that holds version
 * V holds every version below it. A sequence would hand them out in start
 * order, and a pull could pass a version whose transaction is still open.
 *
 * The trigger, one PL/pgSQL function for all tables (its arguments name the
 * entity, key column and owner column), logs the key as text (to_jsonb's
 * form), the action, and the row as jsonb (the merge base a push compares
 * against), and signals NOTIFY rhtmx_sync with the entity name, which
 * PostgreSQL delivers at commit. A pushing sync-push sets the transaction's
 * rhtmx_sync.client_id; everyone else's entries carry NULL.
 */
#ifndef RHTMX_PG_SCHEMA_H
#define RHTMX_PG_SCHEMA_H

#include <stdio.h>

#include "config.h"
#include "pg.h"
#include "schema.h"

/* Our schema's version in PostgreSQL (_rhtmx_sync_state 'schema'). */
#define PG_SCHEMA_VERSION 1
/* The NOTIFY channel the triggers signal; the payload is the entity name. */
#define PG_CHANNEL "rhtmx_sync"

/* 1 if our tables and functions are there and current; 0 if not. */
int pg_schema_ok(struct pg *p);

/* Create or upgrade our tables and functions, in one transaction under an
 * advisory lock (programs meeting a new database at once take turns). */
int pg_migrate(struct pg *p, struct err *e);

/* Read and check every configured table, as schema_load() does for SQLite:
 * the table exists (on the search path), has the key column, which is the
 * only column of its primary key or of a unique index that is not partial,
 * and the owner column; neither is generated. Returns a new schema
 * (schema_free), or NULL with e set to 500 "config". */
struct schema *pg_schema_load(struct pg *p, const struct config *c, struct err *e);

/* What the configured tables look like now, as a number that changes with any
 * column added, dropped, renamed or retyped and with their triggers dropped or
 * disabled (schema->cookie holds it as loaded; pg_load compares). One query.
 * -1 when it cannot be read. */
long long pg_schema_cookie(struct pg *p, const struct config *c);

/* The same for every table the triggers were installed on (_rhtmx_sync_tables),
 * whatever the configuration: for sync-events' feeder, which reads no config.
 * Its value differs from pg_schema_cookie's; it changes when the tables do. */
long long pg_schema_cookie_synced(struct pg *p);

/* 1 if name was a column of t when the programs last loaded it and is no
 * longer one (dropped or renamed by the app), as schema_column_gone(). */
int pg_schema_column_gone(struct pg *p, const struct table *t, const char *name);

/* 1 if t's trigger is installed for its current signature. */
int pg_schema_installed(struct pg *p, const struct table *t);

/* Install the trigger of every table that lacks it, in one transaction. A
 * table seen for the first time gets a 'create' for each row the log does not
 * hold live (rows that predate the trigger come at since=0); one whose
 * trigger was missing or made for another configuration gets every row logged
 * again and a 'delete' for each key the table lost. *changed (may be NULL):
 * how many tables were installed. */
int pg_schema_install(struct pg *p, struct schema *s, int *changed, struct err *e);

/*
 * All of the above for a program's start: connect as name, migrate if needed,
 * load the schema, install what is missing. Returns a new pg with *schema set
 * (both the caller's), or NULL with e set. *installed: tables installed.
 */
struct pg *pg_load(const struct config *c, const char *name, struct schema **schema, int *installed,
                   struct err *e);

/* The head version and the compaction horizon, read in the caller's
 * transaction (or on their own). 0 or -1 with e set. */
int pg_cursors(struct pg *p, long long *head, long long *horizon, struct err *e);

/* rhtmx-sync's report (init, status) for PostgreSQL, to out. 0 if every table
 * is installed. */
int pg_schema_report(struct pg *p, const struct config *c, const struct schema *s, FILE *out);

#endif
