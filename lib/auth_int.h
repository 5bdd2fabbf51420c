/*
 * auth_int: what the files of the auth family share and nothing else uses.
 */
#ifndef RHTMX_AUTH_INT_H
#define RHTMX_AUTH_INT_H

#include <stddef.h>

#include "auth.h"

/* The current secret of cfg, copied into key (AUTH_SECRET_MAX bytes) and its
 * length into *len. 0, or -1 with e set (500 config, logged once while it
 * lasts). Thread-safe. */
int auth_secret_get(const struct config *cfg, unsigned char *key, size_t *len, struct err *e);

#endif
