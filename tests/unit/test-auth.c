/*
 * The token verifier: what it accepts, and every reason it refuses a token
 * (malformed, algorithm confusion, wrong or tampered signature, expiry,
 * claims, size), each checked for its 401 and its reason.
 */
#include <stdlib.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"
#include "buf.h"
#include "check.h"

static const unsigned char KEY[] = "0123456789abcdef0123456789abcdef-test-key";
#define KEYLEN (sizeof(KEY) - 1)
static long long now;

/* A token for payload (JSON text) signed with KEY. New string, caller frees. */
static char *
mint(const char *payload)
{
    struct buf b = {0};

    auth_token_make(KEY, KEYLEN, payload, strlen(payload), &b);
    return b.p;
}

/* A token with any header text, payload text and key: for the forgeries. */
static char *
forge(const char *header, const char *payload, const unsigned char *key, size_t keylen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    struct buf b = {0};

    auth_b64url_encode((const unsigned char *)header, strlen(header), &b);
    buf_add(&b, ".", 1);
    auth_b64url_encode((const unsigned char *)payload, strlen(payload), &b);
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)b.p, b.len, mac, &maclen);
    buf_add(&b, ".", 1);
    auth_b64url_encode(mac, maclen, &b);
    return b.p;
}

static const char ABC[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* header_b64 "." payload_b64, signed with KEY whatever the two parts are. */
static char *
forge_raw(const char *header_b64, const char *payload_b64)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    struct buf b = {0};

    buf_printf(&b, "%s.%s", header_b64, payload_b64);
    HMAC(EVP_sha256(), KEY, (int)KEYLEN, (const unsigned char *)b.p, b.len, mac, &maclen);
    buf_add(&b, ".", 1);
    auth_b64url_encode(mac, maclen, &b);
    return b.p;
}

/* Verify tok; returns 0/-1 like the verifier, fills *id and *e. */
static int
verify(const char *tok, struct identity *id, struct err *e)
{
    err_clear(e);
    return auth_token_verify(KEY, KEYLEN, tok, strlen(tok), now, id, e);
}

#define ACCEPTS(tok, want_sub)                                                                     \
    do {                                                                                           \
        struct identity id_;                                                                       \
        struct err e_;                                                                             \
        int rc_ = verify((tok), &id_, &e_);                                                        \
        CHECK_AT(__LINE__, rc_ == 0, "refused: %s", e_.msg);                                       \
        if (rc_ == 0)                                                                              \
            CHECK_AT(__LINE__, strcmp(id_.sub, (want_sub)) == 0, "sub %s", id_.sub);               \
    } while (0)

#define REFUSES(tok, why)                                                                          \
    do {                                                                                           \
        struct identity id_;                                                                       \
        struct err e_;                                                                             \
        int rc_ = verify((tok), &id_, &e_);                                                        \
        CHECK_AT(__LINE__, rc_ == -1, "accepted a bad token (%s)", (why));                         \
        if (rc_ == -1) {                                                                           \
            CHECK_AT(__LINE__, e_.status == 401, "status %d", e_.status);                          \
            CHECK_AT(__LINE__, strcmp(e_.code, "unauthorized") == 0, "code %s", e_.code);          \
            CHECK_AT(__LINE__, strstr(e_.msg, (why)) != NULL, "\"%s\" lacks \"%s\"", e_.msg,       \
                     (why));                                                                       \
            CHECK_AT(__LINE__, id_.sub[0] == '\0', "a refused token left sub %s", id_.sub);       \
        }                                                                                          \
    } while (0)

/* Payload with sub and exp relative to now. */
static char *
payload(char *out, size_t n, const char *sub, long long exp_in)
{
    snprintf(out, n, "{\"sub\":\"%s\",\"exp\":%lld}", sub, now + exp_in);
    return out;
}

static void
test_base64url(void)
{
    unsigned char in[64], out[64];
    struct buf b = {0};
    size_t n, i;

    for (n = 0; n < sizeof(in); n++) {
        for (i = 0; i < n; i++)
            in[i] = (unsigned char)(i * 37 + n);
        buf_reset(&b);
        buf_add(&b, "", 0);
        auth_b64url_encode(in, n, &b);
        CHECK_INT(b.len, (n * 4 + 2) / 3);
        CHECK_INT(auth_b64url_decode(b.p, b.len, out), (long long)n);
        CHECK(memcmp(in, out, n) == 0);
    }
    buf_free(&b);
    CHECK_INT(auth_b64url_decode("_-8", 3, out), 2);
    CHECK_INT(out[0], 0xff);
    CHECK_INT(auth_b64url_decode("QQ==", 4, out), -1);  /* padding */
    CHECK_INT(auth_b64url_decode("a+b/", 4, out), -1);  /* the other alphabet */
    CHECK_INT(auth_b64url_decode("QQ", 2, out), 1);     /* "A" */
    CHECK_INT(auth_b64url_decode("QR", 2, out), -1);    /* same byte, stray bits */
    CHECK_INT(auth_b64url_decode("QUJDR", 5, out), -1); /* 5 chars: not a length */
    CHECK_INT(auth_b64url_decode("QU J", 4, out), -1);
    CHECK_INT(auth_b64url_decode("QU\0J", 4, out), -1);
}

static void
test_accepts(void)
{
    char p[512], *t;
    struct identity id;
    struct err e;

    t = mint(payload(p, sizeof(p), "42", 3600));
    ACCEPTS(t, "42");
    CHECK(verify(t, &id, &e) == 0);
    CHECK_INT(id.exp, now + 3600);
    CHECK_INT(id.nentities, -1);
    CHECK_INT(id.anonymous, 0);
    free(t);

    /* typ is optional; keys in any order; extra claims are ignored; exp may be fractional. */
    t = forge("{\"alg\":\"HS256\"}", "{\"sub\":\"a@b.c\",\"exp\":9999999999}", KEY, KEYLEN);
    ACCEPTS(t, "a@b.c");
    free(t);
    t = forge("{\"typ\":\"JWT\",\"alg\":\"HS256\"}",
              "{\"iss\":\"app\",\"exp\":9999999999.5,\"sub\":\"Zoë\",\"name\":{\"x\":[1]}}", KEY,
              KEYLEN);
    ACCEPTS(t, "Zoë");
    free(t);

    /* Clock skew: a minute either way. */
    t = mint(payload(p, sizeof(p), "skew", -(AUTH_LEEWAY - 5)));
    ACCEPTS(t, "skew");
    free(t);
    snprintf(p, sizeof(p), "{\"sub\":\"n\",\"exp\":%lld,\"nbf\":%lld}", now + 100,
             now + AUTH_LEEWAY - 5);
    t = mint(p);
    ACCEPTS(t, "n");
    free(t);

    /* The longest sub. */
    {
        char sub[AUTH_SUB_MAX + 1];
        memset(sub, 's', AUTH_SUB_MAX);
        sub[AUTH_SUB_MAX] = '\0';
        t = mint(payload(p, sizeof(p), sub, 10));
        ACCEPTS(t, sub);
        free(t);
    }
}

static void
test_algorithm_confusion(void)
{
    char p[256], *t;

    payload(p, sizeof(p), "42", 3600);
    /* alg none, with the signature left off or kept. */
    t = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", p, KEY, KEYLEN);
    REFUSES(t, "HS256");
    *strrchr(t, '.') = '\0';
    {
        char *unsigned_tok = malloc(strlen(t) + 2);
        snprintf(unsigned_tok, strlen(t) + 2, "%s.", t);
        REFUSES(unsigned_tok, "invalid token");
        free(unsigned_tok);
    }
    free(t);
    /* Other algorithms, even with a "right" HMAC under our key. */
    t = forge("{\"alg\":\"HS512\"}", p, KEY, KEYLEN);
    REFUSES(t, "HS256");
    free(t);
    t = forge("{\"alg\":\"RS256\"}", p, KEY, KEYLEN);
    REFUSES(t, "HS256");
    free(t);
    t = forge("{\"alg\":\"hs256\"}", p, KEY, KEYLEN);
    REFUSES(t, "HS256");
    free(t);
    t = forge("{\"alg\":\"HS256\\u0000\"}", p, KEY, KEYLEN);
    REFUSES(t, "HS256");
    free(t);
    t = forge("{\"typ\":\"JWT\"}", p, KEY, KEYLEN);
    REFUSES(t, "HS256");
    free(t);
    t = forge("{\"alg\":[\"HS256\"]}", p, KEY, KEYLEN);
    REFUSES(t, "HS256");
    free(t);
    /* Header fields we do not support (key ids, embedded keys, crit). */
    t = forge("{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}", p, KEY, KEYLEN);
    REFUSES(t, "unsupported header field");
    free(t);
    t = forge("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", p, KEY, KEYLEN);
    REFUSES(t, "unsupported header field");
    free(t);
    t = forge("{\"alg\":\"HS256\",\"typ\":\"JWE\"}", p, KEY, KEYLEN);
    REFUSES(t, "unsupported token type");
    free(t);
    t = forge("[\"HS256\"]", p, KEY, KEYLEN);
    REFUSES(t, "malformed header");
    free(t);
    t = forge("{\"alg\":\"HS256\"", p, KEY, KEYLEN);
    REFUSES(t, "malformed header");
    free(t);
    t = forge("{\"alg\":\"HS256\"} x", p, KEY, KEYLEN);
    REFUSES(t, "malformed header");
    free(t);
}

static void
test_signature(void)
{
    static const unsigned char other[] = "another-secret-another-secret-another";
    char p[256], q[256], *t, *u, *mix;
    size_t n;

    payload(p, sizeof(p), "42", 3600);
    t = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", p, other, sizeof(other) - 1);
    REFUSES(t, "signature does not verify");
    free(t);
    /* Our key minus its last byte, and a key with one byte more. */
    t = forge("{\"alg\":\"HS256\"}", p, KEY, KEYLEN - 1);
    REFUSES(t, "signature does not verify");
    free(t);

    /* A payload swapped under a valid signature (privilege escalation to user 1). */
    t = mint(p);
    u = mint(payload(q, sizeof(q), "1", 3600));
    mix = malloc(strlen(t) + strlen(u));
    n = (size_t)(strchr(u, '.') - u);
    snprintf(mix, strlen(t) + strlen(u), "%.*s%.*s%s", (int)n, t,
             (int)(strrchr(u, '.') - u - n), u + n, strrchr(t, '.'));
    REFUSES(mix, "signature does not verify");
    free(mix);

    /* Every single-character change of the signature. */
    {
        char *sig = strrchr(t, '.') + 1;
        size_t i;
        for (i = 0; sig[i] != '\0'; i++) {
            char was = sig[i];
            sig[i] = was == 'A' ? 'B' : 'A';
            REFUSES(t, "invalid token");
            sig[i] = was;
        }
        ACCEPTS(t, "42");
        /* The last character carries 2 unused bits: setting one keeps the same 32 bytes
         * for a lax decoder. Ours refuses it. */
        sig[42] = ABC[(strchr(ABC, sig[42]) - ABC) | 1];
        REFUSES(t, "malformed signature");
    }
    free(t);
    free(u);

    /* Signature of the wrong length: truncated, padded, doubled. */
    t = mint(p);
    {
        size_t len = strlen(t);
        char *longer = malloc(len + 64);
        t[len - 1] = '\0';
        REFUSES(t, "malformed signature");
        t[len - 1] = 'A';
        snprintf(longer, len + 64, "%s=", t);
        REFUSES(longer, "malformed signature");
        snprintf(longer, len + 64, "%sAAAA", t);
        REFUSES(longer, "malformed signature");
        free(longer);
    }
    free(t);
}

static void
test_times(void)
{
    char p[256], *t;

    t = mint(payload(p, sizeof(p), "42", -(AUTH_LEEWAY + 1)));
    REFUSES(t, "token expired");
    free(t);
    t = mint(payload(p, sizeof(p), "42", -365LL * 86400));
    REFUSES(t, "token expired");
    free(t);
    t = mint("{\"sub\":\"42\",\"exp\":-9223372036854775808}");
    REFUSES(t, "token expired");
    free(t);
    t = mint("{\"sub\":\"42\",\"exp\":-1e300}");
    REFUSES(t, "token expired");
    free(t);
    t = mint("{\"sub\":\"42\"}");
    REFUSES(t, "\"exp\" (a number) is required");
    free(t);
    t = mint("{\"sub\":\"42\",\"exp\":\"9999999999\"}");
    REFUSES(t, "\"exp\" (a number) is required");
    free(t);
    t = mint("{\"sub\":\"42\",\"exp\":null}");
    REFUSES(t, "\"exp\" (a number) is required");
    free(t);
    t = mint("{\"sub\":\"42\",\"exp\":true}");
    REFUSES(t, "\"exp\" (a number) is required");
    free(t);
    snprintf(p, sizeof(p), "{\"sub\":\"n\",\"exp\":%lld,\"nbf\":%lld}", now + 7200,
             now + AUTH_LEEWAY + 60);
    t = mint(p);
    REFUSES(t, "token not valid yet");
    free(t);
    snprintf(p, sizeof(p), "{\"sub\":\"n\",\"exp\":%lld,\"nbf\":\"soon\"}", now + 7200);
    t = mint(p);
    REFUSES(t, "\"nbf\" must be a number");
    free(t);
}

static void
test_claims(void)
{
    char p[1024], *t;
    struct identity id;
    struct err e;
    int i;

#define CLAIMS_REFUSED(json, why)                                                                  \
    do {                                                                                           \
        snprintf(p, sizeof(p), json, now + 100);                                                   \
        t = mint(p);                                                                               \
        REFUSES(t, why);                                                                           \
        free(t);                                                                                   \
    } while (0)
    CLAIMS_REFUSED("{\"exp\":%lld}", "no subject");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":42}", "no subject");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":null}", "no subject");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":[\"42\"]}", "no subject");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":\"\"}", "1 to 255 bytes");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":\"4\\u00002\"}", "1 to 255 bytes");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":\"42\\n\"}", "control characters");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":\"\\u007f\"}", "control characters");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":\"42\",\"entities\":\"todos\"}", "\"entities\"");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":\"42\",\"entities\":[1]}", "\"entities\"");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":\"42\",\"entities\":[\"a b\"]}", "\"entities\"");
    CLAIMS_REFUSED("{\"exp\":%lld,\"sub\":\"42\",\"entities\":[\"to\\u0000dos\"]}",
                   "\"entities\"");
    /* Not an object, not JSON, JSON with trailing bytes, too deep. */
    CLAIMS_REFUSED("[%lld]", "malformed payload");
    CLAIMS_REFUSED("{\"sub\":\"42\",\"exp\":%lld", "malformed payload");
    CLAIMS_REFUSED("{\"sub\":\"42\",\"exp\":%lld}{}", "malformed payload");
    CLAIMS_REFUSED("{\"sub\":\"42\",\"exp\":%lld,\"x\":[[[[[[1]]]]]]}", "malformed payload");
    CLAIMS_REFUSED("{'sub':'42','exp':%lld}", "malformed payload");
#undef CLAIMS_REFUSED
    {
        char sub[AUTH_SUB_MAX + 2];
        memset(sub, 's', AUTH_SUB_MAX + 1);
        sub[AUTH_SUB_MAX + 1] = '\0';
        t = mint(payload(p, sizeof(p), sub, 10));
        REFUSES(t, "1 to 255 bytes");
        free(t);
    }

    /* The entities restriction. */
    snprintf(p, sizeof(p), "{\"sub\":\"7\",\"exp\":%lld,\"entities\":[\"todos\",\"tags\"]}",
             now + 100);
    t = mint(p);
    CHECK(verify(t, &id, &e) == 0);
    CHECK_INT(id.nentities, 2);
    CHECK(auth_entity_allowed(&id, "todos", &e) == 0);
    CHECK(auth_entity_allowed(&id, "tags", &e) == 0);
    CHECK(auth_entity_allowed(&id, "users", &e) == -1);
    CHECK_INT(e.status, 403);
    CHECK_STR(e.code, "forbidden");
    CHECK_CONTAINS(e.msg, "'users'");
    CHECK(auth_entity_allowed(&id, "todo", &e) == -1);
    CHECK(auth_entity_allowed(&id, "todoss", &e) == -1);
    free(t);
    snprintf(p, sizeof(p), "{\"sub\":\"7\",\"exp\":%lld,\"entities\":[]}", now + 100);
    t = mint(p);
    CHECK(verify(t, &id, &e) == 0);
    CHECK(auth_entity_allowed(&id, "todos", &e) == -1);
    free(t);
    snprintf(p, sizeof(p), "{\"sub\":\"7\",\"exp\":%lld}", now + 100);
    t = mint(p);
    CHECK(verify(t, &id, &e) == 0);
    CHECK(auth_entity_allowed(&id, "anything", &e) == 0);
    free(t);
    /* At most 64 names. */
    {
        struct buf b = {0};
        buf_printf(&b, "{\"sub\":\"7\",\"exp\":%lld,\"entities\":[", now + 100);
        for (i = 0; i < AUTH_MAX_ENTITIES; i++)
            buf_printf(&b, "%s\"e%d\"", i ? "," : "", i);
        buf_adds(&b, "]}");
        t = mint(b.p);
        CHECK(verify(t, &id, &e) == 0);
        CHECK_INT(id.nentities, AUTH_MAX_ENTITIES);
        CHECK(auth_entity_allowed(&id, "e63", &e) == 0);
        free(t);
        b.len -= 2;
        buf_adds(&b, ",\"one_more\"]}");
        t = mint(b.p);
        REFUSES(t, "at most 64");
        free(t);
        buf_free(&b);
    }
}

static void
test_shape(void)
{
    char p[256], *t, *big;
    size_t n;

    REFUSES("", "empty");
    REFUSES("abc", "three dot-separated parts");
    REFUSES("a.b", "three dot-separated parts");
    REFUSES("a.b.c.d", "three dot-separated parts");
    REFUSES("..", "empty part");
    REFUSES("eyJhbGciOiJIUzI1NiJ9..AAAA", "empty part");
    REFUSES("Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "malformed header");

    t = mint(payload(p, sizeof(p), "42", 3600));
    n = strlen(t);
    /* Padding, whitespace, and the standard alphabet inside the payload. */
    {
        char *d = strchr(t, '.') + 1;
        char *x = malloc(n + 8);
        snprintf(x, n + 8, "%.*s=%s", (int)(d - t - 1), t, d - 1);
        REFUSES(x, "malformed header");
        snprintf(x, n + 8, "%s ", t);
        REFUSES(x, "malformed signature");
        snprintf(x, n + 8, "%.*s+%s", (int)(d - t), t, d + 1);
        REFUSES(x, "invalid token");
        free(x);
    }
    free(t);

    /* Signed, but the payload is not strict base64url: padding, the standard alphabet,
     * stray bits, an impossible length, white space. */
    {
        static const char *const bad[] = {
            "eyJzdWIiOiI0MiIsImV4cCI6OTk5OTk5OTk5OX0=", /* padding */
            "eyJzdWIiOiI0MiIsImV4cCI6OTk5OTk5OTk5OX0+", /* '+' */
            "eyJzdWIiOiI0MiIsImV4cCI6OTk5OTk5OTk5OX1",  /* "}" with a stray bit */
            "eyJzdWIiOiI0MiIsImV4cCI6OTk5OTk5OTk5OX0AA", /* 4n+1 chars */
            "eyJzdWIiOiI0MiIsIm V4cCI6OTk5OTk5OTk5OX0",
        };
        size_t i;
        t = forge_raw("eyJhbGciOiJIUzI1NiJ9", "eyJzdWIiOiI0MiIsImV4cCI6OTk5OTk5OTk5OX0");
        ACCEPTS(t, "42"); /* {"sub":"42","exp":9999999999} */
        free(t);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            t = forge_raw("eyJhbGciOiJIUzI1NiJ9", bad[i]);
            REFUSES(t, "malformed payload");
            free(t);
        }
    }

    /* Huge tokens: just over the limit, and a megabyte. */
    big = malloc((1 << 20) + 1);
    memset(big, 'A', 1 << 20);
    big[1 << 20] = '\0';
    big[10] = '.';
    big[20] = '.';
    REFUSES(big, "longer than 4096 bytes");
    big[AUTH_TOKEN_MAX + 1] = '\0';
    REFUSES(big, "longer than 4096 bytes");
    /* A payload big enough to be near the limit still verifies when signed. */
    {
        struct buf b = {0};
        buf_printf(&b, "{\"sub\":\"42\",\"exp\":%lld,\"pad\":\"", now + 60);
        while (b.len < 2900)
            buf_adds(&b, "xxxxxxxxxx");
        buf_adds(&b, "\"}");
        t = mint(b.p);
        CHECK(strlen(t) <= AUTH_TOKEN_MAX);
        ACCEPTS(t, "42");
        free(t);
        b.len -= 2;
        for (n = 0; n < 15; n++)
            buf_adds(&b, "yyyyyyyyyy");
        buf_adds(&b, "\"}");
        t = mint(b.p);
        CHECK(strlen(t) > AUTH_TOKEN_MAX);
        REFUSES(t, "longer than 4096 bytes");
        free(t);
        buf_free(&b);
    }
    free(big);
}

int
main(void)
{
    now = (long long)time(NULL);
    test_base64url();
    test_accepts();
    test_algorithm_confusion();
    test_signature();
    test_times();
    test_claims();
    test_shape();
    return check_done("test-auth");
}
