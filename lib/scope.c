/*
 * scope: see scope.h.
 *
 * Checking an expression. It is compiled as
 *   SELECT * FROM "table" WHERE (
 *   EXPR
 *   )
 * with an authorizer that allows SELECT, reading tables of the main database
 * (the library's own and SQLite's excepted), recursive CTEs and functions, and
 * denies everything else; the functions it met are then looked up in
 * pragma_function_list and refused when SQLite marks them direct-only (as
 * load_extension) or neither deterministic nor innocuous. The statement must
 * be the whole text (no second statement). So the expression can never leave
 * its parentheses when it is placed into the queries below, it may not hold a
 * comment and its parentheses must balance; :claim.NAME is rewritten to the
 * bindable :_rhtmx_claim_NAME, outside string literals and quoted names.
 *
 * The tables: _rhtmx_sync_viewers (id, entity, viewer, signature, claims,
 * checked, born, seen): per entity and user, the scope and claims the view
 * was built for, the head it was last reconciled at, the version it was
 * (re)built at, and when (unix seconds) the user last pulled; and
 * _rhtmx_sync_view (vid, entity_id, visible, action, version, client_id), one
 * entry per row that user's devices may hold, under the viewer's id (an
 * integer rather than the two names: half the bytes a new view writes).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "changelog.h"
#include "schema.h"
#include "scope.h"

#define CLAIM_PREFIX ":_rhtmx_claim_"
#define MAX_DEPS 32
#define MAX_FUNCS 64
#define SEEN_REFRESH_S 86400 /* a view that needs no work is touched at most daily */

/* ------------------------------------------------------------------ small helpers */

static char *
xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Append s to the list (*v, *n) unless it is there. 0, or -1 when full. */
static int
list_add(char ***v, size_t *n, size_t max, const char *s)
{
    size_t i;
    char **nv;

    for (i = 0; i < *n; i++)
        if (strcmp((*v)[i], s) == 0)
            return 0;
    if (*n >= max)
        return -1;
    nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (nv == NULL)
        return -1;
    *v = nv;
    if ((nv[*n] = strdup(s)) == NULL)
        return -1;
    (*n)++;
    return 0;
}

static void
list_free(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void
scope_free(struct scope *s)
{
    if (s == NULL)
        return;
    free(s->expr);
    free(s->source);
    list_free(s->deps, s->ndeps);
    list_free(s->claims, s->nclaims);
    free(s);
}

/* ------------------------------------------------------------------ the text */

static int
ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/*
 * Rewrite :claim.NAME to :_rhtmx_claim_NAME into out, collecting the names in
 * s->claims, and check the structure: no comment, balanced parentheses.
 * Returns NULL, or a static problem.
 */
static const char *
rewrite(const char *in, struct buf *out, struct scope *s)
{
    const char *p = in;
    int depth = 0;

    while (*p != '\0') {
        char c = *p;
        if (c == '\'' || c == '"' || c == '`' || c == '[') {
            char close = c == '[' ? ']' : c;
            const char *q = p + 1;
            for (;;) {
                if (*q == '\0')
                    return "an unterminated quote";
                if (*q == close) {
                    if (close != ']' && q[1] == close) {
                        q += 2;
                        continue;
                    }
                    break;
                }
                q++;
            }
            buf_add(out, p, (size_t)(q - p + 1));
            p = q + 1;
            continue;
        }
        if ((c == '-' && p[1] == '-') || (c == '/' && p[1] == '*'))
            return "a comment";
        if (c == '(')
            depth++;
        if (c == ')' && --depth < 0)
            return "unbalanced parentheses";
        if (c == ':' && strncmp(p, ":claim.", 7) == 0 && ident_char(p[7]) &&
            !(p[7] >= '0' && p[7] <= '9')) {
            const char *q = p + 7;
            char *name;
            while (ident_char(*q))
                q++;
            if (q - (p + 7) > 64)
                return "a claim name longer than 64 characters";
            name = xstrndup(p + 7, (size_t)(q - (p + 7)));
            if (name == NULL || list_add(&s->claims, &s->nclaims, MAX_FUNCS, name) < 0) {
                free(name);
                return "too many claims";
            }
            buf_adds(out, CLAIM_PREFIX);
            buf_adds(out, name);
            free(name);
            p = q;
            continue;
        }
        buf_add(out, p, 1);
        p++;
    }
    return depth == 0 ? NULL : "unbalanced parentheses";
}

/* ------------------------------------------------------------------ the authorizer */

struct check {
    const char *table; /* the entity's own */
    struct scope *s;
    char **funcs;
    size_t nfuncs;
    char problem[200]; /* the first thing refused */
};

static void refuse(struct check *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keep the first problem only: it is what the log line names. */
static void
refuse(struct check *k, const char *fmt, ...)
{
    va_list ap;

    if (k->problem[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(k->problem, sizeof(k->problem), fmt, ap);
    va_end(ap);
}

static int
authorize(void *ctx, int action, const char *a1, const char *a2, const char *db,
          const char *trigger)
{
    struct check *k = ctx;

    (void)trigger;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_READ:
        if (a1 == NULL || strncmp(a1, "_rhtmx", 6) == 0 || strncmp(a1, "sqlite_", 7) == 0) {
            refuse(k, "it reads '%s', which is not the app's", a1 ? a1 : "?");
            return SQLITE_DENY;
        }
        if (db == NULL || strcmp(db, "main") != 0) {
            refuse(k, "it reads from database '%s' (only the main database)", db ? db : "?");
            return SQLITE_DENY;
        }
        if (strcmp(a1, k->table) != 0 && list_add(&k->s->deps, &k->s->ndeps, MAX_DEPS, a1) < 0) {
            refuse(k, "it reads more than 32 tables (at '%s')", a1);
            return SQLITE_DENY;
        }
        return SQLITE_OK;
    case SQLITE_FUNCTION:
        if (a2 == NULL || list_add(&k->funcs, &k->nfuncs, MAX_FUNCS, a2) < 0) {
            refuse(k, "it calls too many functions (at '%s')", a2 ? a2 : "?");
            return SQLITE_DENY;
        }
        return SQLITE_OK;
    case SQLITE_ATTACH:
        refuse(k, "it attaches a database (%s)", a1 ? a1 : "?");
        return SQLITE_DENY;
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
        refuse(k, "it writes (to '%s'): a scope may only read", a1 ? a1 : "?");
        return SQLITE_DENY;
    case SQLITE_PRAGMA:
        refuse(k, "it runs PRAGMA %s", a1 ? a1 : "?");
        return SQLITE_DENY;
    default:
        refuse(k, "it does something other than reading (%s)", a1 != NULL ? a1 : "a statement");
        return SQLITE_DENY;
    }
}

/* Each function met must be one SQLite does not mark direct-only and marks
 * deterministic or innocuous (no side effects). */
static int
check_functions(struct db *d, struct check *k)
{
    sqlite3_stmt *st = NULL;
    size_t i;
    int rc = 0;

    if (k->nfuncs == 0)
        return 0;
    if (sqlite3_prepare_v2(d->h,
                           "SELECT max(flags & 524288), max(flags & 2099200)"
                           "  FROM pragma_function_list WHERE name = lower(?1)",
                           -1, &st, NULL) != SQLITE_OK) {
        refuse(k, "its functions cannot be checked (%s)", sqlite3_errmsg(d->h));
        return -1;
    }
    for (i = 0; i < k->nfuncs && rc == 0; i++) {
        sqlite3_bind_text(st, 1, k->funcs[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL ||
            sqlite3_column_int(st, 0) != 0 || sqlite3_column_int(st, 1) == 0) {
            refuse(k, "it calls %s(), which may have side effects", k->funcs[i]);
            rc = -1;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Every parameter must be :user or a rewritten claim. */
static int
check_params(sqlite3_stmt *st, struct check *k)
{
    int i, n = sqlite3_bind_parameter_count(st);

    for (i = 1; i <= n; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        if (name == NULL) {
            refuse(k, "it has a '%s' parameter (use :user or :claim.NAME)", "?");
            return -1;
        }
        if (strcmp(name, ":user") != 0 && strncmp(name, CLAIM_PREFIX, strlen(CLAIM_PREFIX)) != 0) {
            refuse(k, "unknown parameter %s (use :user or :claim.NAME)", name);
            return -1;
        }
    }
    return 0;
}

int
scope_load(struct db *d, const struct config *c, const struct table *t, struct scope **out,
           struct err *e)
{
    const struct entity *en = t->en;
    struct scope *s = NULL;
    struct buf text = {0}, sql = {0}, src = {0};
    struct check k;
    sqlite3_stmt *st = NULL;
    const char *why, *tail = NULL;
    int rc = -1;

    *out = NULL;
    memset(&k, 0, sizeof(k));
    if (en->scope == NULL && t->owner < 0)
        return 0;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }
    if (en->scope != NULL) {
        if ((why = rewrite(en->scope, &text, s)) != NULL) {
            err_set(e, 500, "config", "%s: entity '%s': scope refused: it contains %s", c->path,
                    en->name, why);
            goto err;
        }
    } else {
        /* owner_column, compared as text (auth.h) */
        buf_adds(&text, "CAST(");
        sql_ident(&text, t->cols[t->owner].name);
        buf_adds(&text, " AS TEXT) = :user");
    }
    buf_adds(&sql, "SELECT * FROM ");
    sql_ident(&sql, en->table);
    buf_printf(&sql, " WHERE (\n%s\n)", text.p);

    k.table = en->table;
    k.s = s;
    sqlite3_set_authorizer(d->h, authorize, &k);
    rc = sqlite3_prepare_v2(d->h, sql.p, -1, &st, &tail);
    sqlite3_set_authorizer(d->h, NULL, NULL);
    if (rc != SQLITE_OK) {
        if (k.problem[0] != '\0')
            err_set(e, 500, "config", "%s: entity '%s': scope refused: %s", c->path, en->name,
                    k.problem);
        else
            err_set(e, 500, "config", "%s: entity '%s': scope does not compile: %s", c->path,
                    en->name, sqlite3_errmsg(d->h));
        rc = -1;
        goto err;
    }
    rc = -1;
    while (tail != NULL && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r'))
        tail++;
    if (tail != NULL && *tail != '\0') {
        err_set(e, 500, "config", "%s: entity '%s': scope refused: it holds a second statement",
                c->path, en->name);
        goto err;
    }
    if (check_params(st, &k) < 0 || check_functions(d, &k) < 0) {
        err_set(e, 500, "config", "%s: entity '%s': scope refused: %s", c->path, en->name,
                k.problem);
        goto err;
    }
    buf_adds(&src, "(SELECT * FROM ");
    sql_ident(&src, en->table);
    buf_printf(&src, " WHERE (\n%s\n))", text.p);
    s->expr = text.p;
    s->source = src.p;
    text.p = src.p = NULL;
    *out = s;
    s = NULL;
    rc = 0;
err:
    sqlite3_finalize(st);
    list_free(k.funcs, k.nfuncs);
    scope_free(s);
    buf_free(&text);
    buf_free(&src);
    buf_free(&sql);
    return rc;
}

void
scope_signature(struct buf *b, const struct table *t)
{
    size_t i;

    if (t->scope == NULL)
        return;
    buf_adds(b, "|scope:");
    buf_adds(b, t->scope->expr);
    for (i = 0; i < t->scope->ndeps; i++) {
        buf_adds(b, "|dep:");
        buf_adds(b, t->scope->deps[i]);
    }
}

/* ------------------------------------------------------------------ binding */

void
scope_bind(sqlite3_stmt *st, const struct scope_who *w)
{
    int i, n = sqlite3_bind_parameter_count(st);
    size_t plen = strlen(CLAIM_PREFIX);

    for (i = 1; i <= n; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        struct json_object *v = NULL;
        if (name == NULL)
            continue;
        if (strcmp(name, ":user") == 0) {
            sqlite3_bind_text(st, i, w->user, -1, SQLITE_STATIC);
        } else if (strncmp(name, CLAIM_PREFIX, plen) == 0) {
            if (w->claims != NULL && json_object_object_get_ex(w->claims, name + plen, &v) &&
                json_object_is_type(v, json_type_string))
                sqlite3_bind_text(st, i, json_object_get_string(v), -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(st, i);
        }
    }
}

/* The claims s uses, as w has them: a JSON object text (new string). */
static char *
claims_text(const struct scope *s, const struct scope_who *w)
{
    struct json_object *o = json_object_new_object(), *v;
    char *out;
    size_t i;

    for (i = 0; i < s->nclaims; i++) {
        if (w->claims != NULL && json_object_object_get_ex(w->claims, s->claims[i], &v) &&
            json_object_is_type(v, json_type_string))
            json_object_object_add(o, s->claims[i], json_object_get(v));
        else
            json_object_object_add(o, s->claims[i], NULL);
    }
    out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

/* ------------------------------------------------------------------ triggers */

static void
dep_trigger_prefix(struct buf *b, const struct table *t)
{
    buf_printf(b, "_rhtmx_sync_%s_dep_", t->en->name);
}

int
scope_install(struct db *d, const struct table *t, struct err *e)
{
    static const char *const events[] = {"INSERT", "UPDATE", "DELETE"};
    struct buf prefix = {0}, sql = {0}, name = {0};
    sqlite3_stmt *st = NULL;
    size_t i, j;
    int rc = -1, step;

    dep_trigger_prefix(&prefix, t);
    if (sqlite3_prepare_v2(d->h,
                           "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                           " AND substr(name, 1, length(?1)) = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        db_fail(d, e, "scope: list triggers");
        goto out;
    }
    sqlite3_bind_text(st, 1, prefix.p, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        buf_adds(&sql, "DROP TRIGGER ");
        sql_ident(&sql, (const char *)sqlite3_column_text(st, 0));
        buf_adds(&sql, ";\n");
    }
    if (step != SQLITE_DONE) {
        db_fail(d, e, "scope: list triggers");
        goto out;
    }
    for (i = 0; t->scope != NULL && i < t->scope->ndeps; i++) {
        for (j = 0; j < 3; j++) {
            buf_reset(&name);
            buf_printf(&name, "%s%s_%c", prefix.p, t->scope->deps[i], "iud"[j]);
            buf_adds(&sql, "CREATE TRIGGER ");
            sql_ident(&sql, name.p);
            buf_printf(&sql, " AFTER %s ON ", events[j]);
            sql_ident(&sql, t->scope->deps[i]);
            /* One entry per entity at the newest version: a bulk change of the
             * table is one event, and a pull only asks "anything after?". */
            buf_adds(&sql, " BEGIN\nUPDATE _rhtmx_sync_state SET value = value + 1 WHERE key = "
                           "'head';\nDELETE FROM _rhtmx_sync_log WHERE entity = '" SCOPE_LOG_ENTITY
                           "' AND entity_id = ");
            sql_literal(&sql, t->en->name);
            buf_adds(&sql, ";\nINSERT INTO _rhtmx_sync_log (entity, entity_id, action, data, "
                           "version) VALUES ('" SCOPE_LOG_ENTITY "', ");
            sql_literal(&sql, t->en->name);
            buf_adds(&sql, ", 'update', 'null', (SELECT value FROM _rhtmx_sync_state WHERE key = "
                           "'head'));\nEND;\n");
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = sql.len > 0 ? db_exec(d, sql.p, e) : 0;
out:
    sqlite3_finalize(st);
    buf_free(&prefix);
    buf_free(&sql);
    buf_free(&name);
    return rc;
}

int
scope_installed(struct db *d, const struct table *t)
{
    sqlite3_stmt *st = NULL;
    char prefix[100];
    int n = 0;

    snprintf(prefix, sizeof(prefix), "_rhtmx_sync_%s_dep_", t->en->name);
    if (sqlite3_prepare_v2(d->h,
                           "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                           " AND substr(name, 1, length(?1)) = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return 0;
    }
    sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return (size_t)n == 3 * t->scope->ndeps;
}

/* ------------------------------------------------------------------ reconciling */

/* The viewer record of w for t, read in the caller's transaction. */
struct viewer {
    int found;
    long long id;
    long long checked, born, seen;
    int same; /* built for this scope and these claims */
};

static int
viewer_read(struct db *d, const struct table *t, const struct scope_who *w, const char *claims,
            struct viewer *v, struct err *e)
{
    sqlite3_stmt *st = NULL;
    int rc;

    memset(v, 0, sizeof(*v));
    if (sqlite3_prepare_v2(d->h,
                           "SELECT checked, born, seen, signature = ?3 AND claims = ?4, id"
                           "  FROM _rhtmx_sync_viewers WHERE entity = ?1 AND viewer = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(d, e, "scope: read the viewer");
    sqlite3_bind_text(st, 1, t->en->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, w->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->scope->expr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, claims, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        v->found = 1;
        v->checked = sqlite3_column_int64(st, 0);
        v->born = sqlite3_column_int64(st, 1);
        v->seen = sqlite3_column_int64(st, 2);
        v->same = sqlite3_column_int(st, 3);
        v->id = sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(d, e, "scope: read the viewer");
    return 0;
}

/* 1 if sql (one integer parameter ?2 after entity ?1) finds a row. */
static int
exists_after(struct db *d, const char *sql, const char *entity, long long v, struct err *e)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(d->h, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(d, e, "scope: probe the log");
    sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(d, e, "scope: probe the log");
    return rc == SQLITE_ROW;
}

#define Q_OWN_CHANGED "SELECT 1 FROM _rhtmx_sync_log WHERE entity = ?1 AND version > ?2 LIMIT 1"
#define Q_DEP_CHANGED                                                                              \
    "SELECT 1 FROM _rhtmx_sync_log WHERE entity = '" SCOPE_LOG_ENTITY "' AND entity_id = ?1"       \
    " AND version > ?2"

/* Run sql with the scope's and the reconciliation's parameters; *changes: rows written. */
static int
run_named(struct db *d, const char *sql, const struct table *t, const struct scope_who *w,
          long long vid, long long checked, long long head, int *changes, struct err *e)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(d->h, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(d, e, "scope: prepare");
    scope_bind(st, w);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":_rhtmx_e"), t->en->name, -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":_rhtmx_vid"), vid);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":_rhtmx_checked"), checked);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":_rhtmx_head"), head);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(d, e, "scope: reconcile");
    if (changes != NULL)
        *changes = sqlite3_changes(d->h);
    return 0;
}

/* The key of alias a, quoted. */
static void
key_of(struct buf *b, const struct table *t, const char *a)
{
    buf_printf(b, "%s.", a);
    sql_ident(b, t->cols[t->key].name);
}

/*
 * Every row in scope into w's empty view, as creates with versions above
 * head; *n: how far the head moves. For a table with a rowid spanning less
 * than 2^31 (the usual INTEGER PRIMARY KEY), a row's version is head + 1 +
 * its rowid - the table's smallest: one INSERT ... SELECT without a window
 * function (row_number() materialises and sorts every row first, which made
 * a user's first full pull of 100,000 rows cost 1.8 times an unscoped one),
 * and the head moves by the span. Otherwise (WITHOUT ROWID, a wider span)
 * they are numbered with row_number().
 */
static int
bootstrap(struct db *d, const struct table *t, const struct scope_who *w, long long vid,
          long long head, int *n, struct err *e)
{
    struct buf sql = {0};
    sqlite3_stmt *st = NULL;
    long long lo = 0, hi = 0;
    int dense = 0, rc;

    *n = 0;
    /* rowid, unless a column of that name hides it: its bounds are two b-tree
     * probes, and a span below 2^31 keeps the head far from overflowing */
    if (table_column(t, "rowid") < 0) {
        buf_adds(&sql, "SELECT min(rowid), max(rowid) FROM ");
        sql_ident(&sql, t->en->table);
        if (sqlite3_prepare_v2(d->h, sql.p, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
            lo = sqlite3_column_int64(st, 0);
            hi = sqlite3_column_int64(st, 1);
            dense = hi >= lo && hi - lo < (1LL << 31);
        } /* else empty, or a table without rowid: numbered below */
        sqlite3_finalize(st);
        buf_reset(&sql);
    }
    buf_adds(&sql, "INSERT INTO _rhtmx_sync_view (vid, entity_id, visible, action, version, "
                   "client_id) SELECT :_rhtmx_vid, ");
    if (dense) {
        /* unaliased, so that the expression may name the table */
        sql_ident(&sql, t->en->table);
        buf_adds(&sql, ".");
        sql_ident(&sql, t->cols[t->key].name);
        buf_printf(&sql, ", 1, 'create', :_rhtmx_head + 1 + rowid - %lld, NULL FROM ", lo);
        sql_ident(&sql, t->en->table);
        buf_printf(&sql, " WHERE (\n%s\n)", t->scope->expr);
    } else {
        key_of(&sql, t, "r");
        buf_printf(&sql,
                   ", 1, 'create', :_rhtmx_head + row_number() OVER (), NULL FROM %s AS r"
                   " WHERE 1",
                   t->scope->source);
    }
    rc = run_named(d, sql.p, t, w, vid, 0, head, n, e);
    if (rc == 0 && dense)
        *n = (int)(hi - lo + 1);
    buf_free(&sql);
    return rc;
}

/*
 * The rows whose visibility or content changed for the user since checked,
 * each with a new version from head on. keys: every row with log entries
 * after checked, and with all, also every row in scope and every row the view
 * holds visible (a dependency changed: any of them may have left or entered).
 */
static void
diff_sql(struct buf *b, const struct table *t, int all)
{
    buf_adds(b, "INSERT INTO _rhtmx_sync_view (vid, entity_id, visible, action, version, "
                "client_id) SELECT :_rhtmx_vid, c._rhtmx_k, c._rhtmx_v,"
                " CASE WHEN NOT c._rhtmx_v THEN 'delete' WHEN c._rhtmx_was THEN 'update'"
                " ELSE 'create' END, :_rhtmx_head + row_number() OVER (ORDER BY c._rhtmx_k),"
                " (SELECT l.client_id FROM _rhtmx_sync_log AS l WHERE l.entity = :_rhtmx_e"
                " AND l.entity_id = c._rhtmx_k ORDER BY l.version DESC LIMIT 1)"
                " FROM (SELECT k._rhtmx_k, EXISTS (SELECT 1 FROM ");
    buf_adds(b, t->scope->source);
    buf_adds(b, " AS r WHERE ");
    key_of(b, t, "r");
    buf_adds(b, " = k._rhtmx_k) AS _rhtmx_v,"
                " coalesce((SELECT w.visible FROM _rhtmx_sync_view AS w WHERE w.vid = :_rhtmx_vid"
                " AND w.entity_id = k._rhtmx_k), 0) AS _rhtmx_was,"
                " EXISTS (SELECT 1 FROM _rhtmx_sync_log AS l WHERE l.entity = :_rhtmx_e"
                " AND l.entity_id = k._rhtmx_k AND l.version > :_rhtmx_checked) AS _rhtmx_changed"
                " FROM (SELECT DISTINCT entity_id AS _rhtmx_k FROM _rhtmx_sync_log"
                " WHERE entity = :_rhtmx_e AND version > :_rhtmx_checked");
    if (all) {
        buf_adds(b, " UNION SELECT ");
        key_of(b, t, "r");
        buf_printf(b, " FROM %s AS r", t->scope->source);
        buf_adds(b, " UNION SELECT entity_id FROM _rhtmx_sync_view WHERE vid = :_rhtmx_vid"
                    " AND visible");
    }
    buf_adds(b, ") AS k) AS c WHERE c._rhtmx_v <> c._rhtmx_was OR (c._rhtmx_v AND "
                "c._rhtmx_changed) ON CONFLICT (vid, entity_id) DO UPDATE SET"
                " visible = excluded.visible, action = excluded.action,"
                " version = excluded.version, client_id = excluded.client_id");
}

/* The writing half of scope_reconcile, inside a write transaction. */
static int
reconcile_write(struct db *d, const struct table *t, const struct scope_who *w, const char *claims,
                long long *born, struct err *e)
{
    struct viewer v;
    struct buf sql = {0};
    sqlite3_stmt *st = NULL;
    long long head, horizon;
    int n = 0, dep, rc = -1;

    if ((head = db_head(d, e)) < 0 || (horizon = changelog_horizon(d, e)) < 0 ||
        viewer_read(d, t, w, claims, &v, e) < 0)
        goto out;
    if (!v.found) {
        if (sqlite3_prepare_v2(d->h,
                               "INSERT INTO _rhtmx_sync_viewers (entity, viewer, signature, claims,"
                               " checked, born, seen) VALUES (?1, ?2, '', '', 0, 0, 0)",
                               -1, &st, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_text(st, 1, t->en->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, w->user, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
        sqlite3_finalize(st);
        st = NULL;
        v.id = sqlite3_last_insert_rowid(d->h);
    }
    if (!v.found || !v.same || v.checked < horizon) {
        /* New, built for another scope or other claims, or older than the
         * horizon (deletes it has not seen may be compacted away): start
         * over; the user's devices resync (their cursors are below born). */
        if (run_named(d, "DELETE FROM _rhtmx_sync_view WHERE vid = :_rhtmx_vid", t, w, v.id, 0, 0,
                      NULL, e) < 0)
            goto out;
        if (bootstrap(d, t, w, v.id, head, &n, e) < 0)
            goto out;
        v.born = head + n;
    } else {
        dep = exists_after(d, Q_DEP_CHANGED, t->en->name, v.checked, e);
        if (dep < 0)
            goto out;
        diff_sql(&sql, t, dep);
        if (run_named(d, sql.p, t, w, v.id, v.checked, head, &n, e) < 0)
            goto out;
    }
    head += n;
    if (n > 0) {
        if (sqlite3_prepare_v2(d->h, "UPDATE _rhtmx_sync_state SET value = ?1 WHERE key = 'head'",
                               -1, &st, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_int64(st, 1, head);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
        sqlite3_finalize(st);
        st = NULL;
    }
    if (sqlite3_prepare_v2(
            d->h,
            "UPDATE _rhtmx_sync_viewers SET signature = ?3, claims = ?4, checked = ?5,"
            " born = ?6, seen = ?7 WHERE id = ?1",
            -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, v.id);
    sqlite3_bind_text(st, 3, t->scope->expr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, claims, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, head);
    sqlite3_bind_int64(st, 6, v.born);
    sqlite3_bind_int64(st, 7, (long long)time(NULL));
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    *born = v.born;
    rc = 0;
    goto out;
fail:
    db_fail(d, e, "scope: record the view");
out:
    sqlite3_finalize(st);
    buf_free(&sql);
    return rc;
}

int
scope_reconcile(struct db *d, const struct table *t, const struct scope_who *w, long long *born,
                struct err *e)
{
    struct viewer v;
    char *claims = claims_text(t->scope, w);
    long long horizon;
    int rc = -1, own;

    *born = 0;
    if (claims == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto out;
    }
    /* In the pull's snapshot first: most pulls have nothing to write. */
    if (viewer_read(d, t, w, claims, &v, e) < 0)
        goto out;
    if ((horizon = changelog_horizon(d, e)) < 0)
        goto out;
    if (v.found && v.same && v.checked >= horizon &&
        (long long)time(NULL) - v.seen < SEEN_REFRESH_S) {
        own = exists_after(d, Q_OWN_CHANGED, t->en->name, v.checked, e);
        if (own == 0)
            own = exists_after(d, Q_DEP_CHANGED, t->en->name, v.checked, e);
        if (own < 0)
            goto out;
        if (own == 0) {
            *born = v.born;
            rc = 0;
            goto out;
        }
    }
    if (d->readonly) { /* nothing can be written: the view stays as it is */
        *born = v.found && v.same ? v.born : 0;
        rc = 0;
        goto out;
    }
    db_rollback(d);
    if (db_begin_write(d, e) < 0)
        goto out;
    if (reconcile_write(d, t, w, claims, born, e) < 0 || db_commit(d, e) < 0) {
        db_rollback(d);
        goto out;
    }
    rc = db_begin_read(d, e);
out:
    free(claims);
    return rc;
}

/* ------------------------------------------------------------------ reading */

void
scope_pull_sql(struct buf *b, const struct table *t)
{
    /* ?5 first: a named parameter takes the number after the largest one
     * seen before it, and the scope's come in the FROM clause. */
    buf_adds(b, "SELECT v.entity_id, CASE WHEN ?5 THEN 'create' ELSE v.action END,"
                " CASE WHEN v.visible THEN ");
    schema_json_row(b, t, "r");
    buf_adds(b, " END, v.version, v.client_id FROM _rhtmx_sync_view AS v LEFT JOIN ");
    buf_adds(b, t->scope->source);
    buf_adds(b, " AS r ON v.visible AND ");
    key_of(b, t, "r");
    buf_adds(b, " = v.entity_id WHERE v.vid = (SELECT id FROM _rhtmx_sync_viewers WHERE entity"
                " = ?1 AND viewer = :user) AND v.version > ?2"
                " AND (NOT ?5 OR v.visible) AND (NOT v.visible OR ");
    key_of(b, t, "r");
    /* A row the view holds visible but out of scope now: left out (the next
     * reconciliation sends its delete); never sent with its data. */
    buf_adds(b, " IS NOT NULL) ORDER BY v.version LIMIT ?3");
}

int
scope_row_visible(struct db *d, const struct table *t, sqlite3_value *k, const struct scope_who *w,
                  struct err *e)
{
    struct buf sql = {0};
    sqlite3_stmt *st = NULL;
    int rc;

    buf_adds(&sql, "SELECT EXISTS (SELECT 1 FROM ");
    buf_adds(&sql, t->scope->source);
    buf_adds(&sql, " AS r WHERE ");
    key_of(&sql, t, "r");
    buf_adds(&sql, " = :_rhtmx_k)");
    rc = sqlite3_prepare_v2(d->h, sql.p, -1, &st, NULL);
    buf_free(&sql);
    if (rc != SQLITE_OK)
        return db_fail(d, e, "scope: check a row");
    scope_bind(st, w);
    sqlite3_bind_value(st, sqlite3_bind_parameter_index(st, ":_rhtmx_k"), k);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = sqlite3_column_int(st, 0);
    else
        rc = db_fail(d, e, "scope: check a row");
    sqlite3_finalize(st);
    return rc;
}

char *
scope_rule(const struct entity *en, const char *user, const char *claims)
{
    struct scope tmp;
    struct buf b = {0}, expr = {0};
    const char *key = en->key != NULL ? en->key : "id";

    memset(&tmp, 0, sizeof(tmp));
    if (en->scope != NULL) {
        if (rewrite(en->scope, &expr, &tmp) != NULL)
            goto err;
    } else if (en->owner_column != NULL) {
        buf_adds(&expr, "CAST(");
        sql_ident(&expr, en->owner_column);
        buf_adds(&expr, " AS TEXT) = :user");
    } else {
        goto err;
    }
    buf_printf(&b, "%c%s%c%s%c", SCOPE_RULE_MARK, user, SCOPE_RULE_SEP,
               claims != NULL && *claims != '\0' ? claims : "{}", SCOPE_RULE_SEP);
    buf_adds(&b, "SELECT EXISTS (SELECT 1 FROM (SELECT * FROM ");
    sql_ident(&b, en->table != NULL ? en->table : en->name);
    buf_printf(&b, " WHERE (\n%s\n)) AS r WHERE r.", expr.p);
    sql_ident(&b, key);
    buf_adds(&b, " = :_rhtmx_k) OR EXISTS (SELECT 1 FROM _rhtmx_sync_view WHERE vid = (SELECT id"
                 " FROM _rhtmx_sync_viewers WHERE entity = ");
    sql_literal(&b, en->name);
    buf_adds(&b, " AND viewer = :user) AND entity_id = :_rhtmx_k AND visible)");
    list_free(tmp.claims, tmp.nclaims);
    buf_free(&expr);
    return b.p;
err:
    list_free(tmp.claims, tmp.nclaims);
    buf_free(&expr);
    buf_free(&b);
    return NULL;
}

int
scope_rule_probe(struct db *d, const char *rule, sqlite3_stmt **st, sqlite3_value *k)
{
    const char *user = rule + 1, *claims, *sql;
    struct json_object *parsed = NULL;
    struct scope_who w;
    char *u = NULL;
    int rc;

    if (rule[0] != SCOPE_RULE_MARK || (claims = strchr(user, SCOPE_RULE_SEP)) == NULL ||
        (sql = strchr(claims + 1, SCOPE_RULE_SEP)) == NULL)
        return -1;
    if (*st == NULL &&
        sqlite3_prepare_v3(d->h, sql + 1, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return -1;
    u = xstrndup(user, (size_t)(claims - user));
    if (strstr(sql, CLAIM_PREFIX) != NULL) {
        char *text = xstrndup(claims + 1, (size_t)(sql - claims - 1));
        parsed = text != NULL ? json_tokener_parse(text) : NULL;
        free(text);
    }
    w.user = u;
    w.claims = parsed;
    scope_bind(*st, &w);
    sqlite3_bind_value(*st, sqlite3_bind_parameter_index(*st, ":_rhtmx_k"), k);
    rc = sqlite3_step(*st);
    rc = rc == SQLITE_ROW ? sqlite3_column_int(*st, 0) != 0 : -1;
    sqlite3_reset(*st);
    sqlite3_clear_bindings(*st);
    json_object_put(parsed);
    free(u);
    return rc;
}

int
scope_compact(struct db *d, long long horizon, int days, struct err *e)
{
    /* A device below the horizon resyncs anyway: what left its view at or
     * before it need not be told again. Users gone for longer than the
     * retention lose their views; a device of theirs that comes back is
     * below the rebuilt view's born and resyncs. */
    static const char *const sql[] = {
        "DELETE FROM _rhtmx_sync_view WHERE NOT visible AND version <= ?1",
        "DELETE FROM _rhtmx_sync_view WHERE vid IN (SELECT id FROM _rhtmx_sync_viewers"
        " WHERE seen < ?2)",
        "DELETE FROM _rhtmx_sync_viewers WHERE seen < ?2",
    };
    long long cut = (long long)time(NULL) - (long long)days * 86400;
    sqlite3_stmt *st = NULL;
    size_t i;
    int rc;

    for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        if (sqlite3_prepare_v2(d->h, sql[i], -1, &st, NULL) != SQLITE_OK)
            return db_fail(d, e, "scope: compact the views");
        sqlite3_bind_int64(st, 1, horizon);
        sqlite3_bind_int64(st, 2, cut);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return db_fail(d, e, "scope: compact the views");
    }
    return 0;
}
