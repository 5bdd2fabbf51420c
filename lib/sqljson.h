/*
 * sqljson: column values between JSON (json-c objects) and SQLite.
 *
 * The capture triggers log rows as JSON made by SQLite's json_object():
 * integers, reals, text, blobs as upper-case hex, NULL as null. Reading a row
 * for a conflict and binding a client's values use the same terms, so a value
 * a client got from a pull goes back into its column unchanged (a hex string
 * for a column declared BLOB goes back in as bytes).
 */
#ifndef RHTMX_SQLJSON_H
#define RHTMX_SQLJSON_H

#include <json-c/json.h>
#include <sqlite3.h>

#include "schema.h"

/* SQLite's affinity for a declared column type: 'I'nteger, 'T'ext, 'B'lob
 * (also for no type), 'R'eal or 'N'umeric (the rules of datatype3.html). */
char sqljson_affinity(const char *declared_type);

/* 1 if v is an integer json-c only holds as uint64 (above INT64_MAX). */
int sqljson_int_overflows(struct json_object *v);

/* Why v cannot be a column value (an object, an array, an integer out of
 * range, NaN), or NULL if it can: null, true/false, integers, reals (a JSON
 * number past the double range, like 9e999, is infinity), strings. */
const char *sqljson_problem(struct json_object *v);

/* Bind v (checked by sqljson_problem) to parameter i of st; col, the column
 * it goes to, may be NULL. true/false become 1/0. Returns SQLite's code. */
int sqljson_bind(sqlite3_stmt *st, int i, struct json_object *v, const struct column *col);

/* v as JSON: a new reference (caller puts), or NULL for SQL NULL. Reals keep
 * the shortest form that reads back the same, with a ".0" so they stay reals;
 * infinity is 9e999 or -9e999. Text that is not valid UTF-8 (the app may
 * store anything) has each bad byte replaced by U+FFFD. */
struct json_object *sqljson_value(sqlite3_value *v);

#endif
