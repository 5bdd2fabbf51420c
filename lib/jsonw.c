/* jsonw: see jsonw.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "jsonw.h"
#include "utf8.h"

int
jsonw_raw(const struct sink *s, const char *text)
{
    return sink_write(s, text, strlen(text));
}

int
jsonw_string(const struct sink *s, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    char out[512];
    size_t o = 0, i = 0;

    out[o++] = '"';
    while (i < n) {
        unsigned char c = u[i];
        size_t used;

        if (o > sizeof(out) - 16) {
            if (sink_write(s, out, o) < 0)
                return -1;
            o = 0;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
            i++;
        } else if (c < 0x20) {
            static const char esc[] = "btn\0fr";
            if (c >= '\b' && c <= '\r' && esc[c - '\b'] != '\0') {
                out[o++] = '\\';
                out[o++] = esc[c - '\b'];
            } else {
                o += (size_t)snprintf(out + o, 7, "\\u%04x", c);
            }
            i++;
        } else {
            o += utf8_copy1(out + o, u + i, n - i, &used); /* U+FFFD for a broken byte */
            i += used;
        }
    }
    out[o++] = '"';
    return sink_write(s, out, o);
}

int
jsonw_cstring(const struct sink *s, const char *text)
{
    if (text == NULL)
        return jsonw_raw(s, "null");
    return jsonw_string(s, text, strlen(text));
}

/* Decimal digits of v, right-aligned in tmp[0..32); returns where they start.
 * By hand rather than snprintf: a pull writes two integers per change, and
 * snprintf was a tenth of the time of a 1,000-change page. */
static char *
jsonw_digits(char tmp[32], long long v)
{
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *p = tmp + 32;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return p;
}

size_t
jsonw_format_int(char *out, long long v)
{
    char tmp[32];
    char *p = jsonw_digits(tmp, v);
    size_t n = (size_t)(tmp + 32 - p);

    memcpy(out, p, n);
    return n;
}

int
jsonw_int(const struct sink *s, long long v)
{
    char tmp[32];
    char *p = jsonw_digits(tmp, v);
    return sink_write(s, p, (size_t)(tmp + 32 - p));
}

int
jsonw_column(const struct sink *s, sqlite3_stmt *st, int col)
{
    char tmp[40];
    const unsigned char *b;
    double d;
    int i, n;

    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER:
        return jsonw_int(s, sqlite3_column_int64(st, col));
    case SQLITE_FLOAT:
        d = sqlite3_column_double(st, col);
        if (isinf(d)) /* past any double: JSON.parse and strtod read infinity */
            return jsonw_raw(s, d > 0 ? "9e999" : "-9e999");
        if (isnan(d))
            return jsonw_raw(s, "null");
        n = snprintf(tmp, sizeof(tmp), "%.17g", d);
        if (strpbrk(tmp, ".eE") == NULL) /* still a real when read back, as SQLite writes it */
            n += snprintf(tmp + n, sizeof(tmp) - (size_t)n, ".0");
        return sink_write(s, tmp, (size_t)n);
    case SQLITE_TEXT:
        return jsonw_string(s, (const char *)sqlite3_column_text(st, col),
                            (size_t)sqlite3_column_bytes(st, col));
    case SQLITE_BLOB:
        b = sqlite3_column_blob(st, col);
        n = sqlite3_column_bytes(st, col);
        if (sink_write(s, "\"", 1) < 0)
            return -1;
        for (i = 0; i < n; i++) {
            snprintf(tmp, sizeof(tmp), "%02X", b[i]);
            if (sink_write(s, tmp, 2) < 0)
                return -1;
        }
        return sink_write(s, "\"", 1);
    default:
        return jsonw_raw(s, "null");
    }
}
