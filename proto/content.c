/*  proto/content.c — the plaintext a DM or channel message carries: text,
 *  receipts, a channel's settings and its aggregated receipts.
 *
 *  Owns nothing: a decoded content_t views the caller's buffer. Invariants:
 *  a decoded text is 1..PARLEY_TEXT_MAX bytes of valid UTF-8 with no NUL; a
 *  decoded receipt has a known status and exactly count ids (1..256), a
 *  channel receipt exactly count marks with ascending authors; the
 *  encoders refuse to produce anything the decoder would reject.
 */
#include "content.h"

#include <string.h>

#include "bytes.h"
#include "selftest.h"

#define S_ID_LEN 32u

/*  Decodes the UTF-8 sequence at s (n > 0 bytes left): its length, with
 *  its code point in *cp, or 0 if it is invalid (RFC 3629, Unicode table
 *  3-7: no overlong forms, no surrogates, nothing above U+10FFFF, no
 *  truncated sequence, no stray continuation byte). */
size_t
content_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint8_t lo = 0x80;
    uint8_t hi = 0xbf;
    uint32_t v;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0fu;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07u;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (len > n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    v = (v << 6) | (s[1] & 0x3fu);
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
        v = (v << 6) | (s[i] & 0x3fu);
    }
    *cp = v;
    return len;
}

bool
content_utf8_valid(const char *buf, size_t len)
{
    const uint8_t *s = (const uint8_t *)buf;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t step = content_utf8_decode(s + i, len - i, &cp);
        if (step == 0) {
            return false;
        }
        i += step;
    }
    return true;
}

bool
content_plain(const uint8_t *p, size_t len)
{
    if (!p && len > 0) {
        return false;
    }
    size_t i = 0;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = content_utf8_decode(p + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
            return false;
        }
        i += n;
    }
    return true;
}

bool
content_name_valid(const char *name, size_t len)
{
    return name && len >= 1 && len <= CONTENT_NAME_MAX && content_plain((const uint8_t *)name, len)
           && !memchr(name, ' ', len) && !memchr(name, '#', len) && !memchr(name, ',', len);
}

static int
s_check_text(const char *text, size_t len)
{
    if (len > PARLEY_TEXT_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (!text || len == 0 || memchr(text, '\0', len) || !content_utf8_valid(text, len)) {
        return PARLEY_ERR_MALFORMED;
    }
    return PARLEY_OK;
}

int
content_encode_text(const char *text, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out || !out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    int rc = s_check_text(text, len);
    if (rc != 0) {
        return rc;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, cap);
    bytes_put_u8(&w, CONTENT_TEXT);
    bytes_put(&w, text, len);
    if (!bytes_writer_ok(&w)) {
        return PARLEY_ERR_LIMIT;
    }
    *out_len = 1 + len;
    return PARLEY_OK;
}

static int
s_check_receipt(uint8_t status, const uint8_t *ids, size_t n_ids)
{
    if (n_ids > PARLEY_RECEIPT_MAX_IDS) {
        return PARLEY_ERR_LIMIT;
    }
    if ((status != RECEIPT_DELIVERED && status != RECEIPT_READ) || n_ids == 0 || !ids) {
        return PARLEY_ERR_MALFORMED;
    }
    return PARLEY_OK;
}

int
content_encode_receipt(uint8_t status, const uint8_t *ids, size_t n_ids, uint8_t *out, size_t cap,
                       size_t *out_len)
{
    if (!out || !out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    int rc = s_check_receipt(status, ids, n_ids);
    if (rc != 0) {
        return rc;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, cap);
    bytes_put_u8(&w, CONTENT_RECEIPT);
    bytes_put_u8(&w, status);
    bytes_put_u16(&w, (uint16_t)n_ids);
    bytes_put(&w, ids, n_ids * S_ID_LEN);
    if (!bytes_writer_ok(&w)) {
        return PARLEY_ERR_LIMIT;
    }
    *out_len = 4 + n_ids * S_ID_LEN;
    return PARLEY_OK;
}

static int
s_check_meta(const char *name, size_t name_len, const char *topic, size_t topic_len)
{
    if (name_len > CONTENT_NAME_MAX || topic_len > CONTENT_TOPIC_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (!content_name_valid(name, name_len) || !content_plain((const uint8_t *)topic, topic_len)) {
        return PARLEY_ERR_MALFORMED;
    }
    return PARLEY_OK;
}

int
content_encode_chan_meta(const char *name, size_t name_len, const char *topic, size_t topic_len,
                         uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out || !out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    int rc = s_check_meta(name, name_len, topic, topic_len);
    if (rc != 0) {
        return rc;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, cap);
    bytes_put_u8(&w, CONTENT_CHAN_META);
    bytes_put_u8(&w, (uint8_t)name_len);
    bytes_put(&w, name, name_len);
    if (topic_len > 0) {
        bytes_put(&w, topic, topic_len);
    }
    if (!bytes_writer_ok(&w)) {
        return PARLEY_ERR_LIMIT;
    }
    *out_len = 2 + name_len + topic_len;
    return PARLEY_OK;
}

int
content_encode_chan_meta_again(uint64_t of_ts_ms, const uint8_t of_author[32], uint64_t of_seq,
                               const char *name, size_t name_len, const char *topic,
                               size_t topic_len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out || !out_len || !of_author) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (of_seq == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (cap < CONTENT_AGAIN_FIXED) {
        return PARLEY_ERR_LIMIT;
    }
    size_t len = 0;
    int rc =
        content_encode_chan_meta(name, name_len, topic, topic_len, out + CONTENT_AGAIN_FIXED - 1,
                                 cap - (CONTENT_AGAIN_FIXED - 1), &len);
    if (rc != 0) {
        return rc;
    }
    //  type | of_ts u64 | of_author 32 | of_seq u64, then the settings
    //  without their own type byte (of_seq's last byte goes over it).
    bytes_writer_t w;
    bytes_writer_init(&w, out, CONTENT_AGAIN_FIXED);
    bytes_put_u8(&w, CONTENT_CHAN_META_AGAIN);
    bytes_put_u64(&w, of_ts_ms);
    bytes_put(&w, of_author, 32);
    bytes_put_u64(&w, of_seq);
    if (!bytes_writer_ok(&w)) {
        return PARLEY_ERR_LIMIT;
    }
    *out_len = CONTENT_AGAIN_FIXED + len - 1;
    return PARLEY_OK;
}

//  Checks n marks at p (n × CONTENT_MARK_LEN bytes).
static int
s_check_marks(uint8_t status, const uint8_t *p, size_t n)
{
    if (n > CONTENT_MARKS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if ((status != RECEIPT_DELIVERED && status != RECEIPT_READ) || n == 0 || !p) {
        return PARLEY_ERR_MALFORMED;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *m = p + i * CONTENT_MARK_LEN;
        uint64_t seq = 0;
        for (size_t b = 32; b < CONTENT_MARK_LEN; b++) {
            seq = (seq << 8) | m[b];
        }
        if (seq == 0 || (i > 0 && memcmp(m - CONTENT_MARK_LEN, m, 32) >= 0)) {
            return PARLEY_ERR_MALFORMED;
        }
    }
    return PARLEY_OK;
}

int
content_encode_chan_read(uint8_t status, const content_mark_t *marks, size_t n, uint8_t *out,
                         size_t cap, size_t *out_len)
{
    if (!out || !out_len || (!marks && n > 0)) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    size_t len = 4 + n * CONTENT_MARK_LEN;
    if (n > CONTENT_MARKS_MAX || cap < len) {
        return PARLEY_ERR_LIMIT;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, cap);
    bytes_put_u8(&w, CONTENT_CHAN_READ);
    bytes_put_u8(&w, status);
    bytes_put_u16(&w, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        bytes_put(&w, marks[i].author, 32);
        bytes_put_u64(&w, marks[i].seq);
    }
    int rc = bytes_writer_ok(&w) ? s_check_marks(status, out + 4, n) : PARLEY_ERR_LIMIT;
    if (rc != 0) {
        memset(out, 0, len);
        return rc;
    }
    *out_len = len;
    return PARLEY_OK;
}

void
content_mark_at(const content_t *c, size_t i, content_mark_t *out)
{
    const uint8_t *m = c->marks + i * CONTENT_MARK_LEN;
    memcpy(out->author, m, 32);
    out->seq = 0;
    for (size_t b = 32; b < CONTENT_MARK_LEN; b++) {
        out->seq = (out->seq << 8) | m[b];
    }
}

static int
s_decode_text(bytes_reader_t *r, content_t *out)
{
    size_t len = bytes_remaining(r);
    const char *text = (const char *)bytes_view(r, len);
    int rc = s_check_text(text, len);
    if (rc != 0) {
        return rc;
    }
    out->text = text;
    out->text_len = len;
    return PARLEY_OK;
}

static int
s_decode_receipt(bytes_reader_t *r, content_t *out)
{
    uint8_t status = bytes_get_u8(r);
    size_t n = bytes_get_u16(r);
    if (!bytes_reader_ok(r)) {
        return PARLEY_ERR_MALFORMED;
    }
    if (n > PARLEY_RECEIPT_MAX_IDS) {
        return PARLEY_ERR_LIMIT;
    }
    if (n * S_ID_LEN != bytes_remaining(r)) {
        return PARLEY_ERR_MALFORMED;
    }
    const uint8_t *ids = bytes_view(r, n * S_ID_LEN);
    int rc = s_check_receipt(status, ids, n);
    if (rc != 0) {
        return rc;
    }
    out->status = status;
    out->ids = ids;
    out->n_ids = n;
    return PARLEY_OK;
}

static int
s_decode_meta(bytes_reader_t *r, content_t *out)
{
    size_t name_len = bytes_get_u8(r);
    if (!bytes_reader_ok(r) || name_len > bytes_remaining(r)) {
        return PARLEY_ERR_MALFORMED;
    }
    const char *name = (const char *)bytes_view(r, name_len);
    size_t topic_len = bytes_remaining(r);
    const char *topic = (const char *)bytes_view(r, topic_len);
    int rc = s_check_meta(name, name_len, topic, topic_len);
    if (rc != 0) {
        return rc;
    }
    out->name = name;
    out->name_len = name_len;
    out->text = topic_len ? topic : NULL;
    out->text_len = topic_len;
    return PARLEY_OK;
}

static int
s_decode_read(bytes_reader_t *r, content_t *out)
{
    uint8_t status = bytes_get_u8(r);
    size_t n = bytes_get_u16(r);
    if (!bytes_reader_ok(r)) {
        return PARLEY_ERR_MALFORMED;
    }
    if (n > CONTENT_MARKS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (n * CONTENT_MARK_LEN != bytes_remaining(r)) {
        return PARLEY_ERR_MALFORMED;
    }
    const uint8_t *marks = bytes_view(r, n * CONTENT_MARK_LEN);
    int rc = s_check_marks(status, marks, n);
    if (rc != 0) {
        return rc;
    }
    out->status = status;
    out->marks = marks;
    out->n_marks = n;
    return PARLEY_OK;
}

static int
s_decode(const uint8_t *buf, size_t len, content_t *out)
{
    if (!buf || len == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (len > PARLEY_CONTENT_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    bytes_reader_t r;
    bytes_reader_init(&r, buf, len);
    out->type = bytes_get_u8(&r);
    if (out->type == CONTENT_TEXT) {
        return s_decode_text(&r, out);
    }
    if (out->type == CONTENT_RECEIPT) {
        return s_decode_receipt(&r, out);
    }
    if (out->type == CONTENT_CHAN_META) {
        return s_decode_meta(&r, out);
    }
    if (out->type == CONTENT_CHAN_READ) {
        return s_decode_read(&r, out);
    }
    if (out->type == CONTENT_CHAN_META_AGAIN) {
        out->of_ts_ms = bytes_get_u64(&r);
        out->of_author = bytes_view(&r, 32);
        out->of_seq = bytes_get_u64(&r);
        if (!bytes_reader_ok(&r) || out->of_seq == 0) {
            return PARLEY_ERR_MALFORMED;
        }
        return s_decode_meta(&r, out);
    }
    return PARLEY_ERR_UNSUPPORTED;
}

int
content_decode(const uint8_t *buf, size_t len, content_t *out)
{
    if (!out) {
        return PARLEY_ERR_STATE;
    }
    memset(out, 0, sizeof *out);
    int rc = s_decode(buf, len, out);
    if (rc != 0) {
        uint8_t type = out->type;
        memset(out, 0, sizeof *out);
        /* Keep the type of unknown content so a caller can say what it was. */
        out->type = rc == PARLEY_ERR_UNSUPPORTED ? type : 0;
    }
    return rc;
}

/* ---------------------------------------------------------------- self-test */

static void
s_test_utf8(void)
{
    static const char *const good[] = {
        "",
        "plain ascii",
        "caf\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "\xed\x9f\xbf",
        "\xee\x80\x80",
        "\xf4\x8f\xbf\xbf",
        "\xc2\x80",
        "\xe0\xa0\x80",
        "\xf0\x90\x80\x80",
    };
    static const char *const bad[] = {
        "\x80",
        "\xbf",
        "\xc0\xaf",
        "\xc1\xbf",
        "\xc3",
        "\xe0\x80\xaf",
        "\xe0\x9f\xbf",
        "\xed\xa0\x80",
        "\xed\xbf\xbf",
        "\xf0\x80\x80\xaf",
        "\xf0\x8f\xbf\xbf",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xff",
        "\xfe",
        "\xe2\x82",
        "\xf0\x9f\x98",
        "a\xc3(",
        "\xe2\x28\xa1",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK(content_utf8_valid(good[i], strlen(good[i])));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(!content_utf8_valid(bad[i], strlen(bad[i])));
    }
    CHECK(content_utf8_valid("a\0b", 3)); /* valid UTF-8; text forbids NUL */
}

static void
s_test_text(uint8_t *buf)
{
    const char *hello = "h\xc3\xa9llo";
    size_t len = 0;
    CHECK(content_encode_text(hello, strlen(hello), buf, 6, &len) == PARLEY_ERR_LIMIT);
    CHECK(content_encode_text(hello, strlen(hello), buf, 7, &len) == 0 && len == 7);
    content_t c;
    CHECK(content_decode(buf, len, &c) == 0);
    CHECK(c.type == CONTENT_TEXT && c.text_len == 6 && memcmp(c.text, hello, 6) == 0);
    for (size_t cut = 0; cut < len; cut++) {
        /* Cutting to no text, or inside the two-byte e-acute, must fail. */
        int rc = content_decode(buf, cut, &c);
        CHECK(cut <= 1 || cut == 3 ? rc == PARLEY_ERR_MALFORMED : rc == 0);
    }
    CHECK(content_encode_text("", 0, buf, 8, &len) == PARLEY_ERR_MALFORMED);
    CHECK(content_encode_text("a\0b", 3, buf, 8, &len) == PARLEY_ERR_MALFORMED);
    CHECK(content_encode_text("\xc0\xaf", 2, buf, 8, &len) == PARLEY_ERR_MALFORMED);
    buf[0] = CONTENT_TEXT;
    buf[1] = 'a';
    buf[2] = 0;
    CHECK(content_decode(buf, 3, &c) == PARLEY_ERR_MALFORMED);

    /* The longest text fills the largest content exactly. */
    char *big = malloc(PARLEY_TEXT_MAX + 1);
    CHECK(big);
    memset(big, 'x', PARLEY_TEXT_MAX + 1);
    CHECK(content_encode_text(big, PARLEY_TEXT_MAX + 1, buf, PARLEY_CONTENT_MAX, &len)
          == PARLEY_ERR_LIMIT);
    CHECK(content_encode_text(big, PARLEY_TEXT_MAX, buf, PARLEY_CONTENT_MAX, &len) == 0);
    CHECK(len == PARLEY_CONTENT_MAX - 1);
    CHECK(content_decode(buf, len, &c) == 0 && c.text_len == PARLEY_TEXT_MAX);
    buf[len] = 'x';
    CHECK(content_decode(buf, len + 1, &c) == PARLEY_ERR_LIMIT);
    free(big);
}

static void
s_test_receipt(uint8_t *buf)
{
    uint8_t ids[3 * 32];
    for (size_t i = 0; i < sizeof ids; i++) {
        ids[i] = (uint8_t)i;
    }
    size_t len = 0;
    CHECK(content_encode_receipt(RECEIPT_READ, ids, 3, buf, 4 + 95, &len) == PARLEY_ERR_LIMIT);
    CHECK(content_encode_receipt(RECEIPT_READ, ids, 3, buf, 4 + 96, &len) == 0);
    CHECK(len == 100);
    content_t c;
    CHECK(content_decode(buf, len, &c) == 0);
    CHECK(c.type == CONTENT_RECEIPT && c.status == RECEIPT_READ && c.n_ids == 3);
    CHECK(memcmp(c.ids, ids, sizeof ids) == 0);
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(content_decode(buf, cut, &c) != 0);
    }
    buf[len] = 0;
    CHECK(content_decode(buf, len + 1, &c) == PARLEY_ERR_MALFORMED);
    for (size_t i = 0; i < 4; i++) {
        buf[i] ^= 0x40; /* type, status, count: each makes it invalid */
        CHECK(content_decode(buf, len, &c) != 0);
        buf[i] ^= 0x40;
    }
    CHECK(content_encode_receipt(3, ids, 1, buf, 200, &len) == PARLEY_ERR_MALFORMED);
    CHECK(content_encode_receipt(RECEIPT_DELIVERED, ids, 0, buf, 200, &len)
          == PARLEY_ERR_MALFORMED);
    CHECK(content_encode_receipt(RECEIPT_DELIVERED, ids, 257, buf, 20000, &len)
          == PARLEY_ERR_LIMIT);
    /* A count past the limit is refused before the ids are looked at. */
    const uint8_t huge[] = { CONTENT_RECEIPT, RECEIPT_READ, 0xff, 0xff };
    CHECK(content_decode(huge, sizeof huge, &c) == PARLEY_ERR_LIMIT);
    const uint8_t none[] = { CONTENT_RECEIPT, RECEIPT_READ, 0, 0 };
    CHECK(content_decode(none, sizeof none, &c) == PARLEY_ERR_MALFORMED);
}

static void
s_test_chan_meta(uint8_t *buf)
{
    size_t len = 0;
    const char *topic = "release \xe2\x80\x94 Friday";
    CHECK(content_encode_chan_meta("ops", 3, topic, strlen(topic), buf, 4 + strlen(topic), &len)
          == PARLEY_ERR_LIMIT);
    CHECK(content_encode_chan_meta("ops", 3, topic, strlen(topic), buf, 64, &len) == 0);
    CHECK(len == 5 + strlen(topic));
    content_t c;
    CHECK(content_decode(buf, len, &c) == 0 && c.type == CONTENT_CHAN_META);
    CHECK(c.name_len == 3 && memcmp(c.name, "ops", 3) == 0);
    CHECK(c.text_len == strlen(topic) && memcmp(c.text, topic, c.text_len) == 0);
    for (size_t cut = 0; cut < 5; cut++) {
        CHECK(content_decode(buf, cut, &c) != 0); /* no name, or a name cut short */
    }
    CHECK(content_decode(buf, 5, &c) == 0 && c.text_len == 0 && c.text == NULL);
    CHECK(content_decode(buf, 6, &c) == 0 && c.text_len == 1);
    CHECK(content_decode(buf, 5 + 9, &c) == PARLEY_ERR_MALFORMED); /* a cut em dash */
    static const char *const bad_names[] = { "",     "a b",   "#ops",     "a,b",
                                             "a\tb", "a\x7f", "\xc2\x85", "\xc3" };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        CHECK(content_encode_chan_meta(bad_names[i], strlen(bad_names[i]), "", 0, buf, 64, &len)
              == PARLEY_ERR_MALFORMED);
    }
    CHECK(content_encode_chan_meta("ops", 3, "a\nb", 3, buf, 64, &len) == PARLEY_ERR_MALFORMED);
    char big[CONTENT_TOPIC_MAX + 1];
    memset(big, 'x', sizeof big);
    CHECK(content_encode_chan_meta(big, CONTENT_NAME_MAX + 1, "", 0, buf, 2048, &len)
          == PARLEY_ERR_LIMIT);
    CHECK(content_encode_chan_meta("o", 1, big, sizeof big, buf, 2048, &len) == PARLEY_ERR_LIMIT);
    CHECK(content_encode_chan_meta(big, CONTENT_NAME_MAX, big, CONTENT_TOPIC_MAX, buf, 2048, &len)
          == 0);
    CHECK(content_decode(buf, len, &c) == 0);
    buf[len] = 'x';
    CHECK(content_decode(buf, len + 1, &c) == PARLEY_ERR_LIMIT);
    buf[1] = 0xff; /* a name longer than what follows */
    CHECK(content_decode(buf, 40, &c) == PARLEY_ERR_MALFORMED);

    /* Settings repeated: the place they were made at, then the settings. */
    uint8_t author[32];
    memset(author, 0xA5, sizeof author);
    CHECK(content_encode_chan_meta_again(1700000000123ull, author, 7, "ops", 3, "on call", 7, buf,
                                         2048, &len)
          == 0);
    CHECK(len == CONTENT_AGAIN_FIXED + 1 + 3 + 7 && buf[0] == CONTENT_CHAN_META_AGAIN);
    CHECK(content_decode(buf, len, &c) == 0 && c.type == CONTENT_CHAN_META_AGAIN);
    CHECK(c.of_ts_ms == 1700000000123ull && c.of_seq == 7 && memcmp(c.of_author, author, 32) == 0);
    CHECK(c.name_len == 3 && memcmp(c.name, "ops", 3) == 0);
    CHECK(c.text_len == 7 && memcmp(c.text, "on call", 7) == 0);
    for (size_t cut = 0; cut < CONTENT_AGAIN_FIXED + 2; cut++) {
        CHECK(content_decode(buf, cut, &c) != 0);
    }
    CHECK(content_encode_chan_meta_again(1, author, 0, "ops", 3, "", 0, buf, 2048, &len)
          == PARLEY_ERR_MALFORMED); /* seq 0 names no message */
    CHECK(content_encode_chan_meta_again(1, author, 1, "a b", 3, "", 0, buf, 2048, &len)
          == PARLEY_ERR_MALFORMED);
    CHECK(content_encode_chan_meta_again(1, author, 1, "ops", 3, "", 0, buf, 40, &len)
          == PARLEY_ERR_LIMIT);
    CHECK(content_encode_chan_meta_again(1, author, 1, "ops", 3, "", 0, buf, 2048, &len) == 0);
    memset(buf + 41, 0, 8); /* of_seq 0 */
    CHECK(content_decode(buf, len, &c) == PARLEY_ERR_MALFORMED);
}

static void
s_test_chan_read(uint8_t *buf)
{
    content_mark_t m[3];
    for (size_t i = 0; i < 3; i++) {
        memset(m[i].author, (int)(0x10 * (i + 1)), 32);
        m[i].seq = 1000 * (i + 1) + 7;
    }
    size_t len = 0;
    CHECK(content_encode_chan_read(RECEIPT_READ, m, 3, buf, 123, &len) == PARLEY_ERR_LIMIT);
    CHECK(content_encode_chan_read(RECEIPT_READ, m, 3, buf, 124, &len) == 0 && len == 124);
    content_t c;
    CHECK(content_decode(buf, len, &c) == 0 && c.type == CONTENT_CHAN_READ);
    CHECK(c.status == RECEIPT_READ && c.n_marks == 3);
    for (size_t i = 0; i < 3; i++) {
        content_mark_t got;
        content_mark_at(&c, i, &got);
        CHECK(memcmp(got.author, m[i].author, 32) == 0 && got.seq == m[i].seq);
    }
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(content_decode(buf, cut, &c) != 0);
    }
    memcpy(buf + 4 + CONTENT_MARK_LEN, buf + 4, 32); /* the second author equals the first */
    CHECK(content_decode(buf, len, &c) == PARLEY_ERR_MALFORMED);
    content_mark_t swapped[2] = { m[1], m[0] };
    CHECK(content_encode_chan_read(RECEIPT_READ, swapped, 2, buf, 200, &len)
          == PARLEY_ERR_MALFORMED);
    m[0].seq = 0;
    CHECK(content_encode_chan_read(RECEIPT_READ, m, 1, buf, 200, &len) == PARLEY_ERR_MALFORMED);
    m[0].seq = 1;
    CHECK(content_encode_chan_read(9, m, 1, buf, 200, &len) == PARLEY_ERR_MALFORMED);
    CHECK(content_encode_chan_read(RECEIPT_READ, m, 0, buf, 200, &len) == PARLEY_ERR_MALFORMED);
    const uint8_t huge[] = { CONTENT_CHAN_READ, RECEIPT_READ, 0x01, 0x01 };
    CHECK(content_decode(huge, sizeof huge, &c) == PARLEY_ERR_LIMIT);
}

void
content_test(bool verbose)
{
    if (verbose) {
        printf(" * content: UTF-8, text, receipts, unknown types\n");
    }
    uint8_t *buf = malloc(PARLEY_CONTENT_MAX + 1);
    CHECK(buf);
    s_test_utf8();
    s_test_text(buf);
    s_test_receipt(buf);
    s_test_chan_meta(buf);
    s_test_chan_read(buf);
    const uint8_t future[] = { 0x7f, 1, 2, 3 };
    content_t c;
    CHECK(content_decode(future, sizeof future, &c) == PARLEY_ERR_UNSUPPORTED);
    CHECK(c.type == 0x7f && c.text == NULL);
    CHECK(content_decode(NULL, 0, &c) == PARLEY_ERR_MALFORMED);
    free(buf);
}
