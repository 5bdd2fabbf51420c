/* Config parsing: every mistake is one message naming the file and the problem;
 * config_keys is the one declaration of the keys, and the README's table is it. */
#include <limits.h>
#include <stdlib.h>

#include "buf.h"
#include "check.h"
#include "config.h"

#define MINIMAL "\"database\":\"a.db\",\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\"}"

static const struct {
    int line;
    const char *json;
    const char *want; /* NULL: must load; else a substring of the error */
} cases[] = {
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"none\"}}",
     NULL},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"todos\"]}", "\"auth\" is required"},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"nope\"}}",
     "unknown auth mode 'nope'"},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"token\"}}",
     "needs \"secret_file\""},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"none\"},\"colour\":1}",
     "unknown key 'colour' in the top level"},
    {__LINE__, "{\"entities\":[\"todos\"],\"auth\":{\"mode\":\"none\"}}",
     "\"database\" is required"},
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
     "{\"database\":\"a.db\",\"entities\":[{\"name\":\"t\",\"tabel\":\"x\"}],\"auth\":{\"mode\":"
     "\"none\"}}",
     "unknown key 'tabel' in an entity"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[{\"table\":\"x\"}],\"auth\":{\"mode\":\"none\"}}",
     "needs a \"name\""},
    {__LINE__, "{\"database\":\"a.db\",\"entities\":[7],\"auth\":{\"mode\":\"none\"}}",
     "must be a name or an object"},
    {__LINE__, "{\"database\":1,\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\"}}",
     "'database' in the top level must be a string"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\"},\"pull\":{\"max_"
     "limit\":0}}",
     "'max_limit' must be within 1..10000"},
    {__LINE__,
     "{\"database\":\"a.db\",\"entities\":[\"t\"],\"auth\":{\"mode\":\"none\"},\"events\":{"
     "\"mode\":\"x\"}}",
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
    {__LINE__, "{" MINIMAL ",\"auth.mode\":\"none\"}", "unknown key 'auth.mode' in the top level"},
    {__LINE__, "{" MINIMAL ",\"entities[]\":1}", "unknown key 'entities[]' in the top level"},
    {__LINE__, "{" MINIMAL ",\"pull\":{\"mode\":\"x\"}}", "unknown key 'mode' in \"pull\""},
    {__LINE__, "{" MINIMAL ",\"events\":{\"heartbeat\":\"5\"}}",
     "'heartbeat' in \"events\" must be an integer"},
    {__LINE__, "{" MINIMAL ",\"$comment\":[1,{}]}", NULL},
    {__LINE__, "{\"database\":\"a.db\",", "invalid JSON"},
    {__LINE__, "{\"database\":\"a.db\"} trailing", "invalid JSON"},
    {__LINE__, "[1,2]", "must be a JSON object"},
    {__LINE__, "", "invalid JSON"},
};

/* The README's configuration table, row for row, is config_keys: a key added
 * to one and not the other, or a default or bound changed in one only, fails. */
static void
readme_table_is_config_keys(void)
{
    const char *src = getenv("RHTMX_SOURCE");
    char path[4096], line[2048];
    struct buf want = {0};
    size_t row = 0;
    int in = 0;
    FILE *f;

    CHECK(src != NULL);
    if (src == NULL)
        return;
    snprintf(path, sizeof(path), "%s/README.md", src);
    f = fopen(path, "r");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (!in) {
            in = strcmp(line, "| key | default | range | meaning |") == 0;
            if (in && fgets(line, sizeof(line), f) == NULL) /* the |---| line */
                break;
            continue;
        }
        if (line[0] != '|')
            break;
        if (row < config_nkeys) {
            const struct config_key *k = &config_keys[row];
            buf_reset(&want);
            buf_printf(&want, "| `%s` | ", k->key);
            config_default_text(k, &want);
            if (k->type == CONFIG_INT && k->max == LONG_MAX)
                buf_printf(&want, " | %ld or more | ", k->min);
            else if (k->type == CONFIG_INT)
                buf_printf(&want, " | %ld to %ld | ", k->min, k->max);
            else
                buf_adds(&want, " | | ");
            buf_printf(&want, "%s |", k->doc);
            CHECK_AT(__LINE__, strcmp(line, want.p) == 0, "README row %zu:\n  is   %s\n  want %s",
                     row + 1, line, want.p);
        } else {
            CHECK_AT(__LINE__, 0, "README row %zu has no key in config_keys: %s", row + 1, line);
        }
        row++;
    }
    fclose(f);
    CHECK(in);
    CHECK_AT(__LINE__, row == config_nkeys, "README has %zu rows, config_keys %zu", row,
             config_nkeys);
    buf_free(&want);
}

/* A file that sets nothing optional gets every default of the table. */
static void
defaults_come_from_config_keys(void)
{
    const char *j = "{" MINIMAL "}";
    struct err e;
    struct config *c = config_parse("/srv/conf/rhtmx-sync.json", j, strlen(j), &e);
    size_t i;

    CHECK(c != NULL);
    for (i = 0; c != NULL && i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        const char *at = (const char *)c + k->offset;
        long v;

        if (k->type != CONFIG_INT || strncmp(k->key, "entities[]", 10) == 0)
            continue;
        v = k->size == sizeof(long) ? *(const long *)at : *(const int *)at;
        CHECK_AT(__LINE__, v == k->value, "%s: %ld, the table says %ld", k->key, v, k->value);
    }
    config_free(c);
}

/* Each bounded key, one past its bound, is refused in one line naming it. */
static void
out_of_bounds_names_the_key(void)
{
    char j[512], want[128];
    struct err e;
    struct config *c;
    size_t i;

    for (i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        const char *dot = strchr(k->key, '.');

        if (k->type != CONFIG_INT || dot == NULL)
            continue;
        snprintf(j, sizeof(j), "{" MINIMAL ",\"%.*s\":{\"%s\":%ld}}", (int)(dot - k->key), k->key,
                 dot + 1, k->min - 1);
        c = config_parse("/srv/conf/rhtmx-sync.json", j, strlen(j), &e);
        snprintf(want, sizeof(want), "'%s' must be within %ld..%ld", dot + 1, k->min, k->max);
        CHECK_AT(__LINE__, c == NULL && strstr(e.msg, want) != NULL, "%s: %s", k->key,
                 c == NULL ? e.msg : "loaded");
        CHECK_AT(__LINE__, c != NULL || strchr(e.msg, '\n') == NULL, "%s: message spans lines",
                 k->key);
        config_free(c);
    }
}

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
            CHECK_AT(cases[i].line, strstr(e.msg, cases[i].want) != NULL,
                     "message \"%s\" lacks \"%s\"", e.msg, cases[i].want);
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
    readme_table_is_config_keys();
    defaults_come_from_config_keys();
    out_of_bounds_names_the_key();
    return check_done("test-config");
}
