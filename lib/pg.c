/* pg: see pg.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "db.h"
#include "log.h"
#include "pg.h"

/* Per connection: UTF-8 (what the wire carries), and the same bound on waiting
 * for a lock as SQLite's busy timeout, so a writer stuck behind another answers
 * 503 "busy" rather than hanging the request. */
#define PG_SESSION_SQL                                                                             \
    "SET client_encoding = 'UTF8'; SET lock_timeout = " DB_STR(                                    \
        DB_BUSY_TIMEOUT_MS) ";"                                                                    \
                            "SET client_min_messages = warning; SET standard_conforming_strings "  \
                            "= on;"

/* What the server says besides errors (a WARNING): to the log, one line. Without
 * this, libpq writes notices to stderr as they come, in its own format. */
static void
notice(void *arg, const char *message)
{
    (void)arg;
    log_msg("PostgreSQL: %.*s", (int)strcspn(message, "\n"), message);
}

/* The password: the first line of path, without its line end. New string, or
 * NULL with e set. */
static char *
read_password(const char *path, struct err *e)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        err_set(e, 500, "config", "cannot read the PostgreSQL password file %s: %s", path,
                strerror(errno));
        return NULL;
    }
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    n = strcspn(line, "\r\n");
    line[n] = '\0';
    return strdup(line);
}

struct pg *
pg_open(const struct pgconf *cf, const char *name, struct err *e)
{
    /* dbname with expand_dbname: the URL, whose own parameters all apply;
     * password only from the password file (else libpq's own: PGPASSFILE...). */
    const char *keys[] = {"dbname", "application_name", "connect_timeout", "password", NULL};
    const char *vals[] = {cf->url, name, "10", NULL, NULL};
    struct pg *p = calloc(1, sizeof(*p));
    char *password = NULL;

    if (p == NULL || (p->shown = strdup(cf->shown)) == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }
    if (cf->password_file != NULL && (password = read_password(cf->password_file, e)) == NULL)
        goto err;
    vals[3] = password;
    if (password == NULL)
        keys[3] = NULL;
    p->c = PQconnectdbParams(keys, vals, 1);
    if (p->c == NULL || PQstatus(p->c) != CONNECTION_OK) {
        char m[400];
        snprintf(m, sizeof(m), "%s", p->c ? PQerrorMessage(p->c) : "out of memory");
        m[strcspn(m, "\n")] = '\0';
        err_set(e, 503, "busy", "cannot connect to PostgreSQL at %s: %s", cf->shown, m);
        goto err;
    }
    PQsetNoticeProcessor(p->c, notice, NULL);
    if (pg_exec(p, PG_SESSION_SQL, 0, NULL, "set up the session", e) < 0)
        goto err;
    free(password);
    return p;
err:
    free(password);
    pg_free(p);
    return NULL;
}

void
pg_free(struct pg *p)
{
    if (p == NULL)
        return;
    if (p->c != NULL)
        PQfinish(p->c);
    free(p->shown);
    free(p);
}

int
pg_alive(const struct pg *p)
{
    return p != NULL && p->c != NULL && PQstatus(p->c) == CONNECTION_OK;
}

/* SQLSTATEs a retry may cure: 503 "busy". */
static int
retryable(const char *state)
{
    static const char *const classes[] = {"40", "08", "53", "57P", "55P03", NULL};
    size_t i;

    if (state == NULL)
        return 1; /* no state: the connection itself failed */
    for (i = 0; classes[i] != NULL; i++)
        if (strncmp(state, classes[i], strlen(classes[i])) == 0)
            return 1;
    return 0;
}

int
pg_fail(struct pg *p, const PGresult *res, const char *what, struct err *e)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char m[400];

    snprintf(m, sizeof(m), "%s",
             res != NULL ? PQresultErrorMessage(res)
             : p->c      ? PQerrorMessage(p->c)
                         : "no connection");
    m[strcspn(m, "\n")] = '\0';
    if (retryable(state) || !pg_alive(p))
        return err_set(e, 503, "busy", "%s: PostgreSQL: %s", what, m);
    return err_set(e, 500, "database", "%s: PostgreSQL: %s", what, m);
}

/* FNV-1a of text: the name a statement is prepared under. */
static unsigned long long
text_hash(const char *text)
{
    unsigned long long h = 1469598103934665603ULL;

    for (; *text; text++)
        h = (h ^ (unsigned char)*text) * 1099511628211ULL;
    return h;
}

PGresult *
pg_query_raw(struct pg *p, const char *sql, int n, const char *const *params)
{
    unsigned long long h = text_hash(sql);
    char name[24];
    PGresult *res;
    size_t i;

    snprintf(name, sizeof(name), "r%016llx", h);
    for (i = 0; i < p->nprepared; i++)
        if (p->prepared[i] == h)
            return PQexecPrepared(p->c, name, n, params, NULL, NULL, 0);
    if (p->nprepared == PG_PREPARED_MAX)
        return PQexecParams(p->c, sql, n, NULL, params, NULL, NULL, 0);
    res = PQprepare(p->c, name, sql, n, NULL);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        return res; /* why it cannot run */
    PQclear(res);
    p->prepared[p->nprepared++] = h;
    return PQexecPrepared(p->c, name, n, params, NULL, NULL, 0);
}

/* Run sql (n parameters), prepared when cache is set. */
static PGresult *
run(struct pg *p, const char *sql, int n, const char *const *params, int cache, const char *what,
    struct err *e)
{
    PGresult *res;
    ExecStatusType st;

    if (cache)
        res = pg_query_raw(p, sql, n, params);
    else if (n == 0)
        res = PQexec(p->c, sql);
    else
        res = PQexecParams(p->c, sql, n, NULL, params, NULL, NULL, 0);
    st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    pg_fail(p, res, what, e);
    PQclear(res);
    return NULL;
}

PGresult *
pg_query(struct pg *p, const char *sql, int n, const char *const *params, const char *what,
         struct err *e)
{
    return run(p, sql, n, params, n > 0, what, e);
}

PGresult *
pg_query_cached(struct pg *p, const char *sql, const char *what, struct err *e)
{
    return run(p, sql, 0, NULL, 1, what, e);
}

int
pg_exec(struct pg *p, const char *sql, int n, const char *const *params, const char *what,
        struct err *e)
{
    PGresult *res = pg_query(p, sql, n, params, what, e);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int
pg_begin_read(struct pg *p, struct err *e)
{
    return pg_exec(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, "begin", e);
}

int
pg_begin_write(struct pg *p, struct err *e)
{
    return pg_exec(p, "BEGIN ISOLATION LEVEL READ COMMITTED", 0, NULL, "begin", e);
}

int
pg_commit(struct pg *p, struct err *e)
{
    return pg_exec(p, "COMMIT", 0, NULL, "commit", e);
}

void
pg_rollback(struct pg *p)
{
    PGresult *res;

    if (p == NULL || p->c == NULL || PQtransactionStatus(p->c) == PQTRANS_IDLE)
        return;
    res = PQexec(p->c, "ROLLBACK");
    PQclear(res);
}

long long
pg_int(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c))
        return 0;
    return strtoll(PQgetvalue(res, r, c), NULL, 10);
}

/* sqlite3_mprintf's text appended to b (abort on out of memory, as buf does). */
static void
append_free(struct buf *b, char *text)
{
    if (text == NULL)
        abort();
    buf_adds(b, text);
    sqlite3_free(text);
}

void
pg_ident(struct buf *b, const char *name)
{
    append_free(b, sqlite3_mprintf("\"%w\"", name));
}

void
pg_literal(struct buf *b, const char *text)
{
    append_free(b, sqlite3_mprintf("%Q", text));
}
