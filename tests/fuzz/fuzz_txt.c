/*  tests/fuzz/fuzz_txt.c — txt_decode on arbitrary TXT records, and a round
 *  trip through txt_encode for every record that decodes.
 *
 *  A TXT record is a list of items, so the input is split into items by a
 *  length prefix: one byte L, then L bytes; L = 255 is followed by a second
 *  byte that adds to it (so items up to 510 bytes reach the item limit). A
 *  last item shorter than its prefix takes what is left. At most
 *  TXT_ITEMS_MAX + 4 items are made, so the count limit is reached too. Each
 *  item is copied into a heap block of exactly its length, so ASan flags any
 *  read past an item's end (the decoder must never assume a NUL).
 *
 *  Invariants: a decoded open record has version 1, a canonical 52-character
 *  id of a usable key and a printable tag of at most 64 bytes; re-encoding it
 *  and decoding the result gives the same fields. A decoded blinded record
 *  (b=, SPEC §19.3) has no id or tag until opened; it is opened with two
 *  fixed keys (FUZZ_MDNS_SECRET_1, _2: the seed corpus holds records sealed
 *  under each, from gen_corpus.c), at most BLIND_KEYS_MAX tries; what opens
 *  names a usable key, and sealing that key again (a fresh nonce) decodes
 *  and opens to the same key with the same key index.
 */
#include "fuzz_common.h"

#include "../../proto/blind.h"
#include "../../proto/identity.h"
#include "../../proto/txt.h"

#define S_MAX_ITEMS (TXT_ITEMS_MAX + 4u)

static size_t
s_split(const uint8_t *data, size_t size, uint8_t **items, size_t *lens)
{
    size_t n = 0, p = 0;
    while (p < size && n < S_MAX_ITEMS) {
        size_t len = data[p++];
        if (len == 255 && p < size) {
            len += data[p++];
        }
        if (len > size - p) {
            len = size - p;
        }
        items[n] = malloc(len ? len : 1);
        FUZZ_CHECK(items[n]);
        if (len > 0) {
            memcpy(items[n], data + p, len);
        }
        lens[n] = len;
        p += len;
        n++;
    }
    return n;
}

/*  The mDNS keys of the fixed secrets (32 bytes of 0x6b, of 0x6c). */
static void
s_keys(uint8_t keys[2][BLIND_KEY_LEN])
{
    uint8_t secret[BLIND_KEY_LEN];
    for (size_t i = 0; i < 2; i++) {
        memset(secret, FUZZ_MDNS_SECRET_1 + (int)i, sizeof secret);
        FUZZ_CHECK(blind_key(secret, keys[i]) == PARLEY_OK);
    }
}

static void
s_check_blinded(txt_info_t *info)
{
    FUZZ_CHECK(info->version == TXT_VERSION && info->id[0] == '\0' && info->net[0] == '\0');
    static uint8_t keys[2][BLIND_KEY_LEN];
    static int have;
    if (!have) {
        s_keys(keys);
        have = 1;
    }
    const uint8_t(*kp)[BLIND_KEY_LEN] = (const uint8_t(*)[BLIND_KEY_LEN])keys;
    size_t which = 99;
    int rc = txt_open(info, kp, 2, &which);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc == PARLEY_ERR_AUTH || rc == PARLEY_ERR_MALFORMED);
        FUZZ_CHECK(info->id[0] == '\0' && sodium_is_zero(info->ed_pk, sizeof info->ed_pk));
        return;
    }
    FUZZ_CHECK(which < 2 && strlen(info->id) == PARLEY_NODE_ID_STRLEN);
    uint8_t pk[PARLEY_KEY_LEN];
    FUZZ_CHECK(identity_parse_node_id(info->id, pk) == PARLEY_OK);
    FUZZ_CHECK(memcmp(pk, info->ed_pk, sizeof pk) == 0);

    txt_record_t rec;
    FUZZ_CHECK(txt_encode_blind(keys[which], info->ed_pk, &rec) == PARLEY_OK);
    const uint8_t *ptrs[TXT_BLIND_ITEMS];
    for (size_t i = 0; i < rec.n; i++) {
        ptrs[i] = (const uint8_t *)rec.items[i];
    }
    txt_info_t again;
    size_t which2 = 99;
    FUZZ_CHECK(txt_decode(ptrs, rec.lens, rec.n, &again) == PARLEY_OK && again.blinded);
    FUZZ_CHECK(txt_open(&again, kp, 2, &which2) == PARLEY_OK && which2 == which);
    FUZZ_CHECK(memcmp(again.ed_pk, info->ed_pk, sizeof pk) == 0 && strcmp(again.id, info->id) == 0);
}

static void
s_check_accepted(const txt_info_t *info)
{
    FUZZ_CHECK(info->version == TXT_VERSION);
    FUZZ_CHECK(strlen(info->id) == PARLEY_NODE_ID_STRLEN);
    size_t net_len = strlen(info->net);
    FUZZ_CHECK(net_len <= PARLEY_NETTAG_MAX);
    for (size_t i = 0; i < net_len; i++) {
        FUZZ_CHECK(info->net[i] >= 0x20 && info->net[i] <= 0x7e);
    }
    uint8_t pk[PARLEY_KEY_LEN];
    FUZZ_CHECK(identity_parse_node_id(info->id, pk) == PARLEY_OK);
    FUZZ_CHECK(memcmp(pk, info->ed_pk, sizeof pk) == 0);

    txt_record_t rec;
    FUZZ_CHECK(txt_encode(info->id, info->net, &rec) == PARLEY_OK);
    const uint8_t *ptrs[TXT_RECORD_ITEMS];
    for (size_t i = 0; i < rec.n; i++) {
        ptrs[i] = (const uint8_t *)rec.items[i];
    }
    txt_info_t again;
    FUZZ_CHECK(txt_decode(ptrs, rec.lens, rec.n, &again) == PARLEY_OK);
    FUZZ_CHECK(memcmp(&again, info, sizeof again) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    uint8_t *items[S_MAX_ITEMS];
    size_t lens[S_MAX_ITEMS];
    size_t n = s_split(data, size, items, lens);
    txt_info_t info;
    int rc = txt_decode((const uint8_t *const *)items, lens, n, &info);
    if (rc == PARLEY_OK && info.blinded) {
        s_check_blinded(&info);
    } else if (rc == PARLEY_OK) {
        s_check_accepted(&info);
    } else {
        FUZZ_CHECK(rc < 0);
        FUZZ_CHECK(info.version == 0 && info.id[0] == '\0' && info.net[0] == '\0');
        FUZZ_CHECK(!info.blinded);
    }
    for (size_t i = 0; i < n; i++) {
        free(items[i]);
    }
    return 0;
}
