/* sqljson: see sqljson.h. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqljson.h"
#include "utf8.h"

int
sqljson_int_overflows(struct json_object *v)
{
    return json_object_is_type(v, json_type_int) && json_object_get_int64(v) == INT64_MAX &&
           json_object_get_uint64(v) > INT64_MAX;
}

/* 1 if needle occurs in hay, ignoring ASCII case. */
static int
has_word(const char *hay, const char *needle)
{
    size_t n = strlen(needle), i;

    for (; *hay != '\0'; hay++) {
        for (i = 0; i < n; i++) {
            char h = hay[i], c = needle[i];
            if (h >= 'a' && h <= 'z')
                h = (char)(h - 'a' + 'A');
            if (h != c)
                break;
        }
        if (i == n)
            return 1;
    }
    return 0;
}

char
sqljson_affinity(const char *type)
{
    if (has_word(type, "INT"))
        return 'I';
    if (has_word(type, "CHAR") || has_word(type, "CLOB") || has_word(type, "TEXT"))
        return 'T';
    if (type[0] == '\0' || has_word(type, "BLOB"))
        return 'B';
    if (has_word(type, "REAL") || has_word(type, "FLOA") || has_word(type, "DOUB"))
        return 'R';
    return 'N';
}

const char *
sqljson_problem(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
    case json_type_boolean:
    case json_type_string:
        return NULL;
    case json_type_int:
        return sqljson_int_overflows(v) ? "integer out of range" : NULL;
    case json_type_double:
        /* A number past the double range (9e999) is infinity, as pulls write it. */
        return isnan(json_object_get_double(v)) ? "not a number" : NULL;
    default:
        return "must be a string, number, boolean or null";
    }
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
sqljson_bind(sqlite3_stmt *st, int i, struct json_object *v, const struct column *col)
{
    const char *s;
    size_t len, k;
    unsigned char *bytes;
    int rc;

    switch (json_object_get_type(v)) {
    case json_type_null:
        return sqlite3_bind_null(st, i);
    case json_type_boolean:
        return sqlite3_bind_int(st, i, json_object_get_boolean(v) ? 1 : 0);
    case json_type_int:
        return sqlite3_bind_int64(st, i, json_object_get_int64(v));
    case json_type_double:
        return sqlite3_bind_double(st, i, json_object_get_double(v));
    default:
        break;
    }
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    if (col != NULL && col->type[0] != '\0' && sqljson_affinity(col->type) == 'B' && len % 2 == 0) {
        for (k = 0; k < len && hexval(s[k]) >= 0; k++)
            ;
        if (k == len) {
            bytes = malloc(len / 2 + 1);
            if (bytes == NULL)
                return SQLITE_NOMEM;
            for (k = 0; k < len / 2; k++)
                bytes[k] = (unsigned char)(hexval(s[2 * k]) * 16 + hexval(s[2 * k + 1]));
            rc = sqlite3_bind_blob(st, i, bytes, (int)(len / 2), free);
            return rc;
        }
    }
    return sqlite3_bind_text(st, i, s, (int)len, SQLITE_TRANSIENT);
}

/* A real as JSON, in the shortest form that reads back the same; infinity
 * as 9e999 or -9e999 (the triggers' form); NULL for NaN. */
static struct json_object *
double_json(double d)
{
    char tmp[40];
    int prec;

    if (isnan(d))
        return NULL;
    if (isinf(d))
        return json_object_new_double_s(d, d > 0 ? "9e999" : "-9e999");
    for (prec = 15; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
    if (strpbrk(tmp, ".eE") == NULL)
        strcat(tmp, ".0"); /* stays a real, as SQLite's json_object() writes it */
    return json_object_new_double_s(d, tmp);
}

struct json_object *
sqljson_value(sqlite3_value *v)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *text;
    const unsigned char *b;
    struct json_object *o;
    char *s;
    int n, k;

    switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
        return json_object_new_int64(sqlite3_value_int64(v));
    case SQLITE_FLOAT:
        return double_json(sqlite3_value_double(v));
    case SQLITE_TEXT:
        text = (const char *)sqlite3_value_text(v);
        n = sqlite3_value_bytes(v);
        if (utf8_valid(text, (size_t)n) == (size_t)n)
            return json_object_new_string_len(text, n);
        s = malloc((size_t)n * 3 + 1); /* the app stored bytes that are not UTF-8 */
        if (s == NULL)
            return NULL;
        o = json_object_new_string_len(s, (int)utf8_repair(s, text, (size_t)n));
        free(s);
        return o;
    case SQLITE_BLOB:
        b = sqlite3_value_blob(v);
        n = sqlite3_value_bytes(v);
        s = malloc((size_t)n * 2 + 1);
        if (s == NULL)
            return NULL;
        for (k = 0; k < n; k++) {
            s[2 * k] = hex[b[k] >> 4];
            s[2 * k + 1] = hex[b[k] & 15];
        }
        o = json_object_new_string_len(s, n * 2);
        free(s);
        return o;
    default:
        return NULL;
    }
}
