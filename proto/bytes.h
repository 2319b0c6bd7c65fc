/*  proto/bytes.h — bounds-checked big-endian byte reader and writer.
 *
 *  Every decoder in proto/ reads through bytes_reader_t: each get checks the
 *  remaining length in the form `n > (size_t)(end - p)` and latches an error,
 *  so a decoder can read a whole structure and test bytes_reader_ok() once.
 *  A failed reader never reads past its buffer and yields zeros.
 */
#ifndef PARLEY_PROTO_BYTES_H
#define PARLEY_PROTO_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last byte */
    bool failed;        /* latched: a read ran past the end */
} bytes_reader_t;

typedef struct {
    uint8_t *p;   /* next byte to write */
    uint8_t *end; /* one past the last writable byte */
    bool failed;  /* latched: a write would not fit */
} bytes_writer_t;

void bytes_reader_init(bytes_reader_t *r, const uint8_t *buf, size_t len);
uint8_t bytes_get_u8(bytes_reader_t *r);
uint16_t bytes_get_u16(bytes_reader_t *r);
uint32_t bytes_get_u32(bytes_reader_t *r);
uint64_t bytes_get_u64(bytes_reader_t *r);
/*  Unsigned LEB128, shortest form only, at most 10 bytes. */
uint64_t bytes_get_varint(bytes_reader_t *r);
/*  Copies n bytes into out (zeros on failure). */
void bytes_get(bytes_reader_t *r, void *out, size_t n);
/*  Returns a pointer to the next n bytes inside the buffer and skips them,
 *  or NULL (and fails the reader) if fewer remain. */
const uint8_t *bytes_view(bytes_reader_t *r, size_t n);
size_t bytes_remaining(const bytes_reader_t *r);
bool bytes_reader_ok(const bytes_reader_t *r);
/*  True when the reader has not failed and consumed the whole buffer. */
bool bytes_reader_done(const bytes_reader_t *r);

void bytes_writer_init(bytes_writer_t *w, uint8_t *buf, size_t cap);
void bytes_put_u8(bytes_writer_t *w, uint8_t v);
void bytes_put_u16(bytes_writer_t *w, uint16_t v);
void bytes_put_u32(bytes_writer_t *w, uint32_t v);
void bytes_put_u64(bytes_writer_t *w, uint64_t v);
void bytes_put_varint(bytes_writer_t *w, uint64_t v);
void bytes_put(bytes_writer_t *w, const void *data, size_t n);
bool bytes_writer_ok(const bytes_writer_t *w);

void bytes_test(bool verbose);

#endif
