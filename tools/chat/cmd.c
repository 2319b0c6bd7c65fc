/*  tools/chat/cmd.c — what the person types: keys (conversations, scrolling,
 *  line editing, history, completion, search, the mouse) and the slash
 *  commands, each one or a few API calls whose outcome is said in the open
 *  conversation.
 */
#include "chat_int.h"

#include <ncurses.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

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
        "/join #NAME               open a channel you are in",
        "/create NAME [--shared] [--announce] [--network] [TOPIC]   a new channel",
        "/leave                    leave this channel; /close hides this DM until it speaks",
        "/topic [TEXT]             show or set the topic; /members lists who is in it",
        "/add PEER.. /remove PEER /role PEER admin|member|reader /rekey   (channel admins)",
        "/invite [member|admin] [DUR] [USES]   an invite code; /invites lists, /revoke ID",
        "/verify PEER [yes]        the safety number to compare; yes marks PEER verified",
        "/contacts                 your contacts; /contact add ID NAME | remove NAME",
        "/ttl SECONDS              this DM's new messages disappear after that (0: never)",
        "/network show|create NAME|join CODE [NAME]|leave|log",
        "/member remove PEER [REASON] | role PEER admin|member   (network admins)",
        "/relay add|remove PEER    (network admins)",
        "/highlight WORD..         also highlight messages with these words (none: reset)",
        "/bell on|off  /notify on|off  /mouse on|off  /help  /quit",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        conv_say(conv_cur(ch), "%s", lines[i]);
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
    json_t *res = chat_do(ch, "safety", json_pack("{s:s}", "peer", peer));
    if (!res) {
        return false;
    }
    chat_copy(id, cap, chat_str(res, "peer"));
    snprintf(short_id, scap, "%.8s", id);
    json_decref(res);
    return true;
}

static void
s_say_result(chat_t *ch, const char *what, json_t *res)
{
    if (res) {
        conv_say(conv_cur(ch), "%s", what);
    }
    json_decref(res);
}

static void
s_send(chat_t *ch, conv_t *c, const char *text)
{
    if (c->id[0] == '\0') {
        conv_say(c, "this is the node's own conversation: /msg PEER or /join #NAME to talk");
        return;
    }
    json_t *res = NULL;
    if (c->channel) {
        res = chat_do(ch, "channel.send", json_pack("{s:s, s:s}", "channel", c->id, "text", text));
    } else {
        json_t *params = json_pack("{s:s, s:s}", "peer", c->id, "text", text);
        if (c->ttl_s) {
            json_object_set_new(params, "ttl_ms", json_integer((json_int_t)(c->ttl_s * 1000)));
        }
        res = chat_do(ch, "send", params);
    }
    if (!res) {
        return;
    }
    if (!c->loaded) {
        (void)chat_fetch(ch, c);
    } else {
        (void)chat_append(ch, c, res);
    }
    c->scroll = 0;
    c->more = 0;
    json_decref(res);
}

static void
s_cmd_members(chat_t *ch, conv_t *c)
{
    json_t *info = chat_do(ch, "channel.info", json_pack("{s:s}", "channel", c->id));
    if (!info) {
        return;
    }
    size_t i;
    json_t *m;
    conv_say(c, "%zu members:", json_array_size(json_object_get(info, "member_list")));
    json_array_foreach(json_object_get(info, "member_list"), i, m)
    {
        char who[128];
        conv_name_of(ch, chat_str(m, "id"), chat_str(m, "short_id"), who, sizeof who);
        char *safe = text_safe(who, strlen(who));
        conv_say(c, "  %-16s %s (%s)", safe ? safe : "?", chat_str(m, "role"),
                 chat_str(m, "short_id"));
        free(safe);
    }
    json_decref(info);
}

static void
s_cmd_verify(chat_t *ch, const char *peer, const char *yes)
{
    json_t *res = chat_do(ch, "safety", json_pack("{s:s}", "peer", peer));
    if (!res) {
        return;
    }
    const char *d = chat_str(res, "safety_number");
    conv_t *c = conv_cur(ch);
    char who[128];
    conv_name_of(ch, chat_str(res, "peer"), NULL, who, sizeof who);
    char *safe = text_safe(who, strlen(who));
    if (strcmp(yes, "yes") == 0) {
        json_t *v = chat_do(ch, "contacts.verify", json_pack("{s:s}", "peer", peer));
        if (v) {
            conv_say(c, "%s is verified now", safe ? safe : "?");
            chat_load_contacts(ch);
            conv_t *dm = conv_find(ch, false, chat_str(res, "peer"));
            if (dm) {
                dm->verified = true;
            }
        }
        json_decref(v);
    } else if (strlen(d) == 60) {
        //  Side by side, as both screens show it: compare every group.
        conv_say(c, "safety number of you and %s%s:", safe ? safe : "?",
                 json_is_true(json_object_get(res, "verified")) ? " (verified)" : "");
        for (int r = 0; r < 3; r++) {
            conv_say(c, "    %.5s %.5s %.5s %.5s", d + r * 20, d + r * 20 + 5, d + r * 20 + 10,
                     d + r * 20 + 15);
        }
        conv_say(c, "the same on %s's screen? then /verify %s yes", safe ? safe : "?", peer);
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
            chat_copy(role, sizeof role, w);
        } else if (strchr("0123456789", w[0]) && strpbrk(w, "smhd")) {
            chat_copy(dur, sizeof dur, w);
        } else {
            chat_copy(uses, sizeof uses, w);
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
    json_t *res = chat_do(ch, "invite.create", params);
    if (res) {
        conv_say(conv_cur(ch), "invite (%s, a bearer token: give it privately):", role);
        conv_say(conv_cur(ch), "  %s", chat_str(res, "code"));
    }
    json_decref(res);
}

//  /create NAME [--shared] [--announce] [--network] [TOPIC]
static void
s_cmd_create(chat_t *ch, const char *name, const char *rest)
{
    conv_t *c = conv_cur(ch);
    if (!name) {
        conv_say(c, "usage: /create NAME [--shared] [--announce] [--network] [TOPIC]");
        return;
    }
    name += name[0] == '#';
    json_t *params = json_pack("{s:s}", "name", name);
    char w[32];
    const char *topic = rest;
    while (s_word(topic, 0, w, sizeof w, NULL) && strncmp(w, "--", 2) == 0) {
        if (strcmp(w, "--shared") == 0) {
            json_object_set_new(params, "history", json_string("shared"));
        } else if (strcmp(w, "--announce") == 0) {
            json_object_set_new(params, "announce", json_true());
        } else if (strcmp(w, "--network") == 0) {
            json_object_set_new(params, "network", json_true());
        } else {
            conv_say(c, "/create: no option %s", w);
            json_decref(params);
            return;
        }
        (void)s_word(topic, 0, w, sizeof w, &topic);
    }
    if (*topic) {
        json_object_set_new(params, "topic", json_string(topic));
    }
    json_t *res = chat_do(ch, "channel.create", params);
    if (res) {
        chat_chan_fill(ch, res);
        conv_t *cc = conv_find(ch, true, chat_str(res, "channel"));
        if (cc) {
            chat_open(ch, conv_index(ch, cc));
        }
    }
    json_decref(res);
}

//  The newest roster events, as `parley network log` shows them.
static void
s_cmd_network_log(chat_t *ch)
{
    conv_t *c = conv_cur(ch);
    json_t *res = chat_do(ch, "network.log", json_pack("{s:i}", "limit", 20));
    size_t i;
    json_t *e;
    json_array_foreach(res, i, e)
    {
        char by[128], to[128];
        conv_name_of(ch, chat_str(e, "author"), chat_str(e, "author_short"), by, sizeof by);
        conv_name_of(ch, chat_str(e, "target"), chat_str(e, "target_short"), to, sizeof to);
        char *sby = text_safe(by, strlen(by)), *sto = text_safe(to, strlen(to));
        char *why = text_safe(chat_str(e, "reason"), strlen(chat_str(e, "reason")));
        conv_say(c, "  %s by %s -> %s%s%s", chat_str(e, "type"), sby ? sby : "?", sto ? sto : "?",
                 json_is_false(json_object_get(e, "applied")) ? " (void: " : "",
                 json_is_false(json_object_get(e, "applied")) ? (why ? why : "") : "");
        free(sby);
        free(sto);
        free(why);
    }
    json_decref(res);
}

static void
s_cmd_network(chat_t *ch, const char *rest)
{
    char sub[32], arg[128];
    const char *more = "";
    conv_t *c = conv_cur(ch);
    if (!s_word(rest, 0, sub, sizeof sub, &more) || strcmp(sub, "show") == 0) {
        json_t *res = chat_do(ch, "network.show", NULL);
        if (res && strcmp(chat_str(res, "mode"), "network") == 0) {
            char *name = text_safe(chat_str(res, "name"), strlen(chat_str(res, "name")));
            size_t count = json_array_size(json_object_get(res, "members"));
            conv_say(c, "network %s: you are %s; %zu member%s", name ? name : "?",
                     chat_str(res, "role"), count, count == 1 ? "" : "s");
            free(name);
            size_t i;
            json_t *m;
            json_array_foreach(json_object_get(res, "members"), i, m)
            {
                char *n = text_safe(chat_str(m, "name"), strlen(chat_str(m, "name")));
                conv_say(c, "  %-16s %s%s (%s)", n ? n : "", chat_str(m, "role"),
                         json_is_true(json_object_get(m, "relay")) ? ", relay" : "",
                         chat_str(m, "short_id"));
                free(n);
            }
        } else if (res) {
            conv_say(c, "open mode: no private network (/network create NAME)");
        }
        json_decref(res);
    } else if (strcmp(sub, "create") == 0 && s_word(more, 0, arg, sizeof arg, NULL)) {
        s_say_result(ch, "network created: you are its first admin",
                     chat_do(ch, "network.create", json_pack("{s:s}", "name", arg)));
        chat_load_all(ch);
    } else if (strcmp(sub, "leave") == 0) {
        s_say_result(ch, "you left the network", chat_do(ch, "network.leave", NULL));
        chat_load_all(ch);
    } else if (strcmp(sub, "join") == 0 && s_word(more, 0, arg, sizeof arg, &more)) {
        json_t *params = json_pack("{s:s}", "code", arg);
        if (*more) {
            json_object_set_new(params, "name", json_string(more));
        }
        s_say_result(ch, "joining: a member adds you when it sees you (network events show here)",
                     chat_do(ch, "join", params));
    } else if (strcmp(sub, "log") == 0) {
        s_cmd_network_log(ch);
    } else {
        conv_say(c, "usage: /network show | create NAME | join CODE [NAME] | leave | log");
    }
}

static void
s_cmd_member(chat_t *ch, const char *rest)
{
    char sub[32], peer[128], role[32];
    const char *more = "";
    conv_t *c = conv_cur(ch);
    if (s_word(rest, 0, sub, sizeof sub, &more) && s_word(more, 0, peer, sizeof peer, NULL)) {
        if (strcmp(sub, "remove") == 0) {
            const char *reason = "";
            (void)s_word(more, 0, peer, sizeof peer, &reason);
            json_t *params = json_pack("{s:s}", "peer", peer);
            if (*reason) {
                json_object_set_new(params, "reason", json_string(reason));
            }
            s_say_result(ch, "removed from the network", chat_do(ch, "member.remove", params));
            return;
        }
        if (strcmp(sub, "role") == 0 && s_word(more, 1, role, sizeof role, NULL)) {
            s_say_result(
                ch, "role set",
                chat_do(ch, "member.role", json_pack("{s:s, s:s}", "peer", peer, "role", role)));
            return;
        }
    }
    conv_say(c, "usage: /member remove PEER [REASON] | role PEER admin|member");
}

static void
s_toggle(chat_t *ch, bool *flag, const char *what, const char *rest)
{
    char w[8];
    if (s_word(rest, 0, w, sizeof w, NULL)) {
        *flag = strcmp(w, "on") == 0;
    }
    conv_say(conv_cur(ch), "%s is %s", what, *flag ? "on" : "off");
}

static void
s_command(chat_t *ch, const char *line)
{
    char cmd[32], a[160], b[160];
    const char *rest = "";
    conv_t *c = conv_cur(ch);
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
            conv_say(c, "usage: /msg PEER [TEXT]");
        } else if (a[0] == '#') {
            conv_say(c, "for a channel: /join %s", a);
        } else if (s_resolve(ch, a, id, sizeof id, sid, sizeof sid)) {
            conv_t *dm = chat_dm(ch, id, sid);
            if (dm) {
                chat_open(ch, conv_index(ch, dm));
                if (*rest2) {
                    s_send(ch, dm, rest2);
                }
            }
        }
    } else if (strcmp(cmd, "/join") == 0) {
        const char *name = has_a && a[0] == '#' ? a + 1 : a;
        json_t *info =
            has_a ? chat_do(ch, "channel.info", json_pack("{s:s}", "channel", name)) : NULL;
        if (!has_a) {
            conv_say(c, "usage: /join #NAME");
        }
        if (info) {
            chat_chan_fill(ch, info);
            conv_t *cc = conv_find(ch, true, chat_str(info, "channel"));
            if (cc) {
                chat_open(ch, conv_index(ch, cc));
            }
        }
        json_decref(info);
    } else if (strcmp(cmd, "/create") == 0) {
        s_cmd_create(ch, has_a ? a : NULL, rest2);
    } else if (strcmp(cmd, "/close") == 0 && !c->channel && c->id[0]) {
        size_t at = ch->cur;
        conv_free(c);
        memmove(&ch->convs[at], &ch->convs[at + 1], (ch->n_convs - at - 1) * sizeof *ch->convs);
        ch->n_convs--;
        ch->cur = 0;
        return;
    } else if (strcmp(cmd, "/contacts") == 0) {
        chat_load_contacts(ch);
        conv_say(c, "%zu contacts:", ch->n_contacts);
        for (size_t i = 0; i < ch->n_contacts; i++) {
            char *n = text_safe(ch->contacts[i].name, strlen(ch->contacts[i].name));
            conv_say(c, "  %-16s %.8s %s", n ? n : "?", ch->contacts[i].id,
                     ch->contacts[i].verified ? "verified" : "not verified");
            free(n);
        }
    } else if (strcmp(cmd, "/contact") == 0) {
        if (strcmp(a, "add") == 0 && s_word(rest2, 0, a, sizeof a, NULL)
            && s_word(rest2, 1, b, sizeof b, NULL)) {
            s_say_result(ch, "contact added",
                         chat_do(ch, "contacts.add", json_pack("{s:s, s:s}", "id", a, "name", b)));
            chat_load_all(ch);
        } else if (strcmp(a, "remove") == 0 && s_word(rest2, 0, b, sizeof b, NULL)) {
            s_say_result(ch, "contact removed",
                         chat_do(ch, "contacts.remove", json_pack("{s:s}", "name", b)));
            chat_load_contacts(ch);
        } else {
            conv_say(c, "usage: /contact add ID NAME | remove NAME");
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
            conv_say(c, "usage: /verify PEER [yes]");
        }
    } else if (strcmp(cmd, "/ttl") == 0) {
        if (c->channel || !c->id[0]) {
            conv_say(c, "/ttl is for direct conversations");
        } else if (has_a) {
            c->ttl_s = strtoull(a, NULL, 10);
            conv_say(c,
                     c->ttl_s ? "new messages here disappear %llu s after they are sent"
                              : "new messages here stay%.0llu",
                     (unsigned long long)c->ttl_s);
        } else {
            conv_say(c, "usage: /ttl SECONDS (0: never)");
        }
    } else if (strcmp(cmd, "/network") == 0) {
        s_cmd_network(ch, rest);
    } else if (strcmp(cmd, "/member") == 0) {
        s_cmd_member(ch, rest);
    } else if (strcmp(cmd, "/relay") == 0) {
        if (has_a && s_word(rest2, 0, b, sizeof b, NULL)
            && (strcmp(a, "add") == 0 || strcmp(a, "remove") == 0)) {
            s_say_result(
                ch, strcmp(a, "add") == 0 ? "relay added" : "relay removed",
                chat_do(ch, "relay.set",
                        json_pack("{s:s, s:b}", "peer", b, "relay", strcmp(a, "add") == 0)));
        } else {
            conv_say(c, "usage: /relay add|remove PEER");
        }
    } else if (strcmp(cmd, "/invite") == 0) {
        s_cmd_invite(ch, rest);
    } else if (strcmp(cmd, "/invites") == 0) {
        json_t *res = chat_do(ch, "invite.list", NULL);
        size_t i;
        json_t *inv;
        json_array_foreach(json_object_get(res, "invites"), i, inv)
        {
            char *label = text_safe(chat_str(inv, "name"), strlen(chat_str(inv, "name")));
            conv_say(c, "  %.16s %s %s %s", chat_str(inv, "id"), chat_str(inv, "role"),
                     chat_str(inv, "state"), label ? label : "");
            free(label);
        }
        json_decref(res);
    } else if (strcmp(cmd, "/revoke") == 0 && has_a) {
        s_say_result(ch, "invite revoked",
                     chat_do(ch, "invite.revoke", json_pack("{s:s}", "id", a)));
    } else if (strcmp(cmd, "/highlight") == 0) {
        ch->n_words = 0;
        for (int k = 0; ch->n_words < CHAT_WORDS && s_word(rest, k, a, sizeof a, NULL); k++) {
            chat_copy(ch->words[ch->n_words++], sizeof ch->words[0], a);
        }
        char *w = text_safe(rest, strlen(rest));
        conv_say(c,
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
        conv_say(c, "%s: unknown here (/help lists the commands)", cmd);
    } else if (strcmp(cmd, "/leave") == 0) {
        s_say_result(ch, "you left the channel",
                     chat_do(ch, "channel.leave", json_pack("{s:s}", "channel", c->id)));
    } else if (strcmp(cmd, "/topic") == 0) {
        if (*rest) {
            s_say_result(ch, "topic set",
                         chat_do(ch, "channel.topic",
                                 json_pack("{s:s, s:s}", "channel", c->id, "topic", rest)));
        } else {
            char *t = text_safe(c->topic, strlen(c->topic));
            conv_say(c, "topic: %s", t && *t ? t : "(none)");
            free(t);
        }
    } else if (strcmp(cmd, "/members") == 0 || strcmp(cmd, "/names") == 0) {
        s_cmd_members(ch, c);
    } else if (strcmp(cmd, "/add") == 0 && has_a) {
        for (int k = 0; s_word(rest, k, a, sizeof a, NULL); k++) {
            s_say_result(
                ch, "added",
                chat_do(ch, "channel.add", json_pack("{s:s, s:s}", "channel", c->id, "peer", a)));
        }
    } else if (strcmp(cmd, "/remove") == 0 && has_a) {
        s_say_result(
            ch, "removed: the others get a new key",
            chat_do(ch, "channel.remove", json_pack("{s:s, s:s}", "channel", c->id, "peer", a)));
    } else if (strcmp(cmd, "/role") == 0 && has_a && s_word(rest2, 0, b, sizeof b, NULL)) {
        s_say_result(ch, "role set",
                     chat_do(ch, "channel.role",
                             json_pack("{s:s, s:s, s:s}", "channel", c->id, "peer", a, "role", b)));
    } else if (strcmp(cmd, "/rekey") == 0) {
        s_say_result(ch, "new key sent",
                     chat_do(ch, "channel.rekey", json_pack("{s:s}", "channel", c->id)));
    } else {
        conv_say(c, "%s: unknown, or missing what it needs (/help)", cmd);
    }
    if (c->channel && ch->api) {
        chat_load_channels(ch); // members, topic, role as the command left them
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
        conv_say(conv_cur(ch), "the node is away: your line waits; Enter again once reconnected");
        return;
    }
    if (ch->n_hist == CHAT_HISTORY) {
        free(ch->hist[0]);
        memmove(ch->hist, ch->hist + 1, (CHAT_HISTORY - 1) * sizeof ch->hist[0]);
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
        s_send(ch, conv_cur(ch), text[0] == '/' ? text + 1 : text);
    }
    free(text);
}

/* ------------------------------------------------------------ keyboard */

static void
s_scroll(chat_t *ch, long rows)
{
    conv_t *c = conv_cur(ch);
    if (rows < 0 && (size_t)-rows >= c->scroll) {
        c->scroll = 0;
        c->more = 0;
        if (c->unread || ch->read_due) {
            ch->read_due = true;
        }
        conv_trim(c);
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
    conv_t *c = conv_cur(ch);
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
                size_t tw = (size_t)(COLS - CHAT_LIST_W - 1) > (size_t)(6 + CHAT_NAME_W + 3)
                                ? (size_t)(COLS - CHAT_LIST_W - 1) - (6 + CHAT_NAME_W + 3)
                                : 1;
                size_t rows = 0;
                for (size_t j = k; j < c->n; j++) {
                    rows += conv_msg_rows(c, j, tw);
                }
                c->scroll = rows;
                return;
            }
        }
        size_t got = chat_fetch(ch, c);
        if (got == 0) {
            conv_say(c, "search: no older message holds that");
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
        conv_t *c = conv_cur(ch);
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
            chat_open(ch, i);
            return;
        }
    }
    for (size_t k = 1; k <= ch->n_convs; k++) {
        size_t i = (ch->cur + k) % ch->n_convs;
        if (ch->convs[i]->unread) {
            chat_open(ch, i);
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
    } else if ((ev.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED)) && ev.x < CHAT_LIST_W && ev.y >= 1
               && ev.y < LINES - 2) {
        size_t h = (size_t)(LINES - 3);
        size_t first = ch->cur >= h ? ch->cur - h + 1 : 0;
        chat_open(ch, first + (size_t)(ev.y - 1));
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
    case 1: line_home(l); return;                                              // Ctrl-a
    case 5: line_end(l); return;                                               // Ctrl-e
    case 23: line_kill_word(l); return;                                        // Ctrl-w
    case 21: line_kill_start(l); return;                                       // Ctrl-u
    case 12: clearok(curscr, TRUE); return;                                    // Ctrl-l
    case 14: chat_open(ch, (ch->cur + 1) % ch->n_convs); return;               // Ctrl-n
    case 16: chat_open(ch, (ch->cur + ch->n_convs - 1) % ch->n_convs); return; // Ctrl-p
    case 18:                                                                   // Ctrl-r
        if (!ch->searching) {
            ch->searching = true;
            line_clear(&ch->query);
            conv_cur(ch)->found = SIZE_MAX;
        } else {
            s_search(ch);
        }
        return;
    case 7: // Ctrl-g: as Esc in a search
        if (ch->searching) {
            ch->searching = false;
            conv_cur(ch)->found = SIZE_MAX;
            s_scroll(ch, -(long)conv_cur(ch)->scroll);
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
        conv_cur(ch)->found = SIZE_MAX;
    }
}

//  ESC then a key: Alt-1..9, Alt-0, Alt-a; a lone ESC leaves a search.
static void
s_alt(chat_t *ch, int kind, wint_t k)
{
    if (kind == OK && k >= '1' && k <= '9') {
        chat_open(ch, (size_t)(k - '1'));
    } else if (kind == OK && k == '0') {
        chat_open(ch, 9);
    } else if (kind == OK && (k == 'a' || k == 'A')) {
        s_next_unread(ch);
    } else if (kind == OK && (k == 'n' || k == 'p')) {
        s_key(ch, OK, k == 'n' ? 14 : 16);
    }
}

void
cmd_input(chat_t *ch)
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
                    conv_cur(ch)->found = SIZE_MAX;
                    s_scroll(ch, -(long)conv_cur(ch)->scroll);
                }
                return;
            }
            s_alt(ch, kind2, k2);
            continue;
        }
        s_key(ch, kind, k);
    }
}
