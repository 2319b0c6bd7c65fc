/*  tests/proto_selftest.c — runs the proto/ class self-tests and checks the
 *  known-answer vectors in tests/vectors/envelope-v1.txt, roster-v1.txt,
 *  invite-v1.txt and network-v1.txt.
 *
 *    proto_selftest [-v] [name]              run all tests, or one by name
 *    proto_selftest --print-vectors          regenerate envelope-v1.txt on stdout
 *    proto_selftest --print-vectors invite   regenerate invite-v1.txt on stdout
 *    proto_selftest --print-vectors network  regenerate network-v1.txt on stdout
 *    proto_selftest --print-vectors chan     regenerate channel-v1.txt on stdout
 *    proto_selftest --print-roster-vectors   regenerate roster-v1.txt on stdout
 *
 *  Prints "ok <name>" per test; a failed check aborts (the runner reports a
 *  crash as a failure). Exit 2 for an unknown name. Links only libproto.a
 *  and libsodium, which proves proto/ depends on nothing else.
 *
 *  Determinism: the vectors need fixed "random" salts, nonces and ephemeral
 *  keys. Rather than add a test-only entry to the public API, this program
 *  installs its own libsodium randombytes implementation (before
 *  sodium_init) that hands out bytes queued by the vectors test and
 *  otherwise passes through to the system generator. So the vectors pin the
 *  order in which proto/ draws randomness, and every byte it draws.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/addr.h"
#include "../proto/b32.h"
#include "../proto/blind.h"
#include "../proto/bytes.h"
#include "../proto/chan.h"
#include "../proto/content.h"
#include "../proto/dm.h"
#include "../proto/endpoint.h"
#include "../proto/envelope.h"
#include "../proto/errors.h"
#include "../proto/frame.h"
#include "../proto/identity.h"
#include "../proto/invite.h"
#include "../proto/limits.h"
#include "../proto/netkey.h"
#include "../proto/roster.h"
#include "../proto/selftest.h"
#include "../proto/sync_answer.h"
#include "../proto/sync_msg.h"
#include "../proto/sync_set.h"
#include "../proto/textsafe.h"
#include "../proto/txt.h"

/* -------------------------------------------------- deterministic randomness */

static struct {
    uint8_t bytes[128]; /* queued bytes */
    size_t len;         /* how many are queued */
    size_t pos;         /* how many were handed out */
} s_queue;

static const char *
s_rng_name(void)
{
    return "parley-test-queue";
}

static uint32_t
s_rng_random(void)
{
    return randombytes_sysrandom_implementation.random();
}

static void
s_rng_stir(void)
{
    randombytes_sysrandom_implementation.stir();
}

static int
s_rng_close(void)
{
    return randombytes_sysrandom_implementation.close();
}

static void
s_rng_buf(void *const buf, const size_t size)
{
    if (s_queue.pos == s_queue.len) {
        randombytes_sysrandom_implementation.buf(buf, size);
        return;
    }
    /* A draw that does not match the queue means the code changed the
     * order or size of its draws: the vectors must be regenerated. */
    CHECK(size <= s_queue.len - s_queue.pos);
    memcpy(buf, s_queue.bytes + s_queue.pos, size);
    s_queue.pos += size;
}

static randombytes_implementation s_rng = {
    .implementation_name = s_rng_name,
    .random = s_rng_random,
    .stir = s_rng_stir,
    .uniform = NULL,
    .buf = s_rng_buf,
    .close = s_rng_close,
};

/*  Queues n bytes start, start+1, ... for the next draws. */
static void
s_queue_pattern(uint8_t start, size_t n)
{
    CHECK(s_queue.pos == s_queue.len && n <= sizeof s_queue.bytes);
    for (size_t i = 0; i < n; i++) {
        s_queue.bytes[i] = (uint8_t)(start + i);
    }
    s_queue.len = n;
    s_queue.pos = 0;
}

static void
s_queue_drained(void)
{
    CHECK(s_queue.pos == s_queue.len);
    s_queue.len = 0;
    s_queue.pos = 0;
}

/* ------------------------------------------------------------------ vectors */

#define S_VALUE_MAX 1400u
#define S_KV_MAX 64u

typedef struct {
    const char *name;
    char value[S_VALUE_MAX];
} s_kv_t;

typedef struct {
    s_kv_t kv[S_KV_MAX];
    size_t n;
} s_vectors_t;

static void
s_add(s_vectors_t *v, const char *name, const char *value)
{
    CHECK(v->n < S_KV_MAX && strlen(value) < S_VALUE_MAX);
    v->kv[v->n].name = name;
    snprintf(v->kv[v->n].value, S_VALUE_MAX, "%s", value);
    v->n++;
}

static void
s_add_hex(s_vectors_t *v, const char *name, const uint8_t *data, size_t n)
{
    char hex[S_VALUE_MAX];
    CHECK(hex_encode(data, n, hex, sizeof hex) == 0);
    s_add(v, name, hex);
}

static void
s_add_u64(s_vectors_t *v, const char *name, uint64_t x)
{
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)x);
    s_add(v, name, num);
}

static void
s_add_pattern(s_vectors_t *v, const char *name, uint8_t start, size_t n)
{
    uint8_t b[64];
    CHECK(n <= sizeof b);
    for (size_t i = 0; i < n; i++) {
        b[i] = (uint8_t)(start + i);
    }
    s_add_hex(v, name, b, n);
}

static void
s_add_identity(s_vectors_t *v, const identity_t *id, const char *const names[5])
{
    char buf[64];
    s_add_hex(v, names[0], identity_ed_pk(id), 32);
    s_add_hex(v, names[1], identity_x_pk(id), 32);
    identity_node_id(identity_ed_pk(id), buf);
    s_add(v, names[2], buf);
    identity_short_id(identity_ed_pk(id), buf);
    s_add(v, names[3], buf);
    identity_fingerprint(identity_ed_pk(id), buf);
    s_add(v, names[4], buf);
}

/*  Fixed inputs: the vectors file lists them too. */
#define V_PASS "correct horse battery staple"
#define V_SPK_ID 1u
#define V_NOW 1700000000000ull
#define V_DAY0 19675u
#define V_DAY 19676u
#define V_SEQ 1u
#define V_TEXT "hello, parley"
#define V_TAG "parley-test"
#define V_ENDPOINT "tcp://127.0.0.1:5670"
#define V_PING 0x0102030405060708ull

typedef struct {
    identity_t *a;
    identity_t *b;
    prekey_t spk;
    uint8_t spk_secret[32];
    uint8_t bundle[DM_PREKEY_BUNDLE_LEN];
    uint8_t scope[32];
    uint8_t root[32];
    uint8_t day_key[32];
    dm_header_t h;
    uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t env_len;
    uint8_t id[PARLEY_ID_LEN];
} s_world_t;

static void
s_vec_identities(s_vectors_t *v, s_world_t *w)
{
    uint8_t seed[32];
    for (size_t i = 0; i < 32; i++) {
        seed[i] = (uint8_t)i;
    }
    s_add_hex(v, "seed_a", seed, 32);
    w->a = identity_new_from_seed(seed);
    for (size_t i = 0; i < 32; i++) {
        seed[i] = (uint8_t)(0x20 + i);
    }
    s_add_hex(v, "seed_b", seed, 32);
    w->b = identity_new_from_seed(seed);
    CHECK(w->a && w->b);
    static const char *const na[5] = { "ed_pk_a", "x_pk_a", "node_id_a", "short_id_a",
                                       "fingerprint_a" };
    static const char *const nb[5] = { "ed_pk_b", "x_pk_b", "node_id_b", "short_id_b",
                                       "fingerprint_b" };
    s_add_identity(v, w->a, na);
    s_add_identity(v, w->b, nb);
    char sn[PARLEY_SAFETY_DIGITS + 1];
    CHECK(identity_safety_number(identity_ed_pk(w->a), identity_ed_pk(w->b), sn) == 0);
    s_add(v, "safety_number_ab", sn);
}

static void
s_vec_keyfiles(s_vectors_t *v, const s_world_t *w)
{
    uint8_t file[IDENTITY_FILE_MAX];
    size_t len = 0;
    CHECK(identity_file_encode(w->a, NULL, 0, 0, 0, file, sizeof file, &len) == 0);
    s_add_hex(v, "keyfile_plain_a", file, len);

    s_add(v, "keyfile_passphrase", V_PASS);
    s_add_u64(v, "keyfile_opslimit", crypto_pwhash_OPSLIMIT_MIN);
    s_add_u64(v, "keyfile_memlimit", crypto_pwhash_MEMLIMIT_MIN);
    s_add_pattern(v, "keyfile_salt", 0x40, 16);
    s_add_pattern(v, "keyfile_nonce", 0x50, 24);
    s_queue_pattern(0x40, 16 + 24); /* salt, then nonce */
    CHECK(identity_file_encode(w->a, V_PASS, strlen(V_PASS), crypto_pwhash_OPSLIMIT_MIN,
                               crypto_pwhash_MEMLIMIT_MIN, file, sizeof file, &len)
          == 0);
    s_queue_drained();
    s_add_hex(v, "keyfile_sealed_a", file, len);

    identity_t *back = NULL;
    CHECK(identity_file_decode(file, len, V_PASS, strlen(V_PASS), &back) == 0);
    CHECK(sodium_memcmp(identity_ed_sk(back), identity_ed_sk(w->a), 64) == 0);
    identity_destroy(&back);
}

static void
s_vec_session(s_vectors_t *v, s_world_t *w)
{
    s_add_u64(v, "spk_id_b", V_SPK_ID);
    s_add_u64(v, "spk_created_ms", V_NOW);
    s_add_pattern(v, "spk_secret_b", 0x60, 32);
    s_queue_pattern(0x60, 32);
    CHECK(dm_prekey_generate(identity_ed_pk(w->b), V_SPK_ID, V_NOW, &w->spk, w->spk_secret) == 0);
    s_queue_drained();
    s_add_hex(v, "spk_pub_b", w->spk.spk_pub, 32);
    CHECK(dm_prekey_encode(&w->spk, identity_ed_sk(w->b), w->bundle) == 0);
    s_add_hex(v, "prekey_bundle_b", w->bundle, sizeof w->bundle);

    CHECK(dm_scope(w->a, identity_ed_pk(w->b), w->scope) == 0);
    s_add_hex(v, "dm_scope_ab", w->scope, 32);

    s_add_pattern(v, "ek_secret_a", 0x80, 32);
    s_queue_pattern(0x80, 32);
    CHECK(dm_x3dh_initiate(w->a, identity_ed_pk(w->b), &w->spk, w->h.ek_pub, w->root) == 0);
    s_queue_drained();
    s_add_hex(v, "ek_pub_a", w->h.ek_pub, 32);
    s_add_hex(v, "x3dh_root", w->root, 32);

    w->h.spk_id = V_SPK_ID;
    w->h.day0 = V_DAY0;
    w->h.day = V_DAY;
    s_add_u64(v, "day0", V_DAY0);
    s_add_u64(v, "day", V_DAY);
    memcpy(w->day_key, w->root, 32);
    CHECK(dm_chain_advance(w->day_key, V_DAY0, V_DAY) == 0);
    s_add_hex(v, "day_key", w->day_key, 32);
    uint8_t mk[32];
    dm_message_key(w->day_key, V_SEQ, mk);
    s_add_u64(v, "seq", V_SEQ);
    s_add_hex(v, "message_key", mk, 32);
}

static void
s_vec_envelope(s_vectors_t *v, s_world_t *w)
{
    uint8_t content[64];
    size_t content_len = 0;
    CHECK(content_encode_text(V_TEXT, strlen(V_TEXT), content, sizeof content, &content_len) == 0);
    s_add(v, "text", V_TEXT);
    s_add_hex(v, "content", content, content_len);

    envelope_t fields;
    memset(&fields, 0, sizeof fields);
    fields.kind = ENVELOPE_KIND_DM;
    memcpy(fields.author, identity_ed_pk(w->a), 32);
    memcpy(fields.scope, w->scope, 32);
    fields.seq = V_SEQ;
    fields.ts_ms = V_NOW;
    fields.expires_ms = 0;
    s_add_u64(v, "ts_ms", V_NOW);
    s_add_u64(v, "expires_ms", 0);
    s_add_pattern(v, "dm_nonce", 0xa0, 24);
    s_queue_pattern(0xa0, 24);
    CHECK(dm_envelope_seal(w->a, &fields, &w->h, w->day_key, content, content_len, w->env,
                           sizeof w->env, &w->env_len)
          == 0);
    s_queue_drained();
    s_add_hex(v, "envelope", w->env, w->env_len);

    envelope_t env;
    CHECK(envelope_check(w->env, w->env_len, V_NOW, &env, w->id) == 0);
    s_add_hex(v, "envelope_id", w->id, sizeof w->id);

    /* B opens it from its SPK secret and A's ephemeral key. */
    dm_header_t h;
    uint8_t key[32];
    CHECK(dm_body_parse(&env, &h) == 0);
    CHECK(dm_x3dh_respond(w->b, env.author, w->spk_secret, h.spk_id, h.ek_pub, key) == 0);
    CHECK(dm_chain_advance(key, h.day0, h.day) == 0);
    uint8_t plain[PARLEY_CONTENT_MAX];
    size_t plain_len = 0;
    CHECK(dm_envelope_open(&env, key, plain, sizeof plain, &plain_len) == 0);
    CHECK(plain_len == content_len && memcmp(plain, content, content_len) == 0);
}

static void
s_vec_frames(s_vectors_t *v, const s_world_t *w)
{
    uint8_t f[1024];
    size_t len = 0;
    const char *eps[] = { V_ENDPOINT };
    s_add(v, "hello_tag", V_TAG);
    s_add(v, "hello_endpoint", V_ENDPOINT);
    CHECK(frame_encode_hello(identity_ed_pk(w->a), 1, V_TAG, eps, 1, f, sizeof f, &len) == 0);
    s_add_hex(v, "frame_hello", f, len);
    CHECK(frame_encode_prekey(w->bundle, sizeof w->bundle, f, sizeof f, &len) == 0);
    s_add_hex(v, "frame_prekey", f, len);
    frame_batch_t b;
    frame_batch_begin(&b, f, sizeof f);
    CHECK(frame_batch_add(&b, w->env, w->env_len) == 0);
    len = frame_batch_finish(&b);
    s_add_hex(v, "frame_envelopes", f, len);
    CHECK(frame_encode_ack(w->id, 1, f, sizeof f, &len) == 0);
    s_add_hex(v, "frame_ack", f, len);
    CHECK(frame_encode_ping(FRAME_PING, V_PING, f, sizeof f, &len) == 0);
    s_add_hex(v, "frame_ping", f, len);
    CHECK(frame_encode_ping(FRAME_PONG, V_PING, f, sizeof f, &len) == 0);
    s_add_hex(v, "frame_pong", f, len);
    CHECK(frame_encode_bye(1, f, sizeof f, &len) == 0);
    s_add_hex(v, "frame_bye", f, len);
}

/* ---------------------------------------------------------- roster vectors */

#define V_NET_NAME "acme"
#define V_FOUNDER_NAME "alice"
#define V_LABEL "for bob"
#define V_JOINER_NAME "bob"
#define V_REASON "left the team"
#define V_INVITE_TTL 86400000ull

//  Seals body as the next network event of sk's key; adds the envelope and
//  its id as vectors, feeds it to r and returns the id in id.
static void
s_vec_net_envelope(s_vectors_t *v, const char *env_name, const char *id_name, roster_t *r,
                   const uint8_t pk[32], const uint8_t sk[64], const uint8_t net[32], uint64_t seq,
                   uint64_t ts, const uint8_t *body, size_t body_len, uint8_t id[32])
{
    envelope_t fields;
    memset(&fields, 0, sizeof fields);
    fields.version = PARLEY_ENVELOPE_VERSION;
    fields.kind = ENVELOPE_KIND_NET;
    memcpy(fields.author, pk, 32);
    memcpy(fields.scope, net, 32);
    fields.seq = seq;
    fields.ts_ms = ts;
    fields.body = body;
    fields.body_len = body_len;
    uint8_t buf[1024];
    size_t len = 0;
    CHECK(envelope_seal(&fields, sk, buf, sizeof buf, &len) == 0);
    s_add_hex(v, env_name, buf, len);
    envelope_t env;
    CHECK(envelope_check(buf, len, V_NOW, &env, id) == 0);
    s_add_hex(v, id_name, id, 32);
    CHECK(roster_add(r, &env) == 0);
}

static s_vectors_t *
s_roster_vectors_compute(void)
{
    s_vectors_t *v = calloc(1, sizeof *v);
    CHECK(v);
    uint8_t seed[32];
    uint8_t f_pk[32], f_sk[64], j_pk[32], j_sk[64], i_pk[32], i_sk[64];
    for (size_t i = 0; i < 32; i++) {
        seed[i] = (uint8_t)i;
    }
    s_add_hex(v, "founder_seed", seed, 32);
    CHECK(crypto_sign_seed_keypair(f_pk, f_sk, seed) == 0);
    s_add_hex(v, "founder_pk", f_pk, 32);
    for (size_t i = 0; i < 32; i++) {
        seed[i] = (uint8_t)(0x20 + i);
    }
    s_add_hex(v, "joiner_seed", seed, 32);
    CHECK(crypto_sign_seed_keypair(j_pk, j_sk, seed) == 0);
    s_add_hex(v, "joiner_pk", j_pk, 32);
    uint8_t secret[32];
    for (size_t i = 0; i < 32; i++) {
        secret[i] = (uint8_t)(0x60 + i);
    }
    s_add_hex(v, "invite_secret", secret, 32);
    CHECK(crypto_kdf_derive_from_key(seed, 32, 1, "parleyiv", secret) == 0);
    s_add_hex(v, "invite_seed", seed, 32);
    CHECK(crypto_sign_seed_keypair(i_pk, i_sk, seed) == 0);
    s_add_hex(v, "invite_pk", i_pk, 32);
    uint8_t salt[ROSTER_SALT_LEN];
    for (size_t i = 0; i < sizeof salt; i++) {
        salt[i] = (uint8_t)(0x40 + i);
    }
    s_add_hex(v, "network_salt", salt, sizeof salt);
    uint8_t net[32];
    roster_network_id(f_pk, salt, net);
    s_add_hex(v, "network_id", net, 32);
    s_add_u64(v, "ts_ms", V_NOW);
    roster_t *r = roster_new(net);
    CHECK(r);

    uint8_t body[ROSTER_BODY_MAX];
    size_t len = 0;
    uint8_t id_create[32], id_invite[32], id_join[32], id_remove[32];
    roster_event_t ev = { .type = ROSTER_CREATE };
    memcpy(ev.salt, salt, sizeof salt);
    ev.text = (const uint8_t *)V_NET_NAME;
    ev.text_len = strlen(V_NET_NAME);
    ev.text2 = (const uint8_t *)V_FOUNDER_NAME;
    ev.text2_len = strlen(V_FOUNDER_NAME);
    s_add(v, "network_name", V_NET_NAME);
    s_add(v, "founder_name", V_FOUNDER_NAME);
    CHECK(roster_event_build(r, f_pk, &ev, body, sizeof body, &len) == 0);
    s_add_hex(v, "body_create", body, len);
    s_vec_net_envelope(v, "envelope_create", "id_create", r, f_pk, f_sk, net, 1, V_NOW, body, len,
                       id_create);

    roster_event_t inv = { .type = ROSTER_INVITE, .role = ROSTER_ROLE_MEMBER, .uses = 5 };
    memcpy(inv.key, i_pk, 32);
    inv.expires_ms = V_NOW + V_INVITE_TTL;
    inv.text = (const uint8_t *)V_LABEL;
    inv.text_len = strlen(V_LABEL);
    s_add(v, "invite_label", V_LABEL);
    s_add_u64(v, "invite_expires_ms", inv.expires_ms);
    s_add_u64(v, "invite_uses", inv.uses);
    CHECK(roster_event_build(r, f_pk, &inv, body, sizeof body, &len) == 0);
    s_add_hex(v, "body_invite", body, len);
    s_vec_net_envelope(v, "envelope_invite", "id_invite", r, f_pk, f_sk, net, 2, V_NOW + 1, body,
                       len, id_invite);

    roster_event_t join = { .type = ROSTER_JOIN };
    memcpy(join.key, i_pk, 32);
    join.text = (const uint8_t *)V_JOINER_NAME;
    join.text_len = strlen(V_JOINER_NAME);
    s_add(v, "joiner_name", V_JOINER_NAME);
    CHECK(roster_join_proof_sign(i_sk, net, j_pk, join.text, join.text_len, join.proof) == 0);
    s_add_hex(v, "join_proof", join.proof, sizeof join.proof);
    CHECK(roster_event_build(r, j_pk, &join, body, sizeof body, &len) == 0);
    s_add_hex(v, "body_join", body, len);
    s_vec_net_envelope(v, "envelope_join", "id_join", r, j_pk, j_sk, net, 1, V_NOW + 2, body, len,
                       id_join);
    CHECK(roster_role(r, j_pk) == ROSTER_ROLE_MEMBER);

    roster_event_t rm = { .type = ROSTER_REMOVE };
    memcpy(rm.key, j_pk, 32);
    rm.text = (const uint8_t *)V_REASON;
    rm.text_len = strlen(V_REASON);
    s_add(v, "remove_reason", V_REASON);
    CHECK(roster_event_build(r, f_pk, &rm, body, sizeof body, &len) == 0);
    s_add_hex(v, "body_remove", body, len);
    s_vec_net_envelope(v, "envelope_remove", "id_remove", r, f_pk, f_sk, net, 3, V_NOW + 3, body,
                       len, id_remove);
    CHECK(roster_is_removed(r, j_pk) && roster_member_count(r) == 1);
    CHECK(roster_log_count(r) == 4 && roster_pending_count(r) == 0);
    roster_destroy(&r);
    sodium_memzero(f_sk, sizeof f_sk);
    sodium_memzero(j_sk, sizeof j_sk);
    sodium_memzero(i_sk, sizeof i_sk);
    return v;
}

static s_vectors_t *
s_vectors_compute(void)
{
    s_vectors_t *v = calloc(1, sizeof *v);
    s_world_t *w = calloc(1, sizeof *w);
    CHECK(v && w);
    s_vec_identities(v, w);
    s_vec_keyfiles(v, w);
    s_vec_session(v, w);
    s_vec_envelope(v, w);
    s_vec_frames(v, w);
    identity_destroy(&w->a);
    identity_destroy(&w->b);
    sodium_memzero(w, sizeof *w);
    free(w);
    return v;
}

/*  Prints a vectors file: its header comment, then compute()'s entries. */
static void
s_vectors_emit(const char *header, s_vectors_t *(*compute)(void))
{
    s_vectors_t *v = compute();
    fputs(header, stdout);
    for (size_t i = 0; i < v->n; i++) {
        printf("%s = %s\n", v->kv[i].name, v->kv[i].value);
    }
    free(v);
}

static void
s_vectors_print(void)
{
    s_vectors_emit("# Parley known-answer vectors, wire format v1 (proto/SPEC.md).\n"
                   "# Regenerate ONLY for a deliberate format change:\n"
                   "#   ./build/proto_selftest --print-vectors > tests/vectors/envelope-v1.txt\n"
                   "# Format: name = value; binary values in lower-case hex. Inputs (seeds,\n"
                   "# salts, nonces, ephemeral and prekey secrets, times) come first in each\n"
                   "# group; everything else is derived from them. Argon2id cost is the\n"
                   "# libsodium minimum to keep the test fast.\n",
                   s_vectors_compute);
}

static void
s_roster_vectors_print(void)
{
    s_vectors_emit(
        "# Parley known-answer vectors: network events (proto/SPEC.md §17).\n"
        "# Regenerate ONLY for a deliberate format change:\n"
        "#   ./build/proto_selftest --print-roster-vectors > tests/vectors/roster-v1.txt\n"
        "# Format: name = value; binary values in lower-case hex. Keys come from\n"
        "# fixed seeds (Ed25519 seed keypairs); the invite key pair from\n"
        "# invite_seed = KDF(invite_secret, 1, \"parleyiv\"). Each body names the\n"
        "# previous event's envelope id as its one parent; each envelope is\n"
        "# kind 2 with scope = network_id.\n",
        s_roster_vectors_compute);
}

/*  Finds name in the file's lines; returns its value or NULL. */
static const char *
s_file_value(char *text, const char *name)
{
    size_t name_len = strlen(name);
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (line[0] != '#' && strncmp(line, name, name_len) == 0
            && strncmp(line + name_len, " = ", 3) == 0) {
            return line + name_len + 3;
        }
        line = next ? next + 1 : NULL;
    }
    return NULL;
}

static char *
s_read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "vectors: cannot open %s (set PARLEY_VECTORS to the directory)\n", path);
        return NULL;
    }
    size_t cap = 64 * 1024;
    char *text = calloc(1, cap + 1);
    size_t len = text ? fread(text, 1, cap, fp) : 0;
    fclose(fp);
    if (text && len == cap) {
        fprintf(stderr, "vectors: %s is too large\n", path);
        free(text);
        return NULL;
    }
    return text;
}

static size_t
s_count_entries(const char *text)
{
    size_t n = 0;
    for (const char *line = text; line && *line;) {
        if (line[0] != '#' && line[0] != '\n' && strstr(line, " = ")) {
            n++;
        }
        const char *next = strchr(line, '\n');
        line = next ? next + 1 : NULL;
    }
    return n;
}

/*  Compares the computed vectors v with the file tests/vectors/NAME (or
 *  $PARLEY_VECTORS/NAME), entry by entry, and frees v. */
static void
s_vectors_check(bool verbose, const char *file, s_vectors_t *(*compute)(void))
{
    const char *dir = getenv("PARLEY_VECTORS");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "tests/vectors", file);
    char *text = s_read_file(path);
    CHECK(text);
    /* Lines become C strings: values end at the newline. */
    s_vectors_t *v = compute();
    size_t mismatches = 0;
    for (size_t i = 0; i < v->n; i++) {
        const char *got = s_file_value(text, v->kv[i].name);
        size_t want_len = strlen(v->kv[i].value);
        if (!got || strncmp(got, v->kv[i].value, want_len) != 0
            || (got[want_len] != '\n' && got[want_len] != '\0')) {
            fprintf(stderr, "vectors: %s differs\n  file: %.*s\n  code: %s\n", v->kv[i].name,
                    got ? (int)strcspn(got, "\n") : 6, got ? got : "(none)", v->kv[i].value);
            mismatches++;
        } else if (verbose) {
            printf("   %s ok\n", v->kv[i].name);
        }
    }
    size_t in_file = s_count_entries(text);
    if (in_file != v->n) {
        fprintf(stderr, "vectors: file has %zu entries, code computes %zu\n", in_file, v->n);
    }
    CHECK(mismatches == 0 && in_file == v->n);
    free(v);
    free(text);
}

static void
s_vectors_test(bool verbose)
{
    s_vectors_check(verbose, "envelope-v1.txt", s_vectors_compute);
}

static void
s_roster_vectors_test(bool verbose)
{
    s_vectors_check(verbose, "roster-v1.txt", s_roster_vectors_compute);
}

/* ----------------------------------------------------------- invite vectors */

/*  Fixed inputs of tests/vectors/invite-v1.txt (SPEC §18.5). */
#define V_INVITE_EXPIRES 1790000000000ull
#define V_INVITE_EP1 "tcp://192.168.10.23:40123"
#define V_INVITE_EP2 "tcp://relay.example.org:7400"
#define V_INVITE_EP3 "tcp://10.0.0.7:7400"

static s_vectors_t *
s_invite_vectors_compute(void)
{
    s_vectors_t *v = calloc(1, sizeof *v);
    CHECK(v);
    uint8_t secret[32], seed[32], ed_pk[32], ed_sk[64], x_pk[32], x_sk[32];
    for (size_t i = 0; i < 32; i++) {
        secret[i] = (uint8_t)(0xc0 + i);
    }
    s_add_hex(v, "invite_secret", secret, 32);
    CHECK(crypto_kdf_derive_from_key(seed, 32, INVITE_KDF_ID, INVITE_KDF_CTX, secret) == 0);
    s_add_hex(v, "invite_seed", seed, 32);
    CHECK(invite_keys(secret, ed_pk, ed_sk, x_pk, x_sk) == 0);
    CHECK(memcmp(ed_sk, seed, 32) == 0);
    s_add_hex(v, "invite_ed_pk", ed_pk, 32);
    s_add_hex(v, "invite_x_pk", x_pk, 32);
    s_add_hex(v, "invite_x_sk", x_sk, 32);

    invite_code_t c;
    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < 32; i++) {
        c.network_id[i] = (uint8_t)(0x10 + i);
        c.inviter_pk[i] = (uint8_t)(0x40 + i);
    }
    memcpy(c.secret, secret, 32);
    c.expires_ms = V_INVITE_EXPIRES;
    s_add_hex(v, "network_id", c.network_id, 32);
    s_add_hex(v, "inviter_pk", c.inviter_pk, 32);
    s_add_u64(v, "expires_ms", c.expires_ms);
    c.n = 1;
    snprintf(c.endpoints[0].endpoint, sizeof c.endpoints[0].endpoint, "%s", V_INVITE_EP1);
    memcpy(c.endpoints[0].pk, c.inviter_pk, 32);
    s_add(v, "endpoint_1", V_INVITE_EP1);
    char text[INVITE_CODE_MAX];
    size_t len = 0;
    CHECK(invite_code_encode(&c, text, sizeof text, &len) == 0);
    s_add(v, "code_1", text);
    s_add_u64(v, "code_1_len", len);

    /* Two more: a DNS name at another node (its pk stated) and an IPv4
     * address at the inviter. */
    c.n = 3;
    snprintf(c.endpoints[1].endpoint, sizeof c.endpoints[1].endpoint, "%s", V_INVITE_EP2);
    for (size_t i = 0; i < 32; i++) {
        c.endpoints[1].pk[i] = (uint8_t)(0x80 + i);
    }
    snprintf(c.endpoints[2].endpoint, sizeof c.endpoints[2].endpoint, "%s", V_INVITE_EP3);
    memcpy(c.endpoints[2].pk, c.inviter_pk, 32);
    s_add(v, "endpoint_2", V_INVITE_EP2);
    s_add_hex(v, "endpoint_2_pk", c.endpoints[1].pk, 32);
    s_add(v, "endpoint_3", V_INVITE_EP3);
    CHECK(invite_code_encode(&c, text, sizeof text, &len) == 0);
    s_add(v, "code_3", text);
    s_add_u64(v, "code_3_len", len);

    invite_code_t back;
    CHECK(invite_code_decode(text, len, &back, NULL) == 0);
    CHECK(back.n == 3 && strcmp(back.endpoints[1].endpoint, V_INVITE_EP2) == 0);
    sodium_memzero(&back, sizeof back);
    sodium_memzero(&c, sizeof c);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(ed_sk, sizeof ed_sk);
    sodium_memzero(x_sk, sizeof x_sk);
    return v;
}

static void
s_invite_vectors_print(void)
{
    s_vectors_emit(
        "# Parley invite code vectors, format v1 (proto/SPEC.md section 18).\n"
        "# Regenerate ONLY for a deliberate format change:\n"
        "#   ./build/proto_selftest --print-vectors invite > tests/vectors/invite-v1.txt\n"
        "# Format: name = value; binary values in lower-case hex. invite_secret gives\n"
        "# invite_seed (KDF), the Ed25519 pair (invite_ed_pk) and its X25519 form;\n"
        "# code_1 carries endpoint_1, code_3 endpoints 1 to 3.\n",
        s_invite_vectors_compute);
}

static void
s_invite_vectors_test(bool verbose)
{
    s_vectors_check(verbose, "invite-v1.txt", s_invite_vectors_compute);
}

/* ---------------------------------------------------------- network vectors */

/*  Fixed inputs of tests/vectors/network-v1.txt (SPEC §19.4). */
#define V_NETKEY_EPOCH 7u
#define V_JOIN_REASON "invite used up"

static s_vectors_t *
s_network_vectors_compute(void)
{
    s_vectors_t *v = calloc(1, sizeof *v);
    CHECK(v);
    uint8_t seed[32], pk[32], sk[64], net[32], secret[32], sig[64], heads[2 * 32];
    for (size_t i = 0; i < 32; i++) {
        seed[i] = (uint8_t)(0xa0 + i);
        net[i] = (uint8_t)(0x10 + i);
        secret[i] = (uint8_t)(0x70 + i);
        heads[i] = (uint8_t)(0x01 + i);
        heads[32 + i] = (uint8_t)(0x81 + i);
    }
    CHECK(crypto_sign_seed_keypair(pk, sk, seed) == 0);
    s_add_hex(v, "author_seed", seed, 32);
    s_add_hex(v, "author_pk", pk, 32);
    s_add_hex(v, "network_id", net, 32);
    s_add_u64(v, "netkey_epoch", V_NETKEY_EPOCH);
    s_add_hex(v, "netkey_secret", secret, 32);
    //  The epoch's binding: the network and two removals (ids ascending).
    uint8_t removals[64], binding[32];
    for (size_t i = 0; i < 32; i++) {
        removals[i] = (uint8_t)(0x20 + i);
        removals[32 + i] = (uint8_t)(0xc0 + i);
    }
    s_add_hex(v, "netkey_removals", removals, sizeof removals);
    netkey_binding(net, removals, 2, binding);
    s_add_hex(v, "netkey_binding", binding, 32);
    CHECK(netkey_sign(binding, V_NETKEY_EPOCH, secret, sk, sig) == 0);
    CHECK(netkey_verify(binding, V_NETKEY_EPOCH, secret, pk, sig) == 0);
    s_add_hex(v, "netkey_sig", sig, 64);
    uint8_t f[512];
    size_t len = 0;
    CHECK(frame_encode_netkey(net, V_NETKEY_EPOCH, secret, pk, sig, f, sizeof f, &len) == 0);
    s_add_hex(v, "frame_netkey", f, len);
    CHECK(frame_encode_join_ask(net, f, sizeof f, &len) == 0);
    s_add_hex(v, "frame_join_ask", f, len);
    s_add_hex(v, "join_heads", heads, sizeof heads);
    CHECK(frame_encode_join_heads(heads, 2, f, sizeof f, &len) == 0);
    s_add_hex(v, "frame_join_heads", f, len);
    CHECK(frame_encode_join_done(FRAME_JOIN_ADDED, NULL, 0, f, sizeof f, &len) == 0);
    s_add_hex(v, "frame_join_added", f, len);
    s_add(v, "join_reason", V_JOIN_REASON);
    CHECK(frame_encode_join_done(FRAME_JOIN_REFUSED, V_JOIN_REASON, strlen(V_JOIN_REASON), f,
                                 sizeof f, &len)
          == 0);
    s_add_hex(v, "frame_join_refused", f, len);

    /* Blinded mDNS (SPEC §19.3): the key of a fixed secret, a record of
     * author_pk from a fixed nonce, a name from fixed bytes. */
    uint8_t mdns_secret[32], mdns_key[32];
    for (size_t i = 0; i < 32; i++) {
        mdns_secret[i] = (uint8_t)(0x90 + i);
    }
    s_add_hex(v, "mdns_secret", mdns_secret, 32);
    CHECK(blind_key(mdns_secret, mdns_key) == 0);
    s_add_hex(v, "mdns_key", mdns_key, 32);
    s_add_pattern(v, "mdns_nonce", 0x50, BLIND_NONCE_LEN);
    s_queue_pattern(0x50, BLIND_NONCE_LEN);
    txt_record_t rec;
    CHECK(txt_encode_blind(mdns_key, pk, &rec) == 0);
    s_queue_drained();
    CHECK(rec.n == 2);
    s_add(v, "mdns_txt_v", rec.items[0]);
    s_add(v, "mdns_txt_b", rec.items[1]);
    s_add_pattern(v, "mdns_name_random", 0xe0, BLIND_NAME_RANDOM);
    s_queue_pattern(0xe0, BLIND_NAME_RANDOM);
    char name[BLIND_NAME_LEN + 1];
    CHECK(blind_instance_name(name) == 0);
    s_queue_drained();
    s_add(v, "mdns_instance", name);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(f, sizeof f);
    return v;
}

static void
s_network_vectors_print(void)
{
    s_vectors_emit(
        "# Parley private-network vectors: JOIN and NETKEY frames, blinded mDNS (SPEC section "
        "19).\n"
        "# Regenerate ONLY for a deliberate format change:\n"
        "#   ./build/proto_selftest --print-vectors network > tests/vectors/network-v1.txt\n"
        "# Format: name = value; binary values in lower-case hex. author_seed is an\n"
        "# Ed25519 seed; netkey_binding = BLAKE2b-256(\"parley/epoch/v1\\0\" ||\n"
        "# network_id || netkey_removals); netkey_sig signs \"parley/netkey/v2\\0\" ||\n"
        "# netkey_binding || u32 epoch || netkey_secret.\n"
        "# mdns_key = KDF(mdns_secret, 1, \"parleymd\");\n"
        "# mdns_txt_b seals author_pk under it with mdns_nonce (section 19.3).\n",
        s_network_vectors_compute);
}

static void
s_network_vectors_test(bool verbose)
{
    s_vectors_check(verbose, "network-v1.txt", s_network_vectors_compute);
}

/*  Fixed inputs of tests/vectors/channel-v1.txt (SPEC §21.5). */
#define V_CHAN_EPOCH 3u
#define V_CHAN_COUNTER 2u
#define V_CHAN_TEXT "\x01standup at ten"

static s_vectors_t *
s_chan_vectors_compute(void)
{
    s_vectors_t *v = calloc(1, sizeof *v);
    CHECK(v);
    uint8_t creator[32], salt[CHAN_SALT_LEN], id[32], scope[32], key[32], key_id[CHAN_KEY_ID_LEN];
    uint8_t sender[32], ck[32], mk[32], hdr[PARLEY_ENVELOPE_HEADER_LEN];
    for (size_t i = 0; i < 32; i++) {
        creator[i] = (uint8_t)(0x10 + i);
        key[i] = (uint8_t)(0x40 + i);
        sender[i] = (uint8_t)(0x60 + i);
    }
    for (size_t i = 0; i < CHAN_SALT_LEN; i++) {
        salt[i] = (uint8_t)(0x30 + i);
    }
    s_add_hex(v, "creator_pk", creator, 32);
    s_add_hex(v, "salt", salt, sizeof salt);
    chan_id(creator, salt, id);
    s_add_hex(v, "channel_id", id, 32);
    chan_msg_scope(id, scope);
    s_add_hex(v, "msg_scope", scope, 32);
    s_add_u64(v, "epoch", V_CHAN_EPOCH);
    s_add_hex(v, "epoch_key", key, 32);
    chan_key_id(id, V_CHAN_EPOCH, key, key_id);
    s_add_hex(v, "key_id", key_id, sizeof key_id);
    s_add_hex(v, "sender_pk", sender, 32);
    chan_chain_start(key, id, V_CHAN_EPOCH, sender, ck);
    s_add_hex(v, "chain_key_0", ck, 32);
    chan_chain_step(ck, mk);
    s_add_hex(v, "message_key_0", mk, 32);
    chan_chain_step(ck, mk);
    s_add_hex(v, "message_key_1", mk, 32);
    chan_chain_step(ck, mk);
    s_add_hex(v, "message_key_2", mk, 32);
    s_add_hex(v, "chain_key_3", ck, 32);

    /* A message body of step V_CHAN_COUNTER under a fixed envelope header
     * (bytes 0..93) and nonce. */
    for (size_t i = 0; i < sizeof hdr; i++) {
        hdr[i] = (uint8_t)i;
    }
    s_add_hex(v, "env_header", hdr, sizeof hdr);
    s_add_hex(v, "content", (const uint8_t *)V_CHAN_TEXT, strlen(V_CHAN_TEXT));
    s_add_pattern(v, "msg_nonce", 0x80, CHAN_NONCE_LEN);
    chan_msg_header_t h = { .epoch = V_CHAN_EPOCH, .counter = V_CHAN_COUNTER };
    memcpy(h.key_id, key_id, sizeof key_id);
    uint8_t body[256], back[PARLEY_CONTENT_MAX];
    size_t len = 0, got = 0;
    s_queue_pattern(0x80, CHAN_NONCE_LEN);
    CHECK(chan_body_seal(hdr, &h, mk, (const uint8_t *)V_CHAN_TEXT, strlen(V_CHAN_TEXT), body,
                         sizeof body, &len)
          == 0);
    s_queue_drained();
    CHECK(chan_body_open(hdr, body, len, mk, back, sizeof back, &got) == 0);
    CHECK(got == strlen(V_CHAN_TEXT));
    s_add_hex(v, "msg_body", body, len);

    /* A KEYS body with two entries: recipients 0xa0.. and 0xb0.., each
     * under its own day key (the chain key of the author's DM session's
     * day) and a fixed body nonce. */
    chan_keys_t k = { .epoch = V_CHAN_EPOCH, .part = 0, .parts = 1, .n = 2 };
    memcpy(k.key_id, key_id, sizeof key_id);
    for (size_t i = 0; i < 32; i++) {
        k.binding[i] = (uint8_t)(0xc0 + i);
    }
    for (size_t i = 0; i < CHAN_KEYS_NONCE_LEN; i++) {
        k.nonce[i] = (uint8_t)(0xd0 + i);
    }
    /* The binding: the ids of two applied events, ascending. The KEYS body
     * below uses a fixed binding instead: it is opaque to the entries. */
    uint8_t events[64], binding[32];
    for (size_t i = 0; i < 32; i++) {
        events[i] = (uint8_t)(0x20 + i);
        events[32 + i] = (uint8_t)(0x90 + i);
    }
    s_add_hex(v, "binding_events", events, sizeof events);
    chan_binding(id, events, 2, binding);
    s_add_hex(v, "binding", binding, 32);
    s_add_hex(v, "keys_binding", k.binding, 32);
    s_add_hex(v, "keys_nonce", k.nonce, sizeof k.nonce);
    uint8_t kb[CHAN_KEYS_FIXED + 2 * CHAN_KEYS_ENTRY_LEN];
    CHECK(chan_keys_begin(&k, kb, sizeof kb, &len) == 0 && len == sizeof kb);
    for (size_t e = 0; e < 2; e++) {
        uint8_t rcpt[32], ek_pub[32], day_key[32];
        for (size_t i = 0; i < 32; i++) {
            rcpt[i] = (uint8_t)(0xa0 + 0x10 * e + i);
            ek_pub[i] = (uint8_t)(0x50 + 0x20 * e + i);
            day_key[i] = (uint8_t)(0xe0 + e + i);
        }
        s_add_hex(v, e == 0 ? "entry0_recipient" : "entry1_recipient", rcpt, 32);
        s_add_hex(v, e == 0 ? "entry0_ek_pub" : "entry1_ek_pub", ek_pub, 32);
        s_add_hex(v, e == 0 ? "entry0_day_key" : "entry1_day_key", day_key, 32);
        chan_keys_entry_t ent = {
            rcpt, ek_pub, (uint32_t)(11 + e), 100, (uint32_t)(102 + e), NULL
        };
        CHECK(chan_keys_entry_seal(id, &k, &ent, day_key, key,
                                   kb + CHAN_KEYS_FIXED + e * CHAN_KEYS_ENTRY_LEN)
              == 0);
    }
    chan_keys_t d;
    CHECK(chan_keys_decode(kb, sizeof kb, &d) == 0 && d.n == 2);
    s_add_hex(v, "keys_body", kb, sizeof kb);
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(mk, sizeof mk);
    return v;
}

static void
s_chan_vectors_print(void)
{
    s_vectors_emit(
        "# Parley channel vectors: ids, chains, a message body, a KEYS body (SPEC section 21).\n"
        "# Regenerate ONLY for a deliberate format change:\n"
        "#   ./build/proto_selftest --print-vectors chan > tests/vectors/channel-v1.txt\n"
        "# Format: name = value; binary values in lower-case hex. msg_body seals content\n"
        "# under message_key_2 (step 2 of sender_pk's chain) with msg_nonce under\n"
        "# env_header. keys_body seals epoch_key to entry0_recipient (spk_id 11, day0\n"
        "# 100, day 102) under entry0_day_key and to entry1_recipient (spk_id 12, day0\n"
        "# 100, day 103) under entry1_day_key.\n",
        s_chan_vectors_compute);
}

static void
s_chan_vectors_test(bool verbose)
{
    s_vectors_check(verbose, "channel-v1.txt", s_chan_vectors_compute);
}

/* ---------------------------------------------------------------- errors */

static void
s_errors_test(bool verbose)
{
    if (verbose) {
        printf(" * errors: one distinct message per code\n");
    }
    for (int a = PARLEY_ERR_LAST; a <= PARLEY_OK; a++) {
        CHECK(parley_strerror(a) != NULL && strlen(parley_strerror(a)) > 0);
        CHECK(strcmp(parley_strerror(a), "unknown error") != 0);
        for (int b = PARLEY_ERR_LAST; b < a; b++) {
            CHECK(strcmp(parley_strerror(a), parley_strerror(b)) != 0);
        }
    }
    CHECK(strcmp(parley_strerror(1), "unknown error") == 0);
    CHECK(strcmp(parley_strerror(-1000), "unknown error") == 0);
}

/* ------------------------------------------------------------------ runner */

typedef struct {
    const char *name;
    void (*fn)(bool verbose);
} s_test_t;

static const s_test_t s_tests[] = {
    { "errors", s_errors_test },
    { "bytes", bytes_test },
    { "b32", b32_test },
    { "identity", identity_test },
    { "envelope", envelope_test },
    { "dm", dm_test },
    { "content", content_test },
    { "frame", frame_test },
    { "netkey", netkey_test },
    { "endpoint", endpoint_test },
    { "txt", txt_test },
    { "blind", blind_test },
    { "addr", addr_test },
    { "sync_set", sync_set_test },
    { "sync_msg", sync_msg_test },
    { "sync_answer", sync_answer_test },
    { "textsafe", textsafe_test },
    { "roster", roster_test },
    { "invite", invite_test },
    { "chan", chan_test },
    { "vectors", s_vectors_test },
    { "roster_vectors", s_roster_vectors_test },
    { "invite_vectors", s_invite_vectors_test },
    { "network_vectors", s_network_vectors_test },
    { "chan_vectors", s_chan_vectors_test },
};

#define S_N_TESTS (sizeof s_tests / sizeof s_tests[0])

static void
s_usage(FILE *out)
{
    fprintf(out, "usage: proto_selftest [-v] [name] | --print-vectors [invite|network] | "
                 "--print-roster-vectors\n  names:");
    for (size_t i = 0; i < S_N_TESTS; i++) {
        fprintf(out, " %s", s_tests[i].name);
    }
    fprintf(out, "\n");
}

int
main(int argc, char **argv)
{
    bool verbose = false;
    bool print_vectors = false;
    bool print_roster_vectors = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = true;
        } else if (strcmp(argv[i], "--print-vectors") == 0) {
            print_vectors = true;
        } else if (strcmp(argv[i], "--print-roster-vectors") == 0) {
            print_roster_vectors = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            s_usage(stdout);
            return 0;
        } else if (!only && argv[i][0] != '-') {
            only = argv[i];
        } else {
            s_usage(stderr);
            return 2;
        }
    }
    if (randombytes_set_implementation(&s_rng) != 0 || sodium_init() < 0) {
        fprintf(stderr, "proto_selftest: libsodium failed to initialise\n");
        return 1;
    }
    if (print_vectors) {
        if (only && strcmp(only, "invite") == 0) {
            s_invite_vectors_print();
        } else if (only && strcmp(only, "network") == 0) {
            s_network_vectors_print();
        } else if (only && strcmp(only, "chan") == 0) {
            s_chan_vectors_print();
        } else if (only) {
            s_usage(stderr);
            return 2;
        } else {
            s_vectors_print();
        }
        return 0;
    }
    if (print_roster_vectors) {
        s_roster_vectors_print();
        return 0;
    }
    size_t ran = 0;
    for (size_t i = 0; i < S_N_TESTS; i++) {
        if (only && strcmp(only, s_tests[i].name) != 0) {
            continue;
        }
        s_tests[i].fn(verbose);
        printf("ok %s\n", s_tests[i].name);
        fflush(stdout);
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "proto_selftest: no test named '%s'\n", only);
        s_usage(stderr);
        return 2;
    }
    return 0;
}
