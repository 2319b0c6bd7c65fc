/*  tests/fuzz/fuzz_keyfile.c — the identity.key decoders on arbitrary bytes:
 *  identity_file_public, identity_file_is_sealed, identity_file_decode.
 *
 *  A key file is read at every start and by `parley id`; a damaged or hostile
 *  file must be an error, never a crash or a wrong key.
 *
 *  Why some inputs skip identity_file_decode with a passphrase: a sealed file
 *  names its own Argon2id cost. identity.c bounds it (at most MODERATE: about
 *  a second and 256 MiB per call), which is right for a key file but would
 *  make the fuzzer crawl and trip its RSS limit. So the passphrase path runs
 *  only on inputs whose format byte is not "sealed", or whose opslimit and
 *  memlimit fields hold libsodium's minimum (one pass over 8 KiB, microseconds).
 *  The cost bounds themselves are covered by identity_test(); every other
 *  byte of a sealed file is still fuzzed here. Decoding without a passphrase
 *  never runs Argon2id and is done for every input.
 */
#include "fuzz_common.h"

#include "../../proto/identity.h"

/*  Offsets from the layout in proto/identity.h. */
#define S_OFF_FORMAT 8u
#define S_OFF_OPS 57u
#define S_OFF_MEM 65u
#define S_FORMAT_SEALED 1u

/*  True unless the input is a sealed file that asks for more than the
 *  minimum Argon2id cost (see the top of the file). A sealed input too short
 *  to hold the cost fields must be rejected before any hashing, so it runs. */
static bool
s_cheap_to_open(const uint8_t *data, size_t size)
{
    if (size <= S_OFF_FORMAT || data[S_OFF_FORMAT] != S_FORMAT_SEALED) {
        return true;
    }
    if (size < S_OFF_MEM + 8) {
        return true;
    }
    return fuzz_be(data + S_OFF_OPS, 8) == crypto_pwhash_OPSLIMIT_MIN
           && fuzz_be(data + S_OFF_MEM, 8) == crypto_pwhash_MEMLIMIT_MIN;
}

/*  A decoded identity matches the public key in the file, and re-encoding it
 *  in the plain format gives a file that decodes to the same key. */
static void
s_check_identity(const uint8_t *data, size_t size, identity_t *id)
{
    uint8_t pk[32];
    FUZZ_CHECK(identity_file_public(data, size, pk) == PARLEY_OK);
    FUZZ_CHECK(memcmp(pk, identity_ed_pk(id), 32) == 0);

    uint8_t file[IDENTITY_FILE_MAX];
    size_t len = 0;
    FUZZ_CHECK(identity_file_encode(id, NULL, 0, 0, 0, file, sizeof file, &len) == PARLEY_OK);
    FUZZ_CHECK(len == IDENTITY_FILE_PLAIN_LEN);
    identity_t *back = NULL;
    FUZZ_CHECK(identity_file_decode(file, len, NULL, 0, &back) == PARLEY_OK);
    FUZZ_CHECK(sodium_memcmp(identity_ed_sk(back), identity_ed_sk(id), 64) == 0);
    identity_destroy(&back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();

    uint8_t pk[32];
    int pub = identity_file_public(data, size, pk);
    bool sealed = identity_file_is_sealed(data, size);
    //  A file that is sealed is a well-formed file, so its public key reads.
    FUZZ_CHECK(!sealed || pub == PARLEY_OK);
    FUZZ_CHECK(pub <= 0);
    if (pub == PARLEY_OK) {
        FUZZ_CHECK(size == IDENTITY_FILE_PLAIN_LEN || size == IDENTITY_FILE_SEALED_LEN);
        FUZZ_CHECK(memcmp(pk, data + S_OFF_FORMAT + 1, 32) == 0);
    }

    identity_t *id = NULL;
    int rc = identity_file_decode(data, size, NULL, 0, &id);
    if (rc == PARLEY_OK) {
        FUZZ_CHECK(!sealed && pub == PARLEY_OK);
        s_check_identity(data, size, id);
        identity_destroy(&id);
    } else {
        FUZZ_CHECK(rc < 0 && id == NULL);
    }

    if (s_cheap_to_open(data, size)) {
        rc = identity_file_decode(data, size, "x", 1, &id);
        if (rc == PARLEY_OK) {
            FUZZ_CHECK(pub == PARLEY_OK);
            s_check_identity(data, size, id);
            identity_destroy(&id);
        } else {
            FUZZ_CHECK(rc < 0 && id == NULL);
        }
    }
    return 0;
}
