/*
 * jsonr: see jsonr.h.
 *
 * json-c's strict mode still lets a few non-JSON forms through ('single
 * quotes', 2.e+3, -012) and quietly changes others (invalid UTF-8 kept as it
 * came, a lone surrogate escape made U+FFFD, an integer beyond 64 bits
 * clamped, a member name cut at \u0000), so input is first checked by a
 * small validator of our own: the RFC 8259 grammar plus those rules. json-c
 * then builds the objects.
 */
#include <string.h>

#include "jsonr.h"
#include "utf8.h"

struct scan {
    const unsigned char *p, *end;
    int depth, max_depth;
    const char *why; /* what is wrong at p, when more is known than "invalid JSON" */
};

/* -1, with why saying what is wrong at s->p. */
static int
scan_fail(struct scan *s, const char *why)
{
    s->why = why;
    return -1;
}

static void
skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int
scan_lit(struct scan *s, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int
scan_digits(struct scan *s)
{
    const unsigned char *start = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : -1;
}

/* 1 if the integer literal p[0..n) (an optional '-', then digits without a
 * leading zero) is outside -2^63..2^63-1, which is all json-c and SQLite hold. */
static int
int_out_of_range(const unsigned char *p, size_t n)
{
    int neg = p[0] == '-';

    p += neg;
    n -= (size_t)neg;
    if (n != 19)
        return n > 19;
    return memcmp(p, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0;
}

static int
scan_number(struct scan *s)
{
    const unsigned char *start = s->p;
    int integer = 1;

    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (scan_digits(s) < 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        integer = 0;
        s->p++;
        if (scan_digits(s) < 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        integer = 0;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (scan_digits(s) < 0)
            return -1;
    }
    if (integer && int_out_of_range(start, (size_t)(s->p - start))) {
        s->p = start;
        return scan_fail(s, "integer out of range (-2^63 to 2^63-1)");
    }
    return 0;
}

/* The four hex digits of a \u escape (p is after the 'u'), or -1. */
static long
scan_hex4(struct scan *s)
{
    long v = 0;
    int i, d;

    for (i = 0; i < 4; i++, s->p++) {
        if (s->p >= s->end)
            return -1;
        d = *s->p;
        if (d >= '0' && d <= '9')
            d -= '0';
        else if (d >= 'a' && d <= 'f')
            d -= 'a' - 10;
        else if (d >= 'A' && d <= 'F')
            d -= 'A' - 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A string at s->p (its opening quote). The text must be UTF-8, a \u escape
 * of a surrogate must be half of a pair, and a member name (key 1) must not
 * hold \u0000: json-c would cut the name there. */
static int
scan_string(struct scan *s, int key)
{
    s->p++; /* the opening quote */
    while (s->p < s->end) {
        const unsigned char *at = s->p;
        unsigned char c = *s->p;
        size_t len;
        long u;

        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c >= 0x80) {
            if ((len = utf8_seq(s->p, (size_t)(s->end - s->p))) == 0)
                return scan_fail(s, "invalid UTF-8");
            s->p += len;
            continue;
        }
        s->p++;
        if (c != '\\')
            continue;
        if (s->p >= s->end)
            return -1;
        c = *s->p++;
        if (c != 'u') {
            if (strchr("\"\\/bfnrt", c) == NULL || c == '\0')
                return -1;
            continue;
        }
        if ((u = scan_hex4(s)) < 0)
            return -1;
        if (u == 0 && key) {
            s->p = at;
            return scan_fail(s, "\\u0000 in a member name");
        }
        if (u >= 0xDC00 && u <= 0xDFFF) {
            s->p = at;
            return scan_fail(s, "a lone surrogate in a \\u escape");
        }
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u') {
                s->p = at;
                return scan_fail(s, "a lone surrogate in a \\u escape");
            }
            s->p += 2;
            u = scan_hex4(s);
            if (u < 0)
                return -1;
            if (u < 0xDC00 || u > 0xDFFF) {
                s->p = at;
                return scan_fail(s, "a lone surrogate in a \\u escape");
            }
        }
    }
    return -1;
}

static int scan_value(struct scan *s);

/* An array or object: open/close bracket, members separated by commas. */
static int
scan_container(struct scan *s, int object)
{
    if (++s->depth > s->max_depth)
        return -2;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == (object ? '}' : ']')) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        int rc;
        skip_ws(s);
        if (object) {
            if (s->p >= s->end || *s->p != '"')
                return -1;
            if ((rc = scan_string(s, 1)) < 0)
                return rc;
            skip_ws(s);
            if (s->p >= s->end || *s->p++ != ':')
                return -1;
            skip_ws(s);
        }
        if ((rc = scan_value(s)) < 0)
            return rc;
        skip_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p++ != (object ? '}' : ']'))
            return -1;
        s->depth--;
        return 0;
    }
}

/* 0 valid, -1 invalid, -2 too deep. */
static int
scan_value(struct scan *s)
{
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
        return scan_container(s, 1);
    case '[':
        return scan_container(s, 0);
    case '"':
        return scan_string(s, 0);
    case 't':
        return scan_lit(s, "true");
    case 'f':
        return scan_lit(s, "false");
    case 'n':
        return scan_lit(s, "null");
    default:
        return scan_number(s);
    }
}

/* Check p[0..n) against the RFC 8259 grammar and the rules above. The message
 * names the byte offset, never the bytes: they may be anything. */
static int
jsonr_valid(const char *p, size_t n, int max_depth, struct err *e)
{
    struct scan s = {(const unsigned char *)p, (const unsigned char *)p + n, 0, max_depth, NULL};
    int rc;

    skip_ws(&s);
    rc = scan_value(&s);
    if (rc == 0) {
        skip_ws(&s);
        if (s.p != s.end)
            rc = -1;
    }
    if (rc == -2)
        return err_set(e, 400, "bad_request", "JSON nested deeper than %d levels", max_depth);
    if (rc < 0)
        return err_set(e, 400, "bad_request", "%s at byte %ld", s.why ? s.why : "invalid JSON",
                       (long)(s.p - (const unsigned char *)p));
    return 0;
}

struct json_object *
jsonr_parse(const char *p, size_t n, int max_depth, struct err *e)
{
    struct json_tokener *tok = NULL;
    struct json_object *obj = NULL;
    enum json_tokener_error jerr;
    size_t end, i;

    if (n > (size_t)0x7fffffff) {
        err_set(e, 413, "too_large", "JSON text too large");
        goto err;
    }
    if (memchr(p, '\0', n) != NULL) {
        err_set(e, 400, "bad_request", "JSON text contains a NUL byte");
        goto err;
    }
    if (jsonr_valid(p, n, max_depth, e) < 0)
        goto err;
    tok = json_tokener_new_ex(max_depth + 1);
    if (tok == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    obj = json_tokener_parse_ex(tok, p, (int)n);
    jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) {
        /* Some values (a bare number) need an end-of-input signal. */
        obj = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        if (jerr == json_tokener_success)
            end = n;
        else
            end = 0;
    } else {
        end = json_tokener_get_parse_end(tok);
    }
    if (jerr != json_tokener_success || obj == NULL) {
        if (jerr == json_tokener_error_depth)
            err_set(e, 400, "bad_request", "JSON nested deeper than %d levels", max_depth);
        else if (jerr == json_tokener_success)
            err_set(e, 400, "bad_request", "JSON text is empty or only null");
        else
            err_set(e, 400, "bad_request", "invalid JSON: %s", json_tokener_error_desc(jerr));
        goto err;
    }
    for (i = end; i < n; i++) {
        if (strchr(" \t\r\n", p[i]) == NULL) {
            err_set(e, 400, "bad_request", "invalid JSON: unexpected bytes after the value");
            goto err;
        }
    }
    json_tokener_free(tok);
    return obj;
err:
    json_object_put(obj);
    if (tok != NULL) /* json-c 0.16 does not accept NULL here */
        json_tokener_free(tok);
    return NULL;
}

struct json_object *
jsonr_get(struct json_object *obj, const char *key, enum json_type type, int *bad)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return NULL;
    if (!json_object_is_type(v, type)) {
        *bad = 1;
        return NULL;
    }
    return v;
}
