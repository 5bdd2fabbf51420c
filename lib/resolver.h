/*
 * resolver: the custom conflict resolver, the C side of strategy "custom".
 *
 * A conflict is a pushed change to a row that changed on the server after the
 * version the client based its edit on. For an entity configured with
 * "strategy": "custom", sync-push hands each conflict to one function with
 * this signature:
 *
 *   int rhtmx_resolve(const struct rhtmx_conflict *c, struct rhtmx_resolution *out,
 *                     void *ctx);
 *
 * It returns 0 after filling out->decision (and, for RHTMX_DECIDE_MERGED,
 * out->row), or -1 to refuse: the whole push then fails with 500, nothing of
 * it is written, and the client keeps its changes and retries later (a
 * resolver bug must never make a client drop data). out->message, if set, is
 * written to the server's error log.
 *
 * Where the function comes from:
 *   - a program built on lib/ registers it with push_endpoint_set_resolver()
 *     (see push_endpoint.h), with a ctx pointer of its choosing;
 *   - the shipped sync-push loads it from the shared object named by the
 *     config's "push": {"resolver": "resolver.so", "resolver_symbol": "..."}
 *     (symbol default RHTMX_RESOLVER_SYMBOL, ctx NULL).
 * A registered function takes precedence over the configured shared object.
 *
 * Rows are json-c objects whose members are the table's columns, in the same
 * form pulls send them (integers stay integers, blobs are hex text). Every
 * pointer in struct rhtmx_conflict is borrowed for the duration of the call:
 * do not put it, keep it or change it. The function is called inside the
 * push's write transaction, so it must be quick and must not touch the
 * database itself. examples/resolver/ is a complete example.
 */
#ifndef RHTMX_RESOLVER_H
#define RHTMX_RESOLVER_H

#include <json-c/json.h>

#include "err.h"

/* Bumped when struct rhtmx_conflict or struct rhtmx_resolution change shape. */
#define RHTMX_RESOLVER_ABI 1
/* The symbol looked up in the shared object when the config names none. */
#define RHTMX_RESOLVER_SYMBOL "rhtmx_resolve"

enum rhtmx_decision {
    RHTMX_DECIDE_SERVER = 0, /* keep the server's row; the client's change is dropped */
    RHTMX_DECIDE_CLIENT = 1, /* apply the client's change as sent (a delete deletes) */
    RHTMX_DECIDE_MERGED = 2, /* write out->row's columns over the server's row (never deletes) */
};

struct rhtmx_conflict {
    int abi;                    /* RHTMX_RESOLVER_ABI of the library calling */
    const char *entity;         /* the entity name, as in URLs */
    const char *table;          /* its table */
    const char *key;            /* its key column */
    const char *action;         /* the client's change: "create", "update" or "delete" */
    const char *client_id;      /* who pushed */
    const char *mutation_id;    /* which change of theirs */
    struct json_object *id;     /* the row's key */
    struct json_object *server; /* the row as the server has it now: every column */
    struct json_object *client; /* the columns the client sent (may be a subset; without
                                   the key); NULL for a delete */
    struct json_object *base;   /* the row as the client last saw it (from the change
                                   log), or NULL when unknown (never seen, compacted) */
    long long client_version;   /* the version the client based its edit on */
    long long server_version;   /* the version of the server's newest change to the row */
    long long client_time_ms;   /* when the push reached the server (server clock, ms
                                   since 1970) */
    long long server_time_ms;   /* when the server's newest change was made (same clock) */
};

struct rhtmx_resolution {
    enum rhtmx_decision decision;
    /* For RHTMX_DECIDE_MERGED: a new reference (the library puts it) to an object
     * of the columns to write; columns left out keep the server's value; the key,
     * if present, must be unchanged. Ignored (but still put) otherwise. */
    struct json_object *row;
    char message[256]; /* optional: why, for the server's error log */
};

typedef int (*rhtmx_resolver_fn)(const struct rhtmx_conflict *c, struct rhtmx_resolution *out,
                                 void *ctx);

/* ---- The library's side: holding and calling a resolver. ---- */

struct resolver;

/* A resolver for a function linked into the program. Returns a new resolver
 * (resolver_free), or NULL when out of memory. */
struct resolver *resolver_new(rhtmx_resolver_fn fn, void *ctx);

/* Load symbol (NULL: RHTMX_RESOLVER_SYMBOL) from the shared object at path.
 * Returns a new resolver (resolver_free closes the object), or NULL with e set
 * to 500 "config" naming the file and dlerror()'s words. */
struct resolver *resolver_load(const char *path, const char *symbol, struct err *e);

void resolver_free(struct resolver *r); /* NULL is harmless */

/* 1 if r was loaded from path with symbol (NULL symbol: the default). */
int resolver_is(const struct resolver *r, const char *path, const char *symbol);

/* Call r for conflict c. Returns 0 with out filled and checked (a known
 * decision; a MERGED row that is an object), or -1 with e set to 500
 * "internal" naming the resolver and its message; out->row is then NULL. */
int resolver_call(const struct resolver *r, const struct rhtmx_conflict *c,
                  struct rhtmx_resolution *out, struct err *e);

#endif
