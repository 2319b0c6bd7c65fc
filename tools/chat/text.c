/*  tools/chat/text.c — see text.h.
 *
 *  Characters are decoded with mbrtowc(3) and measured with wcwidth(3), so
 *  the UI and the terminal agree on what a cell is under the same locale.
 *  Every function here takes what it reads as (pointer, length) and stays
 *  within it; the input line never grows past LINE_MAX_BYTES.
 */
#include "text.h"

#include "../../proto/textsafe.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wchar.h>

char *
text_safe(const char *s, size_t len)
{
    size_t cap = textsafe_escaped_max(len, "");
    if (cap == SIZE_MAX) {
        return NULL;
    }
    char *out = malloc(cap + 1);
    size_t n = 0;
    if (out && textsafe_escape((const uint8_t *)s, len, "", out, cap + 1, &n) != PARLEY_OK) {
        free(out);
        out = NULL;
    }
    return out;
}

uint32_t
text_next(const char *s, size_t len, size_t *at, int *width)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    wchar_t wc = 0;
    size_t n = mbrtowc(&wc, s + *at, len - *at, &st);
    if (n == 0) {
        n = 1; // an embedded NUL: cannot be in safe text, counts as a cell
    }
    if (n == (size_t)-1 || n == (size_t)-2) {
        (*at)++;
        *width = 1;
        return 0xFFFD;
    }
    *at += n;
    int w = wcwidth(wc);
    *width = w < 0 ? 1 : w;
    return (uint32_t)wc;
}

size_t
text_width(const char *s, size_t len)
{
    size_t at = 0, cells = 0;
    while (at < len) {
        int w = 0;
        (void)text_next(s, len, &at, &w);
        cells += (size_t)w;
    }
    return cells;
}

size_t
text_fit(const char *s, size_t len, size_t cells)
{
    size_t at = 0, used = 0;
    while (at < len) {
        size_t next = at;
        int w = 0;
        (void)text_next(s, len, &next, &w);
        if (used + (size_t)w > cells) {
            break;
        }
        used += (size_t)w;
        at = next;
    }
    return at;
}

size_t
text_wrap(const char *s, size_t len, size_t cells, void (*row)(size_t, size_t, void *), void *arg)
{
    size_t rows = 0, start = 0;
    if (cells == 0) {
        cells = 1;
    }
    for (;;) {
        const char *nl = memchr(s + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - s) : len;
        //  One line of the text: as many rows as its width needs.
        size_t at = start;
        do {
            size_t fit = at + text_fit(s + at, end - at, cells);
            if (fit == at && at < end) {
                //  A character wider than the row: it takes a row alone.
                int w = 0;
                (void)text_next(s, end, &fit, &w);
            }
            size_t cut = fit;
            if (fit < end) {
                //  Break after the last space in the row's second half.
                for (size_t b = fit; b > at + (fit - at) / 2; b--) {
                    if (s[b - 1] == ' ') {
                        cut = b;
                        break;
                    }
                }
            }
            if (row) {
                row(at, cut - at, arg);
            }
            rows++;
            at = cut;
        } while (at < end);
        if (!nl) {
            return rows;
        }
        start = end + 1;
    }
}

bool
text_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0) {
        return false;
    }
    for (const char *p = hay; *p; p++) {
        if (strncasecmp(p, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

unsigned
text_colour(const char *id, unsigned n)
{
    //  FNV-1a: a spread, not a secret.
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return n ? h % n : 0;
}

/* ---- the input line ---- */

void
line_clear(line_t *l)
{
    l->len = 0;
    l->cur = 0;
    l->buf[0] = '\0';
}

bool
line_insert(line_t *l, const char *s, size_t n)
{
    if (n > LINE_MAX_BYTES - l->len) {
        return false;
    }
    memmove(l->buf + l->cur + n, l->buf + l->cur, l->len - l->cur + 1);
    memcpy(l->buf + l->cur, s, n);
    l->len += n;
    l->cur += n;
    return true;
}

bool
line_insert_cp(line_t *l, uint32_t cp)
{
    char mb[MB_LEN_MAX];
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t n = wcrtomb(mb, (wchar_t)cp, &st);
    return n != (size_t)-1 && line_insert(l, mb, n);
}

//  The start of the character before byte at.
static size_t
s_prev(const line_t *l, size_t at)
{
    size_t p = at;
    while (p > 0) {
        p--;
        if (((unsigned char)l->buf[p] & 0xC0) != 0x80) {
            break;
        }
    }
    return p;
}

static size_t
s_next(const line_t *l, size_t at)
{
    if (at >= l->len) {
        return l->len;
    }
    int w = 0;
    (void)text_next(l->buf, l->len, &at, &w);
    return at;
}

void
line_left(line_t *l)
{
    l->cur = s_prev(l, l->cur);
}

void
line_right(line_t *l)
{
    l->cur = s_next(l, l->cur);
}

void
line_home(line_t *l)
{
    l->cur = 0;
}

void
line_end(line_t *l)
{
    l->cur = l->len;
}

//  Removes buf[from, to).
static void
s_cut(line_t *l, size_t from, size_t to)
{
    memmove(l->buf + from, l->buf + to, l->len - to + 1);
    l->len -= to - from;
    if (l->cur >= to) {
        l->cur -= to - from;
    } else if (l->cur > from) {
        l->cur = from;
    }
}

void
line_backspace(line_t *l)
{
    if (l->cur > 0) {
        s_cut(l, s_prev(l, l->cur), l->cur);
    }
}

void
line_delete(line_t *l)
{
    if (l->cur < l->len) {
        s_cut(l, l->cur, s_next(l, l->cur));
    }
}

void
line_kill_word(line_t *l)
{
    size_t p = l->cur;
    while (p > 0 && l->buf[p - 1] == ' ') {
        p--;
    }
    while (p > 0 && l->buf[p - 1] != ' ') {
        p--;
    }
    s_cut(l, p, l->cur);
}

void
line_kill_start(line_t *l)
{
    s_cut(l, 0, l->cur);
}

void
line_set(line_t *l, const char *s)
{
    size_t n = strlen(s);
    if (n > LINE_MAX_BYTES) {
        n = text_fit(s, LINE_MAX_BYTES, SIZE_MAX);
        while (n > LINE_MAX_BYTES) {
            n--;
        }
    }
    memcpy(l->buf, s, n);
    l->buf[n] = '\0';
    l->len = n;
    l->cur = n;
}

size_t
line_word(const line_t *l)
{
    size_t p = l->cur;
    while (p > 0 && l->buf[p - 1] != ' ') {
        p--;
    }
    return p;
}

bool
line_replace_word(line_t *l, const char *s)
{
    size_t start = line_word(l);
    size_t old = l->cur - start, n = strlen(s);
    if (n > old && n - old > LINE_MAX_BYTES - l->len) {
        return false;
    }
    s_cut(l, start, l->cur);
    l->cur = start;
    return line_insert(l, s, n);
}

int
text_complete(const char *prefix, const char *const *cands, size_t n, int at)
{
    size_t plen = strlen(prefix);
    for (size_t k = 1; k <= n; k++) {
        size_t i = (size_t)(at + (int)k) % n;
        if (at < 0) {
            i = k - 1;
        }
        if (strncasecmp(cands[i], prefix, plen) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* ---- self-test ---- */

#include "../../proto/selftest.h"

static void
s_t_row(size_t start, size_t len, void *arg)
{
    char(*rows)[64] = arg;
    size_t i = 0;
    while (rows[i][0]) {
        i++;
    }
    snprintf(rows[i], sizeof rows[i], "%zu+%zu", start, len);
}

void
text_test(bool verbose)
{
    (void)verbose;
    //  Escaping: controls and bidi overrides never pass, LF does.
    char *safe = text_safe("a\x1b[2Jb\xe2\x80\xae"
                           "c\nd\r",
                           13);
    CHECK(safe && strcmp(safe, "a^[[2Jb<U+202E>c\nd^M") == 0);
    free(safe);
    //  Widths: ASCII 1, CJK 2, emoji 2, a combining mark 0.
    CHECK(text_width("abc", 3) == 3);
    CHECK(text_width("\xe4\xbd\xa0\xe5\xa5\xbd", 6) == 4);  // 你好
    CHECK(text_width("\xf0\x9f\x98\x80", 4) == 2);          // 😀
    CHECK(text_width("e\xcc\x81", 3) == 1);                 // e + U+0301
    CHECK(text_width("\xff", 1) == 1);                      // invalid: one cell
    CHECK(text_fit("\xe4\xbd\xa0\xe5\xa5\xbd", 6, 3) == 3); // one of the two fits
    CHECK(text_fit("ab\xe4\xbd\xa0", 5, 4) == 5);
    //  Wrapping: at spaces in the second half, hard otherwise, LF breaks.
    char rows[8][64];
    memset(rows, 0, sizeof rows);
    CHECK(text_wrap("hello world again", 17, 11, s_t_row, rows) == 2);
    CHECK(strcmp(rows[0], "0+6") == 0 && strcmp(rows[1], "6+11") == 0);
    memset(rows, 0, sizeof rows);
    CHECK(text_wrap("abcdefghij", 10, 4, s_t_row, rows) == 3);
    CHECK(strcmp(rows[2], "8+2") == 0);
    memset(rows, 0, sizeof rows);
    CHECK(text_wrap("ab\n\ncd", 6, 10, s_t_row, rows) == 3);
    CHECK(strcmp(rows[1], "3+0") == 0 && strcmp(rows[2], "4+2") == 0);
    CHECK(text_wrap("", 0, 10, NULL, NULL) == 1);
    CHECK(text_wrap("\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xbd\xa0", 9, 1, NULL, NULL) == 3); // too wide
    CHECK(text_wrap("\xe4\xbd\xa0\xe5\xa5\xbd", 6, 3, NULL, NULL) == 2);
    //  Case-blind search; colours are stable.
    CHECK(text_contains("Hello Alice!", "alice") && !text_contains("Hello", "bob"));
    CHECK(!text_contains("x", ""));
    CHECK(text_colour("abc", 8) == text_colour("abc", 8) && text_colour("abc", 8) < 8);
    //  The input line: UTF-8 aware moves and deletes, bounded.
    line_t *l = calloc(1, sizeof *l);
    CHECK(l);
    line_clear(l);
    CHECK(line_insert(l, "h\xc3\xa9llo", 6));
    line_left(l);
    line_left(l);
    line_left(l);
    CHECK(l->cur == 3); // after é
    line_backspace(l);
    CHECK(strcmp(l->buf, "hllo") == 0 && l->cur == 1);
    CHECK(line_insert_cp(l, 0x4F60));
    CHECK(strcmp(l->buf, "h\xe4\xbd\xa0llo") == 0 && l->cur == 4);
    line_delete(l);
    CHECK(strcmp(l->buf, "h\xe4\xbd\xa0lo") == 0);
    line_set(l, "/msg alice hi there");
    line_kill_word(l);
    CHECK(strcmp(l->buf, "/msg alice hi ") == 0);
    line_kill_word(l);
    CHECK(strcmp(l->buf, "/msg alice ") == 0);
    line_set(l, "/ms");
    CHECK(line_word(l) == 0 && line_replace_word(l, "/msg "));
    CHECK(strcmp(l->buf, "/msg ") == 0 && l->cur == 5);
    line_home(l);
    line_kill_start(l);
    CHECK(l->len == 5);
    line_end(l);
    line_kill_start(l);
    CHECK(l->len == 0 && l->buf[0] == '\0');
    char big[LINE_MAX_BYTES + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(!line_insert(l, big, LINE_MAX_BYTES + 1) && l->len == 0);
    CHECK(line_insert(l, big, LINE_MAX_BYTES) && !line_insert(l, "y", 1));
    line_set(l, big);
    CHECK(l->len == LINE_MAX_BYTES);
    free(l);
    //  Completion cycles over the candidates that match.
    const char *cands[] = { "alice", "bob", "Alan", "carol" };
    int at = text_complete("al", cands, 4, -1);
    CHECK(at == 0);
    at = text_complete("al", cands, 4, at);
    CHECK(at == 2);
    at = text_complete("al", cands, 4, at);
    CHECK(at == 0);
    CHECK(text_complete("zz", cands, 4, -1) == -1);
}
