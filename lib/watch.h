/*
 * watch: notice that a SQLite database may have changed, without polling it.
 *
 * Every writer (sync-push, the PHP app, the sqlite3 shell) commits by writing
 * the database's -wal file (or, in rollback-journal mode, the file itself), so
 * an inotify watch on those two files sees every commit made on this machine,
 * whoever made it. The folder is watched as well, for the -wal file appearing
 * (a new WAL after the last connection closed) and for the database being
 * replaced by another file (a restore from backup).
 *
 * Where inotify is unavailable (the per-user instance limit is reached, a file
 * system without it) watch_wait simply waits for its timeout, so the caller's
 * timeout is the safety net either way: choose it short when watch_active()
 * says 0.
 *
 * An inotify event comes with the write, which is a few microseconds before the
 * writer publishes the commit in the WAL index; a reader that looks at once may
 * not see it yet. Callers look again shortly after a change (see hub.c).
 */
#ifndef RHTMX_WATCH_H
#define RHTMX_WATCH_H

#include "err.h"

struct watch;

/* watch_wait results, a bit set. */
enum {
    WATCH_TIMEOUT = 0,
    WATCH_CHANGED = 1, /* the files were written (or the -wal file came or went) */
    WATCH_WOKEN = 2,   /* watch_wake() was called */
};

/* Watch the database file at path (it need not have a -wal file yet). Returns
 * a new watch (watch_free), or NULL with e set when even the wake-up descriptor
 * cannot be made. Without inotify the watch still works, by timeouts only. */
struct watch *watch_new(const char *path, struct err *e);
void watch_free(struct watch *w); /* NULL is harmless */

/* 1 if inotify watches are in place, 0 if watch_wait can only time out. */
int watch_active(const struct watch *w);

/* Wait until the database may have changed, watch_wake() is called, or
 * timeout_ms passed (-1: no limit). Returns the WATCH_* bits (0: timeout). */
int watch_wait(struct watch *w, int timeout_ms);

/* Make the current or next watch_wait return WATCH_WOKEN. Any thread. */
void watch_wake(struct watch *w);

/* 1 if the path now names another file than the one watched since watch_new
 * or the last watch_rearm (it was replaced or removed). */
int watch_replaced(struct watch *w);

/* Start watching whatever file is at the path now. */
void watch_rearm(struct watch *w);

#endif
