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
#include "sqlgen.h"

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
    sqlite3_stmt *st;
    struct err e;
    size_t i;
    int rc = 0;

    for (i = 0; i < k->nfuncs && rc == 0; i++) {
        if ((st = db_stmt(d, STMT_FUNCTION_FLAGS, &e)) == NULL) {
            refuse(k, "its functions cannot be checked (%s)", e.msg);
            return -1;
        }
        sqlite3_bind_text(st, 1, k->funcs[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL ||
            sqlite3_column_int(st, 0) != 0 || sqlite3_column_int(st, 1) == 0) {
            refuse(k, "it calls %s(), which may have side effects", k->funcs[i]);
            rc = -1;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
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

/* The expression of en as bound, into s->expr (and its claims into s):
 * the scope rewritten, or owner_column's. NULL, or a static problem. */
static const char *
expression(const struct entity *en, struct scope *s)
{
    struct buf text = {0};
    const char *why = NULL;

    if (en->scope != NULL) {
        why = rewrite(en->scope, &text, s);
        if (why == NULL)
            s->expr = text.p;
        else
            buf_free(&text);
        return why;
    }
    /* sqlite3_malloc'ed: copied below */
    s->expr = sqlgen_named(SQLGEN_SCOPE_OWNER, en->owner_column);
    if (s->expr != NULL) {
        char *copy = strdup(s->expr);
        sqlite3_free(s->expr);
        s->expr = copy;
    }
    return s->expr == NULL ? "no memory" : NULL;
}

int
scope_load(struct db *d, const struct config *c, const struct table *t, struct scope **out,
           struct err *e)
{
    const struct entity *en = t->en;
    struct scope *s = NULL;
    struct check k;
    sqlite3_stmt *st = NULL;
    char *sql = NULL, *src = NULL;
    const char *why;
    int rc = -1, more = 0;

    *out = NULL;
    memset(&k, 0, sizeof(k));
    if (en->scope == NULL && t->owner < 0)
        return 0;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }
    if ((why = expression(en, s)) != NULL) {
        err_set(e, 500, "config", "%s: entity '%s': scope refused: it contains %s", c->path,
                en->name, why);
        goto err;
    }
    k.table = en->table;
    k.s = s;
    sql = sqlgen_scope_check(en->table, s->expr);
    st = db_compile_authorized(d, sql, authorize, &k, &more);
    if (st == NULL) {
        if (k.problem[0] != '\0')
            err_set(e, 500, "config", "%s: entity '%s': scope refused: %s", c->path, en->name,
                    k.problem);
        else
            err_set(e, 500, "config", "%s: entity '%s': scope does not compile: %s", c->path,
                    en->name, sql == NULL ? "out of memory" : sqlite3_errmsg(d->h));
        goto err;
    }
    if (more) {
        err_set(e, 500, "config", "%s: entity '%s': scope refused: it holds a second statement",
                c->path, en->name);
        goto err;
    }
    if (check_params(st, &k) < 0 || check_functions(d, &k) < 0) {
        err_set(e, 500, "config", "%s: entity '%s': scope refused: %s", c->path, en->name,
                k.problem);
        goto err;
    }
    if ((src = sqlgen_scope_source(en->table, s->expr)) == NULL ||
        (s->source = strdup(src)) == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }
    *out = s;
    s = NULL;
    rc = 0;
err:
    sqlite3_finalize(st);
    sqlite3_free(sql);
    sqlite3_free(src);
    list_free(k.funcs, k.nfuncs);
    scope_free(s);
    return rc;
}

int
scope_sign(struct table *t)
{
    struct buf b = {0};
    size_t i;

    if (t->scope == NULL)
        return 0;
    buf_adds(&b, t->signature);
    buf_adds(&b, "|scope:");
    buf_adds(&b, t->scope->expr);
    for (i = 0; i < t->scope->ndeps; i++) {
        buf_adds(&b, "|dep:");
        buf_adds(&b, t->scope->deps[i]);
    }
    if (b.p == NULL)
        return -1;
    free(t->signature);
    t->signature = b.p;
    return 0;
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

char *
scope_claims(const struct scope *s, const struct scope_who *w)
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

int
scope_install(struct db *d, const struct table *t, struct err *e)
{
    struct buf prefix = {0}, sql = {0};
    sqlite3_stmt *st;
    char *one;
    int rc = -1, step;

    buf_printf(&prefix, "_rhtmx_sync_%s_dep_", t->en->name);
    if ((st = db_stmt(d, STMT_SCOPE_TRIGGERS, e)) == NULL)
        goto out;
    sqlite3_bind_text(st, 1, prefix.p, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        one = sqlgen_named(SQLGEN_DROP_TRIGGER, (const char *)sqlite3_column_text(st, 0));
        if (one != NULL)
            buf_adds(&sql, one);
        sqlite3_free(one);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step != SQLITE_DONE) {
        db_fail(d, e, "scope: list triggers");
        goto out;
    }
    if (t->scope != NULL && t->scope->ndeps > 0) {
        if ((one = sqlgen_scope_triggers(t)) == NULL) {
            err_set(e, 500, "internal", "out of memory");
            goto out;
        }
        buf_adds(&sql, one);
        sqlite3_free(one);
    }
    rc = sql.len > 0 ? db_exec(d, sql.p, e) : 0;
out:
    buf_free(&prefix);
    buf_free(&sql);
    return rc;
}

int
scope_installed(struct db *d, const struct table *t)
{
    sqlite3_stmt *st;
    struct err ignored;
    char prefix[100];
    size_t n = 0;

    if ((st = db_stmt(d, STMT_SCOPE_TRIGGERS, &ignored)) == NULL)
        return 0;
    snprintf(prefix, sizeof(prefix), "_rhtmx_sync_%s_dep_", t->en->name);
    sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW)
        n++;
    sqlite3_reset(st); /* ends its read of the schema */
    sqlite3_clear_bindings(st);
    return n == 3 * t->scope->ndeps;
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
    sqlite3_stmt *st = db_stmt(d, STMT_VIEWER_GET, e);
    int rc;

    memset(v, 0, sizeof(*v));
    if (st == NULL)
        return -1;
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
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(d, e, "scope: read the viewer");
    return 0;
}

/* 1 if statement id (entity ?1, version ?2) finds a row, 0 if not, -1. */
static int
exists_after(struct db *d, enum db_stmt id, const char *entity, long long v, struct err *e)
{
    sqlite3_stmt *st = db_stmt(d, id, e);
    int rc;

    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(d, e, "scope: probe the log");
    return rc == SQLITE_ROW;
}

/* Run generated sql (freed here) with the scope's and the reconciliation's
 * parameters; *changes: rows written. */
static int
run_named(struct db *d, char *sql, const struct table *t, const struct scope_who *w, long long vid,
          long long checked, long long head, int *changes, struct err *e)
{
    sqlite3_stmt *st = db_prepare(d, sql, "scope: reconcile", e);
    int rc = -1;

    sqlite3_free(sql);
    if (st == NULL)
        return -1;
    scope_bind(st, w);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":_rhtmx_e"), t->en->name, -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":_rhtmx_vid"), vid);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":_rhtmx_checked"), checked);
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":_rhtmx_head"), head);
    if (db_done(d, st, "scope: reconcile", e) == 0) {
        rc = 0;
        if (changes != NULL)
            *changes = sqlite3_changes(d->h);
    }
    sqlite3_finalize(st);
    return rc;
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
    sqlite3_stmt *st = NULL;
    struct err ignored;
    long long lo = 0, hi = 0;
    int dense = 0;

    *n = 0;
    /* rowid, unless a column of that name hides it: its bounds are two b-tree
     * probes, and a span below 2^31 keeps the head far from overflowing */
    if (table_column(t, "rowid") < 0) {
        char *sql = sqlgen_rowid_bounds(t);
        st = db_prepare(d, sql, "scope: rowid bounds", &ignored);
        sqlite3_free(sql);
        if (st != NULL && sqlite3_step(st) == SQLITE_ROW &&
            sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
            lo = sqlite3_column_int64(st, 0);
            hi = sqlite3_column_int64(st, 1);
            dense = hi >= lo && hi - lo < (1LL << 31);
        } /* else empty, or a table without rowid: numbered by row_number() */
        sqlite3_finalize(st);
    }
    if (run_named(d, sqlgen_scope_bootstrap(t, dense, lo), t, w, vid, 0, head, n, e) < 0)
        return -1;
    if (dense)
        *n = (int)(hi - lo + 1);
    return 0;
}

/* The writing half of scope_reconcile, inside a write transaction. */
static int
reconcile_write(struct db *d, const struct table *t, const struct scope_who *w, const char *claims,
                long long *born, struct err *e)
{
    struct viewer v;
    sqlite3_stmt *st;
    long long head, horizon;
    int n = 0, dep;

    if ((head = db_head(d, e)) < 0 || (horizon = changelog_horizon(d, e)) < 0 ||
        viewer_read(d, t, w, claims, &v, e) < 0)
        return -1;
    if (!v.found) {
        if ((st = db_stmt(d, STMT_VIEWER_NEW, e)) == NULL)
            return -1;
        sqlite3_bind_text(st, 1, t->en->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, w->user, -1, SQLITE_STATIC);
        if (db_done(d, st, "scope: a new viewer", e) < 0)
            return -1;
        sqlite3_clear_bindings(st);
        v.id = sqlite3_last_insert_rowid(d->h);
    }
    if (!v.found || !v.same || v.checked < horizon) {
        /* New, built for another scope or other claims, or older than the
         * horizon (deletes it has not seen may be compacted away): start
         * over; the user's devices resync (their cursors are below born). */
        if ((st = db_stmt(d, STMT_VIEW_CLEAR, e)) == NULL)
            return -1;
        sqlite3_bind_int64(st, 1, v.id);
        if (db_done(d, st, "scope: clear the view", e) < 0 ||
            bootstrap(d, t, w, v.id, head, &n, e) < 0)
            return -1;
        v.born = head + n;
    } else {
        if ((dep = exists_after(d, STMT_SCOPE_DEP_CHANGED, t->en->name, v.checked, e)) < 0 ||
            run_named(d, sqlgen_scope_diff(t, dep), t, w, v.id, v.checked, head, &n, e) < 0)
            return -1;
    }
    head += n;
    if (n > 0) {
        if ((st = db_stmt(d, STMT_SET_HEAD, e)) == NULL)
            return -1;
        sqlite3_bind_int64(st, 1, head);
        if (db_done(d, st, "scope: move the head", e) < 0)
            return -1;
    }
    if ((st = db_stmt(d, STMT_VIEWER_PUT, e)) == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, v.id);
    sqlite3_bind_text(st, 2, t->scope->expr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, claims, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, head);
    sqlite3_bind_int64(st, 5, v.born);
    sqlite3_bind_int64(st, 6, (long long)time(NULL));
    if (db_done(d, st, "scope: record the view", e) < 0)
        return -1;
    sqlite3_clear_bindings(st);
    *born = v.born;
    return 0;
}

int
scope_reconcile(struct db *d, const struct table *t, const struct scope_who *w, long long *born,
                struct err *e)
{
    struct viewer v;
    char *claims = scope_claims(t->scope, w);
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
        own = exists_after(d, STMT_SCOPE_OWN_CHANGED, t->en->name, v.checked, e);
        if (own == 0)
            own = exists_after(d, STMT_SCOPE_DEP_CHANGED, t->en->name, v.checked, e);
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
    char *sql = sqlgen_scope_pull(t);

    if (sql != NULL)
        buf_adds(b, sql);
    sqlite3_free(sql);
}

int
scope_row_visible(struct db *d, const struct table *t, sqlite3_value *k, const struct scope_who *w,
                  struct err *e)
{
    char *sql = sqlgen_scope_row(t);
    sqlite3_stmt *st = db_prepare(d, sql, "scope: check a row", e);
    int rc;

    sqlite3_free(sql);
    if (st == NULL)
        return -1;
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
    struct buf b = {0};
    char *probe = NULL;

    memset(&tmp, 0, sizeof(tmp));
    if ((en->scope == NULL && en->owner_column == NULL) || expression(en, &tmp) != NULL)
        goto out;
    if ((probe = sqlgen_scope_probe(en, tmp.expr)) == NULL)
        goto out;
    buf_printf(&b, "%c%s%c%s%c%s", SCOPE_RULE_MARK, user, SCOPE_RULE_SEP,
               claims != NULL && *claims != '\0' ? claims : "{}", SCOPE_RULE_SEP, probe);
out:
    sqlite3_free(probe);
    free(tmp.expr);
    list_free(tmp.claims, tmp.nclaims);
    return b.p;
}

int
scope_rule_probe(struct db *d, const char *rule, sqlite3_stmt **st, sqlite3_value *k)
{
    const char *user = rule + 1, *claims, *sql;
    struct json_object *parsed = NULL;
    struct scope_who w;
    struct err ignored;
    char *u = NULL;
    int rc;

    if (rule[0] != SCOPE_RULE_MARK || (claims = strchr(user, SCOPE_RULE_SEP)) == NULL ||
        (sql = strchr(claims + 1, SCOPE_RULE_SEP)) == NULL)
        return -1;
    if (*st == NULL && (*st = db_prepare(d, sql + 1, "events: scope probe", &ignored)) == NULL)
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
    static const struct {
        enum db_stmt id;
        const char *what;
    } steps[] = {
        {STMT_VIEW_COMPACT_LEFT, "scope: compact the views"},
        {STMT_VIEW_COMPACT_GONE, "scope: drop the views of users gone"},
        {STMT_VIEWER_COMPACT_GONE, "scope: drop the users gone"},
    };
    long long cut = (long long)time(NULL) - (long long)days * 86400;
    sqlite3_stmt *st;
    size_t i;

    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if ((st = db_stmt(d, steps[i].id, e)) == NULL)
            return -1;
        sqlite3_bind_int64(st, 1, i == 0 ? horizon : cut);
        if (db_done(d, st, steps[i].what, e) < 0)
            return -1;
    }
    return 0;
}
