/*
 * config: parse and check the JSON configuration (see config.h).
 *
 * config_keys is the one declaration of the file's keys: parse_section()
 * reads a JSON object by it (rejecting any key the table does not have, then
 * each key by its type and bounds), defaults() fills a section from it, and
 * config_describe() prints it. What the table cannot say (an entity given as
 * a bare name, reserved names, token mode needing a secret, origins) is
 * checked in code after it. Messages have the form "FILE: PROBLEM" so the one
 * line of the error log they become points an operator straight at the fix.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "jsonr.h"
#include "pgconf.h"
#include "resolver.h"

#define CONFIG_MAX_BYTES (256 * 1024)
#define CONFIG_MAX_DEPTH 16
#define CONFIG_MAX_ENTITIES 256

static const char *const strategy_names[] = {
    [STRATEGY_LWW] = "last-write-wins",     [STRATEGY_SERVER_WINS] = "server-wins",
    [STRATEGY_CLIENT_WINS] = "client-wins", [STRATEGY_MERGE] = "merge",
    [STRATEGY_CUSTOM] = "custom",           NULL,
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

/* ---- The table ---- */

static const char *const auth_modes[] = {[AUTH_NONE] = "none", [AUTH_TOKEN] = "token", NULL};
static const char *const events_modes[] = {
    [EVENTS_AUTO] = "auto", [EVENTS_STREAM] = "stream", [EVENTS_POLL] = "poll", NULL};

/* CONFIG_ENUM and CONFIG_BOOL members are read and written as int. */
_Static_assert(sizeof(enum strategy) == sizeof(int), "enum strategy is an int");
_Static_assert(sizeof(enum auth_mode) == sizeof(int), "enum auth_mode is an int");
_Static_assert(sizeof(enum events_mode) == sizeof(int), "enum events_mode is an int");

#define MEMBER(type, m) offsetof(type, m), sizeof(((type *)0)->m)
#define AT(m) MEMBER(struct config, m)
#define EN(m) MEMBER(struct entity, m)

/* Every key of the file, in the README's order (config.h describes the
 * fields). Defaults and bounds live here and nowhere else. */
const struct config_key config_keys[] = {
    {.key = "database",
     .type = CONFIG_DATABASE,
     AT(database),
     .def = "(required)",
     .missing = "\"database\" is required (the SQLite file, relative to this file)",
     .doc = "the SQLite file your app uses; it must exist. Or a PostgreSQL database, "
            "`\"postgresql://user@host/dbname\"` or `{\"postgresql\": URL, \"password_file\": "
            "FILE}`, in a build with `-DRHTMX_POSTGRES=ON` ([docs/POSTGRES.md](docs/POSTGRES.md))"},
    {.key = "entities",
     .type = CONFIG_ENTITIES,
     .def = "(required)",
     .doc = "names (`\"users\"`: table `users`, key `id`) or objects:"},
    {.key = "entities[].name",
     .type = CONFIG_STRING,
     EN(name),
     .def = "(required)",
     .missing = "an entity object needs a \"name\"",
     .doc = "the name in URLs and events: letters, digits, `_`"},
    {.key = "entities[].table",
     .type = CONFIG_STRING,
     EN(table),
     .def = "`name`",
     .doc = "the table"},
    {.key = "entities[].key",
     .type = CONFIG_STRING,
     EN(key),
     .string = "id",
     .doc = "the key column (integer or text); it must name one row: the table's only "
            "`PRIMARY KEY` column, or a column with a `UNIQUE` index (or constraint) of its own, "
            "not partial. `NOT NULL` is not required: the change log refuses a row whose key is "
            "`NULL`"},
    {.key = "entities[].strategy",
     .type = CONFIG_ENUM,
     EN(strategy),
     .value = STRATEGY_LWW,
     .names = strategy_names,
     .noun = "strategy",
     .help = "(use last-write-wins, server-wins, client-wins, merge or custom)",
     .doc = "conflict rule for pushes: `last-write-wins`, `server-wins`, `client-wins`, `merge`, "
            "`custom`"},
    {.key = "entities[].offline_writes",
     .type = CONFIG_BOOL,
     EN(offline_writes),
     .value = 1,
     .doc = "whether browsers may queue writes for it"},
    {.key = "entities[].owner_column",
     .type = CONFIG_STRING,
     EN(owner_column),
     .doc = "per-user rows: each user sees only rows whose column equals their id (the scope "
            "`CAST(column AS TEXT) = :user`)"},
    {.key = "entities[].scope",
     .type = CONFIG_STRING,
     EN(scope),
     .doc = "sync rules: an SQL boolean over the row's columns, with `:user` (the token's "
            "`sub`) and `:claim.NAME` (a string claim of the token), e.g. `\"list_id IN (SELECT "
            "list_id FROM list_members WHERE user_id = :user)\"`; each user pulls, pushes and "
            "hears about only the rows it selects, and rows that leave it leave their devices "
            "([SECURITY.md](docs/SECURITY.md#sync-rules-scope)). Needs `auth.mode` `\"token\"`; "
            "not with `owner_column`"},
    {.key = "auth.mode",
     .type = CONFIG_ENUM,
     AT(auth.mode),
     .def = "(required)",
     .missing = "\"auth\" needs a \"mode\": \"token\" or \"none\"",
     .names = auth_modes,
     .noun = "auth mode",
     .help = "(use \"token\" or \"none\")",
     .doc = "`\"token\"`, or an explicit `\"none\"` (logged as a warning at start)"},
    {.key = "auth.secret_file",
     .type = CONFIG_PATH,
     AT(auth.secret_file),
     .doc = "token mode (required there): the file holding the secret that signs tokens"},
    {.key = "auth.cookie",
     .type = CONFIG_STRING,
     AT(auth.cookie),
     .string = "rhtmx_sync",
     .doc = "token mode: the cookie that carries the token"},
    {.key = "auth.allowed_origins",
     .type = CONFIG_ORIGINS,
     .doc = "other origins (`\"https://app.example\"`: scheme, host, port; no wildcard, no "
            "path) whose pages may push and read with credentials (CORS); the programs' own "
            "origin is always allowed"},
    {.key = "pull.default_limit",
     .type = CONFIG_INT,
     AT(pull.default_limit),
     .min = 1,
     .max = 10000,
     .value = 1000,
     .doc = "page size when `limit` is absent (`pull.max_limit` when that is smaller)"},
    {.key = "pull.max_limit",
     .type = CONFIG_INT,
     AT(pull.max_limit),
     .min = 1,
     .max = 10000,
     .value = 1000,
     .doc = "the largest `limit` a pull may ask for"},
    {.key = "pull.gzip_min_bytes",
     .type = CONFIG_INT,
     AT(pull.gzip_min_bytes),
     .min = 0,
     .max = LONG_MAX,
     .value = 1024,
     .doc = "smallest answer worth compressing"},
    {.key = "push.max_body_bytes",
     .type = CONFIG_INT,
     AT(push.max_body_bytes),
     .min = 1024,
     .max = 64L << 20,
     .value = 1L << 20,
     .doc = "the largest push body, in bytes (413 beyond)"},
    {.key = "push.max_changes",
     .type = CONFIG_INT,
     AT(push.max_changes),
     .min = 1,
     .max = 100000,
     .value = 1000,
     .doc = "the most changes in one push (413 beyond)"},
    {.key = "push.resolver",
     .type = CONFIG_PATH,
     AT(push.resolver),
     .doc = "shared object with a custom conflict resolver"},
    {.key = "push.resolver_symbol",
     .type = CONFIG_STRING,
     AT(push.resolver_symbol),
     .string = RHTMX_RESOLVER_SYMBOL,
     .doc = "the resolver's function in it"},
    {.key = "events.mode",
     .type = CONFIG_ENUM,
     AT(events.mode),
     .value = EVENTS_AUTO,
     .names = events_modes,
     .noun = "events mode",
     .help = "(use auto, stream or poll)",
     .doc = "`auto`, `stream` or `poll` (see live updates)"},
    {.key = "events.heartbeat",
     .type = CONFIG_INT,
     AT(events.heartbeat),
     .min = 1,
     .max = 3600,
     .value = 15,
     .doc = "seconds between a stream's keep-alive comments"},
    {.key = "events.lifetime",
     .type = CONFIG_INT,
     AT(events.lifetime),
     .min = 1,
     .max = 86400,
     .value = 240,
     .doc = "seconds before a stream ends on purpose"},
    {.key = "events.poll_wait",
     .type = CONFIG_INT,
     AT(events.poll_wait),
     .min = 0,
     .max = 3600,
     .value = 25,
     .doc = "seconds a poll answer waits for news"},
    {.key = "events.max_streams",
     .type = CONFIG_INT,
     AT(events.max_streams),
     .min = 1,
     .max = 100000,
     .value = 10000,
     .doc = "streams per process (the next gets `503 busy`)"},
    {.key = "events.retry_ms",
     .type = CONFIG_INT,
     AT(events.retry_ms),
     .min = 100,
     .max = 600000,
     .value = 2000,
     .doc = "the SSE `retry:` of a stream (plus up to half of it, per answer; a poll answer's is "
            "100 plus up to 50)"},
    {.key = "retention.days",
     .type = CONFIG_INT,
     AT(retention.days),
     .min = 0,
     .max = 36500,
     .value = 30,
     .doc = "how long tombstones and superseded changes are kept"},
    {.key = "$comment", .type = CONFIG_NOTE, .doc = "ignored: room for a note"},
};
const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

/* The part of k->key after section + ".", or NULL when k is not in section
 * ("" is the top level: keys without a dot). */
static const char *
leaf_of(const struct config_key *k, const char *section)
{
    size_t n = strlen(section);

    if (n == 0)
        return strchr(k->key, '.') == NULL ? k->key : NULL;
    if (strncmp(k->key, section, n) != 0 || k->key[n] != '.')
        return NULL;
    return k->key + n + 1;
}

/* 1 if name is a key of the top level: a key without a dot, or a section. */
static int
top_level_key(const char *name)
{
    size_t i, n = strcspn(name, ".[");

    if (name[n] != '\0')
        return 0;
    for (i = 0; i < config_nkeys; i++) {
        const char *k = config_keys[i].key;
        if (strncmp(k, name, n) == 0 && (k[n] == '\0' || k[n] == '.' || k[n] == '['))
            return 1;
    }
    return 0;
}

void
config_default_text(const struct config_key *k, struct buf *out)
{
    if (k->def != NULL)
        buf_adds(out, k->def);
    else if (k->type == CONFIG_INT)
        buf_printf(out, "%ld", k->value);
    else if (k->type == CONFIG_BOOL)
        buf_adds(out, k->value ? "`true`" : "`false`");
    else if (k->type == CONFIG_ENUM)
        buf_printf(out, "`\"%s\"`", k->names[k->value]);
    else if (k->string != NULL)
        buf_printf(out, "`\"%s\"`", k->string);
    else
        buf_adds(out, "none");
}

/* ---- Parsing ---- */

/* One parsing pass: the file name for messages, the file's folder, and the
 * error sink. */
struct ctx {
    const char *path;
    const char *dir;
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

/* Every key of obj must be a key of section in the table. */
static int
check_keys(struct ctx *x, struct json_object *obj, const char *section, const char *where)
{
    struct json_object_iterator it = json_object_iter_begin(obj);
    struct json_object_iterator end = json_object_iter_end(obj);
    size_t i;

    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *name = json_object_iter_peek_name(&it);
        int known = section[0] == '\0' && top_level_key(name);

        for (i = 0; !known && i < config_nkeys; i++) {
            const char *leaf = leaf_of(&config_keys[i], section);
            known = leaf != NULL && strcmp(leaf, name) == 0;
        }
        if (!known)
            return fail(x, "unknown key '%s' in %s", name, where);
    }
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

static void
store_int(void *at, size_t size, long v)
{
    assert(size == sizeof(long) || size == sizeof(int)); /* CONFIG_INT members */
    if (size == sizeof(long))
        *(long *)at = v;
    else
        *(int *)at = (int)v;
}

/* Key k (named leaf in obj) into base + k->offset, when present. */
static int
parse_key(struct ctx *x, const struct config_key *k, const char *leaf, struct json_object *obj,
          const char *where, char *base)
{
    static const enum json_type want[] = {
        [CONFIG_STRING] = json_type_string, [CONFIG_PATH] = json_type_string,
        [CONFIG_INT] = json_type_int,       [CONFIG_BOOL] = json_type_boolean,
        [CONFIG_ENUM] = json_type_string,
    };
    static const char *const what[] = {
        [CONFIG_STRING] = "a string",    [CONFIG_PATH] = "a string", [CONFIG_INT] = "an integer",
        [CONFIG_BOOL] = "true or false", [CONFIG_ENUM] = "a string",
    };
    void *at = base + k->offset;
    struct json_object *v;
    const char *s;
    int64_t n;
    int bad = 0;
    size_t i;

    v = jsonr_get(obj, leaf, want[k->type], &bad);
    if (bad)
        return fail(x, "'%s' in %s must be %s", leaf, where, what[k->type]);
    if (v == NULL)
        return k->missing != NULL ? fail(x, "%s", k->missing) : 0;
    switch (k->type) {
    case CONFIG_INT:
        n = json_object_get_int64(v);
        if (n < k->min || n > k->max)
            return fail(x, "'%s' must be within %ld..%ld", leaf, k->min, k->max);
        store_int(at, k->size, (long)n);
        return 0;
    case CONFIG_BOOL:
        *(int *)at = json_object_get_boolean(v);
        return 0;
    default:
        break;
    }
    s = json_object_get_string(v);
    if (s[0] == '\0')
        return fail(x, "'%s' in %s must not be empty", leaf, where);
    if (k->type == CONFIG_ENUM) {
        for (i = 0; k->names[i] != NULL; i++)
            if (strcmp(s, k->names[i]) == 0) {
                *(int *)at = (int)i;
                return 0;
            }
        return fail(x, "unknown %s '%s' %s", k->noun, s, k->help);
    }
    free(*(char **)at);
    *(char **)at = k->type == CONFIG_PATH ? resolve(x->dir, s) : strdup(s);
    if (*(char **)at == NULL)
        return fail(x, "out of memory");
    return 0;
}

/* [pg] "database" (k) of the top level obj into the config at base: a path, resolved,
 * or a PostgreSQL connection (pgconf.h), whose URL without its password becomes
 * database. */
static int
parse_database(struct ctx *x, const struct config_key *k, struct json_object *obj, char *base)
{
    struct config *c = (struct config *)base;
    struct json_object *v = json_object_object_get(obj, k->key);
    char why[400];

    if (v == NULL)
        return fail(x, "%s", k->missing);
    if (pgconf_is_pg(v)) {
        if ((c->pg = pgconf_parse(v, why, sizeof(why))) == NULL)
            return fail(x, "%s", why);
        if (c->pg->password_file != NULL) {
            char *pw = resolve(x->dir, c->pg->password_file);
            free(c->pg->password_file);
            if ((c->pg->password_file = pw) == NULL)
                return fail(x, "out of memory");
        }
        c->database = strdup(c->pg->shown);
    } else if (!json_object_is_type(v, json_type_string)) {
        return fail(x, "'database' in the top level must be a string (or an object naming "
                       "PostgreSQL)");
    } else if (json_object_get_string_len(v) == 0) {
        return fail(x, "'database' in the top level must not be empty");
    } else {
        c->database = resolve(x->dir, json_object_get_string(v));
    }
    return c->database == NULL ? fail(x, "out of memory") : 0;
}

/* The defaults of section's keys into base. */
static int
defaults(struct ctx *x, const char *section, char *base)
{
    size_t i;

    for (i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        void *at = base + k->offset;

        if (leaf_of(k, section) == NULL)
            continue;
        if (k->type == CONFIG_INT)
            store_int(at, k->size, k->value);
        else if (k->type == CONFIG_BOOL || k->type == CONFIG_ENUM)
            *(int *)at = (int)k->value;
        else if (k->type == CONFIG_STRING && k->string != NULL &&
                 (*(char **)at = strdup(k->string)) == NULL)
            return fail(x, "out of memory");
    }
    return 0;
}

/* The JSON object obj as section (where: its name in messages): no key the
 * table does not have, then every scalar key into base, in the table's order. */
static int
parse_section(struct ctx *x, struct json_object *obj, const char *section, const char *where,
              char *base)
{
    size_t i;

    if (check_keys(x, obj, section, where) < 0)
        return -1;
    for (i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        const char *leaf = leaf_of(k, section);

        if (leaf != NULL && k->type <= CONFIG_ENUM && parse_key(x, k, leaf, obj, where, base) < 0)
            return -1;
        if (leaf != NULL && k->type == CONFIG_DATABASE && parse_database(x, k, obj, base) < 0)
            return -1;
    }
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

static int
parse_entity(struct ctx *x, struct json_object *v, struct entity *en)
{
    if (defaults(x, "entities[]", (char *)en) < 0)
        return -1;
    if (json_object_is_type(v, json_type_string)) {
        en->name = strdup(json_object_get_string(v));
    } else if (json_object_is_type(v, json_type_object)) {
        if (parse_section(x, v, "entities[]", "an entity", (char *)en) < 0)
            return -1;
    } else {
        return fail(x, "each entry of \"entities\" must be a name or an object");
    }
    if (!config_valid_name(en->name))
        return fail(x, "entity name '%s' is not valid (letters, digits, _; at most 64)", en->name);
    if (strcmp(en->name, "events") == 0 || strcmp(en->name, "client") == 0 ||
        strncmp(en->name, "_rhtmx", 6) == 0)
        return fail(x, "entity name '%s' is reserved", en->name);
    if (en->scope != NULL && en->owner_column != NULL)
        return fail(x,
                    "entity '%s' has both \"scope\" and \"owner_column\" (owner_column \"c\" is "
                    "the scope \"c = :user\": keep one)",
                    en->name);
    if (en->table == NULL && (en->table = strdup(en->name)) == NULL)
        return fail(x, "out of memory");
    if (strncmp(en->table, "_rhtmx", 6) == 0 || strncmp(en->table, "sqlite_", 7) == 0)
        return fail(x, "table '%s' cannot be synced", en->table);
    return 0;
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
parse_origins(struct ctx *x, struct config *c, struct json_object *auth)
{
    struct json_object *origins;
    int bad = 0;
    size_t i;

    origins = jsonr_get(auth, "allowed_origins", json_type_array, &bad);
    if (bad)
        return fail(x, "\"allowed_origins\" must be a list of strings");
    if (origins == NULL)
        return 0;
    c->auth.norigins = json_object_array_length(origins);
    c->auth.allowed_origins = calloc(c->auth.norigins + 1, sizeof(char *));
    if (c->auth.allowed_origins == NULL) {
        c->auth.norigins = 0;
        return fail(x, "out of memory");
    }
    for (i = 0; i < c->auth.norigins; i++) {
        struct json_object *o = json_object_array_get_idx(origins, i);
        if (!json_object_is_type(o, json_type_string))
            return fail(x, "\"allowed_origins\" must be a list of strings");
        c->auth.allowed_origins[i] = strdup(json_object_get_string(o));
        if (c->auth.allowed_origins[i] == NULL)
            return fail(x, "out of memory");
        if (!is_origin(c->auth.allowed_origins[i]))
            return fail(x,
                        "\"allowed_origins\" entry '%.100s' is not an origin: write "
                        "scheme://host[:port], e.g. \"https://example.com\"",
                        c->auth.allowed_origins[i]);
    }
    return 0;
}

static int
parse_auth(struct ctx *x, struct config *c, struct json_object *root)
{
    struct json_object *auth;

    if (get_obj(x, root, "auth", &auth) < 0)
        return -1;
    if (auth == NULL)
        return fail(x, "\"auth\" is required: {\"mode\": \"token\", ...} or {\"mode\": "
                       "\"none\"}");
    if (parse_section(x, auth, "auth", "\"auth\"", (char *)c) < 0)
        return -1;
    if (c->auth.mode == AUTH_TOKEN && c->auth.secret_file == NULL)
        return fail(x, "auth mode \"token\" needs \"secret_file\"");
    return parse_origins(x, c, auth);
}

/* The sections of plain settings: pull, push, events, retention. */
static int
parse_settings(struct ctx *x, struct config *c, struct json_object *root)
{
    static const char *const sections[] = {"pull", "push", "events", "retention"};
    char where[32];
    struct json_object *o;
    size_t i;

    for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
        if (get_obj(x, root, sections[i], &o) < 0)
            return -1;
        snprintf(where, sizeof(where), "\"%s\"", sections[i]);
        if (o != NULL && parse_section(x, o, sections[i], where, (char *)c) < 0)
            return -1;
    }
    if (c->pull.default_limit > c->pull.max_limit)
        c->pull.default_limit = c->pull.max_limit;
    return 0;
}

/* ---- Describing ---- */

void
config_describe(const struct config *c, struct buf *out)
{
    size_t i, j;

    for (i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        const char *at = (const char *)c + k->offset;

        if (strchr(k->key, '.') == NULL || strncmp(k->key, "entities[]", 10) == 0)
            continue;
        buf_printf(out, "%-24s ", k->key);
        switch (k->type) {
        case CONFIG_INT:
            buf_printf(out, "%ld", k->size == sizeof(long) ? *(const long *)at : *(const int *)at);
            break;
        case CONFIG_BOOL:
            buf_adds(out, *(const int *)at ? "true" : "false");
            break;
        case CONFIG_ENUM:
            buf_adds(out, k->names[*(const int *)at]);
            break;
        case CONFIG_STRING:
        case CONFIG_PATH:
            buf_adds(out, *(char *const *)at != NULL ? *(char *const *)at : "none");
            break;
        case CONFIG_ORIGINS:
            for (j = 0; j < c->auth.norigins; j++)
                buf_printf(out, j ? " %s" : "%s", c->auth.allowed_origins[j]);
            if (c->auth.norigins == 0)
                buf_adds(out, "none");
            break;
        default:
            break;
        }
        buf_adds(out, "\n");
    }
}

struct config *
config_parse(const char *path, const char *text, size_t len, struct err *e)
{
    struct ctx x = {path, NULL, e};
    struct config *c = NULL;
    struct json_object *root = NULL;
    char *slash;
    struct err je;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        err_set(e, 500, "config", "%s: out of memory", path);
        goto err;
    }
    c->path = strdup(path);
    if (c->path == NULL) {
        err_set(e, 500, "config", "%s: out of memory", path);
        goto err;
    }
    slash = strrchr(c->path, '/');
    if (slash == NULL)
        c->dir = strdup(".");
    else if (slash == c->path)
        c->dir = strdup("/");
    else
        c->dir = strndup(c->path, (size_t)(slash - c->path));
    if (c->dir == NULL) {
        err_set(e, 500, "config", "%s: out of memory", path);
        goto err;
    }
    x.dir = c->dir;
    if (defaults(&x, "auth", (char *)c) < 0 || defaults(&x, "pull", (char *)c) < 0 ||
        defaults(&x, "push", (char *)c) < 0 || defaults(&x, "events", (char *)c) < 0 ||
        defaults(&x, "retention", (char *)c) < 0)
        goto err;

    root = jsonr_parse(text, len, CONFIG_MAX_DEPTH, &je);
    if (root == NULL) {
        err_set(e, 500, "config", "%s: %s", path, je.msg);
        goto err;
    }
    if (!json_object_is_type(root, json_type_object)) {
        fail(&x, "the top level must be a JSON object");
        goto err;
    }
    if (parse_section(&x, root, "", "the top level", (char *)c) < 0 ||
        parse_entities(&x, c, root) < 0 || parse_auth(&x, c, root) < 0 ||
        parse_settings(&x, c, root) < 0)
        goto err;
    /* scope hook (lib/scope.h): a scope is per user, which mode "none" cannot tell apart */
    for (size_t i = 0; i < c->nentities; i++) {
        if (c->entities[i].scope != NULL && c->auth.mode != AUTH_TOKEN) {
            fail(&x,
                 "entity '%s' has a \"scope\", which needs auth mode \"token\" (mode "
                 "\"none\" cannot tell users apart)",
                 c->entities[i].name);
            goto err;
        }
    }
    json_object_put(root);
    return c;
err:
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
        free(c->entities[i].scope);
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
