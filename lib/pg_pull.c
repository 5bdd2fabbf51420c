/* pg_pull: see pg_pull.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changelog.h"
#include "jsonw.h"
#include "pg_json.h"
#include "pg_pull.h"
#include "pg_schema.h"
#include "pg_scope.h"

/* Columns of the page query before the row's own: key (JSON), action, version, client id. */
#define PULL_FIXED 4

/* What a page reads from the log: the FROM and WHERE clauses over the log's
 * entries (alias l) and the table's rows (alias r); parameters as page_sql's. */
static void
log_from(struct buf *b, const struct table *t)
{
    buf_adds(b, " FROM _rhtmx_sync_log AS l LEFT JOIN ");
    pg_ident(b, t->en->table);
    buf_adds(b, " AS r ON l.action <> 'delete' AND r.");
    pg_ident(b, t->cols[t->key].name);
    buf_printf(b, " = l.entity_id::%s", t->cols[t->key].type);
    buf_adds(b, " WHERE l.entity = $1 AND l.version > $2::bigint"
                " AND ($4::text IS NULL OR l.owner = $4::text)"
                " AND (NOT $5::boolean OR l.action <> 'delete')"
                " AND NOT EXISTS (SELECT 1 FROM _rhtmx_sync_log AS m WHERE m.entity = l.entity"
                " AND m.entity_id = l.entity_id AND m.version > l.version)");
}

/*
 * The newest change of each row after the cursor, in version order, with the
 * row read from the table in the same snapshot (SQLite's STMT_PULL and
 * schema_pull_sql, db.c explains them). $1 entity, $2 since, $3 limit,
 * $4 owner or NULL, $5 a first page (live rows only, as creates). scoped: the
 * entries and rows of the caller's view instead (pg_scope_pull_from: $4 the
 * user, $6 the claims). The columns: PULL_FIXED, then every column of t.
 */
static void
page_sql(struct buf *b, const struct table *t, int scoped)
{
    const char *a = scoped ? "v" : "l"; /* the view's entries, or the log's */
    size_t i;

    buf_printf(b,
               "SELECT %s.id_json, CASE WHEN $5::boolean THEN 'create' ELSE %s.action END,"
               " %s.version, %s.client_id",
               a, a, a, a);
    for (i = 0; i < t->ncols; i++) {
        buf_adds(b, ", r.");
        pg_ident(b, t->cols[i].name);
    }
    if (scoped)
        pg_scope_pull_from(b, t);
    else
        log_from(b, t);
    buf_printf(b, " ORDER BY %s.version LIMIT $3::bigint", a);
}

/* Flush b to out once it holds a good piece. -1 once out failed. */
static int
flush_over(struct buf *b, const struct sink *out, size_t over)
{
    int rc = 0;

    if (b->len > over) {
        rc = sink_write(out, b->p, b->len);
        buf_reset(b);
    }
    return rc;
}

/* Change r of res into s. */
static void
write_change(const struct sink *s, const PGresult *res, int r, const struct table *t, int first)
{
    const char *action = PQgetvalue(res, r, 1);
    size_t i;

    jsonw_raw(s, first ? "{\"id\":" : ",{\"id\":");
    jsonw_raw(s, PQgetvalue(res, r, 0)); /* the key as JSON, as the trigger logged it */
    jsonw_raw(s, ",\"action\":");
    jsonw_cstring(s, action);
    if (strcmp(action, "delete") != 0) {
        jsonw_raw(s, ",\"data\":{");
        for (i = 0; i < t->ncols; i++) {
            int c = PULL_FIXED + (int)i;
            jsonw_raw(s, i == 0 ? "" : ",");
            jsonw_cstring(s, t->cols[i].name);
            jsonw_raw(s, ":");
            pg_json_value(s, PQftype(res, c),
                          PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c));
        }
        jsonw_raw(s, "}");
    }
    jsonw_raw(s, ",\"version\":");
    jsonw_raw(s, PQgetvalue(res, r, 2));
    if (!PQgetisnull(res, r, 3)) {
        jsonw_raw(s, ",\"client_id\":");
        jsonw_cstring(s, PQgetvalue(res, r, 3));
    }
    jsonw_raw(s, "}");
}

int
pg_pull(struct pg *p, const struct table *t, const struct pull_args *a, const struct scope_who *w,
        const struct sink *out, struct err *e)
{
    struct buf sql = {0}, staged = {0};
    struct sink s = buf_sink(&staged);
    char since[24], limit[24], *claims = NULL;
    const char *params[6];
    PGresult *res = NULL;
    long long head, horizon, born = 0;
    int i, n, has_more, rc = 0, scoped = t->scope != NULL && w != NULL;

    /* scope hook (pg_scope.h): the caller's view, brought up to date first */
    if (scoped && pg_scope_reconcile(p, t, w, &born, e) < 0)
        return -1;
    if (scoped && (claims = scope_claims(t->scope, w)) == NULL)
        return err_set(e, 500, "internal", "out of memory");
    if (pg_begin_read(p, e) < 0)
        goto err;
    if (pg_cursors(p, &head, &horizon, e) < 0)
        goto err;
    if (changelog_cursor_check(a, head, horizon, e) < 0)
        goto err;
    if (scoped && !a->full && a->since > 0 && a->since < born) {
        err_set(e, 410, "resync_required",
                "cursor %lld is older than this user's view of %s (rebuilt at %lld): pull from "
                "since=0",
                a->since, t->en->name, born);
        e->version = head;
        goto err;
    }
    page_sql(&sql, t, scoped);
    snprintf(since, sizeof(since), "%lld", a->since);
    snprintf(limit, sizeof(limit), "%lld", a->limit + 1);
    params[0] = a->entity;
    params[1] = since;
    params[2] = limit;
    params[3] = scoped ? w->user : a->owner;
    params[4] = a->since == 0 ? "true" : "false";
    params[5] = claims;
    if ((res = pg_query(p, sql.p, scoped ? 6 : 5, params, "pull", e)) == NULL)
        goto err;
    pg_rollback(p); /* read only: the snapshot has served */

    /* Everything is read: from here on the answer is 200. */
    n = PQntuples(res);
    has_more = n > a->limit;
    if (has_more)
        n = (int)a->limit;
    jsonw_raw(&s, "{\"entity\":");
    jsonw_cstring(&s, a->entity);
    if (a->schema != NULL) {
        jsonw_raw(&s, ",\"schema\":");
        jsonw_cstring(&s, a->schema);
    }
    jsonw_raw(&s, ",\"changes\":[");
    for (i = 0; i < n && rc == 0; i++) {
        write_change(&s, res, i, t, i == 0);
        rc = flush_over(&staged, out, 16384);
    }
    jsonw_raw(&s, "],\"has_more\":");
    jsonw_raw(&s, has_more ? "true" : "false");
    jsonw_raw(&s, ",\"version\":");
    if (has_more)
        jsonw_raw(&s, PQgetvalue(res, n - 1, 2));
    else
        jsonw_int(&s, head);
    jsonw_raw(&s, "}\n");
    if (rc == 0)
        flush_over(&staged, out, 0);
    PQclear(res);
    buf_free(&sql);
    buf_free(&staged);
    free(claims);
    return 0;
err:
    pg_rollback(p);
    PQclear(res);
    buf_free(&sql);
    buf_free(&staged);
    free(claims);
    return -1;
}
