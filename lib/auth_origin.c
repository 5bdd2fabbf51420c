/*
 * auth_origin: where a request comes from. Origin (or Referer) headers
 * compared as origins with auth.allowed_origins and the request's own Host:
 * cross-site write protection (auth_origin_ok) and the CORS allow list
 * (auth_origin_listed, cors.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"

#define ORIGIN_MAX 512

/*
 * The origin of url ("scheme://host[:port]...") as "scheme://host[:port]",
 * lower-cased, without the scheme's default port. only_origin: nothing may
 * follow the authority but one "/". Returns the length of the scheme (so
 * out + len + 3 is the authority), or -1.
 */
static int
origin_of(const char *url, int only_origin, char *out, size_t outlen)
{
    const char *p = url, *auth, *end;
    size_t slen, alen, i;

    if (!isalpha((unsigned char)*p))
        return -1;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return -1;
    slen = (size_t)(p - url);
    auth = p + 3;
    end = auth + strcspn(auth, "/?#");
    if (only_origin && *end != '\0' && strcmp(end, "/") != 0)
        return -1;
    alen = (size_t)(end - auth);
    if (alen == 0 || memchr(auth, '@', alen) != NULL || slen + 3 + alen >= outlen)
        return -1;
    for (i = 0; i < slen + 3 + alen; i++)
        out[i] = (char)tolower((unsigned char)url[i]);
    out[i] = '\0';
    if (slen == 5 && memcmp(out, "https", 5) == 0 && i > 4 && strcmp(out + i - 4, ":443") == 0)
        out[i - 4] = '\0';
    else if (slen == 4 && memcmp(out, "http", 4) == 0 && i > 3 && strcmp(out + i - 3, ":80") == 0)
        out[i - 3] = '\0';
    return (int)slen;
}

int
auth_origin_listed(const struct config *cfg, const char *origin, char *out, size_t outlen)
{
    char a[ORIGIN_MAX];
    size_t i;

    if (origin == NULL || origin_of(origin, 1, out, outlen) < 0)
        return 0;
    for (i = 0; i < cfg->auth.norigins; i++)
        if (origin_of(cfg->auth.allowed_origins[i], 1, a, sizeof(a)) >= 0 && strcmp(a, out) == 0)
            return 1;
    return 0;
}

int
auth_origin_ok(const struct config *cfg, const struct http_req *req, struct err *e)
{
    const char *origin = req->in.origin;
    const char *host = req->in.host;
    const char *what = "Origin";
    char o[ORIGIN_MAX], a[ORIGIN_MAX], h[ORIGIN_MAX], q[ERR_QUOTED];
    int slen;
    size_t i, hl;

    if (origin == NULL || *origin == '\0') {
        origin = req->in.referer;
        what = "Referer";
        if (origin == NULL || *origin == '\0')
            return 0; /* not a browser: nothing cross-site about it */
    }
    slen = origin_of(origin, what[0] == 'O', o, sizeof(o));
    if (slen < 0)
        return err_set(e, 403, "forbidden", "cross-site request refused: %s '%s' is not allowed",
                       what, err_quote(q, origin));
    for (i = 0; i < cfg->auth.norigins; i++)
        if (origin_of(cfg->auth.allowed_origins[i], 1, a, sizeof(a)) >= 0 && strcmp(a, o) == 0)
            return 0;
    /* The request's own origin. Only the authority is compared: behind a proxy that ends TLS
     * the program may believe it is served over http while the page is https. */
    if (host != NULL && (hl = strlen(host)) > 0 && hl < sizeof(h)) {
        const char *oa = o + slen + 3;
        for (i = 0; i <= hl; i++)
            h[i] = (char)tolower((unsigned char)host[i]);
        if (hl > 4 && strcmp(h + hl - 4, ":443") == 0)
            h[hl - 4] = '\0';
        else if (hl > 3 && strcmp(h + hl - 3, ":80") == 0)
            h[hl - 3] = '\0';
        if (strcmp(oa, h) == 0)
            return 0;
    }
    return err_set(e, 403, "forbidden", "cross-site request refused: %s '%s' is not allowed", what,
                   err_quote(q, origin));
}
