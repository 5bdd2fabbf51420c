/*
 * fixture: a throwaway database for unit tests, set up the way a deployment
 * would be (file on disk, our schema migrated, triggers installed).
 */
#ifndef RHTMX_FIXTURE_H
#define RHTMX_FIXTURE_H

#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "db.h"
#include "schema.h"

struct fixture {
    char path[64];
    struct config *cfg;
    struct db *db;
    struct schema *schema;
};

/* Copy the rows into the log entries the triggers left without data, as
 * the next pull or push does (schema_seal). */
static inline void
fx_seal(struct fixture *f)
{
    struct err e;
    size_t i;

    for (i = 0; f->schema != NULL && i < f->schema->ntables; i++)
        if (schema_unsealed(f->db, &f->schema->tables[i]) &&
            schema_seal(f->db, &f->schema->tables[i], &e) < 0)
            fprintf(stderr, "fx_seal: %s\n", e.msg);
}

/* Run sql on the raw connection (as the PHP app or the sqlite3 shell would),
 * then seal what it logged, as a client's pull would before seeing it. */
static inline int
fx_exec(struct fixture *f, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(f->db->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "fx_exec: %s: %s\n", sql, msg);
    sqlite3_free(msg);
    if (rc == SQLITE_OK && sqlite3_get_autocommit(f->db->h))
        fx_seal(f);
    return rc;
}

static inline long long
fx_int(struct fixture *f, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(f->db->h, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Text of the first column of sql's first row, copied into out. */
static inline const char *
fx_text(struct fixture *f, const char *sql, char *out, size_t n)
{
    sqlite3_stmt *st;
    out[0] = '\0';
    if (sqlite3_prepare_v2(f->db->h, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

/* Create the file with schema_sql, then load config_json over it and install. */
static inline int
fx_open(struct fixture *f, const char *schema_sql, const char *config_json)
{
    struct err e;
    sqlite3 *raw;
    int fd;

    memset(f, 0, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "unit-XXXXXX");
    fd = mkstemp(f->path);
    if (fd < 0)
        return -1;
    close(fd);
    if (sqlite3_open(f->path, &raw) != SQLITE_OK)
        return -1;
    sqlite3_exec(raw, schema_sql, NULL, NULL, NULL);
    sqlite3_close(raw);
    f->cfg = config_parse("test.json", config_json, strlen(config_json), &e);
    if (f->cfg == NULL) {
        fprintf(stderr, "fx_open: %s\n", e.msg);
        return -1;
    }
    free(f->cfg->database);
    f->cfg->database = strdup(f->path);
    f->db = db_open(f->path, &e);
    if (f->db == NULL || db_migrate(f->db, &e) < 0)
        goto fail;
    f->schema = schema_load(f->db, f->cfg, &e);
    if (f->schema == NULL || schema_install(f->db, f->schema, NULL, &e) < 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "fx_open: %s\n", e.msg);
    return -1;
}

static inline void
fx_close(struct fixture *f)
{
    char p[80];
    schema_free(f->schema);
    db_free(f->db);
    config_free(f->cfg);
    unlink(f->path);
    snprintf(p, sizeof(p), "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", f->path);
    unlink(p);
}

#endif
