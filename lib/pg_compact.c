/* pg_compact: see pg_compact.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pg_compact.h"
#include "pg_schema.h"
#include "pg_scope.h"

#define PG_COMPACT_LOCK "hashtext('rhtmx_sync_compact')"
#define STR_(x) #x
#define STR(x) STR_(x)
#define DB_COMPACT_INTERVAL_TEXT STR(COMPACT_INTERVAL)

/* One batch, inside the caller's transaction: the oldest removable entries
 * (older than $1 days, a tombstone or superseded), deleted; the horizon raised
 * to the highest tombstone among them. *removed: how many. */
static int
batch(struct pg *p, int days, long long *removed, struct err *e)
{
    static const char sql[] =
        "WITH gone AS (DELETE FROM _rhtmx_sync_log WHERE id IN ("
        "   SELECT l.id FROM _rhtmx_sync_log AS l"
        "    WHERE l.created_at < now() - make_interval(days => $1::int)"
        "      AND (l.action = 'delete' OR EXISTS (SELECT 1 FROM _rhtmx_sync_log AS m"
        "            WHERE m.entity = l.entity AND m.entity_id = l.entity_id"
        "              AND m.version > l.version))"
        "    ORDER BY l.id LIMIT $2::int)"
        "  RETURNING version, action),"
        " top AS (SELECT count(*) AS n,"
        "   coalesce(max(CASE WHEN action = 'delete' THEN version END), 0) AS v FROM gone),"
        " raised AS (UPDATE _rhtmx_sync_state SET value = greatest(value, (SELECT v FROM top))"
        "   WHERE key = 'horizon' RETURNING value)"
        " SELECT n, (SELECT value FROM raised) FROM top";
    char d[16], b[16];
    const char *params[2] = {d, b};
    PGresult *res;

    snprintf(d, sizeof(d), "%d", days);
    snprintf(b, sizeof(b), "%d", COMPACT_BATCH);
    if ((res = pg_query(p, sql, 2, params, "compact", e)) == NULL)
        return -1;
    *removed = pg_int(res, 0, 0);
    PQclear(res);
    return 0;
}

/* Old push answers, and the time stamp. *mutations: answers removed. */
static int
finish(struct pg *p, int days, long long *mutations, struct err *e)
{
    char d[16], now[24];
    const char *params[1] = {d}, *stamp[1] = {now};
    PGresult *res;

    snprintf(d, sizeof(d), "%d", days);
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    res = pg_query(p,
                   "DELETE FROM _rhtmx_sync_mutations"
                   " WHERE created_at < now() - make_interval(days => $1::int)",
                   1, params, "compact: push answers", e);
    if (res == NULL)
        return -1;
    *mutations = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    /* scope hook (pg_scope.h): what left a view before the horizon, and the
     * views of users gone for the retention */
    {
        long long head, horizon;
        if (pg_cursors(p, &head, &horizon, e) < 0 || pg_scope_compact(p, horizon, days, e) < 0)
            return -1;
    }
    return pg_exec(p,
                   "INSERT INTO _rhtmx_sync_state (key, value) VALUES ('compacted_at', $1::bigint)"
                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                   1, stamp, "compact: time stamp", e);
}

int
pg_compact_run(struct pg *p, const struct config *cfg, struct compact_stats *out, struct err *e)
{
    struct compact_stats s = {0};
    long long n = 0, m = 0;
    PGresult *res;

    do {
        if (pg_begin_write(p, e) < 0)
            return -1;
        if (pg_exec(p, "SELECT pg_advisory_xact_lock(" PG_COMPACT_LOCK ")", 0, NULL,
                    "compact: lock", e) < 0 ||
            batch(p, cfg->retention.days, &n, e) < 0 ||
            (n < COMPACT_BATCH && finish(p, cfg->retention.days, &m, e) < 0) ||
            pg_commit(p, e) < 0) {
            pg_rollback(p);
            return -1;
        }
        s.removed += n;
    } while (n == COMPACT_BATCH);
    s.mutations = m;
    if (pg_cursors(p, &s.head, &s.horizon, e) < 0)
        return -1;
    if ((res = pg_query(p, "SELECT count(*) FROM _rhtmx_sync_log", 0, NULL, "compact: count", e)) ==
        NULL)
        return -1;
    s.entries = pg_int(res, 0, 0);
    PQclear(res);
    if (out != NULL)
        *out = s;
    return 0;
}

int
pg_compact_maybe(struct pg *p, const struct config *cfg)
{
    static const char due_sql[] =
        "SELECT coalesce((SELECT value FROM _rhtmx_sync_state WHERE key = 'compacted_at'), 0)"
        "  <= extract(epoch FROM now())::bigint - " DB_COMPACT_INTERVAL_TEXT;
    long long n = 0, m = 0;
    PGresult *res;
    struct err e;
    int due;

    if ((res = pg_query(p, due_sql, 0, NULL, "compact: due", &e)) == NULL)
        goto fail;
    due = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!due)
        return 0;
    if (pg_begin_write(p, &e) < 0)
        goto fail;
    /* Another process compacting now: its turn, not ours. */
    if ((res = pg_query(p, "SELECT pg_try_advisory_xact_lock(" PG_COMPACT_LOCK ")", 0, NULL,
                        "compact: lock", &e)) == NULL)
        goto rollback;
    due = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!due) {
        pg_rollback(p);
        return 0;
    }
    if (batch(p, cfg->retention.days, &n, &e) < 0 || finish(p, cfg->retention.days, &m, &e) < 0 ||
        pg_commit(p, &e) < 0)
        goto rollback;
    return 1;
rollback:
    pg_rollback(p);
fail:
    log_once("opportunistic compaction: %s", e.msg);
    return 0;
}
