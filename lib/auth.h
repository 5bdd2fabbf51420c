/*
 * auth: who is asking, and what they may touch.
 *
 * Every handler calls auth_request() right after app_ready() and before it
 * reads anything from the database. In auth mode "none" that yields an
 * anonymous identity; in mode "token" the request must carry an HS256 JWT,
 * in "Authorization: Bearer <token>" or in the cookie the config names
 * (auth.cookie, default "rhtmx_sync"), signed with the secret kept in
 * auth.secret_file. The token says who the user is ("sub"), until when
 * ("exp"), and optionally which entities it may touch ("entities").
 *
 * After that, per entity: auth_entity_allowed() (403 when the token's
 * "entities" list leaves it out) and auth_owner() (the owner value rows must
 * carry, for entities with owner_column). Writes also call auth_origin_ok()
 * (403 for cross-site requests).
 *
 * Owner values: the token's sub is a string. Compare it with the owner column
 * as text (bind it as text, compare against CAST(owner AS TEXT)), so that an
 * INTEGER user_id column holding 42 matches sub "42". Rows whose owner is NULL
 * belong to nobody and are seen by nobody.
 *
 * All functions follow err.h: 0, or -1 with e set. They are safe to call from
 * several threads (the secret cache is locked).
 */
#ifndef RHTMX_AUTH_H
#define RHTMX_AUTH_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "http.h"

#define AUTH_TOKEN_MAX 4096  /* bytes of a token; longer ones are refused (401) */
#define AUTH_SUB_MAX 255     /* bytes of "sub" */
#define AUTH_MAX_ENTITIES 64 /* names in a token's "entities" list */
#define AUTH_LEEWAY 60       /* seconds of clock skew allowed on exp and nbf */
#define AUTH_SECRET_MIN 32   /* bytes the secret must have, at least */
#define AUTH_SECRET_MAX 4096 /* bytes the secret file may have, at most */

struct identity {
    int anonymous;              /* 1 in auth mode "none": no token was asked for */
    char sub[AUTH_SUB_MAX + 1]; /* the token's subject; "" when anonymous */
    long long exp;              /* the token's expiry, seconds since 1970; 0 when anonymous */
    int nentities;              /* -1: every entity; else the count of names below */
    char entities[AUTH_MAX_ENTITIES][65];
};

/*
 * Who sent req. Mode "none": out is anonymous, returns 0. Mode "token": the
 * token is taken from "Authorization: Bearer" (when that header carries a
 * Bearer token) or else from the cookie, and verified; out is filled and 0
 * returned. Failures:
 *   401 unauthorized  no token, or a bad, expired or not-yet-valid one; a
 *                     "WWW-Authenticate: Bearer ..." header is queued on req,
 *                     so http_error(req, e) is all the caller does;
 *   500 config        the secret file is missing, unreadable, too short,
 *                     too long, or readable by everyone (logged to the error log,
 *                     once per distinct problem).
 */
int auth_request(const struct config *cfg, struct http_req *req, struct identity *out,
                 struct err *e);

/* 0 if id may touch entity (named as in the config), else 403 forbidden. */
int auth_entity_allowed(const struct identity *id, const char *entity, struct err *e);

/*
 * The owner rows of en must have for id: *owner is NULL when en has no
 * owner_column (rows are shared), else id->sub (borrowed from id). An
 * anonymous identity and an entity with owner_column is a configuration
 * mistake (auth mode "none" cannot tell users apart): 500 config, logged, and
 * nothing is served, rather than every user's rows to everyone.
 */
int auth_owner(const struct identity *id, const struct entity *en, const char **owner,
               struct err *e);

/*
 * Cross-site write protection, for every request that changes data. The
 * request's Origin header (or, when there is none, its Referer's origin) must
 * be one of auth.allowed_origins or the request's own origin (scheme and Host).
 * A request with neither header is allowed: browsers send Origin with every
 * cross-origin POST, so only non-browser clients omit both. 403 forbidden
 * otherwise. Applies in both auth modes.
 */
int auth_origin_ok(const struct config *cfg, const struct http_req *req, struct err *e);

/*
 * 1 if origin (an Origin header's value) is one of auth.allowed_origins,
 * compared as origins (case of scheme and host, default ports); out (outlen
 * bytes, 512 are enough) then holds it as a browser serialises it. 0 if not,
 * and for anything that is not an origin ("null", a path after the host).
 */
int auth_origin_listed(const struct config *cfg, const char *origin, char *out, size_t outlen);

/*
 * Load and check the secret of cfg (mode "token"; a no-op in mode "none"):
 * the same 500 config failures as auth_request. A program may call it at
 * start-up to refuse to run with a bad secret; auth_request calls it anyway.
 * The secret is cached per process and re-read when the file changes.
 */
int auth_ready(const struct config *cfg, struct err *e);

/*
 * The token verifier itself: tok (n bytes) against key, at time now (seconds
 * since 1970). 0 with out filled, or -1 with e set to 401 unauthorized. Used
 * by auth_request and by the tests and fuzzer.
 */
int auth_token_verify(const unsigned char *key, size_t keylen, const char *tok, size_t n,
                      long long now, struct identity *out, struct err *e);

/*
 * Make a token: header {"alg":"HS256","typ":"JWT"}, the given payload JSON
 * text (used as is), signed with key. Appends to out. For tests, the fuzzer
 * and operator tools; web apps mint tokens themselves (docs/SECURITY.md).
 */
void auth_token_make(const unsigned char *key, size_t keylen, const char *payload, size_t n,
                     struct buf *out);

/* base64url without padding, strictly: only the URL alphabet, no '=', no
 * non-zero leftover bits. Decodes n chars into out (room for n * 3 / 4
 * bytes); returns the decoded length or -1. */
long auth_b64url_decode(const char *in, size_t n, unsigned char *out);
void auth_b64url_encode(const unsigned char *in, size_t n, struct buf *out);

#endif
