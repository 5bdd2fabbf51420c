/*
 * auth_b64url: base64url without padding (RFC 4648 section 5), as tokens use
 * it. Decoding is strict (no padding, no stray characters, no non-zero
 * leftover bits), so every token has exactly one spelling.
 */
#include <string.h>

#include "auth.h"
#include "buf.h"

static int
b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long
auth_b64url_decode(const char *in, size_t n, unsigned char *out)
{
    unsigned acc = 0;
    size_t i, o = 0;
    int bits = 0;

    if (n % 4 == 1)
        return -1; /* 6 bits cannot make a byte */
    for (i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1; /* leftover bits must be zero: one spelling per byte string */
    return (long)o;
}

void
auth_b64url_encode(const unsigned char *in, size_t n, struct buf *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char q[4];
    size_t i;

    for (i = 0; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        q[0] = abc[v >> 18];
        q[1] = abc[(v >> 12) & 63];
        q[2] = abc[(v >> 6) & 63];
        q[3] = abc[v & 63];
        buf_add(out, q, 4);
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        q[0] = abc[v >> 18];
        q[1] = abc[(v >> 12) & 63];
        buf_add(out, q, 2);
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        q[0] = abc[v >> 18];
        q[1] = abc[(v >> 12) & 63];
        q[2] = abc[(v >> 6) & 63];
        buf_add(out, q, 3);
    }
}
