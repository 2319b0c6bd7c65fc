/*  tools/chat/conv.c — the chat's conversations and the messages loaded of
 *  each: found, added and kept in the list's order; messages filled from
 *  the API's objects with their text made safe (text_safe) once, and the
 *  rows they take; the read marker and the trim back to CHAT_KEEP.
 *
 *  No terminal and no API here: chat.c fetches, view.c draws.
 */
#include "chat_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

void
conv_msg_free(msg_t *m)
{
    free(m->text);
    free(m->who);
    m->text = m->who = NULL;
}

void
conv_clear(conv_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        conv_msg_free(&c->msgs[i]);
    }
    c->n = 0;
    c->loaded = c->complete = false;
    c->marker = c->found = SIZE_MAX;
    c->scroll = c->more = 0;
}

void
conv_free(conv_t *c)
{
    conv_clear(c);
    free(c->msgs);
    free(c);
}

conv_t *
conv_find(chat_t *ch, bool channel, const char *id)
{
    for (size_t i = 0; i < ch->n_convs; i++) {
        if (ch->convs[i]->channel == channel && strcmp(ch->convs[i]->id, id) == 0) {
            return ch->convs[i];
        }
    }
    return NULL;
}

size_t
conv_index(const chat_t *ch, const conv_t *c)
{
    for (size_t i = 0; i < ch->n_convs; i++) {
        if (ch->convs[i] == c) {
            return i;
        }
    }
    return 0;
}

//  Conversations in a stable order: "parley", the channels, the DMs, each
//  by name; Alt-1..9 are places in it.
static int
s_conv_cmp(const void *a, const void *b)
{
    const conv_t *x = *(conv_t *const *)a, *y = *(conv_t *const *)b;
    int rx = x->id[0] == '\0' ? 0 : x->channel ? 1 : 2;
    int ry = y->id[0] == '\0' ? 0 : y->channel ? 1 : 2;
    if (rx != ry) {
        return rx - ry;
    }
    int c = strcasecmp(x->name, y->name);
    return c ? c : strcmp(x->id, y->id);
}

void
conv_sort(chat_t *ch)
{
    conv_t *cur = ch->n_convs ? ch->convs[ch->cur] : NULL;
    qsort(ch->convs, ch->n_convs, sizeof *ch->convs, s_conv_cmp);
    ch->cur = cur ? conv_index(ch, cur) : 0;
}

conv_t *
conv_add(chat_t *ch, bool channel, const char *id, const char *name)
{
    conv_t *c = conv_find(ch, channel, id);
    if (c) {
        chat_copy(c->name, sizeof c->name, name);
        return c;
    }
    if (ch->n_convs == ch->cap_convs) {
        size_t cap = ch->cap_convs ? 2 * ch->cap_convs : 16;
        conv_t **grown = realloc(ch->convs, cap * sizeof *grown);
        if (!grown) {
            return NULL;
        }
        ch->convs = grown;
        ch->cap_convs = cap;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        return NULL;
    }
    c->channel = channel;
    chat_copy(c->id, sizeof c->id, id);
    chat_copy(c->name, sizeof c->name, name);
    c->marker = c->found = SIZE_MAX;
    ch->convs[ch->n_convs++] = c;
    conv_sort(ch);
    return c;
}

const contact_t *
conv_contact(const chat_t *ch, const char *id)
{
    for (size_t i = 0; i < ch->n_contacts; i++) {
        if (strcmp(ch->contacts[i].id, id) == 0) {
            return &ch->contacts[i];
        }
    }
    return NULL;
}

//  A person's name as shown: their contact name, else their short id.
void
conv_name_of(const chat_t *ch, const char *id, const char *fallback, char *out, size_t cap)
{
    if (strcmp(id, ch->me) == 0) {
        chat_copy(out, cap, ch->me_name[0] ? ch->me_name : "me");
        return;
    }
    const contact_t *ct = conv_contact(ch, id);
    snprintf(out, cap, "%.*s", (int)(cap - 1),
             ct                      ? ct->name
             : fallback && *fallback ? fallback
                                     : id);
    if (!ct && strlen(out) > 8) {
        out[8] = '\0';
    }
}

//  Room for one more message at index at (0: the oldest end).
msg_t *
conv_insert(conv_t *c, size_t at)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        msg_t *grown = realloc(c->msgs, cap * sizeof *grown);
        if (!grown) {
            return NULL;
        }
        c->msgs = grown;
        c->cap = cap;
    }
    memmove(c->msgs + at + 1, c->msgs + at, (c->n - at) * sizeof *c->msgs);
    c->n++;
    memset(&c->msgs[at], 0, sizeof c->msgs[at]);
    return &c->msgs[at];
}

//  m's shown text: the safe body (len bytes), then its state if any.
static void
s_compose(msg_t *m, const char *body, size_t len)
{
    size_t cap = len + strlen(m->state) + 8;
    char *text = malloc(cap);
    if (!text) {
        return; // the old text stays
    }
    snprintf(text, cap, m->state[0] ? "%.*s  [%s]" : "%.*s", (int)len, body, m->state);
    free(m->text);
    m->text = text;
    m->text_len = len;
}

//  Sets m's shown text: the message, then (ours) its state.
void
conv_msg_text(msg_t *m, const char *text)
{
    char *safe = text_safe(text, strlen(text));
    if (safe) {
        s_compose(m, safe, strlen(safe));
    }
    free(safe);
}

//  Re-renders m's state suffix after a delivery change.
void
conv_msg_state(msg_t *m, const char *state)
{
    if (!m->text || strcmp(m->state, state) == 0) {
        return;
    }
    chat_copy(m->state, sizeof m->state, state);
    char *body = strndup(m->text, m->text_len);
    if (body) {
        s_compose(m, body, m->text_len);
    }
    free(body);
}

//  A channel message's state: "queued", or "delivered 2/3, read 1/3".
void
conv_chan_state(const json_t *j, char *out, size_t cap)
{
    if (strcmp(chat_str(j, "state"), "queued") == 0) {
        chat_copy(out, cap, "queued");
    } else if (json_object_get(j, "of")) {
        uint64_t of = chat_int(j, "of");
        snprintf(out, cap, "delivered %llu/%llu, read %llu/%llu",
                 (unsigned long long)chat_int(j, "delivered"), (unsigned long long)of,
                 (unsigned long long)chat_int(j, "read"), (unsigned long long)of);
    } else {
        out[0] = '\0';
    }
}

//  Whether text names me: my name in the network, my short id, or a word
//  of /highlight.
bool
conv_names_me(const chat_t *ch, const char *text)
{
    bool hit = (ch->me_name[0] && text_contains(text, ch->me_name))
               || (ch->me_short[0] && text_contains(text, ch->me_short));
    for (size_t i = 0; i < ch->n_words && !hit; i++) {
        hit = text_contains(text, ch->words[i]);
    }
    return hit;
}

//  Fills m from a message of the API (DM or channel).
void
conv_fill(chat_t *ch, conv_t *c, msg_t *m, const json_t *j)
{
    m->outgoing = json_is_true(json_object_get(j, "outgoing"));
    m->ts_ms = chat_int(j, "ts_ms");
    char name[128];
    if (c->channel) {
        const char *from = chat_str(j, "from");
        chat_copy(m->who_id, sizeof m->who_id, from);
        conv_name_of(ch, from, chat_str(j, "from_short"), name, sizeof name);
        chat_copy(m->key, sizeof m->key, chat_str(j, "cursor"));
        if (m->outgoing) {
            conv_chan_state(j, m->state, sizeof m->state);
            snprintf(m->raw, sizeof m->raw, "%s", chat_str(j, "text"));
        }
    } else {
        chat_copy(m->who_id, sizeof m->who_id, m->outgoing ? ch->me : chat_str(j, "peer"));
        conv_name_of(ch, m->who_id, chat_str(j, "peer_short"), name, sizeof name);
        chat_copy(m->key, sizeof m->key, chat_str(j, "envelope_id"));
        chat_copy(m->msg_id, sizeof m->msg_id, chat_str(j, "msg_id"));
        if (m->outgoing) {
            chat_copy(m->state, sizeof m->state, chat_str(j, "state"));
        }
    }
    free(m->who);
    m->who = text_safe(name, strlen(name));
    const char *text = chat_str(j, "text");
    m->mention = !m->outgoing && conv_names_me(ch, text);
    conv_msg_text(m, text);
}

//  A line of the chat's own at the end of c ("peer went offline").
msg_t *
conv_say(conv_t *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    conv_trim(c);
    msg_t *m = conv_insert(c, c->n);
    if (!m) {
        return NULL;
    }
    m->status = true;
    m->ts_ms = chat_wall();
    m->who = strdup("");
    conv_msg_text(m, buf);
    if (c->scroll > 0) {
        c->more++;
    }
    return m;
}

conv_t *
conv_cur(chat_t *ch)
{
    return ch->convs[ch->cur];
}

conv_t *
conv_home(chat_t *ch)
{
    return conv_find(ch, false, "");
}

bool
conv_same_day(uint64_t a, uint64_t b)
{
    time_t ta = (time_t)(a / 1000), tb = (time_t)(b / 1000);
    struct tm x, y;
    localtime_r(&ta, &x);
    localtime_r(&tb, &y);
    return x.tm_year == y.tm_year && x.tm_yday == y.tm_yday;
}

//  Rows message i of c takes at width w: a day separator, the read marker,
//  the wrapped text.
size_t
conv_msg_rows(const conv_t *c, size_t i, size_t w)
{
    const msg_t *m = &c->msgs[i];
    size_t rows = text_wrap(m->text ? m->text : "", m->text ? strlen(m->text) : 0, w, NULL, NULL);
    if (rows > 512) {
        rows = 512;
    }
    rows += i == 0 || !conv_same_day(c->msgs[i - 1].ts_ms, m->ts_ms);
    rows += c->marker == i;
    return rows;
}

//  Counts the unread messages among c's first n loaded (newest first) down
//  from marker_left, and puts the marker above the oldest unread one once
//  it is among them.
void
conv_place_marker(conv_t *c, size_t n)
{
    size_t k = n;
    while (k > 0 && c->marker_left > 0) {
        k--;
        c->marker_left -= !c->msgs[k].outgoing && !c->msgs[k].status;
        if (c->marker_left == 0) {
            c->marker = k;
        }
    }
}

//  Drops the oldest loaded messages beyond CHAT_KEEP (the view is at the
//  bottom: they are fetched again if it goes back up).
void
conv_trim(conv_t *c)
{
    size_t keep = c->scroll > 0 ? 2 * CHAT_KEEP : CHAT_KEEP;
    if (c->n <= 2 * keep) {
        return;
    }
    size_t drop = c->n - keep;
    for (size_t i = 0; i < drop; i++) {
        conv_msg_free(&c->msgs[i]);
    }
    memmove(c->msgs, c->msgs + drop, keep * sizeof *c->msgs);
    c->n = keep;
    c->complete = false;
    c->marker = c->marker == SIZE_MAX || c->marker < drop ? SIZE_MAX : c->marker - drop;
    c->found = c->found == SIZE_MAX || c->found < drop ? SIZE_MAX : c->found - drop;
}

/* ---- self-test ---- */

#include "../../proto/selftest.h"

static json_t *
s_t_dm(const char *peer, bool outgoing, uint64_t ts, const char *state, const char *text)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:I, s:s, s:s, s:s}", "peer", peer, "peer_short",
                     "bobbbbbb", "envelope_id", "e1", "outgoing", outgoing, "ts_ms", (json_int_t)ts,
                     "state", state, "text", text, "msg_id", "m1");
}

void
conv_test(bool verbose)
{
    (void)verbose;
    chat_t *ch = calloc(1, sizeof *ch);
    CHECK(ch);
    chat_copy(ch->me, sizeof ch->me, "meeeeeeeXXXX");
    chat_copy(ch->me_short, sizeof ch->me_short, "meeeeeee");
    contact_t bob = { .id = "bobbbbbbXXXX", .name = "bob", .verified = true };
    ch->contacts = &bob;
    ch->n_contacts = 1;
    //  The list's order: "parley", channels, then DMs, each by name.
    CHECK(conv_add(ch, false, "", "parley"));
    CHECK(conv_add(ch, false, "bobbbbbbXXXX", "bob"));
    CHECK(conv_add(ch, true, "c2", "ops"));
    CHECK(conv_add(ch, true, "c1", "Dev"));
    CHECK(ch->n_convs == 4 && conv_add(ch, true, "c1", "dev") == ch->convs[1]);
    CHECK(strcmp(ch->convs[0]->name, "parley") == 0 && strcmp(ch->convs[1]->name, "dev") == 0);
    CHECK(strcmp(ch->convs[2]->name, "ops") == 0 && strcmp(ch->convs[3]->name, "bob") == 0);
    CHECK(conv_find(ch, false, "bobbbbbbXXXX") == ch->convs[3] && conv_home(ch) == ch->convs[0]);
    CHECK(conv_find(ch, true, "bobbbbbbXXXX") == NULL);
    //  A DM filled: peer text made safe, names from the contacts, mentions.
    conv_t *c = ch->convs[3];
    c->loaded = true;
    json_t *j = s_t_dm("bobbbbbbXXXX", false, 1000, "received", "hi \x1b[2J meeeeeee!");
    msg_t *m = conv_insert(c, 0);
    CHECK(m);
    conv_fill(ch, c, m, j);
    json_decref(j);
    CHECK(strcmp(m->text, "hi ^[[2J meeeeeee!") == 0 && strcmp(m->who, "bob") == 0);
    CHECK(m->mention && !m->outgoing && m->state[0] == '\0');
    //  Ours: the delivery after the text, raised in place.
    j = s_t_dm("bobbbbbbXXXX", true, 2000, "delivered", "mine");
    m = conv_insert(c, 1);
    CHECK(m);
    conv_fill(ch, c, m, j);
    json_decref(j);
    CHECK(strcmp(m->text, "mine  [delivered]") == 0 && m->text_len == 4 && !m->mention);
    CHECK(strcmp(m->who, "me") == 0);
    conv_msg_state(m, "read");
    CHECK(strcmp(m->text, "mine  [read]") == 0 && m->text_len == 4);
    char state[96];
    j = json_pack("{s:i, s:i, s:i}", "delivered", 3, "read", 1, "of", 4);
    conv_chan_state(j, state, sizeof state);
    CHECK(strcmp(state, "delivered 3/4, read 1/4") == 0);
    json_decref(j);
    //  Status lines are escaped too; rows count the day separator.
    CHECK(conv_say(c, "x\ty") && strcmp(c->msgs[2].text, "x^Iy") == 0);
    CHECK(conv_msg_rows(c, 0, 100) == 2 && conv_msg_rows(c, 1, 100) == 1);
    CHECK(conv_msg_rows(c, 1, 2) == 6); // "mine  [read]" in rows of 2 cells
    //  The read marker: above the oldest of 3 unread, found on an older page.
    conv_clear(c);
    for (size_t i = 0; i < 4; i++) {
        m = conv_insert(c, c->n);
        CHECK(m);
        m->outgoing = i == 2;
    }
    c->marker_left = 5;
    conv_place_marker(c, c->n); // 3 of theirs here
    CHECK(c->marker == SIZE_MAX && c->marker_left == 2);
    for (size_t i = 0; i < 3; i++) {
        m = conv_insert(c, 0); // an older page of 3
        CHECK(m);
    }
    conv_place_marker(c, 3);
    CHECK(c->marker == 1 && c->marker_left == 0);
    //  Bounded: back at the bottom, the newest CHAT_KEEP stay.
    conv_clear(c);
    for (size_t i = 0; i < 2 * CHAT_KEEP + 1; i++) {
        m = conv_insert(c, c->n);
        CHECK(m);
        m->ts_ms = i;
    }
    c->marker = 2 * CHAT_KEEP - 5;
    conv_trim(c);
    CHECK(c->n == CHAT_KEEP && c->msgs[0].ts_ms == CHAT_KEEP + 1 && !c->complete);
    CHECK(c->marker == CHAT_KEEP - 6);
    for (size_t i = 0; i < ch->n_convs; i++) {
        conv_free(ch->convs[i]);
    }
    free(ch->convs);
    free(ch);
}
