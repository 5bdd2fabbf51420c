/* Log retention: what compaction removes, what it keeps, the horizon, batching,
 * and the opportunistic form's timing and lock manners. */
#include <sqlite3.h>
#include <time.h>

#include "changelog.h"
#include "compact.h"
#include "fixture.h"

#define CFG                                                                                        \
    "{\"database\":\"x\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"none\"},"                   \
    "\"retention\":{\"days\":30}}"
#define SCHEMA "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL);"
#define OLD "'2000-01-01T00:00:00.000Z'"

static long long
count(struct fixture *f, const char *where)
{
    char sql[300];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM _rhtmx_sync_log WHERE %s", where);
    return fx_int(f, sql);
}

/* A pull's status: 0 when it answered, else the error's status (410...). */
static int
pull_status(struct fixture *f, long long since, long long *resume)
{
    struct buf b = {0};
    struct sink s = buf_sink(&b);
    struct pull_args a = {"todos", since, 1000, NULL, 0, NULL, NULL, NULL, NULL};
    struct err e;
    int rc;

    err_clear(&e);
    rc = changelog_pull(f->db, &a, &s, &e);
    buf_free(&b);
    if (resume != NULL)
        *resume = e.version;
    return rc == 0 ? 0 : e.status;
}

/* What compaction removes and keeps, and the horizon it leaves. */
static void
test_removes_old_tombstones_and_superseded(void)
{
    struct fixture f;
    struct compact_stats st;
    struct err e;
    long long resume = 0;

    CHECK(fx_open(&f, SCHEMA, CFG) == 0);
    /* v1..v5 create rows 1-5; v6, v7 update row 1; v8, v9 delete rows 2, 3;
     * v10 creates row 6. All of it long ago. */
    fx_exec(&f, "INSERT INTO todos (title) VALUES ('a'), ('b'), ('c'), ('d'), ('e');"
                "UPDATE todos SET title = 'a2' WHERE id = 1;"
                "UPDATE todos SET title = 'a3' WHERE id = 1;"
                "DELETE FROM todos WHERE id = 2; DELETE FROM todos WHERE id = 3;"
                "INSERT INTO todos (title) VALUES ('f');");
    fx_exec(&f, "UPDATE _rhtmx_sync_log SET created_at = " OLD);
    /* v11: row 4 changes today (its old v4 is superseded: removable); v12, v13:
     * row 5 twice today (v5 is old and superseded: removable; v12 is superseded
     * but recent: kept). */
    fx_exec(
        &f,
        "UPDATE todos SET title = 'd2' WHERE id = 4;"
        "UPDATE todos SET title = 'e2' WHERE id = 5; UPDATE todos SET title = 'e3' WHERE id = 5;");
    CHECK_INT(count(&f, "1"), 13);

    CHECK(compact_run(f.db, f.cfg, &st, &e) == 0);
    /* Gone: v1, v6 (row 1 superseded), v2, v8 and v3, v9 (rows 2, 3: tombstones
     * and what they superseded), v4 and v5 (rows 4, 5: superseded today). */
    CHECK_INT(st.removed, 8);
    CHECK_INT(st.horizon, 9);
    CHECK_INT(st.head, 13);
    CHECK_INT(st.entries, 5);
    CHECK_INT(count(&f, "version IN (7, 10, 11, 12, 13)"), 5);
    CHECK_INT(fx_int(&f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'horizon'"), 9);

    /* Every live row still has its newest entry: a full sync is complete. */
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM todos AS t WHERE NOT EXISTS (SELECT 1 FROM "
                         "_rhtmx_sync_log AS l WHERE l.entity = 'todos' AND l.entity_id = t.id "
                         "AND json_extract(l.data, '$.title') = t.title)"),
              0);
    CHECK_INT(pull_status(&f, 0, NULL), 0);
    /* Cursors below the horizon must resync (and learn where to resume); at or
     * above it they carry on. */
    CHECK_INT(pull_status(&f, 3, &resume), 410);
    CHECK_INT(resume, 13);
    CHECK_INT(pull_status(&f, 8, NULL), 410);
    CHECK_INT(pull_status(&f, 9, NULL), 0);
    CHECK_INT(pull_status(&f, 12, NULL), 0);

    /* Again: nothing to do, and the horizon stays where it was. */
    CHECK(compact_run(f.db, f.cfg, &st, &e) == 0);
    CHECK_INT(st.removed, 0);
    CHECK_INT(st.horizon, 9);
    fx_close(&f);
}

/* An old row never changed again is kept forever; recent tombstones are kept. */
static void
test_keeps_live_rows_and_recent_tombstones(void)
{
    struct fixture f;
    struct compact_stats st;
    struct err e;

    CHECK(fx_open(&f, SCHEMA, CFG) == 0);
    fx_exec(&f, "INSERT INTO todos (title) VALUES ('old but alive'), ('deleted today');");
    fx_exec(&f, "UPDATE _rhtmx_sync_log SET created_at = " OLD);
    fx_exec(&f, "DELETE FROM todos WHERE id = 2;");
    CHECK(compact_run(f.db, f.cfg, &st, &e) == 0);
    /* v2 (row 2's create) is superseded by today's delete and old: removed. The
     * delete itself is recent: kept, so a client at v1 still learns of it. */
    CHECK_INT(st.removed, 1);
    CHECK_INT(count(&f, "version = 1"), 1);
    CHECK_INT(count(&f, "version = 3 AND action = 'delete'"), 1);
    CHECK_INT(st.horizon, 0); /* no tombstone removed: no cursor can have gone stale */
    fx_close(&f);
}

/* retention.days = 0: everything superseded goes at once (ages are strict). */
static void
test_zero_days(void)
{
    struct fixture f;
    struct compact_stats st;
    struct err e;

    CHECK(fx_open(&f, SCHEMA,
                  "{\"database\":\"x\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"none\"},"
                  "\"retention\":{\"days\":0}}") == 0);
    fx_exec(&f, "INSERT INTO todos (title) VALUES ('a'); UPDATE todos SET title = 'b';"
                "INSERT INTO todos (title) VALUES ('c'); DELETE FROM todos WHERE id = 2;");
    fx_exec(&f, "UPDATE _rhtmx_sync_log SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', "
                "'-1 second')");
    CHECK(compact_run(f.db, f.cfg, &st, &e) == 0);
    CHECK_INT(st.removed, 3);
    CHECK_INT(st.entries, 1);
    CHECK_INT(st.horizon, 4);
    fx_close(&f);
}

/* More than one batch: each its own transaction, the horizon at the highest. */
static void
test_batches(void)
{
    struct fixture f;
    struct compact_stats st;
    struct err e;
    sqlite3_stmt *up = NULL;

    CHECK(fx_open(&f, SCHEMA, CFG) == 0);
    fx_exec(&f, "INSERT INTO todos (title) VALUES ('x')");
    fx_exec(&f, "BEGIN");
    CHECK(sqlite3_prepare_v2(f.db->h, "UPDATE todos SET title = ?1", -1, &up, NULL) == SQLITE_OK);
    for (int i = 0; i < 2 * COMPACT_BATCH + 10; i++) {
        sqlite3_bind_int(up, 1, i);
        CHECK(sqlite3_step(up) == SQLITE_DONE);
        sqlite3_reset(up);
    }
    sqlite3_finalize(up);
    fx_exec(&f, "COMMIT");
    fx_exec(&f, "UPDATE _rhtmx_sync_log SET created_at = " OLD);
    CHECK(compact_run(f.db, f.cfg, &st, &e) == 0);
    CHECK_INT(st.removed, 2 * COMPACT_BATCH + 10);
    CHECK_INT(st.entries, 1);
    CHECK_INT(st.horizon, 0); /* superseded updates only: the newest is still there */
    CHECK_INT(pull_status(&f, 0, NULL), 0);
    CHECK_INT(pull_status(&f, 5, NULL), 0); /* so an old cursor still pulls, no resync */
    fx_close(&f);
}

/* Old push answers go with the log they answered for. */
static void
test_push_answers(void)
{
    struct fixture f;
    struct compact_stats st;
    struct err e;

    CHECK(fx_open(&f, SCHEMA, CFG) == 0);
    fx_exec(&f, "INSERT INTO _rhtmx_sync_mutations (client_id, mutation_id, entity, answer, "
                "version, created_at) VALUES ('c', 'old', 'todos', '{}', 1, " OLD "),"
                " ('c', 'new', 'todos', '{}', 2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))");
    CHECK(compact_run(f.db, f.cfg, &st, &e) == 0);
    CHECK_INT(st.mutations, 1);
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_mutations WHERE mutation_id = 'new'"),
              1);
    fx_close(&f);
}

/* compact_maybe: runs when due, then not for COMPACT_INTERVAL; never waits. */
static void
test_maybe(void)
{
    struct fixture f;
    sqlite3 *other = NULL;
    struct timespec t0, t1;
    char sql[200];
    double waited;

    CHECK(fx_open(&f, SCHEMA, CFG) == 0);
    fx_exec(&f, "INSERT INTO todos (title) VALUES ('a'); UPDATE todos SET title = 'b';");
    fx_exec(&f, "UPDATE _rhtmx_sync_log SET created_at = " OLD);

    CHECK_INT(compact_maybe(f.db, f.cfg), 1); /* never ran: due */
    CHECK_INT(count(&f, "1"), 1);
    CHECK(fx_int(&f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'compacted_at'") >=
          (long long)time(NULL) - 5);
    fx_exec(&f, "UPDATE todos SET title = 'c'; UPDATE _rhtmx_sync_log SET created_at = " OLD);
    CHECK_INT(compact_maybe(f.db, f.cfg), 0); /* just ran */
    CHECK_INT(count(&f, "1"), 2);

    snprintf(sql, sizeof(sql),
             "UPDATE _rhtmx_sync_state SET value = %lld WHERE key = 'compacted_at'",
             (long long)time(NULL) - COMPACT_INTERVAL - 1);
    fx_exec(&f, sql);
    /* Due, but another writer holds the lock: not now, and at once. */
    CHECK(sqlite3_open(f.path, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT(compact_maybe(f.db, f.cfg), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK_AT(__LINE__, waited < 1.0, "compact_maybe waited %.2f s for the lock", waited);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    CHECK_INT(count(&f, "1"), 2);
    /* The connection's deadline is back for everything else. */
    CHECK(f.db->deadline == 0);

    /* Inside the caller's transaction: not now. */
    fx_exec(&f, "BEGIN");
    CHECK_INT(compact_maybe(f.db, f.cfg), 0);
    fx_exec(&f, "COMMIT");

    CHECK_INT(compact_maybe(f.db, f.cfg), 1);
    CHECK_INT(count(&f, "1"), 1);
    fx_close(&f);
}

int
main(void)
{
    test_removes_old_tombstones_and_superseded();
    test_keeps_live_rows_and_recent_tombstones();
    test_zero_days();
    test_batches();
    test_push_answers();
    test_maybe();
    return check_done("test-compact");
}
