/*  proto/content.h — what a DM carries once decrypted.
 *
 *    text:    0x01 | UTF-8 text (1..PARLEY_TEXT_MAX bytes, valid UTF-8, no NUL)
 *    receipt: 0x02 | status u8 (1 delivered, 2 read) | count u16 (1..256)
 *             | count × 32-byte envelope ids
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

enum { CONTENT_TEXT = 1, CONTENT_RECEIPT = 2 };
enum { RECEIPT_DELIVERED = 1, RECEIPT_READ = 2 };

typedef struct {
    uint8_t type;     /* CONTENT_* */
    const char *text; /* view, not NUL-terminated (text) */
    size_t text_len;
    uint8_t status;     /* RECEIPT_* (receipt) */
    const uint8_t *ids; /* view, n_ids × 32 bytes (receipt) */
    size_t n_ids;
} content_t;

int content_encode_text(const char *text, size_t len, uint8_t *out, size_t cap,
                        size_t *out_len) PARLEY_WUR;
int content_encode_receipt(uint8_t status, const uint8_t *ids, size_t n_ids, uint8_t *out,
                           size_t cap, size_t *out_len) PARLEY_WUR;
int content_decode(const uint8_t *buf, size_t len, content_t *out) PARLEY_WUR;
/*  True if buf[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool content_utf8_valid(const char *buf, size_t len);
/*  Decodes the UTF-8 sequence at s (n > 0 bytes left): its length, with its
 *  code point in *cp, or 0 if it is invalid (RFC 3629, Unicode table 3-7: no
 *  overlong forms, no surrogates, nothing above U+10FFFF, no truncated
 *  sequence, no stray continuation byte). */
size_t content_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

void content_test(bool verbose);

#endif
