/*
 * sticky_done: an example custom conflict resolver for the "todos" entity.
 *
 * The rule it implements: a todo that either side marked done stays done;
 * every other field the client sent is written (the user's latest edit wins
 * for the text). A delete of a todo that the server has since marked done is
 * refused (the row is kept); any other delete goes through.
 *
 * Build it as a shared object (CMake does: build/examples/resolver/
 * librhtmx-resolver-example.so) and name it in the config:
 *
 *   "entities": [{"name": "todos", "strategy": "custom"}],
 *   "push": {"resolver": "librhtmx-resolver-example.so"}
 *
 * The function's name is the default symbol, rhtmx_resolve; another name needs
 * "resolver_symbol" in the config. See docs/PUSH.md for the interface.
 */
#include <stdio.h>

#include <json-c/json.h>

#include "resolver.h"

/* 1 if row has a done column that is true (1). */
static int
is_done(struct json_object *row)
{
    struct json_object *v;

    return row != NULL && json_object_object_get_ex(row, "done", &v) && v != NULL &&
           json_object_get_int64(v) != 0;
}

int rhtmx_resolve(const struct rhtmx_conflict *c, struct rhtmx_resolution *out, void *ctx);

int
rhtmx_resolve(const struct rhtmx_conflict *c, struct rhtmx_resolution *out, void *ctx)
{
    struct json_object *row;

    (void)ctx;
    if (c->abi != RHTMX_RESOLVER_ABI) {
        snprintf(out->message, sizeof(out->message), "built for resolver ABI %d, called with %d",
                 RHTMX_RESOLVER_ABI, c->abi);
        return -1; /* the push fails with 500; the client keeps its change */
    }
    if (c->client == NULL) { /* a delete */
        out->decision = is_done(c->server) ? RHTMX_DECIDE_SERVER : RHTMX_DECIDE_CLIENT;
        return 0;
    }
    if (!is_done(c->server) || is_done(c->client)) {
        out->decision = RHTMX_DECIDE_CLIENT; /* nothing to protect */
        return 0;
    }
    /* The server has it done and the client would undo that: the client's
     * fields, except done. */
    row = json_object_new_object();
    json_object_object_foreach(c->client, k, v) {
        json_object_object_add(row, k, json_object_get(v));
    }
    json_object_object_add(row, "done", json_object_new_int(1));
    out->decision = RHTMX_DECIDE_MERGED;
    out->row = row; /* the library puts it */
    return 0;
}
