/*
 * cgi-fixed: the ceiling of plain CGI.
 *
 * A minimal C CGI program: prints the headers and the fixed JSON body in the
 * file named by BENCH_BODY_FILE (the same bytes sync-pull answers), then
 * exits. Only libc, so what is measured is the web server's fork and exec of a
 * small program: the floor any CGI answer pays.
 */
#include <stdio.h>
#include <stdlib.h>

int
main(void)
{
    const char *path = getenv("BENCH_BODY_FILE");
    FILE *f = path ? fopen(path, "rb") : NULL;
    char chunk[16384];
    size_t n;

    if (f == NULL) {
        fputs("Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nno body file\n",
              stdout);
        return 0;
    }
    fputs("Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n",
          stdout);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, stdout);
    fclose(f);
    return 0;
}
