/*
 * sync-push: POST /api/sync/{entity}
 *
 * Applies a batch of client changes to one entity, exactly once, resolving
 * conflicts by the entity's strategy, and answers what happened to each
 * change (docs/PROTOCOL.md, docs/PUSH.md). Runs as CGI or FastCGI. The whole
 * request lives in lib/push_endpoint.c, so programs with a linked-in conflict
 * resolver serve the same endpoint.
 */
#include "push_endpoint.h"

int
main(void)
{
    struct push_endpoint ep;
    int rc;

    push_endpoint_init(&ep, "sync-push", NULL);
    rc = runtime_run(push_endpoint_serve, &ep, &ep.run);
    push_endpoint_close(&ep);
    return rc;
}
