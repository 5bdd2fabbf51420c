/*
 * http_limits: what a request may send and how long it may take: the sizes
 * http_req_check allows (414, 431) and the request body http_read_body takes
 * (411, 413, 400), with its read deadlines (408); under CGI, the body a
 * handler left unread is drained so Apache's mod_cgid sees the answer.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "http.h"
#include "http_int.h"

static unsigned body_first_s = HTTP_BODY_FIRST_S, body_max_s = HTTP_BODY_MAX_S;

void
http_body_timeouts(unsigned first_s, unsigned max_s)
{
    body_first_s = first_s;
    body_max_s = max_s;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Up to n body bytes from stdin, waiting until deadline (ms). Bytes read, 0 at
 * the end of input, -1 on error, -2 when the deadline passed. */
static long
cgi_read(char *p, size_t n, long long deadline)
{
    for (;;) {
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        long long left = deadline - now_ms();
        ssize_t k;
        int r;

        if (left <= 0)
            return -2;
        r = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        k = read(STDIN_FILENO, p, n);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return (long)k;
    }
}

/* The same from the FastCGI stream: each blocking read of the socket is bounded
 * by a receive timeout, so a stalled web server cannot hold the process. */
static long
fcgx_read(struct http_req *req, char *p, size_t n, long long deadline)
{
    long long left = deadline - now_ms();
    struct timeval tv;
    int k, err;

    if (left <= 0)
        return -2;
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
    if (req->fcgx->ipcFd >= 0)
        setsockopt(req->fcgx->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    k = FCGX_GetStr(p, (int)n, req->fcgx->in);
    if (k > 0)
        return k;
    err = FCGX_GetError(req->fcgx->in);
    if (err == EAGAIN || err == EWOULDBLOCK || now_ms() >= deadline)
        return -2;
    return err != 0 ? -1 : 0;
}

/*
 * Under CGI, an answer given without reading the body (405, 415, 413, 401...)
 * must still take the body off stdin: Apache's mod_cgid writes the whole body
 * to the program before it reads the answer, and a program that exits first
 * makes it abort the answer. Up to 8 MiB, within the usual deadline.
 */
void
http_cgi_drain_body(struct http_req *req)
{
    const char *cl = req->in.content_length;
    long long len = cl != NULL ? strtoll(cl, NULL, 10) : 0, start = now_ms();
    char chunk[16384];

    if (len > 8LL << 20)
        len = 8LL << 20;
    while (len > 0) {
        long n = cgi_read(chunk,
                          (size_t)(len < (long long)sizeof(chunk) ? len : (long long)sizeof(chunk)),
                          start + (long long)body_first_s * 1000);
        if (n <= 0)
            break;
        len -= n;
    }
}

int
http_read_body(struct http_req *req, long max, struct buf *out, struct err *e)
{
    const char *cl = req->in.content_length;
    char *end;
    long long len, start, deadline;
    size_t got = 0;
    int rc = -1;

    req->body_read = 1;
    if (cl == NULL || *cl == '\0')
        return err_set(e, 411, "bad_request", "a Content-Length is required");
    errno = 0;
    len = strtoll(cl, &end, 10);
    if (*end != '\0' || errno != 0 || len < 0 || cl[0] < '0' || cl[0] > '9')
        return err_set(e, 400, "bad_request", "invalid Content-Length");
    if (len > max)
        return err_set(e, 413, "too_large", "request body of %lld bytes is over the limit of %ld",
                       len, max);
    buf_reset(out);
    buf_add(out, "", 0);
    start = now_ms();
    deadline = start + (long long)body_first_s * 1000;
    while (got < (size_t)len) {
        char chunk[16384];
        size_t want = (size_t)len - got < sizeof(chunk) ? (size_t)len - got : sizeof(chunk);
        long n;

        if (deadline > start + (long long)body_max_s * 1000)
            deadline = start + (long long)body_max_s * 1000;
        n = req->fcgx != NULL ? fcgx_read(req, chunk, want, deadline)
                              : cgi_read(chunk, want, deadline);
        if (n == -2) {
            err_set(e, 408, "bad_request",
                    "request body too slow: %zu of %lld bytes after %lld seconds", got, len,
                    (now_ms() - start + 500) / 1000);
            goto out;
        }
        if (n <= 0) {
            err_set(e, 400, "bad_request", "request body ended after %zu of %lld bytes", got, len);
            goto out;
        }
        buf_add(out, chunk, (size_t)n);
        got += (size_t)n;
        deadline += (long long)n * 1000 / HTTP_BODY_MIN_RATE;
    }
    rc = 0;
out:
    if (req->fcgx != NULL && req->fcgx->ipcFd >= 0) {
        struct timeval none = {0, 0};
        setsockopt(req->fcgx->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    }
    return rc;
}

/* One limit of http_req_check: 0, or -1 with e set. */
static int
check_len(const char *v, size_t max, int status, const char *what, struct err *e)
{
    if (v != NULL && strlen(v) > max)
        return err_set(e, status, "bad_request", "%s longer than %zu bytes", what, max);
    return 0;
}

int
http_req_check(const struct http_req *req, struct err *e)
{
    if (check_len(req->query, HTTP_MAX_QUERY, 414, "query string", e) < 0 ||
        check_len(req->path_info, HTTP_MAX_PATH, 414, "path", e) < 0 ||
        check_len(req->in.request_uri, HTTP_MAX_URI, 414, "request URI", e) < 0)
        return -1;
    if (req->in.long_header != NULL) {
        const char *v = req->in.long_header, *eq = strchr(v, '=');
        char name[ERR_QUOTED], q[ERR_QUOTED];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - v > 65 ? 65 : eq - v), v);
        return err_set(e, 431, "bad_request", "request header %s longer than %d bytes",
                       err_quote(q, name), HTTP_MAX_HEADER);
    }
    if (req->in.headers_len > HTTP_MAX_HEADERS)
        return err_set(e, 431, "bad_request", "request headers longer than %d bytes in all",
                       HTTP_MAX_HEADERS);
    return 0;
}
