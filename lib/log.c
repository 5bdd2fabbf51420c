/*
 * log: one line per call, "<program>: <message>", to stderr (see log.h).
 */
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The texts log_once() wrote, by FNV-1a hash: a collision costs at most a
 * line not written, never memory. */
static uint64_t once_seen[LOG_ONCE_MAX];
static int once_count;
static pthread_mutex_t once_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Format "<program>: <message>\n" into line; returns its length. The message
 * starts at *msg_at (for the once key, which leaves the prefix out). */
static size_t
format_line(char line[LOG_LINE_MAX + 2], size_t *msg_at, const char *fmt, va_list ap)
{
    int n = snprintf(line, LOG_LINE_MAX, "%s: ", program_invocation_short_name);
    if (n < 0 || n >= LOG_LINE_MAX)
        n = 0;
    *msg_at = (size_t)n;
    int m = vsnprintf(line + n, LOG_LINE_MAX - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len >= LOG_LINE_MAX) {
        len = LOG_LINE_MAX - 1;
        memcpy(line + len - 3, "...", 3);
    }
    while (len > (size_t)n && line[len - 1] == '\n')
        len--;
    line[len++] = '\n';
    line[len] = '\0';
    return len;
}

static void
write_line(const char *line, size_t len)
{
    int saved = errno;
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, line, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere to report that the log is gone */
        line += w;
        len -= (size_t)w;
    }
    errno = saved;
}

/* 1 if h was remembered before; remembers it otherwise (while there is room). */
static int
seen_before(uint64_t h)
{
    int seen = 0;
    pthread_mutex_lock(&once_lock);
    for (int i = 0; i < once_count && !seen; i++)
        seen = once_seen[i] == h;
    if (!seen && once_count < LOG_ONCE_MAX)
        once_seen[once_count++] = h;
    pthread_mutex_unlock(&once_lock);
    return seen;
}

/* Format and write one line; with once, not if its text was written before. */
static int
vlog(int once, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX + 2];
    size_t at, len = format_line(line, &at, fmt, ap);
    if (once && seen_before(fnv1a(line + at)))
        return 0;
    write_line(line, len);
    return 1;
}

void
log_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(0, fmt, ap);
    va_end(ap);
}

int
log_once(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int written = vlog(1, fmt, ap);
    va_end(ap);
    return written;
}

void
log_once_reset(void)
{
    pthread_mutex_lock(&once_lock);
    once_count = 0;
    pthread_mutex_unlock(&once_lock);
}
