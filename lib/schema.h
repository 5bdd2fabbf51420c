/*
 * schema: what the configured tables look like, and the triggers that capture
 * every write to them.
 *
 * schema_load reads PRAGMA table_xinfo for each configured entity and checks the
 * configuration against it (table, key column, owner column). schema_install
 * then makes sure each table carries our AFTER INSERT/UPDATE/DELETE triggers,
 * which append the row's key and the action to _rhtmx_sync_log. They name no
 * column but the key and the owner column, so the app's own ALTER TABLE (DROP
 * and RENAME COLUMN, a 12-step rebuild) runs with them in place. Installing is
 * idempotent: a table whose triggers are there and were made for its current
 * columns is left alone; otherwise (columns changed, triggers dropped with a
 * rebuilt table, an older template) the triggers are made again and the log
 * reconciled with the table (every row logged again, a delete for each key the
 * table lost); a table seen for the first time gets one 'create' per row the
 * log does not hold, so rows that predate the triggers sync like any other.
 * A pull reads each row from the table; schema_seal copies rows into the log
 * for conflict merge bases.
 */
#ifndef RHTMX_SCHEMA_H
#define RHTMX_SCHEMA_H

#include <stddef.h>

#include "config.h"
#include "db.h"

struct buf;

struct column {
    char *name;
    char *type; /* declared type, as written ("" when none) */
    int notnull;
    int has_default;
    int pk;        /* position in the primary key, 0 if not part of it */
    int generated; /* a generated column (VIRTUAL or STORED): read, never written */
};

struct table {
    const struct entity *en; /* borrowed from the config */
    struct column *cols;
    size_t ncols;
    size_t key;           /* index of the key column in cols */
    long owner;           /* index of the owner column, or -1 */
    int rowid_key;        /* the key is the rowid (an INTEGER PRIMARY KEY of a rowid table) */
    int assign_key;       /* a create may leave the key out: the server assigns it (the rowid,
                             or, for an INTEGER PRIMARY KEY that is not the rowid, as in a
                             WITHOUT ROWID table, the largest integer key plus one) */
    char *signature;      /* what the triggers are generated from */
    char fingerprint[17]; /* the columns' shape, as clients see it (pull answers' "schema") */
    struct scope *scope;  /* owned: who may see which rows (lib/scope.h), or NULL: everyone */
};

struct schema {
    struct table *tables; /* parallel to config->entities */
    size_t ntables;
    long long cookie; /* PRAGMA schema_version when loaded */
};

/* Read and check every configured table. Returns a new schema (schema_free) or
 * NULL with e set to 500 "config" naming the config file and the problem.
 * Among the checks: the key column must identify one row (a single-column
 * PRIMARY KEY, or a UNIQUE index or constraint on that column alone, not
 * partial), and neither the key nor the owner column may be generated.
 * Generated columns are part of cols (their values sync; a push cannot write
 * them). NOT NULL is not required of the key: the change log refuses a NULL
 * key, so a write that would store one fails. */
struct schema *schema_load(struct db *d, const struct config *c, struct err *e);
void schema_free(struct schema *s); /* NULL is harmless */

/* The table of entity name, or NULL. Borrowed. */
const struct table *schema_table(const struct schema *s, const char *name);

/* 1 if the database changed shape since s was loaded (PRAGMA schema_version). */
int schema_stale(struct db *d, const struct schema *s);

/* Install or rebuild triggers where needed, in one write transaction.
 * *changed (may be NULL) is set to the number of tables whose triggers were
 * (re)installed. */
int schema_install(struct db *d, struct schema *s, int *changed, struct err *e);

/* 1 if t's triggers are installed and match its columns, 0 if not. */
int schema_installed(struct db *d, const struct table *t);

/* 1 if every table of s has its triggers installed (schema_install has
 * nothing to do), 0 if not. Only reads. */
int schema_current(struct db *d, const struct schema *s);

/*
 * The triggers log a row's key only (so they never block the app's ALTER
 * TABLE). Sealing copies each live row into its newest unsealed entry (older
 * unsealed entries get 'null': the row as it was then is gone), so a push has
 * the row as a client last saw it to merge against. The caller holds a write
 * transaction. schema_unsealed: 1 if t has entries to seal (an index probe).
 * schema_seal_sql appends the statement (no ';') to b.
 */
int schema_seal(struct db *d, const struct table *t, struct err *e);
void schema_seal_sql(struct buf *b, const struct table *t);
int schema_unsealed(struct db *d, const struct table *t);

/* The pull's query for t (STMT_PULL's parameters), each row read from the
 * table as it is in the pull's snapshot, one result column per table column
 * (sqlgen_pull). Appended to b. */
void schema_pull_sql(struct buf *b, const struct table *t);

/* 1 if name was a column of t when its triggers were last installed and is
 * no longer one (dropped or renamed by the app). */
int schema_column_gone(struct db *d, const struct table *t, const char *name);

/* Set t->fingerprint from t's key and columns (names and declared types), as
 * clients see it. [pg] Also used for PostgreSQL tables (pg_schema.c). */
void schema_fingerprint(struct table *t);

/* 0, or -1 with e set (500 "config") when t's key column or owner column is
 * generated: a push could not create a row or set its owner. t->key and
 * t->owner must be set. Both backends' loaders call it, for the same words. */
int schema_check_generated(const struct config *c, const struct table *t, struct err *e);

/* Index of column name in t, or -1. */
long table_column(const struct table *t, const char *name);

#endif
