/*
 * config: the one JSON file that configures every executable.
 *
 * Found through RHTMX_SYNC_CONFIG, else rhtmx-sync.json beside the executable.
 * Relative paths inside it resolve against the file's own folder. Every key is
 * declared in config.c; an unknown key is an error, so a typo never silently
 * turns a feature off. This module only checks what the file itself can tell;
 * whether tables and columns exist is checked against the database by schema.c.
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

    struct {
        int default_limit; /* 500 */
        int max_limit;     /* 1000, at most 10000 */
        long gzip_min_bytes;
    } pull;

    struct {
        long max_body_bytes; /* 1 MiB */
        int max_changes;     /* 1000 */
        char *resolver;      /* shared object with the custom resolver, resolved */
        char *resolver_symbol;
    } push;

    struct {
        enum events_mode mode;
        int heartbeat;  /* seconds between comments, 15 */
        int lifetime;   /* seconds before a stream ends on purpose, 240 */
        int poll_wait;  /* seconds a poll answer waits for news, 25 */
        int max_streams;/* per process, 10000 */
        int retry_ms;   /* the SSE retry: field, 2000 */
    } events;

    struct {
        int days; /* tombstones and superseded updates older than this are compacted; 30 */
    } retention;
};

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
