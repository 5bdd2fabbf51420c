/*
 * utf8: what counts as UTF-8 here (RFC 3629).
 *
 * Every text that enters (a push body, a token, the config) is checked with
 * these, and every text that leaves is either checked or repaired with them,
 * so the one definition decides both: no overlong forms (C0 AF), no encoded
 * surrogates (ED A0 80), nothing above U+10FFFF (F4 90 80 80), no truncated
 * sequences.
 */
#ifndef RHTMX_UTF8_H
#define RHTMX_UTF8_H

#include <stddef.h>

/* Length (1..4) of the valid UTF-8 sequence at p (n > 0 bytes available), or
 * 0 when the byte at p does not start one. */
size_t utf8_seq(const unsigned char *p, size_t n);

/* Length of the longest valid UTF-8 prefix of p[0..n): n when all of it is
 * valid, else the offset of the first byte that is not. */
size_t utf8_valid(const char *p, size_t n);

/* The character at p (n > 0 bytes available) into out (room for 4 bytes), or
 * U+FFFD when the byte at p does not start valid UTF-8. Returns the bytes
 * written; *used is the bytes of p consumed (1 for a bad byte). */
size_t utf8_copy1(char *out, const unsigned char *p, size_t n, size_t *used);

/* p[0..n) into out (room for 3 * n bytes) with each byte that is not part of
 * valid UTF-8 replaced by U+FFFD; returns the length written. Everything
 * else, ASCII punctuation included, is copied as is, so JSON text stays JSON. */
size_t utf8_repair(char *out, const char *p, size_t n);

#endif
