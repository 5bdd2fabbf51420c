/*
 * test-streams: the event loop that owns open streams (streams.h), each over
 * a socketpair that plays the web server's end of the FastCGI connection.
 *
 *   backlog   an adopted stream gets the changes after its cursor, then each
 *             commit, as FCGI_STDOUT records of its request id
 *   lifetime  at its end: bye with the cursor, the empty STDOUT record,
 *             FCGI_END_REQUEST, then the write side closes
 *   abort     FCGI_ABORT_REQUEST from the web server: the answer ends at once
 *   gone      the web server closing the connection drops the stream
 *   stop      streams_free ends every open stream with bye
 *   slow      a reader that takes nothing: the loop stops taking events at its
 *             output bound, and after the stall time ends the stream with bye
 *             carrying the last version it queued; every event up to it
 *             arrives once, in order, so a reconnect from bye loses nothing
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "hub.h"
#include "streams.h"

#define CFG "{\"database\":\"x\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"none\"}}"
#define SCHEMA "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT);"

/* One FastCGI record read from fd within ms: its type, request id and content
 * (NUL-terminated in out). 1, 0 at the end of the stream, -1 on timeout. */
static int
read_record(int fd, int ms, int *type, int *id, char *out, size_t outlen)
{
    unsigned char h[8];
    size_t got = 0, len, pad;

    while (got < 8) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, ms) <= 0)
            return -1;
        n = read(fd, h + got, 8 - got);
        if (n <= 0)
            return got == 0 && n == 0 ? 0 : -1;
        got += (size_t)n;
    }
    *type = h[1];
    *id = h[2] << 8 | h[3];
    len = (size_t)(h[4] << 8 | h[5]);
    pad = h[6];
    if (len + pad >= outlen)
        return -1;
    for (got = 0; got < len + pad;) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, ms) <= 0)
            return -1;
        n = read(fd, out + got, len + pad - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    out[len] = '\0';
    return 1;
}

/* The answer's bytes from fd until text appears in them (or ms pass). The
 * records' types and ids are checked on the way. 1 if found. */
static int
read_until(int fd, int id, const char *text, char *all, size_t alllen, int ms)
{
    char rec[70000];
    int type, rid;

    all[0] = '\0';
    while (read_record(fd, ms, &type, &rid, rec, sizeof(rec)) == 1) {
        CHECK_INT(rid, id);
        CHECK_INT(type, 6); /* FCGI_STDOUT */
        if (strlen(all) + strlen(rec) < alllen)
            strcat(all, rec);
        if (strstr(all, text) != NULL)
            return 1;
    }
    return 0;
}

/* The end of an answer: the empty STDOUT record, FCGI_END_REQUEST, then EOF. */
static void
check_end(int fd, int id, int line)
{
    char rec[64];
    int type = -1, rid = -1;

    CHECK_AT(line,
             read_record(fd, 2000, &type, &rid, rec, sizeof(rec)) == 1 && type == 6 && rid == id &&
                 rec[0] == '\0',
             "the empty STDOUT record (type %d)", type);
    CHECK_AT(line,
             read_record(fd, 2000, &type, &rid, rec, sizeof(rec)) == 1 && type == 3 && rid == id,
             "FCGI_END_REQUEST (type %d)", type);
    CHECK_AT(line, read_record(fd, 2000, &type, &rid, rec, sizeof(rec)) == 0, "%s",
             "the write side closed");
}

/* Join a new stream at cursor and hand it to l over a new socketpair; the
 * web server's end is returned. */
static int
adopt_slow(struct streams *l, struct hub *h, long long cursor, int id, long long life_ms,
           long long stall_ms)
{
    struct streams_stream st;
    struct hub_stream *s = calloc(1, sizeof(*s));
    struct err e;
    int sv[2];

    CHECK(s != NULL);
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (stall_ms > 0) {
        int small = 4096; /* the kernel's minimum: the connection fills at once */
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    }
    s->cursor = cursor;
    CHECK_INT(hub_join(h, s, 0, &e), 0);
    memset(&st, 0, sizeof(st));
    st.hub = h;
    st.s = s;
    st.fd = sv[0];
    st.request_id = id;
    st.heartbeat_ms = 60000;
    st.end_ms = streams_now_ms() + life_ms;
    st.poll_end_ms = st.end_ms;
    st.stall_ms = stall_ms;
    streams_adopt(l, &st);
    return sv[1];
}

static int
adopt(struct streams *l, struct hub *h, long long cursor, int id, long long life_ms)
{
    return adopt_slow(l, h, cursor, id, life_ms, 0);
}

static long long head(struct fixture *f);

/* The slow reader: see the file's comment. */
static void
test_slow(struct fixture *f, struct streams *l, struct hub *h)
{
    static char all[2000000];
    char rec[70000], *p, *bye;
    long long v0 = head(f), last = v0, want_next = v0 + 1;
    int fd, type = 0, id = 0, n;

    fd = adopt_slow(l, h, v0, 5, 600000, 200);
    fx_exec(f, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)"
               " INSERT INTO todos (title) SELECT 'slow ' || i FROM c");
    usleep(1000 * 1000); /* well past the stall time: nothing read */
    all[0] = '\0';
    for (n = 0; (n = read_record(fd, 5000, &type, &id, rec, sizeof(rec))) == 1 && type == 6 &&
                rec[0] != '\0';) {
        CHECK_INT(id, 5);
        if (strlen(all) + strlen(rec) < sizeof(all))
            strcat(all, rec);
    }
    CHECK_AT(__LINE__, n == 1 && type == 6, "the empty STDOUT record (%d, type %d)", n, type);
    CHECK_AT(__LINE__, read_record(fd, 5000, &type, &id, rec, sizeof(rec)) == 1 && type == 3,
             "FCGI_END_REQUEST (type %d)", type);
    bye = strstr(all, "event: bye\n");
    CHECK(bye != NULL);
    if (bye == NULL)
        goto out;
    /* Every event before bye, consecutive from the cursor on, none twice. */
    for (p = all; p < bye; p = strstr(p, "\n\n") + 2) {
        long long v = -1;
        CHECK(sscanf(p, "id: %lld\n", &v) == 1);
        if (v != want_next) {
            CHECK_AT(__LINE__, 0, "event %lld where %lld was due", v, want_next);
            break;
        }
        last = v;
        want_next = v + 1;
    }
    CHECK(last > v0);
    CHECK(last < v0 + 20000); /* the bound held the rest back: the stream ended first */
    snprintf(rec, sizeof(rec), "event: bye\nid: %lld\ndata: {\"version\":%lld}\n\n", last, last);
    CHECK_STR(bye, rec);
out:
    close(fd);
}

static long long
head(struct fixture *f)
{
    return fx_int(f, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head'");
}

static int
wait_count(struct streams *l, size_t n)
{
    int i;

    for (i = 0; i < 300 && streams_count(l) != n; i++)
        usleep(10 * 1000);
    return streams_count(l) == n;
}

int
main(void)
{
    struct fixture f;
    struct err e;
    struct hub *h;
    struct streams *l;
    char all[200000], want[128];
    long long v0;
    int a, b, c, d;
    const unsigned char abort_rec[] = {1, 2, 0, 3, 0, 0, 0, 0}; /* ABORT_REQUEST, id 3 */

    CHECK(fx_open(&f, SCHEMA, CFG) == 0);
    fx_exec(&f, "INSERT INTO todos (title) VALUES ('a'), ('b'), ('c')");
    v0 = head(&f);
    h = hub_new(f.path, 0, 0, &e);
    l = streams_new(&e);
    CHECK(h != NULL && l != NULL);
    if (h == NULL || l == NULL)
        return check_done("test-streams");
    hub_listen(h, streams_wake, l);

    /* backlog, then a commit */
    a = adopt(l, h, v0 - 2, 1, 60000);
    snprintf(want, sizeof(want), "id: %lld\n", v0);
    CHECK(read_until(a, 1, want, all, sizeof(all), 5000));
    snprintf(want, sizeof(want), "id: %lld\n", v0 - 1);
    CHECK_CONTAINS(all, want);
    snprintf(want, sizeof(want), "id: %lld\n", v0 - 2);
    CHECK(strstr(all, want) == NULL);
    fx_exec(&f, "INSERT INTO todos (title) VALUES ('d')");
    snprintf(want, sizeof(want), "id: %lld\n", v0 + 1);
    CHECK(read_until(a, 1, want, all, sizeof(all), 5000));
    CHECK_CONTAINS(all, "\"action\":\"create\"");

    /* lifetime */
    b = adopt(l, h, v0 + 1, 2, 300);
    snprintf(want, sizeof(want), "event: bye\nid: %lld\ndata: {\"version\":%lld}\n\n", v0 + 1,
             v0 + 1);
    CHECK(read_until(b, 2, "event: bye", all, sizeof(all), 5000));
    CHECK_STR(all, want);
    check_end(b, 2, __LINE__);
    close(b);

    /* abort */
    c = adopt(l, h, v0 + 1, 3, 60000);
    CHECK_INT((int)write(c, abort_rec, sizeof(abort_rec)), (int)sizeof(abort_rec));
    check_end(c, 3, __LINE__);
    close(c);

    /* gone: a closes; only d (next) and nothing else stays */
    close(a);
    CHECK(wait_count(l, 0));
    CHECK_INT((long long)hub_streams(h), 0);

    test_slow(&f, l, h);
    CHECK(wait_count(l, 0));

    /* stop */
    v0 = head(&f);
    d = adopt(l, h, v0, 4, 60000);
    CHECK(wait_count(l, 1));
    hub_stop(h);
    snprintf(want, sizeof(want), "event: bye\nid: %lld\ndata: {\"version\":%lld}\n\n", v0, v0);
    CHECK(read_until(d, 4, "event: bye", all, sizeof(all), 5000));
    CHECK_STR(all, want);
    check_end(d, 4, __LINE__);
    streams_free(l);
    CHECK_INT((long long)hub_streams(h), 0);
    close(d);
    hub_free(h);
    fx_close(&f);
    return check_done("test-streams");
}
