/* Push: one batch against a real database file, through push_batch(). */
#include "fixture.h"
#include "jsonr.h"
#include "push.h"

#define CFG                                                                                        \
    "{\"database\":\"x\",\"entities\":[\"todos\",\"tags\",{\"name\":\"notes\","                    \
    "\"offline_writes\":false},{\"name\":\"mine\",\"owner_column\":\"user_id\"}],"                 \
    "\"auth\":{\"mode\":\"none\"}}"
#define SCHEMA                                                                                     \
    "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL "      \
    "DEFAULT 0, slug TEXT UNIQUE);"                                                                \
    "CREATE TABLE tags (id TEXT PRIMARY KEY, label TEXT);"                                         \
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"                                      \
    "CREATE TABLE mine (id INTEGER PRIMARY KEY, user_id INTEGER, body TEXT);"

static struct fixture f;

/* The whole state a push could touch, as one string: "nothing changed" means equal. */
static char *
state(void)
{
    static char out[8][4096];
    static int slot;
    char *s = out[slot++ % 8];
    fx_text(&f,
            "SELECT (SELECT group_concat(id || ':' || title || ':' || done || ':' || "
            "ifnull(slug, '-'), ',') FROM todos) || '|' || (SELECT ifnull(group_concat(id || ':' "
            "|| ifnull(label, '-'), ','), '') FROM tags) || '|' || (SELECT count(*) FROM "
            "_rhtmx_sync_log) || '|' || (SELECT count(*) FROM _rhtmx_sync_mutations) || '|' || "
            "(SELECT value FROM _rhtmx_sync_state WHERE key = 'head')",
            s, 4096);
    return s;
}

/* Push body to entity; the answer as text in *text (caller frees) and parsed. */
static struct json_object *
push_at(int line, const char *entity, const char *body, const struct push_opts *o, char **text,
        struct err *e)
{
    struct push_opts def = {.max_changes = 1000};
    struct buf b = {0};
    struct json_object *a = NULL;
    const struct table *t = schema_table(f.schema, entity);

    if (text != NULL)
        *text = NULL;
    if (push_batch(f.db, t, o ? o : &def, body, strlen(body), &b, e) == 0) {
        a = jsonr_parse(b.p, b.len, 32, e);
        CHECK_AT(line, a != NULL, "unparsable answer: %s", b.p);
        if (text != NULL) {
            *text = b.p;
            b.p = NULL;
        }
    } else {
        CHECK_AT(line, b.len == 0, "a failed push wrote an answer: %s", b.p);
    }
    buf_free(&b);
    return a;
}
#define PUSH(entity, body) push_at(__LINE__, entity, body, NULL, NULL, &e)

static struct json_object *
get(struct json_object *o, const char *path)
{
    /* "a.b.0.c": members and array indexes */
    char buf[128], *p, *save = NULL;
    snprintf(buf, sizeof(buf), "%s", path);
    for (p = strtok_r(buf, ".", &save); p != NULL && o != NULL; p = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array))
            o = json_object_array_get_idx(o, (size_t)atoi(p));
        else if (!json_object_object_get_ex(o, p, &o))
            return NULL;
    }
    return o;
}

static const char *
str(struct json_object *o, const char *path)
{
    struct json_object *v = get(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "(none)";
}

static long long
num(struct json_object *o, const char *path)
{
    struct json_object *v = get(o, path);
    return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -999;
}

static size_t
len(struct json_object *o, const char *path)
{
    struct json_object *v = get(o, path);
    return v && json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 999;
}

static const char *
json(struct json_object *o, const char *path)
{
    struct json_object *v = get(o, path);
    return v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "null";
}

static void
test_basics(void)
{
    struct json_object *a;
    struct err e;
    char buf[256];

    /* create (temporary id), update and delete in one batch; integer keys are integers */
    a = PUSH("todos", "{\"client_id\":\"c1\",\"changes\":["
                      "{\"mutation_id\":\"m1\",\"id\":\"tmp-1\",\"action\":\"create\","
                      "\"data\":{\"title\":\"milk\"},\"client_version\":0},"
                      "{\"mutation_id\":\"m2\",\"action\":\"create\","
                      "\"data\":{\"title\":\"eggs\",\"done\":true},\"client_version\":0},"
                      "{\"mutation_id\":\"m3\",\"id\":\"tmp-1\",\"action\":\"update\","
                      "\"data\":{\"done\":1},\"client_version\":0},"
                      "{\"mutation_id\":\"m4\",\"id\":2,\"action\":\"delete\",\"client_version\":0}"
                      "]}");
    CHECK_STR(json(a, ""), "{\"version\":4,\"applied\":[1,2,1,2],\"ids\":{\"tmp-1\":1},"
                           "\"conflicts\":[],\"rejected\":[]}");
    json_object_put(a);
    CHECK_STR(state(), "1:milk:1:-||4|4|4");
    /* each write was logged once, by the triggers, with the pushing client's id */
    CHECK_STR(fx_text(&f,
                      "SELECT group_concat(entity_id || action || version || client_id, ' ') "
                      "FROM _rhtmx_sync_log",
                      buf, sizeof(buf)),
              "1create1c1 2create2c1 1update3c1 2delete4c1");
    /* and the client id does not stick to later writers */
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_context WHERE client_id IS NULL"), 1);
    fx_exec(&f, "UPDATE todos SET title = 'shell' WHERE id = 1");
    CHECK_INT(fx_int(&f, "SELECT client_id IS NULL FROM _rhtmx_sync_log WHERE version = 5"), 1);

    /* a temporary id from an earlier batch still maps to its row */
    a = PUSH("todos", "{\"client_id\":\"c1\",\"changes\":[{\"mutation_id\":\"m5\",\"id\":\"tmp-1\","
                      "\"action\":\"update\",\"data\":{\"title\":\"oat milk\"},"
                      "\"client_version\":5}]}");
    CHECK_STR(json(a, "applied"), "[1]");
    CHECK_STR(json(a, "ids"), "{}");
    json_object_put(a);
    CHECK_STR(state(), "1:oat milk:1:-||6|5|6");

    /* ... but not for another client */
    a = PUSH("todos", "{\"client_id\":\"c2\",\"changes\":[{\"mutation_id\":\"m5\",\"id\":\"tmp-1\","
                      "\"action\":\"update\",\"data\":{\"title\":\"x\"},\"client_version\":6}]}");
    CHECK_STR(str(a, "rejected.0.code"), "not_found");
    CHECK_STR(json(a, "rejected.0.id"), "\"tmp-1\"");
    json_object_put(a);

    /* a delete of a missing row is acknowledged; an update of one is rejected */
    a = PUSH("todos",
             "{\"client_id\":\"c1\",\"changes\":["
             "{\"mutation_id\":\"m6\",\"id\":99,\"action\":\"delete\",\"client_version\":6},"
             "{\"mutation_id\":\"m7\",\"id\":98,\"action\":\"update\",\"data\":{\"done\":0},"
             "\"client_version\":6}]}");
    CHECK_STR(json(a, "applied"), "[99]");
    CHECK_STR(str(a, "rejected.0.mutation_id"), "m7");
    CHECK_STR(str(a, "rejected.0.code"), "not_found");
    CHECK_INT(num(a, "rejected.0.id"), 98);
    json_object_put(a);

    /* text keys: strings in and out; a create needs an id there */
    a = PUSH(
        "tags",
        "{\"client_id\":\"c1\",\"changes\":["
        "{\"mutation_id\":\"t1\",\"id\":\"red\",\"action\":\"create\",\"data\":{\"label\":\"Red\"},"
        "\"client_version\":0},"
        "{\"mutation_id\":\"t2\",\"action\":\"create\",\"data\":{\"id\":\"blue\"},\"client_"
        "version\":0},"
        "{\"mutation_id\":\"t3\",\"action\":\"create\",\"data\":{\"label\":\"none\"},\"client_"
        "version\":0},"
        "{\"mutation_id\":\"t4\",\"id\":7,\"action\":\"create\",\"data\":{},\"client_version\":0},"
        "{\"mutation_id\":\"t5\",\"id\":\"tmp-9\",\"action\":\"create\",\"data\":{},\"client_"
        "version\":0}"
        "]}");
    CHECK_STR(json(a, "applied"),
              "[\"red\",\"blue\",\"tmp-9\"]"); /* tmp- is only special for integer keys */
    CHECK_STR(json(a, "ids"), "{}");
    CHECK_STR(str(a, "rejected.0.code"), "bad_change");
    CHECK_CONTAINS(str(a, "rejected.0.reason"), "a create needs an id");
    CHECK_STR(str(a, "rejected.1.code"), "bad_change");
    CHECK_CONTAINS(str(a, "rejected.1.reason"), "must be a string");
    json_object_put(a);
}

static void
test_rejected(void)
{
    struct json_object *a;
    struct err e;
    long long rows = fx_int(&f, "SELECT count(*) FROM todos");

    /* one bad change among good ones: the bad ones are rejected, the rest applies */
    a = PUSH(
        "todos",
        "{\"client_id\":\"c3\",\"changes\":["
        "{\"mutation_id\":\"r1\",\"action\":\"create\",\"data\":{\"title\":\"good "
        "1\",\"slug\":\"s\"},\"client_version\":0},"
        "{\"mutation_id\":\"r2\",\"action\":\"create\",\"data\":{\"title\":\"x\",\"colour\":"
        "\"red\"},\"client_version\":0},"
        "{\"mutation_id\":\"r3\",\"action\":\"create\",\"data\":{\"done\":1},\"client_version\":0},"
        "{\"mutation_id\":\"r4\",\"action\":\"create\",\"data\":{\"title\":\"dup\",\"slug\":\"s\"},"
        "\"client_version\":0},"
        "{\"mutation_id\":\"r5\",\"id\":\"abc\",\"action\":\"create\",\"data\":{\"title\":\"x\"},"
        "\"client_version\":0},"
        "{\"mutation_id\":\"r6\",\"action\":\"create\",\"data\":{\"title\":{\"nested\":1}},"
        "\"client_version\":0},"
        "{\"mutation_id\":\"r7\",\"id\":5,\"action\":\"create\",\"data\":{\"id\":6,\"title\":\"x\"}"
        ",\"client_version\":0},"
        "{\"mutation_id\":\"r8\",\"action\":\"create\",\"data\":{\"title\":\"good "
        "2\"},\"client_version\":0}"
        "]}");
    CHECK_INT(len(a, "applied"), 2);
    CHECK_INT(len(a, "rejected"), 6);
    CHECK_STR(str(a, "rejected.0.code"), "unknown_column");
    CHECK_STR(str(a, "rejected.0.reason"), "unknown column 'colour' in todos");
    CHECK_STR(str(a, "rejected.1.code"), "constraint");
    CHECK_STR(str(a, "rejected.1.reason"), "NOT NULL constraint failed: todos.title");
    CHECK_STR(str(a, "rejected.2.code"), "constraint");
    CHECK_STR(str(a, "rejected.2.reason"), "UNIQUE constraint failed: todos.slug");
    CHECK_STR(str(a, "rejected.3.code"), "bad_change");
    CHECK_STR(str(a, "rejected.4.code"), "bad_change");
    CHECK_STR(str(a, "rejected.5.code"), "bad_change");
    CHECK_STR(str(a, "rejected.5.mutation_id"), "r7");
    json_object_put(a);
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM todos"), rows + 2);
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM todos WHERE title IN ('x', 'dup')"), 0);
    /* nothing of the rejected changes reached the log; each stored its answer */
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_log WHERE client_id = 'c3'"), 2);
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_mutations WHERE client_id = 'c3'"), 8);

    /* an entity closed to client writes */
    a = PUSH("notes", "{\"client_id\":\"c3\",\"changes\":[{\"mutation_id\":\"n1\",\"action\":"
                      "\"create\",\"data\":{\"body\":\"x\"},\"client_version\":0}]}");
    CHECK_STR(str(a, "rejected.0.code"), "forbidden");
    json_object_put(a);
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM notes"), 0);

    /* a mutation id already used for another entity */
    a = PUSH("tags", "{\"client_id\":\"c3\",\"changes\":[{\"mutation_id\":\"r1\",\"id\":\"z\","
                     "\"action\":\"create\",\"data\":{},\"client_version\":0}]}");
    CHECK_STR(str(a, "rejected.0.code"), "bad_change");
    CHECK_CONTAINS(str(a, "rejected.0.reason"), "already used for entity 'todos'");
    json_object_put(a);
}

static void
test_replay(void)
{
    const char *batch =
        "{\"client_id\":\"c4\",\"changes\":["
        "{\"mutation_id\":\"p1\",\"id\":\"tmp-a\",\"action\":\"create\",\"data\":{\"title\":"
        "\"replayed\"},\"client_version\":0},"
        "{\"mutation_id\":\"p2\",\"action\":\"create\",\"data\":{\"nope\":1},\"client_version\":0},"
        "{\"mutation_id\":\"p3\",\"id\":\"tmp-a\",\"action\":\"update\",\"data\":{\"done\":1},"
        "\"client_version\":0}]}";
    char *first, *again, *more;
    const char *before;
    struct json_object *a;
    struct err e;

    a = push_at(__LINE__, "todos", batch, NULL, &first, &e);
    json_object_put(a);
    before = state();
    /* the same batch again: the same answer, byte for byte, and nothing written */
    a = push_at(__LINE__, "todos", batch, NULL, &again, &e);
    json_object_put(a);
    CHECK_STR(again, first);
    CHECK_STR(state(), before);
    /* someone else writes; the replay still answers what it answered */
    fx_exec(&f, "INSERT INTO todos (title) VALUES ('other writer')");
    before = state();
    free(again);
    a = push_at(__LINE__, "todos", batch, NULL, &again, &e);
    json_object_put(a);
    CHECK_STR(again, first);
    CHECK_STR(state(), before);
    /* an answer stored with bytes that are not UTF-8 (a server row the app wrote,
     * stored before answers were repaired) is replayed repaired, not a 500 */
    fx_exec(&f, "UPDATE _rhtmx_sync_mutations SET answer = replace(answer, 'nope', "
                "CAST(x'6e6fc0af' AS TEXT)) WHERE mutation_id = 'p2'");
    free(again);
    a = push_at(__LINE__, "todos", batch, NULL, &again, &e);
    CHECK_CONTAINS(str(a, "rejected.0.reason"), "unknown column 'no\xef\xbf\xbd\xef\xbf\xbd'");
    json_object_put(a);
    /* a retry that carries one more change: only that one is applied */
    a = push_at(__LINE__, "todos",
                "{\"client_id\":\"c4\",\"changes\":["
                "{\"mutation_id\":\"p1\",\"id\":\"tmp-a\",\"action\":\"create\",\"data\":{"
                "\"title\":\"replayed\"},\"client_version\":0},"
                "{\"mutation_id\":\"p4\",\"id\":\"tmp-a\",\"action\":\"update\",\"data\":{"
                "\"title\":\"renamed\"},\"client_version\":0}]}",
                NULL, &more, &e);
    CHECK_INT(len(a, "applied"), 2);
    CHECK_INT(num(a, "applied.0"), num(a, "applied.1"));
    CHECK_INT(num(a, "ids.tmp-a"), num(a, "applied.0"));
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM todos WHERE title IN ('replayed', 'renamed')"), 1);
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_log WHERE client_id = 'c4'"), 3);
    json_object_put(a);
    free(first);
    free(again);
    free(more);
}

/* A row written by "the server" (the shell) after the client pulled at version v. */
static long long
server_edit(const char *sql)
{
    fx_exec(&f, sql);
    return fx_int(&f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head'");
}

static void
set_strategy(const char *entity, enum strategy s)
{
    size_t i;
    for (i = 0; i < f.cfg->nentities; i++)
        if (strcmp(f.cfg->entities[i].name, entity) == 0)
            f.cfg->entities[i].strategy = s;
}

struct seen {
    int calls;
    char server[200], client[200], base[200];
};

static int
resolver(const struct rhtmx_conflict *c, struct rhtmx_resolution *out, void *ctx)
{
    struct seen *s = ctx;
    s->calls++;
    snprintf(s->server, sizeof(s->server), "%s", json_object_to_json_string(c->server));
    snprintf(s->client, sizeof(s->client), "%s", json_object_to_json_string(c->client));
    snprintf(s->base, sizeof(s->base), "%s", json_object_to_json_string(c->base));
    out->decision = RHTMX_DECIDE_MERGED;
    out->row = json_tokener_parse("{\"title\":\"resolved\"}");
    return 0;
}

static void
test_conflicts(void)
{
    struct push_opts later = {.max_changes = 10, .now_ms = push_now_ms() + 3600 * 1000};
    struct push_opts earlier = {.max_changes = 10, .now_ms = push_now_ms() - 3600 * 1000};
    struct json_object *a;
    struct err e;
    long long v, id;
    char body[600], buf[200];
    struct seen seen = {0};
    struct push_opts custom = {.max_changes = 10};

    /* The client pulled at v; then the shell renamed the row. */
    v = server_edit("INSERT INTO todos (title) VALUES ('base')");
    id = fx_int(&f, "SELECT max(id) FROM todos");
    server_edit("UPDATE todos SET done = 1 WHERE title = 'base'");

#define CHANGE(mid, data)                                                                          \
    snprintf(body, sizeof(body),                                                                   \
             "{\"client_id\":\"c5\",\"changes\":[{\"mutation_id\":\"%s\",\"id\":%lld,"             \
             "\"action\":\"update\",\"data\":%s,\"client_version\":%lld}]}",                       \
             mid, id, data, v)

    /* server-wins: the client's title is dropped, and the answer says so with the row */
    set_strategy("todos", STRATEGY_SERVER_WINS);
    CHANGE("k1", "{\"title\":\"client\"}");
    a = push_at(__LINE__, "todos", body, &later, NULL, &e);
    CHECK_STR(json(a, "applied"), "[]");
    CHECK_STR(str(a, "conflicts.0.mutation_id"), "k1");
    CHECK_INT(num(a, "conflicts.0.id"), id);
    CHECK_STR(str(a, "conflicts.0.strategy"), "server-wins");
    CHECK_STR(str(a, "conflicts.0.decision"), "server");
    CHECK_STR(str(a, "conflicts.0.server.title"), "base");
    CHECK_INT(num(a, "conflicts.0.server.done"), 1);
    CHECK_INT(num(a, "conflicts.0.version"), v + 1);
    json_object_put(a);
    snprintf(buf, sizeof(buf), "SELECT title FROM todos WHERE id = %lld", id);
    CHECK_STR(fx_text(&f, buf, body, 100), "base");

    /* last-write-wins: a push that reaches the server after the shell's write wins ... */
    set_strategy("todos", STRATEGY_LWW);
    CHANGE("k2", "{\"title\":\"lww late\"}");
    a = push_at(__LINE__, "todos", body, &later, NULL, &e);
    CHECK_STR(str(a, "conflicts.0.decision"), "client");
    CHECK_STR(str(a, "conflicts.0.server.title"), "lww late");
    CHECK_INT(num(a, "applied.0"), id);
    json_object_put(a);
    /* ... and one stamped before it loses (the server clock decides, never the client's) */
    CHANGE("k3", "{\"title\":\"lww early\"}");
    a = push_at(__LINE__, "todos", body, &earlier, NULL, &e);
    CHECK_STR(str(a, "conflicts.0.decision"), "server");
    CHECK_STR(str(a, "conflicts.0.server.title"), "lww late");
    CHECK_STR(json(a, "applied"), "[]");
    json_object_put(a);

    /* client-wins: even when the server's write is later */
    set_strategy("todos", STRATEGY_CLIENT_WINS);
    CHANGE("k4", "{\"title\":\"client wins\",\"done\":0}");
    a = push_at(__LINE__, "todos", body, &earlier, NULL, &e);
    CHECK_STR(str(a, "conflicts.0.decision"), "client");
    CHECK_INT(num(a, "conflicts.0.server.done"), 0);
    json_object_put(a);

    /* merge against the base from the log: the client renamed it (base title
     * 'base'), the server marked it done: both survive. */
    set_strategy("todos", STRATEGY_MERGE);
    snprintf(buf, sizeof(buf), "UPDATE todos SET title = 'base', done = 0 WHERE id = %lld", id);
    fx_exec(&f, buf);
    v = fx_int(&f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head'");
    snprintf(buf, sizeof(buf), "UPDATE todos SET done = 1 WHERE id = %lld", id);
    fx_exec(&f, buf);
    CHANGE("k5", "{\"title\":\"merged title\",\"done\":0}");
    a = push_at(__LINE__, "todos", body, &earlier, NULL, &e);
    CHECK_STR(str(a, "conflicts.0.decision"), "merged");
    CHECK_STR(str(a, "conflicts.0.strategy"), "merge");
    CHECK_STR(str(a, "conflicts.0.server.title"), "merged title");
    CHECK_INT(num(a, "conflicts.0.server.done"), 1);
    CHECK_INT(num(a, "applied.0"), id);
    json_object_put(a);
    /* the merged write was logged once, as the client's */
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_log WHERE client_id = 'c5' AND data "
                         "LIKE '%merged title%'"),
              1);

    /* the same when the app stored text that is not UTF-8 (the log keeps its bytes):
     * the base is read repaired, as the server row is, and still merges */
    snprintf(buf, sizeof(buf),
             "UPDATE todos SET title = CAST(x'62c0af' AS TEXT), done = 0 WHERE id = %lld", id);
    fx_exec(&f, buf);
    v = fx_int(&f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head'");
    snprintf(buf, sizeof(buf), "UPDATE todos SET done = 1 WHERE id = %lld", id);
    fx_exec(&f, buf);
    CHANGE("k5b", "{\"title\":\"merged again\",\"done\":0}");
    a = push_at(__LINE__, "todos", body, &earlier, NULL, &e);
    CHECK_STR(str(a, "conflicts.0.decision"), "merged");
    CHECK_STR(str(a, "conflicts.0.server.title"), "merged again");
    CHECK_INT(num(a, "conflicts.0.server.done"), 1);
    json_object_put(a);

    /* the client's own pushes are never a conflict with its later changes */
    v = fx_int(&f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head'"); /* after the merge */
    CHANGE("k6", "{\"title\":\"own 1\"}");
    a = push_at(__LINE__, "todos", body, &earlier, NULL, &e);
    json_object_put(a);
    CHANGE("k7", "{\"title\":\"own 2\"}"); /* client_version still v: its own k6 is newer */
    a = push_at(__LINE__, "todos", body, &earlier, NULL, &e);
    CHECK_INT(len(a, "conflicts"), 0);
    CHECK_INT(num(a, "applied.0"), id);
    json_object_put(a);

    /* a create for an id that exists: an update when the client had seen the row ... */
    snprintf(body, sizeof(body),
             "{\"client_id\":\"c5\",\"changes\":[{\"mutation_id\":\"k8\",\"id\":%lld,\"action\":"
             "\"create\",\"data\":{\"title\":\"recreated\"},\"client_version\":%lld}]}",
             id, fx_int(&f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head'"));
    a = push_at(__LINE__, "todos", body, &earlier, NULL, &e);
    CHECK_INT(len(a, "conflicts"), 0);
    CHECK_INT(num(a, "applied.0"), id);
    json_object_put(a);
    snprintf(buf, sizeof(buf), "SELECT title FROM todos WHERE id = %lld", id);
    CHECK_STR(fx_text(&f, buf, body, 100), "recreated");
    /* ... and a conflict under the strategy when it had not */
    set_strategy("todos", STRATEGY_SERVER_WINS);
    snprintf(body, sizeof(body),
             "{\"client_id\":\"c6\",\"changes\":[{\"mutation_id\":\"k9\",\"id\":%lld,\"action\":"
             "\"create\",\"data\":{\"title\":\"created offline\"},\"client_version\":0}]}",
             id);
    a = push_at(__LINE__, "todos", body, &later, NULL, &e);
    CHECK_STR(str(a, "conflicts.0.decision"), "server");
    CHECK_STR(str(a, "conflicts.0.server.title"), "recreated");
    json_object_put(a);

    /* a delete in conflict, server-wins: the row stays */
    snprintf(body, sizeof(body),
             "{\"client_id\":\"c6\",\"changes\":[{\"mutation_id\":\"k10\",\"id\":%lld,"
             "\"action\":\"delete\",\"client_version\":0}]}",
             id);
    a = push_at(__LINE__, "todos", body, &later, NULL, &e);
    CHECK_STR(str(a, "conflicts.0.decision"), "server");
    CHECK_STR(json(a, "applied"), "[]");
    json_object_put(a);
    snprintf(buf, sizeof(buf), "SELECT count(*) FROM todos WHERE id = %lld", id);
    CHECK_INT(fx_int(&f, buf), 1);
    /* ... client-wins: it goes, and the answer's server row is null */
    set_strategy("todos", STRATEGY_CLIENT_WINS);
    snprintf(body, sizeof(body),
             "{\"client_id\":\"c6\",\"changes\":[{\"mutation_id\":\"k11\",\"id\":%lld,"
             "\"action\":\"delete\",\"client_version\":0}]}",
             id);
    a = push_at(__LINE__, "todos", body, &later, NULL, &e);
    CHECK_STR(str(a, "conflicts.0.decision"), "client");
    CHECK_STR(json(a, "conflicts.0.server"), "null");
    CHECK_INT(num(a, "applied.0"), id);
    json_object_put(a);
    CHECK_INT(fx_int(&f, buf), 0);

    /* custom: without a resolver the push fails whole (500) and changes nothing */
    set_strategy("todos", STRATEGY_CUSTOM);
    fx_exec(&f, "INSERT INTO todos (id, title) VALUES (500, 'custom base')");
    v = fx_int(&f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head'");
    fx_exec(&f, "UPDATE todos SET done = 1 WHERE id = 500");
    snprintf(body, sizeof(body),
             "{\"client_id\":\"c7\",\"changes\":[{\"mutation_id\":\"q1\",\"id\":500,\"action\":"
             "\"update\",\"data\":{\"title\":\"mine\"},\"client_version\":%lld}]}",
             v);
    {
        const char *before = state();
        CHECK(push_at(__LINE__, "todos", body, &custom, NULL, &e) == NULL);
        CHECK_INT(e.status, 500);
        CHECK_STR(e.code, "config");
        CHECK_STR(state(), before);
    }
    /* with a linked-in resolver: it sees server, client and base, and decides */
    custom.resolver = resolver_new(resolver, &seen);
    a = push_at(__LINE__, "todos", body, &custom, NULL, &e);
    CHECK_STR(str(a, "conflicts.0.decision"), "merged");
    CHECK_STR(str(a, "conflicts.0.strategy"), "custom");
    CHECK_STR(str(a, "conflicts.0.server.title"), "resolved");
    CHECK_INT(seen.calls, 1);
    CHECK_STR(seen.client, "{ \"title\": \"mine\" }");
    CHECK_CONTAINS(seen.server, "\"done\": 1");
    CHECK_CONTAINS(seen.base, "\"done\": 0");
    json_object_put(a);
    resolver_free((struct resolver *)custom.resolver);
    set_strategy("todos", STRATEGY_LWW);
#undef CHANGE
}

static void
test_malformed(void)
{
    static const struct {
        int line, status;
        const char *body, *msg;
    } cases[] = {
        {__LINE__, 400, "", "invalid JSON"},
        {__LINE__, 400, "nope", "invalid JSON"},
        {__LINE__, 400, "[]", "must be an object"},
        {__LINE__, 400, "{}", "client_id"},
        {__LINE__, 400, "{\"client_id\":\"c\"}", "changes must be a list"},
        {__LINE__, 400, "{\"client_id\":\"c\",\"changes\":{}}", "changes must be a list"},
        {__LINE__, 400, "{\"client_id\":\"\",\"changes\":[]}", "client_id"},
        {__LINE__, 400, "{\"client_id\":\"a b\",\"changes\":[]}", "client_id"},
        {__LINE__, 400, "{\"client_id\":7,\"changes\":[]}", "client_id"},
        {__LINE__, 400, "{\"client_id\":\"c\",\"changes\":[],\"extra\":1}",
         "unknown member 'extra'"},
        {__LINE__, 400, "{\"client_id\":\"c\",\"changes\":[1]}", "changes[0] must be an object"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"action\":\"create\",\"data\":{},\"client_version\":"
         "0}]}",
         "mutation_id"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"action\":\"upsert\",\"data\":{"
         "},\"client_version\":0}]}",
         "action"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"action\":\"create\",\"data\":{"
         "}}]}",
         "client_version"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"action\":\"create\",\"data\":{"
         "},\"client_version\":-1}]}",
         "client_version"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"action\":\"create\",\"data\":{"
         "},\"client_version\":1.5}]}",
         "client_version"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"action\":\"create\",\"data\":["
         "],\"client_version\":0}]}",
         "needs data"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"action\":\"update\",\"data\":{"
         "},\"client_version\":0}]}",
         "needs an id"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"id\":true,\"action\":"
         "\"delete\",\"client_version\":0}]}",
         "id must be"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"id\":1.5,\"action\":"
         "\"delete\",\"client_version\":0}]}",
         "id must be"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"id\":1,\"action\":\"delete\","
         "\"client_version\":0,\"when\":1}]}",
         "unknown member 'when'"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"id\":1,\"action\":\"delete\","
         "\"client_version\":0},{\"mutation_id\":\"m\",\"id\":2,\"action\":\"delete\",\"client_"
         "version\":0}]}",
         "appears twice"},
        /* a good change first does not save a bad batch */
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"ok\",\"action\":\"create\",\"data\":"
         "{\"title\":\"t\"},\"client_version\":0},{\"mutation_id\":\"m\"}]}",
         "changes[1]"},
        {__LINE__, 400, "{\"client_id\":\"c\",\"changes\":[]} x", "invalid JSON"},
        {__LINE__, 400,
         "{\"client_id\":\"c\",\"changes\":[{\"mutation_id\":\"m\",\"action\":\"create\",\"data\":{"
         "\"a\":[[[[[[[[1]]]]]]]]},\"client_version\":0}]}",
         "deeper"},
        {__LINE__, 413, "{\"client_id\":\"c\",\"changes\":[1,2,3,4]}", "over the limit of 3"},
    };
    struct push_opts o = {.max_changes = 3};
    const char *before = state();
    struct json_object *a;
    struct err e;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err_clear(&e);
        a = push_at(cases[i].line, "todos", cases[i].body, &o, NULL, &e);
        CHECK_AT(cases[i].line, a == NULL, "malformed body accepted");
        json_object_put(a);
        CHECK_AT(cases[i].line, e.status == cases[i].status, "status %d, want %d (%s)", e.status,
                 cases[i].status, e.msg);
        CHECK_AT(cases[i].line, strstr(e.msg, cases[i].msg) != NULL, "message \"%s\" lacks \"%s\"",
                 e.msg, cases[i].msg);
        CHECK_AT(cases[i].line, strcmp(state(), before) == 0, "the database changed");
    }
    /* an empty batch is fine: the head, nothing else */
    a = PUSH("todos", "{\"client_id\":\"c\",\"changes\":[]}");
    CHECK_INT(num(a, "version"),
              fx_int(&f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head'"));
    CHECK_STR(json(a, "applied"), "[]");
    json_object_put(a);
    CHECK_STR(state(), before);
}

static void
test_values(void)
{
    struct json_object *a;
    struct err e;
    char buf[200];

    /* escapes, an embedded NUL and a boolean reach the column as written */
    a = PUSH("todos", "{\"client_id\":\"c8\",\"changes\":[{\"mutation_id\":\"v1\",\"id\":900,"
                      "\"action\":\"create\",\"data\":{\"title\":\"caf\\u00e9 \\u0000 \\\"q\\\"\","
                      "\"done\":false},\"client_version\":0}]}");
    CHECK_STR(json(a, "applied"), "[900]");
    json_object_put(a);
    CHECK_INT(fx_int(&f, "SELECT length(CAST(title AS BLOB)) FROM todos WHERE id = 900"), 11);
    CHECK_INT(fx_int(&f, "SELECT done FROM todos WHERE id = 900"), 0);
    /* the log's JSON for it is valid and typed */
    CHECK_STR(fx_text(&f,
                      "SELECT json_type(data, '$.done') FROM _rhtmx_sync_log WHERE "
                      "entity_id = 900",
                      buf, sizeof(buf)),
              "integer");
    /* an integer beyond 64 bits, on either side, refuses the body the same way */
    a = PUSH("todos", "{\"client_id\":\"c8\",\"changes\":[{\"mutation_id\":\"v2\",\"id\":901,"
                      "\"action\":\"create\",\"data\":{\"title\":\"big\",\"done\":"
                      "18446744073709551615},\"client_version\":0}]}");
    CHECK(a == NULL);
    CHECK_INT(e.status, 400);
    CHECK_STR(e.msg, "integer out of range (-2^63 to 2^63-1) at byte 105");
    a = PUSH("todos", "{\"client_id\":\"c8\",\"changes\":[{\"mutation_id\":\"v2\",\"id\":901,"
                      "\"action\":\"create\",\"data\":{\"title\":\"big\",\"done\":"
                      "-9223372036854775809},\"client_version\":0}]}");
    CHECK(a == NULL);
    CHECK_INT(e.status, 400);
    CHECK_STR(e.msg, "integer out of range (-2^63 to 2^63-1) at byte 105");
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM todos WHERE id = 901"), 0);
}

/* Per-user entities and per-user mutation ids (what push_endpoint passes in
 * from the token). */
static void
test_owner(void)
{
    struct push_opts u42 = {.max_changes = 10, .user = "42", .owner = "42"};
    struct push_opts u43 = {.max_changes = 10, .user = "43", .owner = "43"};
    struct json_object *a;
    struct err e;
    char buf[200];

    fx_exec(&f, "INSERT INTO mine (id, user_id, body) VALUES (7, 7, 'not yours')");
    a = push_at(__LINE__, "mine",
                "{\"client_id\":\"c\",\"changes\":["
                "{\"mutation_id\":\"o1\",\"id\":\"tmp-1\",\"action\":\"create\",\"data\":{\"body\":"
                "\"mine\"},\"client_version\":0},"
                "{\"mutation_id\":\"o2\",\"action\":\"create\",\"data\":{\"body\":\"x\",\"user_"
                "id\":7},\"client_version\":0},"
                "{\"mutation_id\":\"o3\",\"id\":7,\"action\":\"update\",\"data\":{\"body\":\"x\"},"
                "\"client_version\":99},"
                "{\"mutation_id\":\"o4\",\"id\":7,\"action\":\"delete\",\"client_version\":99},"
                "{\"mutation_id\":\"o5\",\"id\":7,\"action\":\"create\",\"data\":{\"body\":\"x\"},"
                "\"client_version\":99},"
                "{\"mutation_id\":\"o6\",\"id\":\"tmp-1\",\"action\":\"update\",\"data\":{\"user_"
                "id\":7},\"client_version\":99},"
                "{\"mutation_id\":\"o7\",\"id\":\"tmp-1\",\"action\":\"update\",\"data\":{\"user_"
                "id\":\"42\",\"body\":\"still mine\"},\"client_version\":99}"
                "]}",
                &u42, NULL, &e);
    CHECK_INT(len(a, "applied"), 3);
    CHECK_INT(len(a, "rejected"), 4);
    for (size_t i = 0; i < 4; i++) {
        char path[32];
        snprintf(path, sizeof(path), "rejected.%zu.code", i);
        CHECK_STR(str(a, path), "forbidden");
    }
    CHECK_STR(str(a, "rejected.0.reason"), "this mine belongs to another user");
    CHECK_STR(str(a, "rejected.3.reason"), "mine.user_id is the owner: it must be your own user id");
    json_object_put(a);
    /* both creates got the caller as owner, in the column's own type, whatever
     * the client sent (o2 named user 7) */
    CHECK_STR(fx_text(&f,
                      "SELECT group_concat(id || ':' || typeof(user_id) || user_id || ':' || "
                      "body, ' ') FROM mine",
                      buf, sizeof(buf)),
              "7:integer7:not yours 8:integer42:still mine 9:integer42:x");
    /* the log knows the owner (as text, like a token's sub), so pulls can filter on it */
    CHECK_INT(
        fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_log WHERE entity = 'mine' AND owner = '42'"),
        3);

    /* Another user with the same client_id and mutation id is not a replay of
     * user 42's batch (and cannot read its answer), nor can it use its temporary ids. */
    a = push_at(__LINE__, "mine",
                "{\"client_id\":\"c\",\"changes\":["
                "{\"mutation_id\":\"o1\",\"id\":\"tmp-1\",\"action\":\"create\",\"data\":{\"body\":"
                "\"43's\"},\"client_version\":0}]}",
                &u43, NULL, &e);
    CHECK_STR(json(a, "applied"), "[10]");
    CHECK_STR(json(a, "ids"), "{\"tmp-1\":10}");
    json_object_put(a);
    a = push_at(__LINE__, "mine",
                "{\"client_id\":\"c\",\"changes\":["
                "{\"mutation_id\":\"o9\",\"id\":\"tmp-1\",\"action\":\"update\",\"data\":{\"body\":"
                "\"43 again\"},\"client_version\":0}]}",
                &u43, NULL, &e);
    CHECK_STR(json(a, "applied"), "[10]");
    json_object_put(a);
    CHECK_STR(fx_text(&f, "SELECT body FROM mine WHERE id = 8", buf, sizeof(buf)), "still mine");
    /* the log's client_id stays what the client sent (it recognises its echoes by it) */
    CHECK_INT(fx_int(&f, "SELECT count(*) FROM _rhtmx_sync_log WHERE entity = 'mine' AND "
                         "client_id = 'c'"),
              5);
}

/* Another writer holds the lock past the busy timeout: 503, nothing changed. */
static void
test_busy(void)
{
    const char *body = "{\"client_id\":\"c9\",\"changes\":[{\"mutation_id\":\"b1\","
                       "\"action\":\"create\",\"data\":{\"title\":\"t\"},\"client_version\":0}]}";
    const char *before = state();
    struct json_object *a;
    sqlite3 *other;
    struct err e;

    CHECK(sqlite3_open(f.path, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    db_deadline(f.db, db_now_ms() + 50);
    a = push_at(__LINE__, "todos", body, NULL, NULL, &e);
    CHECK(a == NULL);
    CHECK_INT(e.status, 503);
    CHECK_STR(e.code, "busy");
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    db_deadline(f.db, 0);
    CHECK_STR(state(), before);
    /* and the connection is usable again: the same batch now applies */
    a = push_at(__LINE__, "todos", body, NULL, NULL, &e);
    CHECK_INT(len(a, "applied"), 1);
    json_object_put(a);
}

int
main(void)
{
    CHECK(fx_open(&f, SCHEMA, CFG) == 0);
    test_basics();
    test_rejected();
    test_replay();
    test_conflicts();
    test_malformed();
    test_values();
    test_owner();
    test_busy();
    fx_close(&f);
    return check_done("test-push");
}
