/* err: see err.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "utf8.h"

int
err_set(struct err *e, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (e == NULL)
        return -1;
    e->status = status;
    e->code = code;
    e->version = 0;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}

void
err_clear(struct err *e)
{
    e->status = 0;
    e->code = NULL;
    e->msg[0] = '\0';
    e->version = 0;
}

const char *
err_quote(char out[ERR_QUOTED], const char *text)
{
    const unsigned char *u = (const unsigned char *)(text ? text : "");
    size_t i = 0, o = 0, n = strlen((const char *)u), len;

    while (i < n) {
        len = u[i] >= 0x20 && u[i] < 0x7F ? 1 : u[i] >= 0x80 ? utf8_seq(u + i, n - i) : 0;
        if (o + (len ? len : 1) > ERR_QUOTED - 4) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (len == 0) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, u + i, len);
            o += len;
            i += len;
        }
    }
    out[o] = '\0';
    return out;
}
