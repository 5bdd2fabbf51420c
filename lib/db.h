/*
 * db: the SQLite connection every executable holds, and the library's own schema.
 *
 * A connection is opened in WAL mode with a busy timeout, so the PHP app, the
 * sqlite3 shell and our writers can share the file. The library's own tables
 * (_rhtmx_sync_*) are created and upgraded by numbered migrations whose number
 * is kept in PRAGMA user_version (see db_migrate for how an app that uses
 * user_version itself is respected). Statements on our own tables live in one
 * table in db.c and are prepared once per connection, then reused.
 */
#ifndef RHTMX_DB_H
#define RHTMX_DB_H

#include <sqlite3.h>

#include "err.h"

#define DB_BUSY_TIMEOUT_MS 10000
/* How much of the database file a short-lived process maps for reading (db_short_lived). */
#define DB_MMAP_BYTES 268435456
/* The WAL is truncated to this after a checkpoint (0 when the last connection closes). */
#define DB_WAL_KEEP_BYTES 4194304
#define DB_STR_(x) #x
#define DB_STR(x) DB_STR_(x)

/* Our schema's version; the migrations in db.c go up to it. */
#define DB_SCHEMA_VERSION 2
/* user_version values we own: DB_USER_VERSION_BASE + schema version ("RH" << 16). */
#define DB_USER_VERSION_BASE 0x52480000

enum db_stmt {
    STMT_HEAD,         /* head version */
    STMT_HORIZON,      /* compaction horizon: versions at or below it may be gone */
    STMT_PULL,         /* ?1 entity, ?2 since, ?3 limit, ?4 owner or NULL, ?5 first page of a full sync */
    STMT_SET_CLIENT,   /* ?1 client_id (NULL clears) */
    STMT_ENTITY_COUNT, /* ?1 entity: live rows by the log */
    STMT_CURSORS,      /* head and horizon, in one step */
    STMT_BEGIN,        /* BEGIN (deferred): a read transaction */
    STMT_ROLLBACK,     /* ROLLBACK */
    STMT_SCHEMA_COOKIE, /* PRAGMA schema_version */
    STMT_INSTALLED,    /* ?1 table, ?2 trigger name prefix, ?3 signature, ?4 entity: 1 when
                        * the triggers (lib/schema.c) are there and were made from ?3 */
    STMT__COUNT
};

struct db {
    sqlite3 *h;
    int readonly; /* opened read-only (file not writable): reads keep working */
    sqlite3_stmt *stmts[STMT__COUNT];
};

/* Open the database file at path (it must exist). Returns a new db (db_free), or
 * NULL with e set (500 "database"). A file that cannot be opened for writing is
 * opened read-only and db->readonly is set. */
struct db *db_open(const char *path, struct err *e);
/* Before the first db_open: this process serves one request and exits (plain
 * CGI, the command-line tool), so favour opening fast over caching: reads are
 * memory-mapped (see db.c). A long-lived process keeps SQLite's own page
 * cache, whose memory it holds anyway, instead of mapping pages that would
 * count towards its resident size for as long as it runs. */
void db_short_lived(void);
void db_free(struct db *d); /* NULL is harmless */

/* Create or upgrade the library's tables. Needs a writable database. */
int db_migrate(struct db *d, struct err *e);

/* 1 if the library's tables are present and current. */
int db_schema_ok(struct db *d);

/* The prepared statement for id, reset and with bindings cleared. Borrowed:
 * valid until db_free(). NULL with e set on failure. */
sqlite3_stmt *db_stmt(struct db *d, enum db_stmt id, struct err *e);

/* Run SQL without results. */
int db_exec(struct db *d, const char *sql, struct err *e);

/* Transactions: a read snapshot (BEGIN), or the write lock up front (BEGIN
 * IMMEDIATE, waiting up to the busy timeout). */
int db_begin_read(struct db *d, struct err *e);
int db_begin_write(struct db *d, struct err *e);
int db_commit(struct db *d, struct err *e);
void db_rollback(struct db *d); /* harmless outside a transaction */

/* PRAGMA schema_version (changes with every CREATE/ALTER/DROP), or -1. Cheap:
 * the statement stays prepared, as it is read before every request. */
long long db_schema_cookie(struct db *d);

/* The head version (0 for an empty log). -1 with e set on failure. */
long long db_head(struct db *d, struct err *e);

/* Fill e from the connection's last error: 503 "busy" for SQLITE_BUSY, 500
 * "database" otherwise. Returns -1. */
int db_fail(struct db *d, struct err *e, const char *what);

#endif
