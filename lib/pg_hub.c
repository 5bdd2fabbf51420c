/* pg_hub: see pg_hub.h. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "buf.h"
#include "jsonw.h"
#include "log.h"
#include "pg.h"
#include "pg_hub.h"
#include "pg_schema.h"
#include "watch.h"

struct pg_src {
    struct pg *p;
    struct pgconf *cf; /* owned copy: the config may be reloaded while the hub lives on */
    int listen;
    int wake; /* eventfd */
};

static int
src_connect(struct pg_src *s, struct err *e)
{
    pg_free(s->p);
    s->p = pg_open(s->cf, "sync-events", e);
    if (s->p == NULL)
        return -1;
    if (s->listen && pg_exec(s->p, "LISTEN " PG_CHANNEL, 0, NULL, "listen", e) < 0) {
        pg_free(s->p);
        s->p = NULL;
        return -1;
    }
    return 0;
}

struct pg_src *
pg_src_open(const struct pgconf *cf, int listen, struct err *e)
{
    struct pg_src *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return NULL;
    }
    s->listen = listen;
    s->wake = -1;
    if ((s->cf = pgconf_dup(cf)) == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }
    s->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake < 0) {
        err_set(e, 500, "internal", "eventfd: %s", strerror(errno));
        goto err;
    }
    if (src_connect(s, e) < 0)
        goto err;
    return s;
err:
    pg_src_free(s);
    return NULL;
}

void
pg_src_free(struct pg_src *s)
{
    if (s == NULL)
        return;
    pg_free(s->p);
    pgconf_free(s->cf);
    if (s->wake >= 0)
        close(s->wake);
    free(s);
}

void
pg_src_wake(struct pg_src *s)
{
    uint64_t one = 1;

    if (write(s->wake, &one, sizeof(one)) < 0) {
        /* the counter is full: a wake-up is pending anyway */
    }
}

/* Take every notification that arrived: 1 if there was any. */
static int
drain(struct pg_src *s)
{
    PGnotify *n;
    int any = 0;

    if (!PQconsumeInput(s->p->c))
        return -1;
    while ((n = PQnotifies(s->p->c)) != NULL) {
        any = 1;
        PQfreemem(n);
    }
    return any;
}

int
pg_src_wait(struct pg_src *s, int timeout_ms)
{
    struct pollfd fds[2];
    uint64_t count;
    struct err e;
    int r, out = 0;

    if (!pg_alive(s->p)) {
        if (src_connect(s, &e) < 0) {
            log_once("events: %s", e.msg);
            poll(NULL, 0, timeout_ms < 0 || timeout_ms > 1000 ? 1000 : timeout_ms);
            return 0;
        }
        log_once_reset();
        return WATCH_CHANGED; /* whatever was missed meanwhile */
    }
    if ((r = drain(s)) != 0)
        return r > 0 ? WATCH_CHANGED : 0;
    fds[0].fd = PQsocket(s->p->c);
    fds[0].events = POLLIN;
    fds[1].fd = s->wake;
    fds[1].events = POLLIN;
    if (poll(fds, 2, timeout_ms) <= 0)
        return 0;
    if (fds[1].revents & POLLIN) {
        if (read(s->wake, &count, sizeof(count)) < 0) {
            /* nothing to read: another waiter took it */
        }
        out |= WATCH_WOKEN;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        r = drain(s);
        if (r != 0) /* a notification, or a broken connection to reopen and reread */
            out |= WATCH_CHANGED;
    }
    return out;
}

/* The SSE event of row r (the columns of rows_sql) into b:
 *   id: 47
 *   data: {"entity":"users","action":"update","id":1,"version":47[,"client_id":"c"]} */
static void
format_event(struct buf *b, const PGresult *res, int r)
{
    struct sink s = buf_sink(b);

    buf_printf(b, "id: %s\ndata: {\"entity\":", PQgetvalue(res, r, 3));
    jsonw_cstring(&s, PQgetvalue(res, r, 0));
    jsonw_raw(&s, ",\"action\":");
    jsonw_cstring(&s, PQgetvalue(res, r, 2));
    jsonw_raw(&s, ",\"id\":");
    jsonw_raw(&s, PQgetvalue(res, r, 1));
    buf_printf(b, ",\"version\":%s", PQgetvalue(res, r, 3));
    if (!PQgetisnull(res, r, 4)) {
        jsonw_raw(&s, ",\"client_id\":");
        jsonw_cstring(&s, PQgetvalue(res, r, 4));
    }
    jsonw_raw(&s, "}\n\n");
}

int
pg_src_read(struct pg_src *s, long long after, long long upto, int limit, long long *head,
            long long *horizon, void (*cb)(void *ctx, const struct pg_change *c), void *ctx, int *n,
            struct err *e)
{
    static const char rows_sql[] =
        "SELECT entity, id_json, action, version, client_id, owner FROM _rhtmx_sync_log"
        " WHERE version > $1::bigint AND version <= $2::bigint ORDER BY version LIMIT $3::int";
    char a[24], u[24], l[24];
    const char *params[3] = {a, u, l};
    struct buf b = {0};
    PGresult *res = NULL;
    int i;

    *n = 0;
    if (!pg_alive(s->p) && src_connect(s, e) < 0)
        return -1;
    if (pg_begin_read(s->p, e) < 0)
        return -1;
    if (pg_cursors(s->p, head, horizon, e) < 0)
        goto err;
    if (cb != NULL) {
        snprintf(a, sizeof(a), "%lld", after);
        snprintf(u, sizeof(u), "%lld", upto < 0 || upto > *head ? *head : upto);
        snprintf(l, sizeof(l), "%d", limit);
        if ((res = pg_query(s->p, rows_sql, 3, params, "read new changes", e)) == NULL)
            goto err;
        for (i = 0; i < PQntuples(res); i++) {
            struct pg_change c;
            buf_reset(&b);
            format_event(&b, res, i);
            c.version = pg_int(res, i, 3);
            c.entity = PQgetvalue(res, i, 0);
            c.owner = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5);
            c.text = b.p;
            c.len = b.len;
            cb(ctx, &c);
        }
        *n = PQntuples(res);
    }
    pg_rollback(s->p);
    PQclear(res);
    buf_free(&b);
    return 0;
err:
    pg_rollback(s->p);
    PQclear(res);
    buf_free(&b);
    return -1;
}

long long
pg_src_cookie(struct pg_src *s)
{
    return pg_alive(s->p) ? pg_schema_cookie_synced(s->p) : -1;
}
