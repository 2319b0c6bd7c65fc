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
 *  Invariants: a decoded record has version 1, a canonical 52-character id
 *  of a usable key and a printable tag of at most 64 bytes; re-encoding it
 *  and decoding the result gives the same fields.
 */
#include "fuzz_common.h"

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
    if (rc == PARLEY_OK) {
        s_check_accepted(&info);
    } else {
        FUZZ_CHECK(rc < 0);
        FUZZ_CHECK(info.version == 0 && info.id[0] == '\0' && info.net[0] == '\0');
    }
    for (size_t i = 0; i < n; i++) {
        free(items[i]);
    }
    return 0;
}
