/*
 * push_body: the body of a push, declared and checked.
 *
 *   {"client_id": "c-7f3a", "changes": [{"mutation_id": "m-1", "id": 3,
 *     "action": "create", "data": {...}, "client_version": 42}, ...]}
 *
 * (docs/PROTOCOL.md, docs/PUSH.md). push_body_parse() accepts exactly this
 * shape: strict JSON within a depth limit, no other members, every type and
 * bound checked, mutation ids unique in the batch. It looks nothing up; what a
 * change means for the table is push.c's business.
 */
#ifndef RHTMX_PUSH_BODY_H
#define RHTMX_PUSH_BODY_H

#include <stddef.h>

#include <json-c/json.h>

#include "err.h"

/* JSON nesting a push body may have: body, changes, change, data, a value. */
#define PUSH_BODY_MAX_DEPTH 8

enum push_action { PUSH_CREATE, PUSH_UPDATE, PUSH_DELETE };

struct push_change {
    const char *mutation_id; /* 1..64 of [A-Za-z0-9_.:-] */
    struct json_object *id;  /* an integer or a 1..1024-byte string; NULL when absent or null
                                (only for a create) */
    enum push_action action;
    struct json_object *data; /* an object (create, update); NULL for a delete */
    long long client_version; /* >= 0 */
};

struct push_body {
    struct json_object *root; /* owns everything the changes point into */
    const char *client_id;    /* 1..64 of [A-Za-z0-9_.:-] */
    struct push_change *changes;
    size_t n;
};

/* Parse text (n bytes) into b. 0, or -1 with e set: 400 bad_request naming
 * the problem, 413 too_large for more than max_changes changes. Either way
 * release b with push_body_free(). Borrowed pointers in b live as long as b. */
int push_body_parse(struct push_body *b, const char *text, size_t n, int max_changes,
                    struct err *e);

void push_body_free(struct push_body *b); /* a zeroed or failed b is fine */

/* "create", "update" or "delete". */
const char *push_action_name(enum push_action a);

#endif
