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
 *  This file: the loop, the API, notifications and reconnecting (the
 *  parts: chat_int.h).
 *
 *  If the node goes away the chat says so and reconnects every second; on
 *  reconnecting it loads the conversations again and says that too.
 */
#include "chat.h"

#include "chat_int.h"
#include <fcntl.h>
#include <locale.h>
#include <ncurses.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------- API */

static void s_went_away(chat_t *ch);

//  One call; notifications read meanwhile wait in ch->notes. On a failure
//  *err (may be NULL) says why, as the node put it.
int
chat_call(chat_t *ch, const char *method, json_t *params, json_t **result, char **err)
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
json_t *
chat_do(chat_t *ch, const char *method, json_t *params)
{
    json_t *res = NULL;
    char *err = NULL;
    if (chat_call(ch, method, params, &res, &err) != PARLEY_OK) {
        char *safe = text_safe(err ? err : "failed", strlen(err ? err : "failed"));
        conv_say(conv_cur(ch), "%s: %s", method, safe ? safe : "failed");
        free(safe);
        free(err);
        return NULL;
    }
    free(err);
    return res;
}

void
chat_load_contacts(chat_t *ch)
{
    json_t *res = NULL;
    if (chat_call(ch, "contacts.list", NULL, &res, NULL) != PARLEY_OK) {
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
            chat_copy(k->id, sizeof k->id, chat_str(ct, "id"));
            chat_copy(k->name, sizeof k->name, chat_str(ct, "name"));
            k->verified = json_is_true(json_object_get(ct, "verified"));
        }
    }
    json_decref(res);
}

//  A DM conversation with peer (id), named as the contacts say.
conv_t *
chat_dm(chat_t *ch, const char *id, const char *short_id)
{
    char name[128];
    conv_name_of(ch, id, short_id, name, sizeof name);
    conv_t *c = conv_add(ch, false, id, name);
    const contact_t *ct = conv_contact(ch, id);
    if (c) {
        c->verified = ct && ct->verified;
    }
    return c;
}

void
chat_chan_fill(chat_t *ch, const json_t *j)
{
    const char *state = chat_str(j, "state");
    conv_t *c = conv_find(ch, true, chat_str(j, "channel"));
    if (strcmp(state, "member") != 0 && strcmp(state, "") != 0) {
        if (c && !c->n && !c->loaded) {
            return; // gone, and never looked at: not listed
        }
    }
    const char *name = chat_str(j, "name");
    c = conv_add(ch, true, chat_str(j, "channel"), *name ? name : chat_str(j, "channel"));
    if (!c) {
        return;
    }
    chat_copy(c->topic, sizeof c->topic, chat_str(j, "topic"));
    c->members = (int)chat_int(j, "members");
    c->reader = strcmp(chat_str(j, "role"), "reader") == 0;
    if (!(c == conv_cur(ch))) {
        c->unread = chat_int(j, "unread");
    }
}

void
chat_load_channels(chat_t *ch)
{
    json_t *res = NULL;
    if (chat_call(ch, "channel.list", NULL, &res, NULL) == PARLEY_OK) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(res, "channels"), i, c)
        {
            chat_chan_fill(ch, c);
        }
    }
    json_decref(res);
}

//  Everything the screen lists: who we are, contacts, channels, DMs.
void
chat_load_all(chat_t *ch)
{
    json_t *res = NULL;
    if (chat_call(ch, "id", NULL, &res, NULL) == PARLEY_OK) {
        chat_copy(ch->me, sizeof ch->me, chat_str(res, "id"));
        chat_copy(ch->me_short, sizeof ch->me_short, chat_str(res, "short_id"));
    }
    json_decref(res);
    res = NULL;
    ch->net_name[0] = ch->net_role[0] = '\0';
    if (chat_call(ch, "network.show", NULL, &res, NULL) == PARLEY_OK
        && strcmp(chat_str(res, "mode"), "network") == 0) {
        chat_copy(ch->net_name, sizeof ch->net_name, chat_str(res, "name"));
        chat_copy(ch->net_role, sizeof ch->net_role, chat_str(res, "role"));
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(res, "members"), i, m)
        {
            if (strcmp(chat_str(m, "id"), ch->me) == 0) {
                chat_copy(ch->me_name, sizeof ch->me_name, chat_str(m, "name"));
            }
        }
    }
    json_decref(res);
    chat_load_contacts(ch);
    chat_load_channels(ch);
    res = NULL;
    if (chat_call(ch, "conversations", NULL, &res, NULL) == PARLEY_OK) {
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(res, "conversations"), i, d)
        {
            conv_t *c = chat_dm(ch, chat_str(d, "peer"), chat_str(d, "peer_short"));
            if (c && c != conv_cur(ch)) {
                c->unread = chat_int(d, "unread");
            }
        }
    }
    json_decref(res);
    for (size_t i = 0; i < ch->n_contacts; i++) {
        (void)chat_dm(ch, ch->contacts[i].id, NULL);
    }
}

//  One page of c's history before its oldest loaded message (or the
//  newest), put in front. Returns how many came.
size_t
chat_fetch(chat_t *ch, conv_t *c)
{
    if (c->id[0] == '\0' || (c->loaded && c->complete)) {
        return 0;
    }
    json_t *params = c->channel
                         ? json_pack("{s:s, s:I}", "channel", c->id, "limit", (json_int_t)CHAT_PAGE)
                         : json_pack("{s:s, s:I}", "peer", c->id, "limit", (json_int_t)CHAT_PAGE);
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
    if (chat_call(ch, c->channel ? "channel.history" : "history", params, &res, NULL)
        != PARLEY_OK) {
        return 0;
    }
    json_t *page = c->channel ? json_object_get(res, "messages") : res;
    size_t got = json_array_size(page);
    size_t kept = 0;
    for (size_t i = 0; i < got; i++) {
        json_t *j = json_array_get(page, i);
        if (c->channel && strcmp(chat_str(j, "state"), "queued") == 0 && c->loaded) {
            continue; // the queued come with the newest page only
        }
        msg_t *m = conv_insert(c, kept);
        if (!m) {
            break;
        }
        conv_fill(ch, c, m, j);
        kept++;
    }
    c->marker = c->marker == SIZE_MAX ? SIZE_MAX : c->marker + kept;
    c->found = c->found == SIZE_MAX ? SIZE_MAX : c->found + kept;
    if (c->loaded) {
        conv_place_marker(c, kept); // an older page: the marker may be in it
    }
    //  A short page is not the start: the node also stops a page at a byte
    //  budget. An empty one is.
    c->complete = got == 0;
    c->loaded = true;
    json_decref(res);
    return kept;
}

//  Tells the node c is read (the peer or the members see it).
void
chat_mark_read(chat_t *ch, conv_t *c)
{
    if (c->id[0] == '\0') {
        return;
    }
    json_t *res = NULL;
    (void)chat_call(ch, c->channel ? "channel.read" : "read",
                    c->channel ? json_pack("{s:s}", "channel", c->id)
                               : json_pack("{s:s}", "peer", c->id),
                    &res, NULL);
    json_decref(res);
    c->unread = 0;
    c->highlight = false;
}

void
chat_open(chat_t *ch, size_t i)
{
    if (i >= ch->n_convs) {
        return;
    }
    ch->cur = i;
    ch->searching = false;
    conv_t *c = ch->convs[i];
    uint64_t unread = c->unread;
    if (!c->loaded) {
        (void)chat_fetch(ch, c);
    }
    //  The read marker: above the first message not read when we came.
    c->marker = SIZE_MAX;
    c->marker_left = unread;
    conv_place_marker(c, c->n);
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
        b[text_fit(b, strlen(b), CHAT_NOTIFY_CHARS)] = '\0';
        char *argv[] = { "notify-send", "-a", "parley", "--", t, b, NULL };
        pid_t pid;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        if (posix_spawnp(&pid, "notify-send", &fa, NULL, argv, environ) != 0) {
            ch->notify = false; // none here: stop trying
        } else {
            ch->notify_pid = pid;
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    free(t);
    free(b);
}

//  A message from someone else came to c, which is not on the screen: the
//  bell and a desktop notification, together at most once a CHAT_ALERT_MS
//  and with one notify-send at a time, so a flood rings once and spawns no
//  swarm of processes.
static void
s_alert(chat_t *ch, conv_t *c, const char *text)
{
    uint64_t now = chat_now();
    if (now < ch->alert_at || (!ch->bell && !ch->notify)) {
        return;
    }
    ch->alert_at = now + CHAT_ALERT_MS;
    if (ch->bell) {
        beep();
    }
    if (ch->notify_pid > 0 && waitpid(ch->notify_pid, NULL, WNOHANG) == 0) {
        return; // the last one is still on its way
    }
    ch->notify_pid = 0;
    char title[160];
    snprintf(title, sizeof title, "%s%s", c->channel ? "#" : "", c->name);
    s_notify_desktop(ch, title, text);
}

//  A message came to c: shown, counted and rung as where it is asks.
static void
s_arrived(chat_t *ch, conv_t *c, msg_t *m)
{
    bool open = c == conv_cur(ch);
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
    if (!open) {
        s_alert(ch, c, m->text ? m->text : "");
    }
}

//  An incoming or outgoing message c does not have yet (by key).
msg_t *
chat_append(chat_t *ch, conv_t *c, const json_t *j)
{
    const char *key = c->channel ? chat_str(j, "cursor") : chat_str(j, "envelope_id");
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
            if (strcmp(q->state, "queued") == 0 && strncmp(q->raw, chat_str(j, "text"), 63) == 0) {
                conv_msg_free(q);
                memmove(q, q + 1, (c->n - k - 1) * sizeof *q);
                c->n--;
                break;
            }
        }
    }
    if (!c->loaded) {
        return NULL; // fetched with the rest when opened
    }
    conv_trim(c);
    msg_t *m = conv_insert(c, c->n);
    if (m) {
        conv_fill(ch, c, m, j);
    }
    return m;
}

//  A message object (DM or channel) of a notification, for c: added and
//  counted if c is loaded, else only counted (it comes when c is opened).
static void
s_message(chat_t *ch, conv_t *c, const json_t *p)
{
    msg_t *m = chat_append(ch, c, p);
    if (m) {
        s_arrived(ch, c, m);
    } else if (!c->loaded && !json_is_true(json_object_get(p, "outgoing"))) {
        c->unread++;
        c->highlight = c->highlight || conv_names_me(ch, chat_str(p, "text"));
        if (c != conv_cur(ch)) {
            s_alert(ch, c, chat_str(p, "text"));
        }
    }
}

static void
s_on_note(chat_t *ch, const json_t *note)
{
    const char *method = chat_str(note, "method");
    const json_t *p = json_object_get(note, "params");
    conv_t *home = conv_home(ch);
    if (strcmp(method, "message") == 0) {
        conv_t *c = chat_dm(ch, chat_str(p, "peer"), chat_str(p, "peer_short"));
        if (!c) {
            return;
        }
        s_message(ch, c, p);
    } else if (strcmp(method, "delivery") == 0) {
        conv_t *c = conv_find(ch, false, chat_str(p, "peer"));
        for (size_t k = c ? c->n : 0; k > 0; k--) {
            if (strcmp(c->msgs[k - 1].key, chat_str(p, "envelope_id")) == 0) {
                conv_msg_state(&c->msgs[k - 1], chat_str(p, "state"));
                break;
            }
        }
    } else if (strcmp(method, "channel.message") == 0) {
        conv_t *c = conv_find(ch, true, chat_str(p, "channel"));
        if (!c) {
            c = conv_add(ch, true, chat_str(p, "channel"), chat_str(p, "name"));
        }
        if (c) {
            s_message(ch, c, p);
        }
    } else if (strcmp(method, "channel.receipt") == 0) {
        if (conv_cur(ch)->channel && strcmp(conv_cur(ch)->id, chat_str(p, "channel")) == 0) {
            ch->refresh_receipts = true;
        }
    } else if (strcmp(method, "channel.update") == 0) {
        chat_load_channels(ch);
        conv_t *c = conv_find(ch, true, chat_str(p, "channel"));
        char *name = text_safe(chat_str(p, "name"), strlen(chat_str(p, "name")));
        if (c && *chat_str(p, "state")) {
            conv_say(c, "-- you %s #%s",
                     strcmp(chat_str(p, "state"), "joined") == 0 ? "joined" : "left",
                     name ? name : "");
        } else if (c) {
            char *topic = text_safe(chat_str(p, "topic"), strlen(chat_str(p, "topic")));
            conv_say(c, "-- the topic is now: %s", topic ? topic : "");
            free(topic);
        }
        free(name);
    } else if (strcmp(method, "channel.member") == 0) {
        conv_t *c = conv_find(ch, true, chat_str(p, "channel"));
        if (c) {
            char who[128];
            conv_name_of(ch, chat_str(p, "member"), chat_str(p, "member_short"), who, sizeof who);
            char *safe = text_safe(who, strlen(who));
            if (strcmp(chat_str(p, "role"), "gone") == 0) {
                conv_say(c, "<-- %s is out of the channel", safe ? safe : "?");
                c->members = c->members > 0 ? c->members - 1 : 0;
            } else {
                conv_say(c, "--> %s is in the channel, as %s", safe ? safe : "?",
                         strcmp(chat_str(p, "role"), "admin") == 0    ? "admin"
                         : strcmp(chat_str(p, "role"), "reader") == 0 ? "reader"
                         : strcmp(chat_str(p, "role"), "owner") == 0  ? "owner"
                                                                      : "member");
            }
            free(safe);
        }
    } else if (strcmp(method, "peer") == 0) {
        bool online = strcmp(chat_str(p, "state"), "online") == 0;
        ch->peers_online += online ? 1 : ch->peers_online > 0 ? -1 : 0;
        conv_t *c = conv_find(ch, false, chat_str(p, "id"));
        char who[128];
        conv_name_of(ch, chat_str(p, "id"), chat_str(p, "short_id"), who, sizeof who);
        char *safe = text_safe(who, strlen(who));
        if (c && c->loaded) {
            conv_say(c, "%s %s is %s", online ? "-->" : "<--", safe ? safe : "?",
                     online ? "online" : "offline");
        }
        if (home) {
            conv_say(home, "%s %s is %s", online ? "-->" : "<--", safe ? safe : "?",
                     online ? "online" : "offline");
        }
        free(safe);
    } else if (strcmp(method, "network") == 0 && home) {
        char *type = text_safe(chat_str(p, "type"), strlen(chat_str(p, "type")));
        conv_say(home, "network: %s%s", type ? type : "?",
                 json_is_false(json_object_get(p, "applied")) ? " (void)" : "");
        free(type);
    } else if (strcmp(method, "warning") == 0 && home) {
        char *kind = text_safe(chat_str(p, "kind"), strlen(chat_str(p, "kind")));
        char *who = text_safe(chat_str(p, "contact"), strlen(chat_str(p, "contact")));
        conv_say(home, "WARNING %s %s", kind ? kind : "", who ? who : "");
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
    conv_t *c = conv_cur(ch);
    ch->refresh_receipts = false;
    if (!c->channel || !c->loaded) {
        return;
    }
    json_t *res = NULL;
    if (chat_call(ch, "channel.history", json_pack("{s:s, s:I}", "channel", c->id, "limit", 100),
                  &res, NULL)
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
            if (strcmp(c->msgs[k - 1].key, chat_str(j, "cursor")) == 0) {
                char state[96];
                conv_chan_state(j, state, sizeof state);
                conv_msg_state(&c->msgs[k - 1], state);
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
    ch->status_at = chat_now();
    if (chat_call(ch, "status", NULL, &res, NULL) != PARLEY_OK) {
        return;
    }
    ch->peers_online = (int)chat_int(json_object_get(res, "peers"), "online");
    json_t *sync = json_object_get(res, "sync");
    uint64_t started = chat_int(sync, "rounds_started"), ended = chat_int(sync, "rounds_ended");
    chat_copy(ch->sync, sizeof ch->sync, started > ended ? "syncing" : "in sync");
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
    ch->retry_at = chat_now() + CHAT_RETRY_MS;
    conv_t *home = conv_home(ch);
    conv_say(home, "!! the node went away: reconnecting");
    if (conv_cur(ch) != home) {
        conv_say(conv_cur(ch), "!! the node went away: reconnecting");
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
    rc = chat_call(ch, "subscribe", NULL, &res, NULL);
    json_decref(res);
    if (rc != PARLEY_OK) {
        client_destroy(&ch->api);
        return rc;
    }
    conv_t *cur = ch->n_convs ? conv_cur(ch) : NULL;
    chat_load_all(ch);
    for (size_t i = 0; i < ch->n_convs; i++) {
        conv_t *c = ch->convs[i];
        if (c->id[0] && c->loaded) {
            //  Fetched afresh: what came while we were away is in it.
            for (size_t k = 0; k < c->n;) {
                if (c->msgs[k].status) {
                    k++;
                    continue;
                }
                conv_msg_free(&c->msgs[k]);
                memmove(&c->msgs[k], &c->msgs[k + 1], (c->n - k - 1) * sizeof c->msgs[k]);
                c->n--;
            }
            c->loaded = c->complete = false;
            c->marker = c->found = SIZE_MAX;
            c->scroll = 0;
        }
    }
    if (cur && cur->id[0] && !cur->loaded) {
        (void)chat_fetch(ch, cur);
    }
    s_status_refresh(ch);
    return PARLEY_OK;
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
    if (!conv_add(ch, false, "", "parley") || !ch->notes) {
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
        conv_free(ch->convs[0]);
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
    initscr(); // on failure it prints why and exits
    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    view_colours(ch);
    if (ch->mouse) {
        mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
    }
    conv_t *home_c = conv_home(ch);
    if (s_connect(ch) == PARLEY_OK) {
        conv_say(home_c, "connected to your node %s; /help lists the commands and keys",
                 ch->me_short);
        conv_say(home_c, "your id: %s", ch->me);
        conv_say(home_c, "give it to the people you talk to; /contact add ID NAME names theirs");
    } else {
        ch->retry_at = chat_now() + CHAT_RETRY_MS;
        conv_say(home_c, "!! cannot reach the node: retrying");
    }
    while (!ch->quit) {
        s_drain_notes(ch);
        if (ch->refresh_receipts) {
            s_refresh_receipts(ch);
        }
        s_drain_notes(ch);
        view_draw(ch);
        //  After the screen shows them: the peer's "read" means seen.
        if (ch->read_due && conv_cur(ch)->scroll == 0) {
            ch->read_due = false;
            chat_mark_read(ch, conv_cur(ch));
        }
        struct pollfd p[2] = { { 0, POLLIN, 0 }, { ch->api ? client_fd(ch->api) : -1, POLLIN, 0 } };
        int timeout = ch->api && client_buffered(ch->api) ? 0 : 250;
        (void)poll(p, 2, timeout);
        cmd_input(ch);
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
        uint64_t now = chat_now();
        if (!ch->api && now >= ch->retry_at) {
            ch->retry_at = now + CHAT_RETRY_MS;
            if (s_connect(ch) == PARLEY_OK) {
                conv_say(home_c, "reconnected to your node");
                if (conv_cur(ch) != home_c) {
                    conv_say(conv_cur(ch), "reconnected to your node");
                }
            }
        } else if (ch->api && now - ch->status_at >= CHAT_STATUS_MS) {
            s_status_refresh(ch);
        }
        s_reap();
    }
    endwin();
    client_destroy(&ch->api);
    for (size_t i = 0; i < ch->n_convs; i++) {
        conv_free(ch->convs[i]);
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
