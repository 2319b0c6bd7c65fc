/*  proto/txt.h — the TXT record a node publishes with its _parley._tcp
 *  mDNS service (DNS-SD, RFC 6763 §6), and its strict decoder.
 *
 *  A TXT record is a list of items, each one DNS character-string of
 *  1..255 bytes of the form "key=value". Ours holds exactly:
 *
 *    v=1            record version (TXT_VERSION), decimal
 *    net=TAG        network tag, printable ASCII 0x20..0x7E, 0..64 bytes
 *    id=NODE_ID     the node id (52 lower-case base32 characters)
 *
 *  The items arrive from the network unauthenticated: the id is a hint of
 *  whom to dial, and only the CURVE handshake pinned to it proves it. The
 *  decoder takes items as (pointer, length) pairs, exactly as the resolver
 *  hands them over (no NULs assumed), so it can be fuzzed. It rejects
 *  items without '=', empty keys, bytes outside 0x20..0x7E, keys repeated
 *  (compared case-insensitively, as RFC 6763 §6.4 makes keys), more than
 *  TXT_ITEMS_MAX items or items longer than TXT_ITEM_MAX; a version other
 *  than 1 is PARLEY_ERR_UNSUPPORTED; keys it does not know are ignored, so
 *  a later version can add items. Full rules: proto/SPEC.md §12.
 *
 *  A member of a private network publishes a blinded record instead
 *  (SPEC §19.3, proto/blind.h):
 *
 *    v=1            as above
 *    b=SEALED       116 lower-case base32 characters: nonce || AEAD(node pk)
 *
 *  and no net= or id=. txt_decode checks its structure (blinded = true, the
 *  72 sealed bytes copied out, no id yet); txt_open then tries the keys the
 *  receiver holds (at most BLIND_KEYS_MAX) and fills in the id.
 */
#ifndef PARLEY_PROTO_TXT_H
#define PARLEY_PROTO_TXT_H

#include "blind.h"
#include "errors.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TXT_VERSION 1
#define TXT_ITEMS_MAX 16u   /* items in one record */
#define TXT_ITEM_MAX 255u   /* bytes in one item: one DNS character-string */
#define TXT_RECORD_ITEMS 3u /* items our encoder writes */
#define TXT_BLIND_ITEMS 2u  /* items of a blinded record: v=, b= */

/*  A decoded record. Strings are copied out and NUL-terminated, so the
 *  caller may keep them after the items are gone. */
typedef struct {
    unsigned version;                   /* always TXT_VERSION on success */
    char net[PARLEY_NETTAG_MAX + 1];    /* network tag ("" in a blinded record) */
    char id[PARLEY_NODE_ID_STRLEN + 1]; /* canonical (lower-case) node id; blinded: "" until
                                           txt_open opened it */
    uint8_t ed_pk[PARLEY_KEY_LEN];      /* the key the id names (a hint) */
    bool blinded;                       /* a b= record (SPEC §19.3) */
    uint8_t sealed[BLIND_SEALED_LEN];   /* blinded: the b= value, decoded */
} txt_info_t;

/*  Our record, ready to hand to the mDNS publisher item by item. */
typedef struct {
    size_t n;                                       /* items used, TXT_RECORD_ITEMS */
    size_t lens[TXT_RECORD_ITEMS];                  /* bytes in each item, no NUL */
    char items[TXT_RECORD_ITEMS][TXT_ITEM_MAX + 1]; /* each also NUL-terminated */
} txt_record_t;

/*  Builds the record for node_id (a valid node id, any case: written lower
 *  case) and tag (printable, <= PARLEY_NETTAG_MAX). Refuses, with
 *  PARLEY_ERR_MALFORMED or _LIMIT, anything txt_decode would reject. */
int txt_encode(const char *node_id, const char *tag, txt_record_t *out) PARLEY_WUR;

/*  Builds a blinded record naming ed_pk, sealed under key (an mDNS key,
 *  blind_key) with a fresh nonce: "v=1", "b=...". n = TXT_BLIND_ITEMS. */
int txt_encode_blind(const uint8_t key[BLIND_KEY_LEN], const uint8_t ed_pk[PARLEY_KEY_LEN],
                     txt_record_t *out) PARLEY_WUR;

/*  Decodes n items (items[i] points to lens[i] bytes). On success fills
 *  *out; on failure *out is zeroed. Needs sodium_init() (the id is checked
 *  to be a usable Ed25519 key). */
int txt_decode(const uint8_t *const *items, const size_t *lens, size_t n,
               txt_info_t *out) PARLEY_WUR;

/*  Opens a blinded record decoded by txt_decode with keys[0..n_keys) (mDNS
 *  keys, at most BLIND_KEYS_MAX): on success fills info's id and ed_pk and
 *  *which (may be NULL) with the index of the key that opened it. Codes of
 *  blind_open (NOKEY, LIMIT, AUTH, MALFORMED); PARLEY_ERR_STATE for a record
 *  that is not blinded. On failure info's id and ed_pk stay empty. */
int txt_open(txt_info_t *info, const uint8_t (*keys)[BLIND_KEY_LEN], size_t n_keys,
             size_t *which) PARLEY_WUR;

void txt_test(bool verbose);

#endif
