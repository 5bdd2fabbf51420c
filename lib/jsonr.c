/*
 * jsonr: see jsonr.h.
 *
 * json-c's strict mode still lets a few non-JSON forms through ('single
 * quotes', 2.e+3, -012), so input is first checked against the RFC 8259
 * grammar by a small validator of our own; json-c then builds the objects.
 */
#include <string.h>

#include "jsonr.h"

struct scan {
    const unsigned char *p, *end;
    int depth, max_depth;
};

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

static int
scan_number(struct scan *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (scan_digits(s) < 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (scan_digits(s) < 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (scan_digits(s) < 0)
            return -1;
    }
    return 0;
}

static int
scan_string(struct scan *s)
{
    s->p++; /* the opening quote */
    while (s->p < s->end) {
        unsigned char c = *s->p++;
        if (c == '"')
            return 0;
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (s->p >= s->end)
                return -1;
            c = *s->p++;
            if (c == 'u') {
                int i;
                for (i = 0; i < 4; i++, s->p++)
                    if (s->p >= s->end || strchr("0123456789abcdefABCDEF", *s->p) == NULL ||
                        *s->p == '\0')
                        return -1;
            } else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
                return -1;
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
            if (s->p >= s->end || *s->p != '"' || scan_string(s) < 0)
                return -1;
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
        return scan_string(s);
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

/* Check p[0..n) against the RFC 8259 grammar (UTF-8 is json-c's job). */
static int
jsonr_valid(const char *p, size_t n, int max_depth, struct err *e)
{
    struct scan s = {(const unsigned char *)p, (const unsigned char *)p + n, 0, max_depth};
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
        return err_set(e, 400, "bad_request", "invalid JSON at byte %ld",
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
            err_set(e, 400, "bad_request", "invalid JSON: %s",
                    json_tokener_error_desc(jerr));
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

const char *
jsonr_type_name(enum json_type t)
{
    return json_type_to_name(t);
}
