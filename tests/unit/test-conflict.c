/* Conflict strategies and the tie rule, as pure decisions (no database). */
#include <stdlib.h>

#include "check.h"
#include "conflict.h"

static struct json_object *
J(const char *text)
{
    struct json_object *o = json_tokener_parse(text);
    if (o == NULL)
        fprintf(stderr, "bad test JSON: %s\n", text);
    return o;
}

/* One conflict's inputs; owned JSON. */
struct in {
    struct json_object *server, *client, *base, *id;
    struct rhtmx_conflict c;
};

static void
in_set(struct in *x, const char *action, const char *server, const char *client, const char *base,
       long long client_ms, long long server_ms)
{
    memset(x, 0, sizeof(*x));
    x->server = J(server);
    x->client = client ? J(client) : NULL;
    x->base = base ? J(base) : NULL;
    x->id = json_object_new_int(1);
    x->c = (struct rhtmx_conflict){.abi = RHTMX_RESOLVER_ABI,
                                   .entity = "todos",
                                   .table = "todos",
                                   .key = "id",
                                   .action = action,
                                   .client_id = "c1",
                                   .mutation_id = "m1",
                                   .id = x->id,
                                   .server = x->server,
                                   .client = x->client,
                                   .base = x->base,
                                   .client_version = 1,
                                   .server_version = 2,
                                   .client_time_ms = client_ms,
                                   .server_time_ms = server_ms};
}

static void
in_free(struct in *x)
{
    json_object_put(x->server);
    json_object_put(x->client);
    json_object_put(x->base);
    json_object_put(x->id);
}

/* Resolve and compare: decision, delete flag, and the columns written ("null": none). */
static void
expect_at(int line, enum strategy s, const struct in *x, const struct resolver *r,
          enum conflict_decision d, int del, const char *write)
{
    struct conflict_result res;
    struct err e;
    struct json_object *want = strcmp(write, "null") == 0 ? NULL : J(write);

    if (conflict_resolve(s, &x->c, r, &res, &e) != 0) {
        CHECK_AT(line, 0, "conflict_resolve failed: %s", e.msg);
        json_object_put(want);
        return;
    }
    CHECK_AT(line, res.decision == d, "%s: decision %s, want %s", strategy_name(s),
             conflict_decision_name(res.decision), conflict_decision_name(d));
    CHECK_AT(line, res.delete_row == del, "%s: delete_row %d, want %d", strategy_name(s),
             res.delete_row, del);
    CHECK_AT(line,
             (want == NULL) == (res.write == NULL) &&
                 (want == NULL || json_object_equal(want, res.write)),
             "%s: wrote %s, want %s", strategy_name(s),
             res.write ? json_object_to_json_string(res.write) : "null", write);
    json_object_put(res.write);
    json_object_put(want);
}
#define EXPECT(...) expect_at(__LINE__, __VA_ARGS__)

/* ---- A custom resolver that records what it saw and does what it is told. ---- */
struct seen {
    int calls;
    enum rhtmx_decision decision;
    const char *row; /* for MERGED */
    int fail;
    long long client_ms, server_ms, server_version;
    int had_base, had_client;
    char action[16];
};

static int
test_resolver(const struct rhtmx_conflict *c, struct rhtmx_resolution *out, void *ctx)
{
    struct seen *s = ctx;

    s->calls++;
    s->client_ms = c->client_time_ms;
    s->server_ms = c->server_time_ms;
    s->server_version = c->server_version;
    s->had_base = c->base != NULL;
    s->had_client = c->client != NULL;
    snprintf(s->action, sizeof(s->action), "%s", c->action);
    if (s->fail) {
        snprintf(out->message, sizeof(out->message), "told to fail");
        return -1;
    }
    out->decision = s->decision;
    if (s->row != NULL)
        out->row = json_tokener_parse(s->row);
    return 0;
}

static void
test_value_equal(void)
{
    struct json_object *a, *b;

#define EQ(x, y, want)                                                                             \
    do {                                                                                           \
        a = J(x);                                                                                  \
        b = J(y);                                                                                  \
        CHECK_AT(__LINE__, conflict_value_equal(a, b) == (want), "%s vs %s", x, y);                \
        json_object_put(a);                                                                        \
        json_object_put(b);                                                                        \
    } while (0)
    EQ("1", "1.0", 1);
    EQ("true", "1", 1);
    EQ("false", "0", 1);
    EQ("\"a\"", "\"a\"", 1);
    EQ("\"a\"", "\"b\"", 0);
    EQ("\"1\"", "1", 0);
    EQ("null", "null", 1);
    EQ("null", "0", 0);
    EQ("9007199254740993", "9007199254740992", 0); /* integers compare exactly */
#undef EQ
}

int
main(void)
{
    const char *S = "{\"id\":1,\"title\":\"a\",\"done\":1}"; /* server: done changed */
    const char *B = "{\"id\":1,\"title\":\"a\",\"done\":0}"; /* base */
    struct in x;
    struct seen seen;
    struct resolver *r;
    struct conflict_result res;
    struct err e;

    test_value_equal();

    /* The tie rule itself. */
    in_set(&x, "update", S, "{\"title\":\"b\"}", B, 2000, 1000);
    CHECK(conflict_client_later(&x.c));
    x.c.client_time_ms = 1000;
    CHECK(!conflict_client_later(&x.c)); /* equal: not later */
    x.c.client_time_ms = 999;
    CHECK(!conflict_client_later(&x.c));
    in_free(&x);

    /* last-write-wins: the later by the server's clock; a tie keeps the server's row. */
    in_set(&x, "update", S, "{\"title\":\"b\"}", B, 2000, 1000);
    EXPECT(STRATEGY_LWW, &x, NULL, CONFLICT_CLIENT, 0, "{\"title\":\"b\"}");
    in_free(&x);
    in_set(&x, "update", S, "{\"title\":\"b\"}", B, 1000, 2000);
    EXPECT(STRATEGY_LWW, &x, NULL, CONFLICT_SERVER, 0, "null");
    in_free(&x);
    in_set(&x, "update", S, "{\"title\":\"b\"}", B, 1500, 1500);
    EXPECT(STRATEGY_LWW, &x, NULL, CONFLICT_SERVER, 0, "null");
    in_free(&x);

    /* server-wins and client-wins ignore the clocks. */
    in_set(&x, "update", S, "{\"title\":\"b\"}", B, 9000, 1000);
    EXPECT(STRATEGY_SERVER_WINS, &x, NULL, CONFLICT_SERVER, 0, "null");
    in_free(&x);
    in_set(&x, "update", S, "{\"title\":\"b\",\"done\":0}", B, 1000, 9000);
    EXPECT(STRATEGY_CLIENT_WINS, &x, NULL, CONFLICT_CLIENT, 0, "{\"title\":\"b\",\"done\":0}");
    in_free(&x);

    /* merge: edits to different fields both survive, whoever is later. */
    in_set(&x, "update", S, "{\"title\":\"b\"}", B, 1000, 2000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_MERGED, 0, "{\"title\":\"b\"}");
    in_free(&x);
    /* ... also when the client sends its whole row (done unchanged against the base). */
    in_set(&x, "update", S, "{\"title\":\"b\",\"done\":0}", B, 1000, 2000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_MERGED, 0, "{\"title\":\"b\"}");
    in_free(&x);
    /* A field both changed follows the tie rule: client later -> client's value. */
    in_set(&x, "update", "{\"id\":1,\"title\":\"s\",\"done\":0}", "{\"title\":\"c\"}", B, 2000,
           1000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_CLIENT, 0, "{\"title\":\"c\"}");
    in_free(&x);
    /* ... server later -> server's value, nothing written. */
    in_set(&x, "update", "{\"id\":1,\"title\":\"s\",\"done\":0}", "{\"title\":\"c\"}", B, 1000,
           2000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_SERVER, 0, "null");
    in_free(&x);
    /* ... a tie -> server's value. */
    in_set(&x, "update", "{\"id\":1,\"title\":\"s\",\"done\":0}", "{\"title\":\"c\"}", B, 1500,
           1500);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_SERVER, 0, "null");
    in_free(&x);
    /* Both changed title (client later) and the server also changed done: a mix. */
    in_set(&x, "update", "{\"id\":1,\"title\":\"s\",\"done\":1}", "{\"title\":\"c\"}", B, 2000,
           1000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_MERGED, 0, "{\"title\":\"c\"}");
    in_free(&x);
    /* Both changed title, server later, the client also changed done alone: a mix. */
    in_set(&x, "update", "{\"id\":1,\"title\":\"s\",\"done\":0}", "{\"title\":\"c\",\"done\":1}", B,
           1000, 2000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_MERGED, 0, "{\"done\":1}");
    in_free(&x);
    /* Base unknown (compacted away or never seen): every differing field is a
     * both-changed field, so the tie rule decides all of them. */
    in_set(&x, "update", S, "{\"title\":\"b\",\"done\":0}", NULL, 2000, 1000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_CLIENT, 0, "{\"title\":\"b\",\"done\":0}");
    in_free(&x);
    in_set(&x, "update", S, "{\"title\":\"b\",\"done\":0}", NULL, 1000, 2000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_SERVER, 0, "null");
    in_free(&x);
    in_set(&x, "update", S, "{\"title\":\"b\",\"done\":0}", NULL, 1000, 1000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_SERVER, 0, "null");
    in_free(&x);
    /* A base that lacks a column (added since): that column counts as changed by both. */
    in_set(&x, "update", "{\"id\":1,\"title\":\"a\",\"note\":\"s\"}", "{\"note\":\"c\"}",
           "{\"id\":1,\"title\":\"a\"}", 1000, 2000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_SERVER, 0, "null");
    in_free(&x);
    /* The client's values are already the server's: nothing to write, the change holds. */
    in_set(&x, "update", S, "{\"done\":1}", B, 1000, 2000);
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_CLIENT, 0, "null");
    in_free(&x);

    /* Deletes: a delete touches every field. */
    in_set(&x, "delete", S, NULL, B, 2000, 1000);
    EXPECT(STRATEGY_LWW, &x, NULL, CONFLICT_CLIENT, 1, "null");
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_CLIENT, 1, "null");
    EXPECT(STRATEGY_CLIENT_WINS, &x, NULL, CONFLICT_CLIENT, 1, "null");
    EXPECT(STRATEGY_SERVER_WINS, &x, NULL, CONFLICT_SERVER, 0, "null");
    in_free(&x);
    in_set(&x, "delete", S, NULL, B, 1000, 1000); /* tie */
    EXPECT(STRATEGY_LWW, &x, NULL, CONFLICT_SERVER, 0, "null");
    EXPECT(STRATEGY_MERGE, &x, NULL, CONFLICT_SERVER, 0, "null");
    EXPECT(STRATEGY_CLIENT_WINS, &x, NULL, CONFLICT_CLIENT, 1, "null");
    in_free(&x);

    /* custom: no resolver is a configuration error. */
    in_set(&x, "update", S, "{\"title\":\"b\"}", B, 2000, 1000);
    CHECK(conflict_resolve(STRATEGY_CUSTOM, &x.c, NULL, &res, &e) == -1);
    CHECK_INT(e.status, 500);
    CHECK_STR(e.code, "config");
    CHECK(res.write == NULL);

    /* custom: the resolver sees the inputs and its decision is applied. */
    memset(&seen, 0, sizeof(seen));
    r = resolver_new(test_resolver, &seen);
    seen.decision = RHTMX_DECIDE_MERGED;
    seen.row = "{\"id\":1,\"title\":\"from resolver\"}"; /* same key: dropped from the write */
    EXPECT(STRATEGY_CUSTOM, &x, r, CONFLICT_MERGED, 0, "{\"title\":\"from resolver\"}");
    CHECK_INT(seen.calls, 1);
    CHECK_INT(seen.client_ms, 2000);
    CHECK_INT(seen.server_ms, 1000);
    CHECK_INT(seen.server_version, 2);
    CHECK(seen.had_base && seen.had_client);
    CHECK_STR(seen.action, "update");
    seen.row = NULL;
    seen.decision = RHTMX_DECIDE_CLIENT;
    EXPECT(STRATEGY_CUSTOM, &x, r, CONFLICT_CLIENT, 0, "{\"title\":\"b\"}");
    seen.decision = RHTMX_DECIDE_SERVER;
    seen.row = "{\"title\":\"ignored\"}"; /* a row with another decision is put, not used */
    EXPECT(STRATEGY_CUSTOM, &x, r, CONFLICT_SERVER, 0, "null");
    /* A merged row that changes the key, a merged decision without a row, an
     * unknown decision and a refusal all fail the push (500), writing nothing. */
    seen.decision = RHTMX_DECIDE_MERGED;
    seen.row = "{\"id\":2,\"title\":\"x\"}";
    CHECK(conflict_resolve(STRATEGY_CUSTOM, &x.c, r, &res, &e) == -1 && res.write == NULL);
    CHECK_CONTAINS(e.msg, "changed the key");
    seen.row = NULL;
    CHECK(conflict_resolve(STRATEGY_CUSTOM, &x.c, r, &res, &e) == -1 && res.write == NULL);
    CHECK_CONTAINS(e.msg, "without a row");
    seen.decision = (enum rhtmx_decision)7;
    CHECK(conflict_resolve(STRATEGY_CUSTOM, &x.c, r, &res, &e) == -1);
    CHECK_CONTAINS(e.msg, "unknown decision 7");
    seen.fail = 1;
    CHECK(conflict_resolve(STRATEGY_CUSTOM, &x.c, r, &res, &e) == -1);
    CHECK_INT(e.status, 500);
    CHECK_CONTAINS(e.msg, "told to fail");
    in_free(&x);
    /* custom on a delete: the resolver is told it is one (no client row). */
    seen.fail = 0;
    seen.decision = RHTMX_DECIDE_CLIENT;
    in_set(&x, "delete", S, NULL, NULL, 1000, 2000);
    EXPECT(STRATEGY_CUSTOM, &x, r, CONFLICT_CLIENT, 1, "null");
    CHECK(!seen.had_client && !seen.had_base);
    CHECK_STR(seen.action, "delete");
    in_free(&x);
    resolver_free(r);

    /* Loading from a shared object: a missing file is a config error naming it. */
    r = resolver_load("/nonexistent/resolver.so", NULL, &e);
    CHECK(r == NULL);
    CHECK_STR(e.code, "config");
    CHECK_CONTAINS(e.msg, "/nonexistent/resolver.so");
    resolver_free(NULL);

    /* The shipped example, loaded the way sync-push loads it. */
    {
        const char *build = getenv("RHTMX_BUILD");
        char so[512];
        snprintf(so, sizeof(so), "%s/examples/resolver/librhtmx-resolver-example.so",
                 build ? build : ".");
        r = resolver_load(so, "no_such_symbol", &e);
        CHECK(r == NULL);
        CHECK_CONTAINS(e.msg, "no function 'no_such_symbol'");
        r = resolver_load(so, NULL, &e);
        CHECK_AT(__LINE__, r != NULL, "%s", e.msg);
        if (r != NULL) {
            CHECK(resolver_is(r, so, NULL) && resolver_is(r, so, RHTMX_RESOLVER_SYMBOL));
            CHECK(!resolver_is(r, so, "other"));
            /* server has it done, the client un-does it and renames it: done sticks */
            in_set(&x, "update", S, "{\"title\":\"b\",\"done\":0}", B, 2000, 1000);
            EXPECT(STRATEGY_CUSTOM, &x, r, CONFLICT_MERGED, 0, "{\"title\":\"b\",\"done\":1}");
            in_free(&x);
            in_set(&x, "delete", S, NULL, B, 2000, 1000);
            EXPECT(STRATEGY_CUSTOM, &x, r, CONFLICT_SERVER, 0, "null");
            x.c.abi = RHTMX_RESOLVER_ABI + 1;
            CHECK(conflict_resolve(STRATEGY_CUSTOM, &x.c, r, &res, &e) == -1);
            CHECK_CONTAINS(e.msg, "ABI");
            in_free(&x);
        }
        resolver_free(r);
    }
    return check_done("test-conflict");
}
