/*  tools/chat/view.c — draws the chat's screen with ncurses: the title,
 *  the conversation list, the messages (walked up from the newest, older
 *  pages fetched as the view needs them), the status line and the input.
 *
 *  Everything drawn was made safe before (conv_msg_text, text_safe): the
 *  only bytes that reach the terminal are ours or escaped.
 */
#include "chat_int.h"

#include <ncurses.h>
#include <stdio.h>
#include <stdlib.h>

enum { P_BAR = 1, P_DIM, P_MARK, P_LIST_HOT, P_LIST_CUR, P_FIRST };

static const short s_palette_256[] = { 33,  39,  41,  70,  105, 135, 166, 172,
                                       178, 197, 202, 208, 214, 32,  99,  129 };
static const short s_palette_8[] = { COLOR_RED,     COLOR_GREEN, COLOR_YELLOW,
                                     COLOR_MAGENTA, COLOR_CYAN,  COLOR_BLUE };

static unsigned
s_n_palette(const chat_t *ch)
{
    return ch->colours >= 256 ? (unsigned)(sizeof s_palette_256 / sizeof s_palette_256[0])
           : ch->colours >= 8 ? (unsigned)(sizeof s_palette_8 / sizeof s_palette_8[0])
                              : 0;
}

void
view_colours(chat_t *ch)
{
    ch->colours = 0;
    if (!has_colors() || start_color() == ERR) {
        return;
    }
    use_default_colors();
    ch->colours = COLORS >= 256 ? 256 : COLORS >= 8 ? 8 : 0;
    if (!ch->colours) {
        return;
    }
    init_pair(P_BAR, COLOR_WHITE, COLOR_BLUE);
    init_pair(P_DIM, ch->colours >= 256 ? 244 : COLOR_CYAN, -1);
    init_pair(P_MARK, COLOR_RED, -1);
    init_pair(P_LIST_HOT, COLOR_YELLOW, -1);
    init_pair(P_LIST_CUR, COLOR_BLACK, COLOR_CYAN);
    unsigned n = s_n_palette(ch);
    for (unsigned i = 0; i < n; i++) {
        init_pair((short)(P_FIRST + i), ch->colours >= 256 ? s_palette_256[i] : s_palette_8[i], -1);
    }
}

static attr_t
s_pair(const chat_t *ch, int pair, attr_t mono)
{
    return ch->colours ? COLOR_PAIR(pair) : mono;
}

//  Writes the safe UTF-8 s (len) at (y, x), at most cells cells.
static void
s_put(int y, int x, const char *s, size_t len, size_t cells)
{
    size_t fit = text_fit(s, len, cells);
    mvaddnstr(y, x, s, (int)fit);
}

static void
s_fill_row(int y, attr_t a)
{
    attron(a);
    move(y, 0);
    for (int x = 0; x < COLS; x++) {
        addch(' ');
    }
    attroff(a);
}

static void
s_day(uint64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, cap, "%A %d %B %Y", &tm);
}

typedef struct {
    size_t starts[512];
    size_t lens[512];
    size_t n;
} s_rows_t;

static void
s_row_cb(size_t start, size_t len, void *arg)
{
    s_rows_t *r = arg;
    if (r->n < sizeof r->starts / sizeof r->starts[0]) {
        r->starts[r->n] = start;
        r->lens[r->n] = len;
        r->n++;
    }
}

//  A separator row: "──── text ────" across w cells from x.
static void
s_rule(int y, int x, size_t w, const char *text, attr_t a)
{
    attron(a);
    move(y, x);
    size_t tw = text_width(text, strlen(text));
    size_t left = w > tw + 2 ? (w - tw - 2) / 2 : 0;
    for (size_t k = 0; k < left; k++) {
        addstr("\u2500");
    }
    addch(' ');
    addstr(text);
    addch(' ');
    for (size_t k = left + tw + 2; k < w; k++) {
        addstr("\u2500");
    }
    attroff(a);
}

//  Draws message i's rows from row top (rows before first are skipped).
static void
s_draw_msg(chat_t *ch, conv_t *c, size_t i, int top, size_t skip, int bottom, int x0, size_t w)
{
    msg_t *m = &c->msgs[i];
    size_t tw = w > (size_t)(6 + CHAT_NAME_W + 3) ? w - (6 + CHAT_NAME_W + 3) : 1;
    int y = top;
    size_t r = 0;
    if (i == 0 || !conv_same_day(c->msgs[i - 1].ts_ms, m->ts_ms)) {
        if (r++ >= skip && y < bottom) {
            char day[64];
            s_day(m->ts_ms, day, sizeof day);
            s_rule(y++, x0, w, day, s_pair(ch, P_DIM, A_DIM));
        }
    }
    if (c->marker == i) {
        if (r++ >= skip && y < bottom) {
            s_rule(y++, x0, w, "new messages", s_pair(ch, P_MARK, A_BOLD) | A_BOLD);
        }
    }
    s_rows_t *rows = calloc(1, sizeof *rows);
    if (!rows) {
        return;
    }
    const char *text = m->text ? m->text : "";
    text_wrap(text, strlen(text), tw, s_row_cb, rows);
    for (size_t k = 0; k < rows->n; k++, r++) {
        if (r < skip || y >= bottom) {
            continue;
        }
        if (k == 0) {
            char hm[8];
            time_t t = (time_t)(m->ts_ms / 1000);
            struct tm tm;
            localtime_r(&t, &tm);
            strftime(hm, sizeof hm, "%H:%M", &tm);
            attron(s_pair(ch, P_DIM, A_DIM));
            mvaddstr(y, x0, hm);
            attroff(s_pair(ch, P_DIM, A_DIM));
            const char *who = m->status ? "--" : m->who ? m->who : "?";
            size_t ww = text_width(who, strlen(who));
            size_t pad = ww < CHAT_NAME_W ? CHAT_NAME_W - ww : 0;
            unsigned np = s_n_palette(ch);
            attr_t a = m->status ? s_pair(ch, P_DIM, A_DIM)
                       : np      ? COLOR_PAIR(P_FIRST + (int)text_colour(m->who_id, np)) | A_BOLD
                                 : A_BOLD;
            attron(a);
            s_put(y, x0 + 6 + (int)pad, who, strlen(who), CHAT_NAME_W);
            attroff(a);
        }
        mvaddstr(y, x0 + 6 + CHAT_NAME_W, " \u2502 ");
        attr_t a = m->status       ? s_pair(ch, P_DIM, A_DIM)
                   : c->found == i ? A_REVERSE
                   : m->mention    ? s_pair(ch, P_LIST_HOT, A_BOLD) | A_BOLD
                                   : A_NORMAL;
        size_t start = rows->starts[k], len = rows->lens[k];
        size_t body =
            start < m->text_len ? (start + len <= m->text_len ? len : m->text_len - start) : 0;
        attron(a);
        s_put(y, x0 + 6 + CHAT_NAME_W + 3, text + start, body, tw);
        attroff(a);
        if (body < len) {
            //  The delivery state, dimmed.
            attron(s_pair(ch, P_DIM, A_DIM));
            addnstr(text + start + body, (int)(len - body));
            attroff(s_pair(ch, P_DIM, A_DIM));
        }
        y++;
    }
    free(rows);
}

static void
s_draw_msgs(chat_t *ch, int top, int bottom, int x0, size_t w)
{
    conv_t *c = conv_cur(ch);
    size_t tw = w > (size_t)(6 + CHAT_NAME_W + 3) ? w - (6 + CHAT_NAME_W + 3) : 1;
    size_t height = (size_t)(bottom - top);
    //  Walk up from the newest until scroll + height rows are covered,
    //  fetching older pages as the walk needs them.
    size_t need = c->scroll + height, have = 0;
    size_t i = c->n;
    while (have < need) {
        if (i == 0) {
            size_t got = c->complete ? 0 : chat_fetch(ch, c);
            if (got == 0) {
                break;
            }
            i += got;
        }
        i--;
        have += conv_msg_rows(c, i, tw);
    }
    if (have < need && c->scroll > 0) {
        //  Scrolled past the start: the view stops at the oldest message.
        size_t over = need - have;
        c->scroll = c->scroll > over ? c->scroll - over : 0;
        need = c->scroll + height;
    }
    //  Rows above the view in message i, then draw down.
    size_t skip = have > need ? have - need : 0;
    int y = top + (have < height ? (int)(height - have) : 0);
    for (size_t k = i; k < c->n && y < bottom; k++) {
        size_t rows = conv_msg_rows(c, k, tw);
        size_t s = k == i ? skip : 0;
        s_draw_msg(ch, c, k, y, s, bottom, x0, w);
        y += (int)(rows - s);
    }
}

static void
s_draw_list(chat_t *ch, int top, int bottom)
{
    size_t h = (size_t)(bottom - top);
    size_t first = ch->cur >= h ? ch->cur - h + 1 : 0;
    for (size_t i = first; i < ch->n_convs && (int)(top + (int)(i - first)) < bottom; i++) {
        conv_t *c = ch->convs[i];
        int y = top + (int)(i - first);
        char label[256];
        char *name = text_safe(c->name, strlen(c->name));
        snprintf(label, sizeof label, "%zu%s%s", i + 1,
                 c->channel ? " #"
                 : c->id[0] ? " @"
                            : " ",
                 name ? name : "?");
        free(name);
        char count[24] = "";
        if (c->unread && i != ch->cur) {
            snprintf(count, sizeof count, " %s%llu", c->highlight ? "!" : "",
                     (unsigned long long)c->unread);
        }
        attr_t a = i == ch->cur   ? s_pair(ch, P_LIST_CUR, A_REVERSE)
                   : c->highlight ? s_pair(ch, P_MARK, A_BOLD) | A_BOLD
                   : c->unread    ? s_pair(ch, P_LIST_HOT, A_BOLD) | A_BOLD
                                  : A_NORMAL;
        size_t cw = strlen(count);
        attron(a);
        mvhline(y, 0, ' ', CHAT_LIST_W - 1);
        s_put(y, 0, label, strlen(label), (size_t)CHAT_LIST_W - 1 - cw);
        mvaddstr(y, CHAT_LIST_W - 1 - (int)cw, count);
        attroff(a);
    }
    for (int y = top; y < bottom; y++) {
        mvaddstr(y, CHAT_LIST_W - 1, "\u2502");
    }
}

static void
s_draw_bars(chat_t *ch)
{
    conv_t *c = conv_cur(ch);
    attr_t bar = s_pair(ch, P_BAR, A_REVERSE);
    s_fill_row(0, bar);
    char title[1024];
    if (c->id[0] == '\0') {
        snprintf(title, sizeof title, "parley — your node %s%s%s", ch->me_short,
                 ch->net_name[0] ? " — network " : "", ch->net_name);
    } else if (c->channel) {
        snprintf(title, sizeof title, "#%s — %s — %d member%s%s", c->name,
                 c->topic[0] ? c->topic : "(no topic)", c->members, c->members == 1 ? "" : "s",
                 c->reader ? " — read only" : "");
    } else {
        char ttl[64] = "";
        if (c->ttl_s) {
            snprintf(ttl, sizeof ttl, " — messages disappear after %llu s",
                     (unsigned long long)c->ttl_s);
        }
        snprintf(title, sizeof title, "%s (%.8s) — %s%s", c->name, c->id,
                 c->verified ? "verified" : "not verified (/verify)", ttl);
    }
    char *safe = text_safe(title, strlen(title));
    attron(bar);
    if (safe) {
        char *nl;
        while ((nl = strchr(safe, '\n')) != NULL) {
            *nl = ' ';
        }
        s_put(0, 1, safe, strlen(safe), (size_t)(COLS > 2 ? COLS - 2 : 0));
    }
    attroff(bar);
    free(safe);
    //  Status: network, peers, sync, the last message's delivery, -MORE-.
    int y = LINES - 2;
    s_fill_row(y, bar);
    char status[512];
    const char *last = "";
    for (size_t k = c->n; k > 0; k--) {
        if (c->msgs[k - 1].outgoing) {
            last = c->msgs[k - 1].state;
            break;
        }
    }
    char net[160] = "open mode";
    if (ch->net_name[0]) {
        snprintf(net, sizeof net, "network %s, %s", ch->net_name, ch->net_role);
    }
    char *safe_net = text_safe(net, strlen(net));
    snprintf(status, sizeof status, "[%s] [%d peer%s online] [%s]%s%s%s%s",
             safe_net ? safe_net : "?", ch->peers_online, ch->peers_online == 1 ? "" : "s",
             ch->api ? ch->sync : "node away", *last ? " [last: " : "", last, *last ? "]" : "",
             ch->bell ? "" : " [bell off]");
    free(safe_net);
    attron(bar);
    s_put(y, 1, status, strlen(status), (size_t)(COLS > 2 ? COLS - 2 : 0));
    if (c->scroll > 0) {
        char more[32];
        snprintf(more, sizeof more, "-MORE(%zu)-", c->more);
        mvaddstr(y, COLS - 1 - (int)strlen(more), more);
    }
    attroff(bar);
}

static void
s_draw_input(chat_t *ch)
{
    int y = LINES - 1;
    move(y, 0);
    clrtoeol();
    const line_t *l = ch->searching ? &ch->query : &ch->line;
    const char *prompt = ch->searching ? "(search) " : "> ";
    if (!ch->searching && conv_cur(ch)->channel) {
        prompt = "";
    }
    char pbuf[160];
    if (!ch->searching && conv_cur(ch)->id[0]) {
        char *name = text_safe(conv_cur(ch)->name, strlen(conv_cur(ch)->name));
        snprintf(pbuf, sizeof pbuf, "[%s%.40s] ", conv_cur(ch)->channel ? "#" : "",
                 name ? name : "");
        free(name);
        prompt = pbuf;
    }
    size_t pw = text_width(prompt, strlen(prompt));
    mvaddstr(y, 0, prompt);
    //  What we type is ours, but pasted text can hold anything: shown safe.
    char *safe = text_safe(l->buf, l->len);
    char *before = text_safe(l->buf, l->cur);
    if (!safe || !before) {
        free(safe);
        free(before);
        return;
    }
    size_t avail = COLS > (int)pw + 1 ? (size_t)COLS - pw - 1 : 1;
    size_t cw = text_width(before, strlen(before));
    //  Scrolled so the cursor stays in view.
    size_t from = 0;
    while (cw > avail) {
        size_t at = from;
        int w = 0;
        (void)text_next(safe, strlen(safe), &at, &w);
        from = at;
        cw -= (size_t)w;
    }
    s_put(y, (int)pw, safe + from, strlen(safe) - from, avail);
    move(y, (int)(pw + cw));
    free(safe);
    free(before);
}

void
view_draw(chat_t *ch)
{
    getmaxyx(stdscr, ch->rows, ch->cols);
    erase();
    if (LINES < 5 || COLS < CHAT_LIST_W + 20) {
        mvaddstr(0, 0, "parley: the terminal is too small");
        refresh();
        return;
    }
    s_draw_bars(ch);
    s_draw_list(ch, 1, LINES - 2);
    s_draw_msgs(ch, 1, LINES - 2, CHAT_LIST_W + 1, (size_t)(COLS - CHAT_LIST_W - 1));
    s_draw_input(ch);
    refresh();
}
