/*
 * fuzz-query: the request parsers every endpoint runs on untrusted input:
 * http_req_check (limits), http_path_segment (the entity from PATH_INFO or
 * REQUEST_URI), http_query_str and http_query_ints (declared parameters).
 *
 * Input: up to four lines, "QUERY_STRING\nPATH_INFO\nREQUEST_URI\nheader";
 * each is cut at a NUL byte, as a CGI variable would be. The request is a
 * FastCGI one whose variables are those lines, so nothing touches the
 * process environment.
 */
#include <string.h>

#include <fcgiapp.h>

#include "fuzz.h"
#include "http.h"

/* The next line of [*p, end) as a new NUL-terminated string. */
static char *
line(const uint8_t **p, const uint8_t *end, const char *prefix)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p), plen = strlen(prefix);
    char *s = malloc(plen + n + 1);

    memcpy(s, prefix, plen);
    memcpy(s + plen, *p, n);
    s[plen + n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"since", "limit", "entities", "mode", "a", "s"};
    const uint8_t *p = data, *end = data + size;
    char *envp[6] = {0};
    char out[80], small[4];
    FCGX_Request r;
    struct http_req req;
    struct err e;
    size_t i;
    int rc;

    envp[0] = line(&p, end, "QUERY_STRING=");
    envp[1] = line(&p, end, "PATH_INFO=");
    envp[2] = line(&p, end, "REQUEST_URI=");
    envp[3] = line(&p, end, "HTTP_X_FUZZ=");
    envp[4] = strdup("REQUEST_METHOD=GET");
    memset(&r, 0, sizeof(r));
    r.envp = envp;
    http_req_fcgx(&req, &r);

    rc = http_req_check(&req, &e);
    if (rc == 0)
        FUZZ_ASSERT(strlen(req.query) <= HTTP_MAX_QUERY && strlen(req.path_info) <= HTTP_MAX_PATH);
    else
        FUZZ_ASSERT(e.status == 414 || e.status == 431);

    if (http_path_segment(&req, out, sizeof(out)) == 0) {
        FUZZ_ASSERT(out[0] != '\0' && strlen(out) < sizeof(out));
        FUZZ_ASSERT(strchr(out, '/') == NULL);
        /* From REQUEST_URI the query is not part of the path; PATH_INFO is already
         * decoded by the web server and may hold a '?' (from %3F). */
        FUZZ_ASSERT(req.path_info[0] != '\0' || strchr(out, '?') == NULL);
    }
    if (http_path_segment(&req, small, sizeof(small)) == 0)
        FUZZ_ASSERT(strlen(small) < sizeof(small));

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char v[64 + 1];
        v[64] = 'Z'; /* canary: the parser may use 64 bytes, never the 65th */
        rc = http_query_str(&req, names[i], v, 64, &e);
        FUZZ_ASSERT(v[64] == 'Z');
        if (rc == 1)
            FUZZ_ASSERT(strlen(v) < 64);
        else if (rc < 0)
            FUZZ_ASSERT(e.status == 400);
        else
            FUZZ_ASSERT(rc == 0);
    }
    {
        struct http_param specs[] = {{"since", 0, 1LL << 62, 0, HTTP_INT, NULL},
                                     {"limit", 1, 1000, 500, HTTP_INT, NULL}};
        long long v[2];
        if (http_query_ints(&req, specs, 2, v, &e) == 0) {
            FUZZ_ASSERT(v[0] >= 0 && v[0] <= 1LL << 62);
            FUZZ_ASSERT(v[1] >= 1 && v[1] <= 1000);
        } else {
            FUZZ_ASSERT(e.status == 400);
        }
    }
    {
        /* A declared table with a text parameter limited to two values. */
        static const char *const modes[] = {"poll", "stream", NULL};
        struct http_param specs[] = {{"since", 0, 1LL << 62, -1, HTTP_INT, NULL},
                                     {"entities", 0, 0, 0, HTTP_TEXT, NULL},
                                     {"mode", 0, 0, 0, HTTP_TEXT, modes}};
        struct http_value v[3];
        if (http_query(&req, specs, 3, v, &e) == 0) {
            FUZZ_ASSERT(v[0].n >= -1 && v[0].n <= 1LL << 62);
            FUZZ_ASSERT(v[0].given || v[0].n == -1);
            FUZZ_ASSERT(strlen(v[1].text) < sizeof(v[1].text));
            FUZZ_ASSERT(!v[2].given || strcmp(v[2].text, "poll") == 0 ||
                        strcmp(v[2].text, "stream") == 0);
        } else {
            FUZZ_ASSERT(e.status == 400);
        }
    }
    for (i = 0; i < 5; i++)
        free(envp[i]);
    return 0;
}
