/*  proto/identity.c — a node's long-term identity, its key file and its
 *  human-facing names (node id, short id, fingerprint, safety number).
 *
 *  Owns: one identity_t per call to identity_new*, allocated as a whole with
 *  sodium_malloc (guard pages, mlock'd, wiped on free) and made read-only as
 *  soon as it is built, so a stray write faults instead of corrupting a key.
 *  Invariants: ed_sk is libsodium's seed || pk; x_pk/x_sk are the X25519
 *  forms of the Ed25519 pair; nothing here does I/O — the key file is
 *  encoded to and decoded from buffers, and node/ writes it (O_EXCL, 0600).
 *  Every secret copied to the stack is wiped on every path: public functions
 *  own the secret buffers and call a helper that may return early.
 */
#include "identity.h"

#include <sodium.h>
#include <string.h>

#include "b32.h"
#include "bytes.h"
#include "selftest.h"

struct _identity_t {
    uint8_t ed_pk[32]; /* Ed25519 public key */
    uint8_t x_pk[32];  /* X25519 public key derived from ed_pk */
    uint8_t ed_sk[64]; /* Ed25519 secret key: seed || ed_pk */
    uint8_t x_sk[32];  /* X25519 secret key derived from ed_sk */
};

#define S_MAGIC "PRLYKEY1"
#define S_MAGIC_LEN 8u
#define S_FORMAT_PLAIN 0u
#define S_FORMAT_SEALED 1u
#define S_OFF_FORMAT 8u
#define S_OFF_PK 9u
#define S_OFF_SEED 41u /* plain */
#define S_OFF_SALT 41u /* sealed */
#define S_OFF_OPS 57u
#define S_OFF_MEM 65u
#define S_OFF_NONCE 73u
#define S_OFF_CT 97u
#define S_SAFETY_ITERATIONS 5200u
#define S_SAFETY_VERSION 0u

identity_t *
identity_new(void)
{
    uint8_t seed[32];
    randombytes_buf(seed, sizeof seed);
    identity_t *self = identity_new_from_seed(seed);
    sodium_memzero(seed, sizeof seed);
    return self;
}

identity_t *
identity_new_from_seed(const uint8_t seed[32])
{
    if (!seed) {
        return NULL;
    }
    identity_t *self = sodium_malloc(sizeof *self);
    if (!self) {
        return NULL;
    }
    if (crypto_sign_seed_keypair(self->ed_pk, self->ed_sk, seed) != 0
        || crypto_sign_ed25519_pk_to_curve25519(self->x_pk, self->ed_pk) != 0
        || crypto_sign_ed25519_sk_to_curve25519(self->x_sk, self->ed_sk) != 0) {
        sodium_free(self); /* wipes */
        return NULL;
    }
    /* Failure only loses the hardening, not correctness. */
    (void)sodium_mprotect_readonly(self);
    return self;
}

void
identity_destroy(identity_t **self_p)
{
    if (self_p && *self_p) {
        sodium_free(*self_p); /* makes it writable, wipes, unmaps */
        *self_p = NULL;
    }
}

const uint8_t *
identity_ed_pk(const identity_t *self)
{
    return self->ed_pk;
}

const uint8_t *
identity_x_pk(const identity_t *self)
{
    return self->x_pk;
}

const uint8_t *
identity_ed_sk(const identity_t *self)
{
    return self->ed_sk;
}

const uint8_t *
identity_x_sk(const identity_t *self)
{
    return self->x_sk;
}

/* ----------------------------------------------------------------- key file */

/*  Argon2id cost from a caller or a file: at least libsodium's minimum
 *  (MALFORMED below), at most MODERATE (LIMIT above), so a hostile file
 *  cannot make us allocate or spin without bound. */
static int
s_check_cost(uint64_t opslimit, uint64_t memlimit)
{
    if (opslimit < crypto_pwhash_OPSLIMIT_MIN || memlimit < crypto_pwhash_MEMLIMIT_MIN) {
        return PARLEY_ERR_MALFORMED;
    }
    if (opslimit > crypto_pwhash_OPSLIMIT_MODERATE || memlimit > crypto_pwhash_MEMLIMIT_MODERATE) {
        return PARLEY_ERR_LIMIT;
    }
    return PARLEY_OK;
}

static int
s_derive_key(uint8_t key[32], const char *pass, size_t pass_len, const uint8_t *salt,
             uint64_t opslimit, uint64_t memlimit)
{
    if (pass_len > crypto_pwhash_PASSWD_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (crypto_pwhash(key, 32, pass, pass_len, salt, opslimit, (size_t)memlimit,
                      crypto_pwhash_ALG_ARGON2ID13)
        != 0) {
        return PARLEY_ERR_NOMEM; /* the only way it fails once cost is in range */
    }
    return PARLEY_OK;
}

static void
s_write_prefix(bytes_writer_t *w, const identity_t *self, uint8_t format)
{
    bytes_put(w, S_MAGIC, S_MAGIC_LEN);
    bytes_put_u8(w, format);
    bytes_put(w, self->ed_pk, 32);
}

static int
s_encode_plain(const identity_t *self, uint8_t *out, size_t cap, size_t *out_len)
{
    bytes_writer_t w;
    bytes_writer_init(&w, out, cap);
    s_write_prefix(&w, self, S_FORMAT_PLAIN);
    bytes_put(&w, self->ed_sk, 32); /* the seed half */
    if (!bytes_writer_ok(&w)) {
        return PARLEY_ERR_LIMIT;
    }
    *out_len = IDENTITY_FILE_PLAIN_LEN;
    return PARLEY_OK;
}

/*  key is owned (and wiped) by the caller. */
static int
s_encode_sealed(const identity_t *self, const char *pass, size_t pass_len, uint64_t ops,
                uint64_t mem, uint8_t key[32], uint8_t *out, size_t cap, size_t *out_len)
{
    if (cap < IDENTITY_FILE_SEALED_LEN) {
        return PARLEY_ERR_LIMIT;
    }
    uint8_t salt[crypto_pwhash_SALTBYTES];
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    randombytes_buf(salt, sizeof salt);
    randombytes_buf(nonce, sizeof nonce);

    bytes_writer_t w;
    bytes_writer_init(&w, out, cap);
    s_write_prefix(&w, self, S_FORMAT_SEALED);
    bytes_put(&w, salt, sizeof salt);
    bytes_put_u64(&w, ops);
    bytes_put_u64(&w, mem);
    bytes_put(&w, nonce, sizeof nonce);
    if (!bytes_writer_ok(&w)) {
        return PARLEY_ERR_LIMIT;
    }
    int rc = s_derive_key(key, pass, pass_len, salt, ops, mem);
    if (rc != 0) {
        return rc;
    }
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + S_OFF_CT, NULL, self->ed_sk, 32, out, S_OFF_CT,
                                               NULL, nonce, key);
    *out_len = IDENTITY_FILE_SEALED_LEN;
    return PARLEY_OK;
}

int
identity_file_encode(const identity_t *self, const char *passphrase, size_t pass_len,
                     uint64_t opslimit, uint64_t memlimit, uint8_t *out, size_t cap,
                     size_t *out_len)
{
    if (!self || !out || !out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (!passphrase) {
        return s_encode_plain(self, out, cap, out_len);
    }
    if (opslimit == 0 && memlimit == 0) {
        opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    }
    int rc = s_check_cost(opslimit, memlimit);
    if (rc != 0) {
        return rc;
    }
    uint8_t key[32];
    rc = s_encode_sealed(self, passphrase, pass_len, opslimit, memlimit, key, out, cap, out_len);
    sodium_memzero(key, sizeof key);
    return rc;
}

/*  Checks magic, format and the exact length for that format; returns the
 *  format or a negative code. */
static int
s_file_format(const uint8_t *buf, size_t len)
{
    if (!buf || len < S_OFF_PK || memcmp(buf, S_MAGIC, S_MAGIC_LEN) != 0) {
        return PARLEY_ERR_MALFORMED;
    }
    uint8_t format = buf[S_OFF_FORMAT];
    if (format == S_FORMAT_PLAIN && len == IDENTITY_FILE_PLAIN_LEN) {
        return S_FORMAT_PLAIN;
    }
    if (format == S_FORMAT_SEALED && len == IDENTITY_FILE_SEALED_LEN) {
        return S_FORMAT_SEALED;
    }
    return PARLEY_ERR_MALFORMED;
}

/*  Builds the identity and checks it against the public key in the file. */
static int
s_from_seed_checked(const uint8_t seed[32], const uint8_t ed_pk[32], identity_t **out)
{
    identity_t *self = identity_new_from_seed(seed);
    if (!self) {
        return PARLEY_ERR_NOMEM;
    }
    if (sodium_memcmp(self->ed_pk, ed_pk, 32) != 0) {
        identity_destroy(&self);
        return PARLEY_ERR_MALFORMED;
    }
    *out = self;
    return PARLEY_OK;
}

/*  key and seed are owned (and wiped) by the caller. */
static int
s_open_sealed(const uint8_t *buf, const char *pass, size_t pass_len, uint8_t key[32],
              uint8_t seed[32], identity_t **out)
{
    bytes_reader_t r;
    bytes_reader_init(&r, buf + S_OFF_OPS, 16);
    uint64_t ops = bytes_get_u64(&r);
    uint64_t mem = bytes_get_u64(&r);
    int rc = s_check_cost(ops, mem);
    if (rc != 0) {
        return rc;
    }
    rc = s_derive_key(key, pass, pass_len, buf + S_OFF_SALT, ops, mem);
    if (rc != 0) {
        return rc;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(seed, NULL, NULL, buf + S_OFF_CT,
                                                   IDENTITY_FILE_SEALED_LEN - S_OFF_CT, buf,
                                                   S_OFF_CT, buf + S_OFF_NONCE, key)
        != 0) {
        return PARLEY_ERR_AUTH;
    }
    return s_from_seed_checked(seed, buf + S_OFF_PK, out);
}

int
identity_file_decode(const uint8_t *buf, size_t len, const char *passphrase, size_t pass_len,
                     identity_t **out)
{
    if (!out) {
        return PARLEY_ERR_STATE;
    }
    *out = NULL;
    int format = s_file_format(buf, len);
    if (format < 0) {
        return format;
    }
    if (format == S_FORMAT_PLAIN) {
        return s_from_seed_checked(buf + S_OFF_SEED, buf + S_OFF_PK, out);
    }
    if (!passphrase) {
        return PARLEY_ERR_STATE;
    }
    uint8_t key[32];
    uint8_t seed[32];
    int rc = s_open_sealed(buf, passphrase, pass_len, key, seed, out);
    sodium_memzero(key, sizeof key);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

int
identity_file_public(const uint8_t *buf, size_t len, uint8_t ed_pk[32])
{
    int format = s_file_format(buf, len);
    if (format < 0) {
        return format;
    }
    memcpy(ed_pk, buf + S_OFF_PK, 32);
    return PARLEY_OK;
}

bool
identity_file_is_sealed(const uint8_t *buf, size_t len)
{
    return s_file_format(buf, len) == S_FORMAT_SEALED;
}

/* -------------------------------------------------------------------- names */

void
identity_node_id(const uint8_t ed_pk[32], char out[PARLEY_NODE_ID_STRLEN + 1])
{
    /* Cannot fail: out holds 52 characters and the NUL by contract. */
    if (b32_encode(ed_pk, 32, out, PARLEY_NODE_ID_STRLEN + 1) != 0) {
        out[0] = '\0';
    }
}

int
identity_parse_node_id(const char *str, uint8_t ed_pk[32])
{
    int rc = b32_decode(str, ed_pk, 32);
    if (rc != 0) {
        return rc;
    }
    /* A node id must be usable: a valid point of the main subgroup. */
    uint8_t x_pk[32];
    if (crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) != 0) {
        memset(ed_pk, 0, 32);
        return PARLEY_ERR_MALFORMED;
    }
    return PARLEY_OK;
}

void
identity_short_id(const uint8_t ed_pk[32], char out[PARLEY_SHORT_ID_STRLEN + 1])
{
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(ed_pk, id);
    memcpy(out, id, PARLEY_SHORT_ID_STRLEN);
    out[PARLEY_SHORT_ID_STRLEN] = '\0';
}

void
identity_fingerprint(const uint8_t ed_pk[32], char out[50])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t h[20];
    crypto_generichash(h, sizeof h, ed_pk, 32, NULL, 0);
    size_t o = 0;
    for (size_t i = 0; i < sizeof h; i++) {
        if (i > 0 && i % 2 == 0) {
            out[o++] = ' ';
        }
        out[o++] = digits[h[i] >> 4];
        out[o++] = digits[h[i] & 15u];
    }
    out[o] = '\0';
}

/*  30 digits for one key: h = SHA-512(u16 version | key | h), 5200 times,
 *  starting from an empty h; then 6 chunks of 5 bytes, each a big-endian
 *  40-bit integer mod 100000, as 5 zero-padded digits. */
static void
s_safety_half(const uint8_t pk[32], char digits[30])
{
    const uint8_t version[2] = { S_SAFETY_VERSION >> 8, S_SAFETY_VERSION & 0xffu };
    uint8_t h[crypto_hash_sha512_BYTES];
    size_t h_len = 0;
    for (unsigned i = 0; i < S_SAFETY_ITERATIONS; i++) {
        crypto_hash_sha512_state st;
        crypto_hash_sha512_init(&st);
        crypto_hash_sha512_update(&st, version, sizeof version);
        crypto_hash_sha512_update(&st, pk, 32);
        crypto_hash_sha512_update(&st, h, h_len);
        crypto_hash_sha512_final(&st, h);
        h_len = sizeof h;
    }
    for (size_t c = 0; c < 6; c++) {
        uint64_t v = 0;
        for (size_t k = 0; k < 5; k++) {
            v = v << 8 | h[5 * c + k];
        }
        v %= 100000u;
        for (size_t k = 5; k-- > 0;) {
            digits[5 * c + k] = (char)('0' + v % 10u);
            v /= 10u;
        }
    }
}

int
identity_safety_number(const uint8_t a_pk[32], const uint8_t b_pk[32],
                       char out[PARLEY_SAFETY_DIGITS + 1])
{
    if (!a_pk || !b_pk || !out) {
        return PARLEY_ERR_STATE;
    }
    char a[30];
    char b[30];
    s_safety_half(a_pk, a);
    s_safety_half(b_pk, b);
    bool a_first = memcmp(a, b, sizeof a) <= 0;
    memcpy(out, a_first ? a : b, 30);
    memcpy(out + 30, a_first ? b : a, 30);
    out[PARLEY_SAFETY_DIGITS] = '\0';
    return PARLEY_OK;
}

int
identity_ed_to_x(const uint8_t ed_pk[32], uint8_t x_pk[32])
{
    if (crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) != 0) {
        return PARLEY_ERR_CRYPTO;
    }
    return PARLEY_OK;
}

/* ---------------------------------------------------------------- self-test */

#define S_TEST_OPS crypto_pwhash_OPSLIMIT_MIN
#define S_TEST_MEM crypto_pwhash_MEMLIMIT_MIN

static void
s_test_keys(void)
{
    uint8_t seed[32];
    for (size_t i = 0; i < sizeof seed; i++) {
        seed[i] = (uint8_t)i;
    }
    identity_t *a = identity_new_from_seed(seed);
    identity_t *b = identity_new_from_seed(seed);
    CHECK(a && b);
    CHECK(memcmp(identity_ed_pk(a), identity_ed_pk(b), 32) == 0);
    CHECK(memcmp(identity_ed_sk(a), seed, 32) == 0);
    CHECK(memcmp(identity_ed_sk(a) + 32, identity_ed_pk(a), 32) == 0);

    uint8_t x_pk[32];
    CHECK(crypto_scalarmult_base(x_pk, identity_x_sk(a)) == 0);
    CHECK(memcmp(x_pk, identity_x_pk(a), 32) == 0);
    CHECK(identity_ed_to_x(identity_ed_pk(a), x_pk) == 0);
    CHECK(memcmp(x_pk, identity_x_pk(a), 32) == 0);
    uint8_t zero[32] = { 0 };
    CHECK(identity_ed_to_x(zero, x_pk) == PARLEY_ERR_CRYPTO);

    identity_t *c = identity_new();
    CHECK(c);
    CHECK(memcmp(identity_ed_pk(a), identity_ed_pk(c), 32) != 0);
    identity_destroy(&a);
    identity_destroy(&b);
    identity_destroy(&c);
    CHECK(a == NULL && c == NULL);
    identity_destroy(&a); /* NULL-safe */
    identity_destroy(NULL);
    CHECK(identity_new_from_seed(NULL) == NULL);
}

static void
s_test_plain_file(const identity_t *id)
{
    uint8_t file[IDENTITY_FILE_MAX];
    size_t len = 0;
    CHECK(identity_file_encode(id, NULL, 0, 0, 0, file, 72, &len) == PARLEY_ERR_LIMIT);
    CHECK(identity_file_encode(id, NULL, 0, 0, 0, file, sizeof file, &len) == 0);
    CHECK(len == IDENTITY_FILE_PLAIN_LEN);
    CHECK(!identity_file_is_sealed(file, len));

    identity_t *back = NULL;
    CHECK(identity_file_decode(file, len, NULL, 0, &back) == 0);
    CHECK(sodium_memcmp(identity_ed_sk(back), identity_ed_sk(id), 64) == 0);
    identity_destroy(&back);

    uint8_t pk[32];
    CHECK(identity_file_public(file, len, pk) == 0);
    CHECK(memcmp(pk, identity_ed_pk(id), 32) == 0);

    for (size_t cut = 0; cut < len; cut++) {
        CHECK(identity_file_decode(file, cut, NULL, 0, &back) == PARLEY_ERR_MALFORMED);
        CHECK(back == NULL);
        CHECK(identity_file_public(file, cut, pk) == PARLEY_ERR_MALFORMED);
    }
    CHECK(identity_file_decode(file, len + 1, NULL, 0, &back) == PARLEY_ERR_MALFORMED);
    for (size_t i = 0; i < len; i++) {
        file[i] ^= 0x01;
        CHECK(identity_file_decode(file, len, NULL, 0, &back) != 0);
        CHECK(back == NULL);
        file[i] ^= 0x01;
    }
}

/*  Rewrites the cost fields of a sealed file (the MAC then fails, but the
 *  cost must be refused before Argon2id ever runs). */
static void
s_set_cost(uint8_t *file, uint64_t ops, uint64_t mem)
{
    bytes_writer_t w;
    bytes_writer_init(&w, file + S_OFF_OPS, 16);
    bytes_put_u64(&w, ops);
    bytes_put_u64(&w, mem);
}

static void
s_test_hostile_cost(const uint8_t *sealed)
{
    uint8_t file[IDENTITY_FILE_SEALED_LEN];
    identity_t *back = NULL;
    const char *pass = "correct horse";
    const struct {
        uint64_t ops;
        uint64_t mem;
        int rc;
    } cases[] = {
        { UINT64_MAX, S_TEST_MEM, PARLEY_ERR_LIMIT },
        { S_TEST_OPS, UINT64_MAX, PARLEY_ERR_LIMIT },
        { S_TEST_OPS, (uint64_t)crypto_pwhash_MEMLIMIT_MODERATE + 1, PARLEY_ERR_LIMIT },
        { (uint64_t)crypto_pwhash_OPSLIMIT_MODERATE + 1, S_TEST_MEM, PARLEY_ERR_LIMIT },
        { 0, S_TEST_MEM, PARLEY_ERR_MALFORMED },
        { S_TEST_OPS, 0, PARLEY_ERR_MALFORMED },
        { S_TEST_OPS, S_TEST_MEM - 1, PARLEY_ERR_MALFORMED },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(file, sealed, sizeof file);
        s_set_cost(file, cases[i].ops, cases[i].mem);
        CHECK(identity_file_decode(file, sizeof file, pass, strlen(pass), &back) == cases[i].rc);
        CHECK(back == NULL);
    }
}

static void
s_test_sealed_file(const identity_t *id)
{
    const char *pass = "correct horse";
    uint8_t file[IDENTITY_FILE_MAX];
    size_t len = 0;
    CHECK(identity_file_encode(id, pass, strlen(pass), S_TEST_OPS, S_TEST_MEM, file,
                               IDENTITY_FILE_SEALED_LEN - 1, &len)
          == PARLEY_ERR_LIMIT);
    CHECK(identity_file_encode(id, pass, strlen(pass), UINT64_MAX, S_TEST_MEM, file, sizeof file,
                               &len)
          == PARLEY_ERR_LIMIT);
    CHECK(identity_file_encode(id, pass, strlen(pass), S_TEST_OPS, S_TEST_MEM, file, sizeof file,
                               &len)
          == 0);
    CHECK(len == IDENTITY_FILE_SEALED_LEN);
    CHECK(identity_file_is_sealed(file, len));

    identity_t *back = NULL;
    CHECK(identity_file_decode(file, len, pass, strlen(pass), &back) == 0);
    CHECK(sodium_memcmp(identity_ed_sk(back), identity_ed_sk(id), 64) == 0);
    identity_destroy(&back);

    uint8_t pk[32];
    CHECK(identity_file_public(file, len, pk) == 0);
    CHECK(memcmp(pk, identity_ed_pk(id), 32) == 0);
    CHECK(identity_file_decode(file, len, NULL, 0, &back) == PARLEY_ERR_STATE);
    CHECK(identity_file_decode(file, len, "correct horsE", 13, &back) == PARLEY_ERR_AUTH);
    CHECK(identity_file_decode(file, len, pass, strlen(pass) - 1, &back) == PARLEY_ERR_AUTH);
    CHECK(back == NULL);

    for (size_t cut = 0; cut < len; cut++) {
        CHECK(identity_file_decode(file, cut, pass, strlen(pass), &back) == PARLEY_ERR_MALFORMED);
        CHECK(!identity_file_is_sealed(file, cut));
    }
    for (size_t i = 0; i < len; i++) {
        file[i] ^= 0x01;
        CHECK(identity_file_decode(file, len, pass, strlen(pass), &back) != 0);
        CHECK(back == NULL);
        file[i] ^= 0x01;
    }
    s_test_hostile_cost(file);
}

static void
s_test_names(const identity_t *a, const identity_t *b)
{
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(a), id);
    CHECK(strlen(id) == PARLEY_NODE_ID_STRLEN);
    uint8_t pk[32];
    CHECK(identity_parse_node_id(id, pk) == 0);
    CHECK(memcmp(pk, identity_ed_pk(a), 32) == 0);
    char short_id[PARLEY_SHORT_ID_STRLEN + 1];
    identity_short_id(identity_ed_pk(a), short_id);
    CHECK(strlen(short_id) == 8 && strncmp(short_id, id, 8) == 0);

    id[10] = '1';
    CHECK(identity_parse_node_id(id, pk) == PARLEY_ERR_MALFORMED);
    CHECK(identity_parse_node_id(short_id, pk) == PARLEY_ERR_MALFORMED);
    uint8_t zero[32] = { 0 };
    identity_node_id(zero, id); /* canonical base32, but not a usable key */
    CHECK(identity_parse_node_id(id, pk) == PARLEY_ERR_MALFORMED);

    char fp[50];
    identity_fingerprint(identity_ed_pk(a), fp);
    CHECK(strlen(fp) == 49);
    for (size_t i = 0; i < 49; i++) {
        bool space = i % 5 == 4;
        CHECK(space ? fp[i] == ' ' : (fp[i] != ' ' && fp[i] != '\0'));
    }

    char ab[PARLEY_SAFETY_DIGITS + 1];
    char ba[PARLEY_SAFETY_DIGITS + 1];
    CHECK(identity_safety_number(identity_ed_pk(a), identity_ed_pk(b), ab) == 0);
    CHECK(identity_safety_number(identity_ed_pk(b), identity_ed_pk(a), ba) == 0);
    CHECK(strlen(ab) == 60 && strcmp(ab, ba) == 0);
    for (size_t i = 0; i < 60; i++) {
        CHECK(ab[i] >= '0' && ab[i] <= '9');
    }
    CHECK(identity_safety_number(identity_ed_pk(a), identity_ed_pk(a), ba) == 0);
    CHECK(strcmp(ab, ba) != 0);
}

void
identity_test(bool verbose)
{
    if (verbose) {
        printf(" * identity: keys, plain and sealed key files, hostile cost, names\n");
    }
    s_test_keys();
    identity_t *a = identity_new();
    identity_t *b = identity_new();
    CHECK(a && b);
    s_test_plain_file(a);
    s_test_sealed_file(a);
    s_test_names(a, b);
    identity_destroy(&a);
    identity_destroy(&b);
}
