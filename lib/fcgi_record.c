/* fcgi_record: building and sending FastCGI records (see fcgi_record.h). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "fcgi_record.h"

void
fcgi_record_header(unsigned char h[FCGI_RECORD_HEADER_LEN], int type, int request_id, size_t n)
{
    h[0] = FCGI_RECORD_VERSION;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)(request_id >> 8);
    h[3] = (unsigned char)request_id;
    h[4] = (unsigned char)(n >> 8);
    h[5] = (unsigned char)n;
    h[6] = 0; /* padding length */
    h[7] = 0; /* reserved */
}

int
fcgi_record_type(const unsigned char h[FCGI_RECORD_HEADER_LEN])
{
    return h[1];
}

size_t
fcgi_record_body_len(const unsigned char h[FCGI_RECORD_HEADER_LEN])
{
    return ((size_t)h[4] << 8 | h[5]) + h[6];
}

void
fcgi_record_stdout(struct buf *out, int request_id, const char *p, size_t n)
{
    unsigned char h[FCGI_RECORD_HEADER_LEN];

    while (n > 0) {
        size_t k = n > FCGI_RECORD_GATHER ? FCGI_RECORD_GATHER : n;
        fcgi_record_header(h, FCGI_RECORD_STDOUT, request_id, k);
        buf_add(out, (const char *)h, sizeof(h));
        buf_add(out, p, k);
        p += k;
        n -= k;
    }
}

void
fcgi_record_end(struct buf *out, int request_id)
{
    static const char complete[8] = {0}; /* appStatus 0, FCGI_REQUEST_COMPLETE, reserved */
    unsigned char h[FCGI_RECORD_HEADER_LEN];

    fcgi_record_header(h, FCGI_RECORD_STDOUT, request_id, 0);
    buf_add(out, (const char *)h, sizeof(h));
    fcgi_record_header(h, FCGI_RECORD_END_REQUEST, request_id, sizeof(complete));
    buf_add(out, (const char *)h, sizeof(h));
    buf_add(out, complete, sizeof(complete));
}

/* The part of header h and content p (k bytes) from offset off on, in one
 * sendmsg. As sendmsg. */
static ssize_t
send_from(int fd, const unsigned char *h, const char *p, size_t k, size_t off, int flags)
{
    struct iovec v[2];
    struct msghdr m;

    memset(&m, 0, sizeof(m));
    if (off < FCGI_RECORD_HEADER_LEN) {
        v[0].iov_base = (void *)(uintptr_t)(h + off);
        v[0].iov_len = FCGI_RECORD_HEADER_LEN - off;
        v[1].iov_base = (void *)(uintptr_t)p;
        v[1].iov_len = k;
        m.msg_iovlen = 2;
    } else {
        v[0].iov_base = (void *)(uintptr_t)(p + (off - FCGI_RECORD_HEADER_LEN));
        v[0].iov_len = k - (off - FCGI_RECORD_HEADER_LEN);
        m.msg_iovlen = 1;
    }
    m.msg_iov = v;
    return sendmsg(fd, &m, flags | MSG_NOSIGNAL);
}

ssize_t
fcgi_record_send_one(int fd, int request_id, const char *p, size_t n, int flags)
{
    unsigned char h[FCGI_RECORD_HEADER_LEN];

    fcgi_record_header(h, FCGI_RECORD_STDOUT, request_id, n);
    return send_from(fd, h, p, n, 0, flags);
}

int
fcgi_record_send(int fd, int request_id, const char *p, size_t n)
{
    unsigned char h[FCGI_RECORD_HEADER_LEN];

    while (n > 0) {
        size_t k = n > FCGI_RECORD_GATHER ? FCGI_RECORD_GATHER : n, off = 0;

        fcgi_record_header(h, FCGI_RECORD_STDOUT, request_id, k);
        while (off < sizeof(h) + k) {
            ssize_t w = send_from(fd, h, p, k, off, 0);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
            off += (size_t)w;
        }
        p += k;
        n -= k;
    }
    return 0;
}
