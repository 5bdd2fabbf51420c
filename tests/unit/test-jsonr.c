/*
 * Strict JSON input: every file of JSONTestSuite's test_parsing through
 * jsonr_parse. y_ files must parse, n_ files must be refused, i_ files may go
 * either way but must not crash or leak (ASan/UBSan watch that). Before that,
 * the forms json-c would take but change: invalid UTF-8, lone surrogates,
 * integers beyond 64 bits, \u0000 in a member name.
 */
#include <dirent.h>
#include <stdlib.h>

#include "check.h"
#include "jsonr.h"

/* y_ files json-c refuses on purpose, with the reason. */
static const char *const y_refused[] = {
    "y_structure_lonely_null.json",      /* a bare null is never a valid document for us */
    "y_object_escaped_null_in_key.json", /* json-c would cut the name at the NUL */
    NULL,
};

/* Valid JSON that must be refused (want: the message) or kept exactly (want NULL). */
static const struct {
    int line;
    const char *in;
    const char *want;
} values[] = {
    {__LINE__, "[\"\xc0\xaf\"]", "invalid UTF-8 at byte 2"},         /* overlong '/' */
    {__LINE__, "[\"ab\xed\xa0\x80\"]", "invalid UTF-8 at byte 4"},   /* a surrogate */
    {__LINE__, "[\"\xf4\x90\x80\x80\"]", "invalid UTF-8 at byte 2"}, /* above U+10FFFF */
    {__LINE__, "[\"\xe2\x82\"]", "invalid UTF-8 at byte 2"},         /* cut short */
    {__LINE__, "{\"\xff\":1}", "invalid UTF-8 at byte 2"},           /* in a name */
    {__LINE__, "[\"caf\xc3\xa9 \xf0\x9f\x98\x80\"]", NULL},
    {__LINE__, "[\"\\ud800\"]", "a lone surrogate in a \\u escape at byte 2"},
    {__LINE__, "[\"\\udc00\"]", "a lone surrogate in a \\u escape at byte 2"},
    {__LINE__, "[\"x\\ud800\\u0041\"]", "a lone surrogate in a \\u escape at byte 3"},
    {__LINE__, "[\"\\ud83d\\ude00\"]", NULL},
    {__LINE__, "{\"title\\u0000x\":1}", "\\u0000 in a member name at byte 7"},
    {__LINE__, "{\"a\":\"b\\u0000\"}", NULL}, /* in a value it is kept (with its length) */
    {__LINE__, "[9223372036854775807]", NULL},
    {__LINE__, "[-9223372036854775808]", NULL},
    {__LINE__, "[9223372036854775808]", "integer out of range (-2^63 to 2^63-1) at byte 1"},
    {__LINE__, "[-9223372036854775809]", "integer out of range (-2^63 to 2^63-1) at byte 1"},
    {__LINE__, "{\"a\":-123456789012345678901}",
     "integer out of range (-2^63 to 2^63-1) at byte 5"},
    {__LINE__, "[-9223372036854775809.0, 1e999, -0]", NULL}, /* reals: any size */
};

static void
test_values(void)
{
    size_t i;

    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct err e = {0};
        struct json_object *o = jsonr_parse(values[i].in, strlen(values[i].in), 8, &e);
        if (values[i].want == NULL) {
            CHECK_AT(values[i].line, o != NULL, "refused: %s", e.msg);
        } else {
            CHECK_AT(values[i].line, o == NULL && e.status == 400, "accepted");
            CHECK_AT(values[i].line, strcmp(e.msg, values[i].want) == 0, "message \"%s\"", e.msg);
        }
        json_object_put(o);
    }
}

static int
listed(const char *const *list, const char *name)
{
    for (; *list != NULL; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

int
main(void)
{
    const char *corpora = getenv("RHTMX_CORPORA"); /* tests/corpora, set by ctest */
    char dir[1024], path[2048];
    struct dirent *de;
    DIR *d;
    int n = 0;

    test_values();

    snprintf(dir, sizeof(dir), "%s/jsontestsuite/test_parsing", corpora ? corpora : "tests/corpora");
    d = opendir(dir);
    CHECK_AT(__LINE__, d != NULL, "cannot open %s", dir);
    if (d == NULL)
        return check_done("test-jsonr");
    while ((de = readdir(d)) != NULL) {
        FILE *f;
        char *text;
        long len;
        struct err e;
        struct json_object *o;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        f = fopen(path, "rb");
        if (f == NULL)
            continue;
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = malloc((size_t)len + 1);
        if (fread(text, 1, (size_t)len, f) != (size_t)len)
            len = 0;
        fclose(f);
        o = jsonr_parse(text, (size_t)len, 64, &e);
        if (de->d_name[0] == 'y' && !listed(y_refused, de->d_name))
            CHECK_AT(__LINE__, o != NULL, "%s should parse: %s", de->d_name, e.msg);
        if (de->d_name[0] == 'n')
            CHECK_AT(__LINE__, o == NULL, "%s should be refused", de->d_name);
        if (o == NULL)
            CHECK_AT(__LINE__, e.status == 400 || e.status == 413, "%s: status %d", de->d_name,
                     e.status);
        json_object_put(o);
        free(text);
        n++;
    }
    closedir(d);
    CHECK_AT(__LINE__, n > 300, "only %d corpus files", n);
    return check_done("test-jsonr");
}
