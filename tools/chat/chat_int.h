/*  tools/chat/chat_int.h — what the parts of the terminal chat share:
 *
 *    chat.c  the loop, the node's API (calls, loading, notifications,
 *            reconnecting) and chat_run
 *    conv.c  conversations and their loaded messages (no terminal, no API)
 *    view.c  drawing the screen (ncurses)
 *    cmd.c   keys, commands, completion and search
 *
 *  One chat_t holds everything; it is used from one thread.
 */
#ifndef PARLEY_TOOLS_CHAT_CHAT_INT_H
#define PARLEY_TOOLS_CHAT_CHAT_INT_H

#include "../../node/client.h"
#include "text.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#define CHAT_PAGE 200u   /* messages fetched per history call */
#define CHAT_KEEP 1000u  /* messages kept loaded once back at the bottom */
#define CHAT_LIST_W 22   /* the conversation list's width */
#define CHAT_NAME_W 12   /* the sender column */
#define CHAT_HISTORY 100 /* input lines remembered */

#define CHAT_RETRY_MS 1000u    /* reconnecting */
#define CHAT_STATUS_MS 5000u   /* the status bar's figures, refreshed */
#define CHAT_NOTIFY_CHARS 120u /* a desktop notification's text */
#define CHAT_ALERT_MS 1000u    /* at most one bell and notification this often */
#define CHAT_WORDS 8           /* /highlight words */

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
    char me[64], me_short[16], me_name[128];
    char net_name[128], net_role[16];
    char words[CHAT_WORDS][64]; /* /highlight: more words that name me */
    size_t n_words;
    conv_t **convs;
    size_t n_convs, cap_convs;
    size_t cur;
    contact_t *contacts;
    size_t n_contacts;
    line_t line;
    char *hist[CHAT_HISTORY];
    size_t n_hist, hist_at;
    bool searching;
    line_t query;
    int comp_at; /* completion cycling (-1: none) */
    char comp_prefix[128];
    bool bell, notify, mouse;
    uint64_t alert_at; /* no bell or notification before then */
    pid_t notify_pid;  /* the last notify-send (0: none) */
    int colours;       /* 0, 8 (or 16) or 256 */
    int peers_online;
    char sync[24];
    uint64_t status_at;
    bool refresh_receipts; /* the open channel's counts changed */
    bool read_due;         /* the open conversation has news we see */
    bool quit;
    int rows, cols;
} chat_t;

/* ---- small helpers ---- */

static inline uint64_t
chat_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline uint64_t
chat_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline const char *
chat_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static inline uint64_t
chat_int(const json_t *o, const char *k)
{
    json_int_t v = json_integer_value(json_object_get(o, k));
    return v > 0 ? (uint64_t)v : 0;
}

//  src, cut to what fits in cap (at a character boundary).
static inline void
chat_copy(char *dst, size_t cap, const char *src)
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

/* ---- conv.c: conversations and their messages ---- */

void conv_msg_free(msg_t *m);
/*  Drops every loaded message: the conversation is fetched afresh. */
void conv_clear(conv_t *c);
void conv_free(conv_t *c);
conv_t *conv_find(chat_t *ch, bool channel, const char *id);
size_t conv_index(const chat_t *ch, const conv_t *c);
/*  The list's order: "parley", the channels, the DMs, each by name. */
void conv_sort(chat_t *ch);
/*  The conversation (found, or added in its place; NULL: no memory). */
conv_t *conv_add(chat_t *ch, bool channel, const char *id, const char *name);
const contact_t *conv_contact(const chat_t *ch, const char *id);
/*  A person's name as shown: "me", their contact name, else a short id. */
void conv_name_of(const chat_t *ch, const char *id, const char *fallback, char *out, size_t cap);
/*  Room for one more message at index at (0: the oldest end); NULL: no memory. */
msg_t *conv_insert(conv_t *c, size_t at);
/*  Sets m's shown text (made safe) and then its state, if any. */
void conv_msg_text(msg_t *m, const char *text);
/*  Sets the state shown after our message m. */
void conv_msg_state(msg_t *m, const char *state);
/*  A channel message's state: "queued", or "delivered 2/3, read 1/3". */
void conv_chan_state(const json_t *j, char *out, size_t cap);
/*  Whether text names me (my name, short id, or a /highlight word). */
bool conv_names_me(const chat_t *ch, const char *text);
/*  Fills m from a message object of the API (DM or channel). */
void conv_fill(chat_t *ch, conv_t *c, msg_t *m, const json_t *j);
/*  A line of the chat's own at the end of c ("bob is online"). */
msg_t *conv_say(conv_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
conv_t *conv_cur(chat_t *ch);
/*  The "parley" conversation: the node's own events. */
conv_t *conv_home(chat_t *ch);
bool conv_same_day(uint64_t a, uint64_t b);
/*  Rows message i of c takes at text width w (day separator, read marker
 *  and wrapped text). */
size_t conv_msg_rows(const conv_t *c, size_t i, size_t w);
/*  Puts the read marker among c's first n messages if the oldest unread
 *  one is there (marker_left counts down). */
void conv_place_marker(conv_t *c, size_t n);
/*  Keeps what c holds bounded: the newest CHAT_KEEP messages once it holds
 *  twice that, or, scrolled up, the newest 2 × CHAT_KEEP once it holds four
 *  times that. What goes is fetched again if the view goes back up (the
 *  "parley" conversation's lines are gone for good). */
void conv_trim(conv_t *c);
void conv_test(bool verbose);

/* ---- chat.c: the node's API ---- */

/*  One call; notifications read meanwhile wait in ch->notes. On a failure
 *  *err (may be NULL; free()) says why. A lost connection is noticed. */
int chat_call(chat_t *ch, const char *method, json_t *params, json_t **result, char **err);
/*  A call whose failure is said in the open conversation; NULL then. */
json_t *chat_do(chat_t *ch, const char *method, json_t *params);
void chat_load_contacts(chat_t *ch);
void chat_load_channels(chat_t *ch);
/*  Who we are, the network, contacts, channels and DMs. */
void chat_load_all(chat_t *ch);
/*  The DM conversation with peer id (added if new). */
conv_t *chat_dm(chat_t *ch, const char *id, const char *short_id);
/*  A channel object of the API into its conversation. */
void chat_chan_fill(chat_t *ch, const json_t *j);
/*  One page of c's history older than what is loaded (or the newest);
 *  how many messages came. */
size_t chat_fetch(chat_t *ch, conv_t *c);
void chat_mark_read(chat_t *ch, conv_t *c);
/*  Opens the conversation at place i: loads it, puts the read marker, and
 *  marks it read after the next draw. */
void chat_open(chat_t *ch, size_t i);
/*  A message object for c, unless it is loaded already; NULL if not added. */
msg_t *chat_append(chat_t *ch, conv_t *c, const json_t *j);

/* ---- view.c: the screen ---- */

void view_colours(chat_t *ch);
void view_draw(chat_t *ch);

/* ---- cmd.c: the keyboard ---- */

/*  Reads and handles every key waiting. */
void cmd_input(chat_t *ch);

#endif
