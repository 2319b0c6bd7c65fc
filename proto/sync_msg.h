/*  proto/sync_msg.h — the RECONCILE and WANT payloads: a strict checker,
 *  readers over a checked payload, and a writer that builds RECONCILE
 *  frames. The format is laid out byte by byte at the top of sync_msg.c
 *  and in proto/SPEC.md §15.
 *
 *  A RECONCILE message holds blocks, one per scope; a block holds ranges
 *  that cover the whole key space in ascending order, each with a mode:
 *  SKIP, FP (the sender's count and fingerprint there), IDS (the sender's
 *  complete list of id prefixes there) or REQ (send me your IDS).
 *
 *  Readers and the writer own nothing: readers view the caller's buffer,
 *  the writer writes into it. Pure: libc and libsodium only.
 */
#ifndef PARLEY_PROTO_SYNC_MSG_H
#define PARLEY_PROTO_SYNC_MSG_H

#include "bytes.h"
#include "errors.h"
#include "limits.h"
#include "sync_set.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Flags of a RECONCILE message. */
#define SYNC_F_OPEN 0x01u   /* first message of a round: lists every scope the sender offers */
#define SYNC_F_DIGEST 0x02u /* OPEN with no blocks, one digest over all scopes (relay to relay) */

/*  Range modes. */
enum { SYNC_SKIP = 0, SYNC_FP = 1, SYNC_IDS = 2, SYNC_REQ = 3 };

typedef struct {
    sync_bound_t upper; /* the range is [previous upper, upper) */
    int mode;           /* SYNC_* */
    uint64_t count;     /* FP: the sender's item count in the range */
    const uint8_t *fp;  /* FP: SYNC_FP_LEN bytes */
    const uint8_t *ids; /* IDS: n_ids × SYNC_PREFIX_LEN bytes, strictly ascending */
    size_t n_ids;       /* IDS: prefixes listed, 0..SYNC_IDS_MAX */
} sync_range_t;

typedef struct {
    const uint8_t *scope;  /* 32 bytes */
    size_t n_hints;        /* 0..SYNC_HINTS_MAX */
    const uint8_t *hints;  /* n_hints × 32: authors seen in the scope */
    size_t n_ranges;       /* 1..SYNC_RANGES_MAX */
    const uint8_t *ranges; /* encoded ranges (checked) */
    size_t ranges_len;     /* their bytes */
} sync_block_t;

/* ---- reading ---- */

/*  Checks a whole RECONCILE payload (after the frame's version and type):
 *  flags u8 | [digest 16 when DIGEST] | n_blocks u16 | blocks. Every count
 *  within the limits, bounds strictly increasing and ending at infinity,
 *  id lists ascending, nothing trailing. */
int sync_msg_check(const uint8_t *buf, size_t len) PARLEY_WUR;

typedef struct {
    bytes_reader_t r;      /* over the payload */
    uint8_t flags;         /* SYNC_F_* */
    const uint8_t *digest; /* DIGEST: SYNC_FP_LEN bytes, else NULL */
    size_t n_blocks;       /* blocks in the message */
    size_t next;           /* blocks read so far */
} sync_msg_reader_t;

/*  Opens a payload that sync_msg_check accepted; blocks view buf. */
void sync_msg_open(sync_msg_reader_t *rd, const uint8_t *buf, size_t len);
bool sync_msg_next(sync_msg_reader_t *rd, sync_block_t *out);

typedef struct {
    bytes_reader_t r; /* over the block's ranges */
    size_t left;      /* ranges not read yet */
    uint64_t prev_ts; /* previous bound's ts: bounds are delta-coded */
} sync_range_reader_t;

void sync_ranges_open(sync_range_reader_t *rd, const sync_block_t *blk);
bool sync_ranges_next(sync_range_reader_t *rd, sync_range_t *out);

/*  WANT payload: n u16 (1..SYNC_WANT_MAX) | n × prefix. Sets *n on success. */
int sync_want_check(const uint8_t *buf, size_t len, size_t *n) PARLEY_WUR;

/* ---- writing ---- */

/*  Builds a RECONCILE frame (frame header included) into a caller buffer.
 *  A block is begun, ranges are added in ascending order, and ended; a
 *  block with nothing but SKIP is taken back out. */
typedef struct {
    bytes_writer_t w;  /* over the buffer */
    uint8_t *start;    /* the buffer */
    uint8_t *n_at;     /* where n_blocks goes */
    size_t n_blocks;   /* blocks ended so far */
    uint8_t *blk_at;   /* start of the open block, or NULL */
    uint8_t *nr_at;    /* where its n_ranges goes */
    size_t n_ranges;   /* ranges in the open block */
    size_t n_open;     /* ranges other than SKIP in the open block */
    uint64_t prev_ts;  /* previous bound's ts in the block */
    sync_bound_t last; /* previous bound in the block (lower of the next range) */
    size_t budget;     /* soft cap of the frame, bytes */
} sync_writer_t;

void sync_writer_init(sync_writer_t *w, uint8_t *buf, size_t cap, uint8_t flags,
                      const uint8_t *digest);
/*  False when the budget is spent (the caller stops adding blocks). */
bool sync_writer_room(const sync_writer_t *w, size_t need);
void sync_writer_begin(sync_writer_t *w, const uint8_t scope[32], const uint8_t *hints,
                       size_t n_hints);
/*  The next range ends at upper. Any gap since the last range becomes SKIP. */
void sync_writer_fp(sync_writer_t *w, const sync_bound_t *lower, const sync_bound_t *upper,
                    const sync_acc_t *acc);
void sync_writer_ids(sync_writer_t *w, const sync_bound_t *lower, const sync_bound_t *upper,
                     sync_set_t *set, size_t lo, size_t hi);
void sync_writer_req(sync_writer_t *w, const sync_bound_t *lower, const sync_bound_t *upper);
void sync_writer_end(sync_writer_t *w);
/*  Blocks written so far (after end). */
size_t sync_writer_blocks(const sync_writer_t *w);
/*  Frame length, or 0 when the writer overflowed its buffer. */
size_t sync_writer_finish(sync_writer_t *w);

void sync_msg_test(bool verbose);

#endif
