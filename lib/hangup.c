/*
 * hangup: see hangup.h.
 *
 * Registrations live in a table of slots; the epoll data of a descriptor is
 * its slot index and the slot's generation, so an event that races with
 * hangup_del (the slot was freed, maybe reused) is recognised and dropped.
 * EPOLLONESHOT disarms a descriptor after its first event.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hangup.h"

struct slot {
    uint32_t gen; /* bumped on every reuse */
    int used;
    int fd;
    void (*cb)(void *ctx);
    void *ctx;
};

struct hangup {
    pthread_mutex_t mu;
    struct slot *slots;
    size_t nslots;
    int ep;  /* epoll */
    int efd; /* eventfd: stop */
    pthread_t thread;
    int started;
};

static void *
hangup_main(void *arg)
{
    struct hangup *hu = arg;
    struct epoll_event evs[64];

    for (;;) {
        int n = epoll_wait(hu->ep, evs, 64, -1), i;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            size_t idx;
            if (d == UINT64_MAX)
                return NULL; /* the stop eventfd */
            idx = (size_t)(d & 0xFFFFFFFFu);
            pthread_mutex_lock(&hu->mu);
            if (idx < hu->nslots && hu->slots[idx].used && hu->slots[idx].gen == (uint32_t)(d >> 32) &&
                hu->slots[idx].cb != NULL) {
                hu->slots[idx].cb(hu->slots[idx].ctx);
                hu->slots[idx].cb = NULL; /* once */
            }
            pthread_mutex_unlock(&hu->mu);
        }
    }
    return NULL;
}

struct hangup *
hangup_new(struct err *e)
{
    struct hangup *hu = calloc(1, sizeof(*hu));
    struct epoll_event ev;

    if (hu == NULL) {
        err_set(e, 500, "internal", "out of memory");
        return NULL;
    }
    pthread_mutex_init(&hu->mu, NULL);
    hu->ep = epoll_create1(EPOLL_CLOEXEC);
    hu->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (hu->ep < 0 || hu->efd < 0) {
        err_set(e, 500, "internal", "epoll/eventfd: %s", strerror(errno));
        goto err;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    if (epoll_ctl(hu->ep, EPOLL_CTL_ADD, hu->efd, &ev) < 0 ||
        pthread_create(&hu->thread, NULL, hangup_main, hu) != 0) {
        err_set(e, 500, "internal", "cannot start the hang-up watcher");
        goto err;
    }
    hu->started = 1;
    return hu;
err:
    hangup_free(hu);
    return NULL;
}

void
hangup_free(struct hangup *hu)
{
    if (hu == NULL)
        return;
    if (hu->started) {
        uint64_t one = 1;
        ssize_t n = write(hu->efd, &one, sizeof(one));
        (void)n;
        pthread_join(hu->thread, NULL);
    }
    if (hu->ep >= 0)
        close(hu->ep);
    if (hu->efd >= 0)
        close(hu->efd);
    free(hu->slots);
    pthread_mutex_destroy(&hu->mu);
    free(hu);
}

unsigned long
hangup_add(struct hangup *hu, int fd, void (*cb)(void *ctx), void *ctx)
{
    struct epoll_event ev;
    struct slot *s;
    size_t i;

    if (hu == NULL || fd < 0)
        return 0;
    pthread_mutex_lock(&hu->mu);
    for (i = 0; i < hu->nslots && hu->slots[i].used; i++)
        ;
    if (i == hu->nslots) {
        size_t n = hu->nslots ? hu->nslots * 2 : 64;
        struct slot *p = realloc(hu->slots, n * sizeof(*p));
        if (p == NULL) {
            pthread_mutex_unlock(&hu->mu);
            return 0;
        }
        memset(p + hu->nslots, 0, (n - hu->nslots) * sizeof(*p));
        hu->slots = p;
        hu->nslots = n;
    }
    s = &hu->slots[i];
    s->gen++;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLRDHUP | EPOLLONESHOT;
    ev.data.u64 = ((uint64_t)s->gen << 32) | (uint64_t)i;
    if (epoll_ctl(hu->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        pthread_mutex_unlock(&hu->mu);
        return 0; /* e.g. a regular file: no hang-ups to see */
    }
    s->used = 1;
    s->fd = fd;
    s->cb = cb;
    s->ctx = ctx;
    pthread_mutex_unlock(&hu->mu);
    return ((unsigned long)s->gen << 32 | (unsigned long)i) + 1;
}

void
hangup_del(struct hangup *hu, unsigned long id)
{
    size_t idx;

    if (hu == NULL || id == 0)
        return;
    id--;
    idx = (size_t)(id & 0xFFFFFFFFu);
    pthread_mutex_lock(&hu->mu);
    if (idx < hu->nslots && hu->slots[idx].used && hu->slots[idx].gen == (uint32_t)(id >> 32)) {
        epoll_ctl(hu->ep, EPOLL_CTL_DEL, hu->slots[idx].fd, NULL);
        hu->slots[idx].used = 0;
        hu->slots[idx].cb = NULL;
        hu->slots[idx].ctx = NULL;
    }
    pthread_mutex_unlock(&hu->mu);
}
