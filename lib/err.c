/* err: see err.h. */
#include <stdarg.h>
#include <stdio.h>

#include "err.h"

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
