/*
 * scope: which rows of an entity one user may see (the entity's "scope" in the
 * config, or its owner_column), and the bookkeeping that makes rows leave a
 * device when they leave the user's view.
 *
 * A scope is one SQL boolean expression over the entity table's columns, with
 * :user (the token's sub) and :claim.NAME (a string claim of the token; NULL
 * when the token has none). scope_load compiles it against the table with an
 * authorizer that allows reading and nothing else (no writes, no ATTACH, no
 * PRAGMA, no function that SQLite marks direct-only or that is neither
 * deterministic nor innocuous), refuses a second statement, and records every
 * other table the expression reads (its dependencies). owner_column "c" is the
 * scope CAST("c" AS TEXT) = :user.
 *
 * Per user, _rhtmx_sync_view holds one entry per row that user's devices may
 * hold or have held: visible or not, the action to tell ('create', 'update',
 * 'delete') and a version from the global counter. A pull first reconciles
 * that view with the table (scope_reconcile): the rows with log entries after
 * the user's last reconciliation, and, when a dependency table changed since
 * (its triggers keep one '_rhtmx_scope' log entry per entity at the newest
 * version), every row in scope and every row held visible. Each entry that
 * changes takes a new version above the head, so every device of the user,
 * whatever its cursor, gets it on its next pull. A pull then reads the view
 * (scope_pull_sql), never the log.
 *
 * Conventions: err.h (0, or -1 with e set); SQL identifiers come from the
 * checked table and are quoted; values are bound.
 */
#ifndef RHTMX_SCOPE_H
#define RHTMX_SCOPE_H

#include <stddef.h>

#include <sqlite3.h>

#include "buf.h"
#include "config.h"
#include "db.h"
#include "err.h"

struct table;
struct json_object;

/* The pseudo-entity of the log entries that say "a table this entity's scope
 * reads changed" (entity_id: the entity's name, action 'scope'). */
#define SCOPE_LOG_ENTITY "_rhtmx_scope"

struct scope {
    char *expr;   /* the expression as bound: :user, :_rhtmx_claim_NAME */
    char *source; /* (SELECT * FROM "table" WHERE (expr)): the rows in scope */
    char **deps;  /* the other tables it reads */
    size_t ndeps;
    char **claims; /* claim names it uses */
    size_t nclaims;
};

/* Who is asking: the token's sub and its parsed payload (borrowed; NULL: no
 * claims). */
struct scope_who {
    const char *user;
    struct json_object *claims;
};

/*
 * Compile t's scope (from t->en->scope or owner_column) against d: *out is a
 * new scope (scope_free), or NULL when the entity has none. -1 with e set to
 * 500 "config" naming the config file, the entity and the problem.
 */
int scope_load(struct db *d, const struct config *c, const struct table *t, struct scope **out,
               struct err *e);
void scope_free(struct scope *s); /* NULL is harmless */

/* Append t's scope (if any) to t->signature, the trigger signature (so a
 * changed scope reinstalls). -1 when out of memory (the signature is kept). */
int scope_sign(struct table *t);

/* The claims s uses, as w has them: a JSON object text of strings and nulls
 * (new string, caller frees; NULL when out of memory). */
char *scope_claims(const struct scope *s, const struct scope_who *w);

/* Bind :user and the :_rhtmx_claim_ parameters of st for w. */
void scope_bind(sqlite3_stmt *st, const struct scope_who *w);

/*
 * Create the dependency triggers of t (inside the caller's write
 * transaction), dropping any earlier ones of its entity.
 */
int scope_install(struct db *d, const struct table *t, struct err *e);

/* 1 if every dependency trigger of t is there (three per table its scope
 * reads), 0 if not (or on trouble). Only reads. */
int scope_installed(struct db *d, const struct table *t);

/*
 * Bring w's view of t up to date before a pull (see above). Called with the
 * pull's read transaction open; when there is something to write, it ends
 * that transaction, writes in one of its own and opens a new read
 * transaction. *born: the version w's view was (re)built at; a cursor
 * below it (other than a full sync's) cannot be resumed. A read-only
 * database is left as it is.
 */
int scope_reconcile(struct db *d, const struct table *t, const struct scope_who *w, long long *born,
                    struct err *e);

/* The pull's query over w's view (STMT_PULL's parameters ?1..?5 plus the
 * scope's, bound with scope_bind). Appended to b. */
void scope_pull_sql(struct buf *b, const struct table *t);

/* 1 if the row with key k is in w's scope now, 0 if not, -1 with e set. */
int scope_row_visible(struct db *d, const struct table *t, sqlite3_value *k,
                      const struct scope_who *w, struct err *e);

/*
 * An event stream's rule for en and user (hub.h's filter): one string,
 *   SCOPE_RULE_MARK user SCOPE_RULE_SEP claims-json SCOPE_RULE_SEP probe-sql
 * where the probe (one row, 1 or 0) says whether the row with key :_rhtmx_k
 * is in the user's scope now or in their view as visible (so it was on their
 * devices before the change). Made from the config alone: the expression was
 * checked when the schema loaded. Returns a new string, or NULL when en has no
 * scope (or no memory). claims: the token's payload JSON text, or NULL.
 */
#define SCOPE_RULE_MARK '\x1e'
#define SCOPE_RULE_SEP '\x1f'
char *scope_rule(const struct entity *en, const char *user, const char *claims);

/* Run a rule's probe for key k on d (a connection of the caller's), with st
 * cached by the caller: *st is prepared from the rule when NULL. 1, 0, or -1. */
int scope_rule_probe(struct db *d, const char *rule, sqlite3_stmt **st, sqlite3_value *k);

/* Compaction (inside the caller's write transaction): drop view entries of
 * rows that left a view at or below horizon, and the views of users who
 * have not pulled for days. */
int scope_compact(struct db *d, long long horizon, int days, struct err *e);

#endif
