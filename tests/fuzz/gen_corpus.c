/*  tests/fuzz/gen_corpus.c — writes the seed corpora of the fuzz targets.
 *
 *  Each target starts from a few valid inputs built with the real proto/ API,
 *  so the fuzzer begins deep inside each format instead of rediscovering
 *  magic bytes and signatures. Randomness comes from a deterministic
 *  generator installed before sodium_init(), so the output is the same on
 *  every run and regenerating it leaves git quiet unless a format changed.
 *  NEVER use this generator's keys for anything but tests.
 *
 *  Build and run from the repository root:
 *    cc -std=c11 -D_GNU_SOURCE -O1 tests/fuzz/gen_corpus.c proto/[a-z]*.c -lsodium \
 *       -o build-fuzz/gen_corpus && build-fuzz/gen_corpus tests/fuzz/corpus
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../proto/b32.h"
#include "../../proto/blind.h"
#include "../../proto/chan.h"
#include "../../proto/content.h"
#include "../../proto/dm.h"
#include "../../proto/envelope.h"
#include "../../proto/frame.h"
#include "../../proto/identity.h"
#include "../../proto/invite.h"
#include "../../proto/netkey.h"
#include "../../proto/roster.h"
#include "../../proto/txt.h"

#define S_NOW_MS 1790000000000ull /* FUZZ_NOW_MS in fuzz_common.h */
#define S_DAY_MS 86400000ull

static const char *s_root;

/* ---- deterministic randomness (tests only) ---- */

static uint8_t s_rng_seed[randombytes_SEEDBYTES];

static void
s_rng_buf(void *buf, size_t size)
{
    //  Each call draws from the current seed, then the seed moves on.
    randombytes_buf_deterministic(buf, size, s_rng_seed);
    crypto_generichash(s_rng_seed, sizeof s_rng_seed, s_rng_seed, sizeof s_rng_seed, NULL, 0);
}

static uint32_t
s_rng_random(void)
{
    uint32_t v;
    s_rng_buf(&v, sizeof v);
    return v;
}

static const char *
s_rng_name(void)
{
    return "parley-gen-corpus-deterministic";
}

static struct randombytes_implementation s_rng = {
    .implementation_name = s_rng_name,
    .random = s_rng_random,
    .buf = s_rng_buf,
};

/* ---- output ---- */

static void
s_die(const char *what)
{
    fprintf(stderr, "gen_corpus: %s\n", what);
    exit(1);
}

static void
s_check(int rc, const char *what)
{
    if (rc != PARLEY_OK) {
        fprintf(stderr, "gen_corpus: %s: %s\n", what, parley_strerror(rc));
        exit(1);
    }
}

static void
s_write(const char *target, const char *name, const void *data, size_t len)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", s_root, target);
    if (n < 0 || (size_t)n >= sizeof path) {
        s_die("path too long");
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        s_die("cannot create a corpus directory");
    }
    n = snprintf(path, sizeof path, "%s/%s/%s", s_root, target, name);
    if (n < 0 || (size_t)n >= sizeof path) {
        s_die("path too long");
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        s_die("cannot create a corpus file");
    }
    const uint8_t *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w <= 0) {
            s_die("cannot write a corpus file");
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) {
        s_die("cannot close a corpus file");
    }
}

/* ---- the two test identities and one DM session from A to B ---- */

typedef struct {
    identity_t *a; /* sender */
    identity_t *b; /* recipient, owner of the prekey */
    prekey_t spk;  /* B's signed prekey */
    uint8_t bundle[DM_PREKEY_BUNDLE_LEN];
    uint8_t scope[32];
    uint8_t root[32]; /* chain key of day0 */
    dm_header_t h;
} world_t;

static identity_t *
s_identity(uint8_t fill)
{
    uint8_t seed[32];
    memset(seed, fill, sizeof seed);
    identity_t *id = identity_new_from_seed(seed);
    if (!id) {
        s_die("identity_new_from_seed failed");
    }
    return id;
}

static void
s_world(world_t *w)
{
    w->a = s_identity(0xa1);
    w->b = s_identity(0xb2);
    uint8_t spk_secret[32];
    s_check(dm_prekey_generate(identity_ed_pk(w->b), 7, S_NOW_MS - S_DAY_MS, &w->spk, spk_secret),
            "prekey");
    sodium_memzero(spk_secret, sizeof spk_secret);
    s_check(dm_prekey_encode(&w->spk, identity_ed_sk(w->b), w->bundle), "prekey encode");
    s_check(dm_scope(w->a, identity_ed_pk(w->b), w->scope), "scope");
    s_check(dm_x3dh_initiate(w->a, identity_ed_pk(w->b), &w->spk, w->h.ek_pub, w->root), "x3dh");
    w->h.spk_id = w->spk.spk_id;
    w->h.day0 = (uint32_t)((S_NOW_MS - 60000) / S_DAY_MS);
    w->h.day = w->h.day0;
}

/*  Seals content as DM number seq from A to B, day_step days after day0. */
static size_t
s_dm(const world_t *w, uint64_t seq, uint32_t day_step, uint64_t expires, const uint8_t *content,
     size_t content_len, uint8_t *out, size_t cap)
{
    envelope_t fields;
    memset(&fields, 0, sizeof fields);
    fields.version = PARLEY_ENVELOPE_VERSION;
    fields.kind = ENVELOPE_KIND_DM;
    memcpy(fields.author, identity_ed_pk(w->a), 32);
    memcpy(fields.scope, w->scope, 32);
    fields.seq = seq;
    fields.ts_ms = S_NOW_MS - 60000 + seq;
    fields.expires_ms = expires;
    dm_header_t h = w->h;
    h.day = w->h.day0 + day_step;
    uint8_t key[32];
    memcpy(key, w->root, sizeof key);
    s_check(dm_chain_advance(key, h.day0, h.day), "chain");
    size_t len = 0;
    s_check(dm_envelope_seal(w->a, &fields, &h, key, content, content_len, out, cap, &len),
            "dm seal");
    sodium_memzero(key, sizeof key);
    return len;
}

static size_t
s_text(const char *text, uint8_t *out, size_t cap)
{
    size_t len = 0;
    s_check(content_encode_text(text, strlen(text), out, cap, &len), "text");
    return len;
}

/* ---- one function per target ---- */

static void
s_content(void)
{
    uint8_t out[2048];
    s_write("content", "text-ascii", out, s_text("hello, world", out, sizeof out));
    s_write("content", "text-utf8", out,
            s_text("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad", out, sizeof out));
    uint8_t ids[3 * 32];
    for (size_t i = 0; i < sizeof ids; i++) {
        ids[i] = (uint8_t)i;
    }
    size_t len = 0;
    s_check(content_encode_receipt(RECEIPT_DELIVERED, ids, 1, out, sizeof out, &len), "rcpt");
    s_write("content", "receipt-delivered", out, len);
    s_check(content_encode_receipt(RECEIPT_READ, ids, 3, out, sizeof out, &len), "rcpt");
    s_write("content", "receipt-read-3", out, len);
}

//  A channel's settings and aggregated receipts (no randomness: written
//  after every seed that draws some).
static void
s_content_chan(void)
{
    uint8_t out[2048];
    size_t len = 0;
    const char *topic = "release \xe2\x80\x94 Friday";
    s_check(content_encode_chan_meta("ops", 3, topic, strlen(topic), out, sizeof out, &len),
            "meta");
    s_write("content", "chan-meta", out, len);
    content_mark_t m[2];
    memset(m[0].author, 0x11, 32);
    m[0].seq = 7;
    memset(m[1].author, 0x22, 32);
    m[1].seq = 1u << 20;
    s_check(content_encode_chan_read(RECEIPT_READ, m, 2, out, sizeof out, &len), "chan read");
    s_write("content", "chan-read-2", out, len);
    s_check(content_encode_chan_meta_again(1700000000000ull, m[0].author, 3, "ops", 3, topic,
                                           strlen(topic), out, sizeof out, &len),
            "meta again");
    s_write("content", "chan-meta-again", out, len);

    //  fuzz_chan: a receiver's chain saved with two skipped steps.
    static uint8_t saved[1 + CHAN_RX_SAVED_MAX];
    uint8_t ck[32];
    memset(ck, 0x5c, sizeof ck);
    chan_rx_t *rx = chan_rx_new(ck, 0);
    if (!rx || chan_rx_used(rx, 2) != PARLEY_OK) {
        s_die("chan rx");
    }
    saved[0] = 2;
    s_check(chan_rx_save(rx, saved + 1, sizeof saved - 1, &len), "chan rx save");
    chan_rx_destroy(&rx);
    s_write("chan", "rx-saved", saved, 1 + len);
}

static void
s_prekey(const world_t *w)
{
    s_write("prekey", "bundle", w->bundle, sizeof w->bundle);
    prekey_t other;
    uint8_t secret[32];
    uint8_t bundle[DM_PREKEY_BUNDLE_LEN];
    s_check(dm_prekey_generate(identity_ed_pk(w->a), 1, S_NOW_MS, &other, secret), "prekey");
    sodium_memzero(secret, sizeof secret);
    s_check(dm_prekey_encode(&other, identity_ed_sk(w->a), bundle), "prekey encode");
    s_write("prekey", "bundle-a", bundle, sizeof bundle);
}

static void
s_keyfile(const world_t *w)
{
    uint8_t file[IDENTITY_FILE_MAX];
    size_t len = 0;
    s_check(identity_file_encode(w->a, NULL, 0, 0, 0, file, sizeof file, &len), "plain");
    s_write("keyfile", "plain", file, len);
    //  Minimum Argon2id cost, so fuzz_keyfile opens them (see its comment).
    //  Passphrase "x" is the one fuzz_keyfile tries: the success path.
    s_check(identity_file_encode(w->a, "x", 1, crypto_pwhash_OPSLIMIT_MIN,
                                 crypto_pwhash_MEMLIMIT_MIN, file, sizeof file, &len),
            "sealed");
    s_write("keyfile", "sealed-min-x", file, len);
    s_check(identity_file_encode(w->b, "not x", 5, crypto_pwhash_OPSLIMIT_MIN,
                                 crypto_pwhash_MEMLIMIT_MIN, file, sizeof file, &len),
            "sealed");
    s_write("keyfile", "sealed-min-wrong-pass", file, len);
}

static void
s_envelopes_and_frames(const world_t *w)
{
    static uint8_t env1[PARLEY_ENVELOPE_MAX];
    static uint8_t env2[PARLEY_ENVELOPE_MAX];
    static uint8_t frame[PARLEY_FRAME_MAX];
    uint8_t content[1024];

    size_t clen = s_text("hello from the fuzz corpus", content, sizeof content);
    size_t len1 = s_dm(w, 1, 0, 0, content, clen, env1, sizeof env1);
    s_write("envelope", "dm-text", env1, len1);

    //  A later day of the chain, a disappearing message, a longer bucket.
    char longer[300];
    memset(longer, 'z', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    clen = s_text(longer, content, sizeof content);
    size_t len2 = s_dm(w, 2, 1, S_NOW_MS + S_DAY_MS, content, clen, env2, sizeof env2);
    s_write("envelope", "dm-day1-expiring", env2, len2);

    uint8_t id[32];
    envelope_t env;
    s_check(envelope_check(env1, len1, S_NOW_MS, &env, id), "check");
    size_t rlen = 0;
    s_check(content_encode_receipt(RECEIPT_READ, id, 1, content, sizeof content, &rlen), "r");
    size_t len3 = s_dm(w, 3, 0, 0, content, rlen, env2 + len2, sizeof env2 - len2);
    s_write("envelope", "dm-receipt", env2 + len2, len3);

    size_t flen = 0;
    const char *eps[2] = { "tcp://127.0.0.1:4000", "tcp://[::1]:4001" };
    s_check(frame_encode_hello(identity_ed_pk(w->a), 1, "main office", eps, 2, frame, sizeof frame,
                               &flen),
            "hello");
    s_write("frame", "hello", frame, flen);
    s_check(frame_encode_hello(identity_ed_pk(w->b), 0, NULL, NULL, 0, frame, sizeof frame, &flen),
            "hello");
    s_write("frame", "hello-bare", frame, flen);
    s_check(frame_encode_prekey(w->bundle, sizeof w->bundle, frame, sizeof frame, &flen), "pk");
    s_write("frame", "prekey", frame, flen);

    frame_batch_t b;
    frame_batch_begin(&b, frame, sizeof frame);
    s_check(frame_batch_add(&b, env1, len1), "batch");
    s_check(frame_batch_add(&b, env2, len2), "batch");
    s_write("frame", "envelopes-2", frame, frame_batch_finish(&b));

    uint8_t ids[3 * 32];
    memcpy(ids, id, 32);
    memset(ids + 32, 0x5a, 64);
    s_check(frame_encode_ack(ids, 3, frame, sizeof frame, &flen), "ack");
    s_write("frame", "ack-3", frame, flen);
    s_check(frame_encode_ping(FRAME_PING, 0x0102030405060708ull, frame, sizeof frame, &flen),
            "ping");
    s_write("frame", "ping", frame, flen);
    s_check(frame_encode_ping(FRAME_PONG, 0x0102030405060708ull, frame, sizeof frame, &flen),
            "pong");
    s_write("frame", "pong", frame, flen);
    s_check(frame_encode_bye(1, frame, sizeof frame, &flen), "bye");
    s_write("frame", "bye", frame, flen);
}

//  JOIN (each step) and NETKEY, signed by a for real.
static void
s_private_frames(const world_t *w)
{
    uint8_t frame[512];
    size_t flen = 0;
    uint8_t net[32], heads[3 * 32], secret[32], sig[64];
    memset(net, 0x6e, sizeof net);
    for (size_t i = 0; i < 3; i++) {
        memset(heads + i * 32, (int)(0x20 + 0x20 * i), 32);
    }
    s_check(frame_encode_join_ask(net, frame, sizeof frame, &flen), "join ask");
    s_write("frame", "join-ask", frame, flen);
    s_check(frame_encode_join_heads(heads, 3, frame, sizeof frame, &flen), "join heads");
    s_write("frame", "join-heads-3", frame, flen);
    s_check(frame_encode_join_done(FRAME_JOIN_ADDED, NULL, 0, frame, sizeof frame, &flen), "done");
    s_write("frame", "join-done-added", frame, flen);
    const char *why = "invite expired";
    s_check(
        frame_encode_join_done(FRAME_JOIN_REFUSED, why, strlen(why), frame, sizeof frame, &flen),
        "done");
    s_write("frame", "join-done-refused", frame, flen);
    randombytes_buf(secret, sizeof secret);
    s_check(netkey_sign(net, 3, secret, identity_ed_sk(w->a), sig), "netkey sign");
    s_check(
        frame_encode_netkey(net, 3, secret, identity_ed_pk(w->a), sig, frame, sizeof frame, &flen),
        "netkey");
    s_write("frame", "netkey", frame, flen);
}

//  One TXT record in fuzz_txt's input form: each item as u8 length, bytes.
static void
s_txt_write(const char *name, const txt_record_t *rec)
{
    uint8_t buf[1024];
    size_t len = 0;
    for (size_t i = 0; i < rec->n; i++) {
        buf[len++] = (uint8_t)rec->lens[i];
        memcpy(buf + len, rec->items[i], rec->lens[i]);
        len += rec->lens[i];
    }
    s_write("txt", name, buf, len);
}

//  Blinded records (SPEC §19.3) sealed under fuzz_txt's two fixed secrets
//  (FUZZ_MDNS_SECRET_1 in fuzz_common.h: 0x6b, then 0x6c) and under another.
static void
s_txt_blinded(const world_t *w)
{
    const uint8_t fills[3] = { 0x6b, 0x6c, 0x01 };
    const char *names[3] = { "blinded-key1", "blinded-key2", "blinded-other-key" };
    for (size_t i = 0; i < 3; i++) {
        uint8_t secret[32], key[32];
        memset(secret, fills[i], sizeof secret);
        s_check(blind_key(secret, key), "blind key");
        txt_record_t rec;
        s_check(txt_encode_blind(key, identity_ed_pk(i == 1 ? w->b : w->a), &rec), "blind txt");
        s_txt_write(names[i], &rec);
    }
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(w->a), id);
    txt_record_t rec;
    s_check(txt_encode(id, "open", &rec), "txt");
    s_txt_write("open", &rec);
}

static void
s_api(const world_t *w)
{
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(w->b), id);
    char line[1024];
    static const char *const fixed[][2] = {
        { "id", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"id\"}" },
        { "status", "{\"jsonrpc\":\"2.0\",\"id\":\"s-1\",\"method\":\"status\",\"params\":{}}" },
        { "subscribe", "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"subscribe\"}" },
        { "notification", "{\"jsonrpc\":\"2.0\",\"method\":\"peers\"}\n" },
        { "contacts-add", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"contacts.add\",\"params\":"
                          "{\"id\":\"x\",\"name\":\"bob\",\"replace\":true}}" },
        { "bad-params", "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"send\",\"params\":[1,2]}" },
        { "batch", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"id\"}]" },
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        s_write("api", fixed[i][0], fixed[i][1], strlen(fixed[i][1]));
    }
    int n = snprintf(line, sizeof line,
                     "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"send\",\"params\":"
                     "{\"peer\":\"%s\",\"text\":\"h\\u00e9llo \\\"there\\\"\"}}",
                     id);
    s_write("api", "send", line, (size_t)n);
    n = snprintf(line, sizeof line,
                 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"history\",\"params\":"
                 "{\"peer\":\"%.8s\",\"limit\":20}}",
                 id);
    s_write("api", "history", line, (size_t)n);
}

/* ---- roster: single bodies, and a log of records (see fuzz_roster.c) ---- */

typedef struct {
    uint8_t buf[4096]; /* the records */
    size_t len;        /* bytes used */
    size_t n;          /* records */
} s_roster_log_t;

//  Appends a record by fuzz key author_k at ts byte ts; returns its id.
static void
s_roster_rec(s_roster_log_t *log, uint8_t author_k, uint8_t ts, const roster_event_t *ev)
{
    uint8_t body[ROSTER_BODY_MAX];
    size_t len = 0;
    s_check(roster_event_encode(ev, body, sizeof body, &len), "roster event");
    if (len + 4 > sizeof log->buf - log->len) {
        s_die("roster log too long");
    }
    uint8_t *p = log->buf + log->len;
    p[0] = author_k;
    p[1] = ts;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    memcpy(p + 4, body, len);
    log->len += 4 + len;
    log->n++;
}

/* ---- chan: a KEYS body and a message body, each behind its selector byte ---- */

static void
s_chan(void)
{
    static uint8_t out[1 + PARLEY_BODY_MAX];
    uint8_t id[32], key[32], salt[CHAN_SALT_LEN], creator[32];
    s_rng_buf(creator, sizeof creator);
    s_rng_buf(salt, sizeof salt);
    chan_id(creator, salt, id);
    s_rng_buf(key, sizeof key);
    chan_keys_t k = { .epoch = 2, .part = 0, .parts = 1, .n = 2 };
    chan_key_id(id, k.epoch, key, k.key_id);
    s_rng_buf(k.binding, sizeof k.binding);
    s_rng_buf(k.nonce, sizeof k.nonce);
    size_t len = 0;
    out[0] = 0;
    s_check(chan_keys_begin(&k, out + 1, sizeof out - 1, &len), "chan keys");
    for (size_t i = 0; i < k.n; i++) {
        uint8_t rcpt[32], ek_pub[32], day_key[32];
        memset(rcpt, (int)(0x10 * (i + 1)), sizeof rcpt);
        s_rng_buf(ek_pub, sizeof ek_pub);
        //  The fuzz target opens entries with day key { 1, 0, ... }: the
        //  first entry is sealed under it, so it opens.
        memset(day_key, 0, sizeof day_key);
        day_key[0] = i == 0 ? 1 : 2;
        chan_keys_entry_t e = { rcpt, ek_pub, 3, 20, 21, NULL };
        s_check(chan_keys_entry_seal(id, &k, &e, day_key, key,
                                     out + 1 + CHAN_KEYS_FIXED + i * CHAN_KEYS_ENTRY_LEN),
                "chan entry");
    }
    s_write("chan", "keys", out, 1 + len);
    //  A message body under the all-zero message key and envelope header the
    //  target opens with.
    static const uint8_t env_header[PARLEY_ENVELOPE_HEADER_LEN], mk[32];
    chan_msg_header_t h = { .epoch = 2, .counter = 7 };
    memcpy(h.key_id, k.key_id, sizeof h.key_id);
    out[0] = 1;
    s_check(chan_body_seal(env_header, &h, mk, (const uint8_t *)"\x01hi all", 7, out + 1,
                           sizeof out - 1, &len),
            "chan body");
    s_write("chan", "body", out, 1 + len);

    //  fuzz_roster: a channel's control log by the fuzz keys (key 0 creates
    //  it with an all-zero salt): an admin, a reader, a REKEY, a removal.
    uint8_t ids[5][32];
    for (int i = 0; i < 5; i++) {
        memset(ids[i], i + 1, 32);
    }
    uint8_t pk[4][32], sk[64], seed[32];
    for (int i = 0; i < 4; i++) {
        memset(seed, 0xa0 + i, sizeof seed);
        s_check(crypto_sign_seed_keypair(pk[i], sk, seed) == 0 ? 0 : -1, "key");
    }
    sodium_memzero(sk, sizeof sk);
    s_roster_log_t log;
    memset(&log, 0, sizeof log);
    roster_event_t ev = { .type = ROSTER_CHANNEL, .flags = ROSTER_CHAN_SHARED };
    s_roster_rec(&log, 0, 0, &ev);
    roster_event_t add = { .type = ROSTER_ADD, .n_parents = 1, .parents = ids[0], .role = 2 };
    memcpy(add.key, pk[1], 32);
    s_roster_rec(&log, 0, 1, &add);
    add.parents = ids[1];
    add.role = ROSTER_ROLE_READER;
    memcpy(add.key, pk[2], 32);
    s_roster_rec(&log, 1, 2, &add);
    roster_event_t rekey = { .type = ROSTER_REKEY, .n_parents = 1, .parents = ids[2] };
    s_roster_rec(&log, 1, 3, &rekey);
    roster_event_t rm = { .type = ROSTER_REMOVE, .n_parents = 1, .parents = ids[3] };
    memcpy(rm.key, pk[2], 32);
    s_roster_rec(&log, 0, 4, &rm);
    s_write("roster", "channel-log", log.buf, log.len);
}

static void
s_roster(void)
{
    uint8_t pk[4][32];
    uint8_t sk[64];
    uint8_t seed[32];
    for (int k = 0; k < 4; k++) {
        memset(seed, 0xa0 + k, sizeof seed);
        s_check(crypto_sign_seed_keypair(pk[k], sk, seed) == 0 ? 0 : -1, "key");
    }
    uint8_t inv_pk[32];
    uint8_t inv_sk[64];
    memset(seed, 0xb0, sizeof seed);
    s_check(crypto_sign_seed_keypair(inv_pk, inv_sk, seed) == 0 ? 0 : -1, "invite key");
    uint8_t net[32];
    uint8_t salt[ROSTER_SALT_LEN] = { 0 };
    roster_network_id(pk[0], salt, net);
    uint8_t ids[8][32];
    for (int k = 0; k < 8; k++) {
        memset(ids[k], k + 1, 32);
    }
    s_roster_log_t log;
    memset(&log, 0, sizeof log);
    roster_event_t ev = { .type = ROSTER_CREATE, .text = (const uint8_t *)"acme", .text_len = 4 };
    s_roster_rec(&log, 0, 0, &ev);
    uint8_t body[ROSTER_BODY_MAX];
    size_t len = 0;
    s_check(roster_event_encode(&ev, body, sizeof body, &len), "create");
    s_write("roster", "create", body, len);
    roster_event_t inv = { .type = ROSTER_INVITE,
                           .n_parents = 1,
                           .parents = ids[0],
                           .role = 1,
                           .expires_ms = 1790000001000ull,
                           .uses = 2 };
    memcpy(inv.key, inv_pk, 32);
    s_roster_rec(&log, 0, 1, &inv);
    s_check(roster_event_encode(&inv, body, sizeof body, &len), "invite");
    s_write("roster", "invite", body, len);
    roster_event_t join = { .type = ROSTER_JOIN,
                            .n_parents = 1,
                            .parents = ids[1],
                            .text = (const uint8_t *)"bob",
                            .text_len = 3 };
    memcpy(join.key, inv_pk, 32);
    s_check(roster_join_proof_sign(inv_sk, net, pk[1], join.text, join.text_len, join.proof),
            "join proof");
    s_roster_rec(&log, 1, 2, &join);
    s_check(roster_event_encode(&join, body, sizeof body, &len), "join");
    s_write("roster", "join", body, len);
    roster_event_t add = { .type = ROSTER_ADD,
                           .n_parents = 1,
                           .parents = ids[2],
                           .role = 2,
                           .text = (const uint8_t *)"carol",
                           .text_len = 5 };
    memcpy(add.key, pk[2], 32);
    s_roster_rec(&log, 0, 3, &add);
    //  Two concurrent events under the ADD: a removal and the removed's act.
    roster_event_t rm = { .type = ROSTER_REMOVE,
                          .n_parents = 1,
                          .parents = ids[3],
                          .text = (const uint8_t *)"bye",
                          .text_len = 3 };
    memcpy(rm.key, pk[2], 32);
    s_roster_rec(&log, 0, 4, &rm);
    s_check(roster_event_encode(&rm, body, sizeof body, &len), "remove");
    s_write("roster", "remove", body, len);
    roster_event_t relay = { .type = ROSTER_RELAY, .n_parents = 1, .parents = ids[3], .on = 1 };
    memcpy(relay.key, pk[1], 32);
    s_roster_rec(&log, 2, 5, &relay);
    roster_event_t role = { .type = ROSTER_ROLE, .n_parents = 2, .parents = ids[4], .role = 2 };
    memcpy(role.key, pk[1], 32);
    s_roster_rec(&log, 0, 6, &role);
    s_write("roster", "log", log.buf, log.len);
}

/*  Invite codes: one endpoint; three (a DNS name at another node) pasted
 *  in upper case and wrapped; the longest code. */
static void
s_invite(const world_t *w)
{
    invite_code_t c;
    memset(&c, 0, sizeof c);
    randombytes_buf(c.network_id, sizeof c.network_id);
    invite_secret_new(c.secret);
    c.expires_ms = S_NOW_MS + S_DAY_MS;
    memcpy(c.inviter_pk, identity_ed_pk(w->a), 32);
    c.n = 1;
    snprintf(c.endpoints[0].endpoint, sizeof c.endpoints[0].endpoint, "tcp://192.168.10.23:40123");
    memcpy(c.endpoints[0].pk, c.inviter_pk, 32);
    char text[INVITE_CODE_MAX];
    size_t len = 0;
    s_check(invite_code_encode(&c, text, sizeof text, &len), "invite");
    s_write("invite", "one", text, len);

    c.n = 3;
    snprintf(c.endpoints[1].endpoint, sizeof c.endpoints[1].endpoint, "tcp://relay.example:7400");
    memcpy(c.endpoints[1].pk, identity_ed_pk(w->b), 32);
    snprintf(c.endpoints[2].endpoint, sizeof c.endpoints[2].endpoint, "tcp://10.0.0.07:1");
    memcpy(c.endpoints[2].pk, c.inviter_pk, 32);
    s_check(invite_code_encode(&c, text, sizeof text, &len), "invite");
    char wrapped[2 * INVITE_CODE_MAX];
    size_t m = 0;
    wrapped[m++] = ' ';
    for (size_t i = 0; i < len; i++) {
        if (i % 72 == 71) {
            wrapped[m++] = '\n';
        }
        char ch = text[i];
        wrapped[m++] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
    }
    wrapped[m++] = '\n';
    s_write("invite", "three-wrapped", wrapped, m);
    //  The same as a bare record without its checksum, for the target's
    //  second reading (fuzz_invite.c).
    uint8_t rec[INVITE_RECORD_MAX];
    size_t chars = len - INVITE_PREFIX_LEN;
    size_t bytes = chars / 8 * 5 + chars % 8 * 5 / 8;
    s_check(b32_decode(text + INVITE_PREFIX_LEN, rec, bytes), "b32");
    s_write("invite", "three-record", rec, bytes - INVITE_CHECK_LEN);

    c.n = INVITE_ENDPOINTS_MAX;
    for (size_t i = 0; i < c.n; i++) {
        char *ep = c.endpoints[i].endpoint;
        memcpy(ep, "tcp://", 6);
        memset(ep + 6, (int)('a' + i), PARLEY_ENDPOINT_MAX - 12);
        memcpy(ep + PARLEY_ENDPOINT_MAX - 6, ":65535", 7);
        memcpy(c.endpoints[i].pk, identity_ed_pk(w->b), 32);
    }
    s_check(invite_code_encode(&c, text, sizeof text, &len), "invite");
    s_write("invite", "max", text, len);
}

int
main(int argc, char **argv)
{
    s_root = argc > 1 ? argv[1] : "tests/fuzz/corpus";
    memset(s_rng_seed, 0x42, sizeof s_rng_seed);
    if (randombytes_set_implementation(&s_rng) != 0 || sodium_init() < 0) {
        s_die("libsodium failed to initialise");
    }
    if (mkdir(s_root, 0755) != 0 && errno != EEXIST) {
        s_die("cannot create the corpus root");
    }
    world_t w;
    memset(&w, 0, sizeof w);
    s_world(&w);
    s_content();
    s_prekey(&w);
    s_keyfile(&w);
    s_envelopes_and_frames(&w);
    s_api(&w);
    s_roster();
    s_invite(&w);
    s_private_frames(&w);
    s_txt_blinded(&w);
    s_chan(); // last: a new target's seeds leave the others' bytes as they were
    s_content_chan();
    identity_destroy(&w.a);
    identity_destroy(&w.b);
    printf("gen_corpus: wrote the seed corpora under %s\n", s_root);
    return 0;
}
