/*
 * config: parse and check the JSON configuration (see config.h).
 *
 * Each JSON object of the file has a table of the keys it accepts; anything
 * else is reported by name. Messages have the form "FILE: PROBLEM" so the one
 * stderr line they become points an operator straight at the fix.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "jsonr.h"
#include "pgconf.h"

#define CONFIG_MAX_BYTES (256 * 1024)
#define CONFIG_MAX_DEPTH 16
#define CONFIG_MAX_ENTITIES 256

static const char *const strategy_names[] = {
    [STRATEGY_LWW] = "last-write-wins", [STRATEGY_SERVER_WINS] = "server-wins",
    [STRATEGY_CLIENT_WINS] = "client-wins", [STRATEGY_MERGE] = "merge",
    [STRATEGY_CUSTOM] = "custom",
};

const char *
strategy_name(enum strategy s)
{
    return strategy_names[s];
}

int
config_valid_name(const char *s)
{
    size_t i;

    if (s == NULL || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (i = 1; s[i] != '\0'; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_') || i >= 64)
            return 0;
    return 1;
}

/* One parsing pass: the file name for messages, and the error sink. */
struct ctx {
    const char *path;
    struct err *e;
};

static int fail(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct ctx *x, const char *fmt, ...)
{
    char what[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return err_set(x->e, 500, "config", "%s: %s", x->path, what);
}

/* Every key of obj must be in allowed (NULL-terminated). */
static int
check_keys(struct ctx *x, struct json_object *obj, const char *where, const char *const *allowed)
{
    struct json_object_iterator it = json_object_iter_begin(obj);
    struct json_object_iterator end = json_object_iter_end(obj);
    size_t i;

    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *k = json_object_iter_peek_name(&it);
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(k, allowed[i]) == 0)
                break;
        if (allowed[i] == NULL)
            return fail(x, "unknown key '%s' in %s", k, where);
    }
    return 0;
}

/* Optional string key: *out becomes a new copy, or stays as is when absent. */
static int
get_str(struct ctx *x, struct json_object *obj, const char *key, const char *where, char **out)
{
    int bad = 0;
    struct json_object *v = jsonr_get(obj, key, json_type_string, &bad);

    if (bad)
        return fail(x, "'%s' in %s must be a string", key, where);
    if (v == NULL)
        return 0;
    if (json_object_get_string_len(v) == 0)
        return fail(x, "'%s' in %s must not be empty", key, where);
    free(*out);
    *out = strdup(json_object_get_string(v));
    return 0;
}

/* Optional integer key within [min, max]. */
static int
get_int(struct ctx *x, struct json_object *obj, const char *key, const char *where, long min,
        long max, long *out)
{
    int bad = 0;
    struct json_object *v = jsonr_get(obj, key, json_type_int, &bad);
    char range[64];
    int64_t n;

    if (bad)
        return fail(x, "'%s' in %s must be an integer", key, where);
    if (v == NULL)
        return 0;
    n = json_object_get_int64(v);
    if (n < min || n > max) {
        snprintf(range, sizeof(range), "%ld..%ld", min, max);
        return fail(x, "'%s' must be within %s", key, range);
    }
    *out = (long)n;
    return 0;
}

static int
get_bool(struct ctx *x, struct json_object *obj, const char *key, const char *where, int *out)
{
    int bad = 0;
    struct json_object *v = jsonr_get(obj, key, json_type_boolean, &bad);

    if (bad)
        return fail(x, "'%s' in %s must be true or false", key, where);
    if (v != NULL)
        *out = json_object_get_boolean(v);
    return 0;
}

/* Optional object key: *out is the borrowed object or NULL. */
static int
get_obj(struct ctx *x, struct json_object *obj, const char *key, struct json_object **out)
{
    int bad = 0;

    *out = jsonr_get(obj, key, json_type_object, &bad);
    if (bad)
        return fail(x, "'%s' must be an object", key);
    return 0;
}

/* path as given when absolute, else dir + "/" + path. New string. */
static char *
resolve(const char *dir, const char *path)
{
    char *out;
    size_t n;

    if (path[0] == '/')
        return strdup(path);
    n = strlen(dir) + strlen(path) + 2;
    out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%s/%s", dir, path);
    return out;
}

static int
parse_strategy(struct ctx *x, const char *name, enum strategy *out)
{
    size_t i;

    for (i = 0; i < sizeof(strategy_names) / sizeof(strategy_names[0]); i++) {
        if (strcmp(name, strategy_names[i]) == 0) {
            *out = (enum strategy)i;
            return 0;
        }
    }
    return fail(x, "unknown strategy '%s' (use last-write-wins, server-wins, client-wins, "
                   "merge or custom)", name);
}

static int
parse_entity(struct ctx *x, struct json_object *v, struct entity *en)
{
    static const char *const keys[] = {"name",   "table", "key", "strategy", "offline_writes",
                                       "owner_column", NULL};
    char *strategy = NULL;
    int rc = -1;

    en->offline_writes = 1;
    if (json_object_is_type(v, json_type_string)) {
        en->name = strdup(json_object_get_string(v));
    } else if (json_object_is_type(v, json_type_object)) {
        if (check_keys(x, v, "an entity", keys) < 0 ||
            get_str(x, v, "name", "an entity", &en->name) < 0 ||
            get_str(x, v, "table", "an entity", &en->table) < 0 ||
            get_str(x, v, "key", "an entity", &en->key) < 0 ||
            get_str(x, v, "owner_column", "an entity", &en->owner_column) < 0 ||
            get_str(x, v, "strategy", "an entity", &strategy) < 0 ||
            get_bool(x, v, "offline_writes", "an entity", &en->offline_writes) < 0)
            goto out;
        if (en->name == NULL) {
            fail(x, "an entity object needs a \"name\"");
            goto out;
        }
    } else {
        fail(x, "each entry of \"entities\" must be a name or an object");
        goto out;
    }
    if (!config_valid_name(en->name)) {
        fail(x, "entity name '%s' is not valid (letters, digits, _; at most 64)", en->name);
        goto out;
    }
    if (strcmp(en->name, "events") == 0 || strcmp(en->name, "client") == 0 ||
        strncmp(en->name, "_rhtmx", 6) == 0) {
        fail(x, "entity name '%s' is reserved", en->name);
        goto out;
    }
    if (en->table == NULL)
        en->table = strdup(en->table ? en->table : en->name);
    if (en->key == NULL)
        en->key = strdup("id");
    if (strncmp(en->table, "_rhtmx", 6) == 0 || strncmp(en->table, "sqlite_", 7) == 0) {
        fail(x, "table '%s' cannot be synced", en->table);
        goto out;
    }
    if (strategy != NULL && parse_strategy(x, strategy, &en->strategy) < 0)
        goto out;
    rc = 0;
out:
    free(strategy);
    return rc;
}

static int
parse_entities(struct ctx *x, struct config *c, struct json_object *root)
{
    int bad = 0;
    struct json_object *arr = jsonr_get(root, "entities", json_type_array, &bad);
    size_t i, j, n;

    if (bad || arr == NULL)
        return fail(x, "\"entities\" must be a list of entity names or objects");
    n = json_object_array_length(arr);
    if (n == 0 || n > CONFIG_MAX_ENTITIES)
        return fail(x, "\"entities\" must list 1 to 256 entities");
    c->entities = calloc(n, sizeof(*c->entities));
    if (c->entities == NULL)
        return fail(x, "out of memory");
    for (i = 0; i < n; i++) {
        c->nentities = i + 1;
        if (parse_entity(x, json_object_array_get_idx(arr, i), &c->entities[i]) < 0)
            return -1;
        for (j = 0; j < i; j++)
            if (strcmp(c->entities[j].name, c->entities[i].name) == 0)
                return fail(x, "entity '%s' is listed twice", c->entities[i].name);
    }
    return 0;
}

/* 1 if s is an origin as a browser sends it in Origin: scheme "://" host,
 * an optional ":port", at most a final "/"; no user, path, query or "*". */
static int
is_origin(const char *s)
{
    size_t n;

    if (!isalpha((unsigned char)*s))
        return 0;
    while (isalnum((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.')
        s++;
    if (strncmp(s, "://", 3) != 0)
        return 0;
    s += 3;
    n = strcspn(s, "/?#@* \t");
    return n > 0 && (s[n] == '\0' || strcmp(s + n, "/") == 0);
}

static int
parse_auth(struct ctx *x, struct config *c, struct json_object *root)
{
    static const char *const keys[] = {"mode", "secret_file", "cookie", "allowed_origins", NULL};
    struct json_object *auth, *origins;
    char *mode = NULL, *secret = NULL;
    int bad = 0, rc = -1;
    size_t i;

    if (get_obj(x, root, "auth", &auth) < 0)
        return -1;
    if (auth == NULL)
        return fail(x, "\"auth\" is required: {\"mode\": \"token\", ...} or {\"mode\": "
                       "\"none\"}");
    if (check_keys(x, auth, "\"auth\"", keys) < 0 || get_str(x, auth, "mode", "\"auth\"", &mode) < 0 ||
        get_str(x, auth, "secret_file", "\"auth\"", &secret) < 0 ||
        get_str(x, auth, "cookie", "\"auth\"", &c->auth.cookie) < 0)
        goto out;
    if (mode == NULL) {
        fail(x, "\"auth\" needs a \"mode\": \"token\" or \"none\"");
        goto out;
    }
    if (strcmp(mode, "none") == 0) {
        c->auth.mode = AUTH_NONE;
    } else if (strcmp(mode, "token") == 0) {
        c->auth.mode = AUTH_TOKEN;
        if (secret == NULL) {
            fail(x, "auth mode \"token\" needs \"secret_file\"");
            goto out;
        }
    } else {
        fail(x, "unknown auth mode '%s' (use \"token\" or \"none\")", mode);
        goto out;
    }
    if (secret != NULL)
        c->auth.secret_file = resolve(c->dir, secret);
    if (c->auth.cookie == NULL)
        c->auth.cookie = strdup("rhtmx_sync");
    origins = jsonr_get(auth, "allowed_origins", json_type_array, &bad);
    if (bad) {
        fail(x, "\"allowed_origins\" must be a list of strings");
        goto out;
    }
    if (origins != NULL) {
        c->auth.norigins = json_object_array_length(origins);
        c->auth.allowed_origins = calloc(c->auth.norigins + 1, sizeof(char *));
        for (i = 0; i < c->auth.norigins; i++) {
            struct json_object *o = json_object_array_get_idx(origins, i);
            if (!json_object_is_type(o, json_type_string)) {
                fail(x, "\"allowed_origins\" must be a list of strings");
                goto out;
            }
            c->auth.allowed_origins[i] = strdup(json_object_get_string(o));
            if (!is_origin(c->auth.allowed_origins[i])) {
                fail(x,
                     "\"allowed_origins\" entry '%.100s' is not an origin: write "
                     "scheme://host[:port], e.g. \"https://example.com\"",
                     c->auth.allowed_origins[i]);
                goto out;
            }
        }
    }
    rc = 0;
out:
    free(mode);
    free(secret);
    return rc;
}

static int
parse_sections(struct ctx *x, struct config *c, struct json_object *root)
{
    static const char *const pull_keys[] = {"default_limit", "max_limit", "gzip_min_bytes", NULL};
    static const char *const push_keys[] = {"max_body_bytes", "max_changes", "resolver",
                                            "resolver_symbol", NULL};
    static const char *const events_keys[] = {"mode",        "heartbeat", "lifetime", "poll_wait",
                                              "max_streams", "retry_ms",  NULL};
    static const char *const retention_keys[] = {"days", NULL};
    struct json_object *o;
    long v;
    char *s = NULL, *resolver = NULL;

    if (get_obj(x, root, "pull", &o) < 0)
        return -1;
    if (o != NULL) {
        if (check_keys(x, o, "\"pull\"", pull_keys) < 0)
            return -1;
        v = c->pull.max_limit;
        if (get_int(x, o, "max_limit", "\"pull\"", 1, 10000, &v) < 0)
            return -1;
        c->pull.max_limit = (int)v;
        v = c->pull.default_limit;
        if (get_int(x, o, "default_limit", "\"pull\"", 1, 10000, &v) < 0)
            return -1;
        c->pull.default_limit = (int)v;
        if (get_int(x, o, "gzip_min_bytes", "\"pull\"", 0, LONG_MAX, &c->pull.gzip_min_bytes) < 0)
            return -1;
    }
    if (c->pull.default_limit > c->pull.max_limit)
        c->pull.default_limit = c->pull.max_limit;

    if (get_obj(x, root, "push", &o) < 0)
        return -1;
    if (o != NULL) {
        if (check_keys(x, o, "\"push\"", push_keys) < 0 ||
            get_int(x, o, "max_body_bytes", "\"push\"", 1024, 64L << 20, &c->push.max_body_bytes) < 0)
            return -1;
        v = c->push.max_changes;
        if (get_int(x, o, "max_changes", "\"push\"", 1, 100000, &v) < 0)
            return -1;
        c->push.max_changes = (int)v;
        if (get_str(x, o, "resolver", "\"push\"", &resolver) < 0 ||
            get_str(x, o, "resolver_symbol", "\"push\"", &c->push.resolver_symbol) < 0) {
            free(resolver);
            return -1;
        }
        if (resolver != NULL) {
            c->push.resolver = resolve(c->dir, resolver);
            free(resolver);
        }
    }

    if (get_obj(x, root, "events", &o) < 0)
        return -1;
    if (o != NULL) {
        if (check_keys(x, o, "\"events\"", events_keys) < 0 || get_str(x, o, "mode", "\"events\"", &s) < 0)
            return -1;
        if (s != NULL) {
            if (strcmp(s, "auto") == 0)
                c->events.mode = EVENTS_AUTO;
            else if (strcmp(s, "stream") == 0)
                c->events.mode = EVENTS_STREAM;
            else if (strcmp(s, "poll") == 0)
                c->events.mode = EVENTS_POLL;
            else {
                fail(x, "unknown events mode '%s' (use auto, stream or poll)", s);
                free(s);
                return -1;
            }
            free(s);
        }
#define EV_INT(k, lo, hi)                                                                          \
    do {                                                                                           \
        v = c->events.k;                                                                           \
        if (get_int(x, o, #k, "\"events\"", lo, hi, &v) < 0)                                       \
            return -1;                                                                             \
        c->events.k = (int)v;                                                                      \
    } while (0)
        EV_INT(heartbeat, 1, 3600);
        EV_INT(lifetime, 1, 86400);
        EV_INT(poll_wait, 0, 3600);
        EV_INT(max_streams, 1, 100000);
        EV_INT(retry_ms, 100, 600000);
#undef EV_INT
    }

    if (get_obj(x, root, "retention", &o) < 0)
        return -1;
    if (o != NULL) {
        if (check_keys(x, o, "\"retention\"", retention_keys) < 0)
            return -1;
        v = c->retention.days;
        if (get_int(x, o, "days", "\"retention\"", 0, 36500, &v) < 0)
            return -1;
        c->retention.days = (int)v;
    }
    return 0;
}

static void
config_defaults(struct config *c)
{
    c->pull.default_limit = 1000;
    c->pull.max_limit = 1000;
    c->pull.gzip_min_bytes = 1024;
    c->push.max_body_bytes = 1L << 20;
    c->push.max_changes = 1000;
    c->events.mode = EVENTS_AUTO;
    c->events.heartbeat = 15;
    c->events.lifetime = 240;
    c->events.poll_wait = 25;
    c->events.max_streams = 10000;
    c->events.retry_ms = 2000;
    c->retention.days = 30;
}

struct config *
config_parse(const char *path, const char *text, size_t len, struct err *e)
{
    static const char *const keys[] = {"database", "entities", "auth", "pull", "push",
                                       "events",   "retention", "$comment", NULL};
    struct ctx x = {path, e};
    struct config *c = NULL;
    struct json_object *root = NULL, *dbv;
    char *db = NULL, *slash;
    struct err je;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        err_set(e, 500, "config", "%s: out of memory", path);
        goto err;
    }
    config_defaults(c);
    c->path = strdup(path);
    slash = strrchr(c->path, '/');
    c->dir = slash == NULL ? strdup(".") : strndup(c->path, (size_t)(slash - c->path));
    if (slash == c->path) {
        free(c->dir);
        c->dir = strdup("/");
    }

    root = jsonr_parse(text, len, CONFIG_MAX_DEPTH, &je);
    if (root == NULL) {
        err_set(e, 500, "config", "%s: %s", path, je.msg);
        goto err;
    }
    if (!json_object_is_type(root, json_type_object)) {
        fail(&x, "the top level must be a JSON object");
        goto err;
    }
    if (check_keys(&x, root, "the top level", keys) < 0)
        goto err;
    dbv = json_object_object_get(root, "database");
    if (dbv != NULL && pgconf_is_pg(dbv)) { /* [pg] PostgreSQL (pgconf.h) */
        char why[400];
        if ((c->pg = pgconf_parse(dbv, c->dir, why, sizeof(why))) == NULL) {
            fail(&x, "%s", why);
            goto err;
        }
        c->database = strdup(c->pg->shown);
    } else {
        if (get_str(&x, root, "database", "the top level", &db) < 0)
            goto err;
        if (db == NULL) {
            fail(&x, "\"database\" is required (the SQLite file, relative to this file)");
            goto err;
        }
        c->database = resolve(c->dir, db);
    }
    if (parse_entities(&x, c, root) < 0 || parse_auth(&x, c, root) < 0 ||
        parse_sections(&x, c, root) < 0)
        goto err;
    free(db);
    json_object_put(root);
    return c;
err:
    free(db);
    json_object_put(root);
    config_free(c);
    return NULL;
}

struct config *
config_load(const char *path, struct err *e)
{
    struct config *c = NULL;
    FILE *f = NULL;
    char *text = NULL;
    size_t n;

    f = fopen(path, "rb");
    if (f == NULL) {
        err_set(e, 500, "config", "%s: cannot open config file: %s", path, strerror(errno));
        goto out;
    }
    text = malloc(CONFIG_MAX_BYTES + 1);
    if (text == NULL) {
        err_set(e, 500, "config", "%s: out of memory", path);
        goto out;
    }
    n = fread(text, 1, CONFIG_MAX_BYTES + 1, f);
    if (ferror(f)) {
        err_set(e, 500, "config", "%s: cannot read config file: %s", path, strerror(errno));
        goto out;
    }
    if (n > CONFIG_MAX_BYTES) {
        err_set(e, 500, "config", "%s: config file larger than %d bytes", path, CONFIG_MAX_BYTES);
        goto out;
    }
    c = config_parse(path, text, n, e);
out:
    free(text);
    if (f != NULL)
        fclose(f);
    return c;
}

void
config_free(struct config *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->nentities; i++) {
        free(c->entities[i].name);
        free(c->entities[i].table);
        free(c->entities[i].key);
        free(c->entities[i].owner_column);
    }
    free(c->entities);
    for (i = 0; i < c->auth.norigins; i++)
        free(c->auth.allowed_origins[i]);
    free(c->auth.allowed_origins);
    free(c->auth.secret_file);
    free(c->auth.cookie);
    free(c->push.resolver);
    free(c->push.resolver_symbol);
    free(c->database);
    pgconf_free(c->pg);
    free(c->dir);
    free(c->path);
    free(c);
}

const struct entity *
config_entity(const struct config *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nentities; i++)
        if (strcmp(c->entities[i].name, name) == 0)
            return &c->entities[i];
    return NULL;
}

char *
config_locate(void)
{
    const char *env = getenv("RHTMX_SYNC_CONFIG");
    char exe[PATH_MAX], *slash, *out;
    ssize_t n;
    size_t len;

    if (env != NULL && env[0] != '\0')
        return strdup(env);
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return strdup("rhtmx-sync.json");
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash != NULL)
        *slash = '\0';
    len = strlen(exe) + sizeof("/rhtmx-sync.json");
    out = malloc(len);
    if (out != NULL)
        snprintf(out, len, "%s/rhtmx-sync.json", exe);
    return out;
}
