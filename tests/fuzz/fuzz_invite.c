/*  tests/fuzz/fuzz_invite.c — invite_code_decode on arbitrary text.
 *
 *  An invite code is pasted by a person from a chat app or a mail: any
 *  bytes may reach `parley join`. The decoder strips whitespace, checks the
 *  prefix, base32, checksum and every field; anything else must be an error
 *  with a reason. A code that decodes is encoded again, and must come back
 *  as the canonical text of the input (whitespace removed, lower case),
 *  and decode to the same fields: one code, one text.
 *
 *  Random text almost never passes the checksum, so the same bytes are
 *  also read as a record body: the target appends the checksum itself
 *  (computed here from SPEC §18.3, not by the decoder) and wraps it as a
 *  code, which takes the fuzzer into the field rules.
 */
#include "fuzz_common.h"

#include "../../proto/b32.h"
#include "../../proto/endpoint.h"
#include "../../proto/invite.h"

static void s_text(const uint8_t *data, size_t size);

/*  data as a record without its checksum. */
static void
s_record(const uint8_t *data, size_t size)
{
    static uint8_t rec[INVITE_RECORD_MAX];
    static char text[INVITE_CODE_MAX];
    if (size > INVITE_RECORD_MAX - INVITE_CHECK_LEN) {
        return;
    }
    memcpy(rec, data, size);
    uint8_t h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)"parley/invite", 14); // with its NUL
    crypto_generichash_update(&st, data, size);
    crypto_generichash_final(&st, h, sizeof h);
    memcpy(rec + size, h, INVITE_CHECK_LEN);
    memcpy(text, "parley-invite:", 14);
    FUZZ_CHECK(b32_encode(rec, size + INVITE_CHECK_LEN, text + 14, sizeof text - 14) == 0);
    invite_code_t c;
    invite_err_t why = INVITE_OK;
    //  A checksum made good can never read as damage.
    if (invite_code_decode(text, strlen(text), &c, &why) != PARLEY_OK) {
        FUZZ_CHECK(why != INVITE_OK && why != INVITE_ERR_DAMAGED);
        return;
    }
    s_text((const uint8_t *)text, strlen(text));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    s_text(data, size);
    s_record(data, size);
    return 0;
}

/*  data as pasted text. */
static void
s_text(const uint8_t *data, size_t size)
{
    invite_code_t c;
    invite_err_t why = INVITE_OK;
    int rc = invite_code_decode((const char *)data, size, &c, &why);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc < 0 && why != INVITE_OK && invite_strerror(why) != NULL);
        return;
    }
    FUZZ_CHECK(why == INVITE_OK);
    FUZZ_CHECK(c.n >= 1 && c.n <= INVITE_ENDPOINTS_MAX && c.expires_ms != 0);
    FUZZ_CHECK(!sodium_is_zero(c.secret, sizeof c.secret));
    for (size_t i = 0; i < c.n; i++) {
        FUZZ_CHECK(endpoint_valid(c.endpoints[i].endpoint, strlen(c.endpoints[i].endpoint)));
    }
    //  The canonical text: what the input is without whitespace, lower case.
    static char canon[INVITE_CODE_MAX];
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
        char ch = (char)data[i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f') {
            continue;
        }
        FUZZ_CHECK(n < sizeof canon - 1);
        canon[n++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    static char text[INVITE_CODE_MAX];
    size_t len = 0;
    FUZZ_CHECK(invite_code_encode(&c, text, sizeof text, &len) == PARLEY_OK);
    FUZZ_CHECK(len == n && memcmp(text, canon, n) == 0);
    invite_code_t again;
    FUZZ_CHECK(invite_code_decode(text, len, &again, &why) == PARLEY_OK);
    FUZZ_CHECK(memcmp(again.network_id, c.network_id, 32) == 0);
    FUZZ_CHECK(memcmp(again.secret, c.secret, 32) == 0 && again.expires_ms == c.expires_ms);
    FUZZ_CHECK(memcmp(again.inviter_pk, c.inviter_pk, 32) == 0 && again.n == c.n);
    for (size_t i = 0; i < c.n; i++) {
        FUZZ_CHECK(strcmp(again.endpoints[i].endpoint, c.endpoints[i].endpoint) == 0);
        FUZZ_CHECK(memcmp(again.endpoints[i].pk, c.endpoints[i].pk, 32) == 0);
    }
    //  The keys derive from any secret a code can hold.
    uint8_t ed_pk[32], ed_sk[64], x_pk[32], x_sk[32];
    FUZZ_CHECK(invite_keys(c.secret, ed_pk, ed_sk, x_pk, x_sk) == PARLEY_OK);
}
