/*
 * pg_push: a push batch applied to PostgreSQL (cmake -DRHTMX_POSTGRES=ON).
 *
 * The same contract as push_batch() (push.h): the body is checked whole by
 * push_body_parse() before anything is touched; the batch runs in one
 * transaction; each change in a SAVEPOINT of its own, rejected alone when it
 * can never apply; conflicts decided by conflict_resolve() under the entity's
 * strategy (the custom resolver included); every outcome stored in
 * _rhtmx_sync_mutations so a retried batch writes nothing twice and gets the
 * same answer; owner rules as push.h states them. The answer is the same JSON.
 *
 * What differs is storage only: values are bound as text parameters and
 * PostgreSQL casts them to the column's type; the pushing client's id reaches
 * the triggers through the transaction-local setting rhtmx_sync.client_id;
 * the row a client last saw (a merge's base) is the log entry's jsonb, read
 * back through the table's row type so it compares like the server's row.
 */
#ifndef RHTMX_PG_PUSH_H
#define RHTMX_PG_PUSH_H

#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "pg.h"
#include "push.h"
#include "schema.h"

/* push_batch() against PostgreSQL: 0 with the answer appended to out, or -1
 * with e set and nothing changed. */
int pg_push_batch(struct pg *p, const struct table *t, const struct push_opts *o, const char *body,
                  size_t n, struct buf *out, struct err *e);

#endif
