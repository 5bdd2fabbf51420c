/*
 * streams: one event loop that owns every open event stream of a FastCGI
 * process, so that 10,000 open pages cost 10,000 small structs and sockets,
 * not 10,000 threads.
 *
 * A request thread parses a stream's request, joins the hub, sends the
 * headers and the opening lines, then hands the stream's FastCGI connection
 * to the loop (streams_adopt) and goes back to accepting. From then on the
 * loop thread alone writes to that connection, as FastCGI STDOUT records sent
 * without blocking:
 *
 *   - changes: a hub tells the loop when it has something new (hub_listen);
 *     the loop takes each stream's share (hub_take: the backlog after the
 *     stream's cursor first, then the live changes) and writes it;
 *   - heartbeats after events.heartbeat seconds of silence;
 *   - the end on purpose ("bye" with the cursor) at the stream's lifetime, a
 *     poll's end, the token's expiry or a stop, and "resync" when the cursor
 *     cannot be resumed; then FCGI_END_REQUEST, and the connection is closed
 *     once the web server closed its side (or 2 s later);
 *   - the web server closing the connection (the browser left) or aborting
 *     the request: the stream is dropped at once.
 *
 * Each stream's unsent output is bounded: the loop takes more from the hub
 * only while less than STREAMS_OUT_LOW bytes wait, so a slow reader holds
 * its place in the log (its cursor), not a copy of it. A stream whose web
 * server takes nothing for STREAMS_STALL_S seconds is ended with "bye" after
 * what it has; the client resumes from the last event it read.
 *
 * Threads: streams_new starts the loop thread; streams_adopt is called from
 * request threads; everything else about a stream happens on the loop thread.
 */
#ifndef RHTMX_STREAMS_H
#define RHTMX_STREAMS_H

#include "buf.h"
#include "err.h"
#include "hub.h"

#define STREAMS_OUT_LOW 65536 /* take more events only below this many unsent bytes */
#define STREAMS_STALL_S 20    /* a connection that takes no byte for this long is ended */

struct streams;

/* What the loop needs to own one stream. */
struct streams_stream {
    struct hub *hub;      /* borrowed: outlives the stream (the caller's reference) */
    struct hub_stream *s; /* joined to hub, cursor set; owned by the loop from now on,
                             freed with free() after hub_leave, its filter too */
    int fd;               /* the FastCGI connection; owned by the loop from now on */
    int request_id;       /* its FastCGI request id */
    int keep;             /* the web server asked to keep the connection (FCGI_KEEP_CONN) */
    int poll;             /* answer once: end after the first events or at poll_end_ms */
    long long heartbeat_ms;
    long long end_ms;      /* CLOCK_MONOTONIC milliseconds: bye then */
    long long poll_end_ms; /* ... for a poll without events */
    long long stall_ms;    /* no byte taken for this long: bye (0: STREAMS_STALL_S); the
                              bye then has STREAMS_STALL_S more to leave */
};

/* Start the loop thread. Returns a new loop (streams_free) or NULL with e set. */
struct streams *streams_new(struct err *e);

/* End every stream with "bye", give their connections up to a second to take
 * it, stop the thread and release. The hubs must still exist. NULL is harmless. */
void streams_free(struct streams *l);

/* Hand st to the loop (from any thread); st is copied. */
void streams_adopt(struct streams *l, const struct streams_stream *st);

/* Streams the loop owns now. */
size_t streams_count(struct streams *l);

/* The hub callback (hub_listen) that wakes loop l, given as ctx. */
void streams_wake(void *l);

/* The SSE text that ends a stream on purpose, and the one that asks for a
 * full resync, appended to b. */
void streams_say_bye(struct buf *b, long long cursor);
void streams_say_resync(struct buf *b, long long version);

/* CLOCK_MONOTONIC in milliseconds: db_now_ms(), the clock of every deadline. */
long long streams_now_ms(void);

#endif
