/* app: see app.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app.h"

void
app_init(struct app *app, const char *name, const char *config_path)
{
    memset(app, 0, sizeof(*app));
    app->name = name;
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
    config_free(app->cfg);
    app->schema = NULL;
    app->db = NULL;
    app->cfg = NULL;
}

void
app_close(struct app *app)
{
    app_unload(app);
    free(app->config_path);
    app->config_path = NULL;
}

static int
app_load(struct app *app, struct err *e)
{
    static int warned_auth_none;
    struct stat sb;
    int installed = 0;

    app_unload(app);
    if (stat(app->config_path, &sb) == 0) {
        app->config_mtime = sb.st_mtim;
        app->config_size = sb.st_size;
    }
    app->cfg = config_load(app->config_path, e);
    if (app->cfg == NULL)
        goto err;
    app->db = db_open(app->cfg->database, e);
    if (app->db == NULL) {
        char m[sizeof(e->msg)];
        snprintf(m, sizeof(m), "%s", e->msg);
        err_set(e, 500, "config", "%s: %s", app->config_path, m);
        goto err;
    }
    if (db_migrate(app->db, e) < 0)
        goto err;
    app->schema = schema_load(app->db, app->cfg, e);
    if (app->schema == NULL || schema_install(app->db, app->schema, &installed, e) < 0)
        goto err;
    if (installed > 0)
        fprintf(stderr, "%s: installed change-capture triggers on %d table(s) of %s\n", app->name,
                installed, app->cfg->database);
    if (app->cfg->auth.mode == AUTH_NONE && !warned_auth_none++)
        fprintf(stderr,
                "%s: warning: %s sets auth mode \"none\": anyone who can reach these URLs can "
                "read and write every synced row\n",
                app->name, app->config_path);
    app->last_error[0] = '\0';
    return 0;
err:
    app_unload(app);
    return -1;
}

/* 1 if the config file changed since it was loaded. */
static int
config_changed(const struct app *app)
{
    struct stat sb;

    if (stat(app->config_path, &sb) != 0)
        return 1;
    return sb.st_size != app->config_size || sb.st_mtim.tv_sec != app->config_mtime.tv_sec ||
           sb.st_mtim.tv_nsec != app->config_mtime.tv_nsec;
}

int
app_ready(struct app *app, struct err *e)
{
    int rc;

    if (app->config_path == NULL)
        return err_set(e, 500, "config", "cannot locate the configuration file");
    if (app->cfg != NULL && !config_changed(app)) {
        if (!schema_stale(app->db, app->schema))
            return 0;
        /* The app altered a table (or someone dropped our triggers): re-check. */
        schema_free(app->schema);
        app->schema = schema_load(app->db, app->cfg, e);
        if (app->schema != NULL && schema_install(app->db, app->schema, NULL, e) == 0)
            return 0;
        app_unload(app);
        rc = -1;
    } else {
        rc = app_load(app, e);
    }
    if (rc < 0 && strcmp(app->last_error, e->msg) != 0) {
        fprintf(stderr, "%s: %s\n", app->name, e->msg);
        snprintf(app->last_error, sizeof(app->last_error), "%s", e->msg);
    }
    return rc;
}

const struct table *
app_entity(struct app *app, struct http_req *req)
{
    char name[80];
    const struct table *t;

    if (http_path_segment(req, name, sizeof(name)) < 0) {
        http_fail(req, 404, "not_found", "no entity in the path: use /api/sync/{entity}");
        return NULL;
    }
    if (!config_valid_name(name) || (t = schema_table(app->schema, name)) == NULL) {
        http_fail(req, 404, "not_found", "unknown entity '%.64s'", name);
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
