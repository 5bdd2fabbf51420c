/*
 * auth_token: the JSON Web Tokens we accept, and how to make one.
 *
 * A token is a JSON Web Token (RFC 7519) in compact form,
 *   base64url(header) "." base64url(payload) "." base64url(signature),
 * accepted only when the header is exactly {"alg":"HS256"} (optionally with
 * "typ":"JWT"), the signature is HMAC-SHA256 of the first two parts under our
 * secret (lib/sha256.c, compared in constant time), and
 * the payload carries a string "sub" and a numeric "exp" in the future. The
 * header is checked before the signature so that "alg":"none" and the other
 * algorithm-confusion tricks never reach the HMAC; the payload is parsed only
 * once the signature holds.
 */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "buf.h"
#include "jsonr.h"
#include "sha256.h"

#define MAC_LEN SHA256_LEN /* HMAC-SHA256 */
#define MAC_B64_LEN 43     /* its base64url length, unpadded */
#define HEADER_B64_MAX 128 /* {"alg":"HS256","typ":"JWT"} is 36 chars; more is not ours */

static int
bad_token(struct err *e, const char *why)
{
    return err_set(e, 401, "unauthorized", "invalid token: %s", why);
}

/* The header must be {"alg":"HS256"} or {"alg":"HS256","typ":"JWT"}, in any order. */
static int
check_header(const char *b64, size_t n, struct err *e)
{
    unsigned char raw[HEADER_B64_MAX];
    struct json_object *h = NULL;
    struct json_object_iterator it, end;
    struct err je;
    long len;
    int alg = 0, rc = -1;

    if (n > HEADER_B64_MAX || (len = auth_b64url_decode(b64, n, raw)) < 0)
        return bad_token(e, "malformed header");
    h = jsonr_parse((const char *)raw, (size_t)len, 2, &je);
    if (h == NULL || !json_object_is_type(h, json_type_object)) {
        bad_token(e, "malformed header");
        goto out;
    }
    it = json_object_iter_begin(h);
    end = json_object_iter_end(h);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *k = json_object_iter_peek_name(&it);
        struct json_object *v = json_object_iter_peek_value(&it);
        const char *want = strcmp(k, "alg") == 0 ? "HS256" : strcmp(k, "typ") == 0 ? "JWT" : NULL;
        if (want == NULL) {
            bad_token(e, "unsupported header field");
            goto out;
        }
        if (!json_object_is_type(v, json_type_string) ||
            strcmp(json_object_get_string(v), want) != 0 ||
            (size_t)json_object_get_string_len(v) != strlen(want)) {
            bad_token(e, strcmp(k, "alg") == 0 ? "the algorithm must be HS256"
                                               : "unsupported token type");
            goto out;
        }
        alg |= strcmp(k, "alg") == 0;
    }
    if (alg)
        rc = 0;
    else
        bad_token(e, "the algorithm must be HS256"); /* {"typ":"JWT"} alone */
out:
    json_object_put(h);
    return rc;
}

/* A NumericDate claim (RFC 7519: seconds, integer or not): 1 present, 0 absent, -1 bad. */
static int
claim_time(struct json_object *o, const char *name, long long *out)
{
    struct json_object *v;
    double d;

    if (!json_object_object_get_ex(o, name, &v) || v == NULL)
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        *out = (long long)json_object_get_int64(v); /* saturates: still a sane bound */
        return 1;
    }
    if (!json_object_is_type(v, json_type_double))
        return -1;
    d = json_object_get_double(v);
    if (d != d)
        return -1;
    *out = d >= 9e18 ? (long long)9e18 : d <= -9e18 ? -(long long)9e18 : (long long)d;
    return 1;
}

static int
check_payload(const unsigned char *p, size_t n, long long now, struct identity *out, struct err *e)
{
    struct json_object *o = NULL, *v;
    struct err je;
    long long exp = 0, nbf = 0;
    const char *s;
    size_t i, len;
    int rc = -1, r;

    o = jsonr_parse((const char *)p, n, 4, &je);
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        bad_token(e, "malformed payload");
        goto out;
    }
    /* sub: a non-empty string without control characters (it reaches logs). */
    if (!json_object_object_get_ex(o, "sub", &v) || !json_object_is_type(v, json_type_string)) {
        bad_token(e, "no subject (\"sub\" must be a string)");
        goto out;
    }
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    if (len == 0 || len > AUTH_SUB_MAX || strlen(s) != len) {
        bad_token(e, "\"sub\" must be 1 to 255 bytes");
        goto out;
    }
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            bad_token(e, "\"sub\" contains control characters");
            goto out;
        }
    }
    memcpy(out->sub, s, len + 1);

    r = claim_time(o, "exp", &exp);
    if (r <= 0) {
        bad_token(e, "\"exp\" (a number) is required");
        goto out;
    }
    if (exp < now - AUTH_LEEWAY) {
        err_set(e, 401, "unauthorized", "token expired");
        goto out;
    }
    r = claim_time(o, "nbf", &nbf);
    if (r < 0) {
        bad_token(e, "\"nbf\" must be a number");
        goto out;
    }
    if (r > 0 && nbf > now + AUTH_LEEWAY) {
        err_set(e, 401, "unauthorized", "token not valid yet");
        goto out;
    }
    out->exp = exp;

    out->nentities = -1;
    if (json_object_object_get_ex(o, "entities", &v) && v != NULL) {
        size_t k, count;
        if (!json_object_is_type(v, json_type_array) ||
            (count = json_object_array_length(v)) > AUTH_MAX_ENTITIES) {
            bad_token(e, "\"entities\" must be a list of at most 64 entity names");
            goto out;
        }
        for (k = 0; k < count; k++) {
            struct json_object *name = json_object_array_get_idx(v, k);
            if (!json_object_is_type(name, json_type_string) ||
                !config_valid_name(json_object_get_string(name)) ||
                strlen(json_object_get_string(name)) != (size_t)json_object_get_string_len(name)) {
                bad_token(e, "\"entities\" must be a list of entity names");
                goto out;
            }
            snprintf(out->entities[k], sizeof(out->entities[k]), "%s",
                     json_object_get_string(name));
        }
        out->nentities = (int)count;
    }
    rc = 0;
out:
    json_object_put(o);
    return rc;
}

int
auth_token_verify(const unsigned char *key, size_t keylen, const char *tok, size_t n, long long now,
                  struct identity *out, struct err *e)
{
    unsigned char mac[MAC_LEN], sig[MAC_LEN + 3];
    unsigned char *payload = NULL;
    const char *d1, *d2;
    size_t hn, pn, sn;
    long len;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->nentities = -1;
    if (n == 0)
        return bad_token(e, "empty");
    if (n > AUTH_TOKEN_MAX)
        return err_set(e, 401, "unauthorized", "invalid token: longer than %d bytes",
                       AUTH_TOKEN_MAX);
    d1 = memchr(tok, '.', n);
    d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - tok)) != NULL)
        return bad_token(e, "not three dot-separated parts");
    hn = (size_t)(d1 - tok);
    pn = (size_t)(d2 - d1 - 1);
    sn = n - (size_t)(d2 + 1 - tok);
    if (hn == 0 || pn == 0 || sn == 0)
        return bad_token(e, "empty part");

    if (check_header(tok, hn, e) < 0)
        return -1;

    /* The signature, before anything of the payload is looked at. */
    if (sn != MAC_B64_LEN || auth_b64url_decode(d2 + 1, sn, sig) != MAC_LEN)
        return bad_token(e, "malformed signature");
    if (keylen == 0)
        return err_set(e, 500, "internal", "no secret to check the token with");
    hmac_sha256(key, keylen, tok, hn + 1 + pn, mac);
    if (!ct_equal(mac, sig, MAC_LEN)) {
        bad_token(e, "signature does not verify");
        goto out;
    }

    payload = malloc(pn); /* pn * 3 / 4 suffices */
    if (payload == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto out;
    }
    if ((len = auth_b64url_decode(d1 + 1, pn, payload)) < 0) {
        bad_token(e, "malformed payload");
        goto out;
    }
    rc = check_payload(payload, (size_t)len, now, out, e);
out:
    explicit_bzero(mac, sizeof(mac));
    free(payload);
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        out->nentities = -1;
    }
    return rc;
}

void
auth_token_make(const unsigned char *key, size_t keylen, const char *payload, size_t n,
                struct buf *out)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    unsigned char mac[MAC_LEN];
    size_t start = out->len;

    auth_b64url_encode((const unsigned char *)header, sizeof(header) - 1, out);
    buf_add(out, ".", 1);
    auth_b64url_encode((const unsigned char *)payload, n, out);
    hmac_sha256(key, keylen, out->p + start, out->len - start, mac);
    buf_add(out, ".", 1);
    auth_b64url_encode(mac, MAC_LEN, out);
}
