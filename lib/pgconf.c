/* pgconf: see pgconf.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgconf.h"

static const char *const url_prefixes[] = {"postgresql://", "postgres://", NULL};

int
pgconf_built(void)
{
#ifdef RHTMX_POSTGRES
    return 1;
#else
    return 0;
#endif
}

static int
is_url(const char *s)
{
    size_t i;

    for (i = 0; url_prefixes[i] != NULL; i++)
        if (strncmp(s, url_prefixes[i], strlen(url_prefixes[i])) == 0)
            return 1;
    return 0;
}

int
pgconf_is_pg(struct json_object *v)
{
    if (json_object_is_type(v, json_type_object))
        return 1; /* the only object form there is */
    return json_object_is_type(v, json_type_string) && is_url(json_object_get_string(v));
}

void
pgconf_free(struct pgconf *p)
{
    if (p == NULL)
        return;
    free(p->url);
    free(p->password_file);
    free(p->shown);
    free(p);
}

struct pgconf *
pgconf_dup(const struct pgconf *p)
{
    struct pgconf *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->url = strdup(p->url);
    c->shown = strdup(p->shown);
    c->password_file = p->password_file ? strdup(p->password_file) : NULL;
    if (c->url == NULL || c->shown == NULL || (p->password_file && c->password_file == NULL)) {
        pgconf_free(c);
        return NULL;
    }
    return c;
}

/* url with the password of "user:password@" replaced by "***": what messages show.
 * New string, or NULL when out of memory. */
static char *
url_shown(const char *url)
{
    const char *auth = strstr(url, "://"), *at, *colon, *slash;
    char *out;
    size_t n;

    if (auth == NULL)
        return strdup(url);
    auth += 3;
    slash = strchr(auth, '/');
    at = strchr(auth, '@');
    if (at == NULL || (slash != NULL && at > slash))
        return strdup(url);
    colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL)
        return strdup(url);
    n = (size_t)(colon - url) + 4 + strlen(at) + 1;
    out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%.*s:***%s", (int)(colon - url), url, at);
    return out;
}

struct pgconf *
pgconf_parse(struct json_object *v, char *why, size_t n)
{
    struct pgconf *p = calloc(1, sizeof(*p));
    struct json_object *url = v, *pw = NULL;

    if (p == NULL) {
        snprintf(why, n, "out of memory");
        goto err;
    }
    if (json_object_is_type(v, json_type_object)) {
        struct json_object_iterator it = json_object_iter_begin(v);
        struct json_object_iterator end = json_object_iter_end(v);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
            const char *k = json_object_iter_peek_name(&it);
            if (strcmp(k, "postgresql") != 0 && strcmp(k, "password_file") != 0) {
                snprintf(why, n,
                         "unknown key '%.64s' in \"database\" (an object names PostgreSQL: "
                         "\"postgresql\" and \"password_file\")",
                         k);
                goto err;
            }
        }
        url = json_object_object_get(v, "postgresql");
        pw = json_object_object_get(v, "password_file");
        if (url == NULL || !json_object_is_type(url, json_type_string) ||
            !is_url(json_object_get_string(url))) {
            snprintf(why, n, "\"database\": \"postgresql\" must be a postgresql:// URL");
            goto err;
        }
        if (pw != NULL &&
            (!json_object_is_type(pw, json_type_string) || json_object_get_string_len(pw) == 0)) {
            snprintf(why, n, "\"database\": \"password_file\" must be a non-empty string");
            goto err;
        }
    }
    if (!pgconf_built()) {
        snprintf(why, n,
                 "\"database\" names PostgreSQL, but these programs were built without "
                 "PostgreSQL support (build with cmake -DRHTMX_POSTGRES=ON and libpq: "
                 "docs/DEPLOY.md)");
        goto err;
    }
    p->url = strdup(json_object_get_string(url));
    p->shown = url_shown(p->url);
    if (pw != NULL)
        p->password_file = strdup(json_object_get_string(pw));
    if (p->url == NULL || p->shown == NULL || (pw != NULL && p->password_file == NULL)) {
        snprintf(why, n, "out of memory");
        goto err;
    }
    return p;
err:
    pgconf_free(p);
    return NULL;
}
