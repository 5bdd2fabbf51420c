/*
 * The error answer's headers, as a CGI program writes them: a 503 always says
 * Retry-After (once: the caller's, else the default), and an answer carries
 * one Cache-Control even when the handler queued its own before it failed.
 * Each case runs in a child whose stdout is a pipe, and reads what it wrote.
 */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "http.h"

/* The CGI output of one error answer with the given headers queued first. */
static void
answer(int status, const char *code, const char *const *queued, char *out, size_t outlen)
{
    int fds[2];
    pid_t pid;
    size_t n = 0;
    ssize_t k;

    if (pipe(fds) != 0)
        exit(2);
    pid = fork();
    if (pid == 0) {
        struct http_req req;
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("REQUEST_METHOD", "GET", 1);
        http_req_cgi(&req);
        for (; queued != NULL && queued[0] != NULL; queued += 2)
            http_header(&req, queued[0], queued[1]);
        http_fail(&req, status, code, "refused");
        http_req_end(&req);
        fflush(stdout);
        _exit(0);
    }
    close(fds[1]);
    while (n + 1 < outlen && (k = read(fds[0], out + n, outlen - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(fds[0]);
    waitpid(pid, NULL, 0);
}

/* How many times "\r\nName: value\r\n" (or at the start) appears. */
static int
count(const char *text, const char *line)
{
    int n = 0;
    size_t len = strlen(line);
    const char *p = text;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && strncmp(p + len, "\r\n", 2) == 0)
            n++;
        p += len;
    }
    return n;
}

int
main(void)
{
    char out[4096];
    static const char *const own_retry[] = {"Retry-After", "7", NULL};
    static const char *const own_cache[] = {"Cache-Control", "no-cache", NULL};

    answer(503, "busy", NULL, out, sizeof(out));
    CHECK_CONTAINS(out, "Status: 503 ");
    CHECK_INT(count(out, "Retry-After: 1"), 1);

    answer(503, "busy", (const char *const *)own_retry, out, sizeof(out));
    CHECK_INT(count(out, "Retry-After: 7"), 1);
    CHECK(strstr(out, "Retry-After: 1") == NULL);

    answer(404, "not_found", NULL, out, sizeof(out));
    CHECK(strstr(out, "Retry-After") == NULL);
    CHECK_INT(count(out, "Cache-Control: no-store"), 1);

    answer(410, "resync_required", (const char *const *)own_cache, out, sizeof(out));
    CHECK_INT(count(out, "Cache-Control: no-cache"), 1);
    CHECK(strstr(out, "no-store") == NULL);
    CHECK_CONTAINS(out, "\"version\":0");
    return check_done("test-http-answers");
}
