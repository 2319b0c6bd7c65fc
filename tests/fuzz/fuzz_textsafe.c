/*  tests/fuzz/fuzz_textsafe.c — textsafe_escape on arbitrary bytes, in
 *  single-line and multi-line mode, with an output buffer of exactly the
 *  promised bound (a heap block, so ASan flags a write past it).
 *
 *  The first input byte picks the mode (even: single line; odd: the marker
 *  "  | "); the rest is the text. Invariants, checked by a UTF-8 decoder of
 *  this file's own rather than the module's: the output is valid UTF-8; it
 *  holds no C0 control but the LFs of multi-line mode, each followed by the
 *  marker; no DEL, no C1 control, no bidi control, no U+2028/U+2029; its
 *  length is within textsafe_escaped_max(); in multi-line mode it has as many
 *  LFs as the input; printable ASCII input comes out unchanged; and one byte
 *  too little room is PARLEY_ERR_LIMIT, never a partial output.
 */
#include "fuzz_common.h"

#include "../../proto/textsafe.h"

#define S_CONT "  | "

/*  The code point at s (n > 0 bytes), its length in *len; aborts on
 *  invalid UTF-8 (the output must never hold any). */
static uint32_t
s_decode(const uint8_t *s, size_t n, size_t *len)
{
    uint8_t c = s[0];
    size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
    FUZZ_CHECK(c < 0x80 || (c >= 0xc2 && c <= 0xf4));
    FUZZ_CHECK(k <= n);
    uint32_t cp = k == 1 ? c : k == 2 ? c & 0x1fu : k == 3 ? c & 0x0fu : c & 0x07u;
    for (size_t i = 1; i < k; i++) {
        FUZZ_CHECK((s[i] & 0xc0) == 0x80);
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    FUZZ_CHECK(cp >= min[k] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff));
    *len = k;
    return cp;
}

static bool
s_forbidden(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || cp == 0x200e
           || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)
           || cp == 0x2028 || cp == 0x2029;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const char *cont = (data[0] & 1) ? S_CONT : NULL;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    size_t max = textsafe_escaped_max(len, cont);
    FUZZ_CHECK(max != SIZE_MAX);
    char *out = malloc(max + 1);
    FUZZ_CHECK(out);
    size_t n = 0;
    FUZZ_CHECK(textsafe_escape(in, len, cont, out, max + 1, &n) == PARLEY_OK);
    FUZZ_CHECK(n <= max && out[n] == '\0' && strlen(out) == n);

    size_t lf_in = 0, lf_out = 0;
    bool ascii = true;
    for (size_t i = 0; i < len; i++) {
        lf_in += in[i] == '\n';
        ascii = ascii && in[i] >= 0x20 && in[i] <= 0x7e;
    }
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        uint32_t cp = s_decode((const uint8_t *)out + i, n - i, &k);
        if (cp == '\n' && cont) {
            FUZZ_CHECK(n - i - 1 >= strlen(S_CONT));
            FUZZ_CHECK(memcmp(out + i + 1, S_CONT, strlen(S_CONT)) == 0);
            lf_out++;
        } else {
            FUZZ_CHECK(!s_forbidden(cp));
        }
        i += k;
    }
    FUZZ_CHECK(lf_out == (cont ? lf_in : 0));
    if (ascii) {
        FUZZ_CHECK(n == len && memcmp(out, in, len) == 0);
    }

    //  One byte short of what it needs: refused whole.
    size_t n2 = 1;
    FUZZ_CHECK(textsafe_escape(in, len, cont, out, n, &n2) == PARLEY_ERR_LIMIT);
    FUZZ_CHECK(n2 == 0 && (n == 0 || out[0] == '\0'));
    free(out);
    return 0;
}
