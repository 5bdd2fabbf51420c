/*
 * auth_secret: the key tokens are signed with, from auth.secret_file.
 *
 * The secret is the secret file's bytes minus trailing whitespace (the same
 * set PHP's rtrim() strips, so the PHP that mints tokens reads the same key).
 * It is cached per process, keyed by the file's identity and mtime, so a
 * rotated secret is picked up without a restart. A file that is missing, too
 * short or too long, or readable by everyone is a 500 config, logged once
 * while it lasts.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "auth_int.h"
#include "log.h"

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
static int secret_failed; /* the last auth_secret_get() failed (guarded by lock) */

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

int
auth_secret_get(const struct config *cfg, unsigned char *key, size_t *len, struct err *e)
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
    rc = auth_secret_get(cfg, key, &len, e);
    explicit_bzero(key, sizeof(key));
    return rc;
}
