/*
 * compact: log retention, so _rhtmx_sync_log does not grow forever.
 *
 * A pull only ever sends the newest entry of each row, and a full sync
 * (since=0) only the newest entries of live rows. So once they are older than
 * retention.days, two kinds of entries are only there for clients that have
 * been away that long, and are removed:
 *   superseded entries  the row changed again later;
 *   tombstones          the row's newest entry is a delete: the row is gone.
 * The newest entry of every live row is kept however old it is, so a full sync
 * stays complete and the log ends up one entry per live row plus the recent
 * past. Push answers remembered for retries (_rhtmx_sync_mutations) older than
 * the retention go too.
 *
 * Removing entries raises the horizon in _rhtmx_sync_state to the highest
 * version removed, in the same write transaction (BEGIN IMMEDIATE). A client
 * whose cursor is below the horizon may have missed a removed tombstone, so
 * sync-pull answers it 410 resync_required and sync-events "resync": it pulls
 * every entity from 0 and ends with exactly the server's rows.
 *
 * Entry ages come from created_at (ISO-8601 UTC, written by the triggers).
 */
#ifndef RHTMX_COMPACT_H
#define RHTMX_COMPACT_H

#include "config.h"
#include "db.h"
#include "err.h"

#define COMPACT_BATCH 5000   /* log entries removed per write transaction, at most */
#define COMPACT_INTERVAL 600 /* seconds between opportunistic compactions */

struct compact_stats {
    long long removed;   /* log entries removed */
    long long mutations; /* remembered push answers removed */
    long long horizon;   /* the horizon afterwards */
    long long head;      /* the head version (unchanged by compaction) */
    long long entries;   /* log entries left */
};

/*
 * Compact everything older than cfg->retention.days now: batches of at most
 * COMPACT_BATCH entries, each in its own BEGIN IMMEDIATE transaction (so other
 * writers wait for one batch at most), oldest first, until nothing is left to
 * remove. Also records the time in _rhtmx_sync_state ('compacted_at'), which
 * compact_maybe() reads. st (may be NULL) is filled on success. 0, or -1 with e
 * set; batches committed before a failure stay committed (each is consistent).
 * Must not be called inside a transaction.
 */
int compact_run(struct db *d, const struct config *cfg, struct compact_stats *st, struct err *e);

/*
 * The opportunistic form, cheap enough to call after every push commits: one
 * indexed read, and only when the last compaction is COMPACT_INTERVAL seconds
 * old, one batch. It never waits for the write lock (another writer holding it
 * means "not now"), and a failure is not the caller's problem: it is written to
 * stderr once and reported as not done. Returns 1 if it compacted, 0 if not
 * (not due, busy, read-only, failed). Must not be called inside a transaction.
 */
int compact_maybe(struct db *d, const struct config *cfg);

#endif
