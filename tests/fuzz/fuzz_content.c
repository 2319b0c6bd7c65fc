/*  tests/fuzz/fuzz_content.c — content_decode and content_utf8_valid on
 *  arbitrary bytes.
 *
 *  Content is what a DM holds once decrypted: the peer chose every byte. A
 *  text that decodes reaches the store, the API as a JSON string and the
 *  terminal, so it must be valid UTF-8 without NUL. content_utf8_valid is
 *  checked against a second, table-driven validator written from RFC 3629
 *  section 4, and every content that decodes must re-encode to its input. A
 *  channel's name and topic reach the terminal too: checked as plain text
 *  (no control character) by a reference of their own.
 */
#include "fuzz_common.h"

#include <stdbool.h>

#include "../../proto/content.h"

static uint8_t s_out[PARLEY_CONTENT_MAX + 64];

/*  Reference UTF-8 validator: the well-formed sequences of RFC 3629 §4
 *  (no overlongs, no surrogates, nothing above U+10FFFF). */
static bool
s_ref_utf8(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint8_t lo = 0x80;
        uint8_t hi = 0xBF;
        if (c <= 0x7F) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c == 0xE0) {
            n = 2;
            lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            n = 2;
        } else if (c == 0xED) {
            n = 2;
            hi = 0x9F;
        } else if (c == 0xF0) {
            n = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            n = 3;
        } else if (c == 0xF4) {
            n = 3;
            hi = 0x8F;
        } else {
            return false;
        }
        if (n > len - i - 1) {
            return false;
        }
        //  Only the first continuation byte has a narrowed range.
        if (s[i + 1] < lo || s[i + 1] > hi) {
            return false;
        }
        for (size_t k = 2; k <= n; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) {
                return false;
            }
        }
        i += n + 1;
    }
    return true;
}

static void
s_check_text(const uint8_t *data, size_t size, const content_t *c)
{
    FUZZ_CHECK(c->text_len >= 1 && c->text_len <= PARLEY_TEXT_MAX);
    FUZZ_CHECK((const uint8_t *)c->text == data + 1 && c->text_len == size - 1);
    FUZZ_CHECK(memchr(c->text, 0, c->text_len) == NULL);
    FUZZ_CHECK(s_ref_utf8((const uint8_t *)c->text, c->text_len));
    size_t len = 0;
    FUZZ_CHECK(content_encode_text(c->text, c->text_len, s_out, sizeof s_out, &len) == 0);
    FUZZ_CHECK(len == size && memcmp(s_out, data, size) == 0);
}

static void
s_check_receipt(const uint8_t *data, size_t size, const content_t *c)
{
    FUZZ_CHECK(c->status == RECEIPT_DELIVERED || c->status == RECEIPT_READ);
    FUZZ_CHECK(c->n_ids >= 1 && c->n_ids <= PARLEY_RECEIPT_MAX_IDS);
    FUZZ_CHECK(c->ids >= data && c->ids + c->n_ids * 32 == data + size);
    size_t len = 0;
    FUZZ_CHECK(content_encode_receipt(c->status, c->ids, c->n_ids, s_out, sizeof s_out, &len) == 0);
    FUZZ_CHECK(len == size && memcmp(s_out, data, size) == 0);
}

//  Plain text by the reference: valid UTF-8, and no byte of a C0 control
//  or DEL, nor the two-byte form of a C1 control (C2 80..C2 9F).
static bool
s_ref_plain(const uint8_t *s, size_t len)
{
    if (!s_ref_utf8(s, len)) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f || (s[i] == 0xc2 && i + 1 < len && s[i + 1] <= 0x9f)) {
            return false;
        }
    }
    return true;
}

static void
s_check_meta(const uint8_t *data, size_t size, const content_t *c)
{
    FUZZ_CHECK(c->name_len >= 1 && c->name_len <= CONTENT_NAME_MAX
               && c->text_len <= CONTENT_TOPIC_MAX);
    FUZZ_CHECK((const uint8_t *)c->name == data + 2 && 2 + c->name_len + c->text_len == size);
    FUZZ_CHECK(s_ref_plain((const uint8_t *)c->name, c->name_len));
    FUZZ_CHECK(!memchr(c->name, ' ', c->name_len) && !memchr(c->name, '#', c->name_len));
    FUZZ_CHECK(c->text_len == 0 || s_ref_plain((const uint8_t *)c->text, c->text_len));
    size_t len = 0;
    FUZZ_CHECK(content_encode_chan_meta(c->name, c->name_len, c->text, c->text_len, s_out,
                                        sizeof s_out, &len)
               == 0);
    FUZZ_CHECK(len == size && memcmp(s_out, data, size) == 0);
}

//  Settings repeated: the place by the reference (big-endian, seq >= 1),
//  then settings as s_check_meta reads them; the encoder gives the bytes back.
static void
s_check_again(const uint8_t *data, size_t size, const content_t *c)
{
    FUZZ_CHECK(size >= CONTENT_AGAIN_FIXED + 2);
    uint64_t ts = 0, seq = 0;
    for (size_t i = 0; i < 8; i++) {
        ts = (ts << 8) | data[1 + i];
        seq = (seq << 8) | data[41 + i];
    }
    FUZZ_CHECK(c->of_ts_ms == ts && c->of_seq == seq && seq >= 1);
    FUZZ_CHECK(c->of_author == data + 9);
    FUZZ_CHECK(c->name_len >= 1 && c->name_len <= CONTENT_NAME_MAX
               && c->text_len <= CONTENT_TOPIC_MAX);
    FUZZ_CHECK((const uint8_t *)c->name == data + CONTENT_AGAIN_FIXED + 1
               && CONTENT_AGAIN_FIXED + 1 + c->name_len + c->text_len == size);
    FUZZ_CHECK(s_ref_plain((const uint8_t *)c->name, c->name_len));
    FUZZ_CHECK(c->text_len == 0 || s_ref_plain((const uint8_t *)c->text, c->text_len));
    size_t len = 0;
    FUZZ_CHECK(content_encode_chan_meta_again(c->of_ts_ms, c->of_author, c->of_seq, c->name,
                                              c->name_len, c->text, c->text_len, s_out,
                                              sizeof s_out, &len)
               == 0);
    FUZZ_CHECK(len == size && memcmp(s_out, data, size) == 0);
}

static void
s_check_read(const uint8_t *data, size_t size, const content_t *c)
{
    FUZZ_CHECK(c->status == RECEIPT_DELIVERED || c->status == RECEIPT_READ);
    FUZZ_CHECK(c->n_marks >= 1 && c->n_marks <= CONTENT_MARKS_MAX);
    FUZZ_CHECK(c->marks == data + 4 && 4 + c->n_marks * CONTENT_MARK_LEN == size);
    static content_mark_t marks[CONTENT_MARKS_MAX];
    for (size_t i = 0; i < c->n_marks; i++) {
        content_mark_at(c, i, &marks[i]);
        FUZZ_CHECK(marks[i].seq >= 1);
        FUZZ_CHECK(i == 0 || memcmp(marks[i - 1].author, marks[i].author, 32) < 0);
    }
    size_t len = 0;
    FUZZ_CHECK(content_encode_chan_read(c->status, marks, c->n_marks, s_out, sizeof s_out, &len)
               == 0);
    FUZZ_CHECK(len == size && memcmp(s_out, data, size) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();

    //  The validator on its own must agree with the reference on any bytes.
    FUZZ_CHECK(content_utf8_valid((const char *)data, size) == s_ref_utf8(data, size));

    content_t c;
    int rc = content_decode(data, size, &c);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc < 0);
        return 0;
    }
    FUZZ_CHECK(size >= 1 && c.type == data[0]);
    if (c.type == CONTENT_TEXT) {
        s_check_text(data, size, &c);
    } else if (c.type == CONTENT_RECEIPT) {
        s_check_receipt(data, size, &c);
    } else if (c.type == CONTENT_CHAN_META) {
        s_check_meta(data, size, &c);
    } else if (c.type == CONTENT_CHAN_READ) {
        s_check_read(data, size, &c);
    } else if (c.type == CONTENT_CHAN_META_AGAIN) {
        s_check_again(data, size, &c);
    } else {
        FUZZ_CHECK(!"content_decode accepted an unknown type");
    }
    return 0;
}
