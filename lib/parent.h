/*
 * parent: a FastCGI process ends when the web server that started it is gone.
 *
 * A web server stops its FastCGI processes when it stops, but one killed with
 * SIGKILL (or crashed) cannot: they would live on, re-parented to init, holding
 * the database open and serving nobody. parent_watch() sets two guards:
 *
 * - the kernel's parent-death signal (prctl PR_SET_PDEATHSIG): SIGTERM as soon
 *   as the parent exits, which starts the program's usual graceful stop;
 * - a thread that looks once a second, for what the signal misses (it follows
 *   the thread that forked, not the process; a process started through an
 *   intermediate): a parent other than the one at start means the one that
 *   started this process is gone. A parent that runs the same program as its
 *   own parent is taken for a helper of the web server (mod_fcgid's process
 *   manager is a forked Apache, and outlives an Apache killed with SIGKILL):
 *   then the helper's parent changing means the web server is gone. Either
 *   way SIGTERM follows.
 *
 * A process with no web server for a parent is not watched: one whose parent
 * is init already at start (daemonised), one started by spawn-fcgi (which
 * exits as soon as its child runs: nginx setups, nginx/rhtmx-sync-fcgi.sh),
 * and one whose environment sets RHTMX_SYNC_DETACHED=1 (any other process
 * manager that does not stay; the manager then stops it). If the graceful stop
 * has not ended the process PARENT_GRACE_S seconds after the SIGTERM, the
 * thread ends it at once.
 */
#ifndef RHTMX_PARENT_H
#define RHTMX_PARENT_H

#define PARENT_CHECK_MS 1000
#define PARENT_GRACE_S 10

/* Start watching the parent. Call once, from a FastCGI program's main thread,
 * with SIGTERM handled (or blocked and taken with sigwait) by the program. */
void parent_watch(void);

/* Stop watching (the thread ends and is joined): before the program returns
 * from main. Harmless without parent_watch(). */
void parent_unwatch(void);

#endif
