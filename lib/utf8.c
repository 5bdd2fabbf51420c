/* utf8: see utf8.h. */
#include <stdint.h>
#include <string.h>

#include "utf8.h"

size_t
utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len, i;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

size_t
utf8_valid(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0, len;

    while (i < n) {
        /* The common case, a run of ASCII, eight bytes at a time: this runs on
         * every row of every pull. */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, u + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i == n)
            break;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        /* Two bytes (Latin accents, Greek, Cyrillic, Hebrew, Arabic) inline. */
        if (u[i] >= 0xC2 && u[i] <= 0xDF && n - i >= 2 && (u[i + 1] & 0xC0) == 0x80) {
            i += 2;
            continue;
        }
        if ((len = utf8_seq(u + i, n - i)) == 0)
            return i;
        i += len;
    }
    return n;
}

size_t
utf8_copy1(char *out, const unsigned char *p, size_t n, size_t *used)
{
    size_t len = utf8_seq(p, n);

    if (len == 0) {
        memcpy(out, "\xEF\xBF\xBD", 3);
        *used = 1;
        return 3;
    }
    memcpy(out, p, len);
    *used = len;
    return len;
}

size_t
utf8_repair(char *out, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0, o = 0, used;

    while (i < n) {
        o += utf8_copy1(out + o, u + i, n - i, &used);
        i += used;
    }
    return o;
}
