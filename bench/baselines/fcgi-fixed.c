/*
 * fcgi-fixed: the ceiling of the FastCGI path.
 *
 * A minimal libfcgi responder that answers every request with one fixed JSON
 * body, read once at start-up from the file named by BENCH_BODY_FILE (the
 * benchmark writes there the exact bytes sync-pull answers, so both send the
 * same response through the same web server). No database, no parsing: what
 * is left is libfcgi and the web server, which is what sync-pull is measured
 * against. Its headers are sync-pull's too (Content-Length and Vary
 * included): a web server handles an answer of known length with less work
 * than one it must frame itself, so anything less would flatter sync-pull.
 *
 * With BENCH_CLOSE_EARLY=1 it ends each connection the way the product does
 * (lib/http.c, fcgx_close_early): at once when the request's input was read
 * to its end, instead of libfcgi's shutdown and
 * wait for the web server to close first. Without it, it is libfcgi as
 * shipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

/* The whole file at path into *out (malloc'd, caller frees); its size, or -1. */
static long
slurp(const char *path, char **out)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    long n = -1;

    *out = NULL;
    if (f == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (*out = malloc((size_t)n + 1)) != NULL && fread(*out, 1, (size_t)n, f) == (size_t)n) {
        fclose(f);
        return n;
    }
    fclose(f);
    free(*out);
    *out = NULL;
    return -1;
}

/* The product's close (lib/http.c): at once when the input was read to its end. */
static void
close_early(FCGX_Request *r)
{
    if (FCGX_GetChar(r->in) == EOF)
        FCGX_Detach(r);
}

int
main(void)
{
    FCGX_Request r;
    char *body = NULL;
    long n = slurp(getenv("BENCH_BODY_FILE"), &body);
    const char *early = getenv("BENCH_CLOSE_EARLY");
    char head[256];
    int hn;

    if (n < 0) {
        fputs("fcgi-fixed: cannot read BENCH_BODY_FILE\n", stderr);
        return 1;
    }
    hn = snprintf(head, sizeof(head),
                  "Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                  "Vary: Accept-Encoding\r\nContent-Length: %ld\r\n\r\n",
                  n);
    if (FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0)
        return 1;
    while (FCGX_Accept_r(&r) >= 0) {
        FCGX_PutStr(head, hn, r.out);
        FCGX_PutStr(body, (int)n, r.out);
        if (early != NULL && strcmp(early, "1") == 0)
            close_early(&r);
        FCGX_Finish_r(&r);
    }
    FCGX_Free(&r, 1);
    free(body);
    return 0;
}
