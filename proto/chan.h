/*  proto/chan.h — a channel's keys: ids, the per-sender chains of an epoch,
 *  message bodies, and the KEYS body that hands an epoch key to members
 *  (proto/SPEC.md §21; every byte is specified there).
 *
 *  A channel has a 32-byte id, its control scope; its messages live in a
 *  second scope derived from the id, so a member can reconcile membership
 *  without the messages and a relay can tell the two apart.
 *
 *    channel_id = BLAKE2b-256("parley/channel/v1\0" || creator pk || salt16)
 *    msg scope  = BLAKE2b-256("parley/channel-msgs/v1\0" || channel_id)
 *
 *  Each epoch has a random 32-byte key K, named by an 8-byte key id (two
 *  admins may rotate to the same epoch number concurrently: both keys stay
 *  usable, and a message names the one it used):
 *
 *    key_id = first 8 bytes of BLAKE2b-256("parley/chan-keyid/v1\0"
 *             || channel_id || u32 epoch || K)
 *
 *  Every sender has its own chain in an epoch, ratcheted one step per
 *  message; a step's message key is used once and wiped with the chain key
 *  it came from (forward secrecy inside the epoch):
 *
 *    ck[0]   = BLAKE2b-256(key = K, "parley/chan-chain/v1\0" || channel_id
 *              || u32 epoch || sender Ed25519 pk)
 *    mk[i]   = crypto_kdf_derive_from_key(32, 1, "prlycmsg", ck[i])
 *    ck[i+1] = crypto_kdf_derive_from_key(32, 2, "prlycchn", ck[i])
 *
 *  Message body (integers big-endian):
 *
 *    0  1   version (1)
 *    1  4   epoch
 *    5  8   key_id
 *    13 4   counter: i, the chain step of mk
 *    17 24  nonce (random)
 *    41 n+16  XChaCha20-Poly1305(mk[i], nonce, padded content,
 *               AD = the 94-byte envelope header || body bytes 0..40)
 *
 *  The content is padded as a DM's is (dm.h). Secrets passed in are the
 *  caller's; every copy made here is wiped on every path.
 */
#ifndef PARLEY_PROTO_CHAN_H
#define PARLEY_PROTO_CHAN_H

#include "errors.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAN_ID_DOMAIN "parley/channel/v1"         /* hashed with its NUL */
#define CHAN_SCOPE_DOMAIN "parley/channel-msgs/v1" /* hashed with its NUL */
#define CHAN_KEYID_DOMAIN "parley/chan-keyid/v1"   /* hashed with its NUL */
#define CHAN_CHAIN_DOMAIN "parley/chan-chain/v1"   /* hashed with its NUL */
#define CHAN_ENTRY_DOMAIN "parley/chan-key/v1"     /* hashed with its NUL */
#define CHAN_BINDING_DOMAIN "parley/chan-epoch/v1" /* hashed with its NUL */
#define CHAN_VERSION 1u
#define CHAN_SALT_LEN 16u
#define CHAN_KEY_ID_LEN 8u
#define CHAN_NONCE_LEN 24u
#define CHAN_MSG_HEADER_LEN 41u /* version | epoch | key_id | counter | nonce */
#define CHAN_MAX_STEPS 100000u  /* chain steps one call may hash (a receiver's bound) */

/*  KEYS body: an epoch key sealed to each of up to CHAN_KEYS_MAX members. */
#define CHAN_KEYS_FIXED 65u      /* version | epoch | key_id | binding | nonce | part | parts | n */
#define CHAN_KEYS_ENTRY_LEN 124u /* recipient | ek_pub | spk_id | day0 | day | sealed key */
#define CHAN_KEYS_SEALED_LEN 48u /* the 32-byte key and its tag */
#define CHAN_KEYS_NONCE_LEN 16u
#define CHAN_KEYS_MAX ((PARLEY_BODY_MAX - CHAN_KEYS_FIXED) / CHAN_KEYS_ENTRY_LEN)

/*  The ids. */
void chan_id(const uint8_t creator_pk[32], const uint8_t salt[CHAN_SALT_LEN], uint8_t id[32]);
void chan_msg_scope(const uint8_t channel_id[32], uint8_t scope[32]);
void chan_key_id(const uint8_t channel_id[32], uint32_t epoch, const uint8_t key[32],
                 uint8_t key_id[CHAN_KEY_ID_LEN]);

/*  The binding of an epoch: events holds n control-event ids (REMOVE, LEAVE,
 *  REKEY) the fold applied, ascending (the caller sorts: only the sorted
 *  order gives the binding others compute). */
void chan_binding(const uint8_t channel_id[32], const uint8_t *events, size_t n, uint8_t out[32]);

/*  The first chain key of sender in epoch (key K). ck is the caller's secret. */
void chan_chain_start(const uint8_t key[32], const uint8_t channel_id[32], uint32_t epoch,
                      const uint8_t sender_pk[32], uint8_t ck[32]);
/*  One step: mk = the message key of the step ck stands at, and ck moves
 *  to the next step in place (the old chain key is gone). */
void chan_chain_step(uint8_t ck[32], uint8_t mk[32]);
/*  Moves ck from step from to step to in place, without message keys.
 *  PARLEY_ERR_STATE if to < from, _LIMIT past CHAN_MAX_STEPS. */
int chan_chain_seek(uint8_t ck[32], uint32_t from, uint32_t to) PARLEY_WUR;

/*  A receiver's view of one sender's chain in one epoch key: the chain key
 *  of the next step it has not read, and the message keys of the steps it
 *  skipped (at most CHAN_SKIP_MAX: past that the oldest are forgotten, and
 *  their messages no longer open). Two steps, so a message that does not
 *  open changes nothing: chan_rx_key gives the key of a step, and only
 *  chan_rx_used, once that message opened, moves the chain or forgets the
 *  skipped key. Secrets live in sodium_malloc memory, wiped when freed. */
#define CHAN_SKIP_MAX 1000u
typedef struct chan_rx chan_rx_t;

/*  A chain at step next with chain key ck (copied). NULL on NOMEM. */
chan_rx_t *chan_rx_new(const uint8_t ck[32], uint32_t next);
void chan_rx_destroy(chan_rx_t **self_p);
/*  The message key of step counter into mk, without changing rx.
 *  _DUPLICATE for a step read already (or skipped and forgotten), _LIMIT
 *  for one more than CHAN_SKIP_MAX steps ahead. */
int chan_rx_key(const chan_rx_t *self, uint32_t counter, uint8_t mk[32]) PARLEY_WUR;
/*  The message of step counter opened: the chain moves past it (keeping
 *  the keys of the steps it skips), or its skipped key is forgotten. The
 *  same codes as chan_rx_key, which the caller called first. */
int chan_rx_used(chan_rx_t *self, uint32_t counter) PARLEY_WUR;
/*  A chain's state as a node keeps it (local, not on the wire), integers
 *  big-endian: ck 32 | next u32 | n u16 | n × (step u32 | message key 32),
 *  the skipped steps oldest first. chan_rx_save: _LIMIT for a small cap.
 *  chan_rx_load: NULL and *err _MALFORMED for a length that does not match
 *  n, n past CHAN_SKIP_MAX, or steps that are not ascending below next. */
#define CHAN_RX_SAVED_FIXED 38u
#define CHAN_RX_SAVED_ENTRY 36u
#define CHAN_RX_SAVED_MAX (CHAN_RX_SAVED_FIXED + CHAN_SKIP_MAX * CHAN_RX_SAVED_ENTRY)
int chan_rx_save(const chan_rx_t *self, uint8_t *out, size_t cap, size_t *len) PARLEY_WUR;
chan_rx_t *chan_rx_load(const uint8_t *buf, size_t len, int *err);
uint32_t chan_rx_next(const chan_rx_t *self);  /* the next step not read */
size_t chan_rx_skipped(const chan_rx_t *self); /* skipped keys held */

/*  The clear header of a message body. */
typedef struct {
    uint32_t epoch;                  /* the epoch whose key was used */
    uint8_t key_id[CHAN_KEY_ID_LEN]; /* which key of that epoch */
    uint32_t counter;                /* the sender's chain step */
} chan_msg_header_t;

/*  Body length for content_len bytes of content; 0 if too large. */
size_t chan_body_len(size_t content_len);
/*  Seals content into a message body at out (cap >= chan_body_len): h and a
 *  fresh nonce in clear, the padded content under mk. env_header is the
 *  94-byte envelope header the body will go under (envelope_header() with
 *  this body's length). _LIMIT for content too large or a small cap. On
 *  failure nothing of the content is left in out. */
int chan_body_seal(const uint8_t env_header[PARLEY_ENVELOPE_HEADER_LEN], const chan_msg_header_t *h,
                   const uint8_t mk[32], const uint8_t *content, size_t content_len, uint8_t *out,
                   size_t cap, size_t *out_len) PARLEY_WUR;
/*  Reads the clear header of a body. _UNSUPPORTED for another version,
 *  _MALFORMED for a length that is not a padding bucket plus overhead. */
int chan_body_parse(const uint8_t *body, size_t body_len, chan_msg_header_t *h) PARLEY_WUR;
/*  Opens a body sealed under mk; content (cap >= PARLEY_CONTENT_MAX) gets
 *  the unpadded content. _AUTH if it does not open. */
int chan_body_open(const uint8_t env_header[PARLEY_ENVELOPE_HEADER_LEN], const uint8_t *body,
                   size_t body_len, const uint8_t mk[32], uint8_t *content, size_t cap,
                   size_t *content_len) PARLEY_WUR;

/*  One KEYS entry: the key sealed to recipient under the day key of the
 *  author's DM sending session to it (ek_pub, spk_id, day0, day name that
 *  session and day, as a DM header does). sealed views the body. */
typedef struct {
    const uint8_t *recipient; /* 32: Ed25519 pk */
    const uint8_t *ek_pub;    /* 32: the DM session */
    uint32_t spk_id;          /* its recipient prekey */
    uint32_t day0;            /* its first day */
    uint32_t day;             /* the day whose chain key sealed this entry */
    const uint8_t *sealed;    /* CHAN_KEYS_SEALED_LEN */
} chan_keys_entry_t;

/*  A decoded KEYS body; entries are read with chan_keys_entry_at(). */
typedef struct {
    uint32_t epoch;                     /* the epoch the key opens */
    uint8_t key_id[CHAN_KEY_ID_LEN];    /* names the key */
    uint8_t binding[32];                /* what the epoch answers (SPEC §21.3) */
    uint8_t nonce[CHAN_KEYS_NONCE_LEN]; /* random per body */
    uint8_t part;                       /* 0..parts-1 */
    uint8_t parts;                      /* bodies holding this key's entries, 1..255 */
    size_t n;                           /* entries, 1..CHAN_KEYS_MAX */
    const uint8_t *entries;             /* n × CHAN_KEYS_ENTRY_LEN, recipients ascending */
} chan_keys_t;

/*  Decodes a KEYS body of exactly len bytes (views into buf).
 *  _UNSUPPORTED for another version; _MALFORMED for a bad part/parts, no
 *  entries, recipients not strictly ascending, day < day0, or a length that
 *  does not match n; _LIMIT past PARLEY_BODY_MAX. *out is zeroed on failure. */
int chan_keys_decode(const uint8_t *buf, size_t len, chan_keys_t *out) PARLEY_WUR;
/*  Entry i < k->n. */
void chan_keys_entry_at(const chan_keys_t *k, size_t i, chan_keys_entry_t *out);
/*  Writes the fixed part of a KEYS body for n entries into out; the caller
 *  then seals each entry with chan_keys_entry_seal at out + CHAN_KEYS_FIXED +
 *  i × CHAN_KEYS_ENTRY_LEN, recipients ascending. *len is the whole body's
 *  length. _MALFORMED / _LIMIT as the decoder would refuse, or a small cap. */
int chan_keys_begin(const chan_keys_t *k, uint8_t *out, size_t cap, size_t *len) PARLEY_WUR;
/*  Seals key (the epoch key) for e->recipient under day_key into the entry
 *  at out (CHAN_KEYS_ENTRY_LEN bytes), with the fields of e (sealed ignored). */
int chan_keys_entry_seal(const uint8_t channel_id[32], const chan_keys_t *k,
                         const chan_keys_entry_t *e, const uint8_t day_key[32],
                         const uint8_t key[32], uint8_t out[CHAN_KEYS_ENTRY_LEN]) PARLEY_WUR;
/*  Opens entry e of k with day_key into key, and checks the key against
 *  k->key_id. _AUTH if it does not open or the id does not match. */
int chan_keys_entry_open(const uint8_t channel_id[32], const chan_keys_t *k,
                         const chan_keys_entry_t *e, const uint8_t day_key[32],
                         uint8_t key[32]) PARLEY_WUR;

void chan_test(bool verbose);

#endif
