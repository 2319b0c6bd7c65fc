/*  proto/bytes.c — bounds-checked big-endian byte reader and writer.
 *
 *  Owns nothing: a reader views the caller's buffer, a writer fills it.
 *  Invariants: p never passes end; every length check has the form
 *  `n > (size_t)(end - p)`, which cannot overflow; once a reader or writer
 *  fails it stays failed, reads yield zeros and writes change nothing.
 */
#include "bytes.h"

#include <string.h>

#include "selftest.h"

void
bytes_reader_init(bytes_reader_t *r, const uint8_t *buf, size_t len)
{
    r->p = buf;
    r->end = buf ? buf + len : buf;
    r->failed = false;
}

/*  Returns the next n bytes and skips them, or NULL (failing the reader). */
static const uint8_t *
s_take(bytes_reader_t *r, size_t n)
{
    if (r->failed || n > (size_t)(r->end - r->p)) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

uint8_t
bytes_get_u8(bytes_reader_t *r)
{
    const uint8_t *b = s_take(r, 1);
    return b ? b[0] : 0;
}

uint16_t
bytes_get_u16(bytes_reader_t *r)
{
    const uint8_t *b = s_take(r, 2);
    if (!b) {
        return 0;
    }
    return (uint16_t)((uint16_t)b[0] << 8 | b[1]);
}

uint32_t
bytes_get_u32(bytes_reader_t *r)
{
    const uint8_t *b = s_take(r, 4);
    if (!b) {
        return 0;
    }
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

uint64_t
bytes_get_u64(bytes_reader_t *r)
{
    const uint8_t *b = s_take(r, 8);
    if (!b) {
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        v = v << 8 | b[i];
    }
    return v;
}

/*  LEB128: 7 bits a byte, least significant first, high bit = more. Only
 *  the shortest form is accepted (no trailing zero groups), at most 10
 *  bytes, and nothing above 2^64 - 1. */
uint64_t
bytes_get_varint(bytes_reader_t *r)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        const uint8_t *b = s_take(r, 1);
        if (!b) {
            return 0;
        }
        uint64_t group = *b & 0x7fu;
        if ((i == 9 && *b > 1) || (i > 0 && *b == 0)) {
            r->failed = true; // past 64 bits, or a non-minimal encoding
            return 0;
        }
        v |= group << (7 * i);
        if (!(*b & 0x80u)) {
            return v;
        }
    }
    r->failed = true;
    return 0;
}

void
bytes_get(bytes_reader_t *r, void *out, size_t n)
{
    const uint8_t *b = s_take(r, n);
    if (n == 0) {
        return;
    }
    if (b) {
        memcpy(out, b, n);
    } else {
        memset(out, 0, n);
    }
}

const uint8_t *
bytes_view(bytes_reader_t *r, size_t n)
{
    return s_take(r, n);
}

size_t
bytes_remaining(const bytes_reader_t *r)
{
    return r->failed ? 0 : (size_t)(r->end - r->p);
}

bool
bytes_reader_ok(const bytes_reader_t *r)
{
    return !r->failed;
}

bool
bytes_reader_done(const bytes_reader_t *r)
{
    return !r->failed && r->p == r->end;
}

void
bytes_writer_init(bytes_writer_t *w, uint8_t *buf, size_t cap)
{
    w->p = buf;
    w->end = buf ? buf + cap : buf;
    w->failed = false;
}

/*  Returns room for the next n bytes and skips it, or NULL (failing). */
static uint8_t *
s_room(bytes_writer_t *w, size_t n)
{
    if (w->failed || n > (size_t)(w->end - w->p)) {
        w->failed = true;
        return NULL;
    }
    uint8_t *at = w->p;
    w->p += n;
    return at;
}

static void
s_put_be(bytes_writer_t *w, uint64_t v, size_t n)
{
    uint8_t *b = s_room(w, n);
    if (!b) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        b[n - 1 - i] = (uint8_t)(v >> (8 * i));
    }
}

void
bytes_put_u8(bytes_writer_t *w, uint8_t v)
{
    s_put_be(w, v, 1);
}

void
bytes_put_u16(bytes_writer_t *w, uint16_t v)
{
    s_put_be(w, v, 2);
}

void
bytes_put_u32(bytes_writer_t *w, uint32_t v)
{
    s_put_be(w, v, 4);
}

void
bytes_put_u64(bytes_writer_t *w, uint64_t v)
{
    s_put_be(w, v, 8);
}

void
bytes_put_varint(bytes_writer_t *w, uint64_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7fu);
        v >>= 7;
        s_put_be(w, v ? (uint8_t)(b | 0x80u) : b, 1);
    } while (v);
}

/*  memmove, not memcpy: callers may encrypt a body in place in the output
 *  buffer and then "copy" it onto itself (envelope_seal does). */
void
bytes_put(bytes_writer_t *w, const void *data, size_t n)
{
    uint8_t *b = s_room(w, n);
    if (b && n > 0) {
        memmove(b, data, n);
    }
}

bool
bytes_writer_ok(const bytes_writer_t *w)
{
    return !w->failed;
}

/* ---------------------------------------------------------------- self-test */

static void
s_test_reader(void)
{
    const uint8_t buf[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                            0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f };
    bytes_reader_t r;
    bytes_reader_init(&r, buf, sizeof buf);
    CHECK(bytes_get_u8(&r) == 0x01);
    CHECK(bytes_get_u16(&r) == 0x0203);
    CHECK(bytes_get_u32(&r) == 0x04050607u);
    CHECK(bytes_get_u64(&r) == 0x08090a0b0c0d0e0full);
    CHECK(bytes_reader_done(&r));
    CHECK(bytes_remaining(&r) == 0);
    /* Past the end: fails, yields zero, stays failed. */
    CHECK(bytes_get_u8(&r) == 0);
    CHECK(!bytes_reader_ok(&r));
    CHECK(!bytes_reader_done(&r));

    bytes_reader_init(&r, buf, sizeof buf);
    CHECK(bytes_view(&r, 14) == buf);
    CHECK(bytes_get_u16(&r) == 0); /* one byte left: fails */
    CHECK(bytes_get_u8(&r) == 0);  /* latched even though a byte remains */
    CHECK(bytes_remaining(&r) == 0);

    uint8_t out[4] = { 0xff, 0xff, 0xff, 0xff };
    bytes_reader_init(&r, buf, 3);
    bytes_get(&r, out, 4);
    CHECK(!bytes_reader_ok(&r));
    CHECK(out[0] == 0 && out[3] == 0);

    /* Every truncation of a u64 read fails cleanly. */
    for (size_t len = 0; len < 8; len++) {
        bytes_reader_init(&r, buf, len);
        CHECK(bytes_get_u64(&r) == 0);
        CHECK(!bytes_reader_ok(&r));
    }
    /* A huge n cannot wrap the pointer. */
    bytes_reader_init(&r, buf, sizeof buf);
    CHECK(bytes_view(&r, SIZE_MAX) == NULL);
    bytes_reader_init(&r, NULL, 0);
    CHECK(bytes_reader_done(&r));
    CHECK(bytes_get_u8(&r) == 0 && !bytes_reader_ok(&r));
}

static void
s_test_writer(void)
{
    uint8_t buf[15];
    bytes_writer_t w;
    bytes_writer_init(&w, buf, sizeof buf);
    bytes_put_u8(&w, 0x01);
    bytes_put_u16(&w, 0x0203);
    bytes_put_u32(&w, 0x04050607u);
    bytes_put_u64(&w, 0x08090a0b0c0d0e0full);
    CHECK(bytes_writer_ok(&w));
    for (size_t i = 0; i < sizeof buf; i++) {
        CHECK(buf[i] == i + 1);
    }
    bytes_put_u8(&w, 0xee);
    CHECK(!bytes_writer_ok(&w));

    uint8_t small[3] = { 0xaa, 0xaa, 0xaa };
    bytes_writer_init(&w, small, sizeof small);
    bytes_put_u32(&w, 0x11223344u);
    CHECK(!bytes_writer_ok(&w));
    CHECK(small[0] == 0xaa && small[2] == 0xaa); /* nothing partial written */
    bytes_put_u8(&w, 0x55);                      /* latched */
    CHECK(small[0] == 0xaa);

    /* In-place put (same source and destination) is allowed. */
    uint8_t inplace[4] = { 1, 2, 3, 4 };
    bytes_writer_init(&w, inplace, sizeof inplace);
    bytes_put(&w, inplace, 4);
    CHECK(bytes_writer_ok(&w) && inplace[3] == 4);
    bytes_writer_init(&w, inplace, sizeof inplace);
    bytes_put(&w, NULL, 0);
    CHECK(bytes_writer_ok(&w));
}

static void
s_test_varint(void)
{
    const uint64_t vals[] = { 0,         1, 127, 128, 300, 16383, 16384, UINT32_MAX, UINT64_MAX - 1,
                              UINT64_MAX };
    const size_t lens[] = { 1, 1, 1, 2, 2, 2, 3, 5, 10, 10 };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t buf[10];
        bytes_writer_t w;
        bytes_writer_init(&w, buf, sizeof buf);
        bytes_put_varint(&w, vals[i]);
        CHECK(bytes_writer_ok(&w) && (size_t)(w.p - buf) == lens[i]);
        bytes_reader_t r;
        bytes_reader_init(&r, buf, lens[i]);
        CHECK(bytes_get_varint(&r) == vals[i] && bytes_reader_done(&r));
        /* every truncation fails */
        for (size_t n = 0; n < lens[i]; n++) {
            bytes_reader_init(&r, buf, n);
            (void)bytes_get_varint(&r);
            CHECK(!bytes_reader_ok(&r));
        }
    }
    /* non-minimal forms and values past 64 bits are refused */
    const uint8_t nonmin[] = { 0x80, 0x00 };
    const uint8_t big[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
    const uint8_t longer[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81, 0x01 };
    bytes_reader_t r;
    bytes_reader_init(&r, nonmin, sizeof nonmin);
    (void)bytes_get_varint(&r);
    CHECK(!bytes_reader_ok(&r));
    bytes_reader_init(&r, big, sizeof big);
    (void)bytes_get_varint(&r);
    CHECK(!bytes_reader_ok(&r));
    bytes_reader_init(&r, longer, sizeof longer);
    (void)bytes_get_varint(&r);
    CHECK(!bytes_reader_ok(&r));
}

void
bytes_test(bool verbose)
{
    if (verbose) {
        printf(" * bytes: reader, writer, varints, latching, truncation\n");
    }
    s_test_reader();
    s_test_writer();
    s_test_varint();
}
