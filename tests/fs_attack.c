/*  tests/fs_attack.c — plays the thief of identity.key, to check forward
 *  secrecy for real.
 *
 *    fs_attack HOME_A HOME_B
 *
 *  The attacker holds both nodes' identity.key files and both databases (so
 *  every stored envelope, as a relay would hold them, plus whatever key
 *  material the nodes still keep). For every DM envelope in either log it
 *  tries every way in that material allows:
 *
 *    - the recipient's receiving session chain key (if the day is not past),
 *    - the recipient's prekey secrets that are still stored, with X3DH from
 *      the stolen identity keys,
 *    - the author's sending session chain key (if still on that day),
 *
 *  and prints "opened N of M". Before the grace window the nodes still hold
 *  keys and N > 0 (the control, so the test can fail); after it N must be 0.
 *  The nodes must be stopped (this opens their databases).
 */
#include "../node/home.h"
#include "../proto/content.h"
#include "../proto/dm.h"
#include "../proto/envelope.h"
#include "../store/store.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    identity_t *id; /* stolen identity */
    store_t *store; /* its database */
} side_t;

typedef struct {
    side_t side[2];
    size_t total;
    size_t opened;
} attack_t;

static bool
s_try_key(const envelope_t *env, const uint8_t key[32], uint32_t key_day, uint32_t day)
{
    if (day < key_day) {
        return false; // hashing cannot go backwards
    }
    uint8_t k[32];
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t len = 0;
    memcpy(k, key, 32);
    bool ok = dm_chain_advance(k, key_day, day) == PARLEY_OK
              && dm_envelope_open(env, k, content, sizeof content, &len) == PARLEY_OK;
    sodium_memzero(k, sizeof k);
    return ok;
}

static bool
s_try_open(attack_t *a, const envelope_t *env)
{
    dm_header_t h;
    if (dm_body_parse(env, &h) != PARLEY_OK) {
        return false;
    }
    for (int i = 0; i < 2; i++) {
        side_t *s = &a->side[i];
        bool author = memcmp(identity_ed_pk(s->id), env->author, 32) == 0;
        if (author) {
            store_send_session_t ss;
            uint8_t peer[32];
            memcpy(peer, identity_ed_pk(a->side[1 - i].id), 32);
            if (store_send_session_get(s->store, peer, &ss) == PARLEY_OK
                && memcmp(ss.ek_pub, h.ek_pub, 32) == 0 && s_try_key(env, ss.key, ss.day, h.day)) {
                return true;
            }
            continue;
        }
        store_recv_session_t rs;
        if (store_recv_session_get(s->store, env->author, h.ek_pub, &rs) == PARLEY_OK
            && s_try_key(env, rs.key, rs.base_day, h.day)) {
            return true;
        }
        uint8_t spk_secret[32], root[32];
        if (store_own_prekey_secret(s->store, h.spk_id, spk_secret, NULL) == PARLEY_OK
            && dm_x3dh_respond(s->id, env->author, spk_secret, h.spk_id, h.ek_pub, root)
                   == PARLEY_OK
            && s_try_key(env, root, h.day0, h.day)) {
            return true;
        }
    }
    return false;
}

static int
s_each(const uint8_t *bytes, size_t len, void *arg)
{
    attack_t *a = arg;
    envelope_t env;
    if (envelope_decode(bytes, len, &env) != PARLEY_OK || env.kind != ENVELOPE_KIND_DM) {
        return 0;
    }
    a->total++;
    if (s_try_open(a, &env)) {
        a->opened++;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 3 || sodium_init() < 0) {
        fprintf(stderr, "usage: fs_attack HOME_A HOME_B\n");
        return 2;
    }
    attack_t a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < 2; i++) {
        char path[HOME_PATH_MAX];
        if (home_identity_load(argv[1 + i], NULL, 0, &a.side[i].id) != PARLEY_OK
            || home_path(argv[1 + i], "parley.db", path, sizeof path) != PARLEY_OK
            || store_open(path, &a.side[i].store) != PARLEY_OK) {
            fprintf(stderr, "fs_attack: cannot read %s\n", argv[1 + i]);
            return 1;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (store_envelope_each(a.side[i].store, s_each, &a) != PARLEY_OK) {
            fprintf(stderr, "fs_attack: cannot read the log of %s\n", argv[1 + i]);
            return 1;
        }
    }
    printf("opened %zu of %zu\n", a.opened, a.total);
    for (int i = 0; i < 2; i++) {
        store_destroy(&a.side[i].store);
        identity_destroy(&a.side[i].id);
    }
    return 0;
}
