/* app: see app.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "log.h"
#ifdef RHTMX_POSTGRES
#include "pg_schema.h"
#endif

void
app_init(struct app *app, const char *name, const char *config_path)
{
    memset(app, 0, sizeof(*app));
    app->name = name;
    app->config_watch = -1;
    app->short_lived = http_is_cgi();
    if (app->short_lived)
        db_short_lived();
    app->config_path = config_path ? strdup(config_path) : config_locate();
    /* An absolute path makes every message name the file unambiguously. */
    if (app->config_path != NULL) {
        char *abs = realpath(app->config_path, NULL);
        if (abs != NULL) {
            free(app->config_path);
            app->config_path = abs;
        }
    }
}

static void
app_unload(struct app *app)
{
    schema_free(app->schema);
    db_free(app->db);
#ifdef RHTMX_POSTGRES /* [pg] */
    pg_free(app->pg);
    app->pg = NULL;
#endif
    config_free(app->cfg);
    app->schema = NULL;
    app->db = NULL;
    app->cfg = NULL;
}

/* Close the inotify watch on the config file, if any. */
static void
config_unwatch(struct app *app)
{
    if (app->config_watch >= 0)
        close(app->config_watch);
    app->config_watch = -1;
}

void
app_close(struct app *app)
{
    app_unload(app);
    config_unwatch(app);
    free(app->config_path);
    app->config_path = NULL;
}

/* Why a database may not open that SQLite does not say: a WAL database needs
 * its -wal and -shm files, and when they do not exist SQLite must create them
 * in the database's folder (it reports only "attempt to write a readonly
 * database", even for reading). "" when that is not the case. */
static const char *
folder_hint(const char *db)
{
    char dir[4096], wal[4096];
    const char *slash = strrchr(db, '/');

    snprintf(wal, sizeof(wal), "%s-wal", db);
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - db) + (slash == db), db);
    if (access(dir, W_OK) == 0 || access(wal, F_OK) == 0)
        return "";
    return " (its folder is not writable by this process, and SQLite must create the "
           "database's -wal and -shm files there, even to read it)";
}

/*
 * (Re)arm the inotify watch on the config file just read, in a long-lived
 * process: on the file's inode, so an edit in place, a chmod, and a new file
 * renamed over it (the old inode loses its name) are all events. app_load()
 * drops the old watch first, so nothing of an old inode is left pending.
 * Without inotify (the per-user limit reached, say), config_changed() stats
 * instead.
 */
static void
config_watch(struct app *app)
{
    if (app->short_lived)
        return;
    app->config_watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (app->config_watch < 0)
        return;
    if (inotify_add_watch(app->config_watch, app->config_path,
                          IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF) <
        0)
        config_unwatch(app);
}

/*
 * Our tables current, the configured tables read, their triggers in place.
 * Nearly always all of it is so and is only read, which a CGI program does on
 * every request: one read transaction for all of it rather than one per
 * statement (each takes and drops the WAL read lock, and a new process's
 * statements are many). What must be written (a migration, triggers to
 * install) is done after it, each in a write transaction of its own.
 */
static int
app_check_schema(struct app *app, int *installed, struct err *e)
{
    int current;

    if (db_begin_read(app->db, e) < 0)
        return -1;
    if (!db_schema_ok(app->db)) {
        db_rollback(app->db);
        if (db_migrate(app->db, e) < 0 || db_begin_read(app->db, e) < 0)
            return -1;
    }
    app->schema = schema_load(app->db, app->cfg, e);
    current = app->schema != NULL && schema_current(app->db, app->schema);
    db_rollback(app->db);
    if (app->schema == NULL)
        return -1;
    return current ? 0 : schema_install(app->db, app->schema, installed, e);
}

static int
app_load(struct app *app, long long deadline, struct err *e)
{
    static int warned_auth_none;
    struct stat sb;
    int installed = 0;

    app_unload(app);
    config_unwatch(app);
    if (stat(app->config_path, &sb) == 0) {
        app->config_mtime = sb.st_mtim;
        app->config_size = sb.st_size;
        config_watch(app);
    }
    clock_gettime(CLOCK_MONOTONIC_COARSE, &app->config_statted);
    app->cfg = config_load(app->config_path, e);
    if (app->cfg == NULL)
        goto err;
#ifdef RHTMX_POSTGRES /* [pg] PostgreSQL: connect, migrate, check, install (pg_schema.h) */
    if (app->cfg->pg != NULL) {
        app->pg = pg_load(app->cfg, app->name, &app->schema, &installed, e);
        if (app->pg == NULL)
            goto err;
        goto loaded;
    }
#endif
    app->db = db_open_by(app->cfg->database, deadline, e);
    if (app->db == NULL && e->status == 503)
        goto err; /* locked by another: not a configuration problem */
    if (app->db == NULL) {
        char m[sizeof(e->msg)];
        snprintf(m, sizeof(m), "%s", e->msg);
        err_set(e, 500, "config", "%s: %s%s", app->config_path, m, folder_hint(app->cfg->database));
        goto err;
    }
    if (app_check_schema(app, &installed, e) < 0)
        goto err;
#ifdef RHTMX_POSTGRES
loaded:
#endif
    if (installed > 0)
        log_msg("installed change-capture triggers on %d table(s) of %s", installed,
                app->cfg->database);
    if (app->db != NULL && app->db->readonly)
        log_msg("warning: %s is not writable by this process (uid %d): reads work, pushes "
                "fail with 500 until it is (and its -wal and -shm files) writable",
                app->cfg->database, (int)geteuid());
    if (app->cfg->auth.mode == AUTH_NONE && !warned_auth_none++)
        log_msg("warning: %s sets auth mode \"none\": anyone who can reach these URLs can "
                "read and write every synced row",
                app->config_path);
    return 0;
err:
    app_unload(app);
    return -1;
}

/*
 * 1 if the config file changed since it was loaded. With a watch, nothing
 * pending on it means unchanged, for up to a second after the last stat():
 * a read() instead of a path walk per request. The stat() a second later
 * covers file systems whose changes inotify does not see (NFS).
 */
static int
config_changed(struct app *app)
{
    struct timespec now;
    struct stat sb;
    char events[1024];
    int pending = 0;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    if (app->config_watch >= 0) {
        while (read(app->config_watch, events, sizeof(events)) > 0)
            pending = 1;
        if (!pending && (now.tv_sec - app->config_statted.tv_sec) * 1000 +
                                (now.tv_nsec - app->config_statted.tv_nsec) / 1000000 <
                            1000)
            return 0;
    }
    app->config_statted = now;
    if (stat(app->config_path, &sb) != 0)
        return 1;
    return sb.st_size != app->config_size || sb.st_mtim.tv_sec != app->config_mtime.tv_sec ||
           sb.st_mtim.tv_nsec != app->config_mtime.tv_nsec;
}

/* 1 if the database was opened read-only but its file can be written now (the
 * operator fixed its permissions): opening it again lets pushes through without
 * a restart of the FastCGI process. Costs an access() per request only while
 * the database is read-only. */
static int
db_writable_again(const struct app *app)
{
    return app->db != NULL && app->db->readonly && access(app->cfg->database, W_OK) == 0;
}

/* 1 if the configured path names another file than the one open (the
 * database was moved away, or another file copied or renamed into its place):
 * it must be opened again, or reads would be stale and writes would land in
 * the file moved away. A stat() per request. */
static int
db_moved(const struct app *app)
{
    if (app->db == NULL || !db_replaced(app->db))
        return 0;
    log_msg("%s was moved or replaced: opening the file now at that path", app->cfg->database);
    return 1;
}

/* The one error-log line for a failed (re)load, written once while the
 * problem lasts: once the app is current again, a problem that comes back is
 * written again. Returns rc. */
static int
app_logged(struct app *app, int rc, const struct err *e)
{
    if (rc < 0) {
        log_once("%s", e->msg);
        app->failing = 1;
    } else if (app->failing) {
        log_once_reset();
        app->failing = 0;
    }
    return rc;
}

/* The app altered a table (or someone dropped our triggers): re-check them.
 * Outside any transaction: it may install triggers. */
static int
app_recheck(struct app *app, struct err *e)
{
    schema_free(app->schema);
    app->schema = schema_load(app->db, app->cfg, e);
    if (app->schema != NULL && schema_install(app->db, app->schema, NULL, e) == 0)
        return 0;
    app_unload(app);
    return -1;
}

/* [pg] 1 if the PostgreSQL connection broke (the server restarted, say): it is
 * opened again. */
static int
pg_lost(const struct app *app)
{
#ifdef RHTMX_POSTGRES
    return app->pg != NULL && !pg_alive(app->pg);
#else
    (void)app;
    return 0;
#endif
}

/* [pg] The tables changed shape (the app's ALTER TABLE) or lost their trigger
 * since they were loaded: load everything again (pg_load re-installs). One
 * query per request. */
static int
app_pg_current(struct app *app, long long deadline, struct err *e)
{
#ifdef RHTMX_POSTGRES
    long long cookie = pg_schema_cookie(app->pg, app->cfg);

    if (cookie >= 0 && cookie == app->schema->cookie)
        return 0; /* -1 (unreadable): app_load says why */
    return app_logged(app, app_load(app, deadline, e), e);
#else
    (void)app;
    (void)deadline;
    (void)e;
    return 0;
#endif
}

/* 1 if what was loaded still stands as far as the files tell (the config file
 * unchanged, the database file the same and not newly writable); 0 if
 * app_load() must run. */
static int
app_loaded_fresh(struct app *app)
{
    return app->cfg != NULL && !config_changed(app) && !db_moved(app) && !db_writable_again(app) &&
           !pg_lost(app);
}

/* The request's one bound on waiting for the database, from now (db.h). */
static long long
app_deadline(struct app *app)
{
    long long deadline = db_now_ms() + DB_BUSY_TIMEOUT_MS;

    if (app->db != NULL)
        db_deadline(app->db, deadline);
    return deadline;
}

int
app_ready(struct app *app, struct err *e)
{
    long long deadline = app_deadline(app);

    if (app->config_path == NULL)
        return err_set(e, 500, "config", "cannot locate the configuration file");
    if (!app_loaded_fresh(app))
        return app_logged(app, app_load(app, deadline, e), e);
    if (app->pg != NULL) /* [pg] */
        return app_pg_current(app, deadline, e);
    if (!schema_stale(app->db, app->schema))
        return 0;
    return app_logged(app, app_recheck(app, e), e);
}

int
app_ready_read(struct app *app, struct err *e)
{
    long long deadline = app_deadline(app);
    int rc;

    if (app->config_path == NULL)
        return err_set(e, 500, "config", "cannot locate the configuration file");
    if (!app_loaded_fresh(app)) {
        rc = app_load(app, deadline, e);
        if (rc == 0 && app->pg != NULL) /* [pg] the pull opens its own snapshot */
            return 0;
    } else if (app->pg != NULL) { /* [pg] */
        return app_pg_current(app, deadline, e);
    } else {
        if (db_begin_read(app->db, e) < 0)
            return -1;
        if (!schema_stale(app->db, app->schema))
            return 0;
        db_rollback(app->db);
        rc = app_recheck(app, e);
    }
    if (app_logged(app, rc, e) < 0)
        return -1;
    return db_begin_read(app->db, e);
}

const struct table *
app_entity(struct app *app, struct http_req *req)
{
    char name[80], q[ERR_QUOTED];
    const struct table *t;

    if (http_path_segment(req, name, sizeof(name)) < 0) {
        http_fail(req, 404, "not_found", "no entity in the path: use /api/sync/{entity}");
        return NULL;
    }
    if (!config_valid_name(name) || (t = schema_table(app->schema, name)) == NULL) {
        http_fail(req, 404, "not_found", "unknown entity '%s'", err_quote(q, name));
        return NULL;
    }
    return t;
}

void
app_method_not_allowed(struct http_req *req, const char *allow)
{
    http_header(req, "Allow", allow);
    http_fail(req, 405, "method_not_allowed", "method %s is not allowed here (use %s)",
              req->method[0] ? req->method : "(none)", allow);
}
