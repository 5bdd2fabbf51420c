/*
 * err: the one error convention of lib/.
 *
 * A function that can fail returns 0 on success and -1 on failure, and fills a
 * caller-provided struct err with the HTTP status the failure maps to, a stable
 * machine-readable code (the "code" of the wire error shape) and a human message.
 * Messages meant for operators (file names, SQLite's words) go into msg; the
 * responder decides what of it reaches a client.
 */
#ifndef RHTMX_ERR_H
#define RHTMX_ERR_H

struct err {
    int status;       /* HTTP status: 400, 404, 500, ... */
    const char *code; /* static string: "bad_request", "config", ... */
    char msg[512];
    long long version; /* for 410 resync_required: the head to resume from; else 0 */
};

/* Fill e (which may be NULL) and return -1, so callers can `return err_set(...)`. */
int err_set(struct err *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Room for a quoted client text: 64 bytes of it, "..." and the NUL. */
#define ERR_QUOTED 68

/*
 * Client text made safe to put in a message (which reaches the client and the
 * log): the bytes of text that are printable ASCII or valid UTF-8 characters,
 * each other byte (a control character, a byte that is not UTF-8) as '?',
 * cut at a character boundary with "..." when more than 64 bytes. Never the
 * raw input bytes. out has ERR_QUOTED bytes; returns out. text may be NULL.
 */
const char *err_quote(char out[ERR_QUOTED], const char *text);

/* Reset e to "no error". */
void err_clear(struct err *e);

#endif
