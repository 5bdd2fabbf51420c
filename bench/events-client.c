/*
 * events-client: N Server-Sent Events streams on one epoll loop, timing each
 * event's arrival, for bench/events.mjs.
 *
 *   events-client HOST PORT PATH N
 *
 * Opens N connections to http://HOST:PORT/PATH, and prints
 *   ready                  once every stream has sent its opening comment
 *   got V                  once all N streams have received the event with id V
 *   r V NS                 (at the end, when stdin closes) every receipt: version and
 *                          CLOCK_MONOTONIC time in nanoseconds
 *
 *   events-client HOST PORT PATH N burst
 *
 * Opens N connections at once instead (non-blocking connects, each request sent
 * as soon as its connection is up), reads each answer's head, closes it, and
 * prints one line:
 *   burst N MS ok=A busy=B busy_json=C retry_after=D other=E failed=F
 * MS: from the first connect to the last answer's head; busy_json: 503s with a
 * JSON body type; retry_after: 503s with a Retry-After; other: any other status
 * (lighttpd's HTML 500 when it cannot reach the backend); failed: no answer.
 *
 * With EVENTS_CLIENT_TOKENS naming a file of tokens, one a line, stream i sends
 * "Authorization: Bearer" with token i modulo their number (the scoped benchmark:
 * many users, each with several streams).
 *
 * A node client spends about 20 us of CPU per event received; on a two-core machine
 * that shares the CPU with lighttpd and sync-events it would be a large part of the
 * measured latency. This loop costs a few microseconds per event.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    int ready;
    size_t len;
    char buf[8192];
};

struct receipt {
    long long version, ns;
};

static struct receipt *receipts;
static size_t nreceipts, capreceipts;
static long long *counts; /* per version seen so far, indexed by version - base */
static long long base = -1;
static size_t ncounts;

static long long
now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void
record(long long v, long long ns, int n)
{
    if (nreceipts == capreceipts) {
        capreceipts = capreceipts ? capreceipts * 2 : 65536;
        receipts = realloc(receipts, capreceipts * sizeof(*receipts));
        if (receipts == NULL)
            abort();
    }
    receipts[nreceipts].version = v;
    receipts[nreceipts++].ns = ns;
    if (base < 0)
        base = v;
    if (v < base)
        return;
    if ((size_t)(v - base) >= ncounts) {
        size_t old = ncounts;
        ncounts = (size_t)(v - base) + 1024;
        counts = realloc(counts, ncounts * sizeof(*counts));
        if (counts == NULL)
            abort();
        memset(counts + old, 0, (ncounts - old) * sizeof(*counts));
    }
    if (++counts[v - base] == n) {
        printf("got %lld\n", v);
        fflush(stdout);
    }
}

/* One connection of a burst: its answer's head, then classified. */
struct bconn {
    int fd, sent, done;
    size_t len;
    char head[2048];
};

static int
burst(const struct sockaddr_in *sa, const char *req, int n)
{
    struct bconn *c = calloc((size_t)n, sizeof(*c));
    struct epoll_event ev, evs[256];
    int ep = epoll_create1(0), i, left = n, ok = 0, busy = 0, json = 0, retry = 0, other = 0,
        failed = 0;
    long long t0 = now_ns(), t1 = t0;

    if (c == NULL || ep < 0)
        return 1;
    for (i = 0; i < n; i++) {
        c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c[i].fd < 0 || (connect(c[i].fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 &&
                            errno != EINPROGRESS)) {
            perror("connect");
            return 1;
        }
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u64 = (uint64_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
    }
    while (left > 0) {
        int k = epoll_wait(ep, evs, 256, 30000), j;
        if (k <= 0)
            break; /* 30 s without any answer: the rest failed */
        for (j = 0; j < k; j++) {
            struct bconn *b = &c[evs[j].data.u64];
            ssize_t r;
            if (b->done)
                continue;
            if (!b->sent && (evs[j].events & EPOLLOUT)) {
                if (write(b->fd, req, strlen(req)) != (ssize_t)strlen(req)) {
                    b->done = 1;
                    failed++;
                    left--;
                    close(b->fd);
                    continue;
                }
                b->sent = 1;
                ev.events = EPOLLIN;
                ev.data.u64 = evs[j].data.u64;
                epoll_ctl(ep, EPOLL_CTL_MOD, b->fd, &ev);
            }
            if (!(evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            r = read(b->fd, b->head + b->len, sizeof(b->head) - 1 - b->len);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r > 0) {
                b->len += (size_t)r;
                b->head[b->len] = '\0';
                if (strstr(b->head, "\r\n\r\n") == NULL && b->len < sizeof(b->head) - 1)
                    continue;
            }
            b->done = 1;
            left--;
            t1 = now_ns();
            if (strncmp(b->head, "HTTP/1.1 200", 12) == 0) {
                ok++;
            } else if (strncmp(b->head, "HTTP/1.1 503", 12) == 0) {
                busy++;
                json += strstr(b->head, "Content-Type: application/json") != NULL;
                retry += strstr(b->head, "Retry-After: ") != NULL;
            } else if (b->len > 0) {
                if (other++ == 0) {
                    char *eol = strstr(b->head, "\r\n");
                    if (eol != NULL)
                        *eol = '\0';
                    fprintf(stderr, "events-client: burst: first other answer: %.80s\n", b->head);
                }
            } else {
                failed++;
            }
            close(b->fd);
        }
    }
    failed += left;
    printf("burst %d %.0f ok=%d busy=%d busy_json=%d retry_after=%d other=%d failed=%d\n", n,
           (double)(t1 - t0) / 1e6, ok, busy, json, retry, other, failed);
    fflush(stdout);
    return 0;
}

/* The lines of file path (new strings) into *out; their number (0 without a file). */
static int
read_tokens(const char *path, char ***out)
{
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    char line[4096];
    int n = 0;

    *out = NULL;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        *out = realloc(*out, (size_t)(n + 1) * sizeof(**out));
        (*out)[n++] = strdup(line);
    }
    fclose(f);
    return n;
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa;
    struct epoll_event ev, evs[256];
    struct conn *conns;
    char req[8192], **tokens = NULL;
    int n, i, ep, ready = 0, open_ = 0, ntokens;

    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "burst") == 0)) {
        fprintf(stderr, "usage: events-client HOST PORT PATH N [burst]\n");
        return 2;
    }
    n = atoi(argv[4]);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || n <= 0)
        return 2;
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n",
             argv[3], argv[1]);
    if (argc == 6)
        return burst(&sa, req, n);
    conns = calloc((size_t)n, sizeof(*conns));
    ep = epoll_create1(0);
    if (conns == NULL || ep < 0)
        return 1;
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)-1;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev); /* stdin closing ends the run */

    ntokens = read_tokens(getenv("EVENTS_CLIENT_TOKENS"), &tokens);
    for (i = 0; i < n; i++) {
        int one = 1;
        if (ntokens > 0)
            snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                     "Authorization: Bearer %s\r\n\r\n",
                     argv[3], argv[1], tokens[i % ntokens]);
        conns[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (conns[i].fd < 0 || connect(conns[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            write(conns[i].fd, req, strlen(req)) != (ssize_t)strlen(req)) {
            perror("connect");
            return 1;
        }
        setsockopt(conns[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(conns[i].fd, F_SETFL, O_NONBLOCK);
        ev.events = EPOLLIN;
        ev.data.u64 = (uint64_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
        open_++;
    }

    for (;;) {
        int k = epoll_wait(ep, evs, 256, -1), j;
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            break;
        for (j = 0; j < k; j++) {
            struct conn *c;
            ssize_t r;
            long long t;
            char *p, *nl;

            if (evs[j].data.u64 == (uint64_t)-1) {
                char tmp[64];
                if (read(0, tmp, sizeof(tmp)) <= 0)
                    goto done;
                continue;
            }
            c = &conns[evs[j].data.u64];
            r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
            t = now_ns();
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                fprintf(stderr, "events-client: a stream ended\n");
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                open_--;
                continue;
            }
            c->len += (size_t)r;
            c->buf[c->len] = '\0';
            p = c->buf;
            while ((nl = strchr(p, '\n')) != NULL) {
                *nl = '\0';
                if (strncmp(p, "id: ", 4) == 0)
                    record(atoll(p + 4), t, n);
                else if (!c->ready && strncmp(p, ": rhtmx-sync", 12) == 0) {
                    c->ready = 1;
                    if (++ready == n) {
                        printf("ready\n");
                        fflush(stdout);
                    }
                }
                p = nl + 1;
            }
            c->len = strlen(p);
            memmove(c->buf, p, c->len);
        }
    }
done:
    for (size_t x = 0; x < nreceipts; x++)
        printf("r %lld %lld\n", receipts[x].version, receipts[x].ns);
    fflush(stdout);
    for (i = 0; i < n; i++)
        close(conns[i].fd);
    free(conns);
    free(receipts);
    free(counts);
    for (i = 0; i < ntokens; i++)
        free(tokens[i]);
    free(tokens);
    (void)open_;
    return 0;
}
