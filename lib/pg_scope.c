/*
 * pg_scope: see pg_scope.h.
 *
 * The expression is rewritten once, when it is checked, into the form every
 * query places it in: :user becomes _rhtmx_p._rhtmx_user and :claim.NAME
 * (_rhtmx_p._rhtmx_claims ->> 'NAME'), where _rhtmx_p is a one-row FROM item
 * made of the query's own two parameters (the user as text, the claims as a
 * jsonb object of strings and nulls). So the text is the same in every query,
 * whatever its parameter numbers, and each query names both parameters even
 * when the expression uses neither. The rows in scope, as a FROM item:
 *   (SELECT "table".* FROM "table",
 *      (SELECT $U::text AS _rhtmx_user, $C::jsonb AS _rhtmx_claims) AS _rhtmx_p
 *    WHERE (
 *    EXPR
 *    ))
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "pg_schema.h"
#include "pg_scope.h"

#define MAX_DEPS 32
#define MAX_CLAIMS 64
#define SEEN_REFRESH_S 86400 /* a view that needs no work is touched at most daily */
#define CHECK_VIEW "pg_temp._rhtmx_scope_check"

/* ------------------------------------------------------------------ the text */

static int
ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Append s to the list (*v, *n) unless it is there. 0, or -1 when full. */
static int
list_add(char ***v, size_t *n, size_t max, const char *s, size_t len)
{
    size_t i;
    char **nv;

    for (i = 0; i < *n; i++)
        if (strlen((*v)[i]) == len && strncmp((*v)[i], s, len) == 0)
            return 0;
    if (*n >= max || (nv = realloc(*v, (*n + 1) * sizeof(*nv))) == NULL)
        return -1;
    *v = nv;
    if ((nv[*n] = malloc(len + 1)) == NULL)
        return -1;
    memcpy(nv[*n], s, len);
    nv[*n][len] = '\0';
    (*n)++;
    return 0;
}

/*
 * Rewrite the configured expression in into out (see above), collecting the
 * claim names in s, and check its structure: no comment, no $ or backslash,
 * quotes closed, parentheses balanced, no parameter but :user and
 * :claim.NAME. 0, or -1 with the problem in why ("it contains ...").
 */
static int
rewrite(const char *in, struct buf *out, struct scope *s, char *why, size_t whylen)
{
    const char *p = in;
    int depth = 0;

    /* A backslash anywhere: inside E'...' it escapes a quote, and the scan
     * below would no longer see where PostgreSQL's strings end. */
    if (strchr(in, '\\') != NULL) {
        snprintf(why, whylen,
                 "it contains '\\' (dollar quotes, positional parameters and escape strings "
                 "are not supported)");
        return -1;
    }
    while (*p != '\0') {
        char c = *p;
        if (c == '\'' || c == '"') {
            const char *q = p + 1;
            for (;;) {
                if (*q == '\0') {
                    snprintf(why, whylen, "it contains an unterminated quote");
                    return -1;
                }
                if (*q == c && q[1] == c) {
                    q += 2;
                    continue;
                }
                if (*q == c)
                    break;
                q++;
            }
            buf_add(out, p, (size_t)(q - p + 1));
            p = q + 1;
            continue;
        }
        if ((c == '-' && p[1] == '-') || (c == '/' && p[1] == '*')) {
            snprintf(why, whylen, "it contains a comment");
            return -1;
        }
        if (c == '$') {
            snprintf(why, whylen,
                     "it contains '%c' (dollar quotes, positional parameters and escape strings "
                     "are not supported)",
                     c);
            return -1;
        }
        if (c == '(')
            depth++;
        if (c == ')' && --depth < 0) {
            snprintf(why, whylen, "it contains unbalanced parentheses");
            return -1;
        }
        if (c == ':' && p[1] == ':') { /* a cast */
            buf_add(out, p, 2);
            p += 2;
            continue;
        }
        if (c == ':' && strncmp(p, ":user", 5) == 0 && !ident_char(p[5])) {
            buf_adds(out, "_rhtmx_p._rhtmx_user");
            p += 5;
            continue;
        }
        if (c == ':' && strncmp(p, ":claim.", 7) == 0 && ident_char(p[7]) &&
            !(p[7] >= '0' && p[7] <= '9')) {
            const char *q = p + 7;
            while (ident_char(*q))
                q++;
            if (q - (p + 7) > 64 ||
                list_add(&s->claims, &s->nclaims, MAX_CLAIMS, p + 7, (size_t)(q - (p + 7))) < 0) {
                snprintf(why, whylen, "it contains too many or too long claim names");
                return -1;
            }
            buf_adds(out, "(_rhtmx_p._rhtmx_claims ->> '");
            buf_add(out, p + 7, (size_t)(q - (p + 7)));
            buf_adds(out, "')");
            p = q;
            continue;
        }
        if (c == ':' && ident_char(p[1])) {
            const char *q = p + 1;
            while (ident_char(*q))
                q++;
            snprintf(why, whylen, "unknown parameter %.*s (use :user or :claim.NAME)",
                     (int)(q - p > 64 ? 64 : q - p), p);
            return -1;
        }
        buf_add(out, p, 1);
        p++;
    }
    if (depth != 0) {
        snprintf(why, whylen, "it contains unbalanced parentheses");
        return -1;
    }
    return 0;
}

/* The rows of t in scope as a FROM item, with the user as parameter u and the
 * claims as parameter c (0: NULL, for the check). */
static void
source_sql(struct buf *b, const struct table *t, const char *expr, int u, int c)
{
    buf_adds(b, "(SELECT ");
    pg_ident(b, t->en->table);
    buf_adds(b, ".* FROM ");
    pg_ident(b, t->en->table);
    if (u > 0)
        buf_printf(b, ", (SELECT $%d::text AS _rhtmx_user, $%d::jsonb AS _rhtmx_claims)", u, c);
    else
        buf_adds(b, ", (SELECT NULL::text AS _rhtmx_user, NULL::jsonb AS _rhtmx_claims)");
    buf_adds(b, " AS _rhtmx_p WHERE (\n");
    buf_adds(b, expr);
    buf_adds(b, "\n))");
}

/* The configured expression of en: its scope, or owner_column's. New string. */
static char *
configured(const struct entity *en)
{
    struct buf b = {0};

    if (en->scope != NULL)
        return strdup(en->scope);
    pg_ident(&b, en->owner_column);
    buf_adds(&b, "::text = :user");
    return b.p;
}

/* ------------------------------------------------------------------ checking */

/*
 * What the check view reads and calls, from its stored query tree
 * (pg_rewrite.ev_action, the node text PostgreSQL keeps for a view): every
 * relation (:relid), function, aggregate and window function (:funcid,
 * :aggfnoid, :winfnoid) and operator (:opno, judged by its function), in
 * subqueries too. pg_depend would be the tidier source, but it records no
 * dependency on PostgreSQL's own (pinned) objects, which are most of what a
 * hostile expression would reach for. Columns: kind ('r' a relation, 'f' a
 * function), schema, name, relkind or provolatile, and whether it is the
 * entity's own table.
 */
static const char deps_sql[] =
    "WITH a AS (SELECT w.ev_action::text AS t, w.ev_class FROM pg_rewrite AS w"
    "  WHERE w.ev_class = to_regclass('" CHECK_VIEW "')),"
    " rels AS (SELECT DISTINCT m[1]::oid AS id FROM a, regexp_matches(a.t, ':relid (\\d+)', 'g')"
    "  AS m WHERE m[1]::oid <> a.ev_class),"
    " fns AS (SELECT DISTINCT m[2]::oid AS id FROM a,"
    "  regexp_matches(a.t, ':(funcid|aggfnoid|winfnoid) (\\d+)', 'g') AS m),"
    " ops AS (SELECT DISTINCT m[1]::oid AS id FROM a, regexp_matches(a.t, ':opno (\\d+)', 'g') AS "
    "m)"
    " SELECT 'r', n.nspname, c.relname, c.relkind::text, c.oid = to_regclass(quote_ident($1))"
    "   FROM rels JOIN pg_class AS c ON c.oid = rels.id"
    "   JOIN pg_namespace AS n ON n.oid = c.relnamespace"
    " UNION SELECT 'f', n.nspname, f.proname, f.provolatile::text, false"
    "   FROM fns JOIN pg_proc AS f ON f.oid = fns.id JOIN pg_namespace AS n ON n.oid = "
    "f.pronamespace"
    " UNION SELECT 'f', n.nspname, f.proname, f.provolatile::text, false"
    "   FROM ops JOIN pg_operator AS o ON o.oid = ops.id JOIN pg_proc AS f ON f.oid = o.oprcode"
    "   JOIN pg_namespace AS n ON n.oid = f.pronamespace"
    " ORDER BY 1, 2, 3";

/* Judge one dependency row r of res into s; 0, or -1 with the problem in why. */
static int
judge(const PGresult *res, int r, struct scope *s, char *why, size_t whylen)
{
    const char *kind = PQgetvalue(res, r, 0), *nsp = PQgetvalue(res, r, 1);
    const char *name = PQgetvalue(res, r, 2), *how = PQgetvalue(res, r, 3);
    int own = PQgetvalue(res, r, 4)[0] == 't';
    struct buf q = {0};
    int rc = 0;

    if (kind[0] == 'f') {
        if (how[0] == 'v') {
            snprintf(why, whylen, "it calls %s(), which may have side effects (VOLATILE)", name);
            return -1;
        }
        if (how[0] == 's' && strcmp(nsp, "pg_catalog") != 0) {
            snprintf(why, whylen,
                     "it calls %s.%s(), a STABLE function of the app's (the tables it reads "
                     "could not be watched: make it IMMUTABLE, or write its query in the scope)",
                     nsp, name);
            return -1;
        }
        return 0;
    }
    if (strncmp(name, "_rhtmx", 6) == 0 || strncmp(nsp, "pg_", 3) == 0 ||
        strcmp(nsp, "information_schema") == 0) {
        snprintf(why, whylen, "it reads '%s', which is not the app's", name);
        return -1;
    }
    if (how[0] != 'r' && how[0] != 'p') {
        snprintf(why, whylen,
                 "it reads '%s', which is not a table (a view, sequence or foreign table: its "
                 "changes cannot be watched; read its tables instead)",
                 name);
        return -1;
    }
    if (own)
        return 0;
    pg_ident(&q, nsp);
    buf_adds(&q, ".");
    pg_ident(&q, name);
    if (list_add(&s->deps, &s->ndeps, MAX_DEPS, q.p, q.len) < 0) {
        snprintf(why, whylen, "it reads more than %d tables (at '%s')", MAX_DEPS, name);
        rc = -1;
    }
    buf_free(&q);
    return rc;
}

/* Compile the check view of expr on t and judge what it depends on (inside
 * the caller's transaction). 0; 1 with why set (the expression's fault); -1
 * with e set (the server's). */
static int
check(struct pg *p, const struct table *t, struct scope *s, char *why, size_t whylen, struct err *e)
{
    const char *params[1] = {t->en->table};
    struct buf sql = {0};
    PGresult *res;
    int i, rc = 0;

    buf_adds(&sql, "CREATE TEMP VIEW " CHECK_VIEW " AS SELECT * FROM ");
    source_sql(&sql, t, s->expr, 0, 0);
    buf_adds(&sql, " AS r");
    /* The extended protocol, so the text is one statement or nothing. */
    res = PQexecParams(p->c, sql.p, 0, NULL, NULL, NULL, NULL, 0);
    buf_free(&sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *m = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        if (m == NULL || !pg_alive(p)) {
            pg_fail(p, res, "scope: check", e);
            PQclear(res);
            return -1;
        }
        snprintf(why, whylen, "%s", m);
        PQclear(res);
        return 2; /* does not compile */
    }
    PQclear(res);
    if ((res = pg_query(p, deps_sql, 1, params, "scope: read what it depends on", e)) == NULL)
        return -1;
    for (i = 0; i < PQntuples(res) && rc == 0; i++)
        if (judge(res, i, s, why, whylen) < 0)
            rc = 1;
    PQclear(res);
    return rc;
}

int
pg_scope_load(struct pg *p, const struct config *c, const struct table *t, struct scope **out,
              struct err *e)
{
    const struct entity *en = t->en;
    struct scope *s = NULL;
    struct buf text = {0};
    char *conf = NULL, why[300];
    int rc = -1, bad;

    *out = NULL;
    why[0] = '\0';
    if (en->scope == NULL && t->owner < 0)
        return 0;
    if ((s = calloc(1, sizeof(*s))) == NULL || (conf = configured(en)) == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto out;
    }
    if (rewrite(conf, &text, s, why, sizeof(why)) < 0) {
        err_set(e, 500, "config", "%s: entity '%s': scope refused: %s", c->path, en->name, why);
        goto out;
    }
    s->expr = text.p;
    text.p = NULL;
    if (s->expr == NULL && (s->expr = strdup("")) == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto out;
    }
    if (pg_begin_write(p, e) < 0)
        goto out;
    bad = check(p, t, s, why, sizeof(why), e);
    pg_rollback(p); /* the check view goes with it */
    if (bad < 0)
        goto out;
    if (bad == 2) {
        err_set(e, 500, "config", "%s: entity '%s': scope does not compile: %s", c->path, en->name,
                why);
        goto out;
    }
    if (bad == 1) {
        err_set(e, 500, "config", "%s: entity '%s': scope refused: %s", c->path, en->name, why);
        goto out;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    free(conf);
    buf_free(&text);
    scope_free(s);
    return rc;
}

/* ------------------------------------------------------------------ triggers */

/* The dependency trigger's name for t: "_rhtmx_sync_<entity>_dep". */
static void
dep_trigger_name(struct buf *b, const struct table *t)
{
    buf_printf(b, "_rhtmx_sync_%s_dep", t->en->name);
}

void
pg_scope_install_sql(struct buf *b, const struct table *t)
{
    struct buf name = {0}, quoted = {0};
    size_t i;

    dep_trigger_name(&name, t);
    pg_ident(&quoted, name.p);
    /* Wherever the entity's dependency triggers are now (an earlier scope may
     * have read other tables), they go first. */
    buf_adds(b, "DO $rhtmx$ DECLARE r record; BEGIN FOR r IN SELECT g.tgrelid::regclass::text"
                " AS rel FROM pg_trigger AS g WHERE g.tgname = ");
    pg_literal(b, name.p);
    buf_adds(b, " LOOP EXECUTE 'DROP TRIGGER ");
    buf_adds(b, quoted.p);
    buf_adds(b, " ON ' || r.rel; END LOOP; END $rhtmx$;\n");
    for (i = 0; t->scope != NULL && i < t->scope->ndeps; i++) {
        buf_adds(b, "CREATE TRIGGER ");
        buf_adds(b, quoted.p);
        buf_adds(b, " AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ");
        buf_adds(b, t->scope->deps[i]); /* quoted by judge() */
        buf_adds(b, " FOR EACH STATEMENT EXECUTE FUNCTION _rhtmx_sync_scope_dep(");
        pg_literal(b, t->en->name);
        buf_adds(b, ");\n");
    }
    if (t->scope != NULL && t->scope->ndeps > 0) {
        /* What those tables lost while no trigger watched them (a table rebuilt
         * by the app) is not known: every view of the entity is compared whole
         * at its next pull, as after any change to them. The caller holds the
         * counter row. */
        buf_adds(
            b,
            "WITH v AS (UPDATE _rhtmx_sync_state SET value = value + 1 WHERE key = 'head'"
            " RETURNING value), d AS (DELETE FROM _rhtmx_sync_log WHERE entity = '" SCOPE_LOG_ENTITY
            "' AND entity_id = ");
        pg_literal(b, t->en->name);
        buf_adds(b, ") INSERT INTO _rhtmx_sync_log (entity, entity_id, id_json, action, version)"
                    " SELECT '" SCOPE_LOG_ENTITY "', ");
        pg_literal(b, t->en->name);
        buf_adds(b, ", to_jsonb(");
        pg_literal(b, t->en->name);
        buf_adds(b, "::text)::text, 'update', value FROM v;\n"
                    "SELECT pg_notify('" PG_CHANNEL "', '" SCOPE_LOG_ENTITY "');\n");
    }
    buf_free(&name);
    buf_free(&quoted);
}

int
pg_scope_installed(struct pg *p, const struct table *t)
{
    static const char sql[] =
        "SELECT count(*) FROM pg_trigger AS g WHERE g.tgname = $1 AND g.tgenabled <> 'D'"
        "   AND g.tgrelid = ANY (SELECT to_regclass(x) FROM unnest(string_to_array($2, E'\\n'))"
        "   AS x)";
    struct buf name = {0}, deps = {0};
    const char *params[2];
    PGresult *res;
    struct err e;
    size_t i;
    int ok;

    if (t->scope == NULL || t->scope->ndeps == 0)
        return 1;
    dep_trigger_name(&name, t);
    for (i = 0; i < t->scope->ndeps; i++)
        buf_printf(&deps, "%s%s", i > 0 ? "\n" : "", t->scope->deps[i]);
    params[0] = name.p;
    params[1] = deps.p;
    res = pg_query(p, sql, 2, params, "scope: check the triggers", &e);
    ok = res != NULL && PQntuples(res) == 1 && pg_int(res, 0, 0) == (long long)t->scope->ndeps;
    PQclear(res);
    buf_free(&name);
    buf_free(&deps);
    return ok;
}

/* ------------------------------------------------------------------ reconciling */

struct viewer {
    int found, same;
    long long id, checked, born, seen;
};

static int
viewer_read(struct pg *p, const struct table *t, const struct scope_who *w, const char *claims,
            struct viewer *v, struct err *e)
{
    static const char sql[] = "SELECT checked, born, seen, signature = $3 AND claims = $4, id"
                              "  FROM _rhtmx_sync_viewers WHERE entity = $1 AND viewer = $2";
    const char *params[4] = {t->en->name, w->user, t->scope->expr, claims};
    PGresult *res = pg_query(p, sql, 4, params, "scope: read the viewer", e);

    memset(v, 0, sizeof(*v));
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        v->found = 1;
        v->checked = pg_int(res, 0, 0);
        v->born = pg_int(res, 0, 1);
        v->seen = pg_int(res, 0, 2);
        v->same = PQgetvalue(res, 0, 3)[0] == 't';
        v->id = pg_int(res, 0, 4);
    }
    PQclear(res);
    return 0;
}

/* 1 if the entity's rows (own) or a table its scope reads (dep) changed after
 * version v, 0 if not, -1. */
static int
changed_after(struct pg *p, const char *entity, long long v, int own, struct err *e)
{
    static const char own_sql[] =
        "SELECT 1 FROM _rhtmx_sync_log WHERE entity = $1 AND version > $2::bigint LIMIT 1";
    static const char dep_sql[] = "SELECT 1 FROM _rhtmx_sync_log WHERE entity = '" SCOPE_LOG_ENTITY
                                  "' AND entity_id = $1 AND version > $2::bigint";
    char vs[24];
    const char *params[2] = {entity, vs};
    PGresult *res;
    int rc;

    snprintf(vs, sizeof(vs), "%lld", v);
    if ((res = pg_query(p, own ? own_sql : dep_sql, 2, params, "scope: probe the log", e)) == NULL)
        return -1;
    rc = PQntuples(res) > 0;
    PQclear(res);
    return rc;
}

/* Run sql with params; *n: the rows it wrote. */
static int
run_counted(struct pg *p, const char *sql, int n, const char *const *params, long long *count,
            struct err *e)
{
    PGresult *res = pg_query(p, sql, n, params, "scope: reconcile", e);

    if (res == NULL)
        return -1;
    *count = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

/*
 * The two writes of a view, with the same first parameters: $1 the view's id,
 * $2 the head, $3 the user, $4 its claims (jsonb); diff_sql also $5 the entity
 * and $6 the version the view was checked at. The rows each one writes take
 * versions from $2 + 1, in key order.
 */

/* Every row in scope into view $1 as creates. */
static void
bootstrap_sql(struct buf *b, const struct table *t)
{
    const char *key = t->cols[t->key].name;

    buf_adds(b, "INSERT INTO _rhtmx_sync_view (vid, entity_id, id_json, visible, action,"
                " version, client_id) SELECT $1::bigint, to_jsonb(r.");
    pg_ident(b, key);
    buf_adds(b, ") #>> '{}', to_jsonb(r.");
    pg_ident(b, key);
    buf_adds(b, ")::text, true, 'create', $2::bigint + row_number() OVER (ORDER BY r.");
    pg_ident(b, key);
    buf_adds(b, "), NULL FROM ");
    source_sql(b, t, t->scope->expr, 3, 4);
    buf_adds(b, " AS r");
}

/*
 * The rows of view $1 whose visibility or content changed since version $6:
 * the keys with log entries since, and (all) every row in scope and every row
 * the view holds visible.
 */
static void
diff_sql(struct buf *b, const struct table *t, int all)
{
    const char *key = t->cols[t->key].name, *type = t->cols[t->key].type;

    buf_adds(b, "INSERT INTO _rhtmx_sync_view (vid, entity_id, id_json, visible, action, version,"
                " client_id) SELECT $1::bigint, c.k, c.j, c.v, CASE WHEN NOT c.v THEN 'delete'"
                " WHEN c.was THEN 'update' ELSE 'create' END,"
                " $2::bigint + row_number() OVER (ORDER BY c.k),"
                " (SELECT l.client_id FROM _rhtmx_sync_log AS l WHERE l.entity = $5::text"
                " AND l.entity_id = c.k ORDER BY l.version DESC LIMIT 1)"
                " FROM (SELECT k.k, k.j, EXISTS (SELECT 1 FROM ");
    source_sql(b, t, t->scope->expr, 3, 4);
    buf_adds(b, " AS r WHERE r.");
    pg_ident(b, key);
    buf_printf(b, " = k.k::%s) AS v,", type);
    buf_adds(b, " coalesce((SELECT w.visible FROM _rhtmx_sync_view AS w WHERE w.vid = $1::bigint"
                " AND w.entity_id = k.k), false) AS was,"
                " EXISTS (SELECT 1 FROM _rhtmx_sync_log AS l WHERE l.entity = $5::text"
                " AND l.entity_id = k.k AND l.version > $6::bigint) AS changed"
                " FROM (SELECT DISTINCT entity_id AS k, id_json AS j FROM _rhtmx_sync_log"
                " WHERE entity = $5::text AND version > $6::bigint");
    if (all) {
        buf_adds(b, " UNION SELECT to_jsonb(r.");
        pg_ident(b, key);
        buf_adds(b, ") #>> '{}', to_jsonb(r.");
        pg_ident(b, key);
        buf_adds(b, ")::text FROM ");
        source_sql(b, t, t->scope->expr, 3, 4);
        buf_adds(b, " AS r UNION SELECT entity_id, id_json FROM _rhtmx_sync_view"
                    " WHERE vid = $1::bigint AND visible");
    }
    buf_adds(b, ") AS k) AS c WHERE c.v <> c.was OR (c.v AND c.changed)"
                " ON CONFLICT (vid, entity_id) DO UPDATE SET id_json = excluded.id_json,"
                " visible = excluded.visible, action = excluded.action,"
                " version = excluded.version, client_id = excluded.client_id");
}

/* The writing half of pg_scope_reconcile, inside a write transaction. */
static int
reconcile_write(struct pg *p, const struct table *t, const struct scope_who *w, const char *claims,
                long long *born, struct err *e)
{
    struct viewer v;
    struct buf sql = {0};
    char vid[24], head_s[24], checked[24], born_s[24], now[24];
    const char *params[2];
    /* the parameters of bootstrap_sql and diff_sql, and of the view's record */
    const char *view_params[6] = {vid, head_s, w->user, claims, t->en->name, checked};
    const char *record_params[6] = {vid, t->scope->expr, claims, head_s, born_s, now};
    PGresult *res = NULL;
    long long head, horizon, n = 0;
    int dep, rebuild, rc = -1;

    /* The counter row first: the view's versions are handed out like any
     * writer's (pg_schema.h), and two pulls of one user take turns. */
    if (pg_exec(p, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head' FOR UPDATE", 0, NULL,
                "scope: lock the head", e) < 0 ||
        pg_cursors(p, &head, &horizon, e) < 0 || viewer_read(p, t, w, claims, &v, e) < 0)
        goto out;
    if (!v.found) {
        params[0] = t->en->name;
        params[1] = w->user;
        res = pg_query(p,
                       "INSERT INTO _rhtmx_sync_viewers (entity, viewer, signature, claims,"
                       " checked, born, seen) VALUES ($1, $2, '', '', 0, 0, 0) RETURNING id",
                       2, params, "scope: a new viewer", e);
        if (res == NULL)
            goto out;
        v.id = pg_int(res, 0, 0);
        PQclear(res);
        res = NULL;
    }
    snprintf(vid, sizeof(vid), "%lld", v.id);
    snprintf(head_s, sizeof(head_s), "%lld", head);
    snprintf(checked, sizeof(checked), "%lld", v.checked);
    /* New, built for another scope or other claims, or older than the
     * horizon: start over; the user's devices resync (below born). */
    rebuild = !v.found || !v.same || v.checked < horizon;
    if (rebuild) {
        if (pg_exec(p, "DELETE FROM _rhtmx_sync_view WHERE vid = $1::bigint", 1, view_params,
                    "scope: clear the view", e) < 0)
            goto out;
        bootstrap_sql(&sql, t);
    } else {
        if ((dep = changed_after(p, t->en->name, v.checked, 0, e)) < 0)
            goto out;
        diff_sql(&sql, t, dep);
    }
    if (run_counted(p, sql.p, rebuild ? 4 : 6, view_params, &n, e) < 0)
        goto out;
    if (rebuild)
        v.born = head + n;
    head += n;
    snprintf(head_s, sizeof(head_s), "%lld", head);
    if (n > 0) {
        params[0] = head_s;
        if (pg_exec(p, "UPDATE _rhtmx_sync_state SET value = $1::bigint WHERE key = 'head'", 1,
                    params, "scope: move the head", e) < 0)
            goto out;
    }
    snprintf(born_s, sizeof(born_s), "%lld", v.born);
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    if (pg_exec(p,
                "UPDATE _rhtmx_sync_viewers SET signature = $2, claims = $3, checked = $4::bigint,"
                " born = $5::bigint, seen = $6::bigint WHERE id = $1::bigint",
                6, record_params, "scope: record the view", e) < 0)
        goto out;
    *born = v.born;
    rc = 0;
out:
    PQclear(res);
    buf_free(&sql);
    return rc;
}

int
pg_scope_reconcile(struct pg *p, const struct table *t, const struct scope_who *w, long long *born,
                   struct err *e)
{
    struct viewer v;
    char *claims = scope_claims(t->scope, w);
    long long head, horizon;
    int rc = -1, changed;

    *born = 0;
    if (claims == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return -1;
    }
    if (pg_begin_write(p, e) < 0)
        goto out;
    /* Most pulls have nothing to write: find out without taking the head. */
    if (viewer_read(p, t, w, claims, &v, e) < 0 || pg_cursors(p, &head, &horizon, e) < 0)
        goto rollback;
    if (v.found && v.same && v.checked >= horizon &&
        (long long)time(NULL) - v.seen < SEEN_REFRESH_S) {
        if ((changed = changed_after(p, t->en->name, v.checked, 1, e)) == 0)
            changed = changed_after(p, t->en->name, v.checked, 0, e);
        if (changed < 0)
            goto rollback;
        if (changed == 0) {
            pg_rollback(p);
            *born = v.born;
            rc = 0;
            goto out;
        }
    }
    if (reconcile_write(p, t, w, claims, born, e) < 0 || pg_commit(p, e) < 0)
        goto rollback;
    rc = 0;
    goto out;
rollback:
    pg_rollback(p);
out:
    free(claims);
    return rc;
}

/* ------------------------------------------------------------------ reading */

void
pg_scope_pull_from(struct buf *b, const struct table *t)
{
    const char *key = t->cols[t->key].name;

    /* A row the view holds visible but out of scope now is left out (the next
     * reconciliation sends its delete): never sent with its data. */
    buf_adds(b, " FROM _rhtmx_sync_view AS v LEFT JOIN ");
    source_sql(b, t, t->scope->expr, 4, 6);
    buf_adds(b, " AS r ON v.visible AND r.");
    pg_ident(b, key);
    buf_printf(b, " = v.entity_id::%s", t->cols[t->key].type);
    buf_adds(b, " WHERE v.vid = (SELECT id FROM _rhtmx_sync_viewers WHERE entity = $1::text"
                " AND viewer = $4::text) AND v.version > $2::bigint"
                " AND (NOT $5::boolean OR v.visible) AND (NOT v.visible OR r.");
    pg_ident(b, key);
    buf_adds(b, " IS NOT NULL)");
}

int
pg_scope_row_visible(struct pg *p, const struct table *t, const char *k, const struct scope_who *w,
                     struct err *e)
{
    struct buf sql = {0};
    char *claims = scope_claims(t->scope, w);
    const char *params[3] = {k, w->user, claims};
    PGresult *res = NULL;
    int rc = -1;

    if (claims == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return -1;
    }
    buf_adds(&sql, "SELECT EXISTS (SELECT 1 FROM ");
    source_sql(&sql, t, t->scope->expr, 2, 3);
    buf_adds(&sql, " AS r WHERE r.");
    pg_ident(&sql, t->cols[t->key].name);
    buf_printf(&sql, " = $1::%s)", t->cols[t->key].type);
    if ((res = pg_query(p, sql.p, 3, params, "scope: check a row", e)) != NULL)
        rc = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    buf_free(&sql);
    free(claims);
    return rc;
}

char *
pg_scope_rule(const struct entity *en, const char *user, const char *claims)
{
    struct scope tmp;
    struct table t;
    struct column keycol;
    struct scope_who w = {user, NULL};
    struct buf b = {0}, expr = {0};
    char *conf = NULL, *cl = NULL, why[300];
    const char *key = en->key != NULL ? en->key : "id";

    memset(&tmp, 0, sizeof(tmp));
    memset(&t, 0, sizeof(t));
    memset(&keycol, 0, sizeof(keycol));
    if (en->scope == NULL && en->owner_column == NULL)
        return NULL;
    if ((conf = configured(en)) == NULL || rewrite(conf, &expr, &tmp, why, sizeof(why)) < 0 ||
        expr.p == NULL)
        goto out;
    if (claims != NULL && *claims != '\0')
        w.claims = json_tokener_parse(claims);
    cl = scope_claims(&tmp, &w);
    json_object_put(w.claims);
    if (cl == NULL)
        goto out;
    /* Made from the config alone (the expression was checked when the schema
     * loaded): the key's text becomes the key column's type through the
     * table's row type. */
    t.en = en;
    buf_printf(&b, "%c%s%c%s%c", SCOPE_RULE_MARK, user, SCOPE_RULE_SEP, cl, SCOPE_RULE_SEP);
    buf_adds(&b, "SELECT EXISTS (SELECT 1 FROM ");
    source_sql(&b, &t, expr.p, 2, 3);
    buf_adds(&b, " AS r WHERE r.");
    pg_ident(&b, key);
    buf_adds(&b, " = (jsonb_populate_record(NULL::");
    pg_ident(&b, en->table);
    buf_adds(&b, ", jsonb_build_object(");
    pg_literal(&b, key);
    buf_adds(&b, ", $1::text))).");
    pg_ident(&b, key);
    buf_adds(&b, ") OR EXISTS (SELECT 1 FROM _rhtmx_sync_view WHERE vid = (SELECT id FROM"
                 " _rhtmx_sync_viewers WHERE entity = ");
    pg_literal(&b, en->name);
    buf_adds(&b, " AND viewer = $2::text) AND entity_id = $1::text AND visible)");
out:
    free(conf);
    free(cl);
    buf_free(&expr);
    for (size_t i = 0; i < tmp.nclaims; i++)
        free(tmp.claims[i]);
    free(tmp.claims);
    return b.p;
}

int
pg_scope_probe(struct pg *p, const char *rule, const char *k)
{
    const char *user = rule + 1, *claims, *sql;
    const char *params[3];
    char *u = NULL, *cl = NULL;
    PGresult *res;
    struct err e;
    int rc = -1;

    if (rule[0] != SCOPE_RULE_MARK || (claims = strchr(user, SCOPE_RULE_SEP)) == NULL ||
        (sql = strchr(claims + 1, SCOPE_RULE_SEP)) == NULL)
        return -1;
    u = strndup(user, (size_t)(claims - user));
    cl = strndup(claims + 1, (size_t)(sql - claims - 1));
    if (u == NULL || cl == NULL)
        goto out;
    params[0] = k;
    params[1] = u;
    params[2] = cl;
    if ((res = pg_query(p, sql + 1, 3, params, "events: scope probe", &e)) != NULL)
        rc = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
out:
    free(u);
    free(cl);
    return rc;
}

int
pg_scope_compact(struct pg *p, long long horizon, int days, struct err *e)
{
    /* As scope_compact: what left a view at or before the horizon need not be
     * told again; users gone for longer than the retention lose their views. */
    static const char *const steps[] = {
        "DELETE FROM _rhtmx_sync_view WHERE NOT visible AND version <= $1::bigint",
        "DELETE FROM _rhtmx_sync_view WHERE vid IN (SELECT id FROM _rhtmx_sync_viewers"
        " WHERE seen < $1::bigint)",
        "DELETE FROM _rhtmx_sync_viewers WHERE seen < $1::bigint",
    };
    char h[24], cut[24];
    const char *params[1];
    size_t i;

    snprintf(h, sizeof(h), "%lld", horizon);
    snprintf(cut, sizeof(cut), "%lld", (long long)time(NULL) - (long long)days * 86400);
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        params[0] = i == 0 ? h : cut;
        if (pg_exec(p, steps[i], 1, params, "scope: compact the views", e) < 0)
            return -1;
    }
    return 0;
}
