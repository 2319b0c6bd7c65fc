/*  tools/qr.c — a QR code encoder (ISO/IEC 18004:2015) and its terminal
 *  rendering. See qr.h for the choices of mode and level.
 *
 *  Owns nothing; no allocation, no globals. Invariants: qr_encode writes a
 *  whole symbol or an all-zero qr_t; every buffer is sized for the largest
 *  version, and the capacity check runs before any bit is written, so no
 *  input can overflow one (a write past a size is a programmer error and
 *  asserts).
 *
 *  How a symbol is made (tables and annexes are ISO 18004's):
 *
 *    1. Data: mode indicator (4 bits), character count (9, 11 or 13
 *       bits for alphanumeric, 8 or 16 for bytes, by version), the data,
 *       a terminator of up to 4 zero bits, zero bits to a byte boundary,
 *       then the pad codewords 0xEC 0x11 alternately up to the capacity.
 *    2. Error correction: the data codewords are cut into blocks
 *       (Table 9: some blocks one codeword longer than the others, those
 *       last), each gets Reed-Solomon codewords over GF(256) modulo
 *       x^8+x^4+x^3+x^2+1 with the generator prod (x - a^i), i = 0..n-1.
 *       The final message takes the i-th data codeword of each block in
 *       turn, then the i-th EC codeword of each block in turn.
 *    3. Matrix: finder patterns with their separators in three
 *       corners, timing patterns on row and column 6, alignment patterns
 *       (version 2 on, Annex E), the dark module at (8, size - 8), room for
 *       the format information and (version 7 on) the version information.
 *       The message fills the remaining modules in two-column strips from
 *       the right, upward then downward, skipping column 6; remainder bits
 *       stay light.
 *    4. Masking: each of the eight patterns is XORed onto the message
 *       modules and scored (N1 runs of five or more, N2 2x2 blocks, N3
 *       finder-like 1:1:3:1:1 runs beside four light modules, with the
 *       quiet zone counting as light, N4 the dark share's distance from
 *       50 %); the lowest score wins, the first one on a tie.
 *    5. Format information: level and mask, BCH(15,5) with generator
 *       0x537, XOR 0x5412, twice. Version information: the version,
 *       BCH(18,6) with generator 0x1F25, twice.
 *
 *  Coordinates: x is the column, y the row, (0, 0) the top-left module.
 */
#include "qr.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "../proto/selftest.h"

/* The largest counts of any version and level this file encodes (40-L). */
#define S_DATA_MAX 2956u /* data codewords */
#define S_RAW_MAX 3706u  /* all codewords */
#define S_ECC_MAX 30u    /* EC codewords of one block */

/* ------------------------------------------------------------------ tables */

/*  EC codewords per block and number of blocks, by level (QR_ECL_L,
 *  QR_ECL_M) and version (index 0 unused): ISO 18004 Table 9. */
static const uint8_t s_ecc_per_block[2][41] = {
    { 0,  7,  10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28,
      28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30 },
    { 0,  10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
      26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28 },
};
static const uint8_t s_blocks[2][41] = {
    { 0, 1, 1, 1,  1,  1,  2,  2,  2,  2,  4,  4,  4,  4,  4,  6,  6,  6,  6,  7, 8,
      8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25 },
    { 0,  1,  1,  1,  2,  2,  4,  4,  4,  5,  5,  5,  8,  9,  9,  10, 10, 11, 13, 14, 16,
      17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49 },
};

/*  Format information's 2-bit level indicators, indexed by qr_ecl_t. */
static const uint8_t s_ecl_bits[4] = { 1, 0, 3, 2 };

/*  The alphanumeric set; a character's value is its index. */
static const char s_alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/* ------------------------------------------------------------- capacities */

static size_t
s_size(unsigned version)
{
    return 17u + 4u * version;
}

/*  Modules left for the message (data, EC and remainder bits) once the
 *  function patterns and the format and version areas are taken. */
static size_t
s_raw_modules(unsigned v)
{
    size_t n = (16u * v + 128u) * v + 64u; /* all minus finders, timing, format */
    if (v >= 2) {
        size_t align = v / 7u + 2u; /* alignment patterns per row */
        /* align^2 - 3 patterns of 25 modules; the 2 (align - 2) of them on
         * a timing pattern share 5 modules with it, counted there. */
        n -= (25u * align - 10u) * align - 55u;
        if (v >= 7) {
            n -= 36u; /* two version information blocks */
        }
    }
    return n;
}

static size_t
s_raw_codewords(unsigned v)
{
    return s_raw_modules(v) / 8u;
}

static size_t
s_data_codewords(unsigned v, qr_ecl_t ecl)
{
    return s_raw_codewords(v) - (size_t)s_ecc_per_block[ecl][v] * s_blocks[ecl][v];
}

/*  Bits of the character count field (Table 3). */
static unsigned
s_count_bits(qr_mode_t mode, unsigned v)
{
    unsigned range = v <= 9 ? 0 : v <= 26 ? 1 : 2;
    static const unsigned alnum[3] = { 9, 11, 13 };
    static const unsigned bytes[3] = { 8, 16, 16 };
    return mode == QR_MODE_ALNUM ? alnum[range] : bytes[range];
}

/*  Bits the whole segment takes in version v, header included. len is at
 *  most QR_INPUT_MAX, so nothing overflows. */
static size_t
s_segment_bits(qr_mode_t mode, size_t len, unsigned v)
{
    size_t payload = mode == QR_MODE_ALNUM ? len / 2u * 11u + len % 2u * 6u : len * 8u;
    return 4u + s_count_bits(mode, v) + payload;
}

/*  The level and smallest version that hold the segment: M first, then L
 *  (qr.h says why). PARLEY_ERR_LIMIT if none does. */
static int
s_choose(qr_mode_t mode, size_t len, qr_ecl_t *ecl, unsigned *version)
{
    static const qr_ecl_t order[2] = { QR_ECL_M, QR_ECL_L };
    for (size_t i = 0; i < 2; i++) {
        for (unsigned v = QR_VERSION_MIN; v <= QR_VERSION_MAX; v++) {
            if (len <= QR_INPUT_MAX && len < (1u << s_count_bits(mode, v))
                && s_segment_bits(mode, len, v) <= s_data_codewords(v, order[i]) * 8u) {
                *ecl = order[i];
                *version = v;
                return PARLEY_OK;
            }
        }
    }
    return PARLEY_ERR_LIMIT;
}

/* ----------------------------------------------------------- data stream */

typedef struct {
    uint8_t *buf; /* zeroed before the first bit */
    size_t cap;   /* bytes of buf */
    size_t bits;  /* bits written */
} s_bits_t;

/*  Appends the low n bits of value, most significant first. */
static void
s_put(s_bits_t *b, uint32_t value, unsigned n)
{
    assert(n <= 16 && b->bits + n <= b->cap * 8u);
    for (unsigned i = n; i-- > 0;) {
        if ((value >> i) & 1u) {
            b->buf[b->bits / 8u] |= (uint8_t)(0x80u >> (b->bits % 8u));
        }
        b->bits++;
    }
}

static int
s_alnum_value(uint8_t c)
{
    const char *p = c ? memchr(s_alnum, c, sizeof s_alnum - 1) : NULL;
    return p ? (int)(p - s_alnum) : -1;
}

static bool
s_is_alnum(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s_alnum_value(data[i]) < 0) {
            return false;
        }
    }
    return true;
}

/*  Writes the n data codewords of the segment (step 1) into out. */
static void
s_data_stream(const uint8_t *data, size_t len, qr_mode_t mode, unsigned v, uint8_t *out, size_t n)
{
    memset(out, 0, n);
    s_bits_t b = { .buf = out, .cap = n, .bits = 0 };
    s_put(&b, (uint32_t)mode, 4);
    s_put(&b, (uint32_t)len, s_count_bits(mode, v));
    if (mode == QR_MODE_ALNUM) {
        for (size_t i = 0; i + 1 < len; i += 2) {
            s_put(&b, (uint32_t)(s_alnum_value(data[i]) * 45 + s_alnum_value(data[i + 1])), 11);
        }
        if (len % 2u) {
            s_put(&b, (uint32_t)s_alnum_value(data[len - 1]), 6);
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            s_put(&b, data[i], 8);
        }
    }
    size_t room = n * 8u - b.bits;
    s_put(&b, 0, room < 4u ? (unsigned)room : 4u); /* terminator */
    s_put(&b, 0, (8u - b.bits % 8u) % 8u);
    for (uint8_t pad = 0xEC; b.bits < n * 8u; pad ^= 0xEC ^ 0x11) {
        s_put(&b, pad, 8);
    }
}

/* -------------------------------------------------------- Reed-Solomon */

/*  Product in GF(256) modulo x^8 + x^4 + x^3 + x^2 + 1 (0x11D), bit by bit:
 *  under 100,000 products a symbol (data codewords × EC codewords of a
 *  block), so no log tables are needed. */
static uint8_t
s_gf_mul(uint8_t a, uint8_t b)
{
    unsigned r = 0;
    for (int i = 7; i >= 0; i--) {
        r = (r << 1) ^ ((r >> 7) * 0x11Du);
        r ^= ((b >> i) & 1u) * a;
    }
    return (uint8_t)r;
}

/*  The generator of degree n, prod (x - a^i) for i = 0..n-1, without its
 *  leading 1: gen[0] is the coefficient of x^(n-1), gen[n-1] of x^0. */
static void
s_rs_generator(size_t n, uint8_t gen[S_ECC_MAX])
{
    assert(n >= 1 && n <= S_ECC_MAX);
    memset(gen, 0, n);
    gen[n - 1] = 1; /* the polynomial 1 */
    uint8_t root = 1;
    for (size_t i = 0; i < n; i++) {
        /* Multiply by (x - root), which in GF(2^8) is (x + root). */
        for (size_t j = 0; j < n; j++) {
            gen[j] = s_gf_mul(gen[j], root);
            if (j + 1 < n) {
                gen[j] ^= gen[j + 1];
            }
        }
        root = s_gf_mul(root, 0x02);
    }
}

/*  The n EC codewords of data: the remainder of data(x) * x^n divided by
 *  the generator. */
static void
s_rs_remainder(const uint8_t *data, size_t len, const uint8_t *gen, size_t n, uint8_t *ecc)
{
    memset(ecc, 0, n);
    for (size_t i = 0; i < len; i++) {
        uint8_t factor = data[i] ^ ecc[0];
        memmove(ecc, ecc + 1, n - 1);
        ecc[n - 1] = 0;
        for (size_t j = 0; j < n; j++) {
            ecc[j] ^= s_gf_mul(gen[j], factor);
        }
    }
}

/*  Cuts the data codewords into blocks, adds each block's EC codewords and
 *  interleaves them all into out (s_raw_codewords(v) bytes; step 2). */
static void
s_interleave(const uint8_t *data, unsigned v, qr_ecl_t ecl, uint8_t *out)
{
    size_t blocks = s_blocks[ecl][v];
    size_t ecc_len = s_ecc_per_block[ecl][v];
    size_t raw = s_raw_codewords(v);
    size_t n_long = raw % blocks;               /* blocks one codeword longer */
    size_t short_len = raw / blocks - ecc_len;  /* data codewords of a short one */
    size_t data_len = s_data_codewords(v, ecl); /* of all blocks */
    uint8_t gen[S_ECC_MAX];
    s_rs_generator(ecc_len, gen);
    size_t start = 0;
    for (size_t blk = 0; blk < blocks; blk++) {
        size_t len = short_len + (blk >= blocks - n_long ? 1u : 0u);
        for (size_t i = 0; i < len; i++) {
            /* Short blocks' i-th codewords come first, one per block; the
             * long blocks' extra one comes after all of those. */
            size_t pos =
                i < short_len ? i * blocks + blk : short_len * blocks + blk - (blocks - n_long);
            out[pos] = data[start + i];
        }
        uint8_t ecc[S_ECC_MAX];
        s_rs_remainder(data + start, len, gen, ecc_len, ecc);
        for (size_t i = 0; i < ecc_len; i++) {
            out[data_len + i * blocks + blk] = ecc[i];
        }
        sodium_memzero(ecc, sizeof ecc);
        start += len;
    }
    assert(start == data_len);
}

/* ----------------------------------------------------------------- matrix */

/*  A bit per module, as qr_t.modules. */
typedef uint8_t s_map_t[QR_SIZE_MAX * QR_ROW_BYTES];

static bool
s_get(const uint8_t *map, size_t x, size_t y)
{
    return (map[y * QR_ROW_BYTES + x / 8u] >> (x % 8u)) & 1u;
}

static void
s_set(uint8_t *map, size_t x, size_t y, bool dark)
{
    uint8_t bit = (uint8_t)(1u << (x % 8u));
    if (dark) {
        map[y * QR_ROW_BYTES + x / 8u] |= bit;
    } else {
        map[y * QR_ROW_BYTES + x / 8u] &= (uint8_t)~bit;
    }
}

static long
s_max(long a, long b)
{
    return a > b ? a : b;
}

/*  Sets a function module: its colour in the symbol, and taken in fn. */
static void
s_fn(qr_t *qr, uint8_t *fn, size_t x, size_t y, bool dark)
{
    s_set(qr->modules, x, y, dark);
    s_set(fn, x, y, true);
}

/*  The centre coordinates of the alignment patterns (Annex E) in pos;
 *  returns how many (0 for version 1). The first is always 6, the last
 *  size - 7, those between evenly spaced by an even step, rounded so the
 *  gap next to 6 takes up the slack. */
static size_t
s_alignment_positions(unsigned v, size_t pos[7])
{
    if (v < 2) {
        return 0;
    }
    size_t n = v / 7u + 2u;
    size_t step = v == 32 ? 26u : (v * 4u + n * 2u + 1u) / (n * 2u - 2u) * 2u;
    pos[0] = 6;
    for (size_t i = n - 1, p = s_size(v) - 7u; i >= 1; i--, p -= step) {
        pos[i] = p;
    }
    return n;
}

/*  15 format bits for a level indicator and mask. */
static uint32_t
s_format_bits(unsigned ecl_bits, unsigned mask)
{
    uint32_t data = (uint32_t)(ecl_bits << 3 | mask);
    uint32_t rem = data;
    for (int i = 0; i < 10; i++) {
        rem = (rem << 1) ^ ((rem >> 9) * 0x537u);
    }
    return (data << 10 | (rem & 0x3FFu)) ^ 0x5412u;
}

/*  18 version bits. */
static uint32_t
s_version_bits(unsigned v)
{
    uint32_t rem = v;
    for (int i = 0; i < 12; i++) {
        rem = (rem << 1) ^ ((rem >> 11) * 0x1F25u);
    }
    return (uint32_t)v << 12 | (rem & 0xFFFu);
}

/*  Where format bit i (0 = least significant) goes, copy 0 beside the
 *  top-left finder, copy 1 split between the other two. */
static void
s_format_xy(size_t size, unsigned copy, unsigned i, size_t *x, size_t *y)
{
    if (copy == 0) {
        if (i < 6) {
            *x = 8, *y = i;
        } else if (i < 8) {
            *x = 8, *y = i + 1u; /* skips the timing row */
        } else if (i == 8) {
            *x = 7, *y = 8;
        } else {
            *x = 14u - i, *y = 8;
        }
    } else if (i < 8) {
        *x = size - 1u - i, *y = 8;
    } else {
        *x = 8, *y = size - 15u + i;
    }
}

/*  Where version bit i goes: copy 0 above the bottom-left finder, copy 1
 *  (the transpose) left of the top-right one. */
static void
s_version_xy(size_t size, unsigned copy, unsigned i, size_t *x, size_t *y)
{
    size_t a = size - 11u + i % 3u, b = i / 3u;
    *x = copy == 0 ? b : a;
    *y = copy == 0 ? a : b;
}

static void
s_draw_format(qr_t *qr, uint8_t *fn, unsigned ecl_bits, unsigned mask)
{
    uint32_t bits = s_format_bits(ecl_bits, mask);
    for (unsigned copy = 0; copy < 2; copy++) {
        for (unsigned i = 0; i < 15; i++) {
            size_t x, y;
            s_format_xy(qr->size, copy, i, &x, &y);
            s_fn(qr, fn, x, y, (bits >> i) & 1u);
        }
    }
    s_fn(qr, fn, 8, qr->size - 8u, true); /* the dark module */
}

/*  Draws every function pattern of qr->version into qr and marks it in fn
 *  (the format areas with placeholder bits). */
static void
s_draw_function_patterns(qr_t *qr, uint8_t *fn)
{
    size_t size = qr->size;
    for (size_t i = 0; i < size; i++) {
        s_fn(qr, fn, 6, i, i % 2u == 0);
        s_fn(qr, fn, i, 6, i % 2u == 0);
    }
    /* Finders with their separators: rings at distance 0..4 from the
     * centre are dark (0, 1, 3) or light (2, 4); the outer light ring is
     * the separator, cut off by the symbol's edge on two sides. */
    const long far = (long)size - 4;
    const long centre[3][2] = { { 3, 3 }, { far, 3 }, { 3, far } };
    for (size_t f = 0; f < 3; f++) {
        for (long dy = -4; dy <= 4; dy++) {
            for (long dx = -4; dx <= 4; dx++) {
                long x = centre[f][0] + dx, y = centre[f][1] + dy;
                long d = s_max(labs(dx), labs(dy));
                if (x >= 0 && y >= 0 && x < (long)size && y < (long)size) {
                    s_fn(qr, fn, (size_t)x, (size_t)y, d != 2 && d != 4);
                }
            }
        }
    }
    size_t pos[7];
    size_t n = s_alignment_positions(qr->version, pos);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if ((i == 0 && j == 0) || (i == 0 && j == n - 1) || (i == n - 1 && j == 0)) {
                continue; /* those corners hold finders */
            }
            for (long dy = -2; dy <= 2; dy++) {
                for (long dx = -2; dx <= 2; dx++) {
                    /* Dark centre and outer ring, light ring between. */
                    s_fn(qr, fn, (size_t)((long)pos[i] + dx), (size_t)((long)pos[j] + dy),
                         s_max(labs(dx), labs(dy)) != 1);
                }
            }
        }
    }
    s_draw_format(qr, fn, 0, 0);
    if (qr->version >= 7) {
        uint32_t bits = s_version_bits(qr->version);
        for (unsigned copy = 0; copy < 2; copy++) {
            for (unsigned i = 0; i < 18; i++) {
                size_t x, y;
                s_version_xy(size, copy, i, &x, &y);
                s_fn(qr, fn, x, y, (bits >> i) & 1u);
            }
        }
    }
}

/*  Calls visit(ctx, x, y, index) for every message module in placement
 *  order: two-column strips from the right, the rightmost column
 *  first in each row, upward in the first strip and alternating; column 6
 *  (the timing pattern) is skipped whole. */
static void
s_walk(const qr_t *qr, const uint8_t *fn, void (*visit)(void *, size_t, size_t, size_t), void *ctx)
{
    size_t size = qr->size, index = 0;
    bool upward = true;
    for (size_t right = size - 1u; right >= 1u; right -= 2u) {
        if (right == 6) {
            right = 5;
        }
        for (size_t k = 0; k < size; k++) {
            size_t y = upward ? size - 1u - k : k;
            for (size_t j = 0; j < 2; j++) {
                size_t x = right - j;
                if (!s_get(fn, x, y)) {
                    visit(ctx, x, y, index++);
                }
            }
        }
        upward = !upward;
        if (right < 2) {
            break;
        }
    }
}

typedef struct {
    qr_t *qr;
    const uint8_t *stream; /* the interleaved codewords */
    size_t bits;           /* how many bits they hold */
} s_place_t;

static void
s_place_bit(void *ctx, size_t x, size_t y, size_t index)
{
    s_place_t *p = ctx;
    if (index < p->bits) {
        s_set(p->qr->modules, x, y, (p->stream[index / 8u] >> (7u - index % 8u)) & 1u);
    }
}

static bool
s_mask_bit(unsigned mask, size_t x, size_t y)
{
    switch (mask) {
    case 0: return (x + y) % 2u == 0;
    case 1: return y % 2u == 0;
    case 2: return x % 3u == 0;
    case 3: return (x + y) % 3u == 0;
    case 4: return (x / 3u + y / 2u) % 2u == 0;
    case 5: return x * y % 2u + x * y % 3u == 0;
    case 6: return (x * y % 2u + x * y % 3u) % 2u == 0;
    default: return ((x + y) % 2u + x * y % 3u) % 2u == 0;
    }
}

/*  XORs mask onto every message module (its own inverse). */
static void
s_apply_mask(qr_t *qr, const uint8_t *fn, unsigned mask)
{
    for (size_t y = 0; y < qr->size; y++) {
        for (size_t x = 0; x < qr->size; x++) {
            if (!s_get(fn, x, y) && s_mask_bit(mask, x, y)) {
                s_set(qr->modules, x, y, !s_get(qr->modules, x, y));
            }
        }
    }
}

/* ---------------------------------------------------------------- penalty */

#define S_N1 3u
#define S_N2 3u
#define S_N3 40u
#define S_N4 10u

/*  N1 and N3 of one row or column (line[0..n-1], 1 = dark). */
static size_t
s_line_penalty(const uint8_t *line, size_t n)
{
    size_t score = 0, run = 1;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && line[i] == line[i - 1]) {
            run++;
            continue;
        }
        if (run >= 5) {
            score += S_N1 + (run - 5u);
        }
        run = 1;
    }
    /* 1011101 with four light modules before or after it; outside the
     * symbol is the light quiet zone. Each side found counts. */
    static const uint8_t core[7] = { 1, 0, 1, 1, 1, 0, 1 };
    for (size_t i = 0; i + 7u <= n; i++) {
        if (memcmp(line + i, core, sizeof core) != 0) {
            continue;
        }
        bool before = true, after = true;
        for (size_t k = 1; k <= 4; k++) {
            before = before && (i < k || line[i - k] == 0);
            after = after && (i + 6u + k >= n || line[i + 6u + k] == 0);
        }
        score += (before ? S_N3 : 0u) + (after ? S_N3 : 0u);
    }
    return score;
}

static size_t
s_penalty(const qr_t *qr)
{
    size_t size = qr->size, score = 0, dark = 0;
    uint8_t row[QR_SIZE_MAX], col[QR_SIZE_MAX];
    for (size_t a = 0; a < size; a++) {
        for (size_t b = 0; b < size; b++) {
            row[b] = s_get(qr->modules, b, a);
            col[b] = s_get(qr->modules, a, b);
            dark += row[b];
        }
        score += s_line_penalty(row, size) + s_line_penalty(col, size);
    }
    for (size_t y = 0; y + 1u < size; y++) {
        for (size_t x = 0; x + 1u < size; x++) {
            bool c = s_get(qr->modules, x, y);
            if (c == s_get(qr->modules, x + 1u, y) && c == s_get(qr->modules, x, y + 1u)
                && c == s_get(qr->modules, x + 1u, y + 1u)) {
                score += S_N2;
            }
        }
    }
    /* k steps of 5 % away from half dark: |20 dark / total - 10|. */
    size_t total = size * size;
    size_t twenty = dark * 20u, ten = total * 10u;
    score += (twenty > ten ? twenty - ten : ten - twenty) / total * S_N4;
    sodium_memzero(row, sizeof row);
    sodium_memzero(col, sizeof col);
    return score;
}

/* ------------------------------------------------------------- the encoder */

int
qr_encode(const uint8_t *data, size_t len, qr_t *out)
{
    memset(out, 0, sizeof *out);
    if (data == NULL && len > 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (len > QR_INPUT_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    qr_mode_t mode = s_is_alnum(data, len) ? QR_MODE_ALNUM : QR_MODE_BYTE;
    qr_ecl_t ecl;
    unsigned v;
    if (s_choose(mode, len, &ecl, &v) != PARLEY_OK) {
        return PARLEY_ERR_LIMIT;
    }
    out->version = (uint8_t)v;
    out->size = (uint8_t)s_size(v);
    out->ecl = (uint8_t)ecl;
    out->mode = (uint8_t)mode;

    uint8_t codewords[S_DATA_MAX];
    uint8_t stream[S_RAW_MAX];
    s_map_t fn;
    memset(fn, 0, sizeof fn);
    s_data_stream(data, len, mode, v, codewords, s_data_codewords(v, ecl));
    s_interleave(codewords, v, ecl, stream);
    s_draw_function_patterns(out, fn);
    s_place_t place = { .qr = out, .stream = stream, .bits = s_raw_codewords(v) * 8u };
    s_walk(out, fn, s_place_bit, &place);

    size_t best_score = SIZE_MAX;
    unsigned best = 0;
    for (unsigned mask = 0; mask < 8; mask++) {
        s_apply_mask(out, fn, mask);
        s_draw_format(out, fn, s_ecl_bits[ecl], mask);
        size_t score = s_penalty(out);
        if (score < best_score) {
            best_score = score;
            best = mask;
        }
        s_apply_mask(out, fn, mask);
    }
    s_apply_mask(out, fn, best);
    s_draw_format(out, fn, s_ecl_bits[ecl], best);
    out->mask = (uint8_t)best;

    sodium_memzero(codewords, sizeof codewords);
    sodium_memzero(stream, sizeof stream);
    return PARLEY_OK;
}

int
qr_encode_text(const char *text, qr_t *out)
{
    memset(out, 0, sizeof *out);
    if (text == NULL) {
        return PARLEY_ERR_MALFORMED;
    }
    size_t len = strnlen(text, QR_INPUT_MAX + 1u);
    if (len > QR_INPUT_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    uint8_t folded[QR_INPUT_MAX];
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)text[i];
        folded[i] = c >= 'a' && c <= 'z' ? (uint8_t)(c - 'a' + 'A') : c;
    }
    /* Folding is only worth it when it makes the whole text alphanumeric:
     * otherwise byte mode carries the text as it is. */
    bool fold = s_is_alnum(folded, len);
    int rc = qr_encode(fold ? folded : (const uint8_t *)text, len, out);
    sodium_memzero(folded, sizeof folded);
    return rc;
}

bool
qr_module(const qr_t *qr, long x, long y)
{
    if (x < 0 || y < 0 || x >= (long)qr->size || y >= (long)qr->size) {
        return false;
    }
    return s_get(qr->modules, (size_t)x, (size_t)y);
}

/*  SGR parameters of the two colours, as foreground and as background.
 *  Light is bright white (97, 107) where the terminal has the bright
 *  colours, else white (37, 47: light grey on most themes); a terminal
 *  ignores a parameter it does not know, so the fallback comes first. */
static const char *const s_sgr_fg[2] = { "37;97", "30" };
static const char *const s_sgr_bg[2] = { "47;107", "40" };

void
qr_print(FILE *out, const qr_t *qr)
{
    if (qr->size == 0) {
        return;
    }
    long lo = -(long)QR_QUIET, hi = (long)qr->size + (long)QR_QUIET;
    /* An odd number of rows leaves the last line a light bottom half: a
     * little more quiet zone. */
    for (long y = lo; y < hi; y += 2) {
        int fg = -1, bg = -1; /* what the terminal has now: 0 light, 1 dark */
        for (long x = lo; x < hi; x++) {
            int top = qr_module(qr, x, y), bottom = qr_module(qr, x, y + 1);
            /* Two modules of one colour are a space on that background:
             * a background fills its whole cell, where a full block leaves
             * a light hairline under it in many fonts (xterm with DejaVu
             * Sans Mono does, and zbarimg then reads nothing off a
             * screenshot). Two colours are an upper half block, the top
             * module's colour in front. */
            bool half = top != bottom;
            bool new_fg = half && fg != top, new_bg = bg != bottom;
            if (new_fg || new_bg) {
                fprintf(out, "\x1b[%s%s%sm", new_fg ? s_sgr_fg[top] : "",
                        new_fg && new_bg ? ";" : "", new_bg ? s_sgr_bg[bottom] : "");
                fg = new_fg ? top : fg;
                bg = bottom;
            }
            fputs(half ? "\xe2\x96\x80" : " ", out);
        }
        /* Reset before the newline, or the scroll fills the next line with
         * the background colour on some terminals. */
        fputs("\x1b[0m\n", out);
    }
}

int
qr_print_text(FILE *out, const char *text)
{
    qr_t qr;
    int rc = qr_encode_text(text, &qr);
    if (rc == PARLEY_OK) {
        qr_print(out, &qr);
        rc = ferror(out) ? PARLEY_ERR_IO : PARLEY_OK;
    }
    sodium_memzero(&qr, sizeof qr);
    return rc;
}

/* ================================================================= tests */

/*  ISO 18004 Annex I: "01234567" in version 1-M (numeric mode, which this
 *  encoder does not write: the data codewords are given). */
static void
s_test_rs(void)
{
    static const uint8_t annex_data[16] = { 0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11,
                                            0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11 };
    static const uint8_t annex_ecc[10] = { 0xA5, 0x24, 0xD4, 0xC1, 0xED,
                                           0x36, 0xC7, 0x87, 0x2C, 0x55 };
    uint8_t gen[S_ECC_MAX], ecc[S_ECC_MAX];
    s_rs_generator(10, gen);
    s_rs_remainder(annex_data, sizeof annex_data, gen, 10, ecc);
    CHECK(memcmp(ecc, annex_ecc, sizeof annex_ecc) == 0);
    /* Version 1-M is one block: the message is data then EC codewords. */
    uint8_t stream[S_RAW_MAX];
    s_interleave(annex_data, 1, QR_ECL_M, stream);
    CHECK(memcmp(stream, annex_data, 16) == 0 && memcmp(stream + 16, annex_ecc, 10) == 0);

    /* The generator of degree 7 (Annex A lists it by exponents of a:
     * x^7 + a^87 x^6 + a^229 x^5 + a^146 x^4 + a^149 x^3 + a^238 x^2 +
     * a^102 x + a^21). */
    static const unsigned exp7[7] = { 87, 229, 146, 149, 238, 102, 21 };
    s_rs_generator(7, gen);
    for (size_t i = 0; i < 7; i++) {
        uint8_t p = 1;
        for (unsigned k = 0; k < exp7[i]; k++) {
            p = s_gf_mul(p, 0x02);
        }
        CHECK(gen[i] == p);
    }

    /* "HELLO WORLD" in alphanumeric mode, version 1-M: the data stream of
     * 7.4's worked example, and its EC codewords. */
    static const uint8_t hello_data[16] = { 0x20, 0x5B, 0x0B, 0x78, 0xD1, 0x72, 0xDC, 0x4D,
                                            0x43, 0x40, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11 };
    static const uint8_t hello_ecc[10] = { 0xC4, 0x23, 0x27, 0x77, 0xEB,
                                           0xD7, 0xE7, 0xE2, 0x5D, 0x17 };
    uint8_t data[16];
    s_data_stream((const uint8_t *)"HELLO WORLD", 11, QR_MODE_ALNUM, 1, data, sizeof data);
    CHECK(memcmp(data, hello_data, sizeof data) == 0);
    s_rs_generator(10, gen);
    s_rs_remainder(data, sizeof data, gen, 10, ecc);
    CHECK(memcmp(ecc, hello_ecc, sizeof hello_ecc) == 0);
}

/*  Annex C, Table C.1: the 32 format information bit strings, by level
 *  (L, M, Q, H) and mask. */
static const uint16_t s_spec_format[4][8] = {
    { 0x77C4, 0x72F3, 0x7DAA, 0x789D, 0x662F, 0x6318, 0x6C41, 0x6976 },
    { 0x5412, 0x5125, 0x5E7C, 0x5B4B, 0x45F9, 0x40CE, 0x4F97, 0x4AA0 },
    { 0x355F, 0x3068, 0x3F31, 0x3A06, 0x24B4, 0x2183, 0x2EDA, 0x2BED },
    { 0x1689, 0x13BE, 0x1CE7, 0x19D0, 0x0762, 0x0255, 0x0D0C, 0x083B },
};

/*  Annex D, Table D.1: the version information bit strings, 7..40. */
static const uint32_t s_spec_version[41] = {
    [7] = 0x07C94, 0x085BC, 0x09A99, 0x0A4D3, 0x0BBF6, 0x0C762, 0x0D847, 0x0E60D, 0x0F928,
    0x10B78,       0x1145D, 0x12A17, 0x13532, 0x149A6, 0x15683, 0x168C9, 0x177EC, 0x18EC4,
    0x191E1,       0x1AFAB, 0x1B08E, 0x1CC1A, 0x1D33F, 0x1ED75, 0x1F250, 0x209D5, 0x216F0,
    0x228BA,       0x2379F, 0x24B0B, 0x2542E, 0x26A64, 0x27541, 0x28C69,
};

static unsigned
s_popcount(uint32_t x)
{
    unsigned n = 0;
    for (; x; x &= x - 1u) {
        n++;
    }
    return n;
}

static void
s_test_bch(void)
{
    for (unsigned e = 0; e < 4; e++) {
        for (unsigned m = 0; m < 8; m++) {
            CHECK(s_format_bits(s_ecl_bits[e], m) == s_spec_format[e][m]);
        }
    }
    /* A BCH(15,5) code: any two strings differ in at least 7 bits, which is
     * what lets a reader correct 3 wrong bits. */
    for (unsigned a = 0; a < 32; a++) {
        for (unsigned b = 0; b < a; b++) {
            CHECK(s_popcount(s_format_bits(a >> 3, a & 7u) ^ s_format_bits(b >> 3, b & 7u)) >= 7);
        }
    }
    for (unsigned v = 7; v <= QR_VERSION_MAX; v++) {
        CHECK(s_version_bits(v) == s_spec_version[v]);
    }
}

/*  Annex E, Table E.1, some rows: the alignment pattern centres. */
static void
s_test_alignment(void)
{
    static const struct {
        unsigned v;
        size_t n;
        size_t pos[7];
    } rows[] = {
        { 1, 0, { 0 } },
        { 2, 2, { 6, 18 } },
        { 6, 2, { 6, 34 } },
        { 7, 3, { 6, 22, 38 } },
        { 14, 4, { 6, 26, 46, 66 } },
        { 15, 4, { 6, 26, 48, 70 } },
        { 16, 4, { 6, 26, 50, 74 } },
        { 21, 5, { 6, 28, 50, 72, 94 } },
        { 22, 5, { 6, 26, 50, 74, 98 } },
        { 28, 6, { 6, 26, 50, 74, 98, 122 } },
        { 32, 6, { 6, 34, 60, 86, 112, 138 } },
        { 35, 7, { 6, 30, 54, 78, 102, 126, 150 } },
        { 36, 7, { 6, 24, 50, 76, 102, 128, 154 } },
        { 39, 7, { 6, 26, 54, 82, 110, 138, 166 } },
        { 40, 7, { 6, 30, 58, 86, 114, 142, 170 } },
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        size_t pos[7];
        CHECK(s_alignment_positions(rows[r].v, pos) == rows[r].n);
        CHECK(rows[r].n == 0 || memcmp(pos, rows[r].pos, rows[r].n * sizeof pos[0]) == 0);
    }
}

/*  Table 7: data codewords by version at levels L and M. */
static const uint16_t s_spec_data[2][41] = {
    { 0,    19,   34,   55,   80,   108,  136,  156,  194,  232,  274,  324,  370,  428,
      461,  523,  589,  647,  721,  795,  861,  932,  1006, 1094, 1174, 1276, 1370, 1468,
      1531, 1631, 1735, 1843, 1955, 2071, 2191, 2306, 2434, 2566, 2702, 2812, 2956 },
    { 0,    16,   28,   44,   64,   86,   108,  124,  154,  182,  216,  254,  290,  334,
      365,  415,  453,  507,  563,  627,  669,  714,  782,  860,  914,  1000, 1062, 1128,
      1193, 1267, 1373, 1455, 1541, 1631, 1725, 1812, 1914, 1992, 2102, 2216, 2334 },
};

/*  The largest input of mode that fits version v at level ecl, from the
 *  spec's codeword counts. */
static size_t
s_spec_capacity(qr_mode_t mode, unsigned v, qr_ecl_t ecl)
{
    size_t bits = s_spec_data[ecl][v] * 8u - 4u - s_count_bits(mode, v);
    if (mode == QR_MODE_BYTE) {
        return bits / 8u;
    }
    return bits / 11u * 2u + (bits % 11u >= 6u ? 1u : 0u);
}

/*  The next n bits of the len bytes at buf, from bit *at on; past the end
 *  clears *ok and gives zeros. */
static uint32_t
s_take(const uint8_t *buf, size_t len, size_t *at, unsigned n, bool *ok)
{
    uint32_t value = 0;
    for (unsigned k = 0; k < n; k++, (*at)++) {
        bool in = *at < len * 8u;
        *ok = *ok && in;
        value = value << 1 | (in ? (buf[*at / 8u] >> (7u - *at % 8u)) & 1u : 0u);
    }
    return value;
}

/*  In s_check_symbol: a symbol that breaks cond is not read. */
#define S_REQUIRE(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

/*  Reads a symbol back as a reader would, with nothing but the matrix and
 *  the spec's tables: function patterns, both copies of the format and
 *  version information, then the unmasked message, each block's
 *  Reed-Solomon syndromes, and the data segment, which must be data.
 *  Returns whether all of it holds. */
static bool
s_check_symbol(const qr_t *qr, const uint8_t *data, size_t len)
{
    size_t size = qr->size;
    unsigned v = qr->version;
    S_REQUIRE(v >= QR_VERSION_MIN && v <= QR_VERSION_MAX && size == s_size(v));
    S_REQUIRE(qr->ecl == QR_ECL_L || qr->ecl == QR_ECL_M);
    const qr_ecl_t ecl = (qr_ecl_t)qr->ecl;
    /* Finders, each with its separator (light all round inside the
     * symbol). */
    const size_t corner[3][2] = { { 0, 0 }, { size - 7u, 0 }, { 0, size - 7u } };
    for (size_t f = 0; f < 3; f++) {
        for (long dy = -1; dy <= 7; dy++) {
            for (long dx = -1; dx <= 7; dx++) {
                long x = (long)corner[f][0] + dx, y = (long)corner[f][1] + dy;
                if (x < 0 || y < 0 || x >= (long)size || y >= (long)size) {
                    continue;
                }
                long d = s_max(labs(dx - 3), labs(dy - 3));
                S_REQUIRE(qr_module(qr, x, y) == (d != 2 && d != 4));
            }
        }
    }
    for (size_t i = 8; i < size - 8u; i++) {
        S_REQUIRE(qr_module(qr, (long)i, 6) == (i % 2u == 0));
        S_REQUIRE(qr_module(qr, 6, (long)i) == (i % 2u == 0));
    }
    size_t pos[7];
    size_t n = s_alignment_positions(v, pos);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if ((i == 0 && j == 0) || (i == 0 && j == n - 1) || (i == n - 1 && j == 0)) {
                continue;
            }
            for (long dy = -2; dy <= 2; dy++) {
                for (long dx = -2; dx <= 2; dx++) {
                    S_REQUIRE(qr_module(qr, (long)pos[i] + dx, (long)pos[j] + dy)
                              == (s_max(labs(dx), labs(dy)) != 1));
                }
            }
        }
    }
    S_REQUIRE(qr_module(qr, 8, (long)size - 8));

    /* Format information: both copies agree and are a string of the table. */
    uint32_t format[2] = { 0, 0 };
    for (unsigned copy = 0; copy < 2; copy++) {
        for (unsigned i = 0; i < 15; i++) {
            size_t x, y;
            s_format_xy(size, copy, i, &x, &y);
            format[copy] |= (uint32_t)qr_module(qr, (long)x, (long)y) << i;
        }
    }
    S_REQUIRE(format[0] == format[1]);
    S_REQUIRE(format[0] == s_spec_format[ecl][qr->mask]);
    if (v >= 7) {
        for (unsigned copy = 0; copy < 2; copy++) {
            uint32_t bits = 0;
            for (unsigned i = 0; i < 18; i++) {
                size_t x, y;
                s_version_xy(size, copy, i, &x, &y);
                bits |= (uint32_t)qr_module(qr, (long)x, (long)y) << i;
            }
            S_REQUIRE(bits == s_spec_version[v]);
        }
    }

    /* The message: walk the modules that are not function patterns, in
     * order, unmasking; the count of them is the spec's. */
    qr_t scratch;
    s_map_t fn;
    memset(&scratch, 0, sizeof scratch);
    memset(fn, 0, sizeof fn);
    scratch.version = (uint8_t)v;
    scratch.size = (uint8_t)size;
    s_draw_function_patterns(&scratch, fn);
    size_t free_modules = 0;
    for (size_t y = 0; y < size; y++) {
        for (size_t x = 0; x < size; x++) {
            free_modules += !s_get(fn, x, y);
        }
    }
    S_REQUIRE(free_modules == s_raw_modules(v));
    size_t raw = s_raw_codewords(v);
    S_REQUIRE(raw == s_spec_data[ecl][v] + (size_t)s_ecc_per_block[ecl][v] * s_blocks[ecl][v]);
    uint8_t stream[S_RAW_MAX + 1];
    memset(stream, 0, sizeof stream);
    size_t index = 0;
    for (size_t right = size - 1u, strip = 0; right >= 1u; right -= 2u, strip++) {
        right = right == 6 ? 5 : right;
        for (size_t k = 0; k < size; k++) {
            size_t y = strip % 2u == 0 ? size - 1u - k : k;
            for (size_t x = right + 1u; x-- > right - 1u;) {
                if (s_get(fn, x, y)) {
                    continue;
                }
                bool bit = qr_module(qr, (long)x, (long)y) ^ s_mask_bit(qr->mask, x, y);
                S_REQUIRE(index < (S_RAW_MAX + 1u) * 8u);
                stream[index / 8u] |= (uint8_t)(bit << (7u - index % 8u));
                index++;
            }
        }
        if (right < 2) {
            break;
        }
    }
    S_REQUIRE(index == free_modules);
    /* Remainder bits are zero. */
    for (size_t i = raw * 8u; i < index; i++) {
        S_REQUIRE(((stream[i / 8u] >> (7u - i % 8u)) & 1u) == 0);
    }

    /* De-interleave; every block's codewords, as a polynomial, vanish at
     * a^0 .. a^(ecc - 1). */
    size_t blocks = s_blocks[ecl][v], ecc_len = s_ecc_per_block[ecl][v];
    size_t n_long = raw % blocks, short_len = raw / blocks - ecc_len;
    size_t data_len = s_spec_data[ecl][v];
    uint8_t datacw[S_DATA_MAX];
    size_t at = 0;
    for (size_t blk = 0; blk < blocks; blk++) {
        bool is_long = blk >= blocks - n_long;
        size_t dlen = short_len + is_long;
        uint8_t block[S_RAW_MAX];
        size_t bl = 0;
        for (size_t i = 0; i < short_len; i++) {
            block[bl++] = stream[i * blocks + blk];
        }
        if (is_long) {
            block[bl++] = stream[short_len * blocks + blk - (blocks - n_long)];
        }
        memcpy(datacw + at, block, dlen);
        at += dlen;
        for (size_t i = 0; i < ecc_len; i++) {
            block[bl++] = stream[data_len + i * blocks + blk];
        }
        uint8_t root = 1;
        for (size_t r = 0; r < ecc_len; r++) {
            uint8_t syndrome = 0;
            for (size_t i = 0; i < bl; i++) {
                syndrome = (uint8_t)(s_gf_mul(syndrome, root) ^ block[i]);
            }
            S_REQUIRE(syndrome == 0);
            root = s_gf_mul(root, 0x02);
        }
    }
    S_REQUIRE(at == data_len);

    /* The segment. */
    size_t bit = 0;
    bool ok = true;
    qr_mode_t mode = (qr_mode_t)s_take(datacw, data_len, &bit, 4, &ok);
    S_REQUIRE(mode == qr->mode && (mode == QR_MODE_ALNUM || mode == QR_MODE_BYTE));
    S_REQUIRE(s_take(datacw, data_len, &bit, s_count_bits(mode, v), &ok) == len);
    uint8_t got[QR_INPUT_MAX];
    for (size_t i = 0; i < len;) {
        if (mode == QR_MODE_BYTE) {
            got[i++] = (uint8_t)s_take(datacw, data_len, &bit, 8, &ok);
        } else if (i + 1u < len) {
            uint32_t pair = s_take(datacw, data_len, &bit, 11, &ok);
            S_REQUIRE(pair < 45u * 45u);
            got[i++] = (uint8_t)s_alnum[pair / 45u];
            got[i++] = (uint8_t)s_alnum[pair % 45u];
        } else {
            uint32_t one = s_take(datacw, data_len, &bit, 6, &ok);
            S_REQUIRE(one < 45u);
            got[i++] = (uint8_t)s_alnum[one];
        }
    }
    S_REQUIRE(len == 0 || memcmp(got, data, len) == 0);
    /* Terminator, zeros to the byte, then 0xEC 0x11 ... */
    size_t term = data_len * 8u - bit < 4u ? data_len * 8u - bit : 4u;
    S_REQUIRE(s_take(datacw, data_len, &bit, term, &ok) == 0);
    S_REQUIRE(s_take(datacw, data_len, &bit, (8u - bit % 8u) % 8u, &ok) == 0);
    for (uint32_t pad = 0xEC; bit < data_len * 8u; pad ^= 0xECu ^ 0x11u) {
        S_REQUIRE(s_take(datacw, data_len, &bit, 8, &ok) == pad);
    }
    S_REQUIRE(ok);
    sodium_memzero(got, sizeof got);
    sodium_memzero(stream, sizeof stream);
    return true;
}
#undef S_REQUIRE

static void
s_encode_check(const uint8_t *data, size_t len, qr_mode_t mode, qr_ecl_t ecl, unsigned v)
{
    qr_t qr;
    CHECK(qr_encode(data, len, &qr) == 0);
    CHECK(qr.mode == mode && qr.ecl == ecl && qr.version == v);
    CHECK(s_check_symbol(&qr, data, len));
}

/*  The read-back check can fail: flipping any one module of a symbol, or
 *  expecting other data, makes it refuse the symbol. Versions 2 (one
 *  alignment pattern, remainder bits) and 7 (version information). */
static void
s_test_readback_negative(void)
{
    static const size_t lengths[2] = { 30, 170 };
    static const unsigned versions[2] = { 2, 7 };
    for (size_t t = 0; t < 2; t++) {
        uint8_t data[170];
        for (size_t i = 0; i < lengths[t]; i++) {
            data[i] = (uint8_t)s_alnum[(i * 11u + 5u) % 45u];
        }
        qr_t qr;
        CHECK(qr_encode(data, lengths[t], &qr) == 0 && qr.version == versions[t]);
        CHECK(s_check_symbol(&qr, data, lengths[t]));
        for (size_t y = 0; y < qr.size; y++) {
            for (size_t x = 0; x < qr.size; x++) {
                qr_t bad = qr;
                s_set(bad.modules, x, y, !s_get(bad.modules, x, y));
                CHECK(!s_check_symbol(&bad, data, lengths[t]));
            }
        }
        data[lengths[t] / 2u] = data[lengths[t] / 2u] == 'A' ? 'B' : 'A';
        CHECK(!s_check_symbol(&qr, data, lengths[t]));
        CHECK(!s_check_symbol(&qr, data, lengths[t] - 1u));
    }
}

/*  Every version at M in both modes: the largest input that fits it gets
 *  it, one more goes to the next version; past 40-M level L; past 40-L
 *  PARLEY_ERR_LIMIT. Each symbol is read back. */
static void
s_test_capacity(bool verbose)
{
    for (unsigned v = 1; v <= QR_VERSION_MAX; v++) {
        CHECK(s_data_codewords(v, QR_ECL_L) == s_spec_data[QR_ECL_L][v]);
        CHECK(s_data_codewords(v, QR_ECL_M) == s_spec_data[QR_ECL_M][v]);
    }
    /* Table 7's character counts at the corners. */
    CHECK(s_spec_capacity(QR_MODE_ALNUM, 1, QR_ECL_M) == 20);
    CHECK(s_spec_capacity(QR_MODE_ALNUM, 10, QR_ECL_M) == 311);
    CHECK(s_spec_capacity(QR_MODE_ALNUM, 40, QR_ECL_M) == 3391);
    CHECK(s_spec_capacity(QR_MODE_ALNUM, 40, QR_ECL_L) == 4296);
    CHECK(s_spec_capacity(QR_MODE_BYTE, 1, QR_ECL_M) == 14);
    CHECK(s_spec_capacity(QR_MODE_BYTE, 40, QR_ECL_M) == 2331);
    CHECK(s_spec_capacity(QR_MODE_BYTE, 40, QR_ECL_L) == 2953);

    static uint8_t buf[QR_INPUT_MAX + 2];
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = (uint8_t)s_alnum[(i * 7u + 3u) % 45u];
    }
    static const qr_mode_t modes[2] = { QR_MODE_ALNUM, QR_MODE_BYTE };
    for (size_t m = 0; m < 2; m++) {
        if (modes[m] == QR_MODE_BYTE) {
            for (size_t i = 0; i < sizeof buf; i++) {
                buf[i] = (uint8_t)(i * 37u + 1u); /* some byte outside the set, and NUL */
            }
        }
        for (unsigned v = 1; v <= QR_VERSION_MAX; v++) {
            size_t cap = s_spec_capacity(modes[m], v, QR_ECL_M);
            s_encode_check(buf, cap, modes[m], QR_ECL_M, v);
            if (v < QR_VERSION_MAX) {
                s_encode_check(buf, cap + 1u, modes[m], QR_ECL_M, v + 1u);
            }
        }
        size_t max_m = s_spec_capacity(modes[m], 40, QR_ECL_M);
        size_t max_l = s_spec_capacity(modes[m], 40, QR_ECL_L);
        unsigned v_l = 1;
        while (s_spec_capacity(modes[m], v_l, QR_ECL_L) <= max_m) {
            v_l++;
        }
        s_encode_check(buf, max_m + 1u, modes[m], QR_ECL_L, v_l);
        s_encode_check(buf, max_l, modes[m], QR_ECL_L, 40);
        qr_t qr;
        CHECK(qr_encode(buf, max_l + 1u, &qr) == PARLEY_ERR_LIMIT && qr.size == 0);
        if (verbose) {
            printf("   %s: %zu at 40-M, %zu at 40-L (%zu..%zu: version %u-L)\n",
                   modes[m] == QR_MODE_ALNUM ? "alphanumeric" : "bytes", max_m, max_l, max_m + 1u,
                   s_spec_capacity(modes[m], v_l, QR_ECL_L), v_l);
        }
    }
}

static void
s_test_inputs(bool verbose)
{
    qr_t qr;
    /* Empty input is a valid symbol. */
    s_encode_check(NULL, 0, QR_MODE_ALNUM, QR_ECL_M, 1);
    CHECK(qr_encode(NULL, 1, &qr) == PARLEY_ERR_MALFORMED && qr.size == 0);
    CHECK(qr_encode_text(NULL, &qr) == PARLEY_ERR_MALFORMED && qr.size == 0);
    static uint8_t big[QR_INPUT_MAX + 100];
    memset(big, 'A', sizeof big);
    CHECK(qr_encode(big, sizeof big, &qr) == PARLEY_ERR_LIMIT && qr.size == 0);
    CHECK(qr_encode(big, SIZE_MAX, &qr) == PARLEY_ERR_LIMIT && qr.size == 0);
    big[sizeof big - 1] = 0;
    CHECK(qr_encode_text((const char *)big, &qr) == PARLEY_ERR_LIMIT && qr.size == 0);

    /* Text: folded when that makes it alphanumeric, else as it is. */
    const char *code = "parley-invite:aeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcai2";
    uint8_t upper[64];
    size_t len = strlen(code);
    for (size_t i = 0; i < len; i++) {
        upper[i] = (uint8_t)(code[i] >= 'a' && code[i] <= 'z' ? code[i] - 32 : code[i]);
    }
    CHECK(qr_encode_text(code, &qr) == 0 && qr.mode == QR_MODE_ALNUM);
    CHECK(s_check_symbol(&qr, upper, len));
    CHECK(qr_encode((const uint8_t *)code, len, &qr) == 0 && qr.mode == QR_MODE_BYTE);
    CHECK(s_check_symbol(&qr, (const uint8_t *)code, len));
    const char *mixed = "Hello, world_";
    CHECK(qr_encode_text(mixed, &qr) == 0 && qr.mode == QR_MODE_BYTE);
    CHECK(s_check_symbol(&qr, (const uint8_t *)mixed, strlen(mixed)));

    /* Invite-like codes of the lengths SPEC §18.4 gives: the size gained
     * by folding. */
    static const size_t lengths[] = { 202, 312, 326, 2040 };
    char text[2041];
    for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
        size_t n = lengths[l];
        memcpy(text, "parley-invite:", 14);
        for (size_t i = 14; i < n; i++) {
            text[i] = "abcdefghijklmnopqrstuvwxyz234567"[(i * 13u + l) % 32u];
        }
        text[n] = '\0';
        unsigned alnum_v, byte_v;
        CHECK(qr_encode_text(text, &qr) == 0 && qr.mode == QR_MODE_ALNUM && qr.ecl == QR_ECL_M);
        alnum_v = qr.version;
        CHECK(qr_encode((const uint8_t *)text, n, &qr) == 0 && qr.ecl == QR_ECL_M);
        byte_v = qr.version;
        CHECK(s_check_symbol(&qr, (const uint8_t *)text, n));
        CHECK(alnum_v < byte_v);
        if (verbose) {
            printf("   a %zu-character code: version %u-M (%zu modules) folded, "
                   "%u-M (%zu) in bytes\n",
                   n, alnum_v, s_size(alnum_v), byte_v, s_size(byte_v));
        }
    }
    sodium_memzero(&qr, sizeof qr);
}

/*  The mask with the lowest penalty is the one chosen, every mask is
 *  chosen for some input, and masking changes only the message modules. */
static void
s_test_masks(void)
{
    bool seen[8] = { false };
    uint8_t data[40];
    for (size_t t = 0; t < 400; t++) {
        for (size_t i = 0; i < sizeof data; i++) {
            data[i] = (uint8_t)s_alnum[(t * 31u + i * (t % 7u + 1u) + t / 3u) % 45u];
        }
        qr_t qr;
        CHECK(qr_encode(data, 10u + t % 30u, &qr) == 0);
        seen[qr.mask] = true;
        if (t % 50u == 0) {
            /* Unmask a copy, score every mask on it as the encoder does,
             * then mask it back: the chosen mask scored lowest (first on a
             * tie) and the copy is the symbol again. */
            s_map_t fn;
            qr_t copy = qr, scratch = qr;
            memset(fn, 0, sizeof fn);
            s_draw_function_patterns(&scratch, fn);
            size_t chosen = s_penalty(&qr);
            s_apply_mask(&copy, fn, qr.mask);
            for (unsigned m = 0; m < 8; m++) {
                s_apply_mask(&copy, fn, m);
                s_draw_format(&copy, fn, s_ecl_bits[qr.ecl], m);
                size_t score = s_penalty(&copy);
                CHECK(score > chosen || (score == chosen && m >= qr.mask));
                s_apply_mask(&copy, fn, m);
            }
            s_apply_mask(&copy, fn, qr.mask);
            s_draw_format(&copy, fn, s_ecl_bits[qr.ecl], qr.mask);
            CHECK(memcmp(copy.modules, qr.modules, sizeof qr.modules) == 0);
        }
    }
    for (unsigned m = 0; m < 8; m++) {
        CHECK(seen[m]);
    }
    /* N1..N4 on small lines: a run of 5 is 3, of 7 is 5; the finder-like
     * pattern with light on both sides is 2 × 40 (here inside a run of
     * light that also scores N1). */
    static const uint8_t run7[9] = { 0, 1, 1, 1, 1, 1, 1, 1, 0 };
    CHECK(s_line_penalty(run7, 9) == 5);
    static const uint8_t finder[7] = { 1, 0, 1, 1, 1, 0, 1 };
    CHECK(s_line_penalty(finder, 7) == 80);
    static const uint8_t framed[15] = { 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0 };
    CHECK(s_line_penalty(framed, 15) == 40);
}

/*  Applies the SGR parameters at *p (after ESC [, up to m) to the colours
 *  fg and bg (0 light, 1 dark, -1 unset) as a terminal would; only the
 *  ones qr_print writes are allowed. */
static void
s_sgr_apply(const char **p, const char *end, int *fg, int *bg)
{
    while (*p < end && **p != 'm') {
        char *num_end = NULL;
        long param = strtol(*p, &num_end, 10);
        CHECK(num_end != *p && num_end < end && (*num_end == ';' || *num_end == 'm'));
        switch (param) {
        case 0: *fg = *bg = -1; break;
        case 30: *fg = 1; break;
        case 37:
        case 97: *fg = 0; break;
        case 40: *bg = 1; break;
        case 47:
        case 107: *bg = 0; break;
        default: CHECK(false);
        }
        *p = num_end + (*num_end == ';');
    }
    CHECK(*p < end);
    (*p)++;
}

/*  qr_print: lines of spaces and upper half blocks in explicit colours,
 *  each ending in a reset, that show every module and a light quiet zone
 *  of 4, as a terminal would draw them. */
static void
s_test_print(void)
{
    qr_t qr;
    CHECK(qr_encode((const uint8_t *)"PARLEY", 6, &qr) == 0);
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    CHECK(mem);
    qr_print(mem, &qr);
    CHECK(fclose(mem) == 0);
    static const char tail[] = "\x1b[0m\n";
    long lo = -(long)QR_QUIET, hi = (long)qr.size + (long)QR_QUIET;
    const char *p = text, *end = text + text_len;
    size_t lines = 0;
    for (long y = lo; y < hi; y += 2, lines++) {
        int fg = -1, bg = -1;
        for (long x = lo; x < hi; x++) {
            while (end - p >= 2 && p[0] == '\x1b' && p[1] == '[') {
                p += 2;
                s_sgr_apply(&p, end, &fg, &bg);
            }
            int top, bottom;
            CHECK(p < end);
            if (*p == ' ') {
                top = bottom = bg;
                p++;
            } else {
                CHECK(end - p >= 3 && memcmp(p, "\xe2\x96\x80", 3) == 0);
                top = fg;
                bottom = bg;
                p += 3;
            }
            /* qr_module is light outside the symbol: the quiet zone. */
            CHECK(top >= 0 && bottom >= 0);
            CHECK(top == qr_module(&qr, x, y) && bottom == qr_module(&qr, x, y + 1));
        }
        CHECK((size_t)(end - p) >= sizeof tail - 1 && memcmp(p, tail, sizeof tail - 1) == 0);
        p += sizeof tail - 1;
    }
    CHECK(p == end && lines == (qr.size + 2u * QR_QUIET + 1u) / 2u);
    free(text);

    /* Nothing for an empty symbol; qr_print_text's errors. */
    text = NULL;
    mem = open_memstream(&text, &text_len);
    CHECK(mem);
    memset(&qr, 0, sizeof qr);
    qr_print(mem, &qr);
    CHECK(qr_print_text(mem, NULL) == PARLEY_ERR_MALFORMED);
    CHECK(fclose(mem) == 0 && text_len == 0);
    free(text);
    text = NULL;
    mem = open_memstream(&text, &text_len);
    CHECK(mem);
    CHECK(qr_print_text(mem, "parley") == 0);
    CHECK(fclose(mem) == 0 && text_len > 0);
    free(text);
}

void
qr_test(bool verbose)
{
    if (verbose) {
        printf(" * qr: Reed-Solomon (Annex I), format and version BCH (Annexes C, D), "
               "alignment (Annex E), capacities (Table 7), symbols read back, masks, print\n");
    }
    s_test_rs();
    s_test_bch();
    s_test_alignment();
    s_test_capacity(verbose);
    s_test_inputs(verbose);
    s_test_readback_negative();
    s_test_masks();
    s_test_print();
}
