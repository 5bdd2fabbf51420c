/*
 * resolver: holding and calling a custom conflict resolver (see resolver.h).
 *
 * A resolver is a function pointer plus the context it is called with, and,
 * when it came from a shared object, the dlopen() handle that keeps the code
 * mapped. The object is opened with RTLD_NOW so a missing symbol inside it is
 * reported when the config is read, not in the middle of a push.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver.h"

struct resolver {
    rhtmx_resolver_fn fn;
    void *ctx;
    void *dl;     /* dlopen handle, or NULL when linked in */
    char *path;   /* the shared object, or NULL */
    char *symbol; /* the symbol looked up, or NULL */
};

struct resolver *
resolver_new(rhtmx_resolver_fn fn, void *ctx)
{
    struct resolver *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->fn = fn;
    r->ctx = ctx;
    return r;
}

struct resolver *
resolver_load(const char *path, const char *symbol, struct err *e)
{
    struct resolver *r = NULL;
    const char *why;
    void *sym;

    if (symbol == NULL)
        symbol = RHTMX_RESOLVER_SYMBOL;
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return NULL;
    }
    r->path = strdup(path);
    r->symbol = strdup(symbol);
    r->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (r->dl == NULL) {
        why = dlerror();
        err_set(e, 500, "config", "push.resolver: cannot load %s: %s", path,
                why ? why : "unknown error");
        goto err;
    }
    dlerror();
    sym = dlsym(r->dl, symbol);
    why = dlerror();
    if (sym == NULL || why != NULL) {
        err_set(e, 500, "config", "push.resolver: %s has no function '%s'%s%s", path, symbol,
                why ? ": " : "", why ? why : "");
        goto err;
    }
    /* POSIX guarantees that a data pointer from dlsym() converts to a function pointer. */
    memcpy(&r->fn, &sym, sizeof(r->fn));
    return r;
err:
    resolver_free(r);
    return NULL;
}

void
resolver_free(struct resolver *r)
{
    if (r == NULL)
        return;
    if (r->dl != NULL)
        dlclose(r->dl);
    free(r->path);
    free(r->symbol);
    free(r);
}

int
resolver_is(const struct resolver *r, const char *path, const char *symbol)
{
    if (symbol == NULL)
        symbol = RHTMX_RESOLVER_SYMBOL;
    return r != NULL && r->path != NULL && strcmp(r->path, path) == 0 &&
           strcmp(r->symbol, symbol) == 0;
}

int
resolver_call(const struct resolver *r, const struct rhtmx_conflict *c,
              struct rhtmx_resolution *out, struct err *e)
{
    const char *who = r->path != NULL ? r->path : "the registered resolver";
    int rc;

    memset(out, 0, sizeof(*out));
    out->decision = RHTMX_DECIDE_SERVER;
    rc = r->fn(c, out, r->ctx);
    out->message[sizeof(out->message) - 1] = '\0';
    if (rc != 0) {
        err_set(e, 500, "internal", "custom resolver (%s) failed on %s %s: %s", who, c->entity,
                c->mutation_id, out->message[0] ? out->message : "no reason given");
        goto err;
    }
    switch (out->decision) {
    case RHTMX_DECIDE_SERVER:
    case RHTMX_DECIDE_CLIENT:
        break;
    case RHTMX_DECIDE_MERGED:
        if (out->row == NULL || !json_object_is_type(out->row, json_type_object)) {
            err_set(e, 500, "internal",
                    "custom resolver (%s) decided 'merged' on %s %s without a row object", who,
                    c->entity, c->mutation_id);
            goto err;
        }
        return 0;
    default:
        err_set(e, 500, "internal", "custom resolver (%s) returned unknown decision %d on %s %s",
                who, (int)out->decision, c->entity, c->mutation_id);
        goto err;
    }
    json_object_put(out->row); /* only MERGED carries a row */
    out->row = NULL;
    return 0;
err:
    json_object_put(out->row);
    out->row = NULL;
    return -1;
}
