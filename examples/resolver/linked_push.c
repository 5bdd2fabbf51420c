/*
 * push-with-resolver: sync-push with a conflict resolver linked in.
 *
 * The same endpoint as cgi-bin/sync-push.c, for a program built on lib/ that
 * registers its resolver instead of naming a shared object in the config.
 * Here the resolver is sticky_done.c's rhtmx_resolve(); its ctx is NULL, but a
 * program can hand its resolver any state it likes. A registered resolver is
 * used for every entity with "strategy": "custom", whatever push.resolver says.
 */
#include "push_endpoint.h"
#include "runtime.h"

int rhtmx_resolve(const struct rhtmx_conflict *c, struct rhtmx_resolution *out, void *ctx);

int
main(void)
{
    struct push_endpoint ep;
    int rc;

    push_endpoint_init(&ep, "push-with-resolver", NULL);
    if (push_endpoint_set_resolver(&ep, rhtmx_resolve, NULL) < 0)
        return 1;
    rc = runtime_run(push_endpoint_serve, &ep, NULL);
    push_endpoint_close(&ep);
    return rc;
}
