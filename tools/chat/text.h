/*  tools/chat/text.h — the text work of the terminal chat, apart from the
 *  terminal: peer text made safe and measured in terminal cells, wrapped
 *  into rows, the input line being edited, completion and colours.
 *
 *  Pure (no ncurses, no I/O), so that chat_selftest covers it. Widths come
 *  from wcwidth(3) under the caller's LC_CTYPE (a UTF-8 locale): a CJK
 *  character or an emoji takes two cells, a combining mark none.
 */
#ifndef PARLEY_TOOLS_CHAT_TEXT_H
#define PARLEY_TOOLS_CHAT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  The safe rendering of the len bytes at s (proto/textsafe.h rules: no
 *  control, bidi override or invalid byte survives; each LF is kept as a
 *  line break), malloc'd and NUL-terminated; NULL if memory ran out. */
char *text_safe(const char *s, size_t len);

/*  The next character of the UTF-8 string s at byte *at: its code point,
 *  its width in cells (0..2), and *at moved past it. A byte that is not
 *  valid UTF-8 counts as one cell of U+FFFD. s must be safe (text_safe) for
 *  the widths to be those the terminal draws. */
uint32_t text_next(const char *s, size_t len, size_t *at, int *width);

/*  Cells the first len bytes of s take. */
size_t text_width(const char *s, size_t len);

/*  The bytes of s (len) that fit in cells cells, whole characters only. */
size_t text_fit(const char *s, size_t len, size_t cells);

/*  Wraps s (len bytes, LF breaks a row) into rows of at most cells cells,
 *  breaking after a space where one is in the row's second half. Calls
 *  row(start, len, arg) for each row (start is a byte offset into s) and
 *  returns the number of rows; row may be NULL to count them. An empty
 *  text is one empty row. */
size_t text_wrap(const char *s, size_t len, size_t cells,
                 void (*row)(size_t start, size_t len, void *arg), void *arg);

/*  Whether hay holds needle, ASCII letters compared without case. */
bool text_contains(const char *hay, const char *needle);

/*  A stable colour index in [0, n) for an id (a person keeps one colour). */
unsigned text_colour(const char *id, unsigned n);

/* ---- the input line ---- */

#define LINE_MAX_BYTES 4096u /* a line being typed; a message holds more */

typedef struct {
    char buf[LINE_MAX_BYTES + 1]; /* UTF-8, NUL-terminated */
    size_t len;                   /* bytes in buf */
    size_t cur;                   /* cursor, a byte offset at a character start */
} line_t;

void line_clear(line_t *l);
/*  Inserts the UTF-8 bytes of s (n) at the cursor; false if they do not fit
 *  (nothing is inserted). */
bool line_insert(line_t *l, const char *s, size_t n);
/*  Inserts the code point cp at the cursor. */
bool line_insert_cp(line_t *l, uint32_t cp);
void line_left(line_t *l);
void line_right(line_t *l);
void line_home(line_t *l);
void line_end(line_t *l);
/*  Deletes the character before the cursor (Backspace) or at it (Delete). */
void line_backspace(line_t *l);
void line_delete(line_t *l);
/*  Deletes the word before the cursor (Ctrl-w) and to the start (Ctrl-u). */
void line_kill_word(line_t *l);
void line_kill_start(line_t *l);
/*  Sets the line to s (cursor at the end). */
void line_set(line_t *l, const char *s);
/*  The word before the cursor: its start offset (the word is buf[*start,
 *  cur)). */
size_t line_word(const line_t *l);
/*  Replaces the word before the cursor with s. */
bool line_replace_word(line_t *l, const char *s);

/* ---- completion ---- */

/*  Candidates for the word prefix: among the n strings of cands, the next
 *  one after *at (cycling; *at -1 starts) that starts with prefix (ASCII
 *  case ignored). Returns its index, or -1 if none does. */
int text_complete(const char *prefix, const char *const *cands, size_t n, int at);

void text_test(bool verbose);

#endif
