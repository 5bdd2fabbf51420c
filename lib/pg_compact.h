/*
 * pg_compact: log retention for PostgreSQL (cmake -DRHTMX_POSTGRES=ON).
 *
 * The rules of compact.h, unchanged: entries older than retention.days that
 * are tombstones or superseded go, the newest entry of every live row stays,
 * the horizon rises to the highest tombstone removed (so a client that may
 * have missed one resyncs), old push answers go too. Batches of
 * COMPACT_BATCH entries, each in a transaction of its own. Compaction takes no
 * version, so it never waits for or holds up the writers' counter row; two
 * processes (two web servers) never compact at once: each batch takes a
 * transaction-level advisory lock, and the opportunistic form skips its turn
 * when another holds it.
 */
#ifndef RHTMX_PG_COMPACT_H
#define RHTMX_PG_COMPACT_H

#include "compact.h"
#include "config.h"
#include "err.h"
#include "pg.h"

/* compact_run() for PostgreSQL. Must not be called inside a transaction. */
int pg_compact_run(struct pg *p, const struct config *cfg, struct compact_stats *st, struct err *e);

/* compact_maybe() for PostgreSQL: at most one batch when the last compaction
 * is COMPACT_INTERVAL seconds old; 1 if it compacted, else 0 (failures go to
 * the log once). */
int pg_compact_maybe(struct pg *p, const struct config *cfg);

#endif
