/*
 * pg: the PostgreSQL connection a program holds when the config's "database"
 * names PostgreSQL (pgconf.h), and the one way statements are run on it.
 *
 * Built with cmake -DRHTMX_POSTGRES=ON only. Every statement goes through
 * pg_query() (parameters bound, never spliced in; results as text) or, for
 * fixed multi-statement scripts without parameters, pg_exec(). A failure
 * becomes the library's error convention (err.h): 503 "busy" for what a retry
 * may cure (a lock not granted within DB_BUSY_TIMEOUT_MS, a serialization
 * failure or deadlock, the server unreachable or shutting down), 500
 * "database" otherwise, with PostgreSQL's words in the message (which only
 * reaches the log). A connection that broke is noticed by pg_alive() and
 * opened again by the caller (app.c).
 */
#ifndef RHTMX_PG_H
#define RHTMX_PG_H

#include <libpq-fe.h>

#include "err.h"
#include "pgconf.h"

#define PG_PREPARED_MAX 128 /* statements kept prepared per connection */

struct pg {
    PGconn *c;
    char *shown; /* owned: the URL without its password, for messages */
    /* Statements prepared on this connection, by the hash of their text (pg_query). */
    unsigned long long prepared[PG_PREPARED_MAX];
    size_t nprepared;
};

/* Connect as program name (static string; libpq's application_name) with cf.
 * Returns a new pg (pg_free), or NULL with e set (503 busy when the server
 * cannot be reached, 500 config when the password file cannot be read). */
struct pg *pg_open(const struct pgconf *cf, const char *name, struct err *e);
void pg_free(struct pg *p); /* NULL is harmless */

/* 1 if the connection is still up. */
int pg_alive(const struct pg *p);

/* Run sql with n text parameters (NULL entries are SQL NULL). Returns the
 * result (caller PQclear()s it) of a command or query that succeeded, or NULL
 * with e set ("what: PostgreSQL's message"). A statement with parameters is
 * prepared on the connection the first time (planned once, not per request),
 * up to PG_PREPARED_MAX of them; pg_query_cached does the same for one
 * without. */
PGresult *pg_query(struct pg *p, const char *sql, int n, const char *const *params,
                   const char *what, struct err *e);
PGresult *pg_query_cached(struct pg *p, const char *sql, const char *what, struct err *e);
/* pg_query() that hands back the result whatever its status (the caller reads
 * PQresultStatus and the SQLSTATE: a write a client sent may be refused), NULL
 * only when out of memory. Prepared, as pg_query(). */
PGresult *pg_query_raw(struct pg *p, const char *sql, int n, const char *const *params);

/* pg_query() for statements whose result is not needed: 0 or -1 with e set.
 * With n == 0, sql may hold several statements (the simple query protocol). */
int pg_exec(struct pg *p, const char *sql, int n, const char *const *params, const char *what,
            struct err *e);

/* BEGIN (read: REPEATABLE READ READ ONLY, one snapshot for a whole answer;
 * write: READ COMMITTED, where the change log's counter row orders writers:
 * pg_schema.c), COMMIT, ROLLBACK (harmless outside a transaction). */
int pg_begin_read(struct pg *p, struct err *e);
int pg_begin_write(struct pg *p, struct err *e);
int pg_commit(struct pg *p, struct err *e);
void pg_rollback(struct pg *p);

/* Append name quoted as an identifier ("...") / text as a string literal ('...')
 * to b: SQLite's %w and %Q (sqlgen.h), whose rules are PostgreSQL's too with
 * standard_conforming_strings on, which every connection sets. Names come only
 * from the configuration, checked against pg_attribute first. */
struct buf;
void pg_ident(struct buf *b, const char *name);
void pg_literal(struct buf *b, const char *text);

/* Fill e from res (may be NULL: the connection's message) and return -1. */
int pg_fail(struct pg *p, const PGresult *res, const char *what, struct err *e);

/* The integer in row r, column c of res (0 when NULL). */
long long pg_int(const PGresult *res, int r, int c);

#endif
