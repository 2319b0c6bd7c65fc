/*  proto/textsafe.h — text from a peer made safe to show on a terminal.
 *
 *  Message text, names, endpoints, tags and reasons that come from other
 *  nodes are shown to a person by the CLI (and later the terminal UI). Raw,
 *  they could drive the terminal: ESC and C1 sequences recolour, clear the
 *  screen, set the window title or answer back; bidi controls reorder what is
 *  read; a CR or an LF starts a line the peer writes as it likes, which can
 *  pass for a line of the program's own (a forged incoming message).
 *
 *  textsafe_escape() writes a rendering that holds only printable ASCII and
 *  printable UTF-8, plus, in multi-line mode, LF each followed by the
 *  caller's continuation marker. What it escapes, and how (the notation of
 *  less(1) and `cat -v`, which people already read):
 *
 *    C0 controls U+0000..U+001F   ^@ .. ^_   (so ESC is ^[, CR ^M, TAB ^I)
 *    DEL U+007F                   ^?
 *    C1 controls U+0080..U+009F   <U+0080> .. <U+009F>
 *    bidi controls U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069
 *                                 <U+202E> and so on
 *    line/paragraph separators U+2028, U+2029
 *                                 <U+2028>, <U+2029>
 *    a byte that is not part of valid UTF-8 (RFC 3629: no overlong forms,
 *    surrogates or code points above U+10FFFF; a truncated sequence)
 *                                 <9B> (its value in hex)
 *
 *  LF is ^J in single-line mode (cont == NULL: names, endpoints, reasons);
 *  in multi-line mode it is kept and followed by cont, so every line after
 *  the first starts with the caller's marker and never with peer text.
 *
 *  The notation is for the eye, not a reversible encoding: a peer may type
 *  "^[" or "<U+202E>" literally, which looks like an escaped control but is
 *  as harmless. Exact bytes are what the JSON API is for.
 *
 *  Pure: no allocation, no globals, no locale (the terminal's locale must
 *  not change what is escaped).
 */
#ifndef PARLEY_PROTO_TEXTSAFE_H
#define PARLEY_PROTO_TEXTSAFE_H

#include "errors.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  The longest escape of one input byte: "<9B>". A 2-byte C1 or a 3-byte
 *  bidi control becomes 8 bytes, which is less per input byte. */
#define TEXTSAFE_EXPAND 4u

/*  An upper bound on the bytes textsafe_escape writes for len input bytes
 *  with continuation marker cont (NULL: single line), not counting the NUL.
 *  SIZE_MAX if the bound does not fit in a size_t. */
size_t textsafe_escaped_max(size_t len, const char *cont);

/*  Writes the safe rendering of the len bytes at in to out (cap bytes),
 *  NUL-terminated, and its length without the NUL to *out_len. cont is
 *  NULL for single-line mode, or the marker written after each LF in
 *  multi-line mode: printable ASCII only (0x20..0x7E), else
 *  PARLEY_ERR_MALFORMED. PARLEY_ERR_LIMIT if out is too small (a cap of
 *  textsafe_escaped_max() + 1 always fits). On an error out holds "" (if
 *  cap > 0) and *out_len is 0. The caller owns all buffers. */
int textsafe_escape(const uint8_t *in, size_t len, const char *cont, char *out, size_t cap,
                    size_t *out_len) PARLEY_WUR;

/*  Whether the code point cp is one textsafe_escape shows escaped (a C0 or
 *  C1 control, DEL, a bidi control or a line/paragraph separator). LF is
 *  included: only multi-line mode treats it apart. */
bool textsafe_is_escaped(uint32_t cp);

void textsafe_test(bool verbose);

#endif
