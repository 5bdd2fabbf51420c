/*
 * cors: what a page on another origin may do with our answers.
 *
 * A browser lets a page read an answer from another origin, and send it
 * credentials (the cookie, an Authorization header), only when the answer
 * says so (Cross-Origin Resource Sharing). The origins that may are those of
 * auth.allowed_origins, and no others: for a request whose Origin is one of
 * them every answer (errors included) carries
 *
 *   Access-Control-Allow-Origin: <that origin>
 *   Access-Control-Allow-Credentials: true
 *   Access-Control-Expose-Headers: Retry-After, X-Rhtmx-Sync
 *   Vary: Origin
 *
 * and the preflight (OPTIONS, which a browser sends before a push or a request
 * with Authorization) is answered with the methods and request headers the
 * browser library uses. For any other origin nothing of this is sent, so the
 * browser keeps the answer from the page. Same-origin pages need none of it.
 */
#ifndef RHTMX_CORS_H
#define RHTMX_CORS_H

#include "config.h"
#include "http.h"

#define CORS_ALLOW_HEADERS "Authorization, Content-Type"
#define CORS_MAX_AGE "600" /* seconds a browser may reuse a preflight answer */

/* Queue the CORS headers on req when its Origin is listed in cfg; nothing
 * otherwise. Call once the config is loaded, before answering (errors too).
 * Returns 1 if the origin is listed, else 0. */
int cors_headers(const struct config *cfg, struct http_req *req);

/* Answer an OPTIONS request with 204 and "Allow: allow" (every method the
 * URL takes). For a listed Origin asking (Access-Control-Request-Method) for
 * one of methods (a comma-separated list), also the preflight's permission:
 * Access-Control-Allow-Methods: methods, -Allow-Headers, -Max-Age, and the
 * headers of cors_headers(). */
void cors_options(const struct config *cfg, struct http_req *req, const char *allow,
                  const char *methods);

#endif
