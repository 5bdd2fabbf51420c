/*
 * rhtmx-sync: the operator's command-line tool.
 *
 *   rhtmx-sync init   [--config FILE]   create/upgrade the sync tables, install triggers
 *   rhtmx-sync status [--config FILE]   check config and database, print versions and counts
 *   rhtmx-sync compact [--config FILE]  remove log entries older than retention.days (cron)
 *
 * Exit status 0 when everything is in order, 1 on any problem (printed as the
 * same one line the web executables write to the error log), 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "changelog.h"
#include "compact.h"
#include "log.h"
#include "sqlgen.h"
#ifdef RHTMX_POSTGRES
#include "pg_compact.h"
#include "pg_schema.h"
#endif

static int
usage(void)
{
    fputs("usage: rhtmx-sync init|status|compact [--config FILE]\n"
          "  init    create or upgrade the sync tables and install the change-capture triggers\n"
          "  status  check the config and database; print the head version and per-entity counts\n"
          "  compact remove tombstones and superseded changes older than retention.days\n"
          "FILE defaults to $RHTMX_SYNC_CONFIG, else rhtmx-sync.json beside this program.\n",
          stderr);
    return 2;
}

static long long
count_rows(struct db *d, const struct table *t)
{
    char *sql = sqlgen_count_rows(t);
    struct err e;
    sqlite3_stmt *st = db_prepare(d, sql, "count rows", &e);
    long long n = -1;

    sqlite3_free(sql);
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static long long
count_synced(struct db *d, const struct table *t)
{
    struct err e;
    sqlite3_stmt *st = db_stmt(d, STMT_ENTITY_COUNT, &e);
    long long n = -1;

    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, t->en->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return n;
}

/* Print the report; 0 if every table is installed and in step with the log. */
static int
report(struct db *d, const struct config *c, const struct schema *s)
{
    struct err e;
    struct buf settings = {0};
    long long head = db_head(d, &e), horizon = changelog_horizon(d, &e);
    size_t i;
    int bad = 0;

    printf("config    %s\n", c->path);
    printf("database  %s%s\n", c->database, d->readonly ? " (read-only)" : "");
    printf("auth      %s\n",
           c->auth.mode == AUTH_TOKEN ? "token" : "none (anyone can read and write)");
    printf("head      %lld\n", head);
    printf("horizon   %lld\n", horizon);
    printf("\n%-20s %-20s %10s %10s  %s\n", "entity", "table", "rows", "synced", "triggers");
    for (i = 0; i < s->ntables; i++) {
        const struct table *t = &s->tables[i];
        int ok = schema_installed(d, t);
        long long rows = count_rows(d, t), synced = count_synced(d, t);
        size_t k;
        printf("%-20s %-20s %10lld %10lld  %s\n", t->en->name, t->en->table, rows, synced,
               ok ? "ok" : "missing or out of date (run 'rhtmx-sync init')");
        /* The schema as the programs see it: what pull answers call "schema". */
        printf("  schema %s: key %s;", t->fingerprint, t->cols[t->key].name);
        for (k = 0; k < t->ncols; k++)
            printf(" %s%s%s", t->cols[k].name, t->cols[k].type[0] ? " " : "", t->cols[k].type);
        printf("\n");
        if (!ok)
            bad = 1;
        else if (rows != synced) {
            printf("  warning: %s has %lld rows but the log knows %lld (were triggers dropped, or "
                   "rows written with triggers disabled?)\n",
                   t->en->name, rows, synced);
        }
    }
    /* Every setting with the value in force (config_keys: defaults included). */
    config_describe(c, &settings);
    printf("\nsettings\n%s", settings.p != NULL ? settings.p : "");
    buf_free(&settings);
    return bad;
}

static int
cmd_init(struct app *app)
{
    struct err e;
    int rc;

    if (app_ready(app, &e) < 0)
        return 1; /* app_ready printed the line */
#ifdef RHTMX_POSTGRES
    if (app->pg != NULL) /* [pg] */
        return pg_schema_report(app->pg, app->cfg, app->schema, stdout) ? 1 : 0;
#endif
    rc = report(app->db, app->cfg, app->schema);
    return rc ? 1 : 0;
}

#ifdef RHTMX_POSTGRES
/* [pg] status for PostgreSQL: the report, or -1 with e set. Changes nothing. */
static int
pg_status(const struct config *c, struct err *e)
{
    struct pg *p = pg_open(c->pg, "rhtmx-sync", e);
    struct schema *s = NULL;
    int rc = -1;

    if (p == NULL)
        goto out;
    if (!pg_schema_ok(p)) {
        err_set(e, 500, "database", "%s: the sync tables are missing or old: run 'rhtmx-sync init'",
                c->database);
        goto out;
    }
    if ((s = pg_schema_load(p, c, e)) == NULL)
        goto out;
    rc = pg_schema_report(p, c, s, stdout) ? 1 : 0;
out:
    schema_free(s);
    pg_free(p);
    return rc;
}
#endif

/* status changes nothing: it opens the database itself instead of app_ready(). */
static int
cmd_status(struct app *app)
{
    struct config *c = NULL;
    struct db *d = NULL;
    struct schema *s = NULL;
    struct err e;
    int rc = 1;

    c = config_load(app->config_path, &e);
    if (c == NULL)
        goto fail;
#ifdef RHTMX_POSTGRES
    if (c->pg != NULL) { /* [pg] */
        rc = pg_status(c, &e);
        if (rc < 0) {
            rc = 1; /* as for SQLite: 1 with the line, not 255 */
            goto fail;
        }
        goto out;
    }
#endif
    d = db_open(c->database, &e);
    if (d == NULL)
        goto fail;
    if (!db_schema_ok(d)) {
        err_set(&e, 500, "database",
                "%s: the sync tables are missing or old: run 'rhtmx-sync init'", c->database);
        goto fail;
    }
    s = schema_load(d, c, &e);
    if (s == NULL)
        goto fail;
    rc = report(d, c, s);
    goto out;
fail:
    log_msg("%s", e.msg);
out:
    schema_free(s);
    db_free(d);
    config_free(c);
    return rc;
}

/* compact_run() on the configured backend. [pg] */
static int
compact_any(struct app *app, struct compact_stats *st, struct err *e)
{
#ifdef RHTMX_POSTGRES
    if (app->pg != NULL)
        return pg_compact_run(app->pg, app->cfg, st, e);
#endif
    return compact_run(app->db, app->cfg, st, e);
}

/* compact writes: it brings the database up to date first, like init. */
static int
cmd_compact(struct app *app)
{
    struct compact_stats st;
    struct err e;

    if (app_ready(app, &e) < 0)
        return 1; /* app_ready printed the line */
    if (compact_any(app, &st, &e) < 0) {
        log_msg("%s", e.msg);
        return 1;
    }
    printf("retention %d days\n", app->cfg->retention.days);
    printf("removed   %lld log entries (tombstones and superseded changes)\n", st.removed);
    printf("answers   %lld remembered push answers\n", st.mutations);
    printf("entries   %lld left in the log\n", st.entries);
    printf("head      %lld\n", st.head);
    printf("horizon   %lld\n", st.horizon);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *config = NULL;
    struct app app;
    int i, rc;

    if (argc < 2)
        return usage();
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
        else
            return usage();
    }
    app_init(&app, "rhtmx-sync", config);
    if (strcmp(argv[1], "init") == 0)
        rc = cmd_init(&app);
    else if (strcmp(argv[1], "status") == 0)
        rc = cmd_status(&app);
    else if (strcmp(argv[1], "compact") == 0)
        rc = cmd_compact(&app);
    else
        rc = usage();
    app_close(&app);
    return rc;
}
