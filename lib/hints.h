/*
 * hints: what a deployment tells clients about itself, decided in one place.
 *
 * Two facts depend on the host, not on the request: whether an event answer in
 * "auto" mode can stream here (a web server that buffers the program's output,
 * such as mod_fcgid at its defaults, turns a stream into silence), and how big
 * a push body may be. sync-events asks hints_poll() which mode to answer in;
 * sync-pull and sync-push hand both facts to the browser library in one
 * response header, so it polls at once where the server polls and bounds its
 * push batches to what the server takes (docs/EVENTS.md, docs/CLIENT.md):
 *
 *   X-Rhtmx-Sync: events=poll; max-body=1048576; max-changes=1000
 */
#ifndef RHTMX_HINTS_H
#define RHTMX_HINTS_H

#include "config.h"
#include "http.h"

/* The name of the variable that says output reaches clients unbuffered behind
 * Apache (apache/fcgid.conf sets it next to FcgidOutputBufferSize 0). */
#define HINTS_STREAMING_VAR "RHTMX_SYNC_STREAMING"

/* 1 if an events answer for req polls when the client asks for no mode: the
 * config says "poll"; or it says "auto" and the program runs as plain CGI, or
 * behind Apache (SERVER_SOFTWARE) without RHTMX_SYNC_STREAMING=1 in its
 * environment or the request's. 0 if it streams. */
int hints_poll(const struct http_req *req, const struct config *cfg);

/* Queue the X-Rhtmx-Sync header on req's answer. */
void hints_header(struct http_req *req, const struct config *cfg);

#endif
