/*
 * fuzz-config: config_parse, the parser of the one JSON file every executable
 * reads. Input: the file's text. A parse either fails with a 500 "config"
 * error naming the file, or yields a config whose invariants hold.
 */
#include <string.h>

#include "config.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err e;
    struct config *c;
    size_t i;

    err_clear(&e);
    c = config_parse("/srv/sync/rhtmx-sync.json", (const char *)data, size, &e);
    if (c == NULL) {
        FUZZ_ASSERT(e.status == 500 && strcmp(e.code, "config") == 0);
        FUZZ_ASSERT(strncmp(e.msg, "/srv/sync/rhtmx-sync.json: ", 27) == 0);
        return 0;
    }
    FUZZ_ASSERT(c->database != NULL && c->database[0] == '/');
    FUZZ_ASSERT(c->nentities >= 1);
    for (i = 0; i < c->nentities; i++) {
        const struct entity *en = &c->entities[i];
        FUZZ_ASSERT(config_valid_name(en->name));
        FUZZ_ASSERT(en->table != NULL && en->key != NULL);
        FUZZ_ASSERT(strncmp(en->table, "_rhtmx", 6) != 0 && strncmp(en->table, "sqlite_", 7) != 0);
        FUZZ_ASSERT(config_entity(c, en->name) == en);
        FUZZ_ASSERT(strategy_name(en->strategy) != NULL);
    }
    FUZZ_ASSERT(c->auth.mode == AUTH_NONE || c->auth.mode == AUTH_TOKEN);
    FUZZ_ASSERT(c->auth.mode == AUTH_NONE || c->auth.secret_file != NULL);
    FUZZ_ASSERT(c->auth.cookie != NULL && c->auth.cookie[0] != '\0');
    for (i = 0; i < c->auth.norigins; i++)
        FUZZ_ASSERT(c->auth.allowed_origins[i] != NULL);
    FUZZ_ASSERT(c->pull.default_limit >= 1 && c->pull.default_limit <= c->pull.max_limit &&
                c->pull.max_limit <= 10000);
    FUZZ_ASSERT(c->push.max_changes >= 1);
    config_free(c);
    return 0;
}
