/*  proto/textsafe.c — terminal-safe rendering of untrusted text (rules:
 *  textsafe.h).
 *
 *  Owns nothing. Invariants: the input is read only within its length and
 *  never assumed NUL-terminated; the output is always NUL-terminated within
 *  cap; it holds no byte below 0x20 but the LFs of multi-line mode, no DEL,
 *  only valid UTF-8, and none of the code points textsafe_is_escaped names;
 *  its length never exceeds textsafe_escaped_max().
 */
#include "textsafe.h"

#include "content.h"

#include <stdio.h>
#include <string.h>

#include "selftest.h"

/*  Bytes written into the caller's buffer; a write that would not fit
 *  (with room left for the NUL) sets full and writes nothing more. */
typedef struct {
    char *out;  /* the caller's buffer */
    size_t cap; /* its size, > 0 */
    size_t len; /* bytes written, < cap */
    bool full;  /* a write did not fit */
} s_out_t;

static void
s_put(s_out_t *w, const void *bytes, size_t n)
{
    if (w->full || n > w->cap - 1 - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->out + w->len, bytes, n);
    w->len += n;
}

static void
s_put_hex(s_out_t *w, const char *prefix, uint32_t v, int digits, const char *suffix)
{
    static const char hex[] = "0123456789ABCDEF";
    char buf[16];
    size_t n = 0;
    size_t plen = strlen(prefix);
    memcpy(buf, prefix, plen);
    n += plen;
    for (int i = digits - 1; i >= 0; i--) {
        buf[n++] = hex[(v >> (4 * i)) & 0xf];
    }
    buf[n++] = suffix[0];
    s_put(w, buf, n);
}

bool
textsafe_is_escaped(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) /* C0, DEL, C1 */
           || cp == 0x061c                                       /* ARABIC LETTER MARK */
           || cp == 0x200e || cp == 0x200f                       /* LRM, RLM */
           || (cp >= 0x202a && cp <= 0x202e)                     /* LRE RLE PDF LRO RLO */
           || (cp >= 0x2066 && cp <= 0x2069)                     /* LRI RLI FSI PDI */
           || cp == 0x2028 || cp == 0x2029;                      /* LINE, PARAGRAPH SEPARATOR */
}

static bool
s_cont_ok(const char *cont, size_t *cont_len)
{
    size_t n = strlen(cont);
    for (size_t i = 0; i < n; i++) {
        if (cont[i] < 0x20 || cont[i] > 0x7e) {
            return false;
        }
    }
    *cont_len = n;
    return true;
}

size_t
textsafe_escaped_max(size_t len, const char *cont)
{
    size_t per = TEXTSAFE_EXPAND;
    if (cont) {
        size_t lf = strlen(cont);
        //  An LF costs itself and the marker.
        if (lf >= SIZE_MAX - 1) {
            return SIZE_MAX;
        }
        lf += 1;
        per = lf > per ? lf : per;
    }
    return len > SIZE_MAX / per ? SIZE_MAX : len * per;
}

int
textsafe_escape(const uint8_t *in, size_t len, const char *cont, char *out, size_t cap,
                size_t *out_len)
{
    *out_len = 0;
    if (cap == 0) {
        return PARLEY_ERR_LIMIT;
    }
    out[0] = '\0';
    size_t cont_len = 0;
    if (cont && !s_cont_ok(cont, &cont_len)) {
        return PARLEY_ERR_MALFORMED;
    }
    if (len > 0 && !in) {
        return PARLEY_ERR_MALFORMED;
    }
    s_out_t w = { out, cap, 0, false };
    size_t i = 0;
    while (i < len && !w.full) {
        uint32_t cp = 0;
        size_t step = content_utf8_decode(in + i, len - i, &cp);
        if (step == 0) {
            //  One bad byte at a time: the next one may start a valid
            //  sequence, and no bad byte ever reaches the output.
            s_put_hex(&w, "<", in[i], 2, ">");
            i++;
            continue;
        }
        if (cp == '\n' && cont) {
            s_put(&w, "\n", 1);
            s_put(&w, cont, cont_len);
        } else if (cp < 0x20) {
            char caret[2] = { '^', (char)('@' + cp) };
            s_put(&w, caret, 2);
        } else if (cp == 0x7f) {
            s_put(&w, "^?", 2);
        } else if (textsafe_is_escaped(cp)) {
            s_put_hex(&w, "<U+", cp, 4, ">");
        } else {
            s_put(&w, in + i, step);
        }
        i += step;
    }
    if (w.full) {
        out[0] = '\0';
        return PARLEY_ERR_LIMIT;
    }
    out[w.len] = '\0';
    *out_len = w.len;
    return PARLEY_OK;
}

/* ------------------------------------------------------------------ tests */

/*  Escapes s (n bytes) with cont and checks the result is want. */
static void
s_expect(const char *s, size_t n, const char *cont, const char *want)
{
    char out[512];
    size_t out_len = 99;
    CHECK(textsafe_escaped_max(n, cont) < sizeof out);
    CHECK(textsafe_escape((const uint8_t *)s, n, cont, out, sizeof out, &out_len) == PARLEY_OK);
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "textsafe: got \"%s\", want \"%s\"\n", out, want);
    }
    CHECK(strcmp(out, want) == 0);
    CHECK(out_len == strlen(want));
    CHECK(out_len <= textsafe_escaped_max(n, cont));
}

#define S_EXPECT(lit, cont, want) s_expect(lit, sizeof lit - 1, cont, want)

static void
s_test_controls(void)
{
    S_EXPECT("", NULL, "");
    S_EXPECT("hello, parley", NULL, "hello, parley");
    S_EXPECT("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", NULL,
             "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"); /* é € 😀 pass */
    S_EXPECT("\x1b[2J", NULL, "^[[2J");
    S_EXPECT("\x1b]0;title\x07", NULL, "^[]0;title^G");
    S_EXPECT("\x1b[31mred\x1b[0m", NULL, "^[[31mred^[[0m");
    S_EXPECT("a\0b", NULL, "a^@b");
    S_EXPECT("\t\r\x1f\x7f", NULL, "^I^M^_^?");
    S_EXPECT("a\nb", NULL, "a^Jb");
    /* C1 as UTF-8, and as a lone byte (invalid UTF-8). */
    S_EXPECT("\xc2\x80\xc2\x9b\xc2\x9f\xc2\xa0", NULL, "<U+0080><U+009B><U+009F>\xc2\xa0");
    S_EXPECT("\2332J", NULL, "<9B>2J");
    /* Every bidi control, and the separators. */
    S_EXPECT("\xd8\x9c\xe2\x80\x8e\xe2\x80\x8f", NULL, "<U+061C><U+200E><U+200F>");
    S_EXPECT("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x80\xae", NULL,
             "<U+202A><U+202B><U+202C><U+202D><U+202E>");
    S_EXPECT("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9", NULL,
             "<U+2066><U+2067><U+2068><U+2069>");
    S_EXPECT("\xe2\x80\xa8\xe2\x80\xa9", NULL, "<U+2028><U+2029>");
    /* Neighbours of the escaped ranges pass. */
    S_EXPECT("\xe2\x80\x8d\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa", NULL,
             "\xe2\x80\x8d\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa");
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        bool want = cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0x61c
                    || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e)
                    || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
        CHECK(textsafe_is_escaped(cp) == want);
    }
}

static void
s_test_invalid(void)
{
    S_EXPECT("\xc0\xaf", NULL, "<C0><AF>");                 /* overlong '/' */
    S_EXPECT("\xe0\x80\xaf", NULL, "<E0><80><AF>");         /* overlong, 3 bytes */
    S_EXPECT("\xed\xa0\x80", NULL, "<ED><A0><80>");         /* surrogate U+D800 */
    S_EXPECT("\xf4\x90\x80\x80", NULL, "<F4><90><80><80>"); /* above U+10FFFF */
    S_EXPECT("\xff\xfe", NULL, "<FF><FE>");
    S_EXPECT("ab\xe2\x80", NULL, "ab<E2><80>");         /* truncated at the end */
    S_EXPECT("\342a", NULL, "<E2>a");                   /* truncated mid-text */
    S_EXPECT("\xe2\xe2\x80\xae", NULL, "<E2><U+202E>"); /* resyncs on the next lead */
}

static void
s_test_multiline(void)
{
    S_EXPECT("one\ntwo", "  | ", "one\n  | two");
    S_EXPECT("one\n", "  | ", "one\n  | ");
    S_EXPECT("\n\n", "> ", "\n> \n> ");
    /* The forged line of the hostile-input issue: it never starts a line. */
    S_EXPECT("hi\r\n2026-01-01 00:00:00  mallory -> you  [received] forged", "  | ",
             "hi^M\n  | 2026-01-01 00:00:00  mallory -> you  [received] forged");
    S_EXPECT("a\nb", "", "a\nb"); /* an empty marker is allowed, if unwise */
    /* A marker must be printable ASCII. */
    char out[64];
    size_t n = 7;
    CHECK(textsafe_escape((const uint8_t *)"a\nb", 3, "\x1b", out, sizeof out, &n)
          == PARLEY_ERR_MALFORMED);
    CHECK(n == 0 && out[0] == '\0');
    CHECK(textsafe_escape((const uint8_t *)"a\nb", 3, "\n", out, sizeof out, &n)
          == PARLEY_ERR_MALFORMED);
    CHECK(textsafe_escape((const uint8_t *)"a", 1, "\xc3\xa9", out, sizeof out, &n)
          == PARLEY_ERR_MALFORMED);
}

static void
s_test_limits(void)
{
    CHECK(textsafe_escaped_max(0, NULL) == 0);
    CHECK(textsafe_escaped_max(10, NULL) == 10 * TEXTSAFE_EXPAND);
    CHECK(textsafe_escaped_max(10, "  | ") == 10 * 5);
    CHECK(textsafe_escaped_max(10, "") == 10 * TEXTSAFE_EXPAND);
    CHECK(textsafe_escaped_max(SIZE_MAX / 2, NULL) == SIZE_MAX);
    CHECK(textsafe_escaped_max(SIZE_MAX / 4, NULL) == (SIZE_MAX / 4) * 4);

    /* Every cap from 0 to just enough: LIMIT and "" until it fits. */
    const char *in = "a\x1b\xe2\x80\xae\x9b\n";
    size_t in_len = strlen(in);
    const char *want = "a^[<U+202E><9B>\n  | ";
    char out[64];
    for (size_t cap = 0; cap <= strlen(want) + 1; cap++) {
        memset(out, 'x', sizeof out);
        size_t n = 99;
        int rc = textsafe_escape((const uint8_t *)in, in_len, "  | ", out, cap, &n);
        if (cap <= strlen(want)) {
            CHECK(rc == PARLEY_ERR_LIMIT && n == 0);
            CHECK(cap == 0 ? out[0] == 'x' : out[0] == '\0');
        } else {
            CHECK(rc == PARLEY_OK && n == strlen(want) && strcmp(out, want) == 0);
        }
        CHECK(out[cap] == 'x'); /* nothing written past cap */
    }
    size_t n = 0;
    CHECK(textsafe_escape(NULL, 0, NULL, out, sizeof out, &n) == PARLEY_OK && n == 0);
    CHECK(textsafe_escape(NULL, 1, NULL, out, sizeof out, &n) == PARLEY_ERR_MALFORMED);

    /* The worst case per byte reaches the bound exactly. */
    uint8_t bad[64];
    memset(bad, 0xff, sizeof bad);
    char big[4 * 64 + 1];
    CHECK(textsafe_escape(bad, sizeof bad, NULL, big, sizeof big, &n) == PARLEY_OK);
    CHECK(n == textsafe_escaped_max(sizeof bad, NULL));
}

/*  Every byte value in every position of a short text: the output never
 *  holds a control byte, DEL or an escaped code point, and stays in bound. */
static void
s_test_all_bytes(void)
{
    uint8_t in[3];
    char out[64];
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            in[0] = (uint8_t)a;
            in[1] = (uint8_t)b;
            in[2] = 0x80;
            for (size_t len = 1; len <= 3; len++) {
                size_t n = 0;
                CHECK(textsafe_escape(in, len, NULL, out, sizeof out, &n) == PARLEY_OK);
                CHECK(n <= textsafe_escaped_max(len, NULL) && strlen(out) == n);
                for (size_t i = 0; i < n;) {
                    uint32_t cp = 0;
                    size_t step = content_utf8_decode((const uint8_t *)out + i, n - i, &cp);
                    CHECK(step > 0 && !textsafe_is_escaped(cp));
                    i += step;
                }
            }
        }
    }
}

void
textsafe_test(bool verbose)
{
    if (verbose) {
        printf(" * textsafe: controls, bidi, invalid UTF-8, multi-line, limits, all bytes\n");
    }
    s_test_controls();
    s_test_invalid();
    s_test_multiline();
    s_test_limits();
    s_test_all_bytes();
}
