/*  tests/fuzz/fuzz_roster.c — roster_event_decode and the roster fold on
 *  arbitrary bytes.
 *
 *  Network events come from any member, and the fold runs over whatever a
 *  node holds: a body must decode or fail cleanly, and no set of events may
 *  crash the fold, grow it without bound or make its result depend on the
 *  order the events arrived in.
 *
 *  1. The whole input is one body: if it decodes, it encodes back to
 *     exactly the same bytes, and no proper prefix decodes.
 *  2. The input is also read as up to S_RECORDS_MAX records
 *       u8 author (low 2 bits: one of four fixed keys) | u8 ts | u16 len | body
 *     (a short record ends the list). Record k gets the id 32 × (k + 1), so
 *     bodies can name earlier (or later, or their own) records as parents.
 *     The network id is key 0's with an all-zero salt, so a CREATE by key 0
 *     with that salt founds it; the seeds (gen_corpus.c) hold such a log,
 *     with a JOIN whose proof is by the invite key of seed 0xb0.
 *     The records are folded in input order and in reverse order: both
 *     states must be equal, consistent and within the limits. Then the same
 *     again as a channel's control log (SPEC §21.4), whose id is key 0's
 *     channel id with an all-zero salt.
 */
#include "fuzz_common.h"

#include "../../proto/chan.h"
#include "../../proto/roster.h"

#define S_RECORDS_MAX 48u

static uint8_t s_keys[4][32];
static uint8_t s_net[32];
static uint8_t s_chan[32];

static void
s_keys_init(void)
{
    static int done;
    if (done) {
        return;
    }
    for (int k = 0; k < 4; k++) {
        uint8_t seed[32];
        uint8_t sk[64];
        memset(seed, 0xa0 + k, sizeof seed);
        FUZZ_CHECK(crypto_sign_seed_keypair(s_keys[k], sk, seed) == 0);
    }
    uint8_t salt[ROSTER_SALT_LEN] = { 0 };
    roster_network_id(s_keys[0], salt, s_net);
    chan_id(s_keys[0], salt, s_chan);
    done = 1;
}

static void
s_codec(const uint8_t *data, size_t size)
{
    roster_event_t ev;
    int rc = roster_event_decode(data, size, &ev);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc < 0);
        return;
    }
    uint8_t out[ROSTER_BODY_MAX];
    size_t len = 0;
    FUZZ_CHECK(roster_event_encode(&ev, out, sizeof out, &len) == PARLEY_OK);
    FUZZ_CHECK(len == size && memcmp(out, data, size) == 0);
    FUZZ_CHECK(roster_event_decode(data, size - 1, &ev) != PARLEY_OK);
}

//  A digest of the state, through the public queries only.
static void
s_state(const roster_t *r, uint8_t out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    size_t n_members = roster_member_count(r);
    FUZZ_CHECK(n_members <= ROSTER_MEMBERS_MAX);
    FUZZ_CHECK(roster_log_count(r) + roster_pending_count(r) == roster_event_count(r));
    for (size_t i = 0; i < n_members; i++) {
        roster_member_t m;
        FUZZ_CHECK(roster_member_at(r, i, &m) == PARLEY_OK);
        FUZZ_CHECK(m.role == ROSTER_ROLE_MEMBER || m.role == ROSTER_ROLE_ADMIN
                   || (m.role == ROSTER_ROLE_READER && roster_is_channel(r)));
        FUZZ_CHECK(roster_role(r, m.pk) == m.role && !roster_is_removed(r, m.pk));
        crypto_generichash_update(&st, m.pk, 32);
        crypto_generichash_update(&st, &m.role, 1);
    }
    uint32_t last = 0;
    for (size_t i = 0; i < roster_admin_count(r); i++) {
        uint32_t rank = roster_rank(r, roster_admin_at(r, i));
        FUZZ_CHECK(rank != ROSTER_RANK_NONE && (i == 0 || rank > last));
        FUZZ_CHECK(roster_role(r, roster_admin_at(r, i)) == ROSTER_ROLE_ADMIN);
        last = rank;
    }
    for (size_t i = 0; i < roster_log_count(r); i++) {
        roster_log_entry_t e;
        FUZZ_CHECK(roster_log_at(r, i, &e) == PARLEY_OK);
        FUZZ_CHECK(e.applied == (e.reason == NULL));
        crypto_generichash_update(&st, e.id, 32);
        crypto_generichash_update(&st, (const uint8_t *)&e.applied, sizeof e.applied);
    }
    uint32_t epoch = roster_epoch(r);
    uint8_t flags = roster_channel_flags(r);
    FUZZ_CHECK(roster_is_channel(r) || flags == 0);
    crypto_generichash_update(&st, (const uint8_t *)&epoch, sizeof epoch);
    crypto_generichash_update(&st, &flags, 1);
    uint8_t heads[ROSTER_PARENTS_MAX][32];
    size_t nh = roster_heads(r, heads);
    FUZZ_CHECK(nh <= ROSTER_PARENTS_MAX);
    crypto_generichash_update(&st, &heads[0][0], nh * 32);
    crypto_generichash_final(&st, out, 32);
}

//  Folds the n records in input order and in reverse, as a network's
//  roster or a channel's control log: the same state both ways.
static void
s_fold_both(const uint8_t *const *rec, size_t n, bool channel)
{
    roster_t *fwd = channel ? roster_new_channel(s_chan) : roster_new(s_net);
    roster_t *rev = channel ? roster_new_channel(s_chan) : roster_new(s_net);
    FUZZ_CHECK(fwd && rev);
    size_t added = 0;
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            size_t k = pass == 0 ? i : n - 1 - i;
            const uint8_t *p = rec[k];
            size_t len = ((size_t)p[2] << 8) | p[3];
            uint8_t id[32];
            memset(id, (int)(k + 1), sizeof id);
            int rc = roster_add_event(pass == 0 ? fwd : rev, id, s_keys[p[0] & 3],
                                      1790000000000ull + p[1], p + 4, len);
            FUZZ_CHECK(rc <= 0);
            added += pass == 0 && rc == PARLEY_OK;
        }
    }
    FUZZ_CHECK(roster_fold(fwd) == PARLEY_OK && roster_fold(rev) == PARLEY_OK);
    FUZZ_CHECK(roster_event_count(fwd) == added && roster_event_count(rev) == added);
    uint8_t a[32];
    uint8_t b[32];
    s_state(fwd, a);
    s_state(rev, b);
    FUZZ_CHECK(memcmp(a, b, 32) == 0);
    //  A second fold of the same events is the same state.
    FUZZ_CHECK(roster_fold(fwd) == PARLEY_OK);
    s_state(fwd, b);
    FUZZ_CHECK(memcmp(a, b, 32) == 0);
    roster_destroy(&fwd);
    roster_destroy(&rev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    s_keys_init();
    s_codec(data, size);

    const uint8_t *rec[S_RECORDS_MAX];
    size_t n = 0;
    size_t off = 0;
    while (n < S_RECORDS_MAX && size - off >= 4) {
        size_t len = ((size_t)data[off + 2] << 8) | data[off + 3];
        if (len > size - off - 4) {
            break;
        }
        rec[n++] = data + off;
        off += 4 + len;
    }
    s_fold_both(rec, n, false);
    s_fold_both(rec, n, true);
    return 0;
}
