/*
 * fuzz-token: the token verifier and everything auth reads from a request.
 *
 * Input that starts like JSON is used twice: signed as a token's payload (so
 * the claim checks behind the signature are reached) and signed as its
 * header (the algorithm checks). Any other input is tried as a raw token, as
 * base64url, as the Cookie and Authorization headers of a request, and as
 * Origin/Referer/Host lines for the cross-site check.
 */
#define _GNU_SOURCE /* memmem */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"
#include "buf.h"
#include "fuzz.h"

/* The key seeds are signed with (tests/fuzz/corpus/token/README). */
static const char KEY[] = "fuzz-secret-fuzz-secret-fuzz-secret!!";
#define NOW 1700000000LL

static struct config *cfg;

static void
setup(void)
{
    static char dir[] = "/tmp/rhtmx-fuzz-token-XXXXXX";
    char path[128], text[512];
    struct err e;
    FILE *f;

    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/sync.secret", dir);
    f = fopen(path, "w");
    fprintf(f, "%s\n", KEY);
    fclose(f);
    chmod(path, 0600);
    snprintf(text, sizeof(text),
             "{\"database\":\"app.db\",\"entities\":[\"todos\"],\"auth\":{\"mode\":\"token\","
             "\"secret_file\":\"%s\",\"allowed_origins\":[\"https://app.example\"]}}",
             path);
    cfg = config_parse("/srv/rhtmx-sync.json", text, strlen(text), &e);
    if (cfg == NULL)
        abort();
}

static void
check_identity(const struct identity *id)
{
    size_t i, n = strlen(id->sub);
    int k;

    FUZZ_ASSERT(n >= 1 && n <= AUTH_SUB_MAX);
    for (i = 0; i < n; i++)
        FUZZ_ASSERT((unsigned char)id->sub[i] >= 0x20 && id->sub[i] != 0x7f);
    FUZZ_ASSERT(id->nentities >= -1 && id->nentities <= AUTH_MAX_ENTITIES);
    for (k = 0; k < id->nentities; k++)
        FUZZ_ASSERT(config_valid_name(id->entities[k]));
    FUZZ_ASSERT(!id->anonymous);
}

static void
verify(const char *tok, size_t n, long long now)
{
    struct identity id;
    struct err e;

    if (auth_token_verify((const unsigned char *)KEY, strlen(KEY), tok, n, now, &id, &e) == 0) {
        check_identity(&id);
        FUZZ_ASSERT(id.exp >= now - AUTH_LEEWAY);
    } else {
        FUZZ_ASSERT(e.status == 401 && strcmp(e.code, "unauthorized") == 0);
        FUZZ_ASSERT(id.sub[0] == '\0');
    }
}

/* header_json and payload_json signed with KEY. */
static void
signed_token(const uint8_t *h, size_t hn, const uint8_t *p, size_t pn, struct buf *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;

    buf_reset(out);
    buf_add(out, "", 0);
    auth_b64url_encode(h, hn, out);
    buf_add(out, ".", 1);
    auth_b64url_encode(p, pn, out);
    HMAC(EVP_sha256(), KEY, (int)strlen(KEY), (const unsigned char *)out->p, out->len, mac,
         &maclen);
    buf_add(out, ".", 1);
    auth_b64url_encode(mac, maclen, out);
}

/* A request whose variables are vars (NULL-terminated "NAME=value" strings). */
static void
request(char **vars, const uint8_t *data, size_t size)
{
    FCGX_Request r;
    struct http_req req;
    struct identity id;
    struct err e;

    (void)data;
    (void)size;
    memset(&r, 0, sizeof(r));
    r.envp = vars;
    http_req_fcgx(&req, &r);
    if (auth_request(cfg, &req, &id, &e) == 0)
        check_identity(&id);
    else
        FUZZ_ASSERT(e.status == 401);
    if (auth_origin_ok(cfg, &req, &e) < 0)
        FUZZ_ASSERT(e.status == 403);
    buf_free(&req.headers);
}

/* "PREFIX" + data cut at its first NUL (what a CGI variable can hold). */
static char *
var(const char *prefix, const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t n = nul ? (size_t)(nul - data) : size, plen = strlen(prefix);
    char *s = malloc(plen + n + 1);

    memcpy(s, prefix, plen);
    memcpy(s + plen, data, n);
    s[plen + n] = '\0';
    return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    static const char payload[] = "{\"sub\":\"42\",\"exp\":1800000000}";
    struct buf b = {0};

    if (cfg == NULL)
        setup();
    if (size > 0 && data[0] != '\0' && strchr("{[\" \t\r\n-0123456789tfn", data[0]) != NULL) {
        signed_token((const uint8_t *)header, sizeof(header) - 1, data, size, &b);
        verify(b.p, b.len, NOW);
        signed_token(data, size, (const uint8_t *)payload, sizeof(payload) - 1, &b);
        {
            struct identity id;
            struct err e;
            if (auth_token_verify((const unsigned char *)KEY, strlen(KEY), b.p, b.len, NOW, &id,
                                  &e) == 0)
                FUZZ_ASSERT(memmem(data, size, "\"HS256\"", 7) != NULL);
        }
    } else {
        unsigned char *raw = malloc(size + 1);
        long n;

        verify((const char *)data, size, NOW);
        /* Strict base64url: whatever decodes re-encodes to the very same text. */
        n = auth_b64url_decode((const char *)data, size, raw);
        if (n >= 0) {
            FUZZ_ASSERT((size_t)n == size * 3 / 4);
            auth_b64url_encode(raw, (size_t)n, &b);
            FUZZ_ASSERT(b.len == size && (size == 0 || memcmp(b.p, data, size) == 0));
        }
        free(raw);
        {
            const uint8_t *nl1 = memchr(data, '\n', size);
            const uint8_t *rest = nl1 ? nl1 + 1 : data + size;
            const uint8_t *nl2 = memchr(rest, '\n', (size_t)(data + size - rest));
            char *vars[6] = {
                var("HTTP_COOKIE=", data, size),
                var("HTTP_AUTHORIZATION=", data, size),
                var("HTTP_ORIGIN=", data, nl1 ? (size_t)(nl1 - data) : size),
                var("HTTP_REFERER=", rest, nl2 ? (size_t)(nl2 - rest) : (size_t)(data + size - rest)),
                var("HTTP_HOST=", nl2 ? nl2 + 1 : data + size,
                    nl2 ? (size_t)(data + size - nl2 - 1) : 0),
                NULL,
            };
            size_t i;
            request(vars, data, size);
            /* The cookie alone (no Authorization header). */
            free(vars[1]);
            vars[1] = strdup("HTTP_ACCEPT=*/*");
            request(vars, data, size);
            for (i = 0; i < 5; i++)
                free(vars[i]);
        }
    }
    buf_free(&b);
    return 0;
}
