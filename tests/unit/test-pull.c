/* Pull: the answer's shape and the cursor rules of the contract. */
#include "changelog.h"
#include "fixture.h"
#include "jsonr.h"

#define CFG "{\"database\":\"x\",\"entities\":[\"todos\",\"tags\"],\"auth\":{\"mode\":\"none\"}}"
#define SCHEMA                                                                                     \
    "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL);"                           \
    "CREATE TABLE tags (id TEXT PRIMARY KEY, label TEXT);"

/* Pull into a parsed JSON object (caller puts), or NULL with e set. */
static struct json_object *
pull(struct fixture *f, const char *entity, long long since, long long limit, struct err *e)
{
    struct buf b = {0};
    struct sink s = buf_sink(&b);
    struct pull_args a = {entity, since, limit, NULL, 0, NULL, NULL};
    struct json_object *o = NULL;

    if (changelog_pull(f->db, &a, &s, e) == 0) {
        o = jsonr_parse(b.p, b.len, 32, e);
        if (o == NULL)
            fprintf(stderr, "unparsable pull answer: %s\n", b.p);
    } else {
        CHECK_AT(__LINE__, b.len == 0, "a failed pull wrote %zu bytes", b.len);
    }
    buf_free(&b);
    return o;
}

static long long
get_int(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -999;
}

static struct json_object *
changes(struct json_object *o)
{
    struct json_object *v = NULL;
    json_object_object_get_ex(o, "changes", &v);
    return v;
}

static int
has_more(struct json_object *o)
{
    struct json_object *v;
    return json_object_object_get_ex(o, "has_more", &v) && json_object_get_boolean(v);
}

int
main(void)
{
    struct fixture f;
    struct json_object *o, *c, *ch;
    struct err e;
    char sql[200];
    int i;

    CHECK(fx_open(&f, SCHEMA, CFG) == 0);

    /* Empty: no changes, cursor = head = 0. */
    o = pull(&f, "todos", 0, 10, &e);
    CHECK(o != NULL && json_object_array_length(changes(o)) == 0);
    CHECK_INT(get_int(o, "version"), 0);
    CHECK(!has_more(o));
    CHECK_STR(json_object_get_string(json_object_object_get(o, "entity")), "todos");
    json_object_put(o);

    for (i = 1; i <= 5; i++) {
        snprintf(sql, sizeof(sql), "INSERT INTO todos (title) VALUES ('t%d')", i);
        fx_exec(&f, sql);
    }
    fx_exec(&f, "INSERT INTO tags VALUES ('red', 'Red')"); /* version 6 */

    /* Paging: has_more -> cursor is the last change's version. */
    o = pull(&f, "todos", 0, 2, &e);
    c = changes(o);
    CHECK_INT(json_object_array_length(c), 2);
    CHECK(has_more(o));
    CHECK_INT(get_int(o, "version"), 2);
    ch = json_object_array_get_idx(c, 0);
    CHECK(json_object_is_type(json_object_object_get(ch, "id"), json_type_int));
    CHECK_INT(get_int(ch, "id"), 1);
    CHECK_STR(json_object_get_string(json_object_object_get(ch, "action")), "create");
    CHECK(json_object_is_type(json_object_object_get(ch, "data"), json_type_object));
    CHECK_STR(json_object_get_string(
                  json_object_object_get(json_object_object_get(ch, "data"), "title")),
              "t1");
    json_object_put(o);

    /* Last page: no has_more -> cursor is the global head (6, a tags change),
     * not the last todos version (5). */
    o = pull(&f, "todos", 4, 2, &e);
    CHECK_INT(json_object_array_length(changes(o)), 1);
    CHECK(!has_more(o));
    CHECK_INT(get_int(o, "version"), 6);
    json_object_put(o);

    /* Exactly `limit` rows left: has_more is false (limit+1 probe). */
    o = pull(&f, "todos", 3, 2, &e);
    CHECK_INT(json_object_array_length(changes(o)), 2);
    CHECK(!has_more(o));
    json_object_put(o);

    /* A quiet entity: nothing new, cursor moves to the head. */
    o = pull(&f, "tags", 6, 10, &e);
    CHECK_INT(json_object_array_length(changes(o)), 0);
    CHECK_INT(get_int(o, "version"), 6);
    json_object_put(o);

    /* Text keys are JSON strings. */
    o = pull(&f, "tags", 0, 10, &e);
    ch = json_object_array_get_idx(changes(o), 0);
    CHECK(json_object_is_type(json_object_object_get(ch, "id"), json_type_string));
    CHECK_STR(json_object_get_string(json_object_object_get(ch, "id")), "red");
    json_object_put(o);

    /* Several changes to one row after the cursor: only the newest is sent. */
    fx_exec(&f, "UPDATE todos SET title = 'a' WHERE id = 1"); /* 7 */
    fx_exec(&f, "UPDATE todos SET title = 'b' WHERE id = 1"); /* 8 */
    fx_exec(&f, "DELETE FROM todos WHERE id = 2");            /* 9 */
    o = pull(&f, "todos", 6, 10, &e);
    c = changes(o);
    CHECK_INT(json_object_array_length(c), 2);
    ch = json_object_array_get_idx(c, 0);
    CHECK_INT(get_int(ch, "version"), 8);
    CHECK_STR(json_object_get_string(
                  json_object_object_get(json_object_object_get(ch, "data"), "title")),
              "b");
    ch = json_object_array_get_idx(c, 1);
    CHECK_STR(json_object_get_string(json_object_object_get(ch, "action")), "delete");
    CHECK(json_object_object_get(ch, "data") == NULL);
    CHECK_INT(get_int(ch, "id"), 2);
    json_object_put(o);

    /* A full sync leaves tombstones out: only live rows. */
    o = pull(&f, "todos", 0, 100, &e);
    c = changes(o);
    CHECK_INT(json_object_array_length(c), 4);
    for (i = 0; i < (int)json_object_array_length(c); i++)
        CHECK_AT(__LINE__, get_int(json_object_array_get_idx(c, i), "id") != 2, "deleted row sent");
    json_object_put(o);

    /* The pushing client's id travels with its changes. */
    fx_exec(&f, "UPDATE _rhtmx_sync_context SET client_id = 'c-1';"
                "UPDATE todos SET title = 'c' WHERE id = 3;"
                "UPDATE _rhtmx_sync_context SET client_id = NULL;");
    o = pull(&f, "todos", 9, 10, &e);
    ch = json_object_array_get_idx(changes(o), 0);
    CHECK_STR(json_object_get_string(json_object_object_get(ch, "client_id")), "c-1");
    json_object_put(o);

    /* A cursor older than the compaction horizon: 410 with the head, nothing written. */
    fx_exec(&f, "UPDATE _rhtmx_sync_state SET value = 5 WHERE key = 'horizon'");
    o = pull(&f, "todos", 3, 10, &e);
    CHECK(o == NULL);
    CHECK_INT(e.status, 410);
    CHECK_STR(e.code, "resync_required");
    CHECK_INT(e.version, 10);
    o = pull(&f, "todos", 5, 10, &e); /* at the horizon is fine */
    CHECK(o != NULL);
    json_object_put(o);
    o = pull(&f, "todos", 0, 10, &e); /* a full sync is always fine */
    CHECK(o != NULL);
    json_object_put(o);

    /* The generated per-entity query, as sync-pull runs it on every request, is
     * prepared once per connection: the same statement answers both pulls. */
    {
        struct buf sql_text = {0}, b1 = {0}, b2 = {0};
        struct sink s1 = buf_sink(&b1), s2 = buf_sink(&b2);
        struct pull_args a = {"todos", 0, 10, NULL, 1, NULL, NULL};
        sqlite3_stmt *st, *kept = NULL;

        schema_pull_sql(&sql_text, schema_table(f.schema, "todos"));
        a.sql = sql_text.p;
        CHECK(changelog_pull(f.db, &a, &s1, &e) == 0);
        CHECK(changelog_pull(f.db, &a, &s2, &e) == 0);
        CHECK(b1.len > 0 && b1.len == b2.len && memcmp(b1.p, b2.p, b1.len) == 0);
        for (st = sqlite3_next_stmt(f.db->h, NULL); st != NULL; st = sqlite3_next_stmt(f.db->h, st))
            if (strcmp(sqlite3_sql(st), sql_text.p) == 0)
                kept = st;
        CHECK(kept != NULL); /* still prepared after the pulls */
        CHECK_INT(kept ? sqlite3_stmt_status(kept, SQLITE_STMTSTATUS_RUN, 0) : 0, 2);
        buf_free(&b1);
        buf_free(&b2);
        buf_free(&sql_text);
    }

    fx_close(&f);
    return check_done("test-pull");
}
