/*
 * pg_scope: sync rules (an entity's "scope", or its owner_column) on
 * PostgreSQL (cmake -DRHTMX_POSTGRES=ON), with the wire behaviour of scope.h.
 *
 * The expression is the same text as with SQLite: one SQL boolean over the
 * entity table's columns, :user (the token's sub) and :claim.NAME (a string
 * claim of the token; NULL when absent). owner_column "c" is the scope
 * "c"::text = :user. Checking it when the configuration loads
 * (pg_scope_load): the text may hold no comment, no $ and no backslash
 * (dollar quotes, positional parameters and escape strings) and its
 * parentheses must balance; it is then compiled by PostgreSQL as a temporary
 * view, SELECT * FROM "table" WHERE (expr), in a transaction that is rolled
 * back, sent with the extended protocol (one statement, never two). The view's
 * stored query tree (pg_rewrite.ev_action) names every relation, function and
 * operator the expression uses, subqueries included: each relation must be an ordinary or
 * partitioned table of the app (not ours, not the catalog's, not a view or
 * sequence); each function, and each operator's function, must not be
 * VOLATILE (side effects, nextval, pg_sleep...), and a STABLE one must be
 * PostgreSQL's own (one of the app's could read tables nobody watches). The
 * tables read besides the entity's are its dependencies.
 *
 * The bookkeeping is scope.h's: _rhtmx_sync_viewers (one per entity and
 * user) and _rhtmx_sync_view (one entry per row that user's devices may hold:
 * visible or not, the action to tell, a version from the counter row). Each
 * dependency table has a statement trigger, _rhtmx_sync_<entity>_dep, that
 * keeps one '_rhtmx_scope' log entry for the entity at the newest version.
 * A pull reconciles the view first (pg_scope_reconcile) and then reads it.
 *
 * Conventions: err.h (0, or -1 with e set); identifiers come from the checked
 * table or from pg_depend, and are quoted; values are bound.
 */
#ifndef RHTMX_PG_SCOPE_H
#define RHTMX_PG_SCOPE_H

#include "buf.h"
#include "config.h"
#include "err.h"
#include "pg.h"
#include "schema.h"
#include "scope.h"

/*
 * Check t's scope (t->en->scope or owner_column) against p: *out is a new
 * scope (scope_free; its expr is the configured text, deps the tables it
 * reads as quoted "schema"."table"), or NULL when the entity has none. -1 with
 * e set to 500 "config" naming the config file, the entity and the problem.
 * Runs outside any transaction of the caller's.
 */
int pg_scope_load(struct pg *p, const struct config *c, const struct table *t, struct scope **out,
                  struct err *e);

/* Append the statements that drop t's dependency triggers and make them again
 * (none when its scope reads no other table) to b: for pg_schema_install. */
void pg_scope_install_sql(struct buf *b, const struct table *t);

/* 1 if every dependency trigger of t is there and enabled, 0 if not. */
int pg_scope_installed(struct pg *p, const struct table *t);

/*
 * Bring w's view of t up to date before a pull (scope.h's scope_reconcile),
 * in a transaction of its own that writes only when something changed.
 * *born: the version the view was (re)built at.
 */
int pg_scope_reconcile(struct pg *p, const struct table *t, const struct scope_who *w,
                       long long *born, struct err *e);

/* What a pull's page reads from w's view, for pg_pull.c's page query: the
 * FROM and WHERE clauses over the view's entries (alias v) and the rows in
 * scope (alias r), with parameters $1 entity, $2 since, $4 user, $5 first
 * page, $6 claims (jsonb). */
void pg_scope_pull_from(struct buf *b, const struct table *t);

/* 1 if the row with key text k (as the log writes it) is in w's scope now, 0
 * if not, -1 with e set. Runs in the caller's transaction. */
int pg_scope_row_visible(struct pg *p, const struct table *t, const char *k,
                         const struct scope_who *w, struct err *e);

/* An event stream's rule for en and user (scope.h's scope_rule, with a probe
 * for PostgreSQL: $1 the row's key text, $2 user, $3 claims). claims: the
 * token's payload JSON text, or NULL. New string, or NULL. */
char *pg_scope_rule(const struct entity *en, const char *user, const char *claims);

/* Run a rule's probe for key text k on p: 1, 0, or -1. */
int pg_scope_probe(struct pg *p, const char *rule, const char *k);

/* Compaction (inside the caller's transaction): scope.h's scope_compact. */
int pg_scope_compact(struct pg *p, long long horizon, int days, struct err *e);

#endif
