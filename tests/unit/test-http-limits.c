/*
 * Request limits: http_req_check's length caps (query, path, URI, headers),
 * and http_read_body's answers to bad, truncated and stalled bodies, both
 * from a CGI stdin and from a FastCGI connection (a small hand-made FastCGI
 * client talks to a forked child that reads the body).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "buf.h"
#include "check.h"
#include "http.h"

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* http_req_check on the current environment. */
static int
check_env(struct err *e)
{
    struct http_req req;
    int rc;

    http_req_cgi(&req);
    err_clear(e);
    rc = http_req_check(&req, e);
    return rc;
}

static char *
repeat(int c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void
test_request_limits(void)
{
    struct err e;
    char *s;

    setenv("QUERY_STRING", "since=0", 1);
    setenv("PATH_INFO", "/todos", 1);
    setenv("REQUEST_URI", "/api/sync/todos?since=0", 1);
    setenv("HTTP_COOKIE", "a=b", 1);
    CHECK(check_env(&e) == 0);

    s = repeat('q', HTTP_MAX_QUERY);
    setenv("QUERY_STRING", s, 1);
    CHECK(check_env(&e) == 0);
    free(s);
    s = repeat('q', HTTP_MAX_QUERY + 1);
    setenv("QUERY_STRING", s, 1);
    CHECK(check_env(&e) == -1);
    CHECK_INT(e.status, 414);
    CHECK_STR(e.code, "bad_request");
    CHECK_STR(e.msg, "query string longer than 1024 bytes");
    free(s);
    setenv("QUERY_STRING", "", 1);

    s = repeat('p', HTTP_MAX_PATH + 1);
    setenv("PATH_INFO", s, 1);
    CHECK(check_env(&e) == -1);
    CHECK_INT(e.status, 414);
    CHECK_CONTAINS(e.msg, "path longer");
    free(s);
    setenv("PATH_INFO", "/todos", 1);

    s = repeat('u', HTTP_MAX_URI + 1);
    setenv("REQUEST_URI", s, 1);
    CHECK(check_env(&e) == -1);
    CHECK_INT(e.status, 414);
    CHECK_CONTAINS(e.msg, "request URI longer");
    free(s);
    unsetenv("REQUEST_URI");

    s = repeat('c', HTTP_MAX_HEADER);
    setenv("HTTP_COOKIE", s, 1);
    CHECK(check_env(&e) == 0);
    free(s);
    s = repeat('c', HTTP_MAX_HEADER + 1);
    setenv("HTTP_COOKIE", s, 1);
    CHECK(check_env(&e) == -1);
    CHECK_INT(e.status, 431);
    CHECK_CONTAINS(e.msg, "HTTP_COOKIE longer than 8192");
    unsetenv("HTTP_COOKIE");
    /* a name the server passed on with odd bytes is quoted, not echoed */
    setenv("HTTP_X\x1b\xc0", s, 1);
    CHECK(check_env(&e) == -1);
    CHECK_STR(e.msg, "request header HTTP_X?? longer than 8192 bytes");
    unsetenv("HTTP_X\x1b\xc0");
    free(s);

    /* Many headers, each within its limit, too many bytes in all. */
    {
        char name[32];
        int i;
        s = repeat('h', 8000);
        for (i = 0; i < 9; i++) {
            snprintf(name, sizeof(name), "HTTP_X_FILL_%d", i);
            setenv(name, s, 1);
        }
        CHECK(check_env(&e) == -1);
        CHECK_INT(e.status, 431);
        CHECK_CONTAINS(e.msg, "in all");
        for (i = 0; i < 9; i++) {
            snprintf(name, sizeof(name), "HTTP_X_FILL_%d", i);
            unsetenv(name);
        }
        free(s);
    }
    CHECK(check_env(&e) == 0);

    /* The same checks under FastCGI read the request's own variables. */
    {
        char *envp[] = {"QUERY_STRING=x", "HTTP_HOST=a", NULL, NULL};
        FCGX_Request r;
        struct http_req req;

        memset(&r, 0, sizeof(r));
        r.envp = envp;
        http_req_fcgx(&req, &r);
        CHECK(http_req_check(&req, &e) == 0);
        s = repeat('a', HTTP_MAX_HEADER + 20);
        memcpy(s, "HTTP_AUTHORIZATION=", 19);
        envp[2] = s;
        http_req_fcgx(&req, &r);
        CHECK(http_req_check(&req, &e) == -1);
        CHECK_INT(e.status, 431);
        CHECK_CONTAINS(e.msg, "HTTP_AUTHORIZATION");
        free(s);
    }
}

/*
 * http_read_body from a CGI stdin: a pipe fed with `sent` bytes, then closed
 * (close_after) or held open. Returns the status (200 when it read the body).
 */
static int
cgi_body(const char *content_length, const char *sent, int close_after, long max, double *took,
         struct err *e)
{
    struct http_req req;
    struct buf b = {0};
    int fds[2], saved = dup(0), rc;
    double t0;

    if (pipe(fds) < 0)
        return -1;
    if (write(fds[1], sent, strlen(sent)) < 0)
        return -1;
    if (close_after)
        close(fds[1]);
    dup2(fds[0], 0);
    close(fds[0]);
    if (content_length)
        setenv("CONTENT_LENGTH", content_length, 1);
    else
        unsetenv("CONTENT_LENGTH");
    http_req_cgi(&req);
    err_clear(e);
    t0 = now_s();
    rc = http_read_body(&req, max, &b, e);
    *took = now_s() - t0;
    if (rc == 0)
        CHECK_AT(__LINE__, b.len == strlen(sent) && memcmp(b.p, sent, b.len) == 0,
                 "body \"%s\"", b.p);
    if (!close_after)
        close(fds[1]);
    dup2(saved, 0);
    close(saved);
    buf_free(&b);
    buf_free(&req.headers);
    return rc == 0 ? 200 : e->status;
}

static void
test_cgi_body(void)
{
    struct err e;
    double took;

    http_body_timeouts(1, 3);
    CHECK_INT(cgi_body("5", "hello", 1, 100, &took, &e), 200);
    CHECK_INT(cgi_body("0", "", 1, 100, &took, &e), 200);
    CHECK_INT(cgi_body(NULL, "hello", 1, 100, &took, &e), 411);
    CHECK_INT(cgi_body("", "hello", 1, 100, &took, &e), 411);
    CHECK_INT(cgi_body("abc", "hello", 1, 100, &took, &e), 400);
    CHECK_INT(cgi_body("-5", "hello", 1, 100, &took, &e), 400);
    CHECK_INT(cgi_body("+5", "hello", 1, 100, &took, &e), 400);
    CHECK_INT(cgi_body(" 5", "hello", 1, 100, &took, &e), 400);
    CHECK_INT(cgi_body("5x", "hello", 1, 100, &took, &e), 400);
    CHECK_INT(cgi_body("99999999999999999999999", "hello", 1, 100, &took, &e), 400);
    CHECK_INT(cgi_body("101", "hello", 1, 100, &took, &e), 413);
    CHECK_STR(e.code, "too_large");

    /* Truncated: the client hung up after 5 of 10 bytes. */
    CHECK_INT(cgi_body("10", "hello", 1, 100, &took, &e), 400);
    CHECK_CONTAINS(e.msg, "ended after 5 of 10 bytes");
    CHECK(took < 1.0);

    /* Stalled: 5 of 10 bytes and then nothing, connection open. Cut off after ~1 s. */
    CHECK_INT(cgi_body("10", "hello", 0, 100, &took, &e), 408);
    CHECK_CONTAINS(e.msg, "too slow: 5 of 10 bytes");
    CHECK_AT(__LINE__, took >= 0.9 && took < 2.5, "took %.2f s", took);
    /* Nothing at all. */
    CHECK_INT(cgi_body("10", "", 0, 100, &took, &e), 408);
    CHECK_AT(__LINE__, took >= 0.9 && took < 2.5, "took %.2f s", took);
}

/* A slow drip: a child writes one byte every 300 ms; the body takes longer than
 * the first deadline, but each byte buys time only at HTTP_BODY_MIN_RATE, and the
 * total never exceeds the maximum. */
static void
test_cgi_drip(void)
{
    struct http_req req;
    struct buf b = {0};
    struct err e;
    int fds[2], saved = dup(0), rc;
    pid_t pid;
    double t0, took;

    http_body_timeouts(1, 2);
    if (pipe(fds) < 0)
        return;
    pid = fork();
    if (pid == 0) {
        int i;
        close(fds[0]);
        for (i = 0; i < 100; i++) {
            if (write(fds[1], "x", 1) < 0)
                break;
            usleep(300000);
        }
        _exit(0);
    }
    close(fds[1]);
    dup2(fds[0], 0);
    close(fds[0]);
    setenv("CONTENT_LENGTH", "100", 1);
    http_req_cgi(&req);
    t0 = now_s();
    rc = http_read_body(&req, 1000, &b, &e);
    took = now_s() - t0;
    CHECK(rc == -1);
    CHECK_INT(e.status, 408);
    CHECK_AT(__LINE__, took >= 0.9 && took < 2.5, "took %.2f s", took);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    dup2(saved, 0);
    close(saved);
    buf_free(&b);
}

/* ---- FastCGI ---- */

static void
fcgi_record(struct buf *b, int type, const void *content, size_t n)
{
    unsigned char h[8] = {1, (unsigned char)type, 0, 1, (unsigned char)(n >> 8),
                          (unsigned char)n, 0, 0};
    buf_add(b, (const char *)h, 8);
    if (n > 0)
        buf_add(b, content, n);
}

static void
fcgi_param(struct buf *p, const char *name, const char *value)
{
    unsigned char l[2] = {(unsigned char)strlen(name), (unsigned char)strlen(value)};
    buf_add(p, (const char *)l, 2);
    buf_adds(p, name);
    buf_adds(p, value);
}

/*
 * A FastCGI responder in a child reads a body declared as content_length
 * while the client sends `sent` and then either closes (close_after) or
 * stalls. Returns the status http_read_body answered with (200 on success),
 * -1 when the child did not answer within 10 s.
 */
static int
fcgi_body(const char *content_length, const char *sent, int close_after, double *took)
{
    struct sockaddr_un sa;
    struct buf out = {0}, params = {0};
    unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};
    int lfd, cfd, res[2], status = -1;
    pid_t pid;
    double t0;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "fcgi-test-%d.sock", (int)getpid());
    unlink(sa.sun_path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0 ||
        pipe(res) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        FCGX_Request r;
        struct http_req req;
        struct buf b = {0};
        struct err e;
        int st;
        close(res[0]);
        http_body_timeouts(1, 3);
        if (FCGX_Init() != 0 || FCGX_InitRequest(&r, lfd, 0) != 0 || FCGX_Accept_r(&r) < 0)
            _exit(2);
        http_req_fcgx(&req, &r);
        st = http_read_body(&req, 1000, &b, &e) == 0 ? 200 : e.status;
        if (write(res[1], &st, sizeof(st)) < 0)
            _exit(3);
        buf_free(&b);
        FCGX_Finish_r(&r);
        FCGX_Free(&r, 1);
        _exit(0);
    }
    close(res[1]);
    cfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        goto out;
    fcgi_record(&out, 1, begin, 8);
    fcgi_param(&params, "REQUEST_METHOD", "POST");
    fcgi_param(&params, "CONTENT_LENGTH", content_length);
    fcgi_record(&out, 4, params.p, params.len);
    fcgi_record(&out, 4, NULL, 0);
    if (*sent)
        fcgi_record(&out, 5, sent, strlen(sent));
    if (close_after && strlen(sent) == (size_t)atoi(content_length))
        fcgi_record(&out, 5, NULL, 0);
    t0 = now_s();
    if (write(cfd, out.p, out.len) < 0)
        goto out;
    if (close_after)
        shutdown(cfd, SHUT_WR);
    {
        struct pollfd pfd = {res[0], POLLIN, 0};
        if (poll(&pfd, 1, 10000) == 1 && read(res[0], &status, sizeof(status)) != sizeof(status))
            status = -1;
    }
    *took = now_s() - t0;
out:
    close(cfd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(res[0]);
    close(lfd);
    unlink(sa.sun_path);
    buf_free(&out);
    buf_free(&params);
    return status;
}

static void
test_fcgi_body(void)
{
    double took = 0;

    CHECK_INT(fcgi_body("5", "hello", 1, &took), 200);
    CHECK_INT(fcgi_body("10", "hello", 1, &took), 400);
    /* The web server stalls mid-body: cut off after ~1 s, not held forever. */
    CHECK_INT(fcgi_body("10", "hello", 0, &took), 408);
    CHECK_AT(__LINE__, took >= 0.9 && took < 2.5, "took %.2f s", took);
    CHECK_INT(fcgi_body("10", "", 0, &took), 408);
    CHECK_AT(__LINE__, took >= 0.9 && took < 2.5, "took %.2f s", took);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_request_limits();
    test_cgi_body();
    test_cgi_drip();
    test_fcgi_body();
    return check_done("test-http-limits");
}
