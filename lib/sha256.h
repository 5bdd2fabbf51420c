/*
 * sha256: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the tokens.
 *
 * Written here rather than taken from libcrypto for one reason: start-up. A
 * CGI program is a new process per request, and the dynamic loader spent most
 * of sync-pull's start-up relocating libcrypto (about 21,000 relocations, four
 * fifths of the program's) for one hash. These are a few hundred bytes of
 * code with no relocations. The unit tests check them against the FIPS and
 * RFC 4231 vectors and against OpenSSL on random inputs.
 */
#ifndef RHTMX_SHA256_H
#define RHTMX_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_BLOCK 64

struct sha256 {
    uint32_t h[8];
    uint64_t bytes;                   /* hashed so far */
    unsigned char tail[SHA256_BLOCK]; /* the partial block, bytes % 64 of it used */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *p, size_t n);
/* Writes the digest to out and wipes s. */
void sha256_final(struct sha256 *s, unsigned char out[SHA256_LEN]);

/* HMAC-SHA256 of msg under key (any length; a key longer than a block is hashed first). */
void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n,
                 unsigned char out[SHA256_LEN]);

/* 1 if a and b hold the same n bytes, in time that depends on n only. */
int ct_equal(const void *a, const void *b, size_t n);

#endif
