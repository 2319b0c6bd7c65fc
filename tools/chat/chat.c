/*  tools/chat/chat.c — `parley chat`, the terminal chat (ncurses, wide).
 *
 *  A client of the node's local API: one connection, subscribed, carries
 *  both the calls and the notifications (client_call_keep keeps the ones
 *  that come while a call waits). The screen:
 *
 *    title   #ops — the topic — 5 members            (or a DM: name, id, verified)
 *    list    | messages: day separators, HH:MM, sender in its colour, text,
 *            |           own messages with their delivery, a read marker
 *    status  network, peers online, sync, the last message's delivery, -MORE(n)-
 *    input   the line being typed (or the search)
 *
 *  Conversation 1 is "parley": the node's own events and what commands say.
 *  A conversation holds only the pages of its history that were looked at:
 *  the newest when opened, older ones fetched as the view scrolls or a
 *  search walks back, and trimmed again when the view is back at the
 *  bottom, so a 10,000-message conversation costs what the screen shows.
 *
 *  Every string from the node goes through text_safe before it is drawn
 *  (textsafe rules): no peer text can move the cursor, recolour, retitle or
 *  reorder the terminal. Names are escaped too.
 *
 *  If the node goes away the chat says so and reconnects every second; on
 *  reconnecting it loads the conversations again and says that too.
 */
#include "chat.h"

#include "../../node/client.h"
#include "../../proto/limits.h"
#include "text.h"
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <ncurses.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

extern char **environ;

#define S_PAGE 200u         /* messages fetched per history call */
#define S_KEEP 1000u        /* messages kept loaded once back at the bottom */
#define S_LIST_W 22         /* the conversation list's width */
#define S_NAME_W 12         /* the sender column */
#define S_HISTORY 100       /* input lines remembered */
#define S_STATUS_KEEP 2000u /* lines the "parley" conversation keeps */
#define S_RETRY_MS 1000u    /* reconnecting */
#define S_STATUS_MS 5000u   /* the status bar's figures, refreshed */
#define S_NOTIFY_CHARS 120u /* a desktop notification's text */
#define S_WORDS 8           /* /highlight words */

typedef struct {
    char *text;      /* safe (text_safe), with LFs */
    size_t text_len; /* bytes of text that are the message (then its state) */
    char *who;       /* safe display name ("" for a status line) */
    char who_id[64]; /* whose colour */
    uint64_t ts_ms;  /* when it was written */
    bool outgoing;   /* ours */
    bool status;     /* a line of the chat's own, not a message */
    bool mention;    /* names me */
    char key[100];   /* DM: envelope id; channel: cursor */
    char msg_id[40]; /* DM: msg id (history's cursor) */
    char state[96];  /* our message's delivery, as shown */
    char raw[64];    /* a queued channel message's text start, to match it when sent */
} msg_t;

typedef struct {
    bool channel;    /* else a DM (or the "parley" conversation: id "") */
    char id[64];     /* peer or channel id */
    char name[128];  /* raw: channel name, contact name or short id */
    char topic[512]; /* raw */
    int members;     /* channels */
    bool verified;   /* DMs: the contact is verified */
    bool reader;     /* channels: we may not post */
    uint64_t unread; /* not read yet */
    bool highlight;  /* an unread message names me */
    msg_t *msgs;     /* loaded, oldest first */
    size_t n, cap;
    bool loaded;          /* the newest page was fetched */
    bool complete;        /* nothing older to fetch */
    size_t marker;        /* first unread when opened (SIZE_MAX: none) */
    size_t scroll;        /* rows scrolled up from the bottom */
    size_t more;          /* messages arrived below while scrolled up */
    size_t found;         /* the search's hit (SIZE_MAX: none) */
    uint64_t ttl_s;       /* DMs: /ttl */
    uint64_t marker_left; /* unread messages older than those loaded: the marker
                         goes above the last of them once its page comes */
} conv_t;

typedef struct {
    char id[64];
    char name[128];
    bool verified;
} contact_t;

typedef struct {
    const char *home;
    client_t *api;     /* NULL while the node is away */
    json_t *notes;     /* notifications read during calls */
    uint64_t retry_at; /* reconnect then */
    bool was_connected;
    char me[64], me_short[16], me_name[128];
    char net_name[128], net_role[16];
    char words[S_WORDS][64]; /* /highlight: more words that name me */
    size_t n_words;
    conv_t **convs;
    size_t n_convs, cap_convs;
    size_t cur;
    contact_t *contacts;
    size_t n_contacts;
    line_t line;
    char *hist[S_HISTORY];
    size_t n_hist, hist_at;
    bool searching;
    line_t query;
    int comp_at; /* completion cycling (-1: none) */
    char comp_prefix[128];
    bool bell, notify, mouse;
    int colours; /* 0, 8 (or 16) or 256 */
    int peers_online;
    char sync[24];
    uint64_t status_at;
    bool refresh_receipts; /* the open channel's counts changed */
    bool read_due;         /* the open conversation has news we see */
    bool quit;
    int rows, cols;
} chat_t;

static uint64_t
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
s_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *
s_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static uint64_t
s_int(const json_t *o, const char *k)
{
    json_int_t v = json_integer_value(json_object_get(o, k));
    return v > 0 ? (uint64_t)v : 0;
}

//  src, cut to what fits in cap (at a character boundary).
static void
s_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (src && src[n] != '\0') {
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* ------------------------------------------------------ conversations */

static void
s_msg_free(msg_t *m)
{
    free(m->text);
    free(m->who);
    m->text = m->who = NULL;
}

static void
s_conv_clear(conv_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        s_msg_free(&c->msgs[i]);
    }
    c->n = 0;
    c->loaded = c->complete = false;
    c->marker = c->found = SIZE_MAX;
    c->scroll = c->more = 0;
}

static void
s_conv_free(conv_t *c)
{
    s_conv_clear(c);
    free(c->msgs);
    free(c);
}

static conv_t *
s_conv_find(chat_t *ch, bool channel, const char *id)
{
    for (size_t i = 0; i < ch->n_convs; i++) {
        if (ch->convs[i]->channel == channel && strcmp(ch->convs[i]->id, id) == 0) {
            return ch->convs[i];
        }
    }
    return NULL;
}

static size_t
s_conv_index(const chat_t *ch, const conv_t *c)
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

static void
s_conv_sort(chat_t *ch)
{
    conv_t *cur = ch->n_convs ? ch->convs[ch->cur] : NULL;
    qsort(ch->convs, ch->n_convs, sizeof *ch->convs, s_conv_cmp);
    ch->cur = cur ? s_conv_index(ch, cur) : 0;
}

static conv_t *
s_conv_add(chat_t *ch, bool channel, const char *id, const char *name)
{
    conv_t *c = s_conv_find(ch, channel, id);
    if (c) {
        s_copy(c->name, sizeof c->name, name);
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
    s_copy(c->id, sizeof c->id, id);
    s_copy(c->name, sizeof c->name, name);
    c->marker = c->found = SIZE_MAX;
    ch->convs[ch->n_convs++] = c;
    s_conv_sort(ch);
    return c;
}

static const contact_t *
s_contact(const chat_t *ch, const char *id)
{
    for (size_t i = 0; i < ch->n_contacts; i++) {
        if (strcmp(ch->contacts[i].id, id) == 0) {
            return &ch->contacts[i];
        }
    }
    return NULL;
}

//  A person's name as shown: their contact name, else their short id.
static void
s_name_of(const chat_t *ch, const char *id, const char *fallback, char *out, size_t cap)
{
    if (strcmp(id, ch->me) == 0) {
        s_copy(out, cap, ch->me_name[0] ? ch->me_name : "me");
        return;
    }
    const contact_t *ct = s_contact(ch, id);
    snprintf(out, cap, "%.*s", (int)(cap - 1),
             ct                      ? ct->name
             : fallback && *fallback ? fallback
                                     : id);
    if (!ct && strlen(out) > 8) {
        out[8] = '\0';
    }
}

//  Room for one more message at index at (0: the oldest end).
static msg_t *
s_msg_insert(conv_t *c, size_t at)
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

//  Sets m's shown text: the message, then (ours) its state.
static void
s_msg_text(msg_t *m, const char *text)
{
    char *safe = text_safe(text, strlen(text));
    free(m->text);
    m->text = NULL;
    if (!safe) {
        return;
    }
    m->text_len = strlen(safe);
    if (!m->state[0]) {
        m->text = safe;
        return;
    }
    size_t cap = m->text_len + strlen(m->state) + 8;
    m->text = malloc(cap);
    if (m->text) {
        snprintf(m->text, cap, "%s  [%s]", safe, m->state);
    }
    free(safe);
}

//  Re-renders m's state suffix after a delivery change.
static void
s_msg_state(msg_t *m, const char *state)
{
    if (!m->text || strcmp(m->state, state) == 0) {
        return;
    }
    char *body = strndup(m->text, m->text_len);
    if (!body) {
        return;
    }
    s_copy(m->state, sizeof m->state, state);
    size_t cap = m->text_len + strlen(m->state) + 8;
    char *text = malloc(cap);
    if (text) {
        snprintf(text, cap, "%s  [%s]", body, m->state);
        free(m->text);
        m->text = text;
    }
    free(body);
}

//  A channel message's state: "queued", or "delivered 2/3, read 1/3".
static void
s_chan_state(const json_t *j, char *out, size_t cap)
{
    if (strcmp(s_str(j, "state"), "queued") == 0) {
        s_copy(out, cap, "queued");
    } else if (json_object_get(j, "of")) {
        uint64_t of = s_int(j, "of");
        snprintf(out, cap, "delivered %llu/%llu, read %llu/%llu",
                 (unsigned long long)s_int(j, "delivered"), (unsigned long long)of,
                 (unsigned long long)s_int(j, "read"), (unsigned long long)of);
    } else {
        out[0] = '\0';
    }
}

//  Whether text names me: my name in the network, my short id, or a word
//  of /highlight.
static bool
s_names_me(const chat_t *ch, const char *text)
{
    bool hit = (ch->me_name[0] && text_contains(text, ch->me_name))
               || (ch->me_short[0] && text_contains(text, ch->me_short));
    for (size_t i = 0; i < ch->n_words && !hit; i++) {
        hit = text_contains(text, ch->words[i]);
    }
    return hit;
}

//  Fills m from a message of the API (DM or channel).
static void
s_msg_fill(chat_t *ch, conv_t *c, msg_t *m, const json_t *j)
{
    m->outgoing = json_is_true(json_object_get(j, "outgoing"));
    m->ts_ms = s_int(j, "ts_ms");
    char name[128];
    if (c->channel) {
        const char *from = s_str(j, "from");
        s_copy(m->who_id, sizeof m->who_id, from);
        s_name_of(ch, from, s_str(j, "from_short"), name, sizeof name);
        s_copy(m->key, sizeof m->key, s_str(j, "cursor"));
        if (m->outgoing) {
            s_chan_state(j, m->state, sizeof m->state);
            snprintf(m->raw, sizeof m->raw, "%s", s_str(j, "text"));
        }
    } else {
        s_copy(m->who_id, sizeof m->who_id, m->outgoing ? ch->me : s_str(j, "peer"));
        s_name_of(ch, m->who_id, s_str(j, "peer_short"), name, sizeof name);
        s_copy(m->key, sizeof m->key, s_str(j, "envelope_id"));
        s_copy(m->msg_id, sizeof m->msg_id, s_str(j, "msg_id"));
        if (m->outgoing) {
            s_copy(m->state, sizeof m->state, s_str(j, "state"));
        }
    }
    free(m->who);
    m->who = text_safe(name, strlen(name));
    const char *text = s_str(j, "text");
    m->mention = !m->outgoing && s_names_me(ch, text);
    s_msg_text(m, text);
}

static msg_t *s_status_msg(conv_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

//  A line of the chat's own at the end of c ("peer went offline").
static msg_t *
s_status_msg(conv_t *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (c->id[0] == '\0' && c->n >= S_STATUS_KEEP) {
        s_msg_free(&c->msgs[0]);
        memmove(c->msgs, c->msgs + 1, (c->n - 1) * sizeof *c->msgs);
        c->n--;
    }
    msg_t *m = s_msg_insert(c, c->n);
    if (!m) {
        return NULL;
    }
    m->status = true;
    m->ts_ms = s_wall();
    m->who = strdup("");
    s_msg_text(m, buf);
    if (c->scroll > 0) {
        c->more++;
    }
    return m;
}

static conv_t *
s_cur(chat_t *ch)
{
    return ch->convs[ch->cur];
}

static conv_t *
s_home_conv(chat_t *ch)
{
    return s_conv_find(ch, false, "");
}

/* ---------------------------------------------------------------- API */

static void s_went_away(chat_t *ch);

//  One call; notifications read meanwhile wait in ch->notes. On a failure
//  *err (may be NULL) says why, as the node put it.
static int
s_call(chat_t *ch, const char *method, json_t *params, json_t **result, char **err)
{
    *result = NULL;
    if (err) {
        *err = NULL;
    }
    if (!ch->api) {
        json_decref(params);
        if (err) {
            *err = strdup("the node is away: reconnecting");
        }
        return PARLEY_ERR_IO;
    }
    char *why = NULL;
    int rc = client_call_keep(ch->api, method, params, result, &why, ch->notes);
    if (rc == PARLEY_ERR_IO || rc == PARLEY_ERR_LIMIT || (rc == PARLEY_ERR_MALFORMED && !why)) {
        s_went_away(ch);
    }
    if (err) {
        *err = why ? why : rc != PARLEY_OK ? strdup(parley_strerror(rc)) : NULL;
    } else {
        free(why);
    }
    return rc;
}

//  A call whose failure is told in the open conversation.
static json_t *
s_do(chat_t *ch, const char *method, json_t *params)
{
    json_t *res = NULL;
    char *err = NULL;
    if (s_call(ch, method, params, &res, &err) != PARLEY_OK) {
        char *safe = text_safe(err ? err : "failed", strlen(err ? err : "failed"));
        s_status_msg(s_cur(ch), "%s: %s", method, safe ? safe : "failed");
        free(safe);
        free(err);
        return NULL;
    }
    free(err);
    return res;
}

static void
s_load_contacts(chat_t *ch)
{
    json_t *res = NULL;
    if (s_call(ch, "contacts.list", NULL, &res, NULL) != PARLEY_OK) {
        return;
    }
    free(ch->contacts);
    ch->n_contacts = 0;
    ch->contacts = calloc(json_array_size(res) + 1, sizeof *ch->contacts);
    size_t i;
    json_t *ct;
    json_array_foreach(res, i, ct)
    {
        if (ch->contacts) {
            contact_t *k = &ch->contacts[ch->n_contacts++];
            s_copy(k->id, sizeof k->id, s_str(ct, "id"));
            s_copy(k->name, sizeof k->name, s_str(ct, "name"));
            k->verified = json_is_true(json_object_get(ct, "verified"));
        }
    }
    json_decref(res);
}

//  A DM conversation with peer (id), named as the contacts say.
static conv_t *
s_dm(chat_t *ch, const char *id, const char *short_id)
{
    char name[128];
    s_name_of(ch, id, short_id, name, sizeof name);
    conv_t *c = s_conv_add(ch, false, id, name);
    const contact_t *ct = s_contact(ch, id);
    if (c) {
        c->verified = ct && ct->verified;
    }
    return c;
}

static void
s_chan_fill(chat_t *ch, const json_t *j)
{
    const char *state = s_str(j, "state");
    conv_t *c = s_conv_find(ch, true, s_str(j, "channel"));
    if (strcmp(state, "member") != 0 && strcmp(state, "") != 0) {
        if (c && !c->n && !c->loaded) {
            return; // gone, and never looked at: not listed
        }
    }
    const char *name = s_str(j, "name");
    c = s_conv_add(ch, true, s_str(j, "channel"), *name ? name : s_str(j, "channel"));
    if (!c) {
        return;
    }
    s_copy(c->topic, sizeof c->topic, s_str(j, "topic"));
    c->members = (int)s_int(j, "members");
    c->reader = strcmp(s_str(j, "role"), "reader") == 0;
    if (!(c == s_cur(ch))) {
        c->unread = s_int(j, "unread");
    }
}

static void
s_load_channels(chat_t *ch)
{
    json_t *res = NULL;
    if (s_call(ch, "channel.list", NULL, &res, NULL) == PARLEY_OK) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(res, "channels"), i, c)
        {
            s_chan_fill(ch, c);
        }
    }
    json_decref(res);
}

//  Everything the screen lists: who we are, contacts, channels, DMs.
static void
s_load_all(chat_t *ch)
{
    json_t *res = NULL;
    if (s_call(ch, "id", NULL, &res, NULL) == PARLEY_OK) {
        s_copy(ch->me, sizeof ch->me, s_str(res, "id"));
        s_copy(ch->me_short, sizeof ch->me_short, s_str(res, "short_id"));
    }
    json_decref(res);
    res = NULL;
    ch->net_name[0] = ch->net_role[0] = '\0';
    if (s_call(ch, "network.show", NULL, &res, NULL) == PARLEY_OK
        && strcmp(s_str(res, "mode"), "network") == 0) {
        s_copy(ch->net_name, sizeof ch->net_name, s_str(res, "name"));
        s_copy(ch->net_role, sizeof ch->net_role, s_str(res, "role"));
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(res, "members"), i, m)
        {
            if (strcmp(s_str(m, "id"), ch->me) == 0) {
                s_copy(ch->me_name, sizeof ch->me_name, s_str(m, "name"));
            }
        }
    }
    json_decref(res);
    s_load_contacts(ch);
    s_load_channels(ch);
    res = NULL;
    if (s_call(ch, "conversations", NULL, &res, NULL) == PARLEY_OK) {
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(res, "conversations"), i, d)
        {
            conv_t *c = s_dm(ch, s_str(d, "peer"), s_str(d, "peer_short"));
            if (c && c != s_cur(ch)) {
                c->unread = s_int(d, "unread");
            }
        }
    }
    json_decref(res);
    for (size_t i = 0; i < ch->n_contacts; i++) {
        (void)s_dm(ch, ch->contacts[i].id, NULL);
    }
}

//  Counts the unread messages among c's first n loaded (newest first) down
//  from marker_left, and puts the marker above the oldest unread one once
//  it is among them.
static void
s_place_marker(conv_t *c, size_t n)
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

//  One page of c's history before its oldest loaded message (or the
//  newest), put in front. Returns how many came.
static size_t
s_fetch(chat_t *ch, conv_t *c)
{
    if (c->id[0] == '\0' || (c->loaded && c->complete)) {
        return 0;
    }
    json_t *params = c->channel
                         ? json_pack("{s:s, s:I}", "channel", c->id, "limit", (json_int_t)S_PAGE)
                         : json_pack("{s:s, s:I}", "peer", c->id, "limit", (json_int_t)S_PAGE);
    //  The oldest loaded message of the log (not a line of ours).
    size_t first = 0;
    while (first < c->n && c->msgs[first].status) {
        first++;
    }
    if (c->loaded && first < c->n) {
        json_object_set_new(params, "before",
                            json_string(c->channel ? c->msgs[first].key : c->msgs[first].msg_id));
    }
    json_t *res = NULL;
    if (s_call(ch, c->channel ? "channel.history" : "history", params, &res, NULL) != PARLEY_OK) {
        return 0;
    }
    json_t *page = c->channel ? json_object_get(res, "messages") : res;
    size_t got = json_array_size(page);
    size_t kept = 0;
    for (size_t i = 0; i < got; i++) {
        json_t *j = json_array_get(page, i);
        if (c->channel && strcmp(s_str(j, "state"), "queued") == 0 && c->loaded) {
            continue; // the queued come with the newest page only
        }
        msg_t *m = s_msg_insert(c, kept);
        if (!m) {
            break;
        }
        s_msg_fill(ch, c, m, j);
        kept++;
    }
    c->marker = c->marker == SIZE_MAX ? SIZE_MAX : c->marker + kept;
    c->found = c->found == SIZE_MAX ? SIZE_MAX : c->found + kept;
    if (c->loaded) {
        s_place_marker(c, kept); // an older page: the marker may be in it
    }
    if (!c->loaded) {
        c->complete = false;
    }
    c->complete = got < S_PAGE;
    c->loaded = true;
    json_decref(res);
    return kept;
}

//  Drops the oldest loaded messages beyond S_KEEP (the view is at the
//  bottom: they are fetched again if it goes back up).
static void
s_trim(conv_t *c)
{
    if (c->id[0] == '\0' || c->n <= 2 * S_KEEP || c->scroll > 0) {
        return;
    }
    size_t drop = c->n - S_KEEP;
    for (size_t i = 0; i < drop; i++) {
        s_msg_free(&c->msgs[i]);
    }
    memmove(c->msgs, c->msgs + drop, S_KEEP * sizeof *c->msgs);
    c->n = S_KEEP;
    c->complete = false;
    c->marker = c->marker == SIZE_MAX || c->marker < drop ? SIZE_MAX : c->marker - drop;
    c->found = c->found == SIZE_MAX || c->found < drop ? SIZE_MAX : c->found - drop;
}

//  Tells the node c is read (the peer or the members see it).
static void
s_mark_read(chat_t *ch, conv_t *c)
{
    if (c->id[0] == '\0') {
        return;
    }
    json_t *res = NULL;
    (void)s_call(ch, c->channel ? "channel.read" : "read",
                 c->channel ? json_pack("{s:s}", "channel", c->id)
                            : json_pack("{s:s}", "peer", c->id),
                 &res, NULL);
    json_decref(res);
    c->unread = 0;
    c->highlight = false;
}

static void
s_open(chat_t *ch, size_t i)
{
    if (i >= ch->n_convs) {
        return;
    }
    ch->cur = i;
    ch->searching = false;
    conv_t *c = ch->convs[i];
    uint64_t unread = c->unread;
    if (!c->loaded) {
        (void)s_fetch(ch, c);
    }
    //  The read marker: above the first message not read when we came.
    c->marker = SIZE_MAX;
    c->marker_left = unread;
    s_place_marker(c, c->n);
    c->scroll = 0;
    c->more = 0;
    c->found = SIZE_MAX;
    //  Marked read after the screen shows it (the next turn of the loop).
    ch->read_due = unread > 0 || c->highlight;
}

/* -------------------------------------------------------- notifications */

static void
s_notify_desktop(chat_t *ch, const char *title, const char *body)
{
    if (!ch->notify) {
        return;
    }
    char *t = text_safe(title, strlen(title));
    char *b = text_safe(body, strlen(body));
    if (t && b) {
        b[text_fit(b, strlen(b), S_NOTIFY_CHARS)] = '\0';
        char *argv[] = { "notify-send", "-a", "parley", "--", t, b, NULL };
        pid_t pid;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        if (posix_spawnp(&pid, "notify-send", &fa, NULL, argv, environ) != 0) {
            ch->notify = false; // none here: stop trying
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    free(t);
    free(b);
}

//  A message came to c: shown, counted and rung as where it is asks.
static void
s_arrived(chat_t *ch, conv_t *c, msg_t *m)
{
    bool open = c == s_cur(ch);
    if (open && c->scroll > 0) {
        c->more++;
    }
    if (m->outgoing || m->status) {
        return;
    }
    if (open && c->scroll == 0) {
        ch->read_due = true;
        return;
    }
    c->unread++;
    c->highlight = c->highlight || m->mention;
    if (ch->bell && !open) {
        beep();
    }
    if (!open) {
        char title[160];
        snprintf(title, sizeof title, "%s%s", c->channel ? "#" : "", c->name);
        s_notify_desktop(ch, title, m->text ? m->text : "");
    }
}

//  An incoming or outgoing message c does not have yet (by key).
static msg_t *
s_append(chat_t *ch, conv_t *c, const json_t *j)
{
    const char *key = c->channel ? s_str(j, "cursor") : s_str(j, "envelope_id");
    if (*key) {
        for (size_t k = c->n; k > 0 && k + 64 > c->n; k--) {
            if (strcmp(c->msgs[k - 1].key, key) == 0) {
                return NULL;
            }
        }
    }
    if (c->channel && json_is_true(json_object_get(j, "outgoing"))) {
        //  A queued message of ours that went out: it takes the queued one's place.
        for (size_t k = 0; k < c->n; k++) {
            msg_t *q = &c->msgs[k];
            if (strcmp(q->state, "queued") == 0 && strncmp(q->raw, s_str(j, "text"), 63) == 0) {
                s_msg_free(q);
                memmove(q, q + 1, (c->n - k - 1) * sizeof *q);
                c->n--;
                break;
            }
        }
    }
    if (!c->loaded) {
        return NULL; // fetched with the rest when opened
    }
    msg_t *m = s_msg_insert(c, c->n);
    if (m) {
        s_msg_fill(ch, c, m, j);
    }
    return m;
}

static void
s_on_note(chat_t *ch, const json_t *note)
{
    const char *method = s_str(note, "method");
    const json_t *p = json_object_get(note, "params");
    conv_t *home = s_home_conv(ch);
    if (strcmp(method, "message") == 0) {
        conv_t *c = s_dm(ch, s_str(p, "peer"), s_str(p, "peer_short"));
        if (!c) {
            return;
        }
        msg_t *m = s_append(ch, c, p);
        if (m) {
            s_arrived(ch, c, m);
        } else if (!json_is_true(json_object_get(p, "outgoing")) && !c->loaded) {
            c->unread++;
            if (ch->bell && c != s_cur(ch)) {
                beep();
            }
        }
    } else if (strcmp(method, "delivery") == 0) {
        conv_t *c = s_conv_find(ch, false, s_str(p, "peer"));
        for (size_t k = c ? c->n : 0; k > 0; k--) {
            if (strcmp(c->msgs[k - 1].key, s_str(p, "envelope_id")) == 0) {
                s_msg_state(&c->msgs[k - 1], s_str(p, "state"));
                break;
            }
        }
    } else if (strcmp(method, "channel.message") == 0) {
        conv_t *c = s_conv_find(ch, true, s_str(p, "channel"));
        if (!c) {
            c = s_conv_add(ch, true, s_str(p, "channel"), s_str(p, "name"));
        }
        msg_t *m = c ? s_append(ch, c, p) : NULL;
        if (m) {
            s_arrived(ch, c, m);
        } else if (c && !c->loaded && !json_is_true(json_object_get(p, "outgoing"))) {
            c->unread++;
        }
    } else if (strcmp(method, "channel.receipt") == 0) {
        if (s_cur(ch)->channel && strcmp(s_cur(ch)->id, s_str(p, "channel")) == 0) {
            ch->refresh_receipts = true;
        }
    } else if (strcmp(method, "channel.update") == 0) {
        s_load_channels(ch);
        conv_t *c = s_conv_find(ch, true, s_str(p, "channel"));
        char *name = text_safe(s_str(p, "name"), strlen(s_str(p, "name")));
        if (c && *s_str(p, "state")) {
            s_status_msg(c, "-- you %s #%s",
                         strcmp(s_str(p, "state"), "joined") == 0 ? "joined" : "left",
                         name ? name : "");
        } else if (c) {
            char *topic = text_safe(s_str(p, "topic"), strlen(s_str(p, "topic")));
            s_status_msg(c, "-- the topic is now: %s", topic ? topic : "");
            free(topic);
        }
        free(name);
    } else if (strcmp(method, "channel.member") == 0) {
        conv_t *c = s_conv_find(ch, true, s_str(p, "channel"));
        if (c) {
            char who[128];
            s_name_of(ch, s_str(p, "member"), s_str(p, "member_short"), who, sizeof who);
            char *safe = text_safe(who, strlen(who));
            if (strcmp(s_str(p, "role"), "gone") == 0) {
                s_status_msg(c, "<-- %s is out of the channel", safe ? safe : "?");
                c->members = c->members > 0 ? c->members - 1 : 0;
            } else {
                s_status_msg(c, "--> %s is in the channel, as %s", safe ? safe : "?",
                             strcmp(s_str(p, "role"), "admin") == 0    ? "admin"
                             : strcmp(s_str(p, "role"), "reader") == 0 ? "reader"
                             : strcmp(s_str(p, "role"), "owner") == 0  ? "owner"
                                                                       : "member");
            }
            free(safe);
        }
    } else if (strcmp(method, "peer") == 0) {
        bool online = strcmp(s_str(p, "state"), "online") == 0;
        ch->peers_online += online ? 1 : ch->peers_online > 0 ? -1 : 0;
        conv_t *c = s_conv_find(ch, false, s_str(p, "id"));
        char who[128];
        s_name_of(ch, s_str(p, "id"), s_str(p, "short_id"), who, sizeof who);
        char *safe = text_safe(who, strlen(who));
        if (c && c->loaded) {
            s_status_msg(c, "%s %s is %s", online ? "-->" : "<--", safe ? safe : "?",
                         online ? "online" : "offline");
        }
        if (home) {
            s_status_msg(home, "%s %s is %s", online ? "-->" : "<--", safe ? safe : "?",
                         online ? "online" : "offline");
        }
        free(safe);
    } else if (strcmp(method, "network") == 0 && home) {
        char *type = text_safe(s_str(p, "type"), strlen(s_str(p, "type")));
        s_status_msg(home, "network: %s%s", type ? type : "?",
                     json_is_false(json_object_get(p, "applied")) ? " (void)" : "");
        free(type);
    } else if (strcmp(method, "warning") == 0 && home) {
        char *kind = text_safe(s_str(p, "kind"), strlen(s_str(p, "kind")));
        char *who = text_safe(s_str(p, "contact"), strlen(s_str(p, "contact")));
        s_status_msg(home, "WARNING %s %s", kind ? kind : "", who ? who : "");
        free(kind);
        free(who);
    }
}

//  Handles the notifications waiting in ch->notes (handling may call, and
//  calls may queue more).
static void
s_drain_notes(chat_t *ch)
{
    while (json_array_size(ch->notes) > 0) {
        json_t *note = json_incref(json_array_get(ch->notes, 0));
        json_array_remove(ch->notes, 0);
        s_on_note(ch, note);
        json_decref(note);
    }
}

//  The open channel's delivered/read counts, fetched again.
static void
s_refresh_receipts(chat_t *ch)
{
    conv_t *c = s_cur(ch);
    ch->refresh_receipts = false;
    if (!c->channel || !c->loaded) {
        return;
    }
    json_t *res = NULL;
    if (s_call(ch, "channel.history", json_pack("{s:s, s:I}", "channel", c->id, "limit", 100), &res,
               NULL)
        != PARLEY_OK) {
        return;
    }
    size_t i;
    json_t *j;
    json_array_foreach(json_object_get(res, "messages"), i, j)
    {
        if (!json_is_true(json_object_get(j, "outgoing"))) {
            continue;
        }
        for (size_t k = c->n; k > 0; k--) {
            if (strcmp(c->msgs[k - 1].key, s_str(j, "cursor")) == 0) {
                char state[96];
                s_chan_state(j, state, sizeof state);
                s_msg_state(&c->msgs[k - 1], state);
                break;
            }
        }
    }
    json_decref(res);
}

static void
s_status_refresh(chat_t *ch)
{
    json_t *res = NULL;
    ch->status_at = s_now();
    if (s_call(ch, "status", NULL, &res, NULL) != PARLEY_OK) {
        return;
    }
    ch->peers_online = (int)s_int(json_object_get(res, "peers"), "online");
    json_t *sync = json_object_get(res, "sync");
    uint64_t started = s_int(sync, "rounds_started"), ended = s_int(sync, "rounds_ended");
    s_copy(ch->sync, sizeof ch->sync, started > ended ? "syncing" : "in sync");
    json_decref(res);
}

/* ---------------------------------------------------------- connection */

static void
s_went_away(chat_t *ch)
{
    if (!ch->api) {
        return;
    }
    client_destroy(&ch->api);
    ch->retry_at = s_now() + S_RETRY_MS;
    conv_t *home = s_home_conv(ch);
    s_status_msg(home, "!! the node went away: reconnecting");
    if (s_cur(ch) != home) {
        s_status_msg(s_cur(ch), "!! the node went away: reconnecting");
    }
}

//  Connects and subscribes; loads everything on success.
static int
s_connect(chat_t *ch)
{
    client_t *api = NULL;
    int rc = client_connect(ch->home, &api);
    if (rc != PARLEY_OK) {
        return rc;
    }
    ch->api = api;
    json_t *res = NULL;
    rc = s_call(ch, "subscribe", NULL, &res, NULL);
    json_decref(res);
    if (rc != PARLEY_OK) {
        client_destroy(&ch->api);
        return rc;
    }
    conv_t *cur = ch->n_convs ? s_cur(ch) : NULL;
    s_load_all(ch);
    for (size_t i = 0; i < ch->n_convs; i++) {
        conv_t *c = ch->convs[i];
        if (c->id[0] && c->loaded) {
            //  Fetched afresh: what came while we were away is in it.
            for (size_t k = 0; k < c->n;) {
                if (c->msgs[k].status) {
                    k++;
                    continue;
                }
                s_msg_free(&c->msgs[k]);
                memmove(&c->msgs[k], &c->msgs[k + 1], (c->n - k - 1) * sizeof c->msgs[k]);
                c->n--;
            }
            c->loaded = c->complete = false;
            c->marker = c->found = SIZE_MAX;
            c->scroll = 0;
        }
    }
    if (cur && cur->id[0] && !cur->loaded) {
        (void)s_fetch(ch, cur);
    }
    s_status_refresh(ch);
    return PARLEY_OK;
}

/* ------------------------------------------------------------- drawing */

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

static void
s_colours(chat_t *ch)
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

static bool
s_same_day(uint64_t a, uint64_t b)
{
    time_t ta = (time_t)(a / 1000), tb = (time_t)(b / 1000);
    struct tm x, y;
    localtime_r(&ta, &x);
    localtime_r(&tb, &y);
    return x.tm_year == y.tm_year && x.tm_yday == y.tm_yday;
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

//  Rows message i of c takes at width w: a day separator, the read marker,
//  the wrapped text.
static size_t
s_msg_rows(const conv_t *c, size_t i, size_t w)
{
    const msg_t *m = &c->msgs[i];
    size_t rows = text_wrap(m->text ? m->text : "", m->text ? strlen(m->text) : 0, w, NULL, NULL);
    if (rows > 512) {
        rows = 512;
    }
    rows += i == 0 || !s_same_day(c->msgs[i - 1].ts_ms, m->ts_ms);
    rows += c->marker == i;
    return rows;
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
    size_t tw = w > (size_t)(6 + S_NAME_W + 3) ? w - (6 + S_NAME_W + 3) : 1;
    int y = top;
    size_t r = 0;
    if (i == 0 || !s_same_day(c->msgs[i - 1].ts_ms, m->ts_ms)) {
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
            size_t pad = ww < S_NAME_W ? S_NAME_W - ww : 0;
            unsigned np = s_n_palette(ch);
            attr_t a = m->status ? s_pair(ch, P_DIM, A_DIM)
                       : np      ? COLOR_PAIR(P_FIRST + (int)text_colour(m->who_id, np)) | A_BOLD
                                 : A_BOLD;
            attron(a);
            s_put(y, x0 + 6 + (int)pad, who, strlen(who), S_NAME_W);
            attroff(a);
        }
        mvaddstr(y, x0 + 6 + S_NAME_W, " \u2502 ");
        attr_t a = m->status       ? s_pair(ch, P_DIM, A_DIM)
                   : c->found == i ? A_REVERSE
                   : m->mention    ? s_pair(ch, P_LIST_HOT, A_BOLD) | A_BOLD
                                   : A_NORMAL;
        size_t start = rows->starts[k], len = rows->lens[k];
        size_t body =
            start < m->text_len ? (start + len <= m->text_len ? len : m->text_len - start) : 0;
        attron(a);
        s_put(y, x0 + 6 + S_NAME_W + 3, text + start, body, tw);
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
    conv_t *c = s_cur(ch);
    size_t tw = w > (size_t)(6 + S_NAME_W + 3) ? w - (6 + S_NAME_W + 3) : 1;
    size_t height = (size_t)(bottom - top);
    //  Walk up from the newest until scroll + height rows are covered,
    //  fetching older pages as the walk needs them.
    size_t need = c->scroll + height, have = 0;
    size_t i = c->n;
    while (have < need) {
        if (i == 0) {
            size_t got = c->complete ? 0 : s_fetch(ch, c);
            if (got == 0) {
                break;
            }
            i += got;
        }
        i--;
        have += s_msg_rows(c, i, tw);
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
        size_t rows = s_msg_rows(c, k, tw);
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
        mvhline(y, 0, ' ', S_LIST_W - 1);
        s_put(y, 0, label, strlen(label), (size_t)S_LIST_W - 1 - cw);
        mvaddstr(y, S_LIST_W - 1 - (int)cw, count);
        attroff(a);
    }
    for (int y = top; y < bottom; y++) {
        mvaddstr(y, S_LIST_W - 1, "\u2502");
    }
}

static void
s_draw_bars(chat_t *ch)
{
    conv_t *c = s_cur(ch);
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
        char sid[9];
        snprintf(sid, sizeof sid, "%.8s", c->id);
        snprintf(title, sizeof title, "%s (%s) — %s%s%llu%s", c->name, sid,
                 c->verified ? "verified" : "not verified (/verify)",
                 c->ttl_s ? " — messages disappear after " : "", (unsigned long long)c->ttl_s,
                 c->ttl_s ? " s" : "");
        if (!c->ttl_s) {
            //  No ttl: drop the "0" the format wrote.
            char *z = strrchr(title, '0');
            if (z && z[1] == '\0') {
                *z = '\0';
            }
        }
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
    char *net = text_safe(ch->net_name, strlen(ch->net_name));
    snprintf(status, sizeof status, "[%s%s%s] [%d peer%s online] [%s]%s%s%s%s",
             ch->net_name[0] ? "network " : "open mode", net ? net : "",
             ch->net_role[0] && ch->net_name[0] ? "" : "", ch->peers_online,
             ch->peers_online == 1 ? "" : "s", ch->api ? ch->sync : "node away",
             *last ? " [last: " : "", last, *last ? "]" : "", ch->bell ? "" : " [bell off]");
    free(net);
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
    if (!ch->searching && s_cur(ch)->channel) {
        prompt = "";
    }
    char pbuf[160];
    if (!ch->searching && s_cur(ch)->id[0]) {
        char *name = text_safe(s_cur(ch)->name, strlen(s_cur(ch)->name));
        snprintf(pbuf, sizeof pbuf, "[%s%.40s] ", s_cur(ch)->channel ? "#" : "", name ? name : "");
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

static void
s_draw(chat_t *ch)
{
    getmaxyx(stdscr, ch->rows, ch->cols);
    erase();
    if (LINES < 5 || COLS < S_LIST_W + 20) {
        mvaddstr(0, 0, "parley: the terminal is too small");
        refresh();
        return;
    }
    s_draw_bars(ch);
    s_draw_list(ch, 1, LINES - 2);
    s_draw_msgs(ch, 1, LINES - 2, S_LIST_W + 1, (size_t)(COLS - S_LIST_W - 1));
    s_draw_input(ch);
    refresh();
}

/* ------------------------------------------------------------ commands */

static const char *const s_commands[] = {
    "/msg",      "/join",    "/create", "/leave",   "/topic",   "/members",   "/add",
    "/remove",   "/role",    "/rekey",  "/invite",  "/invites", "/revoke",    "/verify",
    "/contacts", "/contact", "/ttl",    "/network", "/member",  "/relay",     "/bell",
    "/notify",   "/mouse",   "/close",  "/help",    "/quit",    "/highlight",
};

static void
s_help(chat_t *ch)
{
    static const char *const lines[] = {
        "Conversations: Alt-1..9 Alt-0 by place, Alt-a the next with unread messages,",
        "  Ctrl-n / Ctrl-p next and previous, or click one (/mouse on).",
        "Scrolling: PageUp / PageDown (the wheel with /mouse on); Ctrl-r searches this",
        "  conversation (Enter or Ctrl-r: the next older match, Esc: back).",
        "Typing: Tab completes names, #channels and /commands; Up/Down recall lines;",
        "  Ctrl-w deletes a word, Ctrl-u the line; Ctrl-l redraws.",
        "/msg PEER [TEXT]          talk to PEER (a contact name, an id or a short id)",
        "/join #NAME               open a channel you are in; /create NAME [TOPIC] makes one",
        "/leave                    leave this channel; /close hides this DM until it speaks",
        "/topic [TEXT]             show or set the topic; /members lists who is in it",
        "/add PEER.. /remove PEER /role PEER admin|member|reader /rekey   (channel admins)",
        "/invite [member|admin] [DUR] [USES]   an invite code; /invites lists, /revoke ID",
        "/verify PEER [yes]        the safety number to compare; yes marks PEER verified",
        "/contacts                 your contacts; /contact add ID NAME | remove NAME",
        "/ttl SECONDS              this DM's new messages disappear after that (0: never)",
        "/network show|create NAME|leave  /member remove PEER|role PEER admin|member",
        "/relay add|remove PEER    (network admins)",
        "/highlight WORD..         also highlight messages with these words (none: reset)",
        "/bell on|off  /notify on|off  /mouse on|off  /help  /quit",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        s_status_msg(s_cur(ch), "%s", lines[i]);
    }
}

//  Word k of the line (words split on spaces; *rest: what follows it).
static bool
s_word(const char *line, int k, char *out, size_t cap, const char **rest)
{
    const char *p = line;
    for (int i = 0;; i++) {
        while (*p == ' ') {
            p++;
        }
        if (!*p) {
            return false;
        }
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (i == k) {
            snprintf(out, cap, "%.*s", (int)n, p);
            if (rest) {
                const char *r = p + n;
                while (*r == ' ') {
                    r++;
                }
                *rest = r;
            }
            return true;
        }
        p += n;
    }
}

//  The id of PEER as the node resolves it (contact name, id, short id).
static bool
s_resolve(chat_t *ch, const char *peer, char *id, size_t cap, char *short_id, size_t scap)
{
    json_t *res = s_do(ch, "safety", json_pack("{s:s}", "peer", peer));
    if (!res) {
        return false;
    }
    s_copy(id, cap, s_str(res, "peer"));
    snprintf(short_id, scap, "%.8s", id);
    json_decref(res);
    return true;
}

static void
s_say_result(chat_t *ch, const char *what, json_t *res)
{
    if (res) {
        s_status_msg(s_cur(ch), "%s", what);
    }
    json_decref(res);
}

static void
s_send(chat_t *ch, conv_t *c, const char *text)
{
    if (c->id[0] == '\0') {
        s_status_msg(c, "this is the node's own conversation: /msg PEER or /join #NAME to talk");
        return;
    }
    json_t *res = NULL;
    if (c->channel) {
        res = s_do(ch, "channel.send", json_pack("{s:s, s:s}", "channel", c->id, "text", text));
    } else {
        json_t *params = json_pack("{s:s, s:s}", "peer", c->id, "text", text);
        if (c->ttl_s) {
            json_object_set_new(params, "ttl_ms", json_integer((json_int_t)(c->ttl_s * 1000)));
        }
        res = s_do(ch, "send", params);
    }
    if (!res) {
        return;
    }
    if (!c->loaded) {
        (void)s_fetch(ch, c);
    } else {
        (void)s_append(ch, c, res);
    }
    c->scroll = 0;
    c->more = 0;
    json_decref(res);
}

static void
s_cmd_members(chat_t *ch, conv_t *c)
{
    json_t *info = s_do(ch, "channel.info", json_pack("{s:s}", "channel", c->id));
    if (!info) {
        return;
    }
    size_t i;
    json_t *m;
    s_status_msg(c, "%zu members:", json_array_size(json_object_get(info, "member_list")));
    json_array_foreach(json_object_get(info, "member_list"), i, m)
    {
        char who[128];
        s_name_of(ch, s_str(m, "id"), s_str(m, "short_id"), who, sizeof who);
        char *safe = text_safe(who, strlen(who));
        s_status_msg(c, "  %-16s %s (%s)", safe ? safe : "?", s_str(m, "role"),
                     s_str(m, "short_id"));
        free(safe);
    }
    json_decref(info);
}

static void
s_cmd_verify(chat_t *ch, const char *peer, const char *yes)
{
    json_t *res = s_do(ch, "safety", json_pack("{s:s}", "peer", peer));
    if (!res) {
        return;
    }
    const char *d = s_str(res, "safety_number");
    conv_t *c = s_cur(ch);
    char who[128];
    s_name_of(ch, s_str(res, "peer"), NULL, who, sizeof who);
    char *safe = text_safe(who, strlen(who));
    if (strcmp(yes, "yes") == 0) {
        json_t *v = s_do(ch, "contacts.verify", json_pack("{s:s}", "peer", peer));
        if (v) {
            s_status_msg(c, "%s is verified now", safe ? safe : "?");
            s_load_contacts(ch);
            conv_t *dm = s_conv_find(ch, false, s_str(res, "peer"));
            if (dm) {
                dm->verified = true;
            }
        }
        json_decref(v);
    } else if (strlen(d) == 60) {
        //  Side by side, as both screens show it: compare every group.
        s_status_msg(c, "safety number of you and %s%s:", safe ? safe : "?",
                     json_is_true(json_object_get(res, "verified")) ? " (verified)" : "");
        for (int r = 0; r < 3; r++) {
            s_status_msg(c, "    %.5s %.5s %.5s %.5s", d + r * 20, d + r * 20 + 5, d + r * 20 + 10,
                         d + r * 20 + 15);
        }
        s_status_msg(c, "the same on %s's screen? then /verify %s yes", safe ? safe : "?", peer);
    }
    free(safe);
    json_decref(res);
}

static void
s_cmd_invite(chat_t *ch, const char *rest)
{
    char role[16] = "member", dur[16] = "", uses[16] = "";
    char w[64];
    for (int k = 0; s_word(rest, k, w, sizeof w, NULL); k++) {
        if (strcmp(w, "admin") == 0 || strcmp(w, "member") == 0) {
            s_copy(role, sizeof role, w);
        } else if (strchr("0123456789", w[0]) && strpbrk(w, "smhd")) {
            s_copy(dur, sizeof dur, w);
        } else {
            s_copy(uses, sizeof uses, w);
        }
    }
    json_t *params = json_pack("{s:s}", "role", role);
    if (dur[0]) {
        uint64_t n = strtoull(dur, NULL, 10);
        char u = dur[strlen(dur) - 1];
        uint64_t mult = u == 's' ? 1 : u == 'm' ? 60 : u == 'h' ? 3600 : 86400;
        json_object_set_new(params, "expires_ms", json_integer((json_int_t)(n * mult * 1000)));
    }
    if (uses[0]) {
        json_object_set_new(params, "uses", json_integer(strtoll(uses, NULL, 10)));
    }
    json_t *res = s_do(ch, "invite.create", params);
    if (res) {
        s_status_msg(s_cur(ch), "invite (%s, a bearer token: give it privately):", role);
        s_status_msg(s_cur(ch), "  %s", s_str(res, "code"));
    }
    json_decref(res);
}

static void
s_cmd_network(chat_t *ch, const char *rest)
{
    char sub[32], arg[128];
    const char *more = "";
    conv_t *c = s_cur(ch);
    if (!s_word(rest, 0, sub, sizeof sub, &more) || strcmp(sub, "show") == 0) {
        json_t *res = s_do(ch, "network.show", NULL);
        if (res && strcmp(s_str(res, "mode"), "network") == 0) {
            char *name = text_safe(s_str(res, "name"), strlen(s_str(res, "name")));
            s_status_msg(c, "network %s: you are %s; %zu members", name ? name : "?",
                         s_str(res, "role"), json_array_size(json_object_get(res, "members")));
            free(name);
            size_t i;
            json_t *m;
            json_array_foreach(json_object_get(res, "members"), i, m)
            {
                char *n = text_safe(s_str(m, "name"), strlen(s_str(m, "name")));
                s_status_msg(c, "  %-16s %s%s (%s)", n ? n : "", s_str(m, "role"),
                             json_is_true(json_object_get(m, "relay")) ? ", relay" : "",
                             s_str(m, "short_id"));
                free(n);
            }
        } else if (res) {
            s_status_msg(c, "open mode: no private network (/network create NAME)");
        }
        json_decref(res);
    } else if (strcmp(sub, "create") == 0 && s_word(more, 0, arg, sizeof arg, NULL)) {
        s_say_result(ch, "network created: you are its first admin",
                     s_do(ch, "network.create", json_pack("{s:s}", "name", arg)));
        s_load_all(ch);
    } else if (strcmp(sub, "leave") == 0) {
        s_say_result(ch, "you left the network", s_do(ch, "network.leave", NULL));
        s_load_all(ch);
    } else {
        s_status_msg(c, "usage: /network show | create NAME | leave");
    }
}

static void
s_cmd_member(chat_t *ch, const char *rest)
{
    char sub[32], peer[128], role[32];
    const char *more = "";
    conv_t *c = s_cur(ch);
    if (s_word(rest, 0, sub, sizeof sub, &more) && s_word(more, 0, peer, sizeof peer, NULL)) {
        if (strcmp(sub, "remove") == 0) {
            s_say_result(ch, "removed from the network",
                         s_do(ch, "member.remove", json_pack("{s:s}", "peer", peer)));
            return;
        }
        if (strcmp(sub, "role") == 0 && s_word(more, 1, role, sizeof role, NULL)) {
            s_say_result(
                ch, "role set",
                s_do(ch, "member.role", json_pack("{s:s, s:s}", "peer", peer, "role", role)));
            return;
        }
    }
    s_status_msg(c, "usage: /member remove PEER | role PEER admin|member");
}

static void
s_toggle(chat_t *ch, bool *flag, const char *what, const char *rest)
{
    char w[8];
    if (s_word(rest, 0, w, sizeof w, NULL)) {
        *flag = strcmp(w, "on") == 0;
    }
    s_status_msg(s_cur(ch), "%s is %s", what, *flag ? "on" : "off");
}

static void
s_command(chat_t *ch, const char *line)
{
    char cmd[32], a[160], b[160];
    const char *rest = "";
    conv_t *c = s_cur(ch);
    if (!s_word(line, 0, cmd, sizeof cmd, &rest)) {
        return;
    }
    const char *rest2 = "";
    bool has_a = s_word(rest, 0, a, sizeof a, &rest2);
    if (strcmp(cmd, "/quit") == 0 || strcmp(cmd, "/exit") == 0) {
        ch->quit = true;
    } else if (strcmp(cmd, "/help") == 0) {
        s_help(ch);
    } else if (strcmp(cmd, "/msg") == 0 || strcmp(cmd, "/query") == 0) {
        char id[64], sid[16];
        if (!has_a) {
            s_status_msg(c, "usage: /msg PEER [TEXT]");
        } else if (a[0] == '#') {
            s_status_msg(c, "for a channel: /join %s", a);
        } else if (s_resolve(ch, a, id, sizeof id, sid, sizeof sid)) {
            conv_t *dm = s_dm(ch, id, sid);
            if (dm) {
                s_open(ch, s_conv_index(ch, dm));
                if (*rest2) {
                    s_send(ch, dm, rest2);
                }
            }
        }
    } else if (strcmp(cmd, "/join") == 0) {
        const char *name = has_a && a[0] == '#' ? a + 1 : a;
        json_t *info = has_a ? s_do(ch, "channel.info", json_pack("{s:s}", "channel", name)) : NULL;
        if (!has_a) {
            s_status_msg(c, "usage: /join #NAME");
        }
        if (info) {
            s_chan_fill(ch, info);
            conv_t *cc = s_conv_find(ch, true, s_str(info, "channel"));
            if (cc) {
                s_open(ch, s_conv_index(ch, cc));
            }
        }
        json_decref(info);
    } else if (strcmp(cmd, "/create") == 0) {
        const char *name = has_a && a[0] == '#' ? a + 1 : a;
        json_t *params = json_pack("{s:s}", "name", name);
        if (*rest2) {
            json_object_set_new(params, "topic", json_string(rest2));
        }
        json_t *res = has_a ? s_do(ch, "channel.create", params) : (json_decref(params), NULL);
        if (!has_a) {
            s_status_msg(c, "usage: /create NAME [TOPIC]");
        }
        if (res) {
            conv_t *cc = s_conv_add(ch, true, s_str(res, "channel"), name);
            if (cc) {
                s_copy(cc->topic, sizeof cc->topic, rest2);
                cc->members = 1;
                s_open(ch, s_conv_index(ch, cc));
            }
        }
        json_decref(res);
    } else if (strcmp(cmd, "/close") == 0 && !c->channel && c->id[0]) {
        size_t at = ch->cur;
        s_conv_free(c);
        memmove(&ch->convs[at], &ch->convs[at + 1], (ch->n_convs - at - 1) * sizeof *ch->convs);
        ch->n_convs--;
        ch->cur = 0;
        return;
    } else if (strcmp(cmd, "/contacts") == 0) {
        s_load_contacts(ch);
        s_status_msg(c, "%zu contacts:", ch->n_contacts);
        for (size_t i = 0; i < ch->n_contacts; i++) {
            char *n = text_safe(ch->contacts[i].name, strlen(ch->contacts[i].name));
            s_status_msg(c, "  %-16s %.8s %s", n ? n : "?", ch->contacts[i].id,
                         ch->contacts[i].verified ? "verified" : "not verified");
            free(n);
        }
    } else if (strcmp(cmd, "/contact") == 0) {
        if (strcmp(a, "add") == 0 && s_word(rest2, 0, a, sizeof a, NULL)
            && s_word(rest2, 1, b, sizeof b, NULL)) {
            s_say_result(ch, "contact added",
                         s_do(ch, "contacts.add", json_pack("{s:s, s:s}", "id", a, "name", b)));
            s_load_all(ch);
        } else if (strcmp(a, "remove") == 0 && s_word(rest2, 0, b, sizeof b, NULL)) {
            s_say_result(ch, "contact removed",
                         s_do(ch, "contacts.remove", json_pack("{s:s}", "name", b)));
            s_load_contacts(ch);
        } else {
            s_status_msg(c, "usage: /contact add ID NAME | remove NAME");
        }
    } else if (strcmp(cmd, "/verify") == 0) {
        if (has_a || (!c->channel && c->id[0])) {
            char yes[8] = "";
            (void)s_word(rest2, 0, yes, sizeof yes, NULL);
            if (strcmp(a, "yes") == 0 && !c->channel && c->id[0]) {
                s_cmd_verify(ch, c->id, "yes");
            } else {
                s_cmd_verify(ch, has_a ? a : c->id, yes);
            }
        } else {
            s_status_msg(c, "usage: /verify PEER [yes]");
        }
    } else if (strcmp(cmd, "/ttl") == 0) {
        if (c->channel || !c->id[0]) {
            s_status_msg(c, "/ttl is for direct conversations");
        } else if (has_a) {
            c->ttl_s = strtoull(a, NULL, 10);
            s_status_msg(c,
                         c->ttl_s ? "new messages here disappear %llu s after they are sent"
                                  : "new messages here stay%.0llu",
                         (unsigned long long)c->ttl_s);
        } else {
            s_status_msg(c, "usage: /ttl SECONDS (0: never)");
        }
    } else if (strcmp(cmd, "/network") == 0) {
        s_cmd_network(ch, rest);
    } else if (strcmp(cmd, "/member") == 0) {
        s_cmd_member(ch, rest);
    } else if (strcmp(cmd, "/relay") == 0) {
        if (has_a && s_word(rest2, 0, b, sizeof b, NULL)
            && (strcmp(a, "add") == 0 || strcmp(a, "remove") == 0)) {
            s_say_result(ch, strcmp(a, "add") == 0 ? "relay added" : "relay removed",
                         s_do(ch, "relay.set",
                              json_pack("{s:s, s:b}", "peer", b, "relay", strcmp(a, "add") == 0)));
        } else {
            s_status_msg(c, "usage: /relay add|remove PEER");
        }
    } else if (strcmp(cmd, "/invite") == 0) {
        s_cmd_invite(ch, rest);
    } else if (strcmp(cmd, "/invites") == 0) {
        json_t *res = s_do(ch, "invite.list", NULL);
        size_t i;
        json_t *inv;
        json_array_foreach(json_object_get(res, "invites"), i, inv)
        {
            char *label = text_safe(s_str(inv, "name"), strlen(s_str(inv, "name")));
            s_status_msg(c, "  %.16s %s %s %s", s_str(inv, "id"), s_str(inv, "role"),
                         s_str(inv, "state"), label ? label : "");
            free(label);
        }
        json_decref(res);
    } else if (strcmp(cmd, "/revoke") == 0 && has_a) {
        s_say_result(ch, "invite revoked", s_do(ch, "invite.revoke", json_pack("{s:s}", "id", a)));
    } else if (strcmp(cmd, "/highlight") == 0) {
        ch->n_words = 0;
        for (int k = 0; ch->n_words < S_WORDS && s_word(rest, k, a, sizeof a, NULL); k++) {
            s_copy(ch->words[ch->n_words++], sizeof ch->words[0], a);
        }
        char *w = text_safe(rest, strlen(rest));
        s_status_msg(c,
                     ch->n_words ? "messages naming %s are highlighted"
                                 : "only your name and id are highlighted%s",
                     w ? w : "");
        free(w);
    } else if (strcmp(cmd, "/bell") == 0) {
        s_toggle(ch, &ch->bell, "the bell", rest);
    } else if (strcmp(cmd, "/notify") == 0) {
        s_toggle(ch, &ch->notify, "desktop notification", rest);
    } else if (strcmp(cmd, "/mouse") == 0) {
        s_toggle(ch, &ch->mouse, "the mouse", rest);
        mousemask(ch->mouse ? BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED
                            : 0,
                  NULL);
    } else if (!c->channel) {
        s_status_msg(c, "%s: unknown here (/help lists the commands)", cmd);
    } else if (strcmp(cmd, "/leave") == 0) {
        s_say_result(ch, "you left the channel",
                     s_do(ch, "channel.leave", json_pack("{s:s}", "channel", c->id)));
    } else if (strcmp(cmd, "/topic") == 0) {
        if (*rest) {
            s_say_result(ch, "topic set",
                         s_do(ch, "channel.topic",
                              json_pack("{s:s, s:s}", "channel", c->id, "topic", rest)));
        } else {
            char *t = text_safe(c->topic, strlen(c->topic));
            s_status_msg(c, "topic: %s", t && *t ? t : "(none)");
            free(t);
        }
    } else if (strcmp(cmd, "/members") == 0 || strcmp(cmd, "/names") == 0) {
        s_cmd_members(ch, c);
    } else if (strcmp(cmd, "/add") == 0 && has_a) {
        for (int k = 0; s_word(rest, k, a, sizeof a, NULL); k++) {
            s_say_result(
                ch, "added",
                s_do(ch, "channel.add", json_pack("{s:s, s:s}", "channel", c->id, "peer", a)));
        }
    } else if (strcmp(cmd, "/remove") == 0 && has_a) {
        s_say_result(
            ch, "removed: the others get a new key",
            s_do(ch, "channel.remove", json_pack("{s:s, s:s}", "channel", c->id, "peer", a)));
    } else if (strcmp(cmd, "/role") == 0 && has_a && s_word(rest2, 0, b, sizeof b, NULL)) {
        s_say_result(ch, "role set",
                     s_do(ch, "channel.role",
                          json_pack("{s:s, s:s, s:s}", "channel", c->id, "peer", a, "role", b)));
    } else if (strcmp(cmd, "/rekey") == 0) {
        s_say_result(ch, "new key sent",
                     s_do(ch, "channel.rekey", json_pack("{s:s}", "channel", c->id)));
    } else {
        s_status_msg(c, "%s: unknown, or missing what it needs (/help)", cmd);
    }
    if (c->channel && ch->api) {
        s_load_channels(ch); // members, topic, role as the command left them
    }
}

static void
s_submit(chat_t *ch)
{
    line_t *l = &ch->line;
    if (l->len == 0) {
        return;
    }
    if (!ch->api && !(l->buf[0] == '/' && l->buf[1] != '/')) {
        //  Kept in the line: it is sent once the node is back and Enter
        //  is pressed again.
        s_status_msg(s_cur(ch), "the node is away: your line waits; Enter again once reconnected");
        return;
    }
    if (ch->n_hist == S_HISTORY) {
        free(ch->hist[0]);
        memmove(ch->hist, ch->hist + 1, (S_HISTORY - 1) * sizeof ch->hist[0]);
        ch->n_hist--;
    }
    ch->hist[ch->n_hist] = strdup(l->buf);
    ch->n_hist += ch->hist[ch->n_hist] != NULL;
    ch->hist_at = ch->n_hist;
    char *text = strdup(l->buf);
    line_clear(l);
    if (!text) {
        return;
    }
    if (text[0] == '/' && text[1] != '/') {
        s_command(ch, text);
    } else {
        s_send(ch, s_cur(ch), text[0] == '/' ? text + 1 : text);
    }
    free(text);
}

/* ------------------------------------------------------------ keyboard */

static void
s_scroll(chat_t *ch, long rows)
{
    conv_t *c = s_cur(ch);
    if (rows < 0 && (size_t)-rows >= c->scroll) {
        c->scroll = 0;
        c->more = 0;
        if (c->unread || ch->read_due) {
            ch->read_due = true;
        }
        s_trim(c);
    } else if (rows < 0) {
        c->scroll -= (size_t)-rows;
    } else {
        c->scroll += (size_t)rows;
    }
}

//  Ctrl-r: the next match older than the last one, fetching back as far
//  as the conversation goes.
static void
s_search(chat_t *ch)
{
    conv_t *c = s_cur(ch);
    if (ch->query.len == 0) {
        return;
    }
    size_t from = c->found == SIZE_MAX ? c->n : c->found;
    for (;;) {
        for (size_t k = from; k > 0; k--) {
            msg_t *m = &c->msgs[k - 1];
            if (!m->status && m->text && text_contains(m->text, ch->query.buf)) {
                c->found = k - 1;
                //  Bring it to the bottom of the view.
                size_t tw = (size_t)(COLS - S_LIST_W - 1) > (size_t)(6 + S_NAME_W + 3)
                                ? (size_t)(COLS - S_LIST_W - 1) - (6 + S_NAME_W + 3)
                                : 1;
                size_t rows = 0;
                for (size_t j = k; j < c->n; j++) {
                    rows += s_msg_rows(c, j, tw);
                }
                c->scroll = rows;
                return;
            }
        }
        size_t got = s_fetch(ch, c);
        if (got == 0) {
            s_status_msg(c, "search: no older message holds that");
            c->scroll = 0;
            return;
        }
        from = got;
    }
}

static void
s_complete(chat_t *ch)
{
    line_t *l = &ch->line;
    size_t start = line_word(l);
    if (ch->comp_at < 0) {
        snprintf(ch->comp_prefix, sizeof ch->comp_prefix, "%.*s", (int)(l->cur - start),
                 l->buf + start);
    }
    const char *prefix = ch->comp_prefix;
    //  The candidates: commands, channels, or names (contacts, the open
    //  conversation's senders).
    size_t cap = ch->n_convs + ch->n_contacts + 64 + sizeof s_commands / sizeof s_commands[0];
    char **cands = calloc(cap, sizeof *cands);
    size_t n = 0;
    if (!cands) {
        return;
    }
    if (prefix[0] == '/' && start == 0) {
        for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++) {
            cands[n++] = strdup(s_commands[i]);
        }
    } else if (prefix[0] == '#') {
        for (size_t i = 0; i < ch->n_convs; i++) {
            if (ch->convs[i]->channel) {
                size_t len = strlen(ch->convs[i]->name) + 2;
                cands[n] = malloc(len);
                if (cands[n]) {
                    snprintf(cands[n++], len, "#%s", ch->convs[i]->name);
                }
            }
        }
    } else {
        for (size_t i = 0; i < ch->n_contacts; i++) {
            cands[n++] = strdup(ch->contacts[i].name);
        }
        conv_t *c = s_cur(ch);
        for (size_t k = c->n; k > 0 && n < cap; k--) {
            const msg_t *m = &c->msgs[k - 1];
            if (m->status || m->outgoing || !m->who) {
                continue;
            }
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++) {
                dup = cands[j] && strcmp(cands[j], m->who) == 0;
            }
            if (!dup) {
                cands[n++] = strdup(m->who);
            }
        }
    }
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        if (cands[i]) {
            cands[live++] = cands[i];
        }
    }
    int at = text_complete(prefix, (const char *const *)cands, live, ch->comp_at);
    if (at >= 0) {
        ch->comp_at = at;
        char word[200];
        snprintf(word, sizeof word, "%s%s", cands[at],
                 start == 0 && prefix[0] != '/' && prefix[0] != '#' ? ": " : " ");
        //  The word before the cursor is the previous completion and its space.
        while (l->cur > start) {
            line_backspace(l);
        }
        (void)line_insert(l, word, strlen(word));
    }
    for (size_t i = 0; i < live; i++) {
        free(cands[i]);
    }
    free(cands);
}

static void
s_next_unread(chat_t *ch)
{
    for (size_t k = 1; k <= ch->n_convs; k++) {
        size_t i = (ch->cur + k) % ch->n_convs;
        if (ch->convs[i]->highlight) {
            s_open(ch, i);
            return;
        }
    }
    for (size_t k = 1; k <= ch->n_convs; k++) {
        size_t i = (ch->cur + k) % ch->n_convs;
        if (ch->convs[i]->unread) {
            s_open(ch, i);
            return;
        }
    }
}

static void
s_mouse(chat_t *ch)
{
    MEVENT ev;
    if (getmouse(&ev) != OK) {
        return;
    }
    if (ev.bstate & BUTTON4_PRESSED) {
        s_scroll(ch, 3);
    } else if (ev.bstate & BUTTON5_PRESSED) {
        s_scroll(ch, -3);
    } else if ((ev.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED)) && ev.x < S_LIST_W && ev.y >= 1
               && ev.y < LINES - 2) {
        size_t h = (size_t)(LINES - 3);
        size_t first = ch->cur >= h ? ch->cur - h + 1 : 0;
        s_open(ch, first + (size_t)(ev.y - 1));
    }
}

static void
s_key(chat_t *ch, int kind, wint_t k)
{
    line_t *l = ch->searching ? &ch->query : &ch->line;
    if (!(kind == OK && k == '\t')) {
        ch->comp_at = -1;
    }
    if (kind == KEY_CODE_YES) {
        switch (k) {
        case KEY_RESIZE: break;
        case KEY_LEFT: line_left(l); break;
        case KEY_RIGHT: line_right(l); break;
        case KEY_HOME: line_home(l); break;
        case KEY_END: line_end(l); break;
        case KEY_BACKSPACE: line_backspace(l); break;
        case KEY_DC: line_delete(l); break;
        case KEY_PPAGE: s_scroll(ch, LINES - 5); break;
        case KEY_NPAGE: s_scroll(ch, -(LINES - 5)); break;
        case KEY_ENTER:
            if (ch->searching) {
                s_search(ch);
            } else {
                s_submit(ch);
            }
            break;
        case KEY_UP:
            if (!ch->searching && ch->hist_at > 0) {
                line_set(&ch->line, ch->hist[--ch->hist_at]);
            }
            break;
        case KEY_DOWN:
            if (!ch->searching && ch->hist_at < ch->n_hist) {
                ch->hist_at++;
                line_set(&ch->line, ch->hist_at < ch->n_hist ? ch->hist[ch->hist_at] : "");
            }
            break;
        case KEY_MOUSE: s_mouse(ch); break;
        default: break;
        }
        return;
    }
    switch (k) {
    case '\r':
    case '\n':
        if (ch->searching) {
            s_search(ch);
        } else {
            s_submit(ch);
        }
        return;
    case 127:
    case 8: line_backspace(l); return;
    case 1: line_home(l); return;                                           // Ctrl-a
    case 5: line_end(l); return;                                            // Ctrl-e
    case 23: line_kill_word(l); return;                                     // Ctrl-w
    case 21: line_kill_start(l); return;                                    // Ctrl-u
    case 12: clearok(curscr, TRUE); return;                                 // Ctrl-l
    case 14: s_open(ch, (ch->cur + 1) % ch->n_convs); return;               // Ctrl-n
    case 16: s_open(ch, (ch->cur + ch->n_convs - 1) % ch->n_convs); return; // Ctrl-p
    case 18:                                                                // Ctrl-r
        if (!ch->searching) {
            ch->searching = true;
            line_clear(&ch->query);
            s_cur(ch)->found = SIZE_MAX;
        } else {
            s_search(ch);
        }
        return;
    case 7: // Ctrl-g: as Esc in a search
        if (ch->searching) {
            ch->searching = false;
            s_cur(ch)->found = SIZE_MAX;
            s_scroll(ch, -(long)s_cur(ch)->scroll);
        }
        return;
    case '\t':
        if (!ch->searching) {
            s_complete(ch);
        }
        return;
    default: break;
    }
    if (k < 0x20 || k == 0x7f || (k >= 0x80 && k < 0xa0)) {
        return; // other controls: not typed into the line
    }
    (void)line_insert_cp(l, (uint32_t)k);
    if (ch->searching) {
        s_cur(ch)->found = SIZE_MAX;
    }
}

//  ESC then a key: Alt-1..9, Alt-0, Alt-a; a lone ESC leaves a search.
static void
s_alt(chat_t *ch, int kind, wint_t k)
{
    if (kind == OK && k >= '1' && k <= '9') {
        s_open(ch, (size_t)(k - '1'));
    } else if (kind == OK && k == '0') {
        s_open(ch, 9);
    } else if (kind == OK && (k == 'a' || k == 'A')) {
        s_next_unread(ch);
    } else if (kind == OK && (k == 'n' || k == 'p')) {
        s_key(ch, OK, k == 'n' ? 14 : 16);
    }
}

static void
s_input(chat_t *ch)
{
    for (;;) {
        wint_t k = 0;
        int kind = get_wch(&k);
        if (kind == ERR) {
            return;
        }
        if (kind == OK && k == 27) {
            wint_t k2 = 0;
            int kind2 = get_wch(&k2);
            if (kind2 == ERR) {
                if (ch->searching) {
                    ch->searching = false;
                    s_cur(ch)->found = SIZE_MAX;
                    s_scroll(ch, -(long)s_cur(ch)->scroll);
                }
                return;
            }
            s_alt(ch, kind2, k2);
            continue;
        }
        s_key(ch, kind, k);
    }
}

/* ---------------------------------------------------------------- main */

static void
s_usage(FILE *out)
{
    fprintf(out, "usage: parley chat [--no-bell] [--notify] [--mouse]\n"
                 "  the terminal chat of the running node; /help inside lists the keys\n");
}

static void
s_reap(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int
chat_run(const char *home, int argc, char **argv)
{
    chat_t *ch = calloc(1, sizeof *ch);
    if (!ch) {
        return 1;
    }
    ch->home = home;
    ch->bell = true;
    ch->comp_at = -1;
    const char *display = getenv("DISPLAY"), *wayland = getenv("WAYLAND_DISPLAY");
    ch->notify = (display && *display) || (wayland && *wayland);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--no-bell") == 0) {
            ch->bell = false;
        } else if (strcmp(argv[i], "--notify") == 0) {
            ch->notify = true;
        } else if (strcmp(argv[i], "--no-notify") == 0) {
            ch->notify = false;
        } else if (strcmp(argv[i], "--mouse") == 0) {
            ch->mouse = true;
        } else {
            s_usage(stderr);
            free(ch);
            return 2;
        }
    }
    ch->notes = json_array();
    if (!s_conv_add(ch, false, "", "parley") || !ch->notes) {
        free(ch);
        return 1;
    }
    int rc = client_connect(home, &ch->api);
    if (rc == PARLEY_ERR_NOTFOUND) {
        fprintf(stderr,
                "parley: no parleyd is running for %s: start it with 'parleyd --home %s'"
                " (or use make run)\n",
                home, home);
        json_decref(ch->notes);
        s_conv_free(ch->convs[0]);
        free(ch->convs);
        free(ch);
        return 3;
    }
    client_destroy(&ch->api);
    //  Wide characters need the terminal's locale; without a UTF-8 one,
    //  C.UTF-8 is what every glibc has.
    setlocale(LC_ALL, "");
    if (strcasestr(setlocale(LC_CTYPE, NULL), "utf") == NULL) {
        (void)setlocale(LC_CTYPE, "C.UTF-8");
    }
    set_escdelay(25);
    if (!initscr()) {
        return 1;
    }
    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    s_colours(ch);
    if (ch->mouse) {
        mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
    }
    conv_t *home_c = s_home_conv(ch);
    if (s_connect(ch) == PARLEY_OK) {
        ch->was_connected = true;
        s_status_msg(home_c, "connected to your node %s; /help lists the commands and keys",
                     ch->me_short);
        s_status_msg(home_c, "your id: %s", ch->me);
        s_status_msg(home_c,
                     "give it to the people you talk to; /contact add ID NAME names theirs");
    } else {
        ch->retry_at = s_now() + S_RETRY_MS;
        s_status_msg(home_c, "!! cannot reach the node: retrying");
    }
    while (!ch->quit) {
        s_drain_notes(ch);
        if (ch->refresh_receipts) {
            s_refresh_receipts(ch);
        }
        s_drain_notes(ch);
        s_draw(ch);
        //  After the screen shows them: the peer's "read" means seen.
        if (ch->read_due && s_cur(ch)->scroll == 0) {
            ch->read_due = false;
            s_mark_read(ch, s_cur(ch));
        }
        struct pollfd p[2] = { { 0, POLLIN, 0 }, { ch->api ? client_fd(ch->api) : -1, POLLIN, 0 } };
        int timeout = ch->api && client_buffered(ch->api) ? 0 : 250;
        (void)poll(p, 2, timeout);
        s_input(ch);
        if (ch->api
            && (client_buffered(ch->api) || (p[1].revents & (POLLIN | POLLHUP | POLLERR)))) {
            for (;;) {
                json_t *note = NULL;
                int r = client_recv(ch->api, 0, &note);
                if (r == PARLEY_ERR_STATE) {
                    break;
                }
                if (r != PARLEY_OK) {
                    s_went_away(ch);
                    break;
                }
                if (json_object_get(note, "method")) {
                    json_array_append(ch->notes, note);
                }
                json_decref(note);
            }
        }
        uint64_t now = s_now();
        if (!ch->api && now >= ch->retry_at) {
            ch->retry_at = now + S_RETRY_MS;
            if (s_connect(ch) == PARLEY_OK) {
                s_status_msg(home_c, "reconnected to your node");
                if (s_cur(ch) != home_c) {
                    s_status_msg(s_cur(ch), "reconnected to your node");
                }
            }
        } else if (ch->api && now - ch->status_at >= S_STATUS_MS) {
            s_status_refresh(ch);
        }
        s_reap();
    }
    endwin();
    client_destroy(&ch->api);
    for (size_t i = 0; i < ch->n_convs; i++) {
        s_conv_free(ch->convs[i]);
    }
    free(ch->convs);
    free(ch->contacts);
    for (size_t i = 0; i < ch->n_hist; i++) {
        free(ch->hist[i]);
    }
    json_decref(ch->notes);
    free(ch);
    return 0;
}
