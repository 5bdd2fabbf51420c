/*
 * http_request: the edge. Makes struct http_req from the CGI environment or an
 * accepted FastCGI request, once, and answers questions about what the
 * request asked: its path segment and its declared query parameters. The only
 * file that reads request variables (see http.h, struct http_in).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "http.h"

extern char **environ;

int
http_is_cgi(void)
{
    return FCGX_IsCGI();
}

/* A request variable, or NULL. Borrowed. The edge's only way in. */
static const char *
http_env(const struct http_req *req, const char *name)
{
    if (req->fcgx != NULL)
        return FCGX_GetParam(name, req->fcgx->envp);
    return getenv(name);
}

/* The sizes of the request's headers (HTTP_* variables), for http_req_check. */
static void
measure_headers(struct http_req *req)
{
    char **env = req->fcgx != NULL ? req->fcgx->envp : environ;
    const char *eq;
    size_t n;

    for (; env != NULL && *env != NULL; env++) {
        if (strncmp(*env, "HTTP_", 5) != 0 || (eq = strchr(*env, '=')) == NULL)
            continue;
        n = strlen(eq + 1);
        req->in.headers_len += n;
        if (n > HTTP_MAX_HEADER && req->in.long_header == NULL)
            req->in.long_header = *env;
    }
}

static void
http_req_fill(struct http_req *req)
{
    struct http_in *in = &req->in;
    const char *v;

    v = http_env(req, "REQUEST_METHOD");
    req->method = v ? v : "";
    req->head = strcmp(req->method, "HEAD") == 0;
    v = http_env(req, "PATH_INFO");
    req->path_info = v ? v : "";
    v = http_env(req, "QUERY_STRING");
    req->query = v ? v : "";
    in->request_uri = http_env(req, "REQUEST_URI");
    in->script_name = http_env(req, "SCRIPT_NAME");
    in->content_type = http_env(req, "CONTENT_TYPE");
    in->content_length = http_env(req, "CONTENT_LENGTH");
    in->accept_encoding = http_env(req, "HTTP_ACCEPT_ENCODING");
    in->authorization = http_env(req, "HTTP_AUTHORIZATION");
    in->cookie = http_env(req, "HTTP_COOKIE");
    in->origin = http_env(req, "HTTP_ORIGIN");
    in->referer = http_env(req, "HTTP_REFERER");
    in->host = http_env(req, "HTTP_HOST");
    in->if_none_match = http_env(req, "HTTP_IF_NONE_MATCH");
    in->last_event_id = http_env(req, "HTTP_LAST_EVENT_ID");
    in->cors_method = http_env(req, "HTTP_ACCESS_CONTROL_REQUEST_METHOD");
    in->server_software = http_env(req, "SERVER_SOFTWARE");
    in->streaming = http_env(req, "RHTMX_SYNC_STREAMING");
    in->sw_switch = http_env(req, "RHTMX_SYNC_SW");
    measure_headers(req);
    req->status = 200;
}

void
http_req_cgi(struct http_req *req)
{
    memset(req, 0, sizeof(*req));
    http_req_fill(req);
}

void
http_req_fcgx(struct http_req *req, FCGX_Request *r)
{
    memset(req, 0, sizeof(*req));
    req->fcgx = r;
    http_req_fill(req);
}

int
http_path_segment(const struct http_req *req, char *out, size_t outlen)
{
    const char *p = req->path_info, *end;
    const char *uri;
    size_t n;

    if (*p == '\0') {
        uri = req->in.request_uri;
        if (uri == NULL)
            return -1;
        end = strchr(uri, '?');
        if (end == NULL)
            end = uri + strlen(uri);
        while (end > uri && end[-1] == '/')
            end--;
        p = end;
        while (p > uri && p[-1] != '/')
            p--;
    } else {
        while (*p == '/')
            p++;
        end = strchr(p, '/');
        if (end == NULL)
            end = p + strlen(p);
        else if (end[strspn(end, "/")] != '\0')
            return -1; /* "/todos/extra" is not a route */
    }
    n = (size_t)(end - p);
    if (n == 0 || n >= outlen)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int
http_query_str(const struct http_req *req, const char *name, char *out, size_t outlen,
               struct err *e)
{
    const char *p = req->query;
    size_t nlen = strlen(name);
    int found = 0;

    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t o = 0;
            if (found++)
                return err_set(e, 400, "bad_request", "query parameter '%s' given twice", name);
            for (; v < end; v++) {
                int c = (unsigned char)*v;
                if (c == '%') {
                    if (end - v < 3 || hexval(v[1]) < 0 || hexval(v[2]) < 0)
                        return err_set(e, 400, "bad_request",
                                       "query parameter '%s' is not valid percent-encoding", name);
                    c = hexval(v[1]) * 16 + hexval(v[2]);
                    v += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (c == 0 || o + 1 >= outlen)
                    return err_set(e, 400, "bad_request", "query parameter '%s' is too long", name);
                out[o++] = (char)c;
            }
            out[o] = '\0';
        } else if ((size_t)(end - p) == nlen && strncmp(p, name, nlen) == 0) {
            if (found++)
                return err_set(e, 400, "bad_request", "query parameter '%s' given twice", name);
            out[0] = '\0';
        }
        p = amp ? amp + 1 : end;
    }
    return found ? 1 : 0;
}

/* The integer of parameter spec from its text. 0, or -1 with e set (400). */
static int
int_value(const struct http_param *spec, const char *text, long long *out, struct err *e)
{
    char *end;

    errno = 0;
    if (text[0] < '0' || text[0] > '9')
        goto bad;
    *out = strtoll(text, &end, 10);
    if (*end != '\0' || errno != 0)
        goto bad;
    if (*out < spec->min || *out > spec->max)
        return err_set(e, 400, "bad_request", "query parameter '%s' must be within %lld..%lld",
                       spec->name, spec->min, spec->max);
    return 0;
bad:
    return err_set(e, 400, "bad_request", "query parameter '%s' must be a non-negative integer",
                   spec->name);
}

int
http_query_ints(const struct http_req *req, const struct http_param *specs, size_t n,
                long long *values, struct err *e)
{
    char tmp[32];
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        values[i] = specs[i].def;
        rc = http_query_str(req, specs[i].name, tmp, sizeof(tmp), e);
        if (rc < 0 || (rc > 0 && int_value(&specs[i], tmp, &values[i], e) < 0))
            return -1;
    }
    return 0;
}

/* "a, b or c" for the values of list, into out. */
static void
one_of_text(const char *const *list, char *out, size_t outlen)
{
    size_t i, o = 0;

    out[0] = '\0';
    for (i = 0; list[i] != NULL && o < outlen; i++) {
        const char *sep = i == 0 ? "" : list[i + 1] == NULL ? " or " : ", ";
        int k = snprintf(out + o, outlen - o, "%s%s", sep, list[i]);
        if (k < 0)
            break;
        o += (size_t)k;
    }
}

int
http_query(const struct http_req *req, const struct http_param *specs, size_t n,
           struct http_value *values, struct err *e)
{
    char allowed[128];
    size_t i, k;
    int rc;

    for (i = 0; i < n; i++) {
        struct http_value *v = &values[i];
        v->n = specs[i].def;
        v->text[0] = '\0';
        /* An integer's text stays short: 32 bytes, as http_query_ints reads it. */
        rc = http_query_str(req, specs[i].name, v->text,
                            specs[i].kind == HTTP_INT ? 32 : sizeof(v->text), e);
        if (rc < 0)
            return -1;
        v->given = rc > 0;
        if (v->given && specs[i].kind == HTTP_INT && int_value(&specs[i], v->text, &v->n, e) < 0)
            return -1;
        if (!v->given || specs[i].kind == HTTP_INT || specs[i].one_of == NULL)
            continue;
        for (k = 0; specs[i].one_of[k] != NULL; k++)
            if (strcmp(v->text, specs[i].one_of[k]) == 0)
                break;
        if (specs[i].one_of[k] == NULL) {
            one_of_text(specs[i].one_of, allowed, sizeof(allowed));
            return err_set(e, 400, "bad_request", "query parameter '%s' must be %s", specs[i].name,
                           allowed);
        }
    }
    return 0;
}
