/* cors: Cross-Origin Resource Sharing for auth.allowed_origins (see cors.h). */
#include <string.h>

#include "auth.h"
#include "cors.h"

int
cors_headers(const struct config *cfg, struct http_req *req)
{
    char origin[512];

    if (!auth_origin_listed(cfg, req->in.origin, origin, sizeof(origin)))
        return 0;
    /* The origin as the browser serialises it (what it compares with), made
     * from the listed one, never raw request bytes. */
    http_header(req, "Access-Control-Allow-Origin", origin);
    http_header(req, "Access-Control-Allow-Credentials", "true");
    http_header(req, "Access-Control-Expose-Headers", "Retry-After, X-Rhtmx-Sync");
    http_header(req, "Vary", "Origin");
    return 1;
}

/* 1 if method is one of the comma-separated list (exactly, as methods are
 * case-sensitive). */
static int
method_in(const char *method, const char *list)
{
    size_t n = strlen(method);
    const char *p = list;

    if (n == 0)
        return 0;
    while ((p = strstr(p, method)) != NULL) {
        if ((p == list || p[-1] == ' ' || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
        p += n;
    }
    return 0;
}

void
cors_options(const struct config *cfg, struct http_req *req, const char *allow, const char *methods)
{
    const char *want = req->in.cors_method;

    http_header(req, "Allow", allow);
    if (want != NULL && method_in(want, methods) && cors_headers(cfg, req)) {
        http_header(req, "Access-Control-Allow-Methods", methods);
        http_header(req, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
        http_header(req, "Access-Control-Max-Age", CORS_MAX_AGE);
    }
    http_body(req, 204, NULL);
}
