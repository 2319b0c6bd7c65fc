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
 *  and prints "opened N of M". It does the same for channels: every KEYS
 *  entry sealed to either node that way gives the attack that epoch's key,
 *  and every channel message is tried with those keys, the epoch keys the
 *  databases still hold and the senders' chain states they keep; it prints
 *  "channel N of M old O keys K of L" after, O being the messages opened
 *  of an epoch before their channel's newest (whose key is in use). Before the grace window the
 * nodes still hold keys and N > 0 (the control, so the test can fail); after it N must be 0. The
 * nodes must be stopped (this opens their databases).
 */
#include "../node/home.h"
#include "../proto/chan.h"
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

#define S_KEYS_MAX 4096u   /* channel keys the attack recovers from KEYS bodies */
#define S_CHANNELS_MAX 64u /* channels whose newest epoch it tracks */

typedef struct {
    uint8_t channel[32];
    uint32_t epoch;
    uint8_t key_id[CHAN_KEY_ID_LEN];
    uint8_t key[32];
} stolen_key_t;

typedef struct {
    side_t side[2];
    size_t total, opened;           /* DMs */
    size_t chan_total, chan_opened; /* channel messages */
    size_t keys_total, keys_opened; /* KEYS entries sealed to either side */
    size_t chan_old;                /* messages opened of an epoch before the newest */
    struct {
        uint8_t channel[32];
        uint32_t epoch; /* the newest epoch a KEYS body names */
    } newest[S_CHANNELS_MAX];
    size_t n_newest;
    stolen_key_t *stolen; /* epoch keys opened from KEYS bodies */
    size_t n_stolen;
} attack_t;

/*  What to do with a candidate day key: true when it opened the target. */
typedef bool(s_try_fn)(const uint8_t day_key[32], void *arg);

static bool
s_try_key(const uint8_t key[32], uint32_t key_day, uint32_t day, s_try_fn *try, void *arg)
{
    if (day < key_day) {
        return false; // hashing cannot go backwards
    }
    uint8_t k[32];
    memcpy(k, key, 32);
    bool ok = dm_chain_advance(k, key_day, day) == PARLEY_OK && try(k, arg);
    sodium_memzero(k, sizeof k);
    return ok;
}

//  Every day key the stolen material gives for a DM header h of author's:
//  the recipient's receiving session, its stored prekey secrets with X3DH,
//  the author's sending session (if still on that day).
static bool
s_each_day_key(attack_t *a, const uint8_t author[32], const dm_header_t *h, s_try_fn *try,
               void *arg)
{
    for (int i = 0; i < 2; i++) {
        side_t *s = &a->side[i];
        if (memcmp(identity_ed_pk(s->id), author, 32) == 0) {
            store_send_session_t ss;
            uint8_t peer[32];
            memcpy(peer, identity_ed_pk(a->side[1 - i].id), 32);
            if (store_send_session_get(s->store, peer, &ss) == PARLEY_OK
                && memcmp(ss.ek_pub, h->ek_pub, 32) == 0
                && s_try_key(ss.key, ss.day, h->day, try, arg)) {
                return true;
            }
            continue;
        }
        store_recv_session_t rs;
        if (store_recv_session_get(s->store, author, h->ek_pub, &rs) == PARLEY_OK
            && s_try_key(rs.key, rs.base_day, h->day, try, arg)) {
            return true;
        }
        uint8_t spk_secret[32], root[32];
        if (store_own_prekey_secret(s->store, h->spk_id, spk_secret, NULL) == PARLEY_OK
            && dm_x3dh_respond(s->id, author, spk_secret, h->spk_id, h->ek_pub, root) == PARLEY_OK
            && s_try_key(root, h->day0, h->day, try, arg)) {
            return true;
        }
    }
    return false;
}

static bool
s_open_dm(const uint8_t day_key[32], void *arg)
{
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t len = 0;
    return dm_envelope_open(arg, day_key, content, sizeof content, &len) == PARLEY_OK;
}

typedef struct {
    const uint8_t *channel;
    const chan_keys_t *k;
    const chan_keys_entry_t *e;
    uint8_t key[32];
} s_entry_t;

static bool
s_open_entry(const uint8_t day_key[32], void *arg)
{
    s_entry_t *x = arg;
    return chan_keys_entry_open(x->channel, x->k, x->e, day_key, x->key) == PARLEY_OK;
}

//  The channel whose control scope (KEYS) or msg scope (messages) scope
//  is, among the channels either side has a row for.
static bool
s_channel_of(attack_t *a, const uint8_t scope[32], bool msgs, uint8_t channel[32])
{
    bool found = false;
    for (int i = 0; i < 2 && !found; i++) {
        store_chan_t *rows = NULL;
        size_t n = 0;
        if (store_chan_list(a->side[i].store, &rows, &n) != PARLEY_OK) {
            continue;
        }
        for (size_t j = 0; j < n && !found; j++) {
            uint8_t s[32];
            if (msgs) {
                chan_msg_scope(rows[j].id, s);
            } else {
                memcpy(s, rows[j].id, 32);
            }
            found = memcmp(s, scope, 32) == 0;
            if (found) {
                memcpy(channel, rows[j].id, 32);
            }
        }
        free(rows);
    }
    return found;
}

//  A KEYS body: every entry sealed to either side that the stolen material
//  opens gives the attack that epoch key.
static void
s_keys_body(attack_t *a, const envelope_t *env)
{
    chan_keys_t k;
    uint8_t channel[32];
    if (chan_keys_decode(env->body, env->body_len, &k) != PARLEY_OK
        || !s_channel_of(a, env->scope, false, channel)) {
        return;
    }
    size_t at = 0;
    while (at < a->n_newest && memcmp(a->newest[at].channel, channel, 32) != 0) {
        at++;
    }
    if (at == a->n_newest && at < S_CHANNELS_MAX) {
        memcpy(a->newest[a->n_newest++].channel, channel, 32);
        a->newest[at].epoch = k.epoch;
    }
    if (at < a->n_newest && k.epoch > a->newest[at].epoch) {
        a->newest[at].epoch = k.epoch;
    }
    for (size_t i = 0; i < k.n; i++) {
        chan_keys_entry_t e;
        chan_keys_entry_at(&k, i, &e);
        if (memcmp(e.recipient, identity_ed_pk(a->side[0].id), 32) != 0
            && memcmp(e.recipient, identity_ed_pk(a->side[1].id), 32) != 0) {
            continue;
        }
        a->keys_total++;
        dm_header_t h;
        memcpy(h.ek_pub, e.ek_pub, 32);
        h.spk_id = e.spk_id;
        h.day0 = e.day0;
        h.day = e.day;
        s_entry_t x = { channel, &k, &e, { 0 } };
        if (s_each_day_key(a, env->author, &h, s_open_entry, &x) && a->n_stolen < S_KEYS_MAX) {
            stolen_key_t *sk = &a->stolen[a->n_stolen++];
            memcpy(sk->channel, channel, 32);
            sk->epoch = k.epoch;
            memcpy(sk->key_id, k.key_id, sizeof sk->key_id);
            memcpy(sk->key, x.key, 32);
            a->keys_opened++;
        }
        sodium_memzero(x.key, sizeof x.key);
    }
}

static bool
s_open_with_mk(const envelope_t *env, const uint8_t mk[32])
{
    uint8_t hdr[PARLEY_ENVELOPE_HEADER_LEN];
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t len = 0;
    envelope_header(env, env->body_len, hdr);
    return chan_body_open(hdr, env->body, env->body_len, mk, content, sizeof content, &len)
           == PARLEY_OK;
}

//  A message from epoch key key: the author's chain from its start.
static bool
s_open_from_key(const envelope_t *env, const uint8_t channel[32], const chan_msg_header_t *h,
                const uint8_t key[32])
{
    uint8_t ck[32], mk[32];
    chan_chain_start(key, channel, h->epoch, env->author, ck);
    bool ok = chan_chain_seek(ck, 0, h->counter) == PARLEY_OK;
    if (ok) {
        chan_chain_step(ck, mk);
        ok = s_open_with_mk(env, mk);
    }
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(mk, sizeof mk);
    return ok;
}

//  A channel message: from any epoch key the attack holds (stolen from
//  KEYS bodies, or still in either database), or the author's chain state
//  that either database keeps.
static bool
s_chan_open(attack_t *a, const envelope_t *env)
{
    chan_msg_header_t h;
    uint8_t channel[32];
    if (chan_body_parse(env->body, env->body_len, &h) != PARLEY_OK
        || !s_channel_of(a, env->scope, true, channel)) {
        return false;
    }
    for (size_t i = 0; i < a->n_stolen; i++) {
        const stolen_key_t *sk = &a->stolen[i];
        if (memcmp(sk->channel, channel, 32) == 0 && sk->epoch == h.epoch
            && memcmp(sk->key_id, h.key_id, sizeof h.key_id) == 0
            && s_open_from_key(env, channel, &h, sk->key)) {
            return true;
        }
    }
    bool ok = false;
    for (int i = 0; i < 2 && !ok; i++) {
        store_t *st = a->side[i].store;
        store_chan_key_t *keys = NULL;
        size_t n = 0;
        if (store_chan_key_list(st, channel, &keys, &n) == PARLEY_OK) {
            for (size_t j = 0; j < n && !ok; j++) {
                ok = keys[j].epoch == h.epoch
                     && memcmp(keys[j].key_id, h.key_id, sizeof h.key_id) == 0
                     && s_open_from_key(env, channel, &h, keys[j].key);
            }
            store_chan_keys_free(keys, n);
        }
        static uint8_t saved[CHAN_RX_SAVED_MAX];
        size_t len = 0;
        int err = 0;
        chan_rx_t *rx = NULL;
        if (!ok
            && store_chan_chain_get(st, channel, h.epoch, h.key_id, env->author, saved,
                                    sizeof saved, &len)
                   == PARLEY_OK
            && (rx = chan_rx_load(saved, len, &err)) != NULL) {
            uint8_t mk[32];
            ok = chan_rx_key(rx, h.counter, mk) == PARLEY_OK && s_open_with_mk(env, mk);
            sodium_memzero(mk, sizeof mk);
        }
        chan_rx_destroy(&rx);
        sodium_memzero(saved, len);
    }
    return ok;
}

//  Whether a channel message is of an epoch before the newest its channel
//  has (whose key is still in use, so it opens by design).
static bool
s_old_epoch(const attack_t *a, const envelope_t *env)
{
    chan_msg_header_t h;
    uint8_t channel[32];
    if (chan_body_parse(env->body, env->body_len, &h) != PARLEY_OK
        || !s_channel_of((attack_t *)a, env->scope, true, channel)) {
        return false;
    }
    for (size_t i = 0; i < a->n_newest; i++) {
        if (memcmp(a->newest[i].channel, channel, 32) == 0) {
            return h.epoch < a->newest[i].epoch;
        }
    }
    return false;
}

//  Pass 0 opens KEYS bodies (the keys they give serve pass 1), pass 1 DMs
//  and channel messages.
typedef struct {
    attack_t *a;
    int pass;
} s_walk_t;

static int
s_each(const uint8_t *bytes, size_t len, void *arg)
{
    s_walk_t *w = arg;
    attack_t *a = w->a;
    envelope_t env;
    if (envelope_decode(bytes, len, &env) != PARLEY_OK) {
        return 0;
    }
    if (w->pass == 0) {
        if (env.kind == ENVELOPE_KIND_CHAN_KEYS) {
            s_keys_body(a, &env);
        }
    } else if (env.kind == ENVELOPE_KIND_DM) {
        dm_header_t h;
        a->total++;
        a->opened += dm_body_parse(&env, &h) == PARLEY_OK
                     && s_each_day_key(a, env.author, &h, s_open_dm, &env);
    } else if (env.kind == ENVELOPE_KIND_CHAN_MSG) {
        a->chan_total++;
        if (s_chan_open(a, &env)) {
            a->chan_opened++;
            a->chan_old += s_old_epoch(a, &env);
        }
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
    a.stolen = calloc(S_KEYS_MAX, sizeof *a.stolen);
    if (!a.stolen) {
        return 1;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 2; i++) {
            s_walk_t w = { &a, pass };
            if (store_envelope_each(a.side[i].store, s_each, &w) != PARLEY_OK) {
                fprintf(stderr, "fs_attack: cannot read the log of %s\n", argv[1 + i]);
                return 1;
            }
        }
    }
    printf("opened %zu of %zu channel %zu of %zu old %zu keys %zu of %zu\n", a.opened, a.total,
           a.chan_opened, a.chan_total, a.chan_old, a.keys_opened, a.keys_total);
    sodium_memzero(a.stolen, S_KEYS_MAX * sizeof *a.stolen);
    free(a.stolen);
    for (int i = 0; i < 2; i++) {
        store_destroy(&a.side[i].store);
        identity_destroy(&a.side[i].id);
    }
    return 0;
}
