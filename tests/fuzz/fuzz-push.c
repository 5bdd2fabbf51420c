/*
 * fuzz-push: the push body. Every input goes through push_body_parse (the
 * declared shape, checked against its invariants here) and then through
 * push_batch, the whole push, against a scratch database with an
 * integer-keyed and a text-keyed entity, so what the parser lets through is
 * also applied.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "fuzz.h"
#include "jsonr.h"
#include "push.h"
#include "push_body.h"
#include "schema.h"

static struct config *cfg;
static struct db *db;
static struct schema *schema;

static void
setup(void)
{
    static char dir[] = "/tmp/rhtmx-fuzz-push-XXXXXX";
    static const char text[] =
        "{\"database\":\"app.db\",\"entities\":[\"todos\",{\"name\":\"tags\",\"strategy\":"
        "\"merge\"}],\"auth\":{\"mode\":\"none\"}}";
    char path[128];
    sqlite3 *raw;
    struct err e;

    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/app.db", dir);
    if (sqlite3_open(path, &raw) != SQLITE_OK)
        abort();
    sqlite3_exec(raw,
                 "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL,"
                 " done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)), score REAL, blob BLOB);"
                 "CREATE TABLE tags (id TEXT PRIMARY KEY, label TEXT UNIQUE, n INTEGER);",
                 NULL, NULL, NULL);
    sqlite3_close(raw);
    cfg = config_parse("/srv/rhtmx-sync.json", text, sizeof(text) - 1, &e);
    if (cfg == NULL)
        abort();
    free(cfg->database);
    cfg->database = strdup(path);
    db = db_open(path, &e);
    if (db == NULL || db_migrate(db, &e) < 0 || (schema = schema_load(db, cfg, &e)) == NULL ||
        schema_install(db, schema, NULL, &e) < 0) {
        fprintf(stderr, "fuzz-push: setup: %s\n", e.msg);
        abort();
    }
}

/* 1 if s is 1..64 of [A-Za-z0-9_.:-]. */
static int
valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    return n >= 1 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") == n;
}

static void
check_parse(const uint8_t *data, size_t size)
{
    struct push_body b;
    struct err e;
    size_t i, j;

    memset(&b, 0, sizeof(b));
    if (push_body_parse(&b, (const char *)data, size, 50, &e) < 0) {
        FUZZ_ASSERT(e.status == 400 || e.status == 413);
        push_body_free(&b);
        return;
    }
    FUZZ_ASSERT(valid_id(b.client_id));
    FUZZ_ASSERT(b.n <= 50);
    for (i = 0; i < b.n; i++) {
        const struct push_change *c = &b.changes[i];
        FUZZ_ASSERT(valid_id(c->mutation_id));
        for (j = 0; j < i; j++)
            FUZZ_ASSERT(strcmp(b.changes[j].mutation_id, c->mutation_id) != 0);
        FUZZ_ASSERT(c->client_version >= 0);
        FUZZ_ASSERT(c->id != NULL || c->action == PUSH_CREATE);
        FUZZ_ASSERT(c->id == NULL || json_object_is_type(c->id, json_type_int) ||
                    json_object_is_type(c->id, json_type_string));
        if (c->action == PUSH_DELETE)
            FUZZ_ASSERT(c->data == NULL);
        else
            FUZZ_ASSERT(c->data != NULL && json_object_is_type(c->data, json_type_object));
        FUZZ_ASSERT(push_action_name(c->action) != NULL);
    }
    push_body_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long calls;
    struct push_opts o = {.max_changes = 50, .now_ms = 1700000000000LL};
    struct buf out = {0};
    struct err e;
    size_t i;

    check_parse(data, size);
    if (cfg == NULL)
        setup();
    if (++calls % 2000 == 0) /* keep the scratch database small */
        db_exec(db, "DELETE FROM todos; DELETE FROM tags; DELETE FROM _rhtmx_sync_log;"
                    " DELETE FROM _rhtmx_sync_mutations;", &e);
    for (i = 0; i < schema->ntables; i++) {
        err_clear(&e);
        buf_reset(&out);
        if (push_batch(db, &schema->tables[i], &o, (const char *)data, size, &out, &e) == 0) {
            struct json_object *answer = jsonr_parse(out.p, out.len, 16, &e);
            FUZZ_ASSERT(answer != NULL && json_object_is_type(answer, json_type_object));
            json_object_put(answer);
        } else {
            if (!(e.status == 400 || e.status == 413 || e.status == 503))
                fprintf(stderr, "fuzz-push: %d %s: %s\n", e.status, e.code, e.msg);
            FUZZ_ASSERT(e.status == 400 || e.status == 413 || e.status == 503);
        }
    }
    buf_free(&out);
    return 0;
}
