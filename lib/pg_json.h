/*
 * pg_json: PostgreSQL values (text format, with their type OID) as the JSON
 * values pulls send, the same as the SQLite backend sends for the same data.
 *
 *   smallint, integer, bigint, oid   a JSON integer
 *   real, double precision           a JSON number in the shortest form that
 *                                    reads back the same, with ".0" when it has
 *                                    no fraction (as SQLite's reals); infinity
 *                                    9e999 / -9e999; NaN null
 *   numeric                          the number as PostgreSQL writes it (NaN null)
 *   boolean                          true / false
 *   bytea                            upper-case hex text (as SQLite's blobs)
 *   anything else (text, varchar, dates, uuid, json...)  a JSON string of its
 *                                    text form
 *   NULL                             null
 */
#ifndef RHTMX_PG_JSON_H
#define RHTMX_PG_JSON_H

#include <libpq-fe.h>

#include "buf.h"

/* Write value v (NUL-terminated text form, or NULL for SQL NULL) of type oid to s.
 * 0, or -1 once s failed. */
int pg_json_value(const struct sink *s, Oid type, const char *v);

#endif
