/*
 * jsonr: reading JSON input with json-c, strictly.
 *
 * Every JSON document that enters the program (config file, push body, token
 * payload) goes through jsonr_parse: strict RFC 8259 mode, a depth limit, the
 * whole input consumed (trailing bytes other than whitespace are an error), and
 * no NUL bytes inside the text.
 */
#ifndef RHTMX_JSONR_H
#define RHTMX_JSONR_H

#include <stddef.h>

#include <json-c/json.h>

#include "err.h"

/* Parse n bytes. Returns a new reference (caller puts), or NULL with e set to
 * 400 bad_request naming the problem and its byte offset. */
struct json_object *jsonr_parse(const char *p, size_t n, int max_depth, struct err *e);

/* Object key lookup with a type check: returns the borrowed value, or NULL when
 * the key is absent or JSON null. When present with another type, returns NULL
 * and sets *bad to 1. */
struct json_object *jsonr_get(struct json_object *obj, const char *key, enum json_type type,
                              int *bad);

#endif
