/*
 * fuzz-push: the push body, through push_batch, the one public entry of
 * lib/push.c: every input is parsed (and, when it is a valid batch, applied)
 * against a scratch database with an integer-keyed and a text-keyed entity.
 *
 * TODO(lead): lib/push.c parses the body in a static batch_parse(); exposing
 * it (e.g. push_parse()/push_batch_free() in push.h) would let this target
 * fuzz the parser alone, many times faster than a write transaction per
 * input. Until then the parser is reached through push_batch.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "fuzz.h"
#include "jsonr.h"
#include "push.h"
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long calls;
    struct push_opts o = {.max_changes = 50, .now_ms = 1700000000000LL};
    struct buf out = {0};
    struct err e;
    size_t i;

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
