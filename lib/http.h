/*
 * http: one request, as CGI or FastCGI, and the one way to answer it.
 *
 * Every executable runs under both interfaces, decided at start-up: under plain
 * CGI the request is the process environment, stdin and stdout, and the process
 * ends after one answer; under FastCGI (FCGX_IsCGI() false) the same handler is
 * called for every accepted request (runtime.h). Handlers only see struct
 * http_req, whose input the edge parsed once (struct http_in).
 *
 * Answers: http_header() queues headers, http_body() returns a sink whose first
 * write emits the status line and headers, so a handler can still turn into an
 * error answer as long as it has not written a byte. http_error() writes the
 * one error shape of the wire contract and logs server-side failures (log.h).
 *
 * The layer's files, one role each: http_request.c (the edge: variables,
 * path, query), http_answer.c (headers, body sink, end), http_output.c (bytes
 * to the web server, FastCGI records), http_gzip.c, http_error.c (status
 * table, error responder), http_limits.c (sizes, request body, deadlines).
 */
#ifndef RHTMX_HTTP_H
#define RHTMX_HTTP_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

struct FCGX_Request;

/*
 * The request's input, read once at the edge (http_req_cgi, http_req_fcgx):
 * every request variable and header the product uses. Nothing below the http
 * layer reads the environment or libfcgi's parameters. Strings are borrowed
 * (the environment, or libfcgi's copy of the request) and stay valid until
 * http_req_end(); a header the client did not send is NULL.
 */
struct http_in {
    const char *request_uri;     /* REQUEST_URI */
    const char *script_name;     /* SCRIPT_NAME, for log lines */
    const char *content_type;    /* Content-Type */
    const char *content_length;  /* Content-Length, as sent (http_read_body checks it) */
    const char *accept_encoding; /* Accept-Encoding */
    const char *authorization;   /* Authorization */
    const char *cookie;          /* Cookie */
    const char *origin;          /* Origin */
    const char *referer;         /* Referer */
    const char *host;            /* Host */
    const char *if_none_match;   /* If-None-Match */
    const char *last_event_id;   /* Last-Event-ID */
    const char *cors_method;     /* Access-Control-Request-Method */
    const char *server_software; /* SERVER_SOFTWARE: which web server runs us */
    const char *streaming;       /* RHTMX_SYNC_STREAMING as the web server set it (hints.h) */
    const char *sw_switch;       /* RHTMX_SYNC_SW as the web server set it (client_js_endpoint.h) */
    size_t headers_len;          /* bytes of every header value together */
    const char *long_header;     /* the first "HTTP_NAME=value" over HTTP_MAX_HEADER, or NULL */
};

struct http_req {
    struct FCGX_Request *fcgx; /* NULL under plain CGI */
    const char *method;        /* never NULL ("" when unset) */
    const char *path_info;     /* never NULL */
    const char *query;         /* never NULL */
    struct http_in in;         /* the rest of the input */
    int status;                /* of the answer under way */
    const char *content_type;  /* of the answer under way (static string) */
    int headers_sent;
    int failed;         /* the peer is gone: writes are dropped */
    struct buf headers; /* queued "Name: value\r\n" lines */
    size_t body_bytes;  /* written so far */
    void *gz;           /* gzip state while the body is compressed */
    int gz_pending;     /* http_gzip_over(): deciding, body held in gz_held */
    size_t gz_min;      /* ... until it is longer than this */
    struct buf gz_held;
    struct buf out;      /* FastCGI: answer bytes gathered for big records */
    size_t out_head_end; /* ... where the headers' blank line starts in out */
    int out_sent;        /* ... some of it has left (no Content-Length then) */
    int head;            /* a HEAD request: the body is measured, never sent */
    size_t head_bytes;   /* ... the bytes a GET would have sent after the headers */
    int body_read;       /* http_read_body() was called */
    int aborted;         /* the answer broke off: it must not look complete */
    size_t cgi_out;      /* CGI: bytes handed to stdout */
};

/* Make req describe the current CGI environment / an accepted FastCGI request.
 * Borrowed pointers inside stay valid until http_req_end(). */
void http_req_cgi(struct http_req *req);
void http_req_fcgx(struct http_req *req, struct FCGX_Request *r);
/* Finish the answer (emit headers if nothing was written, flush) and release. */
void http_req_end(struct http_req *req);
/* The same, but req->out and req->headers stay allocated, for the caller to
 * reuse (runtime.h). */
void http_req_finish(struct http_req *req);

/* The first PATH_INFO segment ("/todos" -> "todos"), or, without PATH_INFO,
 * the last path segment of REQUEST_URI. Written to out (NUL-terminated);
 * returns 0, or -1 when it is missing or longer than outlen-1. */
int http_path_segment(const struct http_req *req, char *out, size_t outlen);

/* Queue a header for the answer. Ignored once headers are sent. Queued
 * headers also go out with an error answer (Allow, Retry-After, ...), so queue
 * body-specific ones (ETag) only once the body is certain. */
void http_header(struct http_req *req, const char *name, const char *value);

/* Start the body with status and content type; the returned sink writes body
 * bytes (the headers go out before the first one). */
struct sink http_body(struct http_req *req, int status, const char *content_type);

/* 1 if the client's Accept-Encoding takes gzip (and does not refuse it with q=0). */
int http_accepts_gzip(const struct http_req *req);

/* Compress the body with gzip when the client accepts it, but only a body
 * longer than min_bytes: the first min_bytes are
 * held back (headers too) until the body outgrows them, then everything is
 * compressed; a body that ends (or is flushed) within them goes out as it is.
 * Vary: Accept-Encoding either way. Returns 1 if gzip may be used. */
int http_gzip_over(struct http_req *req, size_t min_bytes);

/* Write the body now and push it to the client (long-lived streams). -1 when
 * the peer is gone. */
int http_flush(struct http_req *req);

/* Answer with the error shape {"error":{"code":...,"message":...}} and e's
 * status: the one error responder. 5xx details go to the error log (log.h;
 * a "config" one once while it lasts) and the client gets a fixed sentence
 * for the kind (busy, configuration, server error), never the operator's text;
 * 4xx messages go to the client as they are. A 503 always carries
 * Retry-After: the one the caller queued, else HTTP_RETRY_AFTER seconds.
 * Cache-Control: no-store unless the caller queued a Cache-Control. If the
 * body had already started but nothing of it has left the process yet (it is
 * all in our buffers, or stdio's), it is dropped and the error answered
 * instead; if some of it has left, the error is logged and the answer is cut
 * off (http_abort): a client must never take the start of an answer for the
 * whole of it. */
#define HTTP_RETRY_AFTER "1"
void http_error(struct http_req *req, const struct err *e);

/*
 * Break off an answer whose body has started: nothing more of it is written,
 * and it ends so that no client can take it for complete. Under FastCGI the
 * connection to the web server is shut down without the request's end record,
 * so the web server aborts the response it relays (or, if nothing reached it
 * yet, answers with its own 5xx); under CGI what stdio still holds is dropped
 * and the program ends, so the body stops short of its end.
 */
void http_abort(struct http_req *req);

/* The same from arguments. */
void http_fail(struct http_req *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The reason phrase for status ("Not Found"). */
const char *http_reason(int status);

/*
 * Read the request body into out: at most max bytes, declared by
 * CONTENT_LENGTH. 411/413/400 errors in e. Under FastCGI the web server has
 * the body; under CGI it is stdin.
 *
 * A body that arrives too slowly is cut off with 408: the reader allows
 * HTTP_BODY_FIRST_S seconds, one more per HTTP_BODY_MIN_RATE bytes received
 * (the rule of Apache's mod_reqtimeout), and never more than HTTP_BODY_MAX_S
 * in all. Waiting uses poll() on stdin under CGI and a socket receive timeout
 * under FastCGI (no signals, so it is safe in threaded programs). A body that
 * ends early is a 400.
 */
int http_read_body(struct http_req *req, long max, struct buf *out, struct err *e);

#define HTTP_BODY_FIRST_S 20
#define HTTP_BODY_MIN_RATE 500
#define HTTP_BODY_MAX_S 300
/* Change the two times above for this process (tests). */
void http_body_timeouts(unsigned first_s, unsigned max_s);

/*
 * Limits every request must meet before a handler sees it (runtime.h checks
 * them before any handler runs): query
 * string, PATH_INFO and REQUEST_URI lengths (414), each request header and
 * all of them together (431). Web servers have their own, usually larger,
 * limits (Apache LimitRequestFieldSize 8190, lighttpd 64 KB for all headers).
 */
#define HTTP_MAX_QUERY 1024
#define HTTP_MAX_PATH 1024
#define HTTP_MAX_URI 4096
#define HTTP_MAX_HEADER 8192
#define HTTP_MAX_HEADERS 65536
int http_req_check(const struct http_req *req, struct err *e);

/* Query parameters, declared: name, bounds, default. */
enum http_param_kind { HTTP_INT, HTTP_TEXT };
struct http_param {
    const char *name;
    long long min, max, def;   /* HTTP_INT: bounds, and the value when absent */
    enum http_param_kind kind; /* HTTP_INT unless set */
    const char *const *one_of; /* HTTP_TEXT: the values allowed (NULL-ended), or NULL: any */
};
#define HTTP_TEXT_MAX 1024
struct http_value {
    int given;                /* the parameter was in the query */
    long long n;              /* HTTP_INT: the value, or def */
    char text[HTTP_TEXT_MAX]; /* HTTP_TEXT: percent-decoded; "" when absent */
};
/*
 * Every parameter of a program's declared table (specs, n of them) from the
 * query, checked, into values[] (n of them). Unknown parameters are ignored
 * (cache busters are common); a declared one that is repeated, malformed,
 * too long, out of bounds or not one of one_of is a 400 naming it. 0, or -1
 * with e set.
 */
int http_query(const struct http_req *req, const struct http_param *specs, size_t n,
               struct http_value *values, struct err *e);
/* Parse the integer parameters of specs (n of them) from the query into
 * values[]. Unknown parameters are ignored (cache busters are common); a
 * declared one that is repeated, not a decimal integer, or out of bounds is a
 * 400 naming it. */
int http_query_ints(const struct http_req *req, const struct http_param *specs, size_t n,
                    long long *values, struct err *e);
/* A query parameter's percent-decoded value into out; 1 if found, 0 if absent,
 * -1 (e set, 400) if malformed, repeated or too long. */
int http_query_str(const struct http_req *req, const char *name, char *out, size_t outlen,
                   struct err *e);

/* What serves one request (runtime.h runs it). */
typedef void (*http_handler)(struct http_req *req, void *ctx);

/* 1 under plain CGI. */
int http_is_cgi(void);

#endif
