/*
 * pg_pull: a pull answered from PostgreSQL (cmake -DRHTMX_POSTGRES=ON).
 *
 * The same answer as changelog_pull() gives from SQLite, byte for byte where
 * the values are the same (pg_json.h says how PostgreSQL's types are
 * written), with the same cursor rules, the same 410 resync_required answers,
 * and the same promise that nothing is written unless the read succeeded.
 * The whole answer is read in one REPEATABLE READ snapshot: the head and
 * every change at or below it are committed in it (pg_schema.h: versions are
 * handed out in commit order), so a client that stores the answer's version
 * as its cursor never skips a change committed later.
 */
#ifndef RHTMX_PG_PULL_H
#define RHTMX_PG_PULL_H

#include "buf.h"
#include "changelog.h"
#include "err.h"
#include "pg.h"
#include "schema.h"
#include "scope.h"

/* Write the pull answer for a (a->sql is ignored) on table t to out: 0, or -1
 * with e set as changelog_pull() does. Runs in a read transaction of its own.
 * For an entity with a scope, w (borrowed) is who asks: the answer comes from
 * their view (pg_scope.h), reconciled first in a transaction of its own, and a
 * cursor below the view's birth answers 410 resync_required. */
int pg_pull(struct pg *p, const struct table *t, const struct pull_args *a,
            const struct scope_who *w, const struct sink *out, struct err *e);

#endif
