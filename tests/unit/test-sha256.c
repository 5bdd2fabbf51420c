/*
 * SHA-256 and HMAC-SHA256 (lib/sha256.c): the published vectors (FIPS 180-4
 * examples, RFC 4231 test cases 1-4, 6, 7), every message length across the
 * block and padding boundaries, input fed in pieces, and random keys and
 * messages against OpenSSL's HMAC as an independent implementation.
 */
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check.h"
#include "sha256.h"

static void
hex(const unsigned char *p, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static void
check_sha(int line, const void *msg, size_t n, const char *want)
{
    unsigned char d[SHA256_LEN];
    char got[2 * SHA256_LEN + 1];
    struct sha256 s;

    sha256_init(&s);
    sha256_update(&s, msg, n);
    sha256_final(&s, d);
    hex(d, sizeof(d), got);
    CHECK_AT(line, strcmp(got, want) == 0, "sha256 of %zu bytes: got %s, want %s", n, got, want);
}

static void
check_hmac(int line, const void *key, size_t keylen, const void *msg, size_t n, const char *want)
{
    unsigned char d[SHA256_LEN];
    char got[2 * SHA256_LEN + 1];

    hmac_sha256(key, keylen, msg, n, d);
    hex(d, sizeof(d), got);
    CHECK_AT(line, strcmp(got, want) == 0, "hmac: got %s, want %s", got, want);
}

static void
test_vectors(void)
{
    unsigned char k20[20], d50[50], k25[25], k131[131];
    static const char *const long_msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    size_t i;

    check_sha(__LINE__, "", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_sha(__LINE__, "abc", 3,
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_sha(__LINE__, long_msg, strlen(long_msg),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    memset(k20, 0x0b, sizeof(k20));
    check_hmac(__LINE__, k20, sizeof(k20), "Hi There", 8,
               "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check_hmac(__LINE__, "Jefe", 4, "what do ya want for nothing?", 28,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(k20, 0xaa, sizeof(k20));
    memset(d50, 0xdd, sizeof(d50));
    check_hmac(__LINE__, k20, sizeof(k20), d50, sizeof(d50),
               "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    for (i = 0; i < sizeof(k25); i++)
        k25[i] = (unsigned char)(i + 1);
    memset(d50, 0xcd, sizeof(d50));
    check_hmac(__LINE__, k25, sizeof(k25), d50, sizeof(d50),
               "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    /* A key longer than a block is hashed first. */
    memset(k131, 0xaa, sizeof(k131));
    check_hmac(__LINE__, k131, sizeof(k131),
               "Test Using Larger Than Block-Size Key - Hash Key First", 54,
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    {
        static const char m[] =
            "This is a test using a larger than block-size key and a larger than block-size "
            "data. The key needs to be hashed before being used by the HMAC algorithm.";
        check_hmac(__LINE__, k131, sizeof(k131), m, sizeof(m) - 1,
                   "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    }
}

/* Every length from 0 to 300 bytes (the padding's one- and two-block cases),
 * whole and fed in pieces of every size, against OpenSSL. */
static void
test_lengths_and_pieces(void)
{
    unsigned char msg[300], want[EVP_MAX_MD_SIZE], got[SHA256_LEN];
    unsigned wantlen = 0;
    size_t n, step, i;
    struct sha256 s;

    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)(i * 7 + 3);
    for (n = 0; n <= sizeof(msg); n++) {
        EVP_Digest(msg, n, want, &wantlen, EVP_sha256(), NULL);
        for (step = 1; step <= 130; step += (step < 8 ? 1 : 61)) {
            sha256_init(&s);
            for (i = 0; i < n; i += step)
                sha256_update(&s, msg + i, n - i < step ? n - i : step);
            sha256_final(&s, got);
            CHECK_AT(__LINE__, memcmp(got, want, SHA256_LEN) == 0, "length %zu in pieces of %zu", n,
                     step);
        }
    }
}

/* Random keys (0..200 bytes) and messages (0..1000 bytes) against OpenSSL's HMAC. */
static void
test_hmac_random(void)
{
    unsigned char key[200], msg[1000], want[EVP_MAX_MD_SIZE], got[SHA256_LEN];
    unsigned wantlen = 0;
    int round;
    size_t i;

    srand(20261125);
    for (round = 0; round < 500; round++) {
        size_t kn = (size_t)rand() % sizeof(key), mn = (size_t)rand() % sizeof(msg);
        for (i = 0; i < kn; i++)
            key[i] = (unsigned char)rand();
        for (i = 0; i < mn; i++)
            msg[i] = (unsigned char)rand();
        HMAC(EVP_sha256(), key, (int)kn, msg, mn, want, &wantlen);
        hmac_sha256(key, kn, msg, mn, got);
        CHECK_AT(__LINE__, wantlen == SHA256_LEN && memcmp(got, want, SHA256_LEN) == 0,
                 "round %d: key %zu bytes, message %zu bytes", round, kn, mn);
    }
}

static void
test_ct_equal(void)
{
    unsigned char a[32], b[32];
    size_t i;

    memset(a, 0x5a, sizeof(a));
    memcpy(b, a, sizeof(b));
    CHECK(ct_equal(a, b, sizeof(a)));
    CHECK(ct_equal(a, b, 0));
    for (i = 0; i < sizeof(b); i++) {
        b[i] ^= 0x01;
        CHECK_AT(__LINE__, !ct_equal(a, b, sizeof(a)), "a difference at byte %zu", i);
        b[i] ^= 0x81;
        CHECK_AT(__LINE__, !ct_equal(a, b, sizeof(a)), "a high-bit difference at byte %zu", i);
        b[i] ^= 0x80;
    }
}

int
main(void)
{
    test_vectors();
    test_lengths_and_pieces();
    test_hmac_random();
    test_ct_equal();
    return check_done("test-sha256");
}
