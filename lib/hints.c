/*
 * hints: the deployment facts sync-events decides by and the browser library is
 * told (see hints.h).
 */
#include "hints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 if s is set to "1" (or "on", "yes", "true"). NULL is unset. */
static int
is_on(const char *s)
{
    return s != NULL && (strcmp(s, "1") == 0 || strcmp(s, "on") == 0 || strcmp(s, "yes") == 0 ||
                         strcmp(s, "true") == 0);
}

/* mod_fcgid holds a program's output in FcgidOutputBufferSize (65536) blocks
 * unless the server config sets it to 0; the program cannot see that setting,
 * so the shipped config says so through RHTMX_SYNC_STREAMING (FcgidInitialEnv
 * reaches the process environment, SetEnv the request's). */
static int
behind_buffering_apache(const struct http_req *req)
{
    const char *sw = req->in.server_software;

    if (sw == NULL || strncmp(sw, "Apache", 6) != 0)
        return 0;
    return !is_on(getenv(HINTS_STREAMING_VAR)) && !is_on(req->in.streaming);
}

int
hints_poll(const struct http_req *req, const struct config *cfg)
{
    if (cfg->events.mode == EVENTS_POLL)
        return 1;
    if (cfg->events.mode == EVENTS_STREAM)
        return 0;
    return http_is_cgi() || behind_buffering_apache(req);
}

void
hints_header(struct http_req *req, const struct config *cfg)
{
    char v[96];

    snprintf(v, sizeof(v), "events=%s; max-body=%ld; max-changes=%d",
             hints_poll(req, cfg) ? "poll" : "stream", cfg->push.max_body_bytes,
             cfg->push.max_changes);
    http_header(req, "X-Rhtmx-Sync", v);
}
