/*
 * sync-pull: GET /api/sync/{entity}?since=V&limit=N (and OPTIONS preflights).
 * Runs as CGI or FastCGI; the endpoint is lib/pull_endpoint.c.
 */
#include "pull_endpoint.h"

int
main(void)
{
    struct pull_endpoint ep;
    int rc;

    pull_endpoint_init(&ep, "sync-pull", NULL);
    rc = runtime_run(pull_endpoint_serve, &ep, &ep.run);
    pull_endpoint_close(&ep);
    return rc;
}
