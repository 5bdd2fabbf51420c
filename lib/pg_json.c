/* pg_json: see pg_json.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "pg_json.h"

/* Built-in type OIDs (fixed since PostgreSQL 7; catalog/pg_type_d.h is a server header). */
enum {
    PG_BOOL = 16,
    PG_BYTEA = 17,
    PG_INT8 = 20,
    PG_INT2 = 21,
    PG_INT4 = 23,
    PG_OID = 26,
    PG_FLOAT4 = 700,
    PG_FLOAT8 = 701,
    PG_NUMERIC = 1700,
};

/* A real as SQLite's json_object() writes it for the SQLite backend: 17
 * significant digits, ".0" added when that reads as an integer. */
static int
write_real(const struct sink *s, const char *v)
{
    char tmp[40];
    double d = strtod(v, NULL);

    if (isnan(d))
        return jsonw_raw(s, "null");
    if (isinf(d))
        return jsonw_raw(s, d > 0 ? "9e999" : "-9e999");
    snprintf(tmp, sizeof(tmp), "%.17g", d);
    if (strpbrk(tmp, ".eE") == NULL)
        strcat(tmp, ".0");
    return jsonw_raw(s, tmp);
}

/* bytea's hex output "\x0a0b" as "0A0B". */
static int
write_bytea(const struct sink *s, const char *v)
{
    char tmp[256];
    size_t n = 0;

    if (v[0] == '\\' && v[1] == 'x')
        v += 2;
    if (jsonw_raw(s, "\"") < 0)
        return -1;
    for (; *v; v++) {
        char c = *v;
        tmp[n++] = (char)(c >= 'a' && c <= 'f' ? c - 'a' + 'A' : c);
        if (n == sizeof(tmp)) {
            if (sink_write(s, tmp, n) < 0)
                return -1;
            n = 0;
        }
    }
    if (n > 0 && sink_write(s, tmp, n) < 0)
        return -1;
    return jsonw_raw(s, "\"");
}

int
pg_json_value(const struct sink *s, Oid type, const char *v)
{
    if (v == NULL)
        return jsonw_raw(s, "null");
    switch (type) {
    case PG_INT2:
    case PG_INT4:
    case PG_INT8:
    case PG_OID:
        return jsonw_raw(s, v);
    case PG_FLOAT4:
    case PG_FLOAT8:
        return write_real(s, v);
    case PG_NUMERIC:
        if (strcmp(v, "NaN") == 0)
            return jsonw_raw(s, "null");
        if (strcmp(v, "Infinity") == 0 || strcmp(v, "-Infinity") == 0)
            return jsonw_raw(s, v[0] == '-' ? "-9e999" : "9e999");
        return jsonw_raw(s, v);
    case PG_BOOL:
        return jsonw_raw(s, v[0] == 't' ? "true" : "false");
    case PG_BYTEA:
        return write_bytea(s, v);
    default:
        return jsonw_cstring(s, v);
    }
}
