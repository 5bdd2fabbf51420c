/*
 * A placeholder executable: answers every request with 501 in the error shape.
 * Built as sync-push and sync-events until their own sources land, so a
 * deployment that routes to them gets a clear answer instead of a 404.
 */
#include "http.h"

#ifndef RHTMX_PROGRAM
#define RHTMX_PROGRAM "rhtmx-sync"
#endif

static void
handle(struct http_req *req, void *ctx)
{
    (void)ctx;
    http_fail(req, 501, "not_implemented", "%s is not implemented in this build", RHTMX_PROGRAM);
}

int
main(void)
{
    return http_run(handle, NULL);
}
