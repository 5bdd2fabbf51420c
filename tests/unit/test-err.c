/* Client text in error messages: quoted whole characters at a time, never raw bytes. */
#include "check.h"
#include "err.h"

static const struct {
    int line;
    const char *in;
    const char *want;
} quotes[] = {
    {__LINE__, "todos", "todos"},
    {__LINE__, NULL, ""},
    {__LINE__, "caf\xc3\xa9", "caf\xc3\xa9"},
    {__LINE__,
     "a\xc0\xaf"
     "b",
     "a??b"},                                                /* overlong: each byte a '?' */
    {__LINE__, "\xed\xa0\x80", "???"},                       /* an encoded surrogate */
    {__LINE__, "\xf4\x90\x80\x80", "????"},                  /* above U+10FFFF */
    {__LINE__, "line\nbreak\x1b[0m\x7f", "line?break?[0m?"}, /* no control characters in logs */
    {__LINE__, "0123456789012345678901234567890123456789012345678901234567890123",
     "0123456789012345678901234567890123456789012345678901234567890123"}, /* 64: whole */
    {__LINE__, "0123456789012345678901234567890123456789012345678901234567890123X",
     "0123456789012345678901234567890123456789012345678901234567890123..."},
    /* 63 ASCII bytes then a 2-byte character: it does not fit, and is not cut */
    {__LINE__, "012345678901234567890123456789012345678901234567890123456789012\xc3\xa9",
     "012345678901234567890123456789012345678901234567890123456789012..."},
};

int
main(void)
{
    char out[ERR_QUOTED];
    size_t i;

    for (i = 0; i < sizeof(quotes) / sizeof(quotes[0]); i++) {
        const char *got = err_quote(out, quotes[i].in);
        CHECK_AT(quotes[i].line, got == out && strcmp(got, quotes[i].want) == 0, "got \"%s\"", got);
    }
    return check_done("test-err");
}
