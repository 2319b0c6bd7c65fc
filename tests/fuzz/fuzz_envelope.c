/*  tests/fuzz/fuzz_envelope.c — envelope_decode, envelope_check and
 *  dm_body_parse on arbitrary bytes.
 *
 *  What a relay or a peer sends us first goes through envelope_check (limits,
 *  decode, signature, time); node/ then reads the DM header of the body. Any
 *  input must come back as an error code, never as a crash, and whatever
 *  decodes must describe exactly the bytes it came from.
 */
#include "fuzz_common.h"

#include "../../proto/dm.h"
#include "../../proto/envelope.h"

/*  A decoded envelope views its input and accounts for every byte of it. */
static void
s_check_decoded(const uint8_t *data, size_t size, const envelope_t *env)
{
    FUZZ_CHECK(env->version == PARLEY_ENVELOPE_VERSION);
    FUZZ_CHECK(env->bytes == data && env->bytes_len == size);
    FUZZ_CHECK(env->body_len <= PARLEY_BODY_MAX);
    FUZZ_CHECK(PARLEY_ENVELOPE_HEADER_LEN + env->body_len + PARLEY_SIG_LEN == size);
    FUZZ_CHECK(env->body == data + PARLEY_ENVELOPE_HEADER_LEN);
    FUZZ_CHECK(env->signature == data + PARLEY_ENVELOPE_HEADER_LEN + env->body_len);

    //  The header rebuilt from the decoded fields is the one we were given:
    //  the encoder and decoder agree on the layout, byte for byte.
    uint8_t header[PARLEY_ENVELOPE_HEADER_LEN];
    envelope_header(env, env->body_len, header);
    FUZZ_CHECK(memcmp(header, data, sizeof header) == 0);
}

/*  The clear DM header is read only from a body long enough to hold it. */
static void
s_check_dm_body(const envelope_t *env)
{
    dm_header_t h;
    int rc = dm_body_parse(env, &h);
    if (rc == PARLEY_OK) {
        FUZZ_CHECK(env->body_len >= PARLEY_DM_HEADER_LEN + PARLEY_AEAD_TAG_LEN);
        FUZZ_CHECK(memcmp(h.ek_pub, env->body, 32) == 0);
        FUZZ_CHECK(h.day >= h.day0);
        //  Decryption with a key nobody has: exercises the bucket and length
        //  arithmetic of the open path; the tag check fails at the end.
        static uint8_t content[PARLEY_CONTENT_MAX];
        uint8_t key[32] = { 0 };
        size_t content_len = 0;
        (void)dm_envelope_open(env, key, content, sizeof content, &content_len);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();

    envelope_t env;
    int decoded = envelope_decode(data, size, &env);
    if (decoded == PARLEY_OK) {
        s_check_decoded(data, size, &env);
        s_check_dm_body(&env);
        //  Signature and time checks on their own must not crash either.
        (void)envelope_verify(&env);
        (void)envelope_check_time(&env, FUZZ_NOW_MS);
    } else {
        FUZZ_CHECK(decoded < 0);
    }

    envelope_t checked;
    uint8_t id[PARLEY_ID_LEN];
    int rc = envelope_check(data, size, FUZZ_NOW_MS, &checked, id);
    if (rc == PARLEY_OK) {
        //  The full ingest check accepts only what decodes and verifies.
        FUZZ_CHECK(decoded == PARLEY_OK);
        FUZZ_CHECK(envelope_verify(&checked) == PARLEY_OK);
        uint8_t again[PARLEY_ID_LEN];
        envelope_id(&checked, again);
        FUZZ_CHECK(memcmp(id, again, sizeof id) == 0);
        s_check_dm_body(&checked);
    } else {
        FUZZ_CHECK(rc < 0);
    }
    return 0;
}
