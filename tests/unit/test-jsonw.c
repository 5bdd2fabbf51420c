/* The streaming JSON writer: escaping, UTF-8 repair, SQLite values. */
#include <math.h>
#include <sqlite3.h>

#include "check.h"
#include "jsonr.h"
#include "jsonw.h"
#include "sqljson.h"

static const struct {
    int line;
    const char *in;
    size_t len;
    const char *want;
} strings[] = {
    {__LINE__, "plain", 5, "\"plain\""},
    {__LINE__, "q\"b\\", 4, "\"q\\\"b\\\\\""},
    {__LINE__, "\b\t\n\f\r", 5, "\"\\b\\t\\n\\f\\r\""},
    {__LINE__, "\x01\x1f\x0b", 3, "\"\\u0001\\u001f\\u000b\""},
    {__LINE__, "nul\0x", 5, "\"nul\\u0000x\""},
    {__LINE__, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
     "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
    {__LINE__, "bad\xff", 4, "\"bad\xef\xbf\xbd\""},
    {__LINE__, "\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""},                 /* overlong */
    {__LINE__, "\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* surrogate */
    {__LINE__, "\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""},                 /* truncated */
    {__LINE__, "", 0, "\"\""},
};

int
main(void)
{
    struct buf b = {0};
    struct sink s = buf_sink(&b);
    sqlite3 *db;
    sqlite3_stmt *st;
    size_t i;
    char big[3000];

    for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        buf_reset(&b);
        jsonw_string(&s, strings[i].in, strings[i].len);
        CHECK_AT(strings[i].line, strcmp(b.p, strings[i].want) == 0, "got %s want %s", b.p,
                 strings[i].want);
    }

    /* Long strings cross the writer's internal chunk boundary intact, and the
     * result always parses back (strict json-c) to the same bytes. */
    for (i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)(i % 7 == 0 ? '"' : 'a' + i % 26);
    big[sizeof(big) - 1] = '\0';
    buf_reset(&b);
    jsonw_cstring(&s, big);
    {
        struct err e;
        struct json_object *o = jsonr_parse(b.p, b.len, 4, &e);
        CHECK(o != NULL && strcmp(json_object_get_string(o), big) == 0);
        json_object_put(o);
    }

    buf_reset(&b);
    jsonw_cstring(&s, NULL);
    CHECK_STR(b.p, "null");
    buf_reset(&b);
    jsonw_int(&s, -9223372036854775807LL - 1);
    CHECK_STR(b.p, "-9223372036854775808");

    /* Column values keep their SQL type. */
    CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db, "SELECT 42, 1.5, 'x\"y', NULL, x'00ff', 1e999, -1e999, 2.0", -1,
                             &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    {
        static const char *const want[] = {"42",       "1.5",   "\"x\\\"y\"", "null",
                                           "\"00FF\"", "9e999", "-9e999",     "2.0"};
        for (i = 0; i < 8; i++) {
            buf_reset(&b);
            jsonw_column(&s, st, (int)i);
            CHECK_AT(__LINE__, strcmp(b.p, want[i]) == 0, "column %zu: got %s want %s", i, b.p,
                     want[i]);
        }
    }
    sqlite3_finalize(st);

    /* The same values as json-c objects (conflict rows, stored answers): infinity
     * as 9e999 reads back as infinity; text that is not UTF-8 is repaired. */
    CHECK(sqlite3_prepare_v2(db,
                             "SELECT 0.30000000000000004, 1e999, -1e999, 2.0, "
                             "CAST(x'61c0af62' AS TEXT), 'caf\xc3\xa9'",
                             -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    {
        static const char *const want[] = {"0.30000000000000004",
                                           "9e999",
                                           "-9e999",
                                           "2.0",
                                           "\"a\xef\xbf\xbd\xef\xbf\xbd"
                                           "b\"",
                                           "\"caf\xc3\xa9\""};
        for (i = 0; i < 6; i++) {
            struct json_object *o = sqljson_value(sqlite3_column_value(st, (int)i));
            const char *got = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
            CHECK_AT(__LINE__, strcmp(got, want[i]) == 0, "value %zu: got %s want %s", i, got,
                     want[i]);
            json_object_put(o);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    buf_free(&b);
    return check_done("test-jsonw");
}
