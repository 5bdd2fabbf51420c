/*
 * log: the one way the programs write to the web server's error log.
 *
 * Every line is "<program>: <message>\n" (the program being sync-pull,
 * sync-push, sync-events, client-js or rhtmx-sync), written with one write(2)
 * so lines from a pool's threads never interleave. A long-lived FastCGI
 * process would repeat a persistent problem (a bad configuration, a
 * read-only database) on every request; log_once() writes such a line the
 * first time only, keyed by its text, for the life of the process.
 *
 * These lines are for operators. What reaches a client is the error
 * responder's business (http.h), never the log text.
 */
#ifndef RHTMX_LOG_H
#define RHTMX_LOG_H

/* Write one line. A message longer than LOG_LINE_MAX bytes is cut ("..."). */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* As log_msg(), unless a line with the same text was written by log_once()
 * before in this process. Returns 1 if the line was written, 0 if not.
 * Remembers up to LOG_ONCE_MAX distinct lines; beyond that it writes them. */
int log_once(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Forget every line log_once() remembered: the next occurrence is written
 * again (for example once a problem was fixed and came back). */
void log_once_reset(void);

#define LOG_LINE_MAX 1024
#define LOG_ONCE_MAX 64

#endif
