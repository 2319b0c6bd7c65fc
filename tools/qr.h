/*  tools/qr.h — a QR code encoder (ISO/IEC 18004) that draws on a terminal.
 *
 *  `parley invite --qr` shows an invite code (proto/SPEC.md §18: up to 2040
 *  characters of `a-z 2-7 - :`) as a QR code a phone can read off the
 *  screen. The project's dependencies have no QR library, so this is a
 *  small one: alphanumeric and byte mode, error correction level M (else L),
 *  versions 1..40, the eight masks with the standard penalty rules, format
 *  and version information. No allocation: a qr_t holds the largest symbol.
 *
 *  Which mode: qr_encode() is lossless. It uses alphanumeric mode (11 bits
 *  per two characters) when every byte is in the QR alphanumeric set
 *  `0-9 A-Z space $ % * + - . / :`, else byte mode (8 bits per byte).
 *  qr_encode_text() first folds a-z to A-Z when that puts the whole text in
 *  the set. An invite code then needs 5.5 bits per character instead of 8:
 *  a 202-character code takes version 8 (49 modules a side) instead of 10
 *  (57), a 312-character one version 11 (61) instead of 13 (69), and the
 *  bigger modules are what a phone camera needs off a screen (measured by
 *  the self-test: `build/qr_selftest -v qr`). The scanned text is then
 *  upper case. Folding is right for text whose reader ignores case: invite codes (the
 *  decoder accepts either case, SPEC §18.3) and node ids (base32); the
 *  caller decides, by calling qr_encode_text or qr_encode.
 *
 *  Which level: the smallest version that holds the data at level M (15 %
 *  of the codewords recoverable: glare, moiré, a cursor on the screen), else
 *  at level L (7 %) if the data fits no version at M.
 */
#ifndef PARLEY_TOOLS_QR_H
#define PARLEY_TOOLS_QR_H

#include "../proto/errors.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define QR_VERSION_MIN 1
#define QR_VERSION_MAX 40
/*  Modules a side of the largest symbol: 17 + 4 × 40. */
#define QR_SIZE_MAX 177u
/*  Bytes of one row of modules in qr_t.modules, a bit each. */
#define QR_ROW_BYTES ((QR_SIZE_MAX + 7u) / 8u)
/*  The light border a reader needs around the symbol, in modules. */
#define QR_QUIET 4u
/*  The most input any symbol holds: 4296 alphanumeric characters at 40-L
 *  (2953 bytes in byte mode). Longer input is refused before any work. */
#define QR_INPUT_MAX 4296u

/*  Error correction levels, as this file numbers them (not the format
 *  information's 2-bit indicators). */
typedef enum {
    QR_ECL_L = 0, /* 7 % of codewords recoverable */
    QR_ECL_M = 1, /* 15 % */
    QR_ECL_Q = 2, /* 25 % (format information only: never encoded) */
    QR_ECL_H = 3, /* 30 % (format information only: never encoded) */
} qr_ecl_t;

/*  Data modes, by their 4-bit mode indicators. */
typedef enum {
    QR_MODE_ALNUM = 2, /* 0-9 A-Z space $ % * + - . / : */
    QR_MODE_BYTE = 4,  /* any byte */
} qr_mode_t;

/*  One symbol. All zero (size 0) means none, e.g. after a failed encode. */
typedef struct {
    uint8_t size;    /* modules a side: 17 + 4 × version, or 0 */
    uint8_t version; /* 1..40 */
    uint8_t ecl;     /* a qr_ecl_t: QR_ECL_M or QR_ECL_L */
    uint8_t mask;    /* 0..7, the pattern with the lowest penalty */
    uint8_t mode;    /* a qr_mode_t */
    /* Row-major, 1 = dark: module (x, y) is bit x % 8 (LSB first) of byte
     * y * QR_ROW_BYTES + x / 8. */
    uint8_t modules[QR_SIZE_MAX * QR_ROW_BYTES];
} qr_t;

/*  Encodes the len bytes at data as it is (the mode rule above) into *out.
 *  PARLEY_ERR_LIMIT if no version holds it (over 4296 alphanumeric
 *  characters or 2953 bytes), PARLEY_ERR_MALFORMED if data is NULL with
 *  len > 0; *out is then all zero. The symbol carries the data: if that is
 *  a secret (an invite code is), wipe *out with sodium_memzero after use.
 *  Intermediate buffers are wiped here. */
int qr_encode(const uint8_t *data, size_t len, qr_t *out) PARLEY_WUR;

/*  Encodes the NUL-terminated text, folding a-z to A-Z when that makes it
 *  all alphanumeric (see above), into *out. Errors as qr_encode. */
int qr_encode_text(const char *text, qr_t *out) PARLEY_WUR;

/*  Whether module (x, y) is dark; anything outside the symbol is light
 *  (the quiet zone). */
bool qr_module(const qr_t *qr, long x, long y);

/*  Draws the symbol and a 4-module quiet zone to out, in UTF-8 with SGR
 *  colours: two module rows per line, one module per column (terminal
 *  cells are about twice as tall as wide, so modules come out square).
 *  A cell whose two modules agree is a space on a black or white
 *  background; one whose modules differ is ▀ with the top module's colour
 *  in front and the bottom one's behind. Every line resets (SGR 0) before
 *  its newline.
 *
 *  Why explicit colours: readers want dark modules on a light ground.
 *  Without colours a block is drawn in the theme's foreground, so the same
 *  output is a negative on either a dark or a light theme, which many
 *  readers refuse; reverse video only swaps which theme is wrong. Black
 *  (30/40) and bright white (97/107, after 37/47 for terminals without the
 *  bright colours) look the same on both. Why backgrounds rather than the
 *  full block █: a background fills its cell, where █ can leave a light
 *  hairline at the cell's bottom (xterm with DejaVu Sans Mono at 10 pt
 *  does), enough to stop zbarimg reading a screenshot. Output meant for a
 *  file or a pipe should not use this. A size-0 qr_t prints nothing. */
void qr_print(FILE *out, const qr_t *qr);

/*  qr_encode_text then qr_print, wiping the symbol afterwards. Returns the
 *  encoder's error (and prints nothing), PARLEY_ERR_IO if writing to out
 *  failed, else 0. */
int qr_print_text(FILE *out, const char *text) PARLEY_WUR;

void qr_test(bool verbose);

#endif
