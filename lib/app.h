/*
 * app: what every executable holds between requests, and how it gets it.
 *
 * An app is the located config file, the loaded config, the open database and
 * the checked schema. app_ready() brings it up to date before each request:
 * the first time it loads everything (migrating our tables and installing the
 * triggers if needed); afterwards it only checks that the config file and the
 * database shape are unchanged, which costs one PRAGMA and, in a long-lived
 * (FastCGI) process, a read() of an inotify watch on the config file (a stat()
 * only after it reports something, or a second after the last one). A broken
 * config is retried on the next request, so fixing the file is enough: no
 * restart of a FastCGI process is needed. The same goes for a database that
 * was opened read-only (its file not writable): once it is, it is opened again,
 * and for a database file moved away or replaced by another file (a stat() of
 * its path per request): the file now at the configured path is opened.
 *
 * Each app_ready() starts the request's one bound on waiting for the database
 * (db_deadline: DB_BUSY_TIMEOUT_MS from the call), which the opening, the
 * checks and the request's own statements share: beyond it, 503 "busy".
 */
#ifndef RHTMX_APP_H
#define RHTMX_APP_H

#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "err.h"
#include "http.h"
#include "schema.h"

struct pg;

struct app {
    const char *name;  /* program name for log lines */
    char *config_path; /* owned */
    struct config *cfg;
    struct db *db;
    struct pg *pg; /* [pg] the PostgreSQL connection when the config names one (then db is
                      NULL; pg.h, built with RHTMX_POSTGRES), else NULL */
    struct schema *schema;
    struct timespec config_mtime;
    off_t config_size;
    int short_lived;                /* plain CGI or the tool: one request, then exit */
    int config_watch;               /* inotify on the config file, or -1 */
    struct timespec config_statted; /* CLOCK_MONOTONIC_COARSE of the last stat() */
    int failing; /* the last app_ready() failed (its line went out once, log.h) */
};

/* Set up app for program name (static string). config_path NULL: locate it
 * (RHTMX_SYNC_CONFIG, else beside the executable). Never fails. */
void app_init(struct app *app, const char *name, const char *config_path);

/* Make app current. 0, or -1 with e set (and its line written to the error
 * log, once while the same problem lasts: log_once). */
int app_ready(struct app *app, struct err *e);

/* app_ready() for a request that only reads: on 0 a read transaction is open
 * on app->db (the caller ends it with db_rollback()) and the schema was found
 * current inside it, so the check and the request's reads take the database's
 * read lock once and share one snapshot. -1 as app_ready(), with no
 * transaction open. */
int app_ready_read(struct app *app, struct err *e);

/* Release everything. */
void app_close(struct app *app);

/* For a request on /api/sync/{entity}: the entity's table, or NULL after
 * answering 404 (unknown or malformed entity) on req. */
const struct table *app_entity(struct app *app, struct http_req *req);

/* The methods each URL takes, for Allow headers (405 and OPTIONS answers).
 * /api/sync/{entity} is one URL served by two programs (the web server sends
 * POST to sync-push and the rest to sync-pull), and each names all of them. */
#define APP_ALLOW_ENTITY "GET, HEAD, POST, OPTIONS"
#define APP_CORS_ENTITY "GET, HEAD, POST" /* what a preflight may ask for */
#define APP_ALLOW_EVENTS "GET, OPTIONS"
#define APP_CORS_EVENTS "GET"

/* Answer a method other than those in allow (an APP_ALLOW_* list) with 405. */
void app_method_not_allowed(struct http_req *req, const char *allow);

#endif
