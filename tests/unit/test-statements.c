/*
 * Statements: one layer prepares SQL (db.c), and SQL generated from the
 * configuration quotes names with SQLite's own %w / %Q (sqlgen.c).
 */
#include <dirent.h>
#include <sqlite3.h>

#include "changelog.h"
#include "fixture.h"
#include "jsonr.h"
#include "push.h"
#include "sqlgen.h"

/* A table name with both quote characters, a column with a single quote. */
#define SCHEMA "CREATE TABLE \"odd \"\"t'\" (id INTEGER PRIMARY KEY, \"it's\" TEXT);"
#define CFG                                                                                        \
    "{\"database\":\"x\",\"entities\":[{\"name\":\"odd\",\"table\":\"odd \\\"t'\"}],"              \
    "\"auth\":{\"mode\":\"none\"}}"

/* Every lib/ and cgi-bin/ source but lib/db.c: none may prepare or run SQL
 * itself (sqlite3_prepare*, sqlite3_exec). Returns the count of offenders. */
static int
statements_prepared_only_by_db_c(void)
{
    static const char *const dirs[] = {"lib", "cgi-bin"};
    static const char *const calls[] = {"sqlite3_prepare", "sqlite3_exec("};
    const char *src = getenv("RHTMX_SOURCE");
    char path[4096], line[4096];
    int bad = 0, n, seen = 0;
    size_t i, j;

    CHECK(src != NULL);
    if (src == NULL)
        return 1;
    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        struct dirent *de;
        DIR *d;

        snprintf(path, sizeof(path), "%s/%s", src, dirs[i]);
        d = opendir(path);
        CHECK(d != NULL);
        if (d == NULL)
            continue;
        while ((de = readdir(d)) != NULL) {
            size_t len = strlen(de->d_name);
            FILE *f;

            if (len < 3 || strcmp(de->d_name + len - 2, ".c") != 0)
                continue;
            if (i == 0 && strcmp(de->d_name, "db.c") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s/%s", src, dirs[i], de->d_name);
            f = fopen(path, "r");
            CHECK(f != NULL);
            if (f == NULL)
                continue;
            seen++;
            for (n = 1; fgets(line, sizeof(line), f) != NULL; n++)
                for (j = 0; j < sizeof(calls) / sizeof(calls[0]); j++)
                    if (strstr(line, calls[j]) != NULL) {
                        CHECK_AT(__LINE__, 0, "%s:%d calls %s outside db.c", path, n, calls[j]);
                        bad++;
                    }
            fclose(f);
        }
        closedir(d);
    }
    CHECK(seen > 10);
    return bad;
}

static void
generated_sql_quotes_with_sqlite_printf(const struct table *t)
{
    char *sql;

    sql = sqlgen_delete(t);
    CHECK_STR(sql, "DELETE FROM \"odd \"\"t'\" WHERE \"id\" = ?1");
    sqlite3_free(sql);
    sql = sqlgen_row(t);
    CHECK_STR(sql, "SELECT \"id\", \"it's\" FROM \"odd \"\"t'\" WHERE \"id\" = ?1");
    sqlite3_free(sql);
    sql = sqlgen_named(SQLGEN_TABLE_XINFO, "a\"b");
    CHECK_STR(sql, "PRAGMA table_xinfo(\"a\"\"b\")");
    sqlite3_free(sql);
    sql = sqlgen_count_rows(t);
    CHECK_STR(sql, "SELECT count(*) FROM \"odd \"\"t'\"");
    sqlite3_free(sql);
}

/* The triggers, the pull's query and a push's statements all run on a table
 * whose names need quoting. */
static void
odd_names_sync_both_ways(struct fixture *f, const struct table *t)
{
    struct push_opts o = {.max_changes = 10};
    struct buf b = {0}, sql = {0};
    struct sink s = buf_sink(&b);
    struct pull_args a = {"odd", 0, 10, NULL, 0, NULL, NULL, NULL, NULL};
    struct err e;
    char out[200];
    const char *body = "{\"client_id\":\"c1\",\"changes\":[{\"mutation_id\":\"m1\",\"id\":2,"
                       "\"action\":\"create\",\"data\":{\"it's\":\"b'\\\"c\"},"
                       "\"client_version\":0}]}";

    CHECK_INT(fx_exec(f, "INSERT INTO \"odd \"\"t'\" VALUES (1, 'a''\"b')"), SQLITE_OK);
    CHECK_INT(push_batch(f->db, t, &o, body, strlen(body), &b, &e), 0);
    CHECK_STR(fx_text(f, "SELECT \"it's\" FROM \"odd \"\"t'\" WHERE id = 2", out, sizeof(out)),
              "b'\"c");
    buf_reset(&b);
    schema_pull_sql(&sql, t);
    a.sql = sql.p;
    CHECK_INT(changelog_pull(f->db, &a, &s, &e), 0);
    CHECK_CONTAINS(b.p, "{\"id\":1,\"action\":\"create\",\"data\":{\"id\":1,\"it's\":\"a'\\\"b\"}");
    CHECK_CONTAINS(b.p, "{\"id\":2,\"action\":\"create\",\"data\":{\"id\":2,\"it's\":\"b'\\\"c\"}");
    buf_free(&sql);
    buf_free(&b);
}

int
main(void)
{
    struct fixture f;
    const struct table *t;

    CHECK_INT(statements_prepared_only_by_db_c(), 0);
    CHECK(fx_open(&f, SCHEMA, CFG) == 0);
    t = schema_table(f.schema, "odd");
    CHECK(t != NULL);
    if (t != NULL) {
        generated_sql_quotes_with_sqlite_printf(t);
        odd_names_sync_both_ways(&f, t);
    }
    fx_close(&f);
    return check_done("test-statements");
}
