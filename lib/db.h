/*
 * db: the SQLite connection every executable holds, and the library's own schema.
 *
 * A connection is opened in WAL mode and waits for locks up to a deadline
 * (db_deadline), so the PHP app, the sqlite3 shell and our writers can share
 * the file. The library's own tables
 * (_rhtmx_sync_*) are created and upgraded by numbered migrations whose number
 * is kept in PRAGMA user_version (see db_migrate for how an app that uses
 * user_version itself is respected).
 *
 * This is the one statement layer. Every fixed SQL statement of the library
 * is an entry of enum db_stmt, its text in one table in db.c, prepared once
 * per connection on first use and reused (db_stmt). SQL generated from the
 * configuration (sqlgen.h) is prepared by db_prepare or run by db_exec.
 * Nothing else calls sqlite3_prepare or sqlite3_exec.
 */
#ifndef RHTMX_DB_H
#define RHTMX_DB_H

#include <sys/types.h>

#include <sqlite3.h>

#include "err.h"

/* How long a request may wait for the database in all (see db_deadline). */
#define DB_BUSY_TIMEOUT_MS 10000
/* How much of the database file a short-lived process maps for reading (db_short_lived). */
#define DB_MMAP_BYTES 268435456
/* The WAL is truncated to this after a checkpoint (0 when the last connection closes). */
#define DB_WAL_KEEP_BYTES 4194304
#define DB_STR_(x) #x
#define DB_STR(x) DB_STR_(x)

/* Our schema's version; the migrations in db.c go up to it. */
#define DB_SCHEMA_VERSION 3
/* user_version values we own: DB_USER_VERSION_BASE + schema version ("RH" << 16). */
#define DB_USER_VERSION_BASE 0x52480000

enum db_stmt {
    STMT_HEAD,    /* head version */
    STMT_HORIZON, /* compaction horizon: versions at or below it may be gone */
    STMT_PULL, /* ?1 entity, ?2 since, ?3 limit, ?4 owner or NULL, ?5 first page of a full sync */
    STMT_SET_CLIENT,    /* ?1 client_id (NULL clears) */
    STMT_ENTITY_COUNT,  /* ?1 entity: live rows by the log */
    STMT_CURSORS,       /* head and horizon, in one step */
    STMT_BEGIN,         /* BEGIN (deferred): a read transaction */
    STMT_ROLLBACK,      /* ROLLBACK */
    STMT_SCHEMA_COOKIE, /* PRAGMA schema_version */
    STMT_INSTALLED,     /* ?1 table, ?2 trigger name prefix, ?3 signature, ?4 entity: 1 when
                         * the triggers (lib/schema.c) are there and were made from ?3 */
    STMT_UNSEALED,      /* ?1 entity: a row when its log has entries to seal (schema.h) */
    STMT_JOURNAL_MODE,  /* PRAGMA journal_mode */
    STMT_USER_VERSION,  /* PRAGMA user_version */
    STMT_OUR_VERSION,   /* our schema version when user_version is the app's (db_migrate) */
    STMT_SIGNATURE,     /* ?1 entity: the signature its triggers were made from */
    STMT_COLUMN_GONE,   /* ?1 entity, ?2 column: a row when the column was dropped (schema.h) */
    /* push (push.c): one savepoint per change, and what a change reads */
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    STMT_MUTATION_GET, /* ?1 client, ?2 mutation -> entity, answer, version */
    STMT_MUTATION_PUT, /* ?1 client, ?2 mutation, ?3 entity, ?4 answer, ?5 version */
    STMT_MUTATION_TMP, /* ?1 client, ?2 entity, ?3 temporary id -> the real key */
    STMT_LOG_NEWEST,   /* ?1 entity, ?2 key, ?3 since, ?4 client -> version, created_at */
    STMT_LOG_BASE,     /* ?1 entity, ?2 key, ?3 version -> data */
    /* compaction (compact.c) */
    STMT_COMPACT_PICK,      /* ?1 cutoff, ?2 batch -> max(id), max(tombstone version), count */
    STMT_COMPACT_DELETE,    /* ?1 cutoff, ?2 up to id */
    STMT_COMPACT_HORIZON,   /* ?1 version: raise the horizon */
    STMT_COMPACT_MUTATIONS, /* ?1 cutoff: old push answers */
    STMT_COMPACT_STAMP,     /* ?1 unix time: when compaction last ran */
    STMT_COMPACT_LAST,      /* -> when compaction last ran, or no row */
    STMT_COMPACT_CUTOFF,    /* ?1 days -> the cutoff timestamp, in created_at's format */
    STMT_LOG_COUNT,         /* -> entries in the log */
    /* events (hub.c) */
    STMT_EVENT_ROWS, /* ?1 after, ?2 up to, ?3 limit -> the entries, as format_event reads them */
    STMT__COUNT
};

#define DB_CACHED 8

struct db {
    sqlite3 *h;
    int readonly; /* opened read-only (file not writable): reads keep working */
    sqlite3_stmt *stmts[STMT__COUNT];
    struct {
        char *sql; /* owned */
        sqlite3_stmt *st;
    } cached[DB_CACHED]; /* db_cached(): the most recently used first */
    char *path;          /* owned: the path it was opened by */
    dev_t dev;           /* the file opened there (db_replaced) */
    ino_t ino;
    long long deadline;  /* db_deadline(); 0: none */
    long long wait_from; /* when the wait under way began (busy handler) */
};

/*
 * Open the database file at path (it must exist and not be empty: an empty
 * file would be written to). Returns a new db (db_free), or NULL with e set
 * (500 "database", 503 "busy" when it stayed locked). A file
 * that cannot be opened for writing is opened read-only and db->readonly is
 * set. db_open_by waits for locks until deadline (db_deadline) and keeps it;
 * with deadline 0, and with db_open, the opening waits up to
 * DB_BUSY_TIMEOUT_MS in all and the connection is left without a deadline.
 */
struct db *db_open(const char *path, struct err *e);
struct db *db_open_by(const char *path, long long deadline, struct err *e);

/*
 * The one bound on waiting: every wait of d for a lock (another connection's
 * write lock, a locking_mode=EXCLUSIVE holder, the switch to WAL), however many
 * statements wait in turn, ends at deadline (db_now_ms() clock) with
 * SQLITE_BUSY, which db_fail() turns into 503 "busy". A request sets it once,
 * at its start (app.h). 0: no deadline, each wait ends after
 * DB_BUSY_TIMEOUT_MS of its own (connections that outlive requests).
 */
void db_deadline(struct db *d, long long deadline);
/* CLOCK_MONOTONIC in milliseconds. */
long long db_now_ms(void);

/* 1 if path no longer names the file d has open (it was moved, replaced by
 * another file, or removed): what d reads and writes is no longer the
 * configured database. A stat(). */
int db_replaced(const struct db *d);
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

/* Step the statement for id, which returns no rows, once. 0, or -1 with e
 * set (db_fail, what naming the step). */
int db_run(struct db *d, enum db_stmt id, const char *what, struct err *e);

/* Step st, a statement that returns no rows, once and reset it. 0, or -1
 * with e set (db_fail, what naming the step). */
int db_done(struct db *d, sqlite3_stmt *st, const char *what, struct err *e);

/* Prepare generated SQL (sqlgen.h; sql NULL means it ran out of memory: 500
 * "internal"). Returns a new statement, the caller sqlite3_finalize()s it;
 * NULL with e set (db_fail, what naming it). */
sqlite3_stmt *db_prepare(struct db *d, const char *sql, const char *what, struct err *e);

/* As db_prepare, for generated SQL run on every request (a pull's per-entity
 * query): prepared once per connection and kept, by its text, among the last
 * DB_CACHED of them. Returns a statement d owns (borrowed: the caller resets
 * it and clears its bindings, never finalizes it), valid until the next
 * db_cached() or db_free(); NULL with e set. SQLite prepares it again by
 * itself if the schema changed meanwhile. */
sqlite3_stmt *db_cached(struct db *d, const char *sql, const char *what, struct err *e);

/* Run SQL without results: the library's own scripts, and generated ones
 * (sqlgen.h; NULL: out of memory, 500 "internal"). */
int db_exec(struct db *d, const char *sql, struct err *e);

/* Transactions: a read snapshot (BEGIN), or the write lock up front (BEGIN
 * IMMEDIATE, waiting up to the deadline). db_commit refuses (503 "busy",
 * nothing committed: the caller rolls back) when db_replaced(): a write is
 * never acknowledged into a file that is no longer the configured database. */
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
