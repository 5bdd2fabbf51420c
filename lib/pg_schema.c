/*
 * pg_schema: see pg_schema.h.
 *
 * Every identifier in generated SQL comes from the configuration, was checked
 * against pg_attribute first, and is quoted (pg_ident); values are bound
 * parameters, or quoted literals (pg_literal) in the few DDL statements that
 * cannot take parameters.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pg_schema.h"
#include "pg_scope.h"

/* Bumped whenever the trigger or what it is made from changes, so old
 * triggers are made again. */
#define PG_TRIGGER_TEMPLATE "pg1"
/* Every installer and migrator takes this transaction-level advisory lock first. */
#define PG_LOCK_SQL "SELECT pg_advisory_xact_lock(hashtext('rhtmx_sync'))"

/*
 * Migration 1. The log's entity_id is text: the key as to_jsonb() writes it
 * (42, or the string itself), which casts back to the key's type for joins.
 * data is the row as jsonb when the entry was written (NULL for deletes): the
 * row a client last saw, for conflict merges. created_at is the writer's
 * clock_timestamp(), the server time conflicts compare.
 */
static const char migration_1[] =
    "CREATE TABLE IF NOT EXISTS _rhtmx_sync_state ("
    "  key text PRIMARY KEY, value bigint NOT NULL);"
    "INSERT INTO _rhtmx_sync_state (key, value) VALUES ('head', 0), ('horizon', 0)"
    "  ON CONFLICT (key) DO NOTHING;"
    "CREATE TABLE IF NOT EXISTS _rhtmx_sync_log ("
    "  id bigserial PRIMARY KEY,"
    "  entity text NOT NULL,"
    "  entity_id text NOT NULL,"
    "  id_json text NOT NULL,"
    "  action text NOT NULL CHECK (action IN ('create', 'update', 'delete')),"
    "  data jsonb,"
    "  version bigint NOT NULL UNIQUE,"
    "  client_id text,"
    "  owner text,"
    "  created_at timestamptz NOT NULL DEFAULT clock_timestamp());"
    "CREATE INDEX IF NOT EXISTS idx_sync_entity_version ON _rhtmx_sync_log (entity, version);"
    "CREATE INDEX IF NOT EXISTS idx_sync_entity_row"
    "  ON _rhtmx_sync_log (entity, entity_id, version);"
    "CREATE TABLE IF NOT EXISTS _rhtmx_sync_tables ("
    "  entity text PRIMARY KEY, tbl text NOT NULL, signature text NOT NULL, columns text[]);"
    /* Columns a table had when the programs last loaded it and has no more: a push
     * naming one is refused as schema_changed rather than unknown_column. */
    "CREATE TABLE IF NOT EXISTS _rhtmx_sync_gone ("
    "  entity text NOT NULL, name text NOT NULL, PRIMARY KEY (entity, name));"
    "CREATE TABLE IF NOT EXISTS _rhtmx_sync_mutations ("
    "  client_id text NOT NULL, mutation_id text NOT NULL, entity text NOT NULL,"
    "  answer text NOT NULL, version bigint NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (client_id, mutation_id));"
    /* One log entry. The UPDATE of the counter row is what orders writers: its
     * row lock is held to the end of the transaction (pg_schema.h). */
    "CREATE OR REPLACE FUNCTION _rhtmx_sync_append(p_entity text, p_key jsonb, p_action text,"
    "                                              p_data jsonb, p_owner text)"
    " RETURNS void LANGUAGE plpgsql AS $f$\n"
    "DECLARE v bigint;\n"
    "BEGIN\n"
    "  IF p_key IS NULL OR p_key = 'null'::jsonb THEN\n"
    "    RAISE EXCEPTION 'rhtmx-sync: entity %: a row without a key cannot be synced', p_entity\n"
    "      USING ERRCODE = 'not_null_violation';\n"
    "  END IF;\n"
    "  UPDATE _rhtmx_sync_state SET value = value + 1 WHERE key = 'head' RETURNING value INTO v;\n"
    "  INSERT INTO _rhtmx_sync_log (entity, entity_id, id_json, action, data, version,\n"
    "                               client_id, owner)\n"
    "    VALUES (p_entity, p_key #>> '{}', p_key::text, p_action, p_data, v,\n"
    "            nullif(current_setting('rhtmx_sync.client_id', true), ''), p_owner);\n"
    "  PERFORM pg_notify('" PG_CHANNEL "', p_entity);\n"
    "END\n$f$;"
    /* The row trigger: TG_ARGV = entity, key column, owner column ('' for none).
     * A key changed by an UPDATE is a delete of the old key and a create of the
     * new one, as with SQLite. */
    "CREATE OR REPLACE FUNCTION _rhtmx_sync_capture() RETURNS trigger LANGUAGE plpgsql AS $f$\n"
    "DECLARE\n"
    "  n jsonb;\n"
    "  o jsonb;\n"
    "  k text := TG_ARGV[1];\n"
    "  w text := nullif(TG_ARGV[2], '');\n"
    "BEGIN\n"
    "  IF TG_OP <> 'DELETE' THEN n := to_jsonb(NEW); END IF;\n"
    "  IF TG_OP <> 'INSERT' THEN o := to_jsonb(OLD); END IF;\n"
    "  IF TG_OP = 'INSERT' THEN\n"
    "    PERFORM _rhtmx_sync_append(TG_ARGV[0], n -> k, 'create', n, n ->> w);\n"
    "  ELSIF TG_OP = 'DELETE' THEN\n"
    "    PERFORM _rhtmx_sync_append(TG_ARGV[0], o -> k, 'delete', NULL, o ->> w);\n"
    "  ELSIF (n ->> k) IS DISTINCT FROM (o ->> k) THEN\n"
    "    PERFORM _rhtmx_sync_append(TG_ARGV[0], o -> k, 'delete', NULL, o ->> w);\n"
    "    PERFORM _rhtmx_sync_append(TG_ARGV[0], n -> k, 'create', n, n ->> w);\n"
    "  ELSE\n"
    "    PERFORM _rhtmx_sync_append(TG_ARGV[0], n -> k, 'update', n, n ->> w);\n"
    "  END IF;\n"
    "  RETURN NULL;\n"
    "END\n$f$;"
    "INSERT INTO _rhtmx_sync_state (key, value) VALUES ('schema', 1)"
    "  ON CONFLICT (key) DO UPDATE SET value = excluded.value;";

/*
 * Migration 2: sync rules (pg_scope.h). Per entity and user, the view's record
 * (_rhtmx_sync_viewers) and its entries (_rhtmx_sync_view: one per row the
 * user's devices may hold, keyed by the log's entity_id text, with the key's
 * JSON for deletes). A table a scope reads gets a statement trigger calling
 * _rhtmx_sync_scope_dep(entity), which keeps one '_rhtmx_scope' log entry per
 * entity at a new version (taken from the counter row like any writer's), so
 * a pull asks only "anything after?" and a stream gets one "scope" event.
 */
static const char migration_2[] =
    "CREATE TABLE IF NOT EXISTS _rhtmx_sync_viewers ("
    "  id bigserial PRIMARY KEY, entity text NOT NULL, viewer text NOT NULL,"
    "  signature text NOT NULL, claims text NOT NULL, checked bigint NOT NULL,"
    "  born bigint NOT NULL, seen bigint NOT NULL, UNIQUE (entity, viewer));"
    "CREATE TABLE IF NOT EXISTS _rhtmx_sync_view ("
    "  vid bigint NOT NULL, entity_id text NOT NULL, id_json text NOT NULL,"
    "  visible boolean NOT NULL, action text NOT NULL, version bigint NOT NULL,"
    "  client_id text, PRIMARY KEY (vid, entity_id));"
    "CREATE INDEX IF NOT EXISTS idx_sync_view_version ON _rhtmx_sync_view (vid, version);"
    "CREATE OR REPLACE FUNCTION _rhtmx_sync_scope_dep() RETURNS trigger LANGUAGE plpgsql AS $f$\n"
    "DECLARE v bigint;\n"
    "BEGIN\n"
    "  UPDATE _rhtmx_sync_state SET value = value + 1 WHERE key = 'head' RETURNING value INTO v;\n"
    "  DELETE FROM _rhtmx_sync_log WHERE entity = '" SCOPE_LOG_ENTITY
    "' AND entity_id = TG_ARGV[0];\n"
    "  INSERT INTO _rhtmx_sync_log (entity, entity_id, id_json, action, version)\n"
    "    VALUES ('" SCOPE_LOG_ENTITY "', TG_ARGV[0], to_jsonb(TG_ARGV[0])::text, 'update', v);\n"
    "  PERFORM pg_notify('" PG_CHANNEL "', '" SCOPE_LOG_ENTITY "');\n"
    "  RETURN NULL;\n"
    "END\n$f$;"
    "INSERT INTO _rhtmx_sync_state (key, value) VALUES ('schema', 2)"
    "  ON CONFLICT (key) DO UPDATE SET value = excluded.value;";

/* The one row of a check's query, or NULL (nothing to PQclear) when it failed
 * or returned no row or several: a check that fails only answers no, so its
 * error is not reported. */
static PGresult *
check_row(struct pg *p, const char *sql, int n, const char *const *params, const char *what)
{
    struct err e;
    PGresult *res = pg_query(p, sql, n, params, what, &e);

    if (res != NULL && PQntuples(res) != 1) {
        PQclear(res);
        res = NULL;
    }
    return res;
}

/* 1 when res (from check_row) holds true. Clears res. */
static int
check_true(PGresult *res)
{
    int yes = res != NULL && strcmp(PQgetvalue(res, 0, 0), "t") == 0;

    PQclear(res);
    return yes;
}

int
pg_schema_ok(struct pg *p)
{
    PGresult *res;
    int ok;

    if (!check_true(
            check_row(p, "SELECT to_regclass('_rhtmx_sync_state') IS NOT NULL", 0, NULL, "check")))
        return 0;
    res =
        check_row(p, "SELECT value FROM _rhtmx_sync_state WHERE key = 'schema'", 0, NULL, "check");
    ok = res != NULL && pg_int(res, 0, 0) >= PG_SCHEMA_VERSION;
    PQclear(res);
    return ok;
}

int
pg_migrate(struct pg *p, struct err *e)
{
    if (pg_begin_write(p, e) < 0)
        return -1;
    if (pg_exec(p, PG_LOCK_SQL, 0, NULL, "lock for migration", e) < 0 ||
        pg_exec(p, migration_1, 0, NULL, "create the sync tables", e) < 0 ||
        pg_exec(p, migration_2, 0, NULL, "create the sync rules' tables", e) < 0 ||
        pg_commit(p, e) < 0) {
        pg_rollback(p);
        return -1;
    }
    return 0;
}

/*
 * The columns of a table on the search path, in order: name, declared type
 * (format_type), NOT NULL, has a default (or is an identity), position in the
 * primary key (0: none), generated, and whether a unique index that is not
 * partial nor on an expression covers that column alone.
 */
static const char columns_sql[] =
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
    "       a.atthasdef OR a.attidentity <> '',"
    "       coalesce((SELECT array_position(ix.indkey::int2[], a.attnum) FROM pg_index ix"
    "                  WHERE ix.indrelid = a.attrelid AND ix.indisprimary), 0),"
    "       a.attgenerated <> '',"
    "       EXISTS (SELECT 1 FROM pg_index ix WHERE ix.indrelid = a.attrelid AND ix.indisunique"
    "                  AND ix.indnkeyatts = 1 AND ix.indkey[0] = a.attnum"
    "                  AND ix.indpred IS NULL AND ix.indexprs IS NULL)"
    "  FROM pg_attribute a"
    " WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped"
    " ORDER BY a.attnum";

static int
table_load(struct pg *p, const struct config *c, struct table *t, struct err *e)
{
    const struct entity *en = t->en;
    const char *params[1] = {en->table};
    PGresult *res = NULL;
    struct buf sig = {0};
    int i, n, unique = 0, npk = 0;
    long k;

    if ((res = pg_query(p, columns_sql, 1, params, "read the table's columns", e)) == NULL)
        return -1;
    n = PQntuples(res);
    if (n == 0) {
        err_set(e, 500, "config", "%s: entity '%s': table '%s' does not exist in %s", c->path,
                en->name, en->table, c->database);
        goto err;
    }
    t->cols = calloc((size_t)n, sizeof(*t->cols));
    if (t->cols == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }
    for (i = 0; i < n; i++) {
        struct column *col = &t->cols[i];
        col->name = strdup(PQgetvalue(res, i, 0));
        col->type = strdup(PQgetvalue(res, i, 1));
        t->ncols++;
        if (col->name == NULL || col->type == NULL) {
            err_set(e, 500, "internal", "out of memory");
            goto err;
        }
        col->notnull = PQgetvalue(res, i, 2)[0] == 't';
        col->has_default = PQgetvalue(res, i, 3)[0] == 't';
        col->pk = (int)pg_int(res, i, 4);
        col->generated = PQgetvalue(res, i, 5)[0] == 't';
        if (col->pk)
            npk++;
        if (strchr(col->name, '"') != NULL || strchr(col->name, '\\') != NULL) {
            err_set(e, 500, "config",
                    "%s: entity '%s': column name '%s' (quote or backslash) is not supported",
                    c->path, en->name, col->name);
            goto err;
        }
    }
    if ((k = table_column(t, en->key)) < 0) {
        err_set(e, 500, "config", "%s: entity '%s': table '%s' has no key column '%s'", c->path,
                en->name, en->table, en->key);
        goto err;
    }
    t->key = (size_t)k;
    unique = PQgetvalue(res, (int)k, 6)[0] == 't' || (npk == 1 && t->cols[k].pk == 1);
    t->owner = -1;
    if (en->owner_column != NULL && (t->owner = table_column(t, en->owner_column)) < 0) {
        err_set(e, 500, "config", "%s: entity '%s': table '%s' has no owner column '%s'", c->path,
                en->name, en->table, en->owner_column);
        goto err;
    }
    if (schema_check_generated(c, t, e) < 0)
        goto err;
    if (!unique) {
        err_set(e, 500, "config",
                "%s: entity '%s': key column '%s' of table '%s' is not unique (part of a "
                "composite key, or no UNIQUE index of its own): one key would name several rows; "
                "make it the only PRIMARY KEY column or give it a UNIQUE index",
                c->path, en->name, en->key, en->table);
        goto err;
    }
    t->rowid_key = 0;
    t->assign_key = t->cols[k].has_default; /* serial, identity or any default */
    buf_printf(&sig, "%s|%s|%s|%s", PG_TRIGGER_TEMPLATE, en->table, en->key,
               en->owner_column ? en->owner_column : "");
    t->signature = sig.p;
    if (t->signature == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }
    schema_fingerprint(t);
    PQclear(res);
    return 0;
err:
    PQclear(res);
    return -1;
}

long long
pg_schema_cookie(struct pg *p, const struct config *c)
{
    /* Every column (name, type, position) of the configured tables and the
     * names of the triggers on them, hashed: 60 bits of an md5. */
    static const char sql[] =
        "SELECT ('x' || substr(md5(coalesce((SELECT string_agg(c.relname || '/' || a.attname ||"
        "    '/' || format_type(a.atttypid, a.atttypmod) || '/' || a.attnum, ','"
        "    ORDER BY c.relname, a.attnum) FROM pg_attribute a JOIN pg_class c ON c.oid = "
        "a.attrelid"
        "   WHERE c.oid = ANY (SELECT to_regclass(quote_ident(n)) FROM unnest($1::text[]) AS n)"
        "     AND a.attnum > 0 AND NOT a.attisdropped), '') || '|' ||"
        "  coalesce((SELECT string_agg(g.tgname || '/' || g.tgenabled::text, ',' ORDER BY g.tgname)"
        "    FROM pg_trigger g WHERE g.tgname LIKE '\\_rhtmx\\_sync\\_%' AND (g.tgrelid = ANY"
        "    (SELECT to_regclass(quote_ident(n)) FROM unnest($1::text[]) AS n)"
        /* scope hook: a table a scope reads, rebuilt by the app, loses its trigger */
        "    OR g.tgname LIKE '\\_rhtmx\\_sync\\_%\\_dep')), '')), 1, 15))"
        "  ::bit(60)::bigint";
    struct buf names = {0};
    const char *params[1];
    PGresult *res;
    long long cookie = -1;
    size_t i;

    /* The table names as a text[] literal: {"a","b"} (names have no quotes or
     * backslashes: config_valid_name, or checked table names). */
    buf_adds(&names, "{");
    for (i = 0; i < c->nentities; i++) {
        buf_printf(&names, "%s\"", i > 0 ? "," : "");
        for (const char *q = c->entities[i].table; *q; q++) {
            if (*q == '"' || *q == '\\')
                buf_add(&names, "\\", 1);
            buf_add(&names, q, 1);
        }
        buf_adds(&names, "\"");
    }
    buf_adds(&names, "}");
    params[0] = names.p;
    if ((res = check_row(p, sql, 1, params, "check the tables")) != NULL)
        cookie = pg_int(res, 0, 0);
    PQclear(res);
    buf_free(&names);
    return cookie;
}

struct schema *
pg_schema_load(struct pg *p, const struct config *c, struct err *e)
{
    struct schema *s = calloc(1, sizeof(*s));
    size_t i;

    if (s == NULL || (s->tables = calloc(c->nentities, sizeof(*s->tables))) == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }
    s->ntables = c->nentities;
    for (i = 0; i < c->nentities; i++) {
        s->tables[i].en = &c->entities[i];
        if (table_load(p, c, &s->tables[i], e) < 0)
            goto err;
        /* scope hook (pg_scope.h): checked here, part of the signature */
        if (pg_scope_load(p, c, &s->tables[i], &s->tables[i].scope, e) < 0)
            goto err;
        if (scope_sign(&s->tables[i]) < 0) {
            err_set(e, 500, "internal", "out of memory");
            goto err;
        }
    }
    s->cookie = pg_schema_cookie(p, c);
    return s;
err:
    schema_free(s);
    return NULL;
}

/* The trigger's name for t: "_rhtmx_sync_<entity>", as with SQLite's prefix. */
static void
trigger_name(struct buf *b, const struct table *t)
{
    struct buf name = {0};

    buf_printf(&name, "_rhtmx_sync_%s", t->en->name);
    pg_ident(b, name.p);
    buf_free(&name);
}

/* 1 if t's own trigger is installed for its current signature. */
static int
trigger_installed(struct pg *p, const struct table *t)
{
    static const char sql[] = "SELECT t.signature = $2 AND EXISTS (SELECT 1 FROM pg_trigger g"
                              "   WHERE g.tgrelid = to_regclass(quote_ident($3)) AND g.tgname = $4"
                              "     AND g.tgenabled <> 'D')"
                              "  FROM _rhtmx_sync_tables t WHERE t.entity = $1";
    struct buf name = {0};
    const char *params[4];
    int ok;

    buf_printf(&name, "_rhtmx_sync_%s", t->en->name);
    params[0] = t->en->name;
    params[1] = t->signature;
    params[2] = t->en->table;
    params[3] = name.p;
    ok = check_true(check_row(p, sql, 4, params, "check the trigger"));
    buf_free(&name);
    return ok;
}

int
pg_schema_installed(struct pg *p, const struct table *t)
{
    return trigger_installed(p, t) && pg_scope_installed(p, t);
}

/* The condition "the newest entry of entry l's row is not a delete", for alias l. */
static void
live_sql(struct buf *b, const char *l)
{
    buf_printf(b,
               "%s.action <> 'delete' AND NOT EXISTS (SELECT 1 FROM _rhtmx_sync_log AS m"
               " WHERE m.entity = %s.entity AND m.entity_id = %s.entity_id"
               " AND m.version > %s.version)",
               l, l, l, l);
}

/*
 * The statements that install t's trigger and bring the log in line with the
 * table (rebuild: the trigger was there before, or its record is). The caller
 * holds the counter row (versions continue from the head it read).
 */
static void
install_sql(struct buf *b, const struct table *t, int rebuild)
{
    const char *key = t->cols[t->key].name;

    buf_adds(b, "DROP TRIGGER IF EXISTS ");
    trigger_name(b, t);
    buf_adds(b, " ON ");
    pg_ident(b, t->en->table);
    buf_adds(b, ";\nCREATE TRIGGER ");
    trigger_name(b, t);
    buf_adds(b, " AFTER INSERT OR UPDATE OR DELETE ON ");
    pg_ident(b, t->en->table);
    buf_adds(b, " FOR EACH ROW EXECUTE FUNCTION _rhtmx_sync_capture(");
    pg_literal(b, t->en->name);
    buf_adds(b, ", ");
    pg_literal(b, key);
    buf_adds(b, ", ");
    pg_literal(b, t->owner >= 0 ? t->cols[t->owner].name : "");
    buf_adds(b, ");\n");

    /* Each row the log does not hold live: a create (first sight) or, on a
     * rebuild, every row (an update where the log holds it live). Versions
     * continue from the head, in key order. */
    buf_adds(
        b, "INSERT INTO _rhtmx_sync_log (entity, entity_id, id_json, action, data, version,"
           " owner) SELECT x.entity, x.id, (x.j -> x.k)::text, CASE WHEN x.live THEN 'update' ELSE"
           " 'create' END, x.j,"
           " h.value + row_number() OVER (ORDER BY x.ord), x.j ->> ");
    pg_literal(b, t->owner >= 0 ? t->cols[t->owner].name : "");
    buf_adds(b, " FROM (SELECT ");
    pg_literal(b, t->en->name);
    buf_adds(b, "::text AS entity, ");
    pg_literal(b, key);
    buf_adds(b, "::text AS k, to_jsonb(r.*) AS j, to_jsonb(r.*) ->> ");
    pg_literal(b, key);
    buf_adds(b, " AS id, r.");
    pg_ident(b, key);
    buf_adds(b, " AS ord, EXISTS (SELECT 1 FROM _rhtmx_sync_log AS l WHERE l.entity = ");
    pg_literal(b, t->en->name);
    buf_adds(b, " AND l.entity_id = to_jsonb(r.*) ->> ");
    pg_literal(b, key);
    buf_adds(b, " AND ");
    live_sql(b, "l");
    buf_adds(b, ") AS live FROM ");
    pg_ident(b, t->en->table);
    buf_adds(b, " AS r) AS x, _rhtmx_sync_state AS h WHERE h.key = 'head'");
    if (!rebuild)
        buf_adds(b, " AND NOT x.live");
    buf_adds(b, ";\nUPDATE _rhtmx_sync_state SET value = greatest(value, (SELECT"
                " coalesce(max(version), 0) FROM _rhtmx_sync_log)) WHERE key = 'head';\n");
    if (rebuild) {
        /* A delete for each key the log holds live and the table lost. */
        buf_adds(b, "INSERT INTO _rhtmx_sync_log (entity, entity_id, id_json, action, version,"
                    " owner) SELECT l.entity, l.entity_id, l.id_json, 'delete',"
                    " h.value + row_number() OVER (ORDER BY l.version), l.owner"
                    " FROM _rhtmx_sync_log AS l, _rhtmx_sync_state AS h"
                    " WHERE h.key = 'head' AND l.entity = ");
        pg_literal(b, t->en->name);
        buf_adds(b, " AND ");
        live_sql(b, "l");
        buf_adds(b, " AND NOT EXISTS (SELECT 1 FROM ");
        pg_ident(b, t->en->table);
        buf_adds(b, " AS r WHERE to_jsonb(r.*) ->> ");
        pg_literal(b, key);
        buf_adds(b, " = l.entity_id);\nUPDATE _rhtmx_sync_state SET value = greatest(value, (SELECT"
                    " coalesce(max(version), 0) FROM _rhtmx_sync_log)) WHERE key = 'head';\n");
    }
    pg_scope_install_sql(b, t); /* scope hook: the triggers on the tables it reads */
    buf_adds(b, "INSERT INTO _rhtmx_sync_tables (entity, tbl, signature) VALUES (");
    pg_literal(b, t->en->name);
    buf_adds(b, ", ");
    pg_literal(b, t->en->table);
    buf_adds(b, ", ");
    pg_literal(b, t->signature);
    buf_adds(b, ") ON CONFLICT (entity) DO UPDATE SET tbl = excluded.tbl,"
                " signature = excluded.signature;\n"
                "SELECT pg_notify('" PG_CHANNEL "', ");
    pg_literal(b, t->en->name);
    buf_adds(b, ");\n");
}

/* 1 if the entity has a record of an earlier install (a rebuild), 0 if not, -1 on error. */
static int
seen_before(struct pg *p, const struct table *t, struct err *e)
{
    const char *params[1] = {t->en->name};
    PGresult *res = pg_query(p, "SELECT 1 FROM _rhtmx_sync_tables WHERE entity = $1", 1, params,
                             "read the installed tables", e);
    int seen;

    if (res == NULL)
        return -1;
    seen = PQntuples(res) > 0;
    PQclear(res);
    return seen;
}

int
pg_schema_install(struct pg *p, struct schema *s, int *changed, struct err *e)
{
    struct buf sql = {0};
    size_t i;
    int n = 0, seen;

    if (pg_begin_write(p, e) < 0)
        return -1;
    /* Installers take turns; the counter row, locked next, keeps every writer
     * of a synced table out until the log is in line with the tables. */
    if (pg_exec(p, PG_LOCK_SQL, 0, NULL, "lock for install", e) < 0 ||
        pg_exec(p, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head' FOR UPDATE", 0, NULL,
                "lock the head", e) < 0)
        goto err;
    for (i = 0; i < s->ntables; i++) {
        const struct table *t = &s->tables[i];
        if (pg_schema_installed(p, t)) /* done by another process meanwhile */
            continue;
        if (trigger_installed(p, t)) {
            /* scope hook: only the triggers on the tables its scope reads went
             * (such a table rebuilt by the app): those, without logging every
             * row again */
            buf_reset(&sql);
            pg_scope_install_sql(&sql, t);
            if (pg_exec(p, sql.p, 0, NULL, "install the sync rules' triggers", e) < 0)
                goto err;
            n++;
            continue;
        }
        if ((seen = seen_before(p, t, e)) < 0)
            goto err;
        buf_reset(&sql);
        install_sql(&sql, t, seen);
        if (pg_exec(p, sql.p, 0, NULL, "install the change-capture trigger", e) < 0)
            goto err;
        n++;
    }
    if (pg_commit(p, e) < 0)
        goto err;
    buf_free(&sql);
    if (changed != NULL)
        *changed = n;
    s->cookie = -2; /* our own CREATE TRIGGERs changed it: taken again by the caller */
    return 0;
err:
    pg_rollback(p);
    buf_free(&sql);
    return -1;
}

/* t's column names as a text[] literal: {"a","b"} (names have no quote or backslash). */
static void
columns_array(struct buf *b, const struct table *t)
{
    size_t i;

    buf_adds(b, "{");
    for (i = 0; i < t->ncols; i++)
        buf_printf(b, "%s\"%s\"", i > 0 ? "," : "", t->cols[i].name);
    buf_adds(b, "}");
}

/*
 * Record t's columns in _rhtmx_sync_tables, and in _rhtmx_sync_gone those the
 * last record had and t has no more (a column that is back is forgotten there).
 * Only reads when nothing changed, so a CGI request writes nothing.
 */
static int
columns_record(struct pg *p, const struct table *t, struct err *e)
{
    static const char *const sql[] = {
        "INSERT INTO _rhtmx_sync_gone (entity, name) SELECT $1, c FROM _rhtmx_sync_tables AS s,"
        " unnest(s.columns) AS c WHERE s.entity = $1 AND c <> ALL ($2::text[])"
        " ON CONFLICT DO NOTHING",
        "DELETE FROM _rhtmx_sync_gone WHERE entity = $1 AND name = ANY ($2::text[])",
        "UPDATE _rhtmx_sync_tables SET columns = $2::text[] WHERE entity = $1",
    };
    struct buf cols = {0};
    const char *params[2];
    PGresult *res;
    size_t i;
    int same;

    columns_array(&cols, t);
    params[0] = t->en->name;
    params[1] = cols.p;
    res = pg_query(p, "SELECT columns = $2::text[] FROM _rhtmx_sync_tables WHERE entity = $1", 2,
                   params, "read the recorded columns", e);
    same = res != NULL && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (res == NULL || same) {
        buf_free(&cols);
        return res == NULL ? -1 : 0;
    }
    if (pg_begin_write(p, e) < 0)
        goto err;
    for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
        if (pg_exec(p, sql[i], 2, params, "record the columns", e) < 0)
            goto rollback;
    if (pg_commit(p, e) < 0)
        goto rollback;
    buf_free(&cols);
    return 0;
rollback:
    pg_rollback(p);
err:
    buf_free(&cols);
    return -1;
}

int
pg_schema_column_gone(struct pg *p, const struct table *t, const char *name)
{
    const char *params[2] = {t->en->name, name};
    PGresult *res;
    struct err e;
    int gone;

    res = pg_query(p, "SELECT 1 FROM _rhtmx_sync_gone WHERE entity = $1 AND name = $2", 2, params,
                   "read the dropped columns", &e);
    gone = res != NULL && PQntuples(res) > 0;
    PQclear(res);
    return gone;
}

struct pg *
pg_load(const struct config *c, const char *name, struct schema **schema, int *installed,
        struct err *e)
{
    struct pg *p = NULL;
    struct schema *s = NULL;
    size_t i;
    int current = 1;

    *schema = NULL;
    *installed = 0;
    if ((p = pg_open(c->pg, name, e)) == NULL)
        goto err;
    if (!pg_schema_ok(p) && pg_migrate(p, e) < 0)
        goto err;
    if ((s = pg_schema_load(p, c, e)) == NULL)
        goto err;
    for (i = 0; i < s->ntables && current; i++)
        current = pg_schema_installed(p, &s->tables[i]);
    if (!current && pg_schema_install(p, s, installed, e) < 0)
        goto err;
    if (!current)
        s->cookie = pg_schema_cookie(p, c);
    for (i = 0; i < s->ntables; i++)
        if (columns_record(p, &s->tables[i], e) < 0)
            goto err;
    *schema = s;
    return p;
err:
    schema_free(s);
    pg_free(p);
    return NULL;
}

int
pg_cursors(struct pg *p, long long *head, long long *horizon, struct err *e)
{
    PGresult *res =
        pg_query_cached(p,
                        "SELECT (SELECT value FROM _rhtmx_sync_state WHERE key = 'head'),"
                        "       (SELECT value FROM _rhtmx_sync_state WHERE key = 'horizon')",
                        "read head and horizon", e);

    if (res == NULL)
        return -1;
    *head = pg_int(res, 0, 0);
    *horizon = pg_int(res, 0, 1);
    PQclear(res);
    return 0;
}

int
pg_schema_report(struct pg *p, const struct config *c, const struct schema *s, FILE *out)
{
    long long head = -1, horizon = -1;
    struct err e;
    size_t i;
    int bad = 0;

    pg_cursors(p, &head, &horizon, &e);
    fprintf(out, "config    %s\n", c->path);
    fprintf(out, "database  %s (PostgreSQL)\n", c->database);
    fprintf(out, "auth      %s\n",
            c->auth.mode == AUTH_TOKEN ? "token" : "none (anyone can read and write)");
    fprintf(out, "head      %lld\n", head);
    fprintf(out, "horizon   %lld\n", horizon);
    fprintf(out, "\n%-20s %-20s %10s %10s  %s\n", "entity", "table", "rows", "synced", "triggers");
    for (i = 0; i < s->ntables; i++) {
        const struct table *t = &s->tables[i];
        struct buf sql = {0};
        const char *params[1] = {t->en->name};
        long long rows = -1, synced = -1;
        int ok = pg_schema_installed(p, t);
        PGresult *res;

        buf_adds(&sql, "SELECT (SELECT count(*) FROM ");
        pg_ident(&sql, t->en->table);
        buf_adds(&sql, "), (SELECT count(*) FROM _rhtmx_sync_log AS l WHERE l.entity = $1 AND ");
        live_sql(&sql, "l");
        buf_adds(&sql, ")");
        if ((res = pg_query(p, sql.p, 1, params, "count rows", &e)) != NULL) {
            rows = pg_int(res, 0, 0);
            synced = pg_int(res, 0, 1);
        }
        PQclear(res);
        buf_free(&sql);
        fprintf(out, "%-20s %-20s %10lld %10lld  %s\n", t->en->name, t->en->table, rows, synced,
                ok ? "ok" : "missing or out of date (run 'rhtmx-sync init')");
        fprintf(out, "  schema %s: key %s;", t->fingerprint, t->cols[t->key].name);
        for (size_t k = 0; k < t->ncols; k++)
            fprintf(out, " %s %s", t->cols[k].name, t->cols[k].type);
        fprintf(out, "\n");
        bad |= !ok;
    }
    /* Every setting with the value in force, as the SQLite report ends. */
    {
        struct buf settings = {0};
        config_describe(c, &settings);
        fprintf(out, "\nsettings\n%s", settings.p != NULL ? settings.p : "");
        buf_free(&settings);
    }
    return bad;
}
