/*
 * http_int: what the files of the http layer share, and nothing else uses
 * (http_answer, http_output, http_gzip, http_error, http_limits). Every
 * function follows http.h: req is the request under way.
 */
#ifndef RHTMX_HTTP_INT_H
#define RHTMX_HTTP_INT_H

#include <stddef.h>

#include "http.h"

/* http_output.c: raw bytes to the web server (CGI: stdout; FastCGI: gathered
 * in req->out). 0, or -1 once the peer is gone (req->failed). */
int http_out_write(struct http_req *req, const char *p, size_t n);
/* FastCGI: send what req->out gathered; at the end of the answer (last) all
 * but a tail that libfcgi sends with its closing records. */
int http_out_flush(struct http_req *req, int last);
/* FastCGI: a Content-Length for an answer still whole in req->out. */
void http_out_content_length(struct http_req *req);

/* http_answer.c */
int http_body_out(struct http_req *req, const char *p, size_t n); /* after gzip; HEAD counts */
int http_send_headers(struct http_req *req);                      /* once, before the body */
int http_header_queued(const struct http_req *req, const char *name);

/* http_gzip.c: req->gz is set. */
int http_gz_write(struct http_req *req, const char *p, size_t n);
int http_gz_sync(struct http_req *req);                 /* flush what deflate holds */
int http_gz_finish(struct http_req *req);               /* end the stream and free it */
void http_gz_drop(struct http_req *req);                /* free it, nothing sent */
int http_gz_decide(struct http_req *req, int compress); /* end http_gzip_over's wait */

/* http_limits.c: take an unread CGI body off stdin. */
void http_cgi_drain_body(struct http_req *req);

#endif
