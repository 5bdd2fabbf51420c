/*
 * Strict JSON input: every file of JSONTestSuite's test_parsing through
 * jsonr_parse. y_ files must parse, n_ files must be refused, i_ files may go
 * either way but must not crash or leak (ASan/UBSan watch that).
 */
#include <dirent.h>
#include <stdlib.h>

#include "check.h"
#include "jsonr.h"

/* y_ files json-c refuses on purpose, with the reason. */
static const char *const y_refused[] = {
    "y_structure_lonely_null.json", /* a bare null is never a valid document for us */
    NULL,
};

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
