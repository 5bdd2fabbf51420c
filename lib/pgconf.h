/*
 * pgconf: the configuration's "database" when it names PostgreSQL.
 *
 * "database" is either a path (the SQLite file, as always) or a PostgreSQL
 * connection, in one of two forms:
 *
 *   "database": "postgresql://user@host:5432/dbname?sslmode=require"
 *   "database": {"postgresql": "postgresql://user@host/dbname",
 *                "password_file": "../private/pg-password"}
 *
 * A string is PostgreSQL when it starts with "postgresql://" or "postgres://"
 * (libpq's URI forms); anything else is a file path. In the object form the
 * password lives in a file of its own (its first line, relative paths against
 * the config's folder), so it can sit outside the web root and out of the
 * config. The URL is handed to libpq as it is (every libpq parameter works).
 *
 * This module only reads the configuration and is built into every program;
 * the backend itself (lib/pg_*.c) only with cmake -DRHTMX_POSTGRES=ON. Without
 * it a PostgreSQL "database" is a configuration error saying so.
 */
#ifndef RHTMX_PGCONF_H
#define RHTMX_PGCONF_H

#include <stddef.h>

#include <json-c/json.h>

struct pgconf {
    char *url;           /* owned: the libpq connection URL, as given */
    char *password_file; /* owned: resolved path, or NULL */
    char *shown;         /* owned: url without its password, for messages */
};

/* 1 if v (the "database" value, any JSON type) names PostgreSQL. */
int pgconf_is_pg(struct json_object *v);

/*
 * Read v (for which pgconf_is_pg() holds). Returns a new pgconf (pgconf_free),
 * password_file as written (config.c resolves it against the config's folder),
 * or NULL with why (n bytes) saying what is wrong: an unknown key, a missing
 * URL, or a build without the backend.
 */
struct pgconf *pgconf_parse(struct json_object *v, char *why, size_t n);

void pgconf_free(struct pgconf *p); /* NULL is harmless */

/* A copy of p (pgconf_free), or NULL when out of memory. */
struct pgconf *pgconf_dup(const struct pgconf *p);

/* 1 if this build has the PostgreSQL backend. */
int pgconf_built(void);

#endif
