/*
 * config: the one JSON file that configures every executable.
 *
 * Found through RHTMX_SYNC_CONFIG, else rhtmx-sync.json beside the executable.
 * Relative paths inside it resolve against the file's own folder. Every key is
 * declared once, in the table config_keys (config.c): its type, bounds,
 * default and documentation line. That table drives parsing, the defaults,
 * `rhtmx-sync status` (config_describe) and the README's configuration table
 * (tests/unit/test-config checks the README against it). An unknown key is an
 * error, so a typo never silently turns a feature off. This module only checks what the file itself
 * can tell; whether tables and columns exist is checked against the database by schema.c.
 */
#ifndef RHTMX_CONFIG_H
#define RHTMX_CONFIG_H

#include <stddef.h>

#include "err.h"

struct pgconf;

enum strategy {
    STRATEGY_LWW = 0, /* last-write-wins, by the server's clock (default) */
    STRATEGY_SERVER_WINS,
    STRATEGY_CLIENT_WINS,
    STRATEGY_MERGE,
    STRATEGY_CUSTOM,
};

enum auth_mode { AUTH_NONE = 0, AUTH_TOKEN };
enum events_mode { EVENTS_AUTO = 0, EVENTS_STREAM, EVENTS_POLL };

struct entity {
    char *name;         /* [A-Za-z_][A-Za-z0-9_]*, as in URLs and events */
    char *table;        /* defaults to name */
    char *key;          /* defaults to "id" */
    char *owner_column; /* NULL: rows are shared by every user */
    char *scope;        /* SQL boolean over the row (lib/scope.h); NULL: none */
    enum strategy strategy;
    int offline_writes; /* default 1 */
};

struct config {
    char *path;        /* the file, as given */
    char *dir;         /* its folder, for resolving relative paths */
    char *database;    /* absolute or resolved against dir; for PostgreSQL the URL as shown */
    struct pgconf *pg; /* [pg] owned: "database" names PostgreSQL (pgconf.h); NULL: SQLite */
    struct entity *entities;
    size_t nentities;

    struct {
        enum auth_mode mode;
        char *secret_file; /* resolved */
        char *cookie;      /* cookie name carrying the token, default "rhtmx_sync" */
        char **allowed_origins;
        size_t norigins;
    } auth;

    /* Defaults and bounds of what follows: config_keys in config.c. */
    struct {
        int default_limit; /* page size when the request names none (at most max_limit) */
        int max_limit;
        long gzip_min_bytes;
    } pull;

    struct {
        long max_body_bytes;
        int max_changes;
        char *resolver; /* shared object with the custom resolver, resolved */
        char *resolver_symbol;
    } push;

    struct {
        enum events_mode mode;
        int heartbeat;   /* seconds between comments */
        int lifetime;    /* seconds before a stream ends on purpose */
        int poll_wait;   /* seconds a poll answer waits for news */
        int max_streams; /* per process */
        int retry_ms;    /* the SSE retry: field */
    } events;

    struct {
        int days; /* tombstones and superseded updates older than this are compacted */
    } retention;
};

enum config_type {
    CONFIG_STRING,   /* a non-empty string (char *) */
    CONFIG_PATH,     /* a string, resolved against the file's folder (char *) */
    CONFIG_INT,      /* an integer within [min, max] (int or long, by size) */
    CONFIG_BOOL,     /* true or false (int) */
    CONFIG_ENUM,     /* one of names (an enum) */
    CONFIG_ORIGINS,  /* auth.allowed_origins: a list of origins */
    CONFIG_ENTITIES, /* the entities list; each entry's keys are "entities[].KEY" */
    CONFIG_NOTE,     /* anything, ignored ($comment) */
    CONFIG_DATABASE, /* [pg] a path as CONFIG_PATH, or a PostgreSQL connection (pgconf.h) */
};

/* One key of the file. Keys inside a section are "section.key"; keys of an
 * entity object are "entities[].key" and live in struct entity. */
struct config_key {
    const char *key;
    enum config_type type;
    size_t offset;       /* of the member in struct config (struct entity for entities[]) */
    size_t size;         /* of that member (CONFIG_INT: int or long) */
    long min, max;       /* CONFIG_INT bounds */
    long value;          /* default of CONFIG_INT, CONFIG_BOOL, CONFIG_ENUM (an index of names) */
    const char *string;  /* default of CONFIG_STRING, or NULL */
    const char *def;     /* the default as the README writes it; NULL: made from the above */
    const char *missing; /* the error when the key is absent; NULL: optional */
    const char *const *names; /* CONFIG_ENUM: the values, by number, NULL-terminated */
    const char *noun;         /* CONFIG_ENUM: "unknown NOUN 'x' HELP" */
    const char *help;
    const char *doc; /* the README's line for it */
};

/* The table, in the README's order. Borrowed, static. */
extern const struct config_key config_keys[];
extern const size_t config_nkeys;

struct buf;

/* The default of k as the README's table shows it, appended to out. */
void config_default_text(const struct config_key *k, struct buf *out);

/* Append "KEY  VALUE" lines to out, one for each key outside entities[]
 * (the settings `rhtmx-sync status` prints). */
void config_describe(const struct config *c, struct buf *out);

/* Load and check path. Returns a new config (caller frees with config_free), or
 * NULL with e set to 500 "config" and a one-line message naming the file. */
struct config *config_load(const char *path, struct err *e);

/* Load from text, as if it were the file at path (for tests and the fuzzer). */
struct config *config_parse(const char *path, const char *text, size_t len, struct err *e);

void config_free(struct config *c); /* NULL is harmless */

/* The entity named name, or NULL. Borrowed, valid until config_free(). */
const struct entity *config_entity(const struct config *c, const char *name);

/* Where the config is: RHTMX_SYNC_CONFIG, else rhtmx-sync.json beside the
 * running executable. Returns a new string (caller frees). */
char *config_locate(void);

const char *strategy_name(enum strategy s);

/* 1 if s is a valid entity/identifier name: [A-Za-z_][A-Za-z0-9_]{0,63}. */
int config_valid_name(const char *s);

#endif
