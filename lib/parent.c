/* parent: see parent.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "monotime.h"
#include "parent.h"

/* Set by parent_watch(), read-only afterwards. */
static pid_t parent;      /* who started this process */
static pid_t grandparent; /* the web server behind a helper parent, or 0 */

/* The watcher thread, and how parent_unwatch() ends it. */
static pthread_t watcher;
static int watching;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond; /* on CLOCK_MONOTONIC */
static int stopping;        /* under mu */

/* Wait ms, or less if parent_unwatch() is called: then 1. */
static int
nap_ms(long ms)
{
    struct timespec until = monotime_in_ms(ms);
    int stop;

    pthread_mutex_lock(&mu);
    while (!stopping && pthread_cond_timedwait(&cond, &mu, &until) != ETIMEDOUT)
        ;
    stop = stopping;
    pthread_mutex_unlock(&mu);
    return stop;
}

/* The parent of pid and its program name (comm, into name), from /proc: any
 * user may read it. -1 when pid is gone. */
static pid_t
proc_parent(pid_t pid, char *name, size_t len)
{
    char path[64], line[512], *lp, *rp;
    size_t n;
    FILE *f;
    int ppid = -1;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold anything, ")" included. */
    lp = strchr(line, '(');
    rp = strrchr(line, ')');
    if (lp == NULL || rp == NULL || rp < lp || sscanf(rp + 1, " %*c %d", &ppid) != 1)
        return -1;
    snprintf(name, len, "%.*s", (int)(rp - lp - 1), lp + 1);
    return (pid_t)ppid;
}

/* 1 while whoever started this process is there. */
static int
parent_there(void)
{
    char name[64];

    if (getppid() != parent)
        return 0;
    return grandparent == 0 || proc_parent(parent, name, sizeof(name)) == grandparent;
}

/* 1 when the environment says a process manager that does not stay started
 * this process (RHTMX_SYNC_DETACHED set and not "0"). */
static int
parent_detached(void)
{
    const char *v = getenv("RHTMX_SYNC_DETACHED");

    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

/* The watcher thread: every signal is blocked in it, so the SIGTERM it sends
 * reaches the thread that handles or waits for it. */
static void *
parent_main(void *arg)
{
    (void)arg;
    while (parent_there())
        if (nap_ms(PARENT_CHECK_MS))
            return NULL;
    log_msg("the web server (pid %d) is gone: stopping",
            (int)(grandparent != 0 ? grandparent : parent));
    kill(getpid(), SIGTERM);
    if (nap_ms(PARENT_GRACE_S * 1000L))
        return NULL; /* the graceful stop got there first */
    log_msg("still running %d s after the web server went: exiting", PARENT_GRACE_S);
    _exit(1);
}

void
parent_watch(void)
{
    char name[64] = "", gname[64];
    sigset_t all, old;
    pthread_condattr_t ca;
    pid_t gp;

    parent = getppid();
    if (parent == 1 || parent_detached())
        return;
    gp = proc_parent(parent, name, sizeof(name));
    if (strcmp(name, "spawn-fcgi") == 0)
        return; /* it exits once this process runs: there is no web server to follow */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* A parent running the same program as its own parent is a helper of the
     * web server (mod_fcgid's process manager is a forked Apache), which can
     * outlive it: the web server is the grandparent then. */
    if (gp > 1 && proc_parent(gp, gname, sizeof(gname)) >= 0 && strcmp(name, gname) == 0)
        grandparent = gp;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cond, &ca);
    pthread_condattr_destroy(&ca);
    /* A parent gone before prctl() is seen by the thread's first look. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    watching = pthread_create(&watcher, NULL, parent_main, NULL) == 0;
    if (!watching)
        fputs("rhtmx-sync: cannot start the thread watching the web server\n", stderr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void
parent_unwatch(void)
{
    if (!watching)
        return;
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mu);
    pthread_join(watcher, NULL);
    watching = 0;
}
