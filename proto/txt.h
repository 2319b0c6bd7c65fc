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
 */
#ifndef PARLEY_PROTO_TXT_H
#define PARLEY_PROTO_TXT_H

#include "errors.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TXT_VERSION 1
#define TXT_ITEMS_MAX 16u   /* items in one record */
#define TXT_ITEM_MAX 255u   /* bytes in one item: one DNS character-string */
#define TXT_RECORD_ITEMS 3u /* items our encoder writes */

/*  A decoded record. Strings are copied out and NUL-terminated, so the
 *  caller may keep them after the items are gone. */
typedef struct {
    unsigned version;                   /* always TXT_VERSION on success */
    char net[PARLEY_NETTAG_MAX + 1];    /* network tag */
    char id[PARLEY_NODE_ID_STRLEN + 1]; /* canonical (lower-case) node id */
    uint8_t ed_pk[PARLEY_KEY_LEN];      /* the key the id names (a hint) */
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

/*  Decodes n items (items[i] points to lens[i] bytes). On success fills
 *  *out; on failure *out is zeroed. Needs sodium_init() (the id is checked
 *  to be a usable Ed25519 key). */
int txt_decode(const uint8_t *const *items, const size_t *lens, size_t n,
               txt_info_t *out) PARLEY_WUR;

void txt_test(bool verbose);

#endif
