/*
 * auth: tokens, the secret, entity and owner rules, origin checks (see auth.h).
 *
 * A token is a JSON Web Token (RFC 7519) in compact form,
 *   base64url(header) "." base64url(payload) "." base64url(signature),
 * accepted only when the header is exactly {"alg":"HS256"} (optionally with
 * "typ":"JWT"), the signature is HMAC-SHA256 of the first two parts under our
 * secret (lib/sha256.c, compared in constant time), and
 * the payload carries a string "sub" and a numeric "exp" in the future. The
 * header is checked before the signature so that "alg":"none" and the other
 * algorithm-confusion tricks never reach the HMAC; the payload is parsed only
 * once the signature holds. base64url is decoded strictly (no padding, no
 * stray characters, no non-zero leftover bits), so every token has exactly one
 * spelling.
 *
 * The secret is the secret file's bytes minus trailing whitespace (the same
 * set PHP's rtrim() strips, so the PHP that mints tokens reads the same key).
 * It is cached per process, keyed by the file's identity and mtime, so a
 * rotated secret is picked up without a restart.
 */
#define _GNU_SOURCE /* program_invocation_short_name */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "jsonr.h"
#include "log.h"
#include "sha256.h"

#define MAC_LEN SHA256_LEN /* HMAC-SHA256 */
#define MAC_B64_LEN 43     /* its base64url length, unpadded */
#define HEADER_B64_MAX 128 /* {"alg":"HS256","typ":"JWT"} is 36 chars; more is not ours */
#define ORIGIN_MAX 512

static const char realm_missing[] = "Bearer realm=\"rhtmx-sync\"";
static const char realm_invalid[] = "Bearer realm=\"rhtmx-sync\", error=\"invalid_token\"";

/* ---- base64url ---------------------------------------------------------------------------- */

static int
b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long
auth_b64url_decode(const char *in, size_t n, unsigned char *out)
{
    unsigned acc = 0;
    size_t i, o = 0;
    int bits = 0;

    if (n % 4 == 1)
        return -1; /* 6 bits cannot make a byte */
    for (i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1; /* leftover bits must be zero: one spelling per byte string */
    return (long)o;
}

void
auth_b64url_encode(const unsigned char *in, size_t n, struct buf *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char q[4];
    size_t i;

    for (i = 0; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        q[0] = abc[v >> 18];
        q[1] = abc[(v >> 12) & 63];
        q[2] = abc[(v >> 6) & 63];
        q[3] = abc[v & 63];
        buf_add(out, q, 4);
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        q[0] = abc[v >> 18];
        q[1] = abc[(v >> 12) & 63];
        buf_add(out, q, 2);
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        q[0] = abc[v >> 18];
        q[1] = abc[(v >> 12) & 63];
        q[2] = abc[(v >> 6) & 63];
        buf_add(out, q, 3);
    }
}

/* ---- the token ---------------------------------------------------------------------------- */

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
    if (!alg) {
        bad_token(e, "the algorithm must be HS256");
        goto out;
    }
    rc = 0;
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

/* ---- the secret --------------------------------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Guarded by lock. */
static struct {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    unsigned char key[AUTH_SECRET_MAX];
    size_t len; /* 0: nothing cached */
} secret;
static int secret_failed; /* the last secret_get() failed (guarded by lock) */

static int
secret_fail(const struct config *cfg, struct err *e, const char *why)
{
    err_set(e, 500, "config", "%s: auth secret_file %s: %s", cfg->path, cfg->auth.secret_file, why);
    return -1;
}

/* Refuse files that are not regular or that everyone may read or write. */
static int
secret_mode_ok(const struct config *cfg, const struct stat *sb, struct err *e)
{
    if (!S_ISREG(sb->st_mode))
        return secret_fail(cfg, e, "not a regular file");
    if (sb->st_mode & (S_IROTH | S_IWOTH))
        return secret_fail(cfg, e, "readable or writable by everyone (chmod 600 it)");
    return 0;
}

/* Read the file into the cache. Called with lock held. */
static int
secret_read(const struct config *cfg, struct err *e)
{
    unsigned char tmp[AUTH_SECRET_MAX + 1];
    struct stat sb;
    size_t n = 0;
    ssize_t r;
    int fd, rc = -1;

    fd = open(cfg->auth.secret_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        char why[300];
        snprintf(why, sizeof(why), "cannot open: %s", strerror(errno));
        return secret_fail(cfg, e, why);
    }
    if (fstat(fd, &sb) < 0) {
        secret_fail(cfg, e, "cannot stat");
        goto out;
    }
    if (secret_mode_ok(cfg, &sb, e) < 0)
        goto out;
    while (n < sizeof(tmp) && (r = read(fd, tmp + n, sizeof(tmp) - n)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            secret_fail(cfg, e, "cannot read");
            goto out;
        }
        n += (size_t)r;
    }
    if (n > AUTH_SECRET_MAX) {
        secret_fail(cfg, e, "longer than 4096 bytes (is it the right file?)");
        goto out;
    }
    /* What PHP's rtrim() strips: " \t\n\r\0\x0B". */
    while (n > 0 && memchr(" \t\n\r\v", tmp[n - 1], 6) != NULL)
        n--;
    if (n == 0) {
        secret_fail(cfg, e, "is empty");
        goto out;
    }
    if (n < AUTH_SECRET_MIN) {
        secret_fail(cfg, e,
                    "shorter than 32 bytes (make one with: head -c 32 /dev/urandom | "
                    "base64 > sync.secret)");
        goto out;
    }
    free(secret.path);
    secret.path = strdup(cfg->auth.secret_file);
    if (secret.path == NULL) {
        err_set(e, 500, "internal", "out of memory");
        goto out;
    }
    explicit_bzero(secret.key, sizeof(secret.key));
    memcpy(secret.key, tmp, n);
    secret.len = n;
    secret.dev = sb.st_dev;
    secret.ino = sb.st_ino;
    secret.size = sb.st_size;
    secret.mtime = sb.st_mtim;
    rc = 0;
out:
    explicit_bzero(tmp, sizeof(tmp));
    close(fd);
    if (rc < 0)
        secret.len = 0;
    return rc;
}

/* The current secret, copied into key (AUTH_SECRET_MAX bytes). */
static int
secret_get(const struct config *cfg, unsigned char *key, size_t *len, struct err *e)
{
    struct stat sb;
    int rc = -1;

    if (cfg->auth.secret_file == NULL) {
        err_set(e, 500, "config", "%s: auth mode \"token\" needs \"secret_file\"", cfg->path);
        goto fail;
    }
    pthread_mutex_lock(&lock);
    if (stat(cfg->auth.secret_file, &sb) < 0) {
        char why[300];
        snprintf(why, sizeof(why), "%s", strerror(errno));
        secret_fail(cfg, e, why);
    } else if (secret_mode_ok(cfg, &sb, e) == 0) {
        if (secret.len > 0 && strcmp(secret.path, cfg->auth.secret_file) == 0 &&
            secret.dev == sb.st_dev && secret.ino == sb.st_ino && secret.size == sb.st_size &&
            secret.mtime.tv_sec == sb.st_mtim.tv_sec && secret.mtime.tv_nsec == sb.st_mtim.tv_nsec)
            rc = 0;
        else
            rc = secret_read(cfg, e);
        if (rc == 0) {
            memcpy(key, secret.key, secret.len);
            *len = secret.len;
            if (secret_failed) /* fixed: report the next problem again */
                log_once_reset();
            secret_failed = 0;
        }
    }
    pthread_mutex_unlock(&lock);
    if (rc == 0)
        return 0;
fail:
    pthread_mutex_lock(&lock);
    secret_failed = 1;
    pthread_mutex_unlock(&lock);
    log_once("%s", e->msg); /* a FastCGI process would repeat it per request */
    return -1;
}

int
auth_ready(const struct config *cfg, struct err *e)
{
    unsigned char key[AUTH_SECRET_MAX];
    size_t len;
    int rc;

    if (cfg->auth.mode == AUTH_NONE)
        return 0;
    rc = secret_get(cfg, key, &len, e);
    explicit_bzero(key, sizeof(key));
    return rc;
}

/* ---- the request -------------------------------------------------------------------------- */

/* The token of req, borrowed from its variables: 1 found, 0 none. */
static int
find_token(const struct config *cfg, const struct http_req *req, const char **tok, size_t *n)
{
    const char *a = req->in.authorization;
    const char *c = req->in.cookie;
    size_t name_len = strlen(cfg->auth.cookie);

    if (a != NULL) {
        while (*a == ' ' || *a == '\t')
            a++;
        if (strncasecmp(a, "Bearer", 6) == 0 && (a[6] == ' ' || a[6] == '\t' || a[6] == '\0')) {
            const char *end;
            a += 6;
            while (*a == ' ' || *a == '\t')
                a++;
            end = a + strlen(a);
            while (end > a && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            *tok = a;
            *n = (size_t)(end - a);
            return 1; /* an empty Bearer is a bad token, not a missing one */
        }
        /* Another scheme (Basic auth of the site in front): the cookie may still carry one. */
    }
    /* Cookie: "a=1; rhtmx_sync=TOKEN; b=2" (RFC 6265 §4.2). The first wins: browsers send
     * the most specific path first. */
    while (c != NULL && *c != '\0') {
        const char *end = strchr(c, ';'), *eq;
        if (end == NULL)
            end = c + strlen(c);
        while (c < end && (*c == ' ' || *c == '\t'))
            c++;
        eq = memchr(c, '=', (size_t)(end - c));
        if (eq != NULL && (size_t)(eq - c) == name_len &&
            memcmp(c, cfg->auth.cookie, name_len) == 0) {
            const char *v = eq + 1, *ve = end;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"') {
                v++;
                ve--;
            }
            *tok = v;
            *n = (size_t)(ve - v);
            return 1;
        }
        c = *end ? end + 1 : end;
    }
    return 0;
}

int
auth_request(const struct config *cfg, struct http_req *req, struct identity *out, struct err *e)
{
    unsigned char key[AUTH_SECRET_MAX];
    size_t keylen = 0, n = 0;
    const char *tok = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->nentities = -1;
    if (cfg->auth.mode == AUTH_NONE) {
        out->anonymous = 1;
        return 0;
    }
    if (secret_get(cfg, key, &keylen, e) < 0)
        goto out;
    if (!find_token(cfg, req, &tok, &n)) {
        http_header(req, "WWW-Authenticate", realm_missing);
        err_set(e, 401, "unauthorized",
                "a token is required (Authorization: Bearer, or the '%s' cookie)",
                cfg->auth.cookie);
        goto out;
    }
    if (auth_token_verify(key, keylen, tok, n, (long long)time(NULL), out, e) < 0) {
        if (e->status == 401)
            http_header(req, "WWW-Authenticate", realm_invalid);
        goto out;
    }
    rc = 0;
out:
    explicit_bzero(key, sizeof(key));
    return rc;
}

int
auth_entity_allowed(const struct identity *id, const char *entity, struct err *e)
{
    char q[ERR_QUOTED];
    int i;

    if (id->nentities < 0)
        return 0;
    for (i = 0; i < id->nentities; i++)
        if (strcmp(id->entities[i], entity) == 0)
            return 0;
    return err_set(e, 403, "forbidden", "this token does not give access to entity '%s'",
                   err_quote(q, entity));
}

int
auth_owner(const struct identity *id, const struct entity *en, const char **owner, struct err *e)
{
    *owner = NULL;
    if (en->owner_column == NULL)
        return 0;
    if (id->anonymous) {
        err_set(e, 500, "config",
                "entity '%s' has owner_column '%s' but auth mode is \"none\", which cannot tell "
                "users apart: refusing to serve it (use auth mode \"token\")",
                en->name, en->owner_column);
        log_once("%s", e->msg);
        return -1;
    }
    *owner = id->sub;
    return 0;
}

/* ---- origins ------------------------------------------------------------------------------ */

/*
 * The origin of url ("scheme://host[:port]...") as "scheme://host[:port]",
 * lower-cased, without the scheme's default port. only_origin: nothing may
 * follow the authority but one "/". Returns the length of the scheme (so
 * out + len + 3 is the authority), or -1.
 */
static int
origin_of(const char *url, int only_origin, char *out, size_t outlen)
{
    const char *p = url, *auth, *end;
    size_t slen, alen, i;

    if (!isalpha((unsigned char)*p))
        return -1;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return -1;
    slen = (size_t)(p - url);
    auth = p + 3;
    end = auth + strcspn(auth, "/?#");
    if (only_origin && *end != '\0' && strcmp(end, "/") != 0)
        return -1;
    alen = (size_t)(end - auth);
    if (alen == 0 || memchr(auth, '@', alen) != NULL || slen + 3 + alen >= outlen)
        return -1;
    for (i = 0; i < slen + 3 + alen; i++)
        out[i] = (char)tolower((unsigned char)url[i]);
    out[i] = '\0';
    if (slen == 5 && memcmp(out, "https", 5) == 0 && i > 4 && strcmp(out + i - 4, ":443") == 0)
        out[i - 4] = '\0';
    else if (slen == 4 && memcmp(out, "http", 4) == 0 && i > 3 && strcmp(out + i - 3, ":80") == 0)
        out[i - 3] = '\0';
    return (int)slen;
}

int
auth_origin_listed(const struct config *cfg, const char *origin, char *out, size_t outlen)
{
    char a[ORIGIN_MAX];
    size_t i;

    if (origin == NULL || origin_of(origin, 1, out, outlen) < 0)
        return 0;
    for (i = 0; i < cfg->auth.norigins; i++)
        if (origin_of(cfg->auth.allowed_origins[i], 1, a, sizeof(a)) >= 0 && strcmp(a, out) == 0)
            return 1;
    return 0;
}

int
auth_origin_ok(const struct config *cfg, const struct http_req *req, struct err *e)
{
    const char *origin = req->in.origin;
    const char *host = req->in.host;
    const char *what = "Origin";
    char o[ORIGIN_MAX], a[ORIGIN_MAX], h[ORIGIN_MAX], q[ERR_QUOTED];
    int slen;
    size_t i, hl;

    if (origin == NULL || *origin == '\0') {
        origin = req->in.referer;
        what = "Referer";
        if (origin == NULL || *origin == '\0')
            return 0; /* not a browser: nothing cross-site about it */
    }
    slen = origin_of(origin, what[0] == 'O', o, sizeof(o));
    if (slen < 0)
        return err_set(e, 403, "forbidden", "cross-site request refused: %s '%s' is not allowed",
                       what, err_quote(q, origin));
    for (i = 0; i < cfg->auth.norigins; i++)
        if (origin_of(cfg->auth.allowed_origins[i], 1, a, sizeof(a)) >= 0 && strcmp(a, o) == 0)
            return 0;
    /* The request's own origin. Only the authority is compared: behind a proxy that ends TLS
     * the program may believe it is served over http while the page is https. */
    if (host != NULL && (hl = strlen(host)) > 0 && hl < sizeof(h)) {
        const char *oa = o + slen + 3;
        for (i = 0; i <= hl; i++)
            h[i] = (char)tolower((unsigned char)host[i]);
        if (hl > 4 && strcmp(h + hl - 4, ":443") == 0)
            h[hl - 4] = '\0';
        else if (hl > 3 && strcmp(h + hl - 3, ":80") == 0)
            h[hl - 3] = '\0';
        if (strcmp(oa, h) == 0)
            return 0;
    }
    return err_set(e, 403, "forbidden", "cross-site request refused: %s '%s' is not allowed", what,
                   err_quote(q, origin));
}
