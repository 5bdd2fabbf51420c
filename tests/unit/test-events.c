/*
 * test-events: the pieces of sync-events against a real database file.
 *
 *   watch    a commit by another connection wakes watch_wait (inotify, not the timeout)
 *   hub      direct delivery to a waiting stream, and each way it can fall back; filters;
 *            the ring hands over to a database replay without a gap or a repeat;
 *            resync past the horizon; waiting, hang-up, stop, the stream cap; a backup
 *            restored over the database resyncs waiting streams
 *   hangup   a socket whose peer closes calls back once; a deleted registration never does
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "db.h"
#include "hangup.h"
#include "hub.h"
#include "monotime.h"
#include "watch.h"

static char dir[64];
static char path[128];

static void
exec_sql(const char *p, const char *sql)
{
    sqlite3 *h = NULL;
    char *msg = NULL;

    if (sqlite3_open(p, &h) != SQLITE_OK || sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fprintf(stderr, "sql failed: %s: %s\n", msg ? msg : sqlite3_errmsg(h), sql);
    sqlite3_free(msg);
    sqlite3_close(h);
}

/* A database with our tables, in WAL mode. */
static void
make_db(const char *p)
{
    struct err e;
    struct db *d;

    exec_sql(p, "PRAGMA journal_mode = WAL"); /* creates the file */
    d = db_open(p, &e);
    CHECK(d != NULL);
    if (d != NULL)
        CHECK_INT(db_migrate(d, &e), 0);
    db_free(d);
}

/* Append n log rows in one transaction: entity a for odd versions, b for even. */
static void
add_rows(const char *p, int n)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "BEGIN IMMEDIATE;"
             "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d)"
             " INSERT INTO _rhtmx_sync_log (entity, entity_id, action, version, client_id)"
             " SELECT CASE WHEN (h.value + i) %% 2 THEN 'a' ELSE 'b' END,"
             "        CASE WHEN (h.value + i) %% 2 THEN h.value + i ELSE 'k' || (h.value + i) END,"
             "        'update', h.value + i, CASE WHEN i = 1 THEN 'c-1' END"
             "   FROM c, _rhtmx_sync_state AS h WHERE h.key = 'head';"
             "UPDATE _rhtmx_sync_state SET value = value + %d WHERE key = 'head';"
             "COMMIT;",
             n, n);
    exec_sql(p, sql);
}

/* Wait until the hub's head reaches v (the feeder saw the commit). */
static int
wait_head(struct hub *h, long long v)
{
    long long base, head;
    int i;

    for (i = 0; i < 500; i++) {
        hub_bounds(h, &base, &head);
        if (head >= v)
            return 1;
        usleep(10 * 1000);
    }
    return 0;
}

/* The versions in an SSE text, in order, into out; returns how many. */
static int
ids(const char *text, long long *out, int max)
{
    int n = 0;
    const char *p = text;

    while (p != NULL && (p = strstr(p, "id: ")) != NULL && n < max) {
        out[n++] = strtoll(p + 4, NULL, 10);
        p += 4;
    }
    return n;
}

static void
test_filter(void)
{
    char *ents[] = {"todos", "notes"};
    char *owners[] = {"42", NULL};
    struct hub_filter all = {0}, some = {2, ents, NULL}, owned = {2, ents, owners};
    const struct {
        const struct hub_filter *f;
        const char *entity, *owner;
        int want;
        int line;
    } cases[] = {
        {&all, "todos", NULL, 1, __LINE__},   {&all, "x", "7", 1, __LINE__},
        {&some, "todos", NULL, 1, __LINE__},  {&some, "notes", "1", 1, __LINE__},
        {&some, "users", NULL, 0, __LINE__},  {&owned, "todos", "42", 1, __LINE__},
        {&owned, "todos", "7", 0, __LINE__},  {&owned, "todos", NULL, 0, __LINE__},
        {&owned, "notes", NULL, 1, __LINE__}, {&owned, "notes", "7", 1, __LINE__},
        {&owned, "users", "42", 0, __LINE__},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_AT(cases[i].line,
                 hub_filter_match(cases[i].f, cases[i].entity, cases[i].owner) == cases[i].want,
                 "%s owned by %s", cases[i].entity, cases[i].owner ? cases[i].owner : "(none)");
}

static void
test_watch(void)
{
    struct err e;
    struct watch *w = watch_new(path, &e);
    int r;

    CHECK(w != NULL);
    if (w == NULL)
        return;
    CHECK(watch_active(w));
    while (watch_wait(w, 50) != WATCH_TIMEOUT)
        ; /* whatever the set-up wrote */
    CHECK_INT(watch_wait(w, 20), WATCH_TIMEOUT);
    add_rows(path, 1);
    r = watch_wait(w, 3000); /* far below any safety poll: only inotify answers this fast */
    CHECK(r & WATCH_CHANGED);
    watch_wake(w);
    CHECK(watch_wait(w, 3000) & WATCH_WOKEN);
    CHECK_INT(watch_replaced(w), 0);
    watch_free(w);
}

struct committer {
    const char *path;
    int n, delay_ms;
};

static void *
commit_later(void *arg)
{
    struct committer *c = arg;
    usleep((useconds_t)c->delay_ms * 1000);
    add_rows(c->path, c->n);
    return NULL;
}

static void
test_hub(void)
{
    struct err e;
    struct hub *h = hub_new(path, 8, 0, &e);
    struct hub_stream s, t;
    struct buf out = {0};
    long long v, got[64], base, head, h0, want;
    int n, i, rounds;
    char *ents[] = {"b"};
    struct timespec dl;
    pthread_t th;
    struct committer c;

    CHECK(h != NULL);
    if (h == NULL)
        return;
    CHECK(hub_watching(h));
    CHECK_INT(hub_state(h, &h0, &v, 0, &e), 0);
    CHECK_INT(v, 0);

    /* 20 changes: the ring (8) keeps the last ones, the rest is replayed. */
    add_rows(path, 20);
    CHECK(wait_head(h, h0 + 20));
    hub_bounds(h, &base, &head);
    CHECK_INT(head, h0 + 20);
    CHECK_INT(base, h0 + 12);

    memset(&s, 0, sizeof(s));
    s.cursor = 0;
    CHECK_INT(hub_join(h, &s, 10, &e), 0);
    for (rounds = 0, n = 0; rounds < 100 && s.cursor < head; rounds++) {
        dl = monotime_in_ms(1000);
        CHECK_INT(hub_next(h, &s, &out, 60, &dl, &v, &e), HUB_EVENTS);
        n = ids(out.p, got, 64); /* out keeps growing: every id so far */
    }
    CHECK_INT(n, (int)head);
    for (i = 0; i < n; i++)
        CHECK_INT(got[i], i + 1);
    CHECK(rounds > 2); /* it took several chunks: the small max was honoured */
    /* The event text, exactly, for a text key and a client id. */
    CHECK_CONTAINS(out.p, "id: 3\ndata: {\"entity\":\"a\",\"action\":\"update\",\"id\":3,"
                          "\"version\":3}\n\n");
    CHECK_CONTAINS(out.p, "id: 2\ndata: {\"entity\":\"b\",\"action\":\"update\",\"id\":\"k2\","
                          "\"version\":2,\"client_id\":\"c-1\"}\n\n");

    /* Waiting: nothing new until the deadline, then a commit from another thread. */
    buf_reset(&out);
    dl = monotime_in_ms(30);
    CHECK_INT(hub_next(h, &s, &out, 4096, &dl, &v, &e), HUB_TIMEOUT);
    c.path = path;
    c.n = 1;
    c.delay_ms = 100;
    pthread_create(&th, NULL, commit_later, &c);
    dl = monotime_in_ms(4000);
    CHECK_INT(hub_next(h, &s, &out, 4096, &dl, &v, &e), HUB_EVENTS);
    pthread_join(th, NULL);
    CHECK_INT(ids(out.p, got, 64), 1);
    CHECK_INT(got[0], head + 1);
    CHECK_INT(s.cursor, head + 1);

    /* A filtered stream from 0: only entity b, still every one of them, in order. */
    memset(&t, 0, sizeof(t));
    t.filter.n = 1;
    t.filter.entities = ents;
    CHECK_INT(hub_join(h, &t, 10, &e), 0);
    buf_reset(&out);
    for (rounds = 0; rounds < 100 && t.cursor < head + 1; rounds++) {
        dl = monotime_in_ms(1000);
        if (hub_next(h, &t, &out, 4096, &dl, &v, &e) != HUB_EVENTS)
            break;
    }
    n = ids(out.p, got, 64);
    want = 0;
    for (i = 0; i < n; i++)
        want += got[i] % 2 == 0;
    CHECK_INT(want, n);
    CHECK_INT(n, (int)(head + 1) / 2);
    CHECK_INT(t.cursor, head + 1);

    /* The cap. */
    {
        struct hub_stream u;
        memset(&u, 0, sizeof(u));
        CHECK_INT(hub_join(h, &u, 2, &e), -1);
        CHECK_INT(e.status, 503);
        CHECK_STR(e.code, "busy");
    }
    CHECK_INT((long long)hub_streams(h), 2);
    hub_leave(h, &t);

    /* Past the horizon: resync to the head. */
    exec_sql(path, "UPDATE _rhtmx_sync_state SET value = 5 WHERE key = 'horizon';");
    add_rows(path, 1); /* the feeder learns the horizon when it reads */
    CHECK(wait_head(h, head + 2));
    memset(&t, 0, sizeof(t));
    t.cursor = 3;
    CHECK_INT(hub_join(h, &t, 10, &e), 0);
    dl = monotime_in_ms(1000);
    CHECK_INT(hub_next(h, &t, &out, 4096, &dl, &v, &e), HUB_RESYNC);
    CHECK_INT(v, head + 2);
    hub_leave(h, &t);

    /* A hang-up wakes the waiting stream with HUB_GONE, once. */
    buf_reset(&out);
    dl = monotime_in_ms(1000);
    CHECK_INT(hub_next(h, &s, &out, 4096, &dl, &v, &e), HUB_EVENTS); /* head + 2 */
    hub_gone(h, &s);
    dl = monotime_in_ms(1000);
    CHECK_INT(hub_next(h, &s, &out, 4096, &dl, &v, &e), HUB_GONE);
    dl = monotime_in_ms(20);
    CHECK_INT(hub_next(h, &s, &out, 4096, &dl, &v, &e), HUB_TIMEOUT);

    /* The app's DDL writes no row of the log: a waiting stream hears HUB_SCHEMA
     * (its answer ends, and the reconnect says the new fingerprints), once. */
    exec_sql(path, "CREATE TABLE app_table (x);");
    dl = monotime_in_ms(8000);
    CHECK_INT(hub_next(h, &s, &out, 4096, &dl, &v, &e), HUB_SCHEMA);
    dl = monotime_in_ms(20);
    CHECK_INT(hub_next(h, &s, &out, 4096, &dl, &v, &e), HUB_TIMEOUT);

    /* A backup restored over the database (sqlite3's .restore, in place): the head
     * goes back, so every cursor is meaningless and waiting streams resync. */
    {
        char other[160];
        sqlite3 *src = NULL, *dst = NULL;
        sqlite3_backup *b;
        snprintf(other, sizeof(other), "%s/backup.db", dir);
        make_db(other);
        exec_sql(other, "UPDATE _rhtmx_sync_state SET value = 3 WHERE key = 'head';");
        CHECK_INT(sqlite3_open(other, &src), SQLITE_OK);
        CHECK_INT(sqlite3_open(path, &dst), SQLITE_OK);
        sqlite3_busy_timeout(dst, 5000);
        b = sqlite3_backup_init(dst, "main", src, "main");
        CHECK(b != NULL);
        if (b != NULL) {
            CHECK_INT(sqlite3_backup_step(b, -1), SQLITE_DONE);
            sqlite3_backup_finish(b);
        }
        sqlite3_close(src);
        sqlite3_close(dst);
        dl = monotime_in_ms(8000);
        CHECK_INT(hub_next(h, &s, &out, 4096, &dl, &v, &e), HUB_RESYNC);
        CHECK_INT(v, 3);
    }

    /* Stop: the stream ends on purpose, and no new one joins. */
    hub_stop(h);
    dl = monotime_in_ms(1000);
    CHECK_INT(hub_next(h, &s, &out, 4096, &dl, &v, &e), HUB_STOP);
    memset(&t, 0, sizeof(t));
    CHECK_INT(hub_join(h, &t, 10, &e), -1);
    hub_leave(h, &s);
    buf_free(&out);
    hub_free(h);
}

/* A deliver callback that answers what it is told and keeps what it took. */
struct fake_conn {
    enum hub_delivery answer;
    struct buf took;
    int offers;
};

static enum hub_delivery
fake_deliver(void *ctx, const char *p, size_t n)
{
    struct fake_conn *c = ctx;

    c->offers++;
    if (c->answer == HUB_DELIVERED_ALL || c->answer == HUB_DELIVERED_PART)
        buf_add(&c->took, p, n);
    return c->answer;
}

/* Join s to h at cursor, delivering straight to the fake connection c. */
static int
fake_join(struct hub *h, struct hub_stream *s, struct fake_conn *c, long long cursor, struct err *e)
{
    memset(s, 0, sizeof(*s));
    s->cursor = cursor;
    s->deliver = fake_deliver;
    s->deliver_ctx = c;
    return hub_join(h, s, 0, e);
}

/* Direct delivery: the feeder writes to a waiting stream without waking it; a
 * connection that would block, takes part, or is gone wakes the thread. */
static void
test_delivery(void)
{
    static const struct {
        enum hub_delivery answer;
        enum hub_next want;
        int cursor_moves; /* the feeder moved the cursor past the event */
        int in_out;       /* hub_next returned the event itself */
        int line;
    } cases[] = {
        {HUB_DELIVERED_NONE, HUB_EVENTS, 0, 1, __LINE__},
        {HUB_DELIVERED_PART, HUB_EVENTS, 1, 0, __LINE__},
        {HUB_DELIVERY_FAILED, HUB_GONE, 0, 0, __LINE__},
    };
    struct err e;
    struct hub *h = hub_new(path, 0, 0, &e);
    struct timespec dl;
    struct buf out = {0};
    long long v, head, base, got[8];
    size_t i;

    CHECK(h != NULL);
    if (h == NULL)
        return;
    hub_bounds(h, &base, &head);

    /* Delivered in full: the thread sleeps through it, its cursor moves. */
    {
        struct fake_conn c = {HUB_DELIVERED_ALL, {0}, 0};
        struct hub_stream s;
        CHECK_INT(fake_join(h, &s, &c, head, &e), 0);
        struct committer cm = {path, 2, 100};
        pthread_t th;
        pthread_create(&th, NULL, commit_later, &cm);
        dl = monotime_in_ms(1500); /* long after the commit: the stream was not woken for it */
        CHECK_INT(hub_next(h, &s, &out, 4096, &dl, &v, &e), HUB_TIMEOUT);
        pthread_join(th, NULL);
        CHECK_INT(out.len, 0);
        CHECK_INT(c.offers, 1);
        CHECK_INT(ids(c.took.p, got, 8), 2);
        CHECK_INT(got[0], head + 1);
        CHECK_INT(got[1], head + 2);
        CHECK_INT(s.cursor, head + 2);
        hub_leave(h, &s);
        buf_free(&c.took);
        head += 2;
    }

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fake_conn c = {cases[i].answer, {0}, 0};
        struct hub_stream s;
        struct committer cm = {path, 1, 50};
        pthread_t th;
        enum hub_next r;

        CHECK_INT(fake_join(h, &s, &c, head, &e), 0);
        pthread_create(&th, NULL, commit_later, &cm);
        buf_reset(&out);
        dl = monotime_in_ms(4000);
        r = hub_next(h, &s, &out, 4096, &dl, &v, &e);
        pthread_join(th, NULL);
        CHECK_AT(cases[i].line, r == cases[i].want, "hub_next gave %d", r);
        CHECK_AT(cases[i].line, c.offers == 1, "%d offers", c.offers);
        CHECK_AT(cases[i].line,
                 (s.cursor == head + 1) == (cases[i].cursor_moves || cases[i].in_out),
                 "cursor %lld", s.cursor);
        CHECK_AT(cases[i].line, (ids(out.p, got, 8) == 1) == cases[i].in_out, "out: %s",
                 out.p ? out.p : "");
        hub_leave(h, &s);
        buf_free(&c.took);
        head++;
    }
    buf_free(&out);
    hub_free(h);
}

static int calls;
static void
on_hangup(void *ctx)
{
    (void)ctx;
    __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
}

static void
test_hangup(void)
{
    struct err e;
    struct hangup *hu = hangup_new(&e);
    int sv[2], sw[2], i;
    unsigned long id, id2;

    CHECK(hu != NULL);
    if (hu == NULL)
        return;
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sw), 0);
    id = hangup_add(hu, sv[0], on_hangup, NULL);
    id2 = hangup_add(hu, sw[0], on_hangup, NULL);
    CHECK(id != 0 && id2 != 0 && id != id2);
    hangup_del(hu, id2);
    close(sw[1]); /* deleted: no call */
    close(sv[1]);
    for (i = 0; i < 300 && __atomic_load_n(&calls, __ATOMIC_SEQ_CST) == 0; i++)
        usleep(10 * 1000);
    usleep(50 * 1000);
    CHECK_INT(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 1);
    hangup_del(hu, id);
    hangup_del(hu, 0);
    close(sv[0]);
    close(sw[0]);
    hangup_free(hu);
}

int
main(void)
{
    snprintf(dir, sizeof(dir), "events-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/app.db", dir);
    make_db(path);

    test_filter();
    test_watch();
    test_delivery();
    test_hub();
    test_hangup();
    return check_done("test-events");
}
