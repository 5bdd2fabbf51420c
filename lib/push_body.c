/*
 * push_body: see push_body.h.
 *
 * Every member is declared here with its type and bounds; anything else in a
 * body is a 400 naming it, before the database is opened for writing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonr.h"
#include "push_body.h"
#include "sqljson.h"

#define TOKEN_MAX 64      /* client_id and mutation_id length */
#define ID_MAX_BYTES 1024 /* a string id */

static const char *const action_names[] = {"create", "update", "delete"};

const char *
push_action_name(enum push_action a)
{
    return action_names[a];
}

/* 1 if s (len bytes) is 1..64 of [A-Za-z0-9_.:-]. */
static int
valid_token(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > TOKEN_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* Every member of obj must be one of allowed (NULL-terminated). */
static int
only_keys(struct json_object *obj, const char *const *allowed, const char *where, struct err *e)
{
    char q[ERR_QUOTED];
    size_t i;

    json_object_object_foreach(obj, k, v)
    {
        (void)v;
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(k, allowed[i]) == 0)
                break;
        if (allowed[i] == NULL)
            return err_set(e, 400, "bad_request", "%s: unknown member '%s'", where,
                           err_quote(q, k));
    }
    return 0;
}

static int
parse_change(struct json_object *v, size_t i, struct push_change *c, struct json_object *seen,
             struct err *e)
{
    static const char *const keys[] = {"mutation_id",    "id", "action", "data",
                                       "client_version", NULL};
    struct json_object *m, *a, *cv, *id = NULL, *data = NULL;
    char where[48];
    size_t k;

    snprintf(where, sizeof(where), "changes[%zu]", i);
    if (!json_object_is_type(v, json_type_object))
        return err_set(e, 400, "bad_request", "%s must be an object", where);
    if (only_keys(v, keys, where, e) < 0)
        return -1;

    if (!json_object_object_get_ex(v, "mutation_id", &m) ||
        !json_object_is_type(m, json_type_string) ||
        !valid_token(json_object_get_string(m), (size_t)json_object_get_string_len(m)))
        return err_set(e, 400, "bad_request",
                       "%s.mutation_id must be a string of 1 to 64 of A-Z a-z 0-9 _ . : -", where);
    c->mutation_id = json_object_get_string(m);
    if (json_object_object_get_ex(seen, c->mutation_id, NULL))
        return err_set(e, 400, "bad_request", "%s.mutation_id '%s' appears twice in the batch",
                       where, c->mutation_id);
    json_object_object_add(seen, c->mutation_id, NULL);

    if (!json_object_object_get_ex(v, "action", &a) || !json_object_is_type(a, json_type_string))
        goto bad_action;
    for (k = 0; k < 3; k++)
        if (strcmp(json_object_get_string(a), action_names[k]) == 0)
            break;
    if (k == 3)
        goto bad_action;
    c->action = (enum push_action)k;

    if (!json_object_object_get_ex(v, "client_version", &cv) ||
        !json_object_is_type(cv, json_type_int) || json_object_get_int64(cv) < 0 ||
        sqljson_int_overflows(cv))
        return err_set(e, 400, "bad_request", "%s.client_version must be an integer >= 0", where);
    c->client_version = json_object_get_int64(cv);

    json_object_object_get_ex(v, "id", &id);
    if (id != NULL) {
        if (json_object_is_type(id, json_type_int)) {
            if (sqljson_int_overflows(id))
                return err_set(e, 400, "bad_request", "%s.id is out of range", where);
        } else if (!json_object_is_type(id, json_type_string) ||
                   json_object_get_string_len(id) == 0 ||
                   json_object_get_string_len(id) > ID_MAX_BYTES) {
            return err_set(e, 400, "bad_request",
                           "%s.id must be an integer or a string of 1 to %d bytes", where,
                           ID_MAX_BYTES);
        }
    } else if (c->action != PUSH_CREATE) {
        return err_set(e, 400, "bad_request", "%s: an %s needs an id", where,
                       push_action_name(c->action));
    }
    c->id = id;

    json_object_object_get_ex(v, "data", &data);
    if (c->action == PUSH_DELETE) {
        /* A delete's data (a client may send the last row it had) is not used. */
        if (data != NULL && !json_object_is_type(data, json_type_object))
            return err_set(e, 400, "bad_request", "%s.data must be an object", where);
        c->data = NULL;
    } else {
        if (data == NULL || !json_object_is_type(data, json_type_object))
            return err_set(e, 400, "bad_request", "%s: a %s needs data, an object of columns",
                           where, push_action_name(c->action));
        c->data = data;
    }
    return 0;
bad_action:
    return err_set(e, 400, "bad_request", "%s.action must be \"create\", \"update\" or \"delete\"",
                   where);
}

int
push_body_parse(struct push_body *b, const char *body, size_t n, int max_changes, struct err *e)
{
    static const char *const keys[] = {"client_id", "changes", NULL};
    struct json_object *cid, *arr, *seen = NULL;
    size_t i;
    int rc = -1;

    memset(b, 0, sizeof(*b));
    b->root = jsonr_parse(body, n, PUSH_BODY_MAX_DEPTH, e);
    if (b->root == NULL)
        return -1;
    if (!json_object_is_type(b->root, json_type_object))
        return err_set(e, 400, "bad_request",
                       "the body must be an object: {\"client_id\": ..., \"changes\": [...]}");
    if (only_keys(b->root, keys, "the body", e) < 0)
        return -1;
    if (!json_object_object_get_ex(b->root, "client_id", &cid) ||
        !json_object_is_type(cid, json_type_string) ||
        !valid_token(json_object_get_string(cid), (size_t)json_object_get_string_len(cid)))
        return err_set(e, 400, "bad_request",
                       "client_id must be a string of 1 to 64 of A-Z a-z 0-9 _ . : -");
    b->client_id = json_object_get_string(cid);
    if (!json_object_object_get_ex(b->root, "changes", &arr) ||
        !json_object_is_type(arr, json_type_array))
        return err_set(e, 400, "bad_request", "changes must be a list of changes");
    b->n = json_object_array_length(arr);
    if (b->n > (size_t)max_changes)
        return err_set(e, 413, "too_large", "%zu changes in one push is over the limit of %d", b->n,
                       max_changes);
    b->changes = calloc(b->n ? b->n : 1, sizeof(*b->changes));
    seen = json_object_new_object();
    if (b->changes == NULL || seen == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto out;
    }
    for (i = 0; i < b->n; i++)
        if (parse_change(json_object_array_get_idx(arr, i), i, &b->changes[i], seen, e) < 0)
            goto out;
    rc = 0;
out:
    json_object_put(seen);
    return rc;
}

void
push_body_free(struct push_body *b)
{
    free(b->changes);
    json_object_put(b->root);
    memset(b, 0, sizeof(*b));
}
