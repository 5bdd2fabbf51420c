/*
 * client-js: GET /api/sync/client.js and GET /api/sync/sw.js
 *
 * js/rhtmx-sync.js, js/rhtmx-sync-sw.js and the kill-switch worker
 * js/rhtmx-sync-sw-off.js, compiled into this executable at build time
 * (tools/embed), served by lib/client_js_endpoint.c. Runs as CGI or FastCGI.
 */
#include "client_js_endpoint.h"

/* Each file as tools/embed writes it: NAME, NAME_len, NAME_etag and the gzip copy. */
#define EMBEDDED(name)                                                                             \
    extern const unsigned char name[], name##_gz[];                                                \
    extern const unsigned long name##_len, name##_gz_len;                                          \
    extern const char name##_etag[], name##_gz_etag[]
#define COPY(bytes, suffix)                                                                        \
    {                                                                                              \
        bytes##suffix, bytes##suffix##_len, bytes##suffix##_etag                                   \
    }
#define FILE_OF(name) ((struct client_js_file){.raw = COPY(name, ), .gz = COPY(name, _gz)})

EMBEDDED(client_js);
EMBEDDED(sw_js);
EMBEDDED(sw_off_js);

int
main(void)
{
    struct client_js_endpoint ep;
    int rc;

    client_js_endpoint_init(&ep, FILE_OF(client_js), FILE_OF(sw_js), FILE_OF(sw_off_js));
    rc = runtime_run(client_js_endpoint_serve, &ep, &ep.run);
    client_js_endpoint_close(&ep);
    return rc;
}
