/*
 * fcgi_record: the FastCGI records this project writes itself, by name.
 *
 * libfcgi frames the answers of ordinary requests. Three places write records
 * on a connection directly, to skip its 8 KB framing or to keep writing after
 * libfcgi let go of the connection: big answers (http_output.c), events delivered
 * straight to a stream's connection (events.c) and the streams of the event
 * loop (streams.c). They all build records here. A record is an 8-byte header
 * (version, type, request id, content length, padding length) and its content
 * (FastCGI specification, section 3.3); we never pad.
 *
 * Order on a connection is the caller's business: bytes libfcgi still buffers
 * for the same request must be flushed first (FCGX_FFlush).
 */
#ifndef RHTMX_FCGI_RECORD_H
#define RHTMX_FCGI_RECORD_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

#define FCGI_RECORD_VERSION 1
#define FCGI_RECORD_HEADER_LEN 8
#define FCGI_RECORD_MAX_CONTENT 65535 /* the content length is 16 bits */
#define FCGI_RECORD_GATHER 65528      /* what we put in one record: 8-byte multiple under that */

/* Record types (those we write or look for). */
#define FCGI_RECORD_ABORT_REQUEST 2
#define FCGI_RECORD_END_REQUEST 3
#define FCGI_RECORD_STDIN 5
#define FCGI_RECORD_STDOUT 6

/* Fill h with the header of a record: type, request id, n bytes of content
 * (at most FCGI_RECORD_MAX_CONTENT), no padding. */
void fcgi_record_header(unsigned char h[FCGI_RECORD_HEADER_LEN], int type, int request_id,
                        size_t n);

/* The type a received header h names, and the bytes (content and padding)
 * that follow it. */
int fcgi_record_type(const unsigned char h[FCGI_RECORD_HEADER_LEN]);
size_t fcgi_record_body_len(const unsigned char h[FCGI_RECORD_HEADER_LEN]);

/* Append n bytes at p to out as STDOUT records of at most FCGI_RECORD_GATHER
 * bytes each (nothing for n 0). */
void fcgi_record_stdout(struct buf *out, int request_id, const char *p, size_t n);

/* Append the end of a request to out: the empty STDOUT record, then
 * END_REQUEST with application status 0 and FCGI_REQUEST_COMPLETE. */
void fcgi_record_end(struct buf *out, int request_id);

/* One STDOUT record of n bytes at p (n at most FCGI_RECORD_MAX_CONTENT) on fd,
 * header and content in one sendmsg with flags (MSG_NOSIGNAL is added). The
 * bytes written, header included (fewer than n + FCGI_RECORD_HEADER_LEN when
 * the socket took only part), or -1 with errno set. */
ssize_t fcgi_record_send_one(int fd, int request_id, const char *p, size_t n, int flags);

/* n bytes at p on fd as STDOUT records, blocking until all are written
 * (retrying on EINTR). 0, or -1 when the connection fails. */
int fcgi_record_send(int fd, int request_id, const char *p, size_t n);

#endif
