/*
 * sync-events: GET /api/sync/events?entities=a,b&since=V[&mode=poll]
 * Runs as CGI or FastCGI; the endpoint is lib/events_endpoint.c.
 */
#include "events_endpoint.h"

int
main(void)
{
    struct events_endpoint ep;
    int rc;

    events_endpoint_init(&ep, "sync-events", NULL);
    rc = runtime_run(events_endpoint_serve, &ep, &ep.run);
    events_endpoint_close(&ep);
    return rc;
}
