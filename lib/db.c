/*
 * db: see db.h.
 *
 * The library's tables:
 *   _rhtmx_sync_state     key/value: 'head' (last version handed out), 'horizon'
 *                         (versions at or below it may have been compacted away),
 *                         'schema' (our schema version when user_version is the app's).
 *   _rhtmx_sync_log       one row per change: entity, entity_id (the key, in its own
 *                         SQL type), action, data (the row as JSON text), version
 *                         (global, strictly increasing, never reused), client_id (set
 *                         by sync-push), owner (the row's owner column), created_at.
 *   _rhtmx_sync_context   one row: the client id of the push under way, read by the
 *                         triggers. Set and cleared inside the push transaction, so
 *                         no other writer ever sees it.
 *   _rhtmx_sync_tables    which triggers are installed for which entity, with the
 *                         column signature they were generated from.
 *   _rhtmx_sync_mutations (client_id, mutation_id) already applied, with the answer
 *                         given, so a retried push is answered without writing twice.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db.h"

/* Removable by compaction: older than the cutoff, and either a tombstone or
 * superseded. Removing an older entry never changes whether a newer one is
 * removable, so STMT_COMPACT_PICK and STMT_COMPACT_DELETE read the same. */
#define REMOVABLE                                                                                  \
    "l.created_at < ?1 AND (l.action = 'delete' OR EXISTS ("                                       \
    " SELECT 1 FROM _rhtmx_sync_log AS m"                                                          \
    "  WHERE m.entity = l.entity AND m.entity_id = l.entity_id AND m.version > l.version))"

/* Every fixed statement of the library (db.h). */
static const char *const stmt_sql[STMT__COUNT] = {
    [STMT_HEAD] = "SELECT value FROM _rhtmx_sync_state WHERE key = 'head'",
    [STMT_HORIZON] = "SELECT value FROM _rhtmx_sync_state WHERE key = 'horizon'",
    /* The newest change of each row after the cursor, in version order. A row
     * changed five times since the cursor is sent once, as it is now. At since=0
     * (a full sync) rows whose newest change is a delete are left out and every
     * row is a 'create': the client starts from nothing.
     * "Newest" is an anti-join (no later entry for the same row) rather than a
     * correlated max(): one cursor stays open and stops at the first later
     * entry. It runs on idx_sync_row_version, whose integer-first key compares
     * faster than idx_sync_entity_row's text-first one: together a 1,000-row
     * page's query costs 0.72 instead of 1.14 ms (bench/README.md). */
    [STMT_PULL] = "SELECT l.entity_id, CASE WHEN ?5 THEN 'create' ELSE l.action END,"
                  "       l.data, l.version, l.client_id"
                  "  FROM _rhtmx_sync_log AS l"
                  "  LEFT JOIN _rhtmx_sync_log AS m INDEXED BY idx_sync_row_version"
                  "    ON m.entity = l.entity AND m.entity_id = l.entity_id"
                  "   AND m.version > l.version"
                  " WHERE l.entity = ?1 AND l.version > ?2"
                  "   AND (NOT ?5 OR l.action <> 'delete')"
                  "   AND (?4 IS NULL OR l.owner = ?4)"
                  "   AND m.version IS NULL"
                  " ORDER BY l.version LIMIT ?3",
    [STMT_SET_CLIENT] = "UPDATE _rhtmx_sync_context SET client_id = ?1 WHERE id = 1",
    [STMT_CURSORS] = "SELECT (SELECT value FROM _rhtmx_sync_state WHERE key = 'head'),"
                     "       (SELECT value FROM _rhtmx_sync_state WHERE key = 'horizon')",
    /* Transaction control as prepared statements: sqlite3_exec() would parse
     * them again on every request. */
    [STMT_BEGIN] = "BEGIN",
    [STMT_SCHEMA_COOKIE] = "PRAGMA schema_version",
    [STMT_ROLLBACK] = "ROLLBACK",
    /* One statement, cached, so that a CGI start (a new connection each
     * request) prepares one query per entity rather than two. */
    [STMT_INSTALLED] = "SELECT signature = ?3 AND (SELECT count(*) FROM sqlite_master"
                       "  WHERE type = 'trigger' AND tbl_name = ?1"
                       "    AND name IN (?2 || 'insert', ?2 || 'update', ?2 || 'delete')) = 3"
                       "  FROM _rhtmx_sync_tables WHERE entity = ?4",
    [STMT_UNSEALED] = "SELECT 1 FROM _rhtmx_sync_log INDEXED BY idx_sync_unsealed"
                      " WHERE entity = ?1 AND data IS NULL AND action <> 'delete' LIMIT 1",
    [STMT_ENTITY_COUNT] = "SELECT count(*) FROM _rhtmx_sync_log AS l"
                          " WHERE l.entity = ?1 AND l.action <> 'delete'"
                          "   AND l.version = (SELECT max(m.version) FROM _rhtmx_sync_log AS m"
                          "    WHERE m.entity = l.entity AND m.entity_id = l.entity_id)",
    [STMT_JOURNAL_MODE] = "PRAGMA journal_mode",
    [STMT_USER_VERSION] = "PRAGMA user_version",
    [STMT_OUR_VERSION] = "SELECT value FROM _rhtmx_sync_state WHERE key = 'schema'",
    [STMT_SIGNATURE] = "SELECT signature FROM _rhtmx_sync_tables WHERE entity = ?1",
    [STMT_COLUMN_GONE] = "SELECT 1 FROM _rhtmx_sync_gone WHERE entity = ?1 AND name = ?2",

    /* A push runs each change in a savepoint, so a rejected one leaves nothing. */
    [STMT_SAVEPOINT] = "SAVEPOINT rhtmx_change",
    [STMT_RELEASE] = "RELEASE rhtmx_change",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO rhtmx_change",
    [STMT_MUTATION_GET] = "SELECT entity, answer, version FROM _rhtmx_sync_mutations"
                          " WHERE client_id = ?1 AND mutation_id = ?2",
    [STMT_MUTATION_PUT] = "INSERT INTO _rhtmx_sync_mutations (client_id, mutation_id, entity, "
                          "answer, version) VALUES (?1, ?2, ?3, ?4, ?5)",
    /* The real key an earlier applied create of this client got for a temporary id. */
    [STMT_MUTATION_TMP] =
        "SELECT json_extract(answer, '$.id') FROM _rhtmx_sync_mutations"
        " WHERE client_id = ?1 AND entity = ?2 AND json_extract(answer, '$.tmp') = ?3"
        "   AND json_extract(answer, '$.applied') LIMIT 1",
    /* The newest change to the row after client_version made by anyone but the
     * pushing client: its own earlier pushes (an echo it has not pulled yet, a
     * create earlier in the same batch) are never a conflict. */
    [STMT_LOG_NEWEST] = "SELECT version, created_at FROM _rhtmx_sync_log"
                        " WHERE entity = ?1 AND entity_id = ?2 AND version > ?3"
                        "   AND (client_id IS NULL OR client_id <> ?4)"
                        " ORDER BY version DESC LIMIT 1",
    /* The row as the client last saw it: its newest entry at or before client_version. */
    [STMT_LOG_BASE] = "SELECT data FROM _rhtmx_sync_log"
                      " WHERE entity = ?1 AND entity_id = ?2 AND version <= ?3"
                      " ORDER BY version DESC LIMIT 1",

    /* Only a removed tombstone can leave a client stale (a removed superseded
     * entry still has its newer entry in the log), so only tombstones raise
     * the horizon: fewer needless resyncs. */
    [STMT_COMPACT_PICK] =
        "SELECT max(id), coalesce(max(CASE WHEN action = 'delete' THEN version END), 0),"
        " count(*) FROM (SELECT l.id, l.version, l.action"
        " FROM _rhtmx_sync_log AS l WHERE " REMOVABLE " ORDER BY l.id LIMIT ?2)",
    [STMT_COMPACT_DELETE] = "DELETE FROM _rhtmx_sync_log AS l WHERE l.id <= ?2 AND " REMOVABLE,
    [STMT_COMPACT_HORIZON] =
        "UPDATE _rhtmx_sync_state SET value = max(value, ?1) WHERE key = 'horizon'",
    [STMT_COMPACT_MUTATIONS] = "DELETE FROM _rhtmx_sync_mutations WHERE created_at < ?1",
    [STMT_COMPACT_STAMP] = "INSERT INTO _rhtmx_sync_state (key, value) VALUES ('compacted_at', ?1)"
                           " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [STMT_COMPACT_LAST] = "SELECT value FROM _rhtmx_sync_state WHERE key = 'compacted_at'",
    [STMT_COMPACT_CUTOFF] = "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' days')",
    [STMT_LOG_COUNT] = "SELECT count(*) FROM _rhtmx_sync_log",

    /* The entries an event stream sends; its columns are what hub.c's
     * format_event reads. */
    [STMT_EVENT_ROWS] = "SELECT entity, entity_id, action, version, client_id, owner"
                        "  FROM _rhtmx_sync_log WHERE version > ?1 AND version <= ?2"
                        " ORDER BY version LIMIT ?3",
};

/* Migration n takes the schema from version n-1 to n. */
static const char *const migrations[DB_SCHEMA_VERSION + 1] = {
    [1] = "CREATE TABLE IF NOT EXISTS _rhtmx_sync_state ("
          "  key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
          "INSERT OR IGNORE INTO _rhtmx_sync_state (key, value) VALUES ('head', 0), ('horizon', 0);"
          "CREATE TABLE IF NOT EXISTS _rhtmx_sync_log ("
          "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
          "  entity TEXT NOT NULL,"
          "  entity_id NOT NULL,"
          "  action TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),"
          "  data TEXT,"
          "  version INTEGER NOT NULL UNIQUE,"
          "  client_id TEXT,"
          "  owner,"
          "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));"
          "CREATE INDEX IF NOT EXISTS idx_sync_entity_version ON _rhtmx_sync_log (entity, version);"
          "CREATE INDEX IF NOT EXISTS idx_sync_entity_row ON _rhtmx_sync_log (entity, entity_id, "
          "version);"
          "CREATE TABLE IF NOT EXISTS _rhtmx_sync_context ("
          "  id INTEGER PRIMARY KEY CHECK (id = 1), client_id TEXT);"
          "INSERT OR IGNORE INTO _rhtmx_sync_context (id, client_id) VALUES (1, NULL);"
          "CREATE TABLE IF NOT EXISTS _rhtmx_sync_tables ("
          "  entity TEXT PRIMARY KEY, tbl TEXT NOT NULL, signature TEXT NOT NULL);"
          "CREATE TABLE IF NOT EXISTS _rhtmx_sync_mutations ("
          "  client_id TEXT NOT NULL, mutation_id TEXT NOT NULL, entity TEXT NOT NULL,"
          "  answer TEXT NOT NULL, version INTEGER NOT NULL,"
          "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),"
          "  PRIMARY KEY (client_id, mutation_id)) WITHOUT ROWID;",
    /* 2: the pull's "is there a later change of this row" probe (STMT_PULL). */
    [2] = "CREATE INDEX IF NOT EXISTS idx_sync_row_version"
          "  ON _rhtmx_sync_log (entity_id, version, entity);",
    /* 3: triggers that log the key only (lib/schema.c): the entries whose row
     * data is still to be copied from the table (schema_seal), the columns
     * each install saw, and the columns a table has lost (a push naming one
     * is refused as schema_changed). */
    [3] = "CREATE INDEX IF NOT EXISTS idx_sync_unsealed ON _rhtmx_sync_log (entity)"
          "  WHERE data IS NULL AND action <> 'delete';"
          "ALTER TABLE _rhtmx_sync_tables ADD COLUMN columns TEXT;"
          "CREATE TABLE IF NOT EXISTS _rhtmx_sync_gone ("
          "  entity TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (entity, name)) WITHOUT ROWID;",
};

int
db_fail(struct db *d, struct err *e, const char *what)
{
    int code = d != NULL && d->h != NULL ? sqlite3_errcode(d->h) : SQLITE_ERROR;
    const char *msg = d != NULL && d->h != NULL ? sqlite3_errmsg(d->h) : "no connection";

    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return err_set(e, 503, "busy", "%s: database busy: %s", what, msg);
    return err_set(e, 500, "database", "%s: %s", what, msg);
}

long long
db_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
db_deadline(struct db *d, long long deadline)
{
    d->deadline = deadline;
}

/*
 * SQLite's busy handler, called while a lock is refused (count: how often for
 * this lock so far). SQLite's own (sqlite3_busy_timeout) bounds each statement's
 * wait, so a request of many statements could wait many times over; this one
 * waits only until the connection's deadline, with the same growing naps.
 */
static int
db_busy(void *ctx, int count)
{
    static const unsigned char naps[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    struct db *d = ctx;
    long long now = db_now_ms(), end, nap;

    if (count == 0)
        d->wait_from = now;
    end = d->deadline > 0 ? d->deadline : d->wait_from + DB_BUSY_TIMEOUT_MS;
    if (now >= end)
        return 0;
    nap = count < (int)sizeof(naps) ? naps[count] : 100;
    sqlite3_sleep((int)(nap < end - now ? nap : end - now));
    return 1;
}

/*
 * Switch to WAL once. Switching needs an exclusive lock and SQLite answers
 * "database is locked" at once, without the busy handler, when another process
 * holds any lock, which happens when several programs meet a new database at
 * the same moment (the first requests after an upload). So: nothing to do if
 * it is WAL already, else retry until the deadline, which the statements' own
 * waits count against too (db_open_by always sets one).
 */
static int
db_use_wal(struct db *d, struct err *e)
{
    sqlite3_stmt *st;
    struct err ignored;
    int wal = 0;

    for (;;) {
        st = db_stmt(d, STMT_JOURNAL_MODE, &ignored);
        if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
            wal = sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
        if (st != NULL)
            sqlite3_reset(st);
        if (wal)
            return 0;
        if (db_exec(d, "PRAGMA journal_mode = WAL", e) == 0)
            return 0;
        if (e->status != 503 || db_now_ms() >= d->deadline)
            return -1;
        sqlite3_sleep(20);
    }
}

/*
 * Per connection. Besides WAL, synchronous = NORMAL (durable at checkpoints,
 * never corrupt) and foreign keys, three settings for the CGI case, where each
 * request is a new process opening the database afresh:
 *
 * - A persistent WAL: SQLite normally deletes the -wal and -shm files when the
 *   last connection closes, so the next process creates them again (two file
 *   creations, two unlinks and two fchowns per request, about a tenth of a CGI
 *   start on ext4). Kept, the files stay; journal_size_limit truncates the WAL
 *   to nothing once it is checkpointed, so no space is held.
 * - Memory-mapped reads (db_setup): pages are read where the kernel already
 *   has them instead of being copied into SQLite's cache, which a fresh
 *   process would first have to allocate and fault in, page by page.
 */
static int
db_configure(struct db *d, struct err *e)
{
    int persist = 1;

    sqlite3_busy_handler(d->h, db_busy, d);
    sqlite3_extended_result_codes(d->h, 0);
    /* WAL needs write access to switch; a read-only file keeps whatever mode it has. */
    if (!d->readonly && db_use_wal(d, e) < 0)
        return -1;
    sqlite3_file_control(d->h, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    return db_exec(d,
                   "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                   " PRAGMA journal_size_limit = " DB_STR(DB_WAL_KEEP_BYTES),
                   e);
}

static int short_lived; /* set by db_short_lived(), read once by db_setup() */

void
db_short_lived(void)
{
    short_lived = 1;
}

/*
 * Process-wide SQLite settings, before its first use. They are for the
 * schema, which every new connection reads and parses before its first
 * statement (and a CGI program is a new connection per request):
 * - without memory statistics (nothing here reads them) an allocation is a
 *   plain malloc() instead of a mutex, a counter and a malloc();
 * - no up-front page cache: SQLite otherwise allocates and touches room for
 *   20 pages per connection (about 35 page faults, a tenth of a CGI start);
 *   pages are allocated as they are first read instead;
 * - in a short-lived process, memory-mapped reads by default, so they apply
 *   from the connection's first read on (PRAGMA mmap_size would come after
 *   the schema is loaded): pages are read where the kernel already has them,
 *   not copied into a cache the process would first have to fault in. Only
 *   the file's size is mapped, up to DB_MMAP_BYTES.
 */
static void
db_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
    if (short_lived)
        sqlite3_config(SQLITE_CONFIG_MMAP_SIZE, (sqlite3_int64)DB_MMAP_BYTES,
                       (sqlite3_int64)DB_MMAP_BYTES);
}

struct db *
db_open(const char *path, struct err *e)
{
    return db_open_by(path, 0, e);
}

int
db_replaced(const struct db *d)
{
    struct stat sb;

    return stat(d->path, &sb) != 0 || sb.st_dev != d->dev || sb.st_ino != d->ino;
}

struct db *
db_open_by(const char *path, long long deadline, struct err *e)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct db *d = NULL;
    struct stat sb;
    int rc;

    pthread_once(&once, db_setup);

    if (stat(path, &sb) != 0) {
        err_set(e, 500, "database", "database file %s: %s", path, strerror(errno));
        return NULL;
    }
    /* An empty file is no database of ours, and most likely one being copied
     * into place right now: opening it would write into it (SQLite would
     * give it a header in WAL mode, the migration our tables), over the
     * copy's first pages. Left alone, it is opened once it has content. */
    if (sb.st_size == 0) {
        err_set(e, 500, "database", "database file %s is empty (still being copied?)", path);
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL || (d->path = strdup(path)) == NULL) {
        free(d);
        err_set(e, 500, "internal", "out of memory");
        return NULL;
    }
    /* Without a deadline, the opening has one of its own. */
    d->deadline = deadline > 0 ? deadline : db_now_ms() + DB_BUSY_TIMEOUT_MS;
    rc = sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK && access(path, W_OK) != 0)
        rc = SQLITE_READONLY;
    if (rc != SQLITE_OK) {
        sqlite3_close(d->h);
        d->h = NULL;
        rc = sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
        d->readonly = 1;
    }
    if (rc != SQLITE_OK) {
        db_fail(d, e, path);
        goto err;
    }
    /* The file SQLite has open now (it opens it in sqlite3_open_v2): what
     * db_replaced() compares the path with. */
    if (stat(path, &sb) != 0) {
        err_set(e, 500, "database", "database file %s: %s", path, strerror(errno));
        goto err;
    }
    d->dev = sb.st_dev;
    d->ino = sb.st_ino;
    if (db_configure(d, e) < 0)
        goto err;
    d->deadline = deadline;
    return d;
err:
    db_free(d);
    return NULL;
}

void
db_free(struct db *d)
{
    int i;

    if (d == NULL)
        return;
    for (i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(d->stmts[i]);
    for (i = 0; i < DB_CACHED; i++) {
        sqlite3_finalize(d->cached[i].st);
        free(d->cached[i].sql);
    }
    sqlite3_close(d->h);
    free(d->path);
    free(d);
}

int
db_exec(struct db *d, const char *sql, struct err *e)
{
    char *msg = NULL;
    int rc;

    if (sql == NULL)
        return err_set(e, 500, "internal", "out of memory");
    rc = sqlite3_exec(d->h, sql, NULL, NULL, &msg);

    if (rc == SQLITE_OK)
        return 0;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        err_set(e, 503, "busy", "database busy: %s", msg ? msg : sqlite3_errstr(rc));
    else
        err_set(e, 500, "database", "%s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return -1;
}

sqlite3_stmt *
db_stmt(struct db *d, enum db_stmt id, struct err *e)
{
    sqlite3_stmt *st;

    assert(id >= 0 && id < STMT__COUNT && stmt_sql[id] != NULL); /* every id has its text */
    st = d->stmts[id];
    if (st == NULL) {
        if (sqlite3_prepare_v3(d->h, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
            SQLITE_OK) {
            db_fail(d, e, "prepare");
            return NULL;
        }
        d->stmts[id] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

sqlite3_stmt *
db_prepare(struct db *d, const char *sql, const char *what, struct err *e)
{
    sqlite3_stmt *st = NULL;

    if (sql == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return NULL;
    }
    if (sqlite3_prepare_v2(d->h, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        db_fail(d, e, what);
        return NULL;
    }
    return st;
}

sqlite3_stmt *
db_cached(struct db *d, const char *sql, const char *what, struct err *e)
{
    sqlite3_stmt *st = NULL;
    char *copy = NULL;
    size_t i;

    if (sql == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return NULL;
    }
    for (i = 0; i < DB_CACHED && d->cached[i].sql != NULL; i++)
        if (strcmp(d->cached[i].sql, sql) == 0)
            break;
    if (i < DB_CACHED && d->cached[i].sql != NULL) { /* found: move it to the front */
        copy = d->cached[i].sql;
        st = d->cached[i].st;
    } else {
        if ((copy = strdup(sql)) == NULL) {
            err_set(e, 500, "internal", "out of memory");
            return NULL;
        }
        if (sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
            sqlite3_finalize(st);
            free(copy);
            db_fail(d, e, what);
            return NULL;
        }
        i = DB_CACHED - 1; /* the least recently used goes */
        sqlite3_finalize(d->cached[i].st);
        free(d->cached[i].sql);
    }
    memmove(&d->cached[1], &d->cached[0], i * sizeof(d->cached[0]));
    d->cached[0].sql = copy;
    d->cached[0].st = st;
    return st;
}

int
db_done(struct db *d, sqlite3_stmt *st, const char *what, struct err *e)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_fail(d, e, what);
    return 0;
}

int
db_run(struct db *d, enum db_stmt id, const char *what, struct err *e)
{
    sqlite3_stmt *st = db_stmt(d, id, e);

    return st == NULL ? -1 : db_done(d, st, what, e);
}

int
db_begin_read(struct db *d, struct err *e)
{
    return db_run(d, STMT_BEGIN, "BEGIN", e);
}

int
db_begin_write(struct db *d, struct err *e)
{
    return db_exec(d, "BEGIN IMMEDIATE", e);
}

int
db_commit(struct db *d, struct err *e)
{
    assert(!sqlite3_get_autocommit(d->h)); /* a transaction is open: db_begin_write */
    /* Checked inside the write transaction, right before it ends: a file moved
     * away after this point is the operator racing a commit in progress. */
    if (db_replaced(d))
        return err_set(e, 503, "busy",
                       "%s was moved or replaced while this process had it open: nothing was "
                       "committed",
                       d->path);
    return db_exec(d, "COMMIT", e);
}

void
db_rollback(struct db *d)
{
    struct err e;

    if (!sqlite3_get_autocommit(d->h) && db_run(d, STMT_ROLLBACK, "ROLLBACK", &e) < 0)
        sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
}

long long
db_head(struct db *d, struct err *e)
{
    sqlite3_stmt *st = db_stmt(d, STMT_HEAD, e);
    long long v;

    if (st == NULL)
        return -1;
    if (sqlite3_step(st) != SQLITE_ROW) {
        db_fail(d, e, "read head version");
        sqlite3_reset(st);
        return -1;
    }
    v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

long long
db_schema_cookie(struct db *d)
{
    struct err e;
    sqlite3_stmt *st = db_stmt(d, STMT_SCHEMA_COOKIE, &e);
    long long v = -1;

    if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    if (st != NULL)
        sqlite3_reset(st);
    return v;
}

/* The single integer statement id reads, or -1. */
static long long
db_int(struct db *d, enum db_stmt id)
{
    struct err ignored;
    sqlite3_stmt *st = db_stmt(d, id, &ignored);
    long long v = -1;

    if (st == NULL)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

/*
 * Our schema version. user_version is ours when it is 0 (a new file) or within
 * DB_USER_VERSION_BASE's range; any other value belongs to the app (many PHP
 * apps number their own migrations with it), and then our number lives in
 * _rhtmx_sync_state under 'schema' and user_version is never touched.
 */
static int
db_schema_version(struct db *d, int *app_owns_user_version)
{
    long long uv = db_int(d, STMT_USER_VERSION);
    long long v;

    *app_owns_user_version = 0;
    if (uv == 0)
        return 0;
    if (uv > DB_USER_VERSION_BASE && uv <= DB_USER_VERSION_BASE + 0xFFFF)
        return (int)(uv - DB_USER_VERSION_BASE);
    *app_owns_user_version = 1;
    v = db_int(d, STMT_OUR_VERSION);
    return v < 0 ? 0 : (int)v;
}

int
db_schema_ok(struct db *d)
{
    int app;
    return db_schema_version(d, &app) == DB_SCHEMA_VERSION;
}

int
db_migrate(struct db *d, struct err *e)
{
    char sql[160];
    int v, app;

    if (db_schema_ok(d))
        return 0;
    if (d->readonly)
        return err_set(e, 500, "database",
                       "the database is read-only and its sync tables are "
                       "missing or old: run 'rhtmx-sync init' as its owner");
    if (db_begin_write(d, e) < 0)
        return -1;
    v = db_schema_version(d, &app); /* again, under the write lock */
    if (v > DB_SCHEMA_VERSION) {
        err_set(e, 500, "database", "the database has sync schema %d, newer than this build (%d)",
                v, DB_SCHEMA_VERSION);
        goto err;
    }
    for (v = v + 1; v <= DB_SCHEMA_VERSION; v++) {
        if (db_exec(d, migrations[v], e) < 0)
            goto err;
    }
    if (app)
        snprintf(sql, sizeof(sql),
                 "INSERT OR REPLACE INTO _rhtmx_sync_state (key, value) VALUES ('schema', %d)",
                 DB_SCHEMA_VERSION);
    else
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
                 DB_USER_VERSION_BASE + DB_SCHEMA_VERSION);
    if (db_exec(d, sql, e) < 0 || db_commit(d, e) < 0)
        goto err;
    return 0;
err:
    db_rollback(d);
    return -1;
}
