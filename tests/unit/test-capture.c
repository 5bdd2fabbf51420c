/* Change capture: triggers, backfill, versions, rebuild on new columns, migrations. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "buf.h"
#include "fixture.h"
#include "jsonr.h"

#define CFG "{\"database\":\"x\",\"entities\":[\"todos\",{\"name\":\"notes\",\"key\":\"uuid\"}],\"auth\":{\"mode\":\"none\"}}"
#define SCHEMA                                                                                     \
    "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER DEFAULT 0);"   \
    "INSERT INTO todos (title) VALUES ('one'), ('two'), ('three');"                                \
    "CREATE TABLE notes (uuid TEXT PRIMARY KEY, body TEXT);"

static long long
log_count(struct fixture *f)
{
    return fx_int(f, "SELECT count(*) FROM _rhtmx_sync_log");
}

/* Member name of the newest logged row of entity 'm', parsed strictly; *ok 0
 * when the log's JSON does not parse or has no such number. */
static double
logged_real(struct fixture *f, long long id, const char *name, int *ok)
{
    char sql[200], text[400];
    struct json_object *o, *v;
    struct err e;
    double d = 0;

    snprintf(sql, sizeof(sql),
             "SELECT data FROM _rhtmx_sync_log WHERE entity = 'm' AND entity_id = %lld "
             "ORDER BY version DESC LIMIT 1",
             id);
    fx_text(f, sql, text, sizeof(text));
    o = jsonr_parse(text, strlen(text), 2, &e);
    *ok = o != NULL && json_object_object_get_ex(o, name, &v) &&
          json_object_is_type(v, json_type_double);
    if (*ok)
        d = json_object_get_double(v);
    json_object_put(o);
    return d;
}

static int
count_steps(void *n)
{
    ++*(long *)n;
    return 0;
}

/* Triggers of an older template are replaced at the first request after an
 * upgrade, inside its write lock: the rows-not-yet-logged check must use the
 * log's index, not scan the entity's entries once per row. Counted in SQLite
 * VM steps (per 1,000) rather than time: linear is about 80 per row here, the
 * old plan about 10,000 (644 thousand against 80 million in all). */
static void
test_upgrade_is_linear(void)
{
    struct fixture f;
    struct err e;
    long steps = 0;

    CHECK(fx_open(&f,
                  "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, r REAL);"
                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)"
                  "INSERT INTO t SELECT i, 'row ' || i, i / 3.0 FROM n;"
                  "CREATE TABLE u (k TEXT PRIMARY KEY, v);"
                  "INSERT INTO u SELECT 'k' || id, id FROM t;",
                  "{\"database\":\"x\",\"entities\":[\"t\",{\"name\":\"u\",\"key\":\"k\"}],"
                  "\"auth\":{\"mode\":\"none\"}}") == 0);
    CHECK(fx_exec(&f, "UPDATE _rhtmx_sync_tables SET signature = 't3' || substr(signature, 3)") ==
          SQLITE_OK);
    schema_free(f.schema);
    f.schema = schema_load(f.db, f.cfg, &e);
    sqlite3_progress_handler(f.db->h, 1000, count_steps, &steps);
    CHECK(f.schema != NULL && schema_install(f.db, f.schema, NULL, &e) == 0);
    sqlite3_progress_handler(f.db->h, 0, NULL, NULL);
    CHECK_AT(__LINE__, steps < 2000, "%ld thousand VM steps for 8,000 rows", steps);
    /* Nothing logged twice but t's reals, again and exactly. */
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_log"), 12000);
    fx_close(&f);
}

/* Reals reach the log exactly (they read back, with strtod or JSON.parse, as
 * the same double), and infinity as 9e999 / -9e999, which is valid JSON. */
static void
test_reals(void)
{
    static const double fixed[] = {0.30000000000000004,
                                   0.1,
                                   0.3,
                                   1.5,
                                   100.0,
                                   -2.5e-7,
                                   DBL_MAX,
                                   -DBL_MAX,
                                   1.7976931348623155e308,
                                   DBL_MIN,
                                   4.9406564584124654e-324,
                                   2.2250738585072009e-308,
                                   1e99,
                                   9.9999999999999997e98,
                                   1e100,
                                   1e300,
                                   1.0000000000000002,
                                   123456789.12345678,
                                   9007199254740993.0,
                                   1e22,
                                   1e23};
    uint64_t x = 88172645463325252ULL;
    struct fixture f;
    struct err e;
    sqlite3_stmt *st = NULL;
    char s[400];
    int i, ok, bad = 0, n = 0;

    CHECK(fx_open(&f, "CREATE TABLE m (id INTEGER PRIMARY KEY, r REAL, v);",
                  "{\"database\":\"x\",\"entities\":[\"m\"],\"auth\":{\"mode\":\"none\"}}") == 0);
    CHECK(sqlite3_prepare_v2(f.db->h, "INSERT INTO m (id, r) VALUES (?1, ?2)", -1, &st, NULL) ==
          SQLITE_OK);
    for (i = 0; i < 3000; i++) {
        double d;
        if (i < (int)(sizeof(fixed) / sizeof(fixed[0]))) {
            d = fixed[i];
        } else { /* any finite double, subnormals and the top of the range included */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(&d, &x, sizeof(d));
            if (!isfinite(d) || d == 0)
                continue;
        }
        sqlite3_bind_int(st, 1, i + 1);
        sqlite3_bind_double(st, 2, d);
        CHECK(sqlite3_step(st) == SQLITE_DONE);
        sqlite3_reset(st);
        n++;
        if (logged_real(&f, i + 1, "r", &ok) != d || !ok) {
            if (bad++ < 5)
                CHECK_AT(__LINE__, 0, "%.17g logged as %s", d,
                         fx_text(&f, "SELECT data FROM _rhtmx_sync_log ORDER BY version DESC", s,
                                 sizeof(s)));
        }
    }
    sqlite3_finalize(st);
    CHECK_INT(bad, 0);
    CHECK(n > 2900);

    /* A column of TEXT affinity cannot hold a real: its trigger text has no
     * branch for one (every CGI start parses it); any other column has. */
    CHECK(fx_exec(&f, "CREATE TABLE k (id TEXT PRIMARY KEY, t VARCHAR(9), i INTEGER, n)") ==
          SQLITE_OK);
    {
        static const char cfg[] = "{\"database\":\"x\",\"entities\":[\"k\"],\"auth\":{\"mode\":"
                                  "\"none\"}}";
        struct config *c = config_parse("k.json", cfg, strlen(cfg), &e);
        struct schema *k = c ? schema_load(f.db, c, &e) : NULL;
        CHECK(k != NULL && schema_install(f.db, k, NULL, &e) == 0);
        schema_free(k);
        config_free(c);
    }
    CHECK_INT(fx_int(&f, "SELECT (sql LIKE '%hex(NEW.\"t\") ELSE%') + (sql LIKE '%hex(NEW.\"id\") "
                         "ELSE%') + (sql LIKE '%hex(NEW.\"i\") WHEN ''real''%') + (sql LIKE "
                         "'%hex(NEW.\"n\") WHEN ''real''%') FROM sqlite_master WHERE name = "
                         "'_rhtmx_sync_k_insert'"),
              4);
    CHECK(fx_exec(&f, "INSERT INTO k VALUES ('a', 0.5, 0.30000000000000004, 1e999)") == SQLITE_OK);
    CHECK_STR(
        fx_text(&f, "SELECT data FROM _rhtmx_sync_log ORDER BY version DESC LIMIT 1", s, sizeof(s)),
        "{\"id\":\"a\",\"t\":\"0.5\",\"i\":0.30000000000000004,\"n\":9e999}");

    /* Infinity: the literal, a string converted by REAL affinity, and -Inf. */
    CHECK(fx_exec(&f, "INSERT INTO m (id, r, v) VALUES (9001, 1e999, 'text'), (9002, '1e999', 1), "
                      "(9003, -1e999, 0.5)") == SQLITE_OK);
    CHECK_STR(fx_text(&f,
                      "SELECT group_concat(data, ' ') FROM _rhtmx_sync_log WHERE entity = 'm' AND "
                      "entity_id > 9000",
                      s, sizeof(s)),
              "{\"id\":9001,\"r\":9e999,\"v\":\"text\"} {\"id\":9002,\"r\":9e999,\"v\":1} "
              "{\"id\":9003,\"r\":-9e999,\"v\":0.5}");
    CHECK(isinf(logged_real(&f, 9001, "r", &ok)) && ok);
    CHECK(logged_real(&f, 9003, "r", &ok) == -INFINITY && ok);
    /* NaN is NULL to SQLite already. */
    CHECK(fx_exec(&f, "UPDATE m SET r = 1e999 - 1e999 WHERE id = 9001") == SQLITE_OK);
    CHECK_STR(
        fx_text(&f, "SELECT data FROM _rhtmx_sync_log ORDER BY version DESC LIMIT 1", s, sizeof(s)),
        "{\"id\":9001,\"r\":null,\"v\":\"text\"}");

    /* A log written by template t3 (reals rounded to 15 digits, a bare Inf): the
     * upgrade logs every row holding a real again, exactly, and no other row. */
    {
        long long before;
        CHECK(fx_exec(&f,
                      "DELETE FROM m WHERE id < 9000; INSERT INTO m VALUES (1, 5, 'five');"
                      "UPDATE _rhtmx_sync_log SET data = replace(data, '9e999', 'Inf');"
                      "UPDATE _rhtmx_sync_tables SET signature = 't3' || substr(signature, 3)") ==
              SQLITE_OK);
        schema_free(f.schema);
        f.schema = schema_load(f.db, f.cfg, &e);
        before = log_count(&f);
        CHECK(f.schema != NULL && schema_install(f.db, f.schema, NULL, &e) == 0);
        CHECK_INT(log_count(&f), before + 3);
        CHECK_STR(fx_text(&f,
                          "SELECT group_concat(action || ' ' || data, ' ') FROM (SELECT * FROM "
                          "_rhtmx_sync_log ORDER BY version DESC LIMIT 3)",
                          s, sizeof(s)),
                  "update {\"id\":9003,\"r\":-9e999,\"v\":0.5} update {\"id\":9002,\"r\":9e999,"
                  "\"v\":1} update {\"id\":1,\"r\":5.0,\"v\":\"five\"}");
    }
    fx_close(&f);
}

int
main(void)
{
    struct fixture f;
    struct err e;
    char s[4096];
    int changed = -1;

    test_reals();
    test_upgrade_is_linear();

    CHECK(fx_open(&f, SCHEMA, CFG) == 0);

    /* Rows that predate the triggers are in the log once, as creates, in key order. */
    CHECK_INT(log_count(&f), 3);
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_log WHERE action = 'create'"), 3);
    CHECK_INT(db_head(f.db, &e), 3);
    CHECK_INT(fx_int(&f, "SELECT version FROM _rhtmx_sync_log WHERE entity_id = 3"), 3);
    CHECK_INT(fx_int(&f, "SELECT typeof(entity_id) = 'integer' FROM _rhtmx_sync_log LIMIT 1"), 1);
    CHECK_STR(fx_text(&f, "SELECT data FROM _rhtmx_sync_log WHERE entity_id = 2", s, sizeof(s)),
              "{\"id\":2,\"title\":\"two\",\"done\":0}");

    /* Installing again changes nothing. */
    CHECK(schema_install(f.db, f.schema, &changed, &e) == 0);
    CHECK_INT(changed, 0);
    CHECK_INT(log_count(&f), 3);

    /* A plain INSERT, as the PHP app or the sqlite3 shell would do it. */
    CHECK(fx_exec(&f, "INSERT INTO todos (title) VALUES ('it''s \"quoted\"')") == SQLITE_OK);
    CHECK_INT(db_head(f.db, &e), 4);
    CHECK_STR(fx_text(&f, "SELECT data FROM _rhtmx_sync_log WHERE version = 4", s, sizeof(s)),
              "{\"id\":4,\"title\":\"it's \\\"quoted\\\"\",\"done\":0}");
    CHECK(fx_int(&f, "SELECT client_id IS NULL FROM _rhtmx_sync_log WHERE version = 4") == 1);

    /* An UPDATE that changes nothing logs nothing; a real one logs the new row. */
    CHECK(fx_exec(&f, "UPDATE todos SET done = 0 WHERE id = 1") == SQLITE_OK);
    CHECK_INT(log_count(&f), 4);
    CHECK(fx_exec(&f, "UPDATE todos SET done = 1 WHERE id = 1") == SQLITE_OK);
    CHECK_STR(fx_text(&f, "SELECT action || ' ' || data FROM _rhtmx_sync_log WHERE version = 5", s,
                      sizeof(s)),
              "update {\"id\":1,\"title\":\"one\",\"done\":1}");

    /* Changing the key is a delete of the old key and a create of the new one. */
    CHECK(fx_exec(&f, "UPDATE todos SET id = 100 WHERE id = 2") == SQLITE_OK);
    CHECK_STR(fx_text(&f, "SELECT group_concat(action || ':' || entity_id, ',') FROM (SELECT * "
                          "FROM _rhtmx_sync_log WHERE version > 5 ORDER BY version)",
                      s, sizeof(s)),
              "delete:2,create:100");

    /* A key change together with another column: the create carries the new row. */
    CHECK(fx_exec(&f, "UPDATE todos SET id = 101, title = 'two!' WHERE id = 100") == SQLITE_OK);
    CHECK_STR(fx_text(&f, "SELECT group_concat(action || ':' || entity_id || ':' || "
                          "coalesce(data, '-'), ',') FROM (SELECT * FROM _rhtmx_sync_log "
                          "WHERE version > 7 ORDER BY version)",
                      s, sizeof(s)),
              "delete:100:-,create:101:{\"id\":101,\"title\":\"two!\",\"done\":0}");
    /* Three triggers per table: a key change is a branch of the update trigger. */
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND "
                         "tbl_name = 'todos'"),
              3);

    /* DELETE leaves a tombstone without data. */
    CHECK(fx_exec(&f, "DELETE FROM todos WHERE id = 3") == SQLITE_OK);
    CHECK_INT(fx_int(&f, "SELECT data IS NULL FROM _rhtmx_sync_log WHERE action = 'delete' AND "
                         "entity_id = 3"),
              1);

    /* A rolled-back write leaves no trace and does not burn a version. */
    {
        long long head = db_head(f.db, &e);
        CHECK(fx_exec(&f, "BEGIN; INSERT INTO todos (title) VALUES ('ghost'); ROLLBACK") ==
              SQLITE_OK);
        CHECK_INT(db_head(f.db, &e), head);
        CHECK_INT(fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_log WHERE data LIKE '%ghost%'"), 0);
    }

    /* Text keys stay text; versions are global across entities. */
    CHECK(fx_exec(&f, "INSERT INTO notes VALUES ('a-1', 'hello')") == SQLITE_OK);
    CHECK_INT(fx_int(&f, "SELECT typeof(entity_id) = 'text' FROM _rhtmx_sync_log WHERE entity = "
                         "'notes'"),
              1);
    CHECK_INT(fx_int(&f, "SELECT count(*) = count(DISTINCT version) AND max(version) = (SELECT "
                         "value FROM _rhtmx_sync_state WHERE key = 'head') FROM _rhtmx_sync_log"),
              1);
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM (SELECT version, lag(version) OVER (ORDER BY id) "
                         "AS prev FROM _rhtmx_sync_log) WHERE prev >= version"),
              0);

    /* A table that gains a column: the schema is stale, triggers are rebuilt, and
     * every row is logged again with the new column. */
    CHECK(fx_exec(&f, "ALTER TABLE todos ADD COLUMN due TEXT") == SQLITE_OK);
    CHECK(schema_stale(f.db, f.schema));
    schema_free(f.schema);
    f.schema = schema_load(f.db, f.cfg, &e);
    CHECK(f.schema != NULL);
    {
        long long before = log_count(&f), rows = fx_int(&f, "SELECT count(*) FROM todos");
        CHECK(schema_install(f.db, f.schema, &changed, &e) == 0);
        CHECK_INT(changed, 1);
        CHECK_INT(log_count(&f), before + rows);
        CHECK(!schema_stale(f.db, f.schema));
    }
    CHECK(fx_exec(&f, "UPDATE todos SET due = '2026-12-01' WHERE id = 1") == SQLITE_OK);
    CHECK_STR(fx_text(&f, "SELECT data FROM _rhtmx_sync_log ORDER BY version DESC LIMIT 1", s,
                      sizeof(s)),
              "{\"id\":1,\"title\":\"one\",\"done\":1,\"due\":\"2026-12-01\"}");

    /* Someone dropped a trigger: no longer installed; install restores it. */
    CHECK(fx_exec(&f, "DROP TRIGGER _rhtmx_sync_todos_insert") == SQLITE_OK);
    CHECK(!schema_installed(f.db, &f.schema->tables[0]));
    CHECK(schema_install(f.db, f.schema, &changed, &e) == 0);
    CHECK_INT(changed, 1);
    CHECK(schema_installed(f.db, &f.schema->tables[0]));

    /* Blobs are hex text in the JSON, in a text key too; an INTEGER PRIMARY KEY
     * (no blob guard in the trigger) still logs its integer. */
    CHECK(fx_exec(&f, "INSERT INTO notes VALUES (x'00ff', x'cafe')") == SQLITE_OK);
    CHECK_STR(fx_text(&f, "SELECT data FROM _rhtmx_sync_log ORDER BY version DESC LIMIT 1", s,
                      sizeof(s)),
              "{\"uuid\":\"00FF\",\"body\":\"CAFE\"}");
    CHECK(fx_exec(&f, "INSERT INTO todos (id, title) VALUES ('77', x'01')") == SQLITE_OK);
    CHECK_STR(fx_text(&f, "SELECT data FROM _rhtmx_sync_log ORDER BY version DESC LIMIT 1", s,
                      sizeof(s)),
              "{\"id\":77,\"title\":\"01\",\"done\":0,\"due\":null}");

    /* Our migration number lives in user_version. */
    CHECK_INT(fx_int(&f, "PRAGMA user_version"), DB_USER_VERSION_BASE + DB_SCHEMA_VERSION);
    CHECK_STR(fx_text(&f, "PRAGMA journal_mode", s, sizeof(s)), "wal");

    /* The last connection to close keeps the -wal and -shm files (the next
     * process, a CGI request, need not create them again), the WAL emptied. */
    {
        struct stat sb;
        char wal[80], shm[80];
        snprintf(wal, sizeof(wal), "%s-wal", f.path);
        snprintf(shm, sizeof(shm), "%s-shm", f.path);
        schema_free(f.schema);
        f.schema = NULL;
        db_free(f.db);
        f.db = NULL;
        CHECK(stat(wal, &sb) == 0 && sb.st_size == 0);
        CHECK(stat(shm, &sb) == 0);
        f.db = db_open(f.path, &e);
        CHECK(f.db != NULL);
        CHECK_STR(fx_text(&f, "SELECT title FROM todos WHERE id = 101", s, sizeof(s)), "two!");
    }
    fx_close(&f);

    /* An app that numbers its own migrations with user_version keeps its number. */
    CHECK(fx_open(&f, "PRAGMA user_version = 7;" SCHEMA, CFG) == 0);
    CHECK_INT(fx_int(&f, "PRAGMA user_version"), 7);
    CHECK_INT(fx_int(&f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'schema'"),
              DB_SCHEMA_VERSION);
    CHECK(db_schema_ok(f.db));
    CHECK(db_migrate(f.db, &e) == 0);
    fx_close(&f);

    /* Wide tables (more columns than one json_object() call takes). */
    {
        struct buf sql = {0};
        int i;
        buf_adds(&sql, "CREATE TABLE wide (id INTEGER PRIMARY KEY");
        for (i = 1; i <= 130; i++)
            buf_printf(&sql, ", c%d INTEGER DEFAULT %d", i, i);
        buf_adds(&sql, "); INSERT INTO wide (id) VALUES (1);");
        CHECK(fx_open(&f, sql.p,
                      "{\"database\":\"x\",\"entities\":[\"wide\"],\"auth\":{\"mode\":\"none\"}}") ==
              0);
        CHECK_INT(fx_int(&f, "SELECT count(*) FROM json_each((SELECT data FROM _rhtmx_sync_log))"),
                  131);
        CHECK_INT(fx_int(&f, "SELECT json_extract(data, '$.c130') FROM _rhtmx_sync_log"), 130);
        /* a real past the first json_object() chunk is exact too */
        CHECK(fx_exec(&f, "UPDATE wide SET c130 = 0.30000000000000004") == SQLITE_OK);
        CHECK_INT(fx_int(&f, "SELECT data LIKE '%,\"c130\":0.30000000000000004}' FROM "
                             "_rhtmx_sync_log ORDER BY version DESC LIMIT 1"),
                  1);
        fx_close(&f);
        buf_free(&sql);
    }

    /* An install by the previous trigger template (t2: a fourth trigger for key
     * changes) is rebuilt in the new shape: the old trigger is gone, rows already
     * in the log are not logged again, and a key change is still logged once. */
    {
        long long before;
        CHECK(fx_open(&f, SCHEMA, CFG) == 0);
        CHECK(fx_exec(&f, "CREATE TRIGGER _rhtmx_sync_todos_rekey AFTER UPDATE ON todos WHEN "
                          "OLD.id IS NOT NEW.id BEGIN SELECT 1; END;"
                          "UPDATE _rhtmx_sync_tables SET signature = 't2' || substr(signature, 3) "
                          "WHERE entity = 'todos'") == SQLITE_OK);
        schema_free(f.schema);
        f.schema = schema_load(f.db, f.cfg, &e);
        CHECK(f.schema != NULL && !schema_installed(f.db, &f.schema->tables[0]));
        before = log_count(&f);
        CHECK(f.schema != NULL && schema_install(f.db, f.schema, &changed, &e) == 0);
        CHECK_INT(changed, 1);
        CHECK_INT(log_count(&f), before);
        CHECK_INT(fx_int(&f, "SELECT count(*) FROM sqlite_master WHERE name = "
                             "'_rhtmx_sync_todos_rekey'"),
                  0);
        CHECK(fx_exec(&f, "UPDATE todos SET id = 50 WHERE id = 1") == SQLITE_OK);
        CHECK_INT(log_count(&f), before + 2);
        fx_close(&f);
    }

    /* Config problems found against the database name the config file. */
    {
        static const struct {
            int line;
            const char *cfg, *want;
        } bad[] = {
            {__LINE__, "{\"database\":\"x\",\"entities\":[\"nope\"],\"auth\":{\"mode\":\"none\"}}",
             "test.json: entity 'nope': table 'nope' does not exist"},
            {__LINE__,
             "{\"database\":\"x\",\"entities\":[{\"name\":\"todos\",\"key\":\"uuid\"}],\"auth\":{"
             "\"mode\":\"none\"}}",
             "test.json: entity 'todos': table 'todos' has no key column 'uuid'"},
            {__LINE__,
             "{\"database\":\"x\",\"entities\":[{\"name\":\"todos\",\"owner_column\":\"uid\"}],"
             "\"auth\":{\"mode\":\"none\"}}",
             "has no owner column 'uid'"},
        };
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct schema *sc;
            struct config *c;
            CHECK(fx_open(&f, SCHEMA, CFG) == 0);
            c = config_parse("test.json", bad[i].cfg, strlen(bad[i].cfg), &e);
            sc = c ? schema_load(f.db, c, &e) : NULL;
            CHECK_AT(bad[i].line, sc == NULL && strstr(e.msg, bad[i].want) != NULL, "got: %s",
                     e.msg);
            schema_free(sc);
            config_free(c);
            fx_close(&f);
        }
    }
    return check_done("test-capture");
}
