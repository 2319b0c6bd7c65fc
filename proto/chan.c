/*  proto/chan.c — a channel's ids, chains, message bodies and KEYS bodies
 *  (chan.h, proto/SPEC.md §21).
 *
 *  KEYS body (integers big-endian):
 *
 *    0  1   version (1)
 *    1  4   epoch
 *    5  8   key_id      names the key (chan_key_id)
 *    13 32  binding     what the epoch answers (SPEC §21.3)
 *    45 16  nonce       random per body
 *    61 1   part        0..parts-1
 *    62 1   parts       1..255: the bodies this key's entries fill
 *    63 2   n           1..CHAN_KEYS_MAX entries, recipients strictly ascending
 *    65     n × entry:
 *           0  32 recipient Ed25519 pk
 *           32 32 ek_pub    the author's DM sending session to it (dm.h)
 *           64 4  spk_id    its recipient prekey
 *           68 4  day0      its first day
 *           72 4  day       the day whose chain key seals the entry (>= day0)
 *           76 48 ChaCha20-Poly1305-IETF(ek, 12 zero bytes, key,
 *                   AD = channel_id || u32 epoch || key_id || binding)
 *           ek = BLAKE2b-256(key = that day's chain key, "parley/chan-key/v1\0"
 *                || channel_id || u32 epoch || key_id || nonce || recipient)
 *
 *  ek is unique per (body nonce, recipient), so the fixed AEAD nonce never
 *  repeats under one key. Owns nothing.
 */
#include "chan.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "dm.h"
#include "selftest.h"

#define S_MSG_CTX "prlycmsg"
#define S_CHAIN_CTX "prlycchn"
#define S_AD_LEN (PARLEY_ENVELOPE_HEADER_LEN + CHAN_MSG_HEADER_LEN)
#define S_ENTRY_AD_LEN (32u + 4u + CHAN_KEY_ID_LEN + 32u)

/* -------------------------------------------------------------------- ids */

static void
s_hash_domain(crypto_generichash_state *st, const uint8_t *key, size_t key_len, const char *domain,
              size_t domain_len)
{
    crypto_generichash_init(st, key, key_len, 32);
    crypto_generichash_update(st, (const uint8_t *)domain, domain_len);
}

void
chan_id(const uint8_t creator_pk[32], const uint8_t salt[CHAN_SALT_LEN], uint8_t id[32])
{
    crypto_generichash_state st;
    s_hash_domain(&st, NULL, 0, CHAN_ID_DOMAIN, sizeof CHAN_ID_DOMAIN);
    crypto_generichash_update(&st, creator_pk, 32);
    crypto_generichash_update(&st, salt, CHAN_SALT_LEN);
    crypto_generichash_final(&st, id, 32);
}

void
chan_msg_scope(const uint8_t channel_id[32], uint8_t scope[32])
{
    crypto_generichash_state st;
    s_hash_domain(&st, NULL, 0, CHAN_SCOPE_DOMAIN, sizeof CHAN_SCOPE_DOMAIN);
    crypto_generichash_update(&st, channel_id, 32);
    crypto_generichash_final(&st, scope, 32);
}

static void
s_put_epoch(crypto_generichash_state *st, uint32_t epoch)
{
    uint8_t be[4] = { (uint8_t)(epoch >> 24), (uint8_t)(epoch >> 16), (uint8_t)(epoch >> 8),
                      (uint8_t)epoch };
    crypto_generichash_update(st, be, sizeof be);
}

void
chan_key_id(const uint8_t channel_id[32], uint32_t epoch, const uint8_t key[32],
            uint8_t key_id[CHAN_KEY_ID_LEN])
{
    crypto_generichash_state st;
    s_hash_domain(&st, NULL, 0, CHAN_KEYID_DOMAIN, sizeof CHAN_KEYID_DOMAIN);
    crypto_generichash_update(&st, channel_id, 32);
    s_put_epoch(&st, epoch);
    crypto_generichash_update(&st, key, 32);
    uint8_t h[32];
    crypto_generichash_final(&st, h, sizeof h);
    memcpy(key_id, h, CHAN_KEY_ID_LEN);
    sodium_memzero(&st, sizeof st);
}

void
chan_binding(const uint8_t channel_id[32], const uint8_t *events, size_t n, uint8_t out[32])
{
    crypto_generichash_state st;
    s_hash_domain(&st, NULL, 0, CHAN_BINDING_DOMAIN, sizeof CHAN_BINDING_DOMAIN);
    crypto_generichash_update(&st, channel_id, 32);
    if (n > 0) {
        crypto_generichash_update(&st, events, n * 32);
    }
    crypto_generichash_final(&st, out, 32);
}

/* ----------------------------------------------------------------- chains */

void
chan_chain_start(const uint8_t key[32], const uint8_t channel_id[32], uint32_t epoch,
                 const uint8_t sender_pk[32], uint8_t ck[32])
{
    crypto_generichash_state st;
    s_hash_domain(&st, key, 32, CHAN_CHAIN_DOMAIN, sizeof CHAN_CHAIN_DOMAIN);
    crypto_generichash_update(&st, channel_id, 32);
    s_put_epoch(&st, epoch);
    crypto_generichash_update(&st, sender_pk, 32);
    crypto_generichash_final(&st, ck, 32);
    sodium_memzero(&st, sizeof st); // the state holds the keyed block
}

void
chan_chain_step(uint8_t ck[32], uint8_t mk[32])
{
    uint8_t next[32];
    /* Cannot fail: lengths are within crypto_kdf's bounds. */
    (void)crypto_kdf_derive_from_key(mk, 32, 1, S_MSG_CTX, ck);
    (void)crypto_kdf_derive_from_key(next, sizeof next, 2, S_CHAIN_CTX, ck);
    memcpy(ck, next, sizeof next);
    sodium_memzero(next, sizeof next);
}

int
chan_chain_seek(uint8_t ck[32], uint32_t from, uint32_t to)
{
    if (!ck || to < from) {
        return PARLEY_ERR_STATE;
    }
    if (to - from > CHAN_MAX_STEPS) {
        return PARLEY_ERR_LIMIT;
    }
    uint8_t mk[32];
    for (uint32_t i = from; i < to; i++) {
        chan_chain_step(ck, mk);
    }
    sodium_memzero(mk, sizeof mk);
    return PARLEY_OK;
}

/* --------------------------------------------------------- the receiver */

typedef struct {
    uint32_t counter; /* the step */
    uint8_t mk[32];   /* its message key */
} s_skipped_t;

struct chan_rx {
    uint8_t ck[32]; /* chain key of step next */
    uint32_t next;  /* the next step not read */
    size_t n;       /* skipped keys held, oldest first */
    s_skipped_t skipped[CHAN_SKIP_MAX];
};

chan_rx_t *
chan_rx_new(const uint8_t ck[32], uint32_t next)
{
    chan_rx_t *self = sodium_malloc(sizeof *self);
    if (!self) {
        return NULL;
    }
    memset(self, 0, sizeof *self);
    memcpy(self->ck, ck, 32);
    self->next = next;
    return self;
}

void
chan_rx_destroy(chan_rx_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    sodium_memzero(*self_p, sizeof **self_p);
    sodium_free(*self_p);
    *self_p = NULL;
}

static long
s_rx_find(const chan_rx_t *self, uint32_t counter)
{
    for (size_t i = 0; i < self->n; i++) {
        if (self->skipped[i].counter == counter) {
            return (long)i;
        }
    }
    return -1;
}

int
chan_rx_key(const chan_rx_t *self, uint32_t counter, uint8_t mk[32])
{
    if (!self || !mk) {
        return PARLEY_ERR_STATE;
    }
    if (counter < self->next) {
        long i = s_rx_find(self, counter);
        if (i < 0) {
            return PARLEY_ERR_DUPLICATE;
        }
        memcpy(mk, self->skipped[i].mk, 32);
        return PARLEY_OK;
    }
    if (counter - self->next > CHAN_SKIP_MAX || counter == UINT32_MAX) {
        return PARLEY_ERR_LIMIT; // the last step is never used: next would wrap
    }
    uint8_t ck[32];
    memcpy(ck, self->ck, 32);
    int rc = chan_chain_seek(ck, self->next, counter); // at most CHAN_SKIP_MAX steps
    if (rc == PARLEY_OK) {
        chan_chain_step(ck, mk);
    }
    sodium_memzero(ck, sizeof ck);
    return rc;
}

int
chan_rx_used(chan_rx_t *self, uint32_t counter)
{
    if (!self) {
        return PARLEY_ERR_STATE;
    }
    if (counter < self->next) {
        long i = s_rx_find(self, counter);
        if (i < 0) {
            return PARLEY_ERR_DUPLICATE;
        }
        self->n--;
        memmove(&self->skipped[i], &self->skipped[i + 1],
                (self->n - (size_t)i) * sizeof self->skipped[0]);
        sodium_memzero(&self->skipped[self->n], sizeof self->skipped[0]);
        return PARLEY_OK;
    }
    if (counter - self->next > CHAN_SKIP_MAX || counter == UINT32_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    uint8_t mk[32];
    while (self->next < counter) {
        //  A skipped step: its key is kept, the oldest forgotten for room.
        if (self->n == CHAN_SKIP_MAX) {
            memmove(&self->skipped[0], &self->skipped[1], (self->n - 1) * sizeof self->skipped[0]);
            self->n--;
        }
        self->skipped[self->n].counter = self->next;
        chan_chain_step(self->ck, self->skipped[self->n].mk);
        self->n++;
        self->next++;
    }
    chan_chain_step(self->ck, mk); // the key of step counter, used: gone
    sodium_memzero(mk, sizeof mk);
    self->next = counter + 1;
    return PARLEY_OK;
}

uint32_t
chan_rx_next(const chan_rx_t *self)
{
    return self ? self->next : 0;
}

size_t
chan_rx_skipped(const chan_rx_t *self)
{
    return self ? self->n : 0;
}

int
chan_rx_save(const chan_rx_t *self, uint8_t *out, size_t cap, size_t *len)
{
    if (!self || !out || !len) {
        return PARLEY_ERR_STATE;
    }
    *len = 0;
    size_t need = CHAN_RX_SAVED_FIXED + self->n * CHAN_RX_SAVED_ENTRY;
    if (cap < need) {
        return PARLEY_ERR_LIMIT;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, cap);
    bytes_put(&w, self->ck, 32);
    bytes_put_u32(&w, self->next);
    bytes_put_u16(&w, (uint16_t)self->n);
    for (size_t i = 0; i < self->n; i++) {
        bytes_put_u32(&w, self->skipped[i].counter);
        bytes_put(&w, self->skipped[i].mk, 32);
    }
    *len = need;
    return PARLEY_OK;
}

chan_rx_t *
chan_rx_load(const uint8_t *buf, size_t len, int *err)
{
    *err = PARLEY_ERR_MALFORMED;
    if (!buf || len < CHAN_RX_SAVED_FIXED) {
        return NULL;
    }
    bytes_reader_t r;
    bytes_reader_init(&r, buf, len);
    const uint8_t *ck = bytes_view(&r, 32);
    uint32_t next = bytes_get_u32(&r);
    size_t n = bytes_get_u16(&r);
    if (!bytes_reader_ok(&r) || n > CHAN_SKIP_MAX
        || len != CHAN_RX_SAVED_FIXED + n * CHAN_RX_SAVED_ENTRY) {
        return NULL;
    }
    chan_rx_t *self = chan_rx_new(ck, next);
    if (!self) {
        *err = PARLEY_ERR_NOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t counter = bytes_get_u32(&r);
        //  Skipped steps are behind next, oldest first, each once.
        if (counter >= next || (i > 0 && counter <= self->skipped[i - 1].counter)) {
            chan_rx_destroy(&self);
            return NULL;
        }
        self->skipped[i].counter = counter;
        memcpy(self->skipped[i].mk, bytes_view(&r, 32), 32);
        self->n++;
    }
    *err = PARLEY_OK;
    return self;
}

/* --------------------------------------------------------- message bodies */

size_t
chan_body_len(size_t content_len)
{
    size_t bucket = dm_bucket(content_len);
    return bucket ? CHAN_MSG_HEADER_LEN + bucket + PARLEY_AEAD_TAG_LEN : 0;
}

static void
s_ad(const uint8_t env_header[PARLEY_ENVELOPE_HEADER_LEN], const uint8_t *body,
     uint8_t ad[S_AD_LEN])
{
    memcpy(ad, env_header, PARLEY_ENVELOPE_HEADER_LEN);
    memcpy(ad + PARLEY_ENVELOPE_HEADER_LEN, body, CHAN_MSG_HEADER_LEN);
}

int
chan_body_seal(const uint8_t env_header[PARLEY_ENVELOPE_HEADER_LEN], const chan_msg_header_t *h,
               const uint8_t mk[32], const uint8_t *content, size_t content_len, uint8_t *out,
               size_t cap, size_t *out_len)
{
    if (!env_header || !h || !mk || !out || !out_len || (!content && content_len)) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    size_t bucket = dm_bucket(content_len);
    if (bucket == 0) {
        return PARLEY_ERR_LIMIT;
    }
    size_t len = CHAN_MSG_HEADER_LEN + bucket + PARLEY_AEAD_TAG_LEN;
    if (cap < len) {
        return PARLEY_ERR_LIMIT;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, CHAN_MSG_HEADER_LEN);
    bytes_put_u8(&w, CHAN_VERSION);
    bytes_put_u32(&w, h->epoch);
    bytes_put(&w, h->key_id, CHAN_KEY_ID_LEN);
    bytes_put_u32(&w, h->counter);
    uint8_t *nonce = out + CHAN_MSG_HEADER_LEN - CHAN_NONCE_LEN;
    randombytes_buf(nonce, CHAN_NONCE_LEN);
    //  The padded content is built in place, then encrypted in place.
    uint8_t *pt = out + CHAN_MSG_HEADER_LEN;
    if (content_len) {
        memmove(pt, content, content_len);
    }
    size_t padded = 0;
    int rc = PARLEY_ERR_CRYPTO;
    if (sodium_pad(&padded, pt, content_len, bucket, bucket) == 0 && padded == bucket) {
        uint8_t ad[S_AD_LEN];
        s_ad(env_header, out, ad);
        if (crypto_aead_xchacha20poly1305_ietf_encrypt(pt, NULL, pt, bucket, ad, sizeof ad, NULL,
                                                       nonce, mk)
            == 0) {
            rc = PARLEY_OK;
        }
    }
    if (rc != PARLEY_OK) {
        sodium_memzero(out, len); // never leave plaintext in the caller's buffer
        return rc;
    }
    *out_len = len;
    return PARLEY_OK;
}

int
chan_body_parse(const uint8_t *body, size_t body_len, chan_msg_header_t *h)
{
    if (!body || !h) {
        return PARLEY_ERR_STATE;
    }
    memset(h, 0, sizeof *h);
    if (body_len < 1) {
        return PARLEY_ERR_MALFORMED;
    }
    if (body[0] != CHAN_VERSION) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    if (body_len < CHAN_MSG_HEADER_LEN + PARLEY_AEAD_TAG_LEN
        || !dm_is_bucket(body_len - CHAN_MSG_HEADER_LEN - PARLEY_AEAD_TAG_LEN)) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_reader_t r;
    bytes_reader_init(&r, body + 1, CHAN_MSG_HEADER_LEN - 1 - CHAN_NONCE_LEN);
    h->epoch = bytes_get_u32(&r);
    bytes_get(&r, h->key_id, CHAN_KEY_ID_LEN);
    h->counter = bytes_get_u32(&r);
    return PARLEY_OK;
}

int
chan_body_open(const uint8_t env_header[PARLEY_ENVELOPE_HEADER_LEN], const uint8_t *body,
               size_t body_len, const uint8_t mk[32], uint8_t *content, size_t cap,
               size_t *content_len)
{
    if (!env_header || !mk || !content || !content_len) {
        return PARLEY_ERR_STATE;
    }
    *content_len = 0;
    chan_msg_header_t h;
    int rc = chan_body_parse(body, body_len, &h);
    if (rc != PARLEY_OK) {
        return rc;
    }
    size_t bucket = body_len - CHAN_MSG_HEADER_LEN - PARLEY_AEAD_TAG_LEN;
    if (cap < bucket) {
        return PARLEY_ERR_LIMIT;
    }
    uint8_t ad[S_AD_LEN];
    s_ad(env_header, body, ad);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(content, NULL, NULL, body + CHAN_MSG_HEADER_LEN,
                                                   bucket + PARLEY_AEAD_TAG_LEN, ad, sizeof ad,
                                                   body + CHAN_MSG_HEADER_LEN - CHAN_NONCE_LEN, mk)
        != 0) {
        return PARLEY_ERR_AUTH;
    }
    size_t len = 0;
    if (sodium_unpad(&len, content, bucket, bucket) != 0) {
        sodium_memzero(content, bucket);
        return PARLEY_ERR_MALFORMED; // authentic, yet badly padded: the author's fault
    }
    *content_len = len;
    return PARLEY_OK;
}

/* ------------------------------------------------------------ KEYS bodies */

static int
s_keys_check(const chan_keys_t *k)
{
    if (k->parts == 0 || k->part >= k->parts || k->n == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (k->n > CHAN_KEYS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    return PARLEY_OK;
}

int
chan_keys_decode(const uint8_t *buf, size_t len, chan_keys_t *out)
{
    if (!buf || !out) {
        return PARLEY_ERR_STATE;
    }
    memset(out, 0, sizeof *out);
    if (len > PARLEY_BODY_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (len < 1) {
        return PARLEY_ERR_MALFORMED;
    }
    if (buf[0] != CHAN_VERSION) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    if (len < CHAN_KEYS_FIXED) {
        return PARLEY_ERR_MALFORMED;
    }
    chan_keys_t k = { 0 };
    bytes_reader_t r;
    bytes_reader_init(&r, buf + 1, CHAN_KEYS_FIXED - 1);
    k.epoch = bytes_get_u32(&r);
    bytes_get(&r, k.key_id, CHAN_KEY_ID_LEN);
    bytes_get(&r, k.binding, 32);
    bytes_get(&r, k.nonce, CHAN_KEYS_NONCE_LEN);
    k.part = bytes_get_u8(&r);
    k.parts = bytes_get_u8(&r);
    k.n = bytes_get_u16(&r);
    int rc = s_keys_check(&k);
    if (rc != PARLEY_OK) {
        return rc == PARLEY_ERR_LIMIT ? PARLEY_ERR_MALFORMED : rc; // n past what fits: a bad length
    }
    if (len - CHAN_KEYS_FIXED != k.n * CHAN_KEYS_ENTRY_LEN) {
        return PARLEY_ERR_MALFORMED;
    }
    k.entries = buf + CHAN_KEYS_FIXED;
    for (size_t i = 0; i < k.n; i++) {
        const uint8_t *e = k.entries + i * CHAN_KEYS_ENTRY_LEN;
        if (i > 0 && memcmp(e - CHAN_KEYS_ENTRY_LEN, e, 32) >= 0) {
            return PARLEY_ERR_MALFORMED; // recipients strictly ascending: no one twice
        }
        chan_keys_entry_t ent;
        chan_keys_entry_at(&k, i, &ent);
        if (ent.day < ent.day0) {
            return PARLEY_ERR_MALFORMED;
        }
    }
    *out = k;
    return PARLEY_OK;
}

void
chan_keys_entry_at(const chan_keys_t *k, size_t i, chan_keys_entry_t *out)
{
    const uint8_t *e = k->entries + i * CHAN_KEYS_ENTRY_LEN;
    bytes_reader_t r;
    bytes_reader_init(&r, e + 64, 12);
    out->recipient = e;
    out->ek_pub = e + 32;
    out->spk_id = bytes_get_u32(&r);
    out->day0 = bytes_get_u32(&r);
    out->day = bytes_get_u32(&r);
    out->sealed = e + 76;
}

int
chan_keys_begin(const chan_keys_t *k, uint8_t *out, size_t cap, size_t *len)
{
    if (!k || !out || !len) {
        return PARLEY_ERR_STATE;
    }
    *len = 0;
    int rc = s_keys_check(k);
    if (rc != PARLEY_OK) {
        return rc;
    }
    size_t total = CHAN_KEYS_FIXED + k->n * CHAN_KEYS_ENTRY_LEN;
    if (cap < total) {
        return PARLEY_ERR_LIMIT;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, CHAN_KEYS_FIXED);
    bytes_put_u8(&w, CHAN_VERSION);
    bytes_put_u32(&w, k->epoch);
    bytes_put(&w, k->key_id, CHAN_KEY_ID_LEN);
    bytes_put(&w, k->binding, 32);
    bytes_put(&w, k->nonce, CHAN_KEYS_NONCE_LEN);
    bytes_put_u8(&w, k->part);
    bytes_put_u8(&w, k->parts);
    bytes_put_u16(&w, (uint16_t)k->n);
    *len = total;
    return PARLEY_OK;
}

/*  The entry key and the AEAD's associated data. ek is the caller's secret. */
static void
s_entry_key(const uint8_t channel_id[32], const chan_keys_t *k, const uint8_t recipient[32],
            const uint8_t day_key[32], uint8_t ek[32], uint8_t ad[S_ENTRY_AD_LEN])
{
    crypto_generichash_state st;
    s_hash_domain(&st, day_key, 32, CHAN_ENTRY_DOMAIN, sizeof CHAN_ENTRY_DOMAIN);
    crypto_generichash_update(&st, channel_id, 32);
    s_put_epoch(&st, k->epoch);
    crypto_generichash_update(&st, k->key_id, CHAN_KEY_ID_LEN);
    crypto_generichash_update(&st, k->nonce, CHAN_KEYS_NONCE_LEN);
    crypto_generichash_update(&st, recipient, 32);
    crypto_generichash_final(&st, ek, 32);
    sodium_memzero(&st, sizeof st);
    bytes_writer_t w;
    bytes_writer_init(&w, ad, S_ENTRY_AD_LEN);
    bytes_put(&w, channel_id, 32);
    bytes_put_u32(&w, k->epoch);
    bytes_put(&w, k->key_id, CHAN_KEY_ID_LEN);
    bytes_put(&w, k->binding, 32);
}

int
chan_keys_entry_seal(const uint8_t channel_id[32], const chan_keys_t *k, const chan_keys_entry_t *e,
                     const uint8_t day_key[32], const uint8_t key[32],
                     uint8_t out[CHAN_KEYS_ENTRY_LEN])
{
    if (!channel_id || !k || !e || !e->recipient || !e->ek_pub || !day_key || !key || !out) {
        return PARLEY_ERR_STATE;
    }
    if (e->day < e->day0) {
        return PARLEY_ERR_MALFORMED;
    }
    uint8_t id[CHAN_KEY_ID_LEN];
    chan_key_id(channel_id, k->epoch, key, id);
    if (sodium_memcmp(id, k->key_id, sizeof id) != 0) {
        return PARLEY_ERR_STATE; // k names another key
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, 76);
    bytes_put(&w, e->recipient, 32);
    bytes_put(&w, e->ek_pub, 32);
    bytes_put_u32(&w, e->spk_id);
    bytes_put_u32(&w, e->day0);
    bytes_put_u32(&w, e->day);
    uint8_t ek[32], ad[S_ENTRY_AD_LEN];
    s_entry_key(channel_id, k, e->recipient, day_key, ek, ad);
    static const uint8_t zero_nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    int rc = crypto_aead_chacha20poly1305_ietf_encrypt(out + 76, NULL, key, 32, ad, sizeof ad, NULL,
                                                       zero_nonce, ek);
    sodium_memzero(ek, sizeof ek);
    return rc == 0 ? PARLEY_OK : PARLEY_ERR_CRYPTO;
}

int
chan_keys_entry_open(const uint8_t channel_id[32], const chan_keys_t *k, const chan_keys_entry_t *e,
                     const uint8_t day_key[32], uint8_t key[32])
{
    if (!channel_id || !k || !e || !e->recipient || !e->sealed || !day_key || !key) {
        return PARLEY_ERR_STATE;
    }
    uint8_t ek[32], ad[S_ENTRY_AD_LEN];
    s_entry_key(channel_id, k, e->recipient, day_key, ek, ad);
    static const uint8_t zero_nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    int rc = crypto_aead_chacha20poly1305_ietf_decrypt(
        key, NULL, NULL, e->sealed, CHAN_KEYS_SEALED_LEN, ad, sizeof ad, zero_nonce, ek);
    sodium_memzero(ek, sizeof ek);
    if (rc != 0) {
        sodium_memzero(key, 32);
        return PARLEY_ERR_AUTH;
    }
    uint8_t id[CHAN_KEY_ID_LEN];
    chan_key_id(channel_id, k->epoch, key, id);
    if (sodium_memcmp(id, k->key_id, sizeof id) != 0) {
        sodium_memzero(key, 32);
        return PARLEY_ERR_AUTH; // the author sealed a key other than the one it names
    }
    return PARLEY_OK;
}

/* -------------------------------------------------------------- self-test */

static void
s_test_ids(void)
{
    uint8_t a[32], b[32], salt[CHAN_SALT_LEN] = { 1 }, id[32], id2[32], scope[32];
    memset(a, 0xA1, sizeof a);
    memset(b, 0xB2, sizeof b);
    chan_id(a, salt, id);
    chan_id(a, salt, id2);
    CHECK(memcmp(id, id2, 32) == 0); // deterministic
    chan_id(b, salt, id2);
    CHECK(memcmp(id, id2, 32) != 0); // another creator
    salt[0] = 2;
    chan_id(a, salt, id2);
    CHECK(memcmp(id, id2, 32) != 0); // another salt
    chan_msg_scope(id, scope);
    CHECK(memcmp(scope, id, 32) != 0); // the messages are not in the control scope
    uint8_t k1[32], k2[32], kid1[CHAN_KEY_ID_LEN], kid2[CHAN_KEY_ID_LEN];
    memset(k1, 7, sizeof k1);
    memset(k2, 8, sizeof k2);
    chan_key_id(id, 1, k1, kid1);
    chan_key_id(id, 1, k2, kid2);
    CHECK(memcmp(kid1, kid2, sizeof kid1) != 0);
    chan_key_id(id, 2, k1, kid2);
    CHECK(memcmp(kid1, kid2, sizeof kid1) != 0); // the epoch is in it
    //  The binding: none, one, two events, another channel.
    uint8_t ev[64], b0[32], b1[32], b2[32], b3[32];
    memset(ev, 0x01, 32);
    memset(ev + 32, 0x02, 32);
    chan_binding(id, NULL, 0, b0);
    chan_binding(id, ev, 1, b1);
    chan_binding(id, ev, 2, b2);
    chan_binding(scope, ev, 2, b3);
    CHECK(memcmp(b0, b1, 32) != 0 && memcmp(b1, b2, 32) != 0 && memcmp(b2, b3, 32) != 0);
}

static void
s_test_chain(void)
{
    uint8_t key[32], id[32], alice[32], bob[32];
    memset(key, 0x11, sizeof key);
    memset(id, 0x22, sizeof id);
    memset(alice, 0xA1, sizeof alice);
    memset(bob, 0xB2, sizeof bob);
    uint8_t ck[32], ck2[32], mk[6][32], mk2[32];
    chan_chain_start(key, id, 3, alice, ck);
    memcpy(ck2, ck, 32);
    for (size_t i = 0; i < 6; i++) {
        chan_chain_step(ck, mk[i]);
        CHECK(i == 0 || memcmp(mk[i], mk[i - 1], 32) != 0);
    }
    //  Seeking to step 5 and stepping gives the sixth key; the chain keys met.
    CHECK(chan_chain_seek(ck2, 0, 5) == PARLEY_OK);
    chan_chain_step(ck2, mk2);
    CHECK(memcmp(mk2, mk[5], 32) == 0 && memcmp(ck2, ck, 32) == 0);
    CHECK(chan_chain_seek(ck2, 6, 6) == PARLEY_OK && memcmp(ck2, ck, 32) == 0);
    CHECK(chan_chain_seek(ck2, 7, 6) == PARLEY_ERR_STATE);
    CHECK(chan_chain_seek(ck2, 0, CHAN_MAX_STEPS + 1) == PARLEY_ERR_LIMIT);
    CHECK(memcmp(ck2, ck, 32) == 0); // refused: untouched
    //  Another sender, another epoch: other chains.
    chan_chain_start(key, id, 3, bob, ck2);
    chan_chain_step(ck2, mk2);
    CHECK(memcmp(mk2, mk[0], 32) != 0);
    chan_chain_start(key, id, 4, alice, ck2);
    chan_chain_step(ck2, mk2);
    CHECK(memcmp(mk2, mk[0], 32) != 0);
}

static void
s_test_rx(void)
{
    enum { N = 2 * CHAN_SKIP_MAX + 20 };
    uint8_t ck0[32], ck[32], got[32];
    static uint8_t mk[N][32];
    randombytes_buf(ck0, sizeof ck0);
    memcpy(ck, ck0, 32);
    for (size_t i = 0; i < N; i++) {
        chan_chain_step(ck, mk[i]);
    }
    chan_rx_t *rx = chan_rx_new(ck0, 0);
    CHECK(rx && chan_rx_next(rx) == 0 && chan_rx_skipped(rx) == 0);
    CHECK(chan_rx_key(rx, 0, got) == PARLEY_OK && memcmp(got, mk[0], 32) == 0);
    CHECK(chan_rx_used(rx, 0) == PARLEY_OK && chan_rx_next(rx) == 1);
    CHECK(chan_rx_key(rx, 0, got) == PARLEY_ERR_DUPLICATE); // read: its key is gone
    CHECK(chan_rx_used(rx, 0) == PARLEY_ERR_DUPLICATE);
    //  A key ahead changes nothing until its message is used.
    CHECK(chan_rx_key(rx, 5, got) == PARLEY_OK && memcmp(got, mk[5], 32) == 0);
    CHECK(chan_rx_next(rx) == 1 && chan_rx_skipped(rx) == 0);
    CHECK(chan_rx_used(rx, 5) == PARLEY_OK && chan_rx_next(rx) == 6 && chan_rx_skipped(rx) == 4);
    //  A late one opens with its kept key, once.
    CHECK(chan_rx_key(rx, 3, got) == PARLEY_OK && memcmp(got, mk[3], 32) == 0);
    CHECK(chan_rx_used(rx, 3) == PARLEY_OK && chan_rx_skipped(rx) == 3);
    CHECK(chan_rx_key(rx, 3, got) == PARLEY_ERR_DUPLICATE);
    CHECK(chan_rx_key(rx, 4, got) == PARLEY_OK && memcmp(got, mk[4], 32) == 0);
    //  At most CHAN_SKIP_MAX steps ahead.
    CHECK(chan_rx_key(rx, 6 + CHAN_SKIP_MAX + 1, got) == PARLEY_ERR_LIMIT);
    CHECK(chan_rx_used(rx, 6 + CHAN_SKIP_MAX + 1) == PARLEY_ERR_LIMIT);
    CHECK(chan_rx_key(rx, 6 + CHAN_SKIP_MAX, got) == PARLEY_OK);
    CHECK(memcmp(got, mk[6 + CHAN_SKIP_MAX], 32) == 0);
    CHECK(chan_rx_used(rx, 6 + CHAN_SKIP_MAX) == PARLEY_OK);
    //  The skipped keys stay within the bound: the oldest (1, 2, 4) are forgotten.
    CHECK(chan_rx_skipped(rx) == CHAN_SKIP_MAX);
    CHECK(chan_rx_key(rx, 1, got) == PARLEY_ERR_DUPLICATE);
    CHECK(chan_rx_key(rx, 9, got) == PARLEY_OK && memcmp(got, mk[9], 32) == 0);
    CHECK(chan_rx_key(rx, 7 + CHAN_SKIP_MAX, got) == PARLEY_OK);
    CHECK(memcmp(got, mk[7 + CHAN_SKIP_MAX], 32) == 0);
    //  Saved and loaded, it is the same chain; damaged saves are refused.
    uint8_t *saved = malloc(CHAN_RX_SAVED_MAX);
    size_t saved_len = 0;
    int err = 0;
    CHECK(saved && chan_rx_save(rx, saved, CHAN_RX_SAVED_MAX, &saved_len) == PARLEY_OK);
    CHECK(saved_len == CHAN_RX_SAVED_MAX);
    CHECK(chan_rx_save(rx, saved, saved_len - 1, &saved_len) == PARLEY_ERR_LIMIT);
    CHECK(chan_rx_save(rx, saved, CHAN_RX_SAVED_MAX, &saved_len) == PARLEY_OK);
    chan_rx_t *back = chan_rx_load(saved, saved_len, &err);
    CHECK(back && err == PARLEY_OK && chan_rx_next(back) == chan_rx_next(rx));
    CHECK(chan_rx_skipped(back) == CHAN_SKIP_MAX);
    CHECK(chan_rx_key(back, 9, got) == PARLEY_OK && memcmp(got, mk[9], 32) == 0);
    CHECK(chan_rx_key(back, 7 + CHAN_SKIP_MAX, got) == PARLEY_OK);
    CHECK(memcmp(got, mk[7 + CHAN_SKIP_MAX], 32) == 0);
    chan_rx_destroy(&back);
    CHECK(!chan_rx_load(saved, saved_len - 1, &err) && err == PARLEY_ERR_MALFORMED);
    CHECK(!chan_rx_load(saved, 37, &err) && err == PARLEY_ERR_MALFORMED);
    uint8_t keep[4];
    memcpy(keep, saved + CHAN_RX_SAVED_FIXED + CHAN_RX_SAVED_ENTRY, 4);
    memcpy(saved + CHAN_RX_SAVED_FIXED + CHAN_RX_SAVED_ENTRY, saved + CHAN_RX_SAVED_FIXED, 4);
    CHECK(!chan_rx_load(saved, saved_len, &err)); // a skipped step twice
    memcpy(saved + CHAN_RX_SAVED_FIXED + CHAN_RX_SAVED_ENTRY, keep, 4);
    memset(saved + 32, 0, 4); // next 0: every skipped step would be ahead of it
    CHECK(!chan_rx_load(saved, saved_len, &err));
    sodium_memzero(saved, CHAN_RX_SAVED_MAX);
    free(saved);
    chan_rx_destroy(&rx);
    CHECK(rx == NULL);
    chan_rx_destroy(&rx); // NULL-safe
    //  A chain that starts late, and the last step, which is never used.
    uint8_t at[32];
    memcpy(at, ck0, 32);
    CHECK(chan_chain_seek(at, 0, 10) == PARLEY_OK);
    rx = chan_rx_new(at, 10);
    CHECK(rx && chan_rx_key(rx, 12, got) == PARLEY_OK && memcmp(got, mk[12], 32) == 0);
    CHECK(chan_rx_key(rx, 9, got) == PARLEY_ERR_DUPLICATE);
    chan_rx_destroy(&rx);
    rx = chan_rx_new(at, UINT32_MAX - 1);
    CHECK(rx && chan_rx_key(rx, UINT32_MAX, got) == PARLEY_ERR_LIMIT);
    CHECK(chan_rx_used(rx, UINT32_MAX) == PARLEY_ERR_LIMIT);
    chan_rx_destroy(&rx);
}

static void
s_test_body(void)
{
    uint8_t hdr[PARLEY_ENVELOPE_HEADER_LEN], mk[32], other[32];
    randombytes_buf(hdr, sizeof hdr);
    randombytes_buf(mk, sizeof mk);
    randombytes_buf(other, sizeof other);
    static uint8_t content[PARLEY_CONTENT_MAX], out[PARLEY_BODY_MAX], back[PARLEY_CONTENT_MAX];
    randombytes_buf(content, sizeof content);
    chan_msg_header_t h = { .epoch = 9, .counter = 41 };
    memset(h.key_id, 0x5A, sizeof h.key_id);
    const size_t sizes[] = { 0, 1, 63, 64, 1000, PARLEY_CONTENT_MAX - 1 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t len = 0, got = 0;
        CHECK(chan_body_seal(hdr, &h, mk, content, sizes[s], out, sizeof out, &len) == PARLEY_OK);
        CHECK(len == chan_body_len(sizes[s]) && len > 0);
        chan_msg_header_t p;
        CHECK(chan_body_parse(out, len, &p) == PARLEY_OK);
        CHECK(p.epoch == 9 && p.counter == 41 && memcmp(p.key_id, h.key_id, 8) == 0);
        CHECK(chan_body_open(hdr, out, len, mk, back, sizeof back, &got) == PARLEY_OK);
        CHECK(got == sizes[s] && memcmp(back, content, got) == 0);
        CHECK(chan_body_open(hdr, out, len, other, back, sizeof back, &got) == PARLEY_ERR_AUTH);
        out[len / 2] ^= 1; // the ciphertext, or the clear header (AD)
        CHECK(chan_body_open(hdr, out, len, mk, back, sizeof back, &got) == PARLEY_ERR_AUTH);
        out[len / 2] ^= 1;
        hdr[0] ^= 1; // the envelope header is bound too
        CHECK(chan_body_open(hdr, out, len, mk, back, sizeof back, &got) == PARLEY_ERR_AUTH);
        hdr[0] ^= 1;
        out[0] = 2;
        CHECK(chan_body_parse(out, len, &p) == PARLEY_ERR_UNSUPPORTED);
        out[0] = CHAN_VERSION;
        CHECK(chan_body_parse(out, len - 1, &p) == PARLEY_ERR_MALFORMED); // not a bucket
    }
    size_t len = 1;
    CHECK(chan_body_seal(hdr, &h, mk, content, PARLEY_CONTENT_MAX, out, sizeof out, &len)
          == PARLEY_ERR_LIMIT);
    CHECK(len == 0 && chan_body_len(PARLEY_CONTENT_MAX) == 0);
    CHECK(chan_body_seal(hdr, &h, mk, content, 10, out, chan_body_len(10) - 1, &len)
          == PARLEY_ERR_LIMIT);
    chan_msg_header_t p;
    CHECK(chan_body_parse(out, 0, &p) == PARLEY_ERR_MALFORMED);
    CHECK(chan_body_parse(out, CHAN_MSG_HEADER_LEN, &p) == PARLEY_ERR_MALFORMED);
}

/*  A KEYS body for n recipients 1..n (keys filled with their index), each
 *  sealed under day key i + 100. */
static size_t
s_keys_body(const uint8_t id[32], const uint8_t key[32], size_t n, uint8_t *out, size_t cap,
            chan_keys_t *k)
{
    memset(k, 0, sizeof *k);
    k->epoch = 5;
    chan_key_id(id, 5, key, k->key_id);
    memset(k->binding, 0xBB, sizeof k->binding);
    randombytes_buf(k->nonce, sizeof k->nonce);
    k->parts = 1;
    k->n = n;
    size_t len = 0;
    CHECK(chan_keys_begin(k, out, cap, &len) == PARLEY_OK);
    for (size_t i = 0; i < n; i++) {
        uint8_t rcpt[32], ek_pub[32], day_key[32];
        memset(rcpt, 0, sizeof rcpt);
        rcpt[30] = (uint8_t)((i + 1) >> 8);
        rcpt[31] = (uint8_t)(i + 1);
        memset(ek_pub, 0xE0, sizeof ek_pub);
        memset(day_key, (int)(i + 100), sizeof day_key);
        chan_keys_entry_t e = { rcpt, ek_pub, 7, 10, 12, NULL };
        CHECK(chan_keys_entry_seal(id, k, &e, day_key, key,
                                   out + CHAN_KEYS_FIXED + i * CHAN_KEYS_ENTRY_LEN)
              == PARLEY_OK);
    }
    return len;
}

static void
s_test_keys(void)
{
    uint8_t id[32], key[32], got[32];
    memset(id, 0x33, sizeof id);
    randombytes_buf(key, sizeof key);
    static uint8_t buf[PARLEY_BODY_MAX + 1];
    chan_keys_t k, d;
    size_t len = s_keys_body(id, key, 3, buf, sizeof buf, &k);
    CHECK(len == CHAN_KEYS_FIXED + 3 * CHAN_KEYS_ENTRY_LEN);
    CHECK(chan_keys_decode(buf, len, &d) == PARLEY_OK);
    CHECK(d.epoch == 5 && d.n == 3 && d.part == 0 && d.parts == 1);
    CHECK(memcmp(d.key_id, k.key_id, 8) == 0 && memcmp(d.nonce, k.nonce, 16) == 0);
    for (size_t i = 0; i < 3; i++) {
        chan_keys_entry_t e;
        chan_keys_entry_at(&d, i, &e);
        CHECK(e.recipient[31] == i + 1 && e.spk_id == 7 && e.day0 == 10 && e.day == 12);
        uint8_t day_key[32];
        memset(day_key, (int)(i + 100), sizeof day_key);
        CHECK(chan_keys_entry_open(id, &d, &e, day_key, got) == PARLEY_OK);
        CHECK(memcmp(got, key, 32) == 0);
        day_key[0] ^= 1; // another session or day
        CHECK(chan_keys_entry_open(id, &d, &e, day_key, got) == PARLEY_ERR_AUTH);
        CHECK(sodium_is_zero(got, 32));
        //  Another recipient's entry does not open with this day key.
        chan_keys_entry_t other;
        chan_keys_entry_at(&d, (i + 1) % 3, &other);
        day_key[0] ^= 1;
        CHECK(chan_keys_entry_open(id, &d, &other, day_key, got) == PARLEY_ERR_AUTH);
    }
    //  The binding and the channel are bound: another one opens nothing.
    chan_keys_entry_t e;
    chan_keys_entry_at(&d, 0, &e);
    uint8_t day_key[32];
    memset(day_key, 100, sizeof day_key);
    d.binding[0] ^= 1;
    CHECK(chan_keys_entry_open(id, &d, &e, day_key, got) == PARLEY_ERR_AUTH);
    d.binding[0] ^= 1;
    uint8_t id2[32];
    memset(id2, 0x34, sizeof id2);
    CHECK(chan_keys_entry_open(id2, &d, &e, day_key, got) == PARLEY_ERR_AUTH);
    //  The sealer refuses a key its body does not name.
    uint8_t wrong[32];
    memset(wrong, 1, sizeof wrong);
    uint8_t scratch[CHAN_KEYS_ENTRY_LEN];
    CHECK(chan_keys_entry_seal(id, &k, &e, day_key, wrong, scratch) == PARLEY_ERR_STATE);

    //  The decoder's refusals.
    CHECK(chan_keys_decode(buf, len - 1, &d) == PARLEY_ERR_MALFORMED && d.n == 0);
    CHECK(chan_keys_decode(buf, CHAN_KEYS_FIXED - 1, &d) == PARLEY_ERR_MALFORMED);
    CHECK(chan_keys_decode(buf, PARLEY_BODY_MAX + 1, &d) == PARLEY_ERR_LIMIT);
    buf[0] = 2;
    CHECK(chan_keys_decode(buf, len, &d) == PARLEY_ERR_UNSUPPORTED);
    buf[0] = CHAN_VERSION;
    buf[61] = 1; // part 1 of 1
    CHECK(chan_keys_decode(buf, len, &d) == PARLEY_ERR_MALFORMED);
    buf[61] = 0;
    buf[62] = 0; // parts 0
    CHECK(chan_keys_decode(buf, len, &d) == PARLEY_ERR_MALFORMED);
    buf[62] = 1;
    buf[64] = 4; // n says 4, 3 follow
    CHECK(chan_keys_decode(buf, len, &d) == PARLEY_ERR_MALFORMED);
    buf[64] = 0; // n 0
    CHECK(chan_keys_decode(buf, CHAN_KEYS_FIXED, &d) == PARLEY_ERR_MALFORMED);
    buf[64] = 3;
    uint8_t *e1 = buf + CHAN_KEYS_FIXED + CHAN_KEYS_ENTRY_LEN;
    e1[31] = 1; // the second recipient equals the first
    CHECK(chan_keys_decode(buf, len, &d) == PARLEY_ERR_MALFORMED);
    e1[31] = 2;
    e1[64 + 4 + 3] = 13; // day0 13 > day 12
    CHECK(chan_keys_decode(buf, len, &d) == PARLEY_ERR_MALFORMED);
    e1[64 + 4 + 3] = 10;
    CHECK(chan_keys_decode(buf, len, &d) == PARLEY_OK);
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(chan_keys_decode(buf, cut, &d) != PARLEY_OK); // every prefix is refused
    }
    //  The most entries one body holds fit under the body limit.
    len = s_keys_body(id, key, CHAN_KEYS_MAX, buf, sizeof buf, &k);
    CHECK(len <= PARLEY_BODY_MAX && chan_keys_decode(buf, len, &d) == PARLEY_OK);
    k.n = CHAN_KEYS_MAX + 1;
    CHECK(chan_keys_begin(&k, buf, sizeof buf, &len) == PARLEY_ERR_LIMIT);
}

void
chan_test(bool verbose)
{
    s_test_ids();
    s_test_chain();
    s_test_rx();
    s_test_body();
    s_test_keys();
    if (verbose) {
        printf("  chan: ids, chains (seek = steps), bodies of 0..%u bytes, KEYS of 1..%u "
               "entries\n",
               PARLEY_CONTENT_MAX - 1, (unsigned)CHAN_KEYS_MAX);
    }
}
