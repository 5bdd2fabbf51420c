/*
 * events: one answer of GET /api/sync/events, as a Server-Sent Events stream
 * or as one poll (docs/PROTOCOL.md "Events", docs/EVENTS.md).
 *
 * events_parse declares and checks the request's input (entities, since,
 * Last-Event-ID, mode) against the configuration and copies what the answer
 * needs, so the answer itself holds no pointer into a configuration that a
 * reload may free. events_serve then writes the answer from a hub (hub.h):
 *
 *   retry: 2000            sent and flushed at once, so a client sees bytes
 *   : rhtmx-sync stream    (or "poll") within milliseconds
 *   event: schema          each entity's schema fingerprint, as pull answers
 *   data: {"todos":"..."}  carry it (events_schemas)
 *   id: 47                 one event per change after the cursor, in version
 *   data: {...}            order, each once
 *   : keep-alive           a comment after every heartbeat seconds of silence
 *   event: bye             the answer ends on purpose: lifetime reached, poll
 *   id: 47                 answered, token expired, the process stops, or the
 *                          database's schema changed (the reconnect's answer
 *                          opens with the new fingerprints). Carries the cursor.
 *   data: {"version":47}
 *
 * or "event: resync" with {"version":head} when the cursor cannot be resumed
 * (older than the horizon, newer than the head, or the database was replaced),
 * after which the answer ends.
 */
#ifndef RHTMX_EVENTS_H
#define RHTMX_EVENTS_H

#include "auth.h"
#include "config.h"
#include "hangup.h"
#include "http.h"
#include "hub.h"
#include "schema.h"
#include "streams.h"

/* The retry: of a poll answer (ms), whatever events.retry_ms says: the gap in
 * which a plain EventSource is not listening between two polls. */
#define EVENTS_POLL_RETRY_MS 100

struct events_params {
    struct hub_filter filter; /* owned: names and owners copied */
    long long cursor;         /* -1: none given, start at the head */
    long long expires;        /* the identity's token expiry (seconds since 1970), 0: none */
    int poll;                 /* answer once, as soon as there is something */
    int heartbeat, lifetime, poll_wait, max_streams, retry_ms; /* seconds / ms, from the config */
    long long deadline; /* the request's bound on waiting for the database (db_deadline); the
                           caller sets it after events_parse; 0: none */
    char *schemas;      /* owned: the "schema" event's data (events_schemas), or NULL */
};

/* Fill p from req and cfg for identity who (auth.h). -1 with e set: 400 for
 * malformed input, 404 for an entity that is not configured, 403 for one who
 * may not see, 500 config for an owner rule auth mode "none" cannot honour.
 * Without ?entities= the stream carries every entity who may see. p needs
 * events_params_clear() either way. */
int events_parse(const struct http_req *req, const struct config *cfg, const struct identity *who,
                 struct events_params *p, struct err *e);
void events_params_clear(struct events_params *p);

/* Set p->schemas to {"entity":"fingerprint",...} for the entities of p's
 * filter (every table of s when it names none), from s as the request saw it
 * after app_ready. Entities s does not hold are left out. */
void events_schemas(struct events_params *p, const struct schema *s);

/* Answer req from h: 503 busy (with Retry-After) over p->max_streams, else the
 * stream or poll. Under FastCGI with a loop l (may be NULL) the answer is
 * handed to l once it is open and this returns at once; otherwise it returns
 * when the answer is complete, and hu (may be NULL) notices a peer that hangs
 * up while idle. */
void events_serve(struct hub *h, struct hangup *hu, struct streams *l,
                  const struct events_params *p, struct http_req *req);

/* Answer e (a 503) with a Retry-After of 5 to 14 s, spread per answer. */
void events_busy(struct http_req *req, const struct err *e);

#endif
