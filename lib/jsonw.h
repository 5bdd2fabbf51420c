/*
 * jsonw: a streaming JSON writer.
 *
 * Big answers (a pull page of 1,000 rows, a full sync of 100,000) are written
 * piece by piece into a sink instead of being built as a json-c tree first, so
 * memory stays flat whatever the size. The caller writes punctuation itself
 * with jsonw_raw; these helpers only guarantee that every value they emit is
 * valid JSON: strings are escaped and invalid UTF-8 becomes U+FFFD.
 */
#ifndef RHTMX_JSONW_H
#define RHTMX_JSONW_H

#include <stddef.h>

#include "buf.h"

struct sqlite3_stmt;

/* All return 0, or -1 once the sink has failed (the peer went away). */
int jsonw_raw(const struct sink *s, const char *text);
int jsonw_string(const struct sink *s, const char *p, size_t n);
int jsonw_cstring(const struct sink *s, const char *text); /* NULL writes null */
int jsonw_int(const struct sink *s, long long v);
/* v in decimal at out (which has room for 20 bytes); returns the length. */
size_t jsonw_format_int(char *out, long long v);
/* Column col of a stepped statement, typed: integer, real, string, null; a blob
 * becomes its hex string. Infinity is 9e999 or -9e999 (valid JSON that reads
 * back as infinity), NaN null. */
int jsonw_column(const struct sink *s, struct sqlite3_stmt *st, int col);

#endif
