/*
 * client-js: GET /api/sync/client.js
 *
 * js/rhtmx-sync.js, compiled into this executable at build time (tools/embed),
 * served by lib/client_js_endpoint.c. Runs as CGI or FastCGI.
 */
#include "client_js_endpoint.h"

extern const unsigned char client_js[], client_js_gz[];
extern const unsigned long client_js_len, client_js_gz_len;
extern const char client_js_etag[], client_js_gz_etag[];

int
main(void)
{
    struct client_js_endpoint ep;
    int rc;

    client_js_endpoint_init(
        &ep, (struct client_js_copy){client_js, client_js_len, client_js_etag},
        (struct client_js_copy){client_js_gz, client_js_gz_len, client_js_gz_etag});
    rc = runtime_run(client_js_endpoint_serve, &ep, &ep.run);
    client_js_endpoint_close(&ep);
    return rc;
}
