/* Config parsing: every mistake is one message naming the file and the problem. */
#include <stdlib.h>

#include "check.h"
#include "config.h"

static const struct {
    int line;
    const char *json;
    const char *want; /* NULL: must load; else a substring of the error */
} cases[] = {
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"none\"}}", NULL},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"todos\"]}", "\"auth\" is required"},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"nope\"}}",
     "unknown auth mode 'nope'"},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"token\"}}",
     "needs \"secret_file\""},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"none\"},\"colour\":1}",
     "unknown key 'colour' in the top level"},
    {__LINE__, "{\"entities\":[\"todos\"],\"auth\":{\"mode\":\"none\"}}", "\"database\" is required"},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[],\"auth\":{\"mode\":\"none\"}}", "1 to 256"},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"bad-name\"],\"auth\":{\"mode\":\"none\"}}",
     "entity name 'bad-name' is not valid"},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"events\"],\"auth\":{\"mode\":\"none\"}}",
     "is reserved"},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"a\",\"a\"],\"auth\":{\"mode\":\"none\"}}",
     "listed twice"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[{\"name\":\"t\",\"strategy\":\"coin-flip\"}],"
     "\"auth\":{\"mode\":\"none\"}}",
     "unknown strategy 'coin-flip'"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[{\"name\":\"t\",\"tabel\":\"x\"}],\"auth\":{\"mode\":\"none\"}}",
     "unknown key 'tabel' in an entity"},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[{\"table\":\"x\"}],\"auth\":{\"mode\":\"none\"}}",
     "needs a \"name\""},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[7],\"auth\":{\"mode\":\"none\"}}",
     "must be a name or an object"},
    {__LINE__, "{\"database\":1,\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\"}}",
     "'database' in the top level must be a string"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\"},\"pull\":{\"max_limit\":0}}",
     "'max_limit' must be within 1..10000"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\"},\"events\":{\"mode\":\"x\"}}",
     "unknown events mode 'x'"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\","
     "\"allowed_origins\":[\"https://a.example\",\"http://127.0.0.1:8080/\"]}}",
     NULL},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\","
     "\"allowed_origins\":[\"a.example\"]}}",
     "entry 'a.example' is not an origin"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\","
     "\"allowed_origins\":[\"https://a.example/app\"]}}",
     "is not an origin"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\","
     "\"allowed_origins\":[\"*\"]}}",
     "entry '*' is not an origin"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\","
     "\"allowed_origins\":[\"https://*.example\"]}}",
     "is not an origin"},
    {__LINE__, "{\"database\":\"a.db\",", "invalid JSON"},
    {__LINE__, "{\"database\":\"a.db\"} trailing", "invalid JSON"},
    {__LINE__, "[1,2]", "must be a JSON object"},
    {__LINE__, "", "invalid JSON"},
};

int
main(void)
{
    struct config *c;
    struct err e;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err_clear(&e);
        c = config_parse("/srv/conf/rhtmx-sync.json", cases[i].json, strlen(cases[i].json), &e);
        if (cases[i].want == NULL) {
            CHECK_AT(cases[i].line, c != NULL, "should load, got: %s", e.msg);
        } else {
            CHECK_AT(cases[i].line, c == NULL, "should fail with \"%s\"", cases[i].want);
            CHECK_AT(cases[i].line, strstr(e.msg, cases[i].want) != NULL, "message \"%s\" lacks \"%s\"",
                     e.msg, cases[i].want);
            CHECK_AT(cases[i].line, strncmp(e.msg, "/srv/conf/rhtmx-sync.json: ", 27) == 0,
                     "message does not start with the file: %s", e.msg);
            CHECK_AT(cases[i].line, e.status == 500 && strcmp(e.code, "config") == 0, "status %d",
                     e.status);
            CHECK_AT(cases[i].line, strchr(e.msg, '\n') == NULL, "message spans lines");
        }
        config_free(c);
    }

    /* Defaults, object entities, and path resolution against the file's folder. */
    {
        const char *j = "{\"database\":\"data/app.db\",\"entities\":[\"users\",{\"name\":\"todos\","
                        "\"table\":\"todo_items\",\"key\":\"uuid\",\"strategy\":\"merge\","
                        "\"offline_writes\":false,\"owner_column\":\"user_id\"}],"
                        "\"auth\":{\"mode\":\"token\",\"secret_file\":\"/etc/sync.secret\"}}";
        c = config_parse("/srv/conf/rhtmx-sync.json", j, strlen(j), &e);
        CHECK(c != NULL);
        if (c != NULL) {
            CHECK_STR(c->database, "/srv/conf/data/app.db");
            CHECK_INT(c->nentities, 2);
            CHECK_STR(c->entities[0].table, "users");
            CHECK_STR(c->entities[0].key, "id");
            CHECK_INT(c->entities[0].strategy, STRATEGY_LWW);
            CHECK_INT(c->entities[0].offline_writes, 1);
            CHECK(c->entities[0].owner_column == NULL);
            CHECK_STR(c->entities[1].table, "todo_items");
            CHECK_STR(c->entities[1].key, "uuid");
            CHECK_INT(c->entities[1].strategy, STRATEGY_MERGE);
            CHECK_INT(c->entities[1].offline_writes, 0);
            CHECK_STR(c->entities[1].owner_column, "user_id");
            CHECK_INT(c->auth.mode, AUTH_TOKEN);
            CHECK_STR(c->auth.secret_file, "/etc/sync.secret");
            CHECK_STR(c->auth.cookie, "rhtmx_sync");
            CHECK_INT(c->pull.max_limit, 1000);
            CHECK_INT(c->pull.default_limit, 1000);
            CHECK_INT(c->events.heartbeat, 15);
            CHECK(config_entity(c, "todos") == &c->entities[1]);
            CHECK(config_entity(c, "nope") == NULL);
        }
        config_free(c);
    }

    /* A missing file is one line naming it. */
    c = config_load("/nonexistent/rhtmx-sync.json", &e);
    CHECK(c == NULL);
    CHECK_CONTAINS(e.msg, "/nonexistent/rhtmx-sync.json: cannot open config file");

    /* config_locate: the environment wins. */
    setenv("RHTMX_SYNC_CONFIG", "/x/y.json", 1);
    {
        char *p = config_locate();
        CHECK_STR(p, "/x/y.json");
        free(p);
    }
    unsetenv("RHTMX_SYNC_CONFIG");
    {
        char *p = config_locate();
        CHECK(p != NULL && strstr(p, "/rhtmx-sync.json") != NULL);
        free(p);
    }
    config_free(NULL);
    return check_done("test-config");
}
