/* The error log: one prefixed line per call, log_once() writes a text once, long lines cut. */
#include <fcntl.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

/* Everything written to stderr while f ran, up to cap-1 bytes. */
static size_t
capture(void (*f)(void), char *out, size_t cap)
{
    int fds[2], saved = dup(STDERR_FILENO);
    size_t n = 0;
    if (pipe(fds) != 0 || saved < 0)
        return 0;
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    f();
    dup2(saved, STDERR_FILENO);
    close(saved);
    for (ssize_t r; n + 1 < cap && (r = read(fds[0], out + n, cap - 1 - n)) > 0;)
        n += (size_t)r;
    close(fds[0]);
    out[n] = '\0';
    return n;
}

static void
two_lines(void)
{
    log_msg("pull of %s failed", "todos");
    log_msg("trailing newline is not doubled\n");
}

static void
once_each(void)
{
    CHECK_INT(log_once("config: %s", "bad key"), 1); /* the first time: written */
    CHECK_INT(log_once("config: %s", "bad key"), 0); /* the same text again: not */
    CHECK_INT(log_once("config: other"), 1);
    log_once_reset();
    CHECK_INT(log_once("config: bad key"), 1); /* after a reset: written again */
}

static void
long_line(void)
{
    char big[3 * LOG_LINE_MAX];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_msg("%s", big);
}

int
main(void)
{
    char out[4 * LOG_LINE_MAX];

    capture(two_lines, out, sizeof out);
    CHECK_STR(out, "test-log: pull of todos failed\n"
                   "test-log: trailing newline is not doubled\n");

    capture(once_each, out, sizeof out);
    CHECK_STR(out, "test-log: config: bad key\ntest-log: config: other\n"
                   "test-log: config: bad key\n");

    size_t n = capture(long_line, out, sizeof out);
    /* a long line is cut to LOG_LINE_MAX bytes, ending "...\n" */
    CHECK_INT(n, LOG_LINE_MAX);
    CHECK(n > 4 && strcmp(out + n - 4, "...\n") == 0);
    return check_done("test-log");
}
