/*
 * hangup: notice that the peer of a connection went away while nobody reads or
 * writes it.
 *
 * An event stream spends its life waiting; without this, a browser that left
 * would only be noticed when the next heartbeat fails to write, up to a
 * heartbeat interval later. One thread per process waits in epoll for
 * EPOLLRDHUP, EPOLLHUP and EPOLLERR on every registered descriptor and calls
 * the registration's callback once. The callback only means "check the
 * connection": a web server may half-close its side after sending the request,
 * so the owner probes with a write before giving up on the peer.
 */
#ifndef RHTMX_HANGUP_H
#define RHTMX_HANGUP_H

#include "err.h"

struct hangup;

/* Start the watcher thread. Returns a new hangup (hangup_free) or NULL with e set. */
struct hangup *hangup_new(struct err *e);
/* Stop the thread and release. Every registration must be deleted. NULL is harmless. */
void hangup_free(struct hangup *hu);

/* Call cb(ctx) once, from the watcher thread, when fd's peer hangs up. cb runs
 * under the hangup lock: it must be short and must not call hangup functions.
 * Returns a registration id (> 0), or 0 if fd cannot be watched (the caller
 * then relies on failing writes). */
unsigned long hangup_add(struct hangup *hu, int fd, void (*cb)(void *ctx), void *ctx);

/* Cancel registration id (0 is harmless). When this returns, its callback is
 * not running and will not run. */
void hangup_del(struct hangup *hu, unsigned long id);

#endif
