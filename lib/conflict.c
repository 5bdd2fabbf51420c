/* conflict: the strategies and the tie rule (see conflict.h). */
#include <stdint.h>
#include <string.h>

#include "conflict.h"

const char *
conflict_decision_name(enum conflict_decision d)
{
    switch (d) {
    case CONFLICT_CLIENT:
        return "client";
    case CONFLICT_MERGED:
        return "merged";
    default:
        return "server";
    }
}

int
conflict_client_later(const struct rhtmx_conflict *c)
{
    return c->client_time_ms > c->server_time_ms;
}

/* A number or boolean as a double, for comparing across types. */
static int
as_number(struct json_object *v, double *out, int *is_int, int64_t *i)
{
    switch (json_object_get_type(v)) {
    case json_type_boolean:
        *i = json_object_get_boolean(v) ? 1 : 0;
        *out = (double)*i;
        *is_int = 1;
        return 1;
    case json_type_int:
        *i = json_object_get_int64(v);
        *out = (double)*i;
        *is_int = 1;
        return 1;
    case json_type_double:
        *out = json_object_get_double(v);
        *is_int = 0;
        return 1;
    default:
        return 0;
    }
}

int
conflict_value_equal(struct json_object *a, struct json_object *b)
{
    double da, db;
    int ia, ib;
    int64_t na, nb;

    if (a == NULL || b == NULL)
        return a == b;
    if (as_number(a, &da, &ia, &na) && as_number(b, &db, &ib, &nb))
        return ia && ib ? na == nb : da == db;
    if (json_object_is_type(a, json_type_string) && json_object_is_type(b, json_type_string))
        return json_object_get_string_len(a) == json_object_get_string_len(b) &&
               memcmp(json_object_get_string(a), json_object_get_string(b),
                      (size_t)json_object_get_string_len(a)) == 0;
    return json_object_equal(a, b);
}

/* Member key of obj: 1 and *v (may be NULL for JSON null) if present, else 0. */
static int
member(struct json_object *obj, const char *key, struct json_object **v)
{
    *v = NULL;
    return obj != NULL && json_object_object_get_ex(obj, key, v);
}

/* The client's whole change: its fields, or the delete. */
static void
take_client(const struct rhtmx_conflict *c, struct conflict_result *out)
{
    out->decision = CONFLICT_CLIENT;
    if (c->client == NULL)
        out->delete_row = 1;
    else
        out->write = json_object_get(c->client);
}

/* Field-level three-way merge of c->client into c->server against c->base. */
static void
merge(const struct rhtmx_conflict *c, struct conflict_result *out)
{
    int later = conflict_client_later(c);
    int taken = 0, kept = 0, survives = 0;
    struct json_object *sv, *bv;

    if (c->client == NULL) { /* a delete touches every field */
        if (later)
            take_client(c, out);
        return;
    }
    out->write = json_object_new_object();
    json_object_object_foreach(c->client, f, cv)
    {
        int have_s = member(c->server, f, &sv);
        int have_b = member(c->base, f, &bv);
        int client_changed, server_changed;

        if (have_s && conflict_value_equal(cv, sv))
            continue; /* both sides agree already */
        client_changed = !have_b || !conflict_value_equal(cv, bv);
        server_changed = !have_b || !have_s || !conflict_value_equal(sv, bv);
        if (client_changed && (!server_changed || later)) {
            json_object_object_add(out->write, f, json_object_get(cv));
            taken++;
        } else {
            kept++; /* the server's value stays over a different client value */
        }
    }
    /* Did the server change a field the client did not send? Then that edit
     * survives next to the client's. Unknowable without a base. */
    if (c->base != NULL) {
        json_object_object_foreach(c->server, g, gv)
        {
            struct json_object *unused;
            if (strcmp(g, c->key) == 0 || member(c->client, g, &unused))
                continue;
            if (!member(c->base, g, &bv) || !conflict_value_equal(gv, bv))
                survives = 1;
        }
    }
    if (taken == 0) {
        out->decision = kept > 0 ? CONFLICT_SERVER : CONFLICT_CLIENT;
        json_object_put(out->write);
        out->write = NULL;
    } else {
        out->decision = kept > 0 || survives ? CONFLICT_MERGED : CONFLICT_CLIENT;
    }
}

/* The custom resolver's decision, turned into columns to write. */
static int
custom(const struct rhtmx_conflict *c, const struct resolver *r, struct conflict_result *out,
       struct err *e)
{
    struct rhtmx_resolution res;
    struct json_object *kv;

    if (r == NULL)
        return err_set(e, 500, "config",
                       "entity '%s' uses strategy \"custom\" but no resolver is registered or "
                       "named by push.resolver in the config",
                       c->entity);
    if (resolver_call(r, c, &res, e) < 0)
        return -1;
    switch (res.decision) {
    case RHTMX_DECIDE_CLIENT:
        take_client(c, out);
        return 0;
    case RHTMX_DECIDE_MERGED:
        if (member(res.row, c->key, &kv)) {
            if (!conflict_value_equal(kv, c->id)) {
                json_object_put(res.row);
                return err_set(e, 500, "internal",
                               "custom resolver changed the key of %s %s: not allowed", c->entity,
                               c->mutation_id);
            }
            json_object_object_del(res.row, c->key);
        }
        out->decision = CONFLICT_MERGED;
        out->write = res.row;
        return 0;
    default:
        out->decision = CONFLICT_SERVER;
        return 0;
    }
}

int
conflict_resolve(enum strategy s, const struct rhtmx_conflict *c, const struct resolver *r,
                 struct conflict_result *out, struct err *e)
{
    memset(out, 0, sizeof(*out));
    out->decision = CONFLICT_SERVER;
    switch (s) {
    case STRATEGY_SERVER_WINS:
        return 0;
    case STRATEGY_CLIENT_WINS:
        take_client(c, out);
        return 0;
    case STRATEGY_MERGE:
        merge(c, out);
        return 0;
    case STRATEGY_CUSTOM:
        return custom(c, r, out, e);
    case STRATEGY_LWW:
    default:
        if (conflict_client_later(c))
            take_client(c, out);
        return 0;
    }
}
