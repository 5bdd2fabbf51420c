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

int
main(int argc, char **argv)
{
    struct sockaddr_in sa;
    struct epoll_event ev, evs[256];
    struct conn *conns;
    char req[512];
    int n, i, ep, ready = 0, open_ = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: events-client HOST PORT PATH N\n");
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
    conns = calloc((size_t)n, sizeof(*conns));
    ep = epoll_create1(0);
    if (conns == NULL || ep < 0)
        return 1;
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)-1;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev); /* stdin closing ends the run */

    for (i = 0; i < n; i++) {
        int one = 1;
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
    (void)open_;
    return 0;
}
