/*
 * watch: see watch.h.
 *
 * Three inotify watches: the folder (names appearing and disappearing), the
 * database file and its -wal file (IN_MODIFY). A watch on a file follows its
 * inode, so when the -wal file is deleted and made again, or the database is
 * replaced, the folder's event tells us to add the file's watch again.
 * An eventfd carries watch_wake() into the poll() of watch_wait().
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "watch.h"

struct watch {
    char *path;    /* the database file */
    char *dir;     /* its folder */
    char *name;    /* its file name in dir */
    char *walname; /* name + "-wal" */
    char *walpath; /* path + "-wal" */
    int ino;       /* inotify descriptor, -1 without inotify */
    int efd;       /* eventfd for watch_wake */
    int wd_dir, wd_db, wd_wal;
    dev_t dev;     /* the database file's identity when armed */
    ino_t inode;
    int have_id;
};

/* Only writes: a connection opening or closing the file (every PHP request)
 * is no news. */
#define FILE_MASK IN_MODIFY
#define DIR_MASK (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR)

static void
add_file_watches(struct watch *w)
{
    if (w->ino < 0)
        return;
    /* Adding an inode already watched returns its descriptor again: harmless. */
    w->wd_db = inotify_add_watch(w->ino, w->path, FILE_MASK);
    w->wd_wal = inotify_add_watch(w->ino, w->walpath, FILE_MASK);
}

void
watch_rearm(struct watch *w)
{
    struct stat sb;

    w->have_id = stat(w->path, &sb) == 0;
    if (w->have_id) {
        w->dev = sb.st_dev;
        w->inode = sb.st_ino;
    }
    add_file_watches(w);
}

/* s + "-wal", new string or NULL. */
static char *
with_wal(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n + 5);

    if (p != NULL) {
        memcpy(p, s, n);
        memcpy(p + n, "-wal", 5);
    }
    return p;
}

struct watch *
watch_new(const char *path, struct err *e)
{
    struct watch *w = calloc(1, sizeof(*w));
    const char *slash;

    if (w == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return NULL;
    }
    w->ino = w->efd = -1;
    w->wd_dir = w->wd_db = w->wd_wal = -1;
    slash = strrchr(path, '/');
    w->path = strdup(path);
    w->dir = slash == NULL ? strdup(".") : slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    w->name = strdup(slash == NULL ? path : slash + 1);
    w->walname = with_wal(w->name);
    w->walpath = with_wal(path);
    if (w->path == NULL || w->dir == NULL || w->name == NULL || w->walname == NULL ||
        w->walpath == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto err;
    }
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        err_set(e, 500, "internal", "eventfd: %s", strerror(errno));
        goto err;
    }
    w->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->ino >= 0) {
        w->wd_dir = inotify_add_watch(w->ino, w->dir, DIR_MASK);
        if (w->wd_dir < 0) {
            close(w->ino);
            w->ino = -1;
        }
    }
    watch_rearm(w);
    return w;
err:
    watch_free(w);
    return NULL;
}

void
watch_free(struct watch *w)
{
    if (w == NULL)
        return;
    if (w->ino >= 0)
        close(w->ino);
    if (w->efd >= 0)
        close(w->efd);
    free(w->path);
    free(w->dir);
    free(w->name);
    free(w->walname);
    free(w->walpath);
    free(w);
}

int
watch_active(const struct watch *w)
{
    return w->ino >= 0;
}

void
watch_wake(struct watch *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->efd, &one, sizeof(one));
    (void)n; /* EAGAIN: a wake-up is already pending, which is all we want */
}

/* Read every queued inotify event. Returns WATCH_CHANGED if one concerns us. */
static int
drain(struct watch *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int changed = 0, rearm = 0;
    ssize_t n;

    while ((n = read(w->ino, buf, sizeof(buf))) > 0) {
        char *p = buf;
        while (p < buf + n) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->wd == w->wd_dir) {
                if (ev->len == 0)
                    continue;
                if (strcmp(ev->name, w->name) == 0 || strcmp(ev->name, w->walname) == 0) {
                    changed = 1;
                    if (ev->mask & (IN_CREATE | IN_MOVED_TO))
                        rearm = 1;
                }
            } else if (ev->mask & IN_MODIFY) {
                changed = 1;
            }
            /* IN_IGNORED (a watched file went away): the folder event says so too. */
        }
    }
    if (rearm)
        add_file_watches(w);
    return changed ? WATCH_CHANGED : 0;
}

int
watch_wait(struct watch *w, int timeout_ms)
{
    struct pollfd p[2];
    int n = 0, rc, res = 0;

    p[n].fd = w->efd;
    p[n++].events = POLLIN;
    if (w->ino >= 0) {
        p[n].fd = w->ino;
        p[n++].events = POLLIN;
    }
    do
        rc = poll(p, (nfds_t)n, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc <= 0)
        return WATCH_TIMEOUT;
    if (p[0].revents & POLLIN) {
        uint64_t v;
        ssize_t r = read(w->efd, &v, sizeof(v));
        (void)r;
        res |= WATCH_WOKEN;
    }
    if (n > 1 && (p[1].revents & POLLIN))
        res |= drain(w);
    return res;
}

int
watch_replaced(struct watch *w)
{
    struct stat sb;

    if (stat(w->path, &sb) != 0)
        return w->have_id;
    return !w->have_id || sb.st_dev != w->dev || sb.st_ino != w->inode;
}
