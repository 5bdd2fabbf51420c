/*
 * auth: who is asking, and what they may touch (see auth.h).
 *
 * The token comes from "Authorization: Bearer" or the configured cookie (both
 * parsed here from the request's input), is verified by auth_token.c under the
 * key of auth_secret.c; then the entity and owner rules. The other files of
 * the family: auth_b64url.c, auth_token.c, auth_secret.c, auth_origin.c.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "auth_int.h"
#include "log.h"

static const char realm_missing[] = "Bearer realm=\"rhtmx-sync\"";
static const char realm_invalid[] = "Bearer realm=\"rhtmx-sync\", error=\"invalid_token\"";

/* The token of req, borrowed from its variables: 1 found, 0 none. */
static int
find_token(const struct config *cfg, const struct http_req *req, const char **tok, size_t *n)
{
    const char *a = req->in.authorization;
    const char *c = req->in.cookie;
    size_t name_len = strlen(cfg->auth.cookie);

    if (a != NULL) {
        while (*a == ' ' || *a == '\t')
            a++;
        if (strncasecmp(a, "Bearer", 6) == 0 && (a[6] == ' ' || a[6] == '\t' || a[6] == '\0')) {
            const char *end;
            a += 6;
            while (*a == ' ' || *a == '\t')
                a++;
            end = a + strlen(a);
            while (end > a && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            *tok = a;
            *n = (size_t)(end - a);
            return 1; /* an empty Bearer is a bad token, not a missing one */
        }
        /* Another scheme (Basic auth of the site in front): the cookie may still carry one. */
    }
    /* Cookie: "a=1; rhtmx_sync=TOKEN; b=2" (RFC 6265 §4.2). The first wins: browsers send
     * the most specific path first. */
    while (c != NULL && *c != '\0') {
        const char *end = strchr(c, ';'), *eq;
        if (end == NULL)
            end = c + strlen(c);
        while (c < end && (*c == ' ' || *c == '\t'))
            c++;
        eq = memchr(c, '=', (size_t)(end - c));
        if (eq != NULL && (size_t)(eq - c) == name_len &&
            memcmp(c, cfg->auth.cookie, name_len) == 0) {
            const char *v = eq + 1, *ve = end;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"') {
                v++;
                ve--;
            }
            *tok = v;
            *n = (size_t)(ve - v);
            return 1;
        }
        c = *end ? end + 1 : end;
    }
    return 0;
}

int
auth_request(const struct config *cfg, struct http_req *req, struct identity *out, struct err *e)
{
    unsigned char key[AUTH_SECRET_MAX];
    size_t keylen = 0, n = 0;
    const char *tok = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->nentities = -1;
    if (cfg->auth.mode == AUTH_NONE) {
        out->anonymous = 1;
        return 0;
    }
    if (auth_secret_get(cfg, key, &keylen, e) < 0)
        goto out;
    if (!find_token(cfg, req, &tok, &n)) {
        http_header(req, "WWW-Authenticate", realm_missing);
        err_set(e, 401, "unauthorized",
                "a token is required (Authorization: Bearer, or the '%s' cookie)",
                cfg->auth.cookie);
        goto out;
    }
    if (auth_token_verify(key, keylen, tok, n, (long long)time(NULL), out, e) < 0) {
        if (e->status == 401)
            http_header(req, "WWW-Authenticate", realm_invalid);
        goto out;
    }
    rc = 0;
out:
    explicit_bzero(key, sizeof(key));
    return rc;
}

int
auth_entity_allowed(const struct identity *id, const char *entity, struct err *e)
{
    char q[ERR_QUOTED];
    int i;

    if (id->nentities < 0)
        return 0;
    for (i = 0; i < id->nentities; i++)
        if (strcmp(id->entities[i], entity) == 0)
            return 0;
    return err_set(e, 403, "forbidden", "this token does not give access to entity '%s'",
                   err_quote(q, entity));
}

int
auth_owner(const struct identity *id, const struct entity *en, const char **owner, struct err *e)
{
    *owner = NULL;
    if (en->owner_column == NULL)
        return 0;
    if (id->anonymous) {
        err_set(e, 500, "config",
                "entity '%s' has owner_column '%s' but auth mode is \"none\", which cannot tell "
                "users apart: refusing to serve it (use auth mode \"token\")",
                en->name, en->owner_column);
        log_once("%s", e->msg);
        return -1;
    }
    *owner = id->sub;
    return 0;
}
