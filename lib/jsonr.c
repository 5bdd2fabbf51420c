/* jsonr: see jsonr.h. */
#include <string.h>

#include "jsonr.h"

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
    tok = json_tokener_new_ex(max_depth);
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
