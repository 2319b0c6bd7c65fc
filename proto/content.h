/*  proto/content.h — what a DM carries once decrypted.
 *
 *    text:    0x01 | UTF-8 text (1..PARLEY_TEXT_MAX bytes, valid UTF-8, no NUL)
 *    receipt: 0x02 | status u8 (1 delivered, 2 read) | count u16 (1..256)
 *             | count × 32-byte envelope ids
 *
 *    channel settings (a channel message, SPEC §21.5):
 *             0x03 | name_len u8 (1..64) | name | topic (0..512 bytes)
 *             name and topic are plain text (content_plain); a name has no
 *             space, '#' or ','
 *    channel receipt, aggregated: 0x04 | status u8 | count u16 (1..256)
 *             | count × (author 32 | seq u64), authors strictly ascending:
 *             "every message of author up to seq" is delivered / read
 *
 *  Unknown types decode to PARLEY_ERR_UNSUPPORTED so a newer peer's content is
 *  kept (the envelope is stored) but not shown.
 */
#ifndef PARLEY_PROTO_CONTENT_H
#define PARLEY_PROTO_CONTENT_H

#include "errors.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    CONTENT_TEXT = 1,
    CONTENT_RECEIPT = 2,
    CONTENT_CHAN_META = 3,
    CONTENT_CHAN_READ = 4,
    CONTENT_CHAN_META_AGAIN = 5, /* settings made at an earlier place, repeated */
};
enum { RECEIPT_DELIVERED = 1, RECEIPT_READ = 2 };

typedef struct {
    uint8_t type;     /* CONTENT_* */
    const char *text; /* view, not NUL-terminated (text) */
    size_t text_len;
    uint8_t status;     /* RECEIPT_* (receipt) */
    const uint8_t *ids; /* view, n_ids × 32 bytes (receipt) */
    size_t n_ids;
    const char *name; /* view (channel settings; text is the topic) */
    size_t name_len;
    const uint8_t *marks; /* view, n_marks × CONTENT_MARK_LEN (channel receipt) */
    size_t n_marks;
    uint64_t of_ts_ms;        /* settings repeated: the place they were made at */
    const uint8_t *of_author; /* view, 32 */
    uint64_t of_seq;
} content_t;

#define CONTENT_NAME_MAX 64u
#define CONTENT_TOPIC_MAX 512u
#define CONTENT_MARK_LEN 40u /* author | seq */
#define CONTENT_MARKS_MAX 256u
#define CONTENT_AGAIN_FIXED 49u /* type | of_ts_ms u64 | of_author 32 | of_seq u64 */

/*  One mark of a channel receipt. */
typedef struct {
    uint8_t author[32];
    uint64_t seq;
} content_mark_t;

int content_encode_text(const char *text, size_t len, uint8_t *out, size_t cap,
                        size_t *out_len) PARLEY_WUR;
int content_encode_receipt(uint8_t status, const uint8_t *ids, size_t n_ids, uint8_t *out,
                           size_t cap, size_t *out_len) PARLEY_WUR;
/*  name (1..CONTENT_NAME_MAX, content_name_valid) and topic (0..
 *  CONTENT_TOPIC_MAX bytes, plain). */
int content_encode_chan_meta(const char *name, size_t name_len, const char *topic, size_t topic_len,
                             uint8_t *out, size_t cap, size_t *out_len) PARLEY_WUR;
/*  The same settings, repeated in a later epoch: of_* is the place of the
 *  message that made them (ts_ms, author, seq ≥ 1). */
int content_encode_chan_meta_again(uint64_t of_ts_ms, const uint8_t of_author[32], uint64_t of_seq,
                                   const char *name, size_t name_len, const char *topic,
                                   size_t topic_len, uint8_t *out, size_t cap,
                                   size_t *out_len) PARLEY_WUR;
/*  n marks (1..CONTENT_MARKS_MAX), authors strictly ascending. */
int content_encode_chan_read(uint8_t status, const content_mark_t *marks, size_t n, uint8_t *out,
                             size_t cap, size_t *out_len) PARLEY_WUR;
int content_decode(const uint8_t *buf, size_t len, content_t *out) PARLEY_WUR;
/*  Mark i < c->n_marks of a decoded channel receipt. */
void content_mark_at(const content_t *c, size_t i, content_mark_t *out);
/*  Plain text: valid UTF-8 with no control character (C0, DEL, C1), so it
 *  fits on one line as it is. */
bool content_plain(const uint8_t *p, size_t len);
/*  A channel name: 1..CONTENT_NAME_MAX bytes of plain text without space,
 *  '#' or ','. */
bool content_name_valid(const char *name, size_t len);
/*  True if buf[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool content_utf8_valid(const char *buf, size_t len);
/*  Decodes the UTF-8 sequence at s (n > 0 bytes left): its length, with its
 *  code point in *cp, or 0 if it is invalid (RFC 3629, Unicode table 3-7: no
 *  overlong forms, no surrogates, nothing above U+10FFFF, no truncated
 *  sequence, no stray continuation byte). */
size_t content_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

void content_test(bool verbose);

#endif
