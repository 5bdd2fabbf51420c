/*
 * auth_request and friends on real CGI requests: where the token comes from
 * (Bearer header, cookie), the WWW-Authenticate answer, the secret file's
 * checks and rotation, auth modes, owners, and the cross-site origin check.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "check.h"

#define SECRET "kT3vZq0b8fJ2mX9pL4sW7yR1cN6hD5aE" /* 32 bytes */
#define SECRET_FILE "test-auth-request.secret"

static const char *const vars[] = {"HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_ORIGIN",
                                   "HTTP_REFERER",       "HTTP_HOST",   NULL};

static void
clear_env(void)
{
    size_t i;

    for (i = 0; vars[i] != NULL; i++)
        unsetenv(vars[i]);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f;

    unlink(path);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static struct config *
config(const char *auth_json)
{
    char text[1024];
    struct err e;
    struct config *c;

    snprintf(text, sizeof(text),
             "{\"database\":\"x.db\",\"entities\":[\"todos\",{\"name\":\"notes\","
             "\"owner_column\":\"user_id\"}],\"auth\":%s}",
             auth_json);
    c = config_parse("/srv/test.json", text, strlen(text), &e);
    if (c == NULL)
        fprintf(stderr, "config: %s\n", e.msg);
    return c;
}

/* A token for sub, valid for an hour, signed with key. New string. */
static char *
token(const char *key, const char *sub)
{
    char p[256];
    struct buf b = {0};

    snprintf(p, sizeof(p), "{\"sub\":\"%s\",\"exp\":%lld}", sub, (long long)time(NULL) + 3600);
    auth_token_make((const unsigned char *)key, strlen(key), p, strlen(p), &b);
    return b.p;
}

/* auth_request on the current environment; the queued headers go to *hdrs (caller frees). */
static int
request(const struct config *c, struct identity *id, struct err *e, char **hdrs)
{
    struct http_req req;
    int rc;

    http_req_cgi(&req);
    err_clear(e);
    rc = auth_request(c, &req, id, e);
    *hdrs = req.headers.p ? strdup(req.headers.p) : strdup("");
    buf_free(&req.headers);
    return rc;
}

#define EXPECT_SUB(c, want)                                                                         \
    do {                                                                                           \
        struct identity id_;                                                                       \
        struct err e_;                                                                             \
        char *h_;                                                                                  \
        int rc_ = request((c), &id_, &e_, &h_);                                                    \
        CHECK_AT(__LINE__, rc_ == 0, "refused: %d %s", e_.status, e_.msg);                         \
        if (rc_ == 0)                                                                              \
            CHECK_AT(__LINE__, strcmp(id_.sub, (want)) == 0, "sub %s", id_.sub);                    \
        free(h_);                                                                                  \
    } while (0)

#define EXPECT_FAIL(c, want_status, msg_part)                                                           \
    do {                                                                                           \
        struct identity id_;                                                                       \
        struct err e_;                                                                             \
        char *h_;                                                                                  \
        int rc_ = request((c), &id_, &e_, &h_);                                                    \
        CHECK_AT(__LINE__, rc_ == -1, "accepted, sub %s", id_.sub);                                \
        if (rc_ == -1) {                                                                           \
            CHECK_AT(__LINE__, e_.status == (want_status), "status %d: %s", e_.status, e_.msg);         \
            CHECK_AT(__LINE__, strstr(e_.msg, (msg_part)) != NULL, "\"%s\" lacks \"%s\"",          \
                     e_.msg, (msg_part));                                                          \
            if ((want_status) == 401)                                                                   \
                CHECK_AT(__LINE__, strstr(h_, "WWW-Authenticate: Bearer realm=") != NULL,          \
                         "headers: %s", h_);                                                       \
            else                                                                                   \
                CHECK_AT(__LINE__, strstr(h_, "WWW-Authenticate") == NULL, "headers: %s", h_);     \
        }                                                                                          \
        free(h_);                                                                                  \
    } while (0)

static void
test_mode_none(void)
{
    struct config *c = config("{\"mode\":\"none\"}");
    struct identity id;
    struct err e;
    const char *owner = "x";
    char *h;

    clear_env();
    setenv("HTTP_AUTHORIZATION", "Bearer garbage", 1);
    CHECK(request(c, &id, &e, &h) == 0);
    free(h);
    CHECK_INT(id.anonymous, 1);
    CHECK_STR(id.sub, "");
    CHECK(auth_entity_allowed(&id, "todos", &e) == 0);
    CHECK(auth_owner(&id, config_entity(c, "todos"), &owner, &e) == 0);
    CHECK(owner == NULL);
    /* Per-user rows without a way to tell users apart: refused, not served to all. */
    CHECK(auth_owner(&id, config_entity(c, "notes"), &owner, &e) == -1);
    CHECK_INT(e.status, 500);
    CHECK_STR(e.code, "config");
    CHECK_CONTAINS(e.msg, "owner_column 'user_id'");
    CHECK(owner == NULL);
    CHECK(auth_ready(c, &e) == 0);
    config_free(c);
}

static void
test_sources(void)
{
    struct config *c = config("{\"mode\":\"token\",\"secret_file\":\"" SECRET_FILE "\"}");
    char *t = token(SECRET, "alice"), *u = token(SECRET, "bob"), v[8192];
    struct identity id;
    struct err e;
    const char *owner;
    char *h;

    free(c->auth.secret_file);
    c->auth.secret_file = strdup(SECRET_FILE);
    write_file(SECRET_FILE, SECRET "\n", 0600);
    clear_env();

    /* Nothing: 401 with the plain challenge. */
    EXPECT_FAIL(c, 401, "a token is required");
    CHECK(request(c, &id, &e, &h) == -1);
    CHECK_CONTAINS(h, "WWW-Authenticate: Bearer realm=\"rhtmx-sync\"\r\n");
    CHECK(strstr(h, "invalid_token") == NULL);
    CHECK_STR(e.code, "unauthorized");
    free(h);

    /* The Bearer header, any case, extra blanks. */
    snprintf(v, sizeof(v), "Bearer %s", t);
    setenv("HTTP_AUTHORIZATION", v, 1);
    EXPECT_SUB(c, "alice");
    snprintf(v, sizeof(v), "  bearer \t%s  ", t);
    setenv("HTTP_AUTHORIZATION", v, 1);
    EXPECT_SUB(c, "alice");
    CHECK(request(c, &id, &e, &h) == 0);
    free(h);
    CHECK(auth_owner(&id, config_entity(c, "notes"), &owner, &e) == 0);
    CHECK_STR(owner, "alice");
    CHECK(auth_owner(&id, config_entity(c, "todos"), &owner, &e) == 0);
    CHECK(owner == NULL);

    /* A bad Bearer token: 401 invalid_token, even when a good cookie is there too. */
    snprintf(v, sizeof(v), "rhtmx_sync=%s", u);
    setenv("HTTP_COOKIE", v, 1);
    setenv("HTTP_AUTHORIZATION", "Bearer x.y.z", 1);
    EXPECT_FAIL(c, 401, "invalid token");
    CHECK(request(c, &id, &e, &h) == -1);
    CHECK_CONTAINS(h, "error=\"invalid_token\"");
    free(h);
    setenv("HTTP_AUTHORIZATION", "Bearer", 1);
    EXPECT_FAIL(c, 401, "invalid token: empty");
    setenv("HTTP_AUTHORIZATION", "Bearer ", 1);
    EXPECT_FAIL(c, 401, "invalid token: empty");
    /* Another scheme (the site's Basic auth): the cookie decides. */
    setenv("HTTP_AUTHORIZATION", "Basic YWxpY2U6c2VjcmV0", 1);
    EXPECT_SUB(c, "bob");
    setenv("HTTP_AUTHORIZATION", "Bearertoken", 1);
    EXPECT_SUB(c, "bob");
    unsetenv("HTTP_AUTHORIZATION");
    EXPECT_SUB(c, "bob");

    /* The cookie among others, quoted, first of two; lookalike names do not count. */
    snprintf(v, sizeof(v), "theme=dark; rhtmx_sync=%s; lang=en", u);
    setenv("HTTP_COOKIE", v, 1);
    EXPECT_SUB(c, "bob");
    snprintf(v, sizeof(v), "rhtmx_sync=\"%s\"", t);
    setenv("HTTP_COOKIE", v, 1);
    EXPECT_SUB(c, "alice");
    snprintf(v, sizeof(v), "rhtmx_sync=%s;rhtmx_sync=%s", t, u);
    setenv("HTTP_COOKIE", v, 1);
    EXPECT_SUB(c, "alice");
    snprintf(v, sizeof(v), "xrhtmx_sync=%s; rhtmx_sync_old=%s; RHTMX_SYNC=%s", t, t, t);
    setenv("HTTP_COOKIE", v, 1);
    EXPECT_FAIL(c, 401, "a token is required");
    setenv("HTTP_COOKIE", "rhtmx_sync=", 1);
    EXPECT_FAIL(c, 401, "invalid token: empty");
    setenv("HTTP_COOKIE", "rhtmx_sync", 1);
    EXPECT_FAIL(c, 401, "a token is required");

    /* Another cookie name from the config. */
    free(c->auth.cookie);
    c->auth.cookie = strdup("app_sync");
    snprintf(v, sizeof(v), "rhtmx_sync=%s; app_sync=%s", t, u);
    setenv("HTTP_COOKIE", v, 1);
    EXPECT_SUB(c, "bob");
    unsetenv("HTTP_COOKIE");

    /* A token signed with another secret. */
    free(t);
    t = token("some-other-secret-some-other-secret!", "mallory");
    snprintf(v, sizeof(v), "Bearer %s", t);
    setenv("HTTP_AUTHORIZATION", v, 1);
    EXPECT_FAIL(c, 401, "signature does not verify");

    /* A huge header. */
    memset(v, 'A', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    memcpy(v, "Bearer ", 7);
    setenv("HTTP_AUTHORIZATION", v, 1);
    EXPECT_FAIL(c, 401, "longer than 4096");

    clear_env();
    free(t);
    free(u);
    config_free(c);
    unlink(SECRET_FILE);
}

static void
test_secret_file(void)
{
    struct config *c = config("{\"mode\":\"token\",\"secret_file\":\"x\"}");
    char *t = token(SECRET, "alice"), v[8192];
    struct err e;

    free(c->auth.secret_file);
    c->auth.secret_file = strdup(SECRET_FILE);
    clear_env();
    snprintf(v, sizeof(v), "Bearer %s", t);
    setenv("HTTP_AUTHORIZATION", v, 1);

    unlink(SECRET_FILE);
    EXPECT_FAIL(c, 500, "No such file");
    CHECK(auth_ready(c, &e) == -1);
    CHECK_STR(e.code, "config");
    CHECK_CONTAINS(e.msg, "/srv/test.json: auth secret_file " SECRET_FILE);

    write_file(SECRET_FILE, "", 0600);
    EXPECT_FAIL(c, 500, "is empty");
    write_file(SECRET_FILE, " \n\r\n\t", 0600);
    EXPECT_FAIL(c, 500, "is empty");
    write_file(SECRET_FILE, "kT3vZq0b8fJ2mX9pL4sW7yR1cN6hD5a\n", 0600); /* 31 */
    EXPECT_FAIL(c, 500, "shorter than 32 bytes");
    write_file(SECRET_FILE, SECRET "\n", 0644);
    EXPECT_FAIL(c, 500, "readable or writable by everyone");
    write_file(SECRET_FILE, SECRET "\n", 0602);
    EXPECT_FAIL(c, 500, "readable or writable by everyone");
    {
        char *big = malloc(AUTH_SECRET_MAX + 2);
        memset(big, 'k', AUTH_SECRET_MAX + 1);
        big[AUTH_SECRET_MAX + 1] = '\0';
        write_file(SECRET_FILE, big, 0600);
        free(big);
        EXPECT_FAIL(c, 500, "longer than 4096 bytes");
    }
    unlink(SECRET_FILE);
    mkdir(SECRET_FILE, 0700);
    EXPECT_FAIL(c, 500, "not a regular file");
    rmdir(SECRET_FILE);

    /* Good files: trailing white space is not part of the key (as PHP's rtrim). */
    write_file(SECRET_FILE, SECRET, 0600);
    EXPECT_SUB(c, "alice");
    write_file(SECRET_FILE, SECRET " \r\n\n", 0640);
    EXPECT_SUB(c, "alice");
    CHECK(auth_ready(c, &e) == 0);

    /* A cached secret does not outlive a change of the file: rotation needs no restart. */
    write_file(SECRET_FILE, "a-completely-new-secret-0123456789abcdef\n", 0600);
    EXPECT_FAIL(c, 401, "signature does not verify");
    free(t);
    t = token("a-completely-new-secret-0123456789abcdef", "alice2");
    snprintf(v, sizeof(v), "Bearer %s", t);
    setenv("HTTP_AUTHORIZATION", v, 1);
    EXPECT_SUB(c, "alice2");
    /* ...nor a chmod that makes it public. */
    chmod(SECRET_FILE, 0644);
    EXPECT_FAIL(c, 500, "readable or writable by everyone");
    chmod(SECRET_FILE, 0600);
    EXPECT_SUB(c, "alice2");

    clear_env();
    free(t);
    config_free(c);
    unlink(SECRET_FILE);
}

/* auth_origin_ok with the given headers (NULL: unset). */
static int
origin(const struct config *c, const char *o, const char *referer, const char *host)
{
    struct http_req req;
    struct err e;
    int rc;

    clear_env();
    if (o)
        setenv("HTTP_ORIGIN", o, 1);
    if (referer)
        setenv("HTTP_REFERER", referer, 1);
    if (host)
        setenv("HTTP_HOST", host, 1);
    http_req_cgi(&req);
    err_clear(&e);
    rc = auth_origin_ok(c, &req, &e);
    if (rc < 0) {
        CHECK_INT(e.status, 403);
        CHECK_STR(e.code, "forbidden");
        CHECK_CONTAINS(e.msg, "cross-site request refused");
    }
    buf_free(&req.headers);
    return rc;
}

static void
test_origin(void)
{
    struct config *c = config("{\"mode\":\"none\",\"allowed_origins\":[\"https://app.example\","
                              "\"http://localhost:8080/\",\"HTTPS://Other.Example:443\"]}");

    /* No browser headers at all: curl, a PHP backend. */
    CHECK(origin(c, NULL, NULL, "sync.example") == 0);
    CHECK(origin(c, NULL, NULL, NULL) == 0);
    CHECK(origin(c, "", "", "sync.example") == 0);
    /* Same origin as the request, by Host; default ports and case do not matter. */
    CHECK(origin(c, "https://sync.example", NULL, "sync.example") == 0);
    CHECK(origin(c, "http://sync.example", NULL, "sync.example:80") == 0);
    CHECK(origin(c, "https://SYNC.example", NULL, "sync.EXAMPLE:443") == 0);
    CHECK(origin(c, "http://127.0.0.1:8080", NULL, "127.0.0.1:8080") == 0);
    CHECK(origin(c, "http://127.0.0.1:8081", NULL, "127.0.0.1:8080") == -1);
    CHECK(origin(c, "https://sync.example.evil", NULL, "sync.example") == -1);
    CHECK(origin(c, "https://evil.example", NULL, "sync.example") == -1);
    CHECK(origin(c, "https://evil.example", NULL, NULL) == -1);
    /* Configured origins. */
    CHECK(origin(c, "https://app.example", NULL, "sync.example") == 0);
    CHECK(origin(c, "http://app.example", NULL, "sync.example") == -1);
    CHECK(origin(c, "https://app.example:8443", NULL, "sync.example") == -1);
    CHECK(origin(c, "http://localhost:8080", NULL, "sync.example") == 0);
    CHECK(origin(c, "https://other.example", NULL, "sync.example") == 0);
    /* Not an origin at all. */
    CHECK(origin(c, "null", NULL, "sync.example") == -1);
    CHECK(origin(c, "https://app.example/path", NULL, "sync.example") == -1);
    CHECK(origin(c, "https://user@sync.example", NULL, "sync.example") == -1);
    CHECK(origin(c, "sync.example", NULL, "sync.example") == -1);
    CHECK(origin(c, "https://", NULL, "") == -1);
    /* Without Origin, the Referer's origin counts (and Origin wins when both are there). */
    CHECK(origin(c, NULL, "https://sync.example/app/todos?x=1", "sync.example") == 0);
    CHECK(origin(c, NULL, "https://app.example/", "sync.example") == 0);
    CHECK(origin(c, NULL, "https://evil.example/sync.example", "sync.example") == -1);
    CHECK(origin(c, NULL, "about:blank", "sync.example") == -1);
    CHECK(origin(c, "https://evil.example", "https://sync.example/", "sync.example") == -1);
    clear_env();
    config_free(c);
}

int
main(void)
{
    test_mode_none();
    test_sources();
    test_secret_file();
    test_origin();
    return check_done("test-auth-request");
}
