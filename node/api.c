/*  node/api.c — see api.h. */
#include "api.h"

#include "../discovery/discovery.h"
#include "../proto/b32.h"
#include "../proto/content.h"
#include "../proto/limits.h"
#include "api_req.h"
#include "pex.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct api {
    core_t *core;         /* borrowed */
    links_t *links;       /* borrowed */
    delivery_t *delivery; /* borrowed */
    replica_t *replica;   /* borrowed */
    network_t *network;   /* borrowed */
    channels_t *channels; /* borrowed */
    api_server_t *server; /* borrowed */
};

api_t *
api_new(core_t *core, links_t *links, delivery_t *delivery, replica_t *replica, network_t *network,
        channels_t *channels, api_server_t *server)
{
    api_t *self = calloc(1, sizeof *self);
    if (self) {
        self->core = core;
        self->links = links;
        self->delivery = delivery;
        self->replica = replica;
        self->network = network;
        self->channels = channels;
        self->server = server;
    }
    return self;
}

void
api_destroy(api_t **self_p)
{
    if (self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

/* ---- peer names ---- */

static bool
s_prefix_of(const uint8_t pk[32], const char *arg, size_t len)
{
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(pk, id);
    return strncasecmp(id, arg, len) == 0;
}

static int
s_resolve_peer(api_t *self, const char *arg, uint8_t pk[32], const char **why)
{
    size_t len = strlen(arg);
    //  A peer with a link was validated when the link was made: skip the
    //  point check (a field inversion) that parsing a new id costs.
    if (len == PARLEY_NODE_ID_STRLEN && b32_decode(arg, pk, 32) == PARLEY_OK
        && links_find(self->links, pk)) {
        return PARLEY_OK;
    }
    if (len == PARLEY_NODE_ID_STRLEN && identity_parse_node_id(arg, pk) == PARLEY_OK) {
        return PARLEY_OK;
    }
    store_contact_t c;
    if (store_contact_by_name(self->core->store, arg, &c) == PARLEY_OK) {
        memcpy(pk, c.pk, 32);
        return PARLEY_OK;
    }
    if (len < 4 || len > PARLEY_NODE_ID_STRLEN) {
        *why = "not a node id, a contact name, or a short id (at least 4 characters)";
        return PARLEY_ERR_NOTFOUND;
    }
    //  A short id must name exactly one known node (peers and contacts).
    size_t matches = 0;
    uint8_t found[32];
    store_peer_t *peers = NULL;
    size_t n = 0;
    if (store_peer_list(self->core->store, &peers, &n) == PARLEY_OK) {
        for (size_t i = 0; i < n; i++) {
            if (s_prefix_of(peers[i].pk, arg, len)
                && (matches == 0 || sodium_memcmp(found, peers[i].pk, 32) != 0)) {
                memcpy(found, peers[i].pk, 32);
                matches++;
            }
        }
        free(peers);
    }
    for (size_t i = 0; i < links_count(self->links); i++) {
        const uint8_t *lpk = link_pk(links_at(self->links, i));
        if (s_prefix_of(lpk, arg, len) && (matches == 0 || sodium_memcmp(found, lpk, 32) != 0)) {
            memcpy(found, lpk, 32);
            matches++;
        }
    }
    store_contact_t *contacts = NULL;
    if (store_contact_list(self->core->store, &contacts, &n) == PARLEY_OK) {
        for (size_t i = 0; i < n; i++) {
            if (s_prefix_of(contacts[i].pk, arg, len)
                && (matches == 0 || sodium_memcmp(found, contacts[i].pk, 32) != 0)) {
                memcpy(found, contacts[i].pk, 32);
                matches++;
            }
        }
        free(contacts);
    }
    if (matches == 1) {
        memcpy(pk, found, 32);
        return PARLEY_OK;
    }
    *why = matches == 0 ? "unknown peer: no contact or known node matches"
                        : "ambiguous short id: give more characters or the full id";
    return matches == 0 ? PARLEY_ERR_NOTFOUND : PARLEY_ERR_AMBIGUOUS;
}

/* ---- methods ---- */

typedef struct {
    api_t *api;
    uint64_t client;
    api_req_t *req;
    json_t *result;  /* set on success (owned) */
    int status;      /* PARLEY_ERR_* on failure */
    int rpc_code;    /* JSON-RPC code for params errors, else 0 */
    const char *msg; /* message for the error */
    char msgbuf[256];
} call_t;

static void
s_fail(call_t *c, int status, const char *msg)
{
    c->status = status;
    c->msg = msg;
}

static bool
s_peer_param(call_t *c, const char *name, uint8_t pk[32])
{
    const char *arg = NULL;
    const char *why = NULL;
    if (api_param_str(c->req, name, true, &arg, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return false;
    }
    int rc = s_resolve_peer(c->api, arg, pk, &why);
    if (rc != PARLEY_OK) {
        snprintf(c->msgbuf, sizeof c->msgbuf, "%s: %s", arg, why);
        s_fail(c, rc, c->msgbuf);
        return false;
    }
    return true;
}

static void
m_id(call_t *c)
{
    api_t *self = c->api;
    char fp[50];
    identity_fingerprint(identity_ed_pk(self->core->id), fp);
    c->result = json_pack("{s:s, s:o, s:s}", "id", self->core->node_id, "short_id",
                          core_json_short_id(identity_ed_pk(self->core->id)), "fingerprint", fp);
}

static void
m_status(call_t *c)
{
    api_t *self = c->api;
    store_stats_t st;
    if (store_stats(self->core->store, &st) != PARLEY_OK) {
        s_fail(c, PARLEY_ERR_IO, "cannot read the database statistics");
        return;
    }
    json_t *rejected = json_object();
    for (int i = 0; i < C_COUNTERS; i++) {
        json_object_set_new(rejected, core_counter_names[i],
                            json_integer((json_int_t)self->core->counters[i]));
    }
    size_t online = 0;
    for (size_t i = 0; i < links_count(self->links); i++) {
        online += link_online(links_at(self->links, i));
    }
    size_t unverified = links_unverified(self->links);
    size_t dialling = links_dialling(self->links);
    c->result = json_pack(
        "{s:s, s:o, s:[s], s:s, s:I, s:{s:i, s:i, s:i, s:i, s:i}, s:{s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I}, "
        "s:o}",
        "id", self->core->node_id, "short_id", core_json_short_id(identity_ed_pk(self->core->id)),
        "endpoints", self->core->endpoint, "home", self->core->home, "uptime_ms",
        (json_int_t)(core_now(self->core) - self->core->started_ms), "peers", "online", (int)online,
        "known", (int)links_count(self->links), "unverified", (int)unverified, "dialling",
        (int)dialling, "linked", (int)links_dealers(self->links), "log", "envelopes",
        (json_int_t)st.envelopes, "messages", (json_int_t)st.messages, "outbox",
        (json_int_t)st.outbox, "queued", (json_int_t)st.queued, "equivocations",
        (json_int_t)st.equivocations, "db_bytes", (json_int_t)st.db_bytes, "age_ms",
        (json_int_t)st.age_ms, "rejected", rejected);
    if (c->result) {
        json_object_set_new(
            c->result, "discovery",
            json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "local", "state",
                      self->core->disc_state[0][0] ? self->core->disc_state[0] : "off", "detail",
                      self->core->disc_detail[0], "mdns", "state",
                      self->core->disc_state[1][0] ? self->core->disc_state[1] : "off", "detail",
                      self->core->disc_detail[1]));
        json_object_set_new(c->result, "sync", replica_status(self->replica));
        json_object_set_new(c->result, "verify", delivery_verify_status(self->delivery));
        json_object_set_new(c->result, "disk", delivery_disk_status(self->delivery));
        //  A lost database (node.c): "recovering" while our messages wait
        //  for what peers send back, then "recovered"; "none" if never lost.
        const core_t *core = self->core;
        json_object_set_new(c->result, "recovery",
                            json_pack("{s:s, s:I, s:I}", "state",
                                      core->recovering ? "recovering"
                                      : core->lost_ms  ? "recovered"
                                                       : "none",
                                      "lost_ms", (json_int_t)core->lost_ms, "envelopes_recovered",
                                      (json_int_t)core->recovered));
    }
}

//  Marks what peer sent us read; the peer hears of it unless read receipts
//  are off.
//  The direct conversations, the most recently active first, each with its
//  unread count and last message (clients then follow the notifications).
static void
m_conversations(call_t *c)
{
    store_t *store = c->api->core->store;
    store_conv_t *convs = NULL;
    size_t n = 0;
    int rc = store_conversations(store, API_CONVERSATIONS_MAX, &convs, &n);
    if (rc != PARLEY_OK) {
        s_fail(c, rc, NULL);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n && rc == PARLEY_OK; i++) {
        store_msg_t *last = NULL;
        size_t n_last = 0;
        rc = store_history(store, convs[i].peer, 1, &last, &n_last);
        if (rc != PARLEY_OK) {
            break;
        }
        store_contact_t contact;
        json_t *name = store_contact_by_pk(store, convs[i].peer, &contact) == PARLEY_OK
                           ? json_string(contact.name)
                           : json_null();
        json_array_append_new(
            list,
            json_pack("{s:o, s:o, s:o, s:I, s:I, s:o}", "peer", core_json_id(convs[i].peer),
                      "peer_short", core_json_short_id(convs[i].peer), "peer_name", name, "unread",
                      (json_int_t)convs[i].unread, "last_ms", (json_int_t)convs[i].last_ms, "last",
                      n_last ? delivery_msg_json(c->api->delivery, &last[0]) : json_null()));
        store_msgs_free(last, n_last);
    }
    free(convs);
    if (rc != PARLEY_OK) {
        json_decref(list);
        s_fail(c, rc, NULL);
        return;
    }
    c->result = json_pack("{s:o}", "conversations", list);
}

static void
m_read(call_t *c)
{
    uint8_t peer[32];
    if (!s_peer_param(c, "peer", peer)) {
        return;
    }
    size_t n = 0;
    int rc = delivery_mark_read(c->api->delivery, peer, &n);
    if (rc != PARLEY_OK) {
        s_fail(c, rc, NULL);
        return;
    }
    c->result = json_pack("{s:I, s:b}", "marked", (json_int_t)n, "receipts",
                          !c->api->core->cfg.no_read_receipts);
}

static void
m_send(call_t *c)
{
    uint8_t peer[32];
    const char *text = NULL;
    if (!s_peer_param(c, "peer", peer)) {
        return;
    }
    if (api_param_str(c->req, "text", true, &text, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    uint64_t ttl_ms = 0;
    if (api_param_uint(c->req, "ttl_ms", false, &ttl_ms, &c->msg) != 0
        || ttl_ms > 10 * 365 * NODE_DAY_MS) {
        c->rpc_code = API_ERR_PARAMS;
        c->msg = c->msg ? c->msg : "ttl_ms must be at most ten years";
        return;
    }
    store_msg_t msg;
    int rc = delivery_send_text(c->api->delivery, peer, text, strlen(text), ttl_ms, &msg);
    if (rc == PARLEY_OK) {
        c->result = delivery_msg_json(c->api->delivery, &msg);
    } else if (rc == PARLEY_ERR_STATE) {
        s_fail(c, rc, "cannot send a message to yourself");
    } else if (rc == PARLEY_ERR_LIMIT) {
        s_fail(c, rc, "text must be 1 to 32766 bytes");
    } else if (rc == PARLEY_ERR_MALFORMED && !content_utf8_valid(text, strlen(text))) {
        s_fail(c, rc, "text must be valid UTF-8 without NUL");
    } else if (rc == PARLEY_ERR_MALFORMED || rc == PARLEY_ERR_CORRUPT) {
        //  The text was fine: what failed its check is a row read back
        //  from the database (a range check, or SQLite's own).
        s_fail(c, PARLEY_ERR_CORRUPT, CORE_DAMAGED_HINT);
    } else {
        s_fail(c, rc, NULL);
    }
    free(msg.text);
}

//  One page of history, oldest first: the newest `limit` messages (at most
//  API_HISTORY_MAX; 0 is that max), or those before the message `before`
//  (a msg_id). A page is also cut, from its oldest end, to about
//  API_HISTORY_BYTES of text so the reply stays well under the client's
//  output cap; a client pages back by passing the first (oldest) message's
//  msg_id as `before` until a page comes back empty.
static void
m_history(call_t *c)
{
    uint8_t peer[32];
    uint64_t limit = 50;
    const char *before_hex = NULL;
    if (!s_peer_param(c, "peer", peer)) {
        return;
    }
    if (api_param_uint(c->req, "limit", false, &limit, &c->msg) != 0
        || api_param_str(c->req, "before", false, &before_hex, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    uint8_t before[STORE_MSG_ID_LEN];
    size_t blen = 0;
    if (before_hex
        && (strlen(before_hex) != 2 * sizeof before
            || sodium_hex2bin(before, sizeof before, before_hex, strlen(before_hex), NULL, &blen,
                              NULL)
                   != 0
            || blen != sizeof before)) {
        c->rpc_code = API_ERR_PARAMS;
        c->msg = "before must be a msg_id (32 hex digits)";
        return;
    }
    if (limit == 0 || limit > API_HISTORY_MAX) {
        limit = API_HISTORY_MAX;
    }
    store_msg_t *msgs = NULL;
    size_t n = 0;
    int rc = store_history_before(c->api->core->store, peer, before_hex ? before : NULL,
                                  (size_t)limit, &msgs, &n);
    if (rc == PARLEY_ERR_NOTFOUND) {
        s_fail(c, rc, "before: no such message in this conversation");
        return;
    }
    if (rc != PARLEY_OK) {
        s_fail(c, rc, NULL);
        return;
    }
    //  The newest are kept: walk back from the end until the budget is spent.
    size_t first = n, bytes = 0;
    while (first > 0) {
        size_t cost = 512 + (msgs[first - 1].text ? strlen(msgs[first - 1].text) : 0);
        if (first < n && bytes + cost > API_HISTORY_BYTES) {
            break;
        }
        bytes += cost;
        first--;
    }
    c->result = json_array();
    for (size_t i = first; i < n; i++) {
        json_array_append_new(c->result, delivery_msg_json(c->api->delivery, &msgs[i]));
    }
    store_msgs_free(msgs, n);
}

static void
m_peers(call_t *c)
{
    api_t *self = c->api;
    c->result = json_array();
    for (size_t i = 0; i < links_count(self->links); i++) {
        link_t *l = links_at(self->links, i);
        store_peer_t p;
        bool known = store_peer_get(self->core->store, link_pk(l), &p) == PARLEY_OK;
        store_contact_t contact;
        json_t *name = store_contact_by_pk(self->core->store, link_pk(l), &contact) == PARLEY_OK
                           ? json_string(contact.name)
                           : json_null();
        const char *ep = link_endpoint(l)[0] ? link_endpoint(l) : known ? p.endpoint : "";
        uint64_t last = link_last_seen(l) ? link_last_seen(l) : known ? p.last_seen_ms : 0;
        json_array_append_new(
            c->result,
            json_pack("{s:o, s:o, s:o, s:s, s:b, s:I, s:I, s:s, s:s, s:s, s:b, s:I, s:b}", "id",
                      core_json_id(link_pk(l)), "short_id", core_json_short_id(link_pk(l)), "name",
                      name, "endpoint", ep, "online", link_online(l), "connected_since",
                      (json_int_t)link_connected_since(l), "last_seen", (json_int_t)last,
                      "direction", link_dealer(l) ? "outbound" : "inbound", "source",
                      link_source(l), "last_error", link_online(l) ? "" : link_last_error(l),
                      "verified", link_verified(l), "known_since", (json_int_t)link_made_at(l),
                      "linked", link_wanted(l)));
    }
}

//  Forgets a peer: its link goes (disconnected, its per-link state freed)
//  and its saved row with it, so a restart does not redial it. Not a ban:
//  a peer that reconnects or is gossiped again is a new, unverified link.
//  A contact stays a contact (contacts.remove removes that).
static void
m_peers_forget(call_t *c)
{
    api_t *self = c->api;
    uint8_t pk[32];
    if (!s_peer_param(c, "peer", pk)) {
        return;
    }
    link_t *link = links_find(self->links, pk);
    int rc = core_txn(self->core);
    if (rc == PARLEY_OK) {
        rc = store_peer_forget(self->core->store, pk);
    }
    if (rc == PARLEY_ERR_NOTFOUND && link) {
        rc = PARLEY_OK; // known only to this run (never verified): the link is all there is
    }
    if (rc == PARLEY_ERR_NOTFOUND) {
        s_fail(c, rc, "unknown peer: no link to it and nothing saved");
        return;
    }
    if (rc != PARLEY_OK) {
        s_fail(c, rc, NULL);
        return;
    }
    if (link) {
        links_remove(self->links, link, "forgotten");
    }
    store_contact_t contact;
    bool is_contact = store_contact_by_pk(self->core->store, pk, &contact) == PARLEY_OK;
    c->result = json_pack("{s:o, s:o, s:b, s:b}", "id", core_json_id(pk), "short_id",
                          core_json_short_id(pk), "forgotten", 1, "contact", is_contact);
}

static json_t *
s_contact_json(const store_contact_t *ct)
{
    return json_pack("{s:s, s:o, s:o, s:b, s:I}", "name", ct->name, "id", core_json_id(ct->pk),
                     "short_id", core_json_short_id(ct->pk), "verified", ct->verified, "added_ms",
                     (json_int_t)ct->added_ms);
}

static bool
s_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > STORE_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= ' ' || ch == 0x7f) {
            return false; // no spaces or control characters: names are typed as arguments
        }
    }
    return true;
}

static void
m_contacts_add(call_t *c)
{
    api_t *self = c->api;
    const char *idstr = NULL, *name = NULL;
    bool replace = false;
    if (api_param_str(c->req, "id", true, &idstr, &c->msg) != 0
        || api_param_str(c->req, "name", true, &name, &c->msg) != 0
        || api_param_bool(c->req, "replace", &replace, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    uint8_t pk[32];
    if (identity_parse_node_id(idstr, pk) != PARLEY_OK) {
        s_fail(c, PARLEY_ERR_MALFORMED, "malformed node id: want the 52-character id");
        return;
    }
    if (!s_name_ok(name)) {
        s_fail(c, PARLEY_ERR_MALFORMED, "a name is 1 to 64 bytes without spaces");
        return;
    }
    if (sodium_memcmp(pk, identity_ed_pk(self->core->id), 32) == 0) {
        s_fail(c, PARLEY_ERR_STATE, "that is your own id");
        return;
    }
    store_contact_t old;
    int rc = store_contact_by_name(self->core->store, name, &old);
    bool changed = rc == PARLEY_OK && sodium_memcmp(old.pk, pk, 32) != 0;
    if (changed && !replace) {
        char was[PARLEY_NODE_ID_STRLEN + 1];
        identity_node_id(old.pk, was);
        snprintf(c->msgbuf, sizeof c->msgbuf,
                 "WARNING: KEY CHANGED for contact '%s' (was %s). This may be someone else. "
                 "Compare safety numbers out of band, then add with --replace",
                 name, was);
        s_fail(c, PARLEY_ERR_EXISTS, c->msgbuf);
        return;
    }
    store_contact_t other;
    if (store_contact_by_pk(self->core->store, pk, &other) == PARLEY_OK
        && strcmp(other.name, name)) {
        snprintf(c->msgbuf, sizeof c->msgbuf, "that id is already your contact '%s'", other.name);
        s_fail(c, PARLEY_ERR_EXISTS, c->msgbuf);
        return;
    }
    bool verified = rc == PARLEY_OK && !changed && old.verified;
    if (core_txn(self->core) != PARLEY_OK
        || store_contact_put(self->core->store, name, pk, verified, core_now(self->core))
               != PARLEY_OK
        || store_contact_by_name(self->core->store, name, &old) != PARLEY_OK) {
        s_fail(c, PARLEY_ERR_IO, "cannot save the contact");
        return;
    }
    link_t *link = links_find(self->links, pk);
    if (link) {
        link_set_kept(link, true); // a contact's link is never evicted (link.h)
    }
    if (changed) {
        log_write(&self->core->log, LOG_LEVEL_WARN, "contact %s: key replaced by the user", name);
        core_notify(self->core, "warning",
                    json_pack("{s:s, s:s}", "kind", "key_changed", "contact", name));
    }
    c->result = s_contact_json(&old);
}

static void
m_contacts_list(call_t *c)
{
    store_contact_t *cts = NULL;
    size_t n = 0;
    int rc = store_contact_list(c->api->core->store, &cts, &n);
    if (rc != PARLEY_OK) {
        s_fail(c, rc, NULL);
        return;
    }
    c->result = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(c->result, s_contact_json(&cts[i]));
    }
    free(cts);
}

static void
m_contacts_remove(call_t *c)
{
    const char *name = NULL;
    if (api_param_str(c->req, "name", true, &name, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    int rc = core_txn(c->api->core);
    if (rc == PARLEY_OK) {
        rc = store_contact_remove(c->api->core->store, name);
    }
    if (rc == PARLEY_ERR_NOTFOUND) {
        s_fail(c, rc, "no contact by that name");
    } else if (rc != PARLEY_OK) {
        s_fail(c, rc, NULL);
    } else {
        c->result = json_pack("{s:s, s:b}", "name", name, "removed", 1);
    }
}

static void
m_contacts_verify(call_t *c)
{
    uint8_t pk[32];
    if (!s_peer_param(c, "peer", pk)) {
        return;
    }
    store_contact_t ct;
    int rc = store_contact_by_pk(c->api->core->store, pk, &ct);
    if (rc == PARLEY_ERR_NOTFOUND) {
        s_fail(c, rc, "add the peer as a contact first (parley contacts add ID NAME)");
        return;
    }
    if (rc == PARLEY_OK) {
        rc = core_txn(c->api->core);
    }
    if (rc == PARLEY_OK) {
        rc = store_contact_set_verified(c->api->core->store, pk, true);
    }
    if (rc == PARLEY_OK) {
        ct.verified = true;
        c->result = s_contact_json(&ct);
    } else {
        s_fail(c, rc, NULL);
    }
}

static void
m_safety(call_t *c)
{
    uint8_t pk[32];
    if (!s_peer_param(c, "peer", pk)) {
        return;
    }
    char digits[PARLEY_SAFETY_DIGITS + 1];
    if (identity_safety_number(identity_ed_pk(c->api->core->id), pk, digits) != PARLEY_OK) {
        s_fail(c, PARLEY_ERR_CRYPTO, NULL);
        return;
    }
    store_contact_t ct;
    bool verified = store_contact_by_pk(c->api->core->store, pk, &ct) == PARLEY_OK && ct.verified;
    c->result = json_pack("{s:o, s:s, s:b}", "peer", core_json_id(pk), "safety_number", digits,
                          "verified", verified);
}

static void
m_subscribe(call_t *c)
{
    api_server_subscribe(c->api->server, c->client);
    c->result = json_pack("{s:b}", "subscribed", 1);
}

/*  Multicast-capable interfaces that are up (mDNS runs on these unless
 *  Avahi's own allow-interfaces says otherwise), with their IPv4 addresses. */
static json_t *
s_interfaces(void)
{
    json_t *arr = json_array();
    pex_iface_t ifs[32];
    size_t n = pex_interfaces(ifs, 32);
    for (size_t i = 0; i < n; i++) {
        if (ifs[i].multicast) {
            json_array_append_new(
                arr, json_pack("{s:s, s:s}", "name", ifs[i].name, "address", ifs[i].addr));
        }
    }
    return arr;
}

//  Why a link is not connected, in words a user can act on.
static const char *
s_reason(const link_t *l)
{
    if (link_online(l)) {
        return "connected";
    }
    //  A dial that failed is closed until its back-off ends: its last error
    //  says why, DEALER or not.
    if (!link_dealer(l) && !link_endpoint(l)[0]) {
        return "seen only when it connected to us; no endpoint to dial it back (no seed, "
               "no discovery record)";
    }
    if (strncmp(link_last_error(l), "handshake", 9) == 0) {
        return "refused or key mismatch: the node at that endpoint does not hold the pinned "
               "key, or it refused us";
    }
    if (strcmp(link_last_error(l), "unreachable endpoint") == 0) {
        return "unreachable endpoint: nothing accepts connections there (node down, wrong "
               "address, or a firewall)";
    }
    if (strcmp(link_last_error(l), "connecting") == 0) {
        return "handshake timeout: connecting, no answer yet";
    }
    return link_last_error(l)[0] ? link_last_error(l) : "offline";
}

static json_t *
s_doctor_peer(const link_t *l)
{
    return json_pack("{s:o, s:o, s:s, s:s, s:b, s:s}", "id", core_json_id(link_pk(l)), "short_id",
                     core_json_short_id(link_pk(l)), "source", link_source(l), "endpoint",
                     link_endpoint(l), "online", link_online(l), "reason", s_reason(l));
}

static void
m_doctor(call_t *c)
{
    api_t *self = c->api;
    char instance[64];
    if (self->core->mdns_instance[0]) {
        snprintf(instance, sizeof instance, "%s", self->core->mdns_instance);
    } else {
        snprintf(instance, sizeof instance, "parley-%.16s", self->core->node_id);
    }
    json_t *peers = json_array();
    for (size_t i = 0; i < links_count(self->links); i++) {
        json_array_append_new(peers, s_doctor_peer(links_at(self->links, i)));
    }
    c->result =
        json_pack("{s:s, s:[s], s:{s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:o}}, s:o}", "id",
                  self->core->node_id, "endpoints", self->core->endpoint, "discovery", "local",
                  "state", self->core->disc_state[0][0] ? self->core->disc_state[0] : "off",
                  "detail", self->core->disc_detail[0], "mdns", "state",
                  self->core->disc_state[1][0] ? self->core->disc_state[1] : "off", "detail",
                  self->core->disc_detail[1], "instance", instance, "service", DISCOVERY_SERVICE,
                  "interfaces", s_interfaces(), "peers", peers);
    const char *arg = NULL;
    if (c->result && api_param_str(c->req, "peer", false, &arg, &c->msg) == 0 && arg) {
        uint8_t pk[32];
        const char *why = NULL;
        json_t *verdict;
        if (s_resolve_peer(self, arg, pk, &why) != PARLEY_OK) {
            verdict = json_pack("{s:s, s:s}", "peer", arg, "reason", why);
        } else if (!links_find(self->links, pk)) {
            verdict = json_pack("{s:o, s:s}", "id", core_json_id(pk), "reason",
                                "never seen: no seed, mDNS record, host-local file or earlier "
                                "connection names it");
        } else {
            verdict = s_doctor_peer(links_find(self->links, pk));
        }
        json_object_set_new(c->result, "peer", verdict);
    }
}

/* ---- private networks (network.h) ---- */

//  The end of a network method: its result, or its error and sentence.
static void
s_net_done(call_t *c, int rc, json_t *out, const char *why)
{
    if (rc == PARLEY_OK) {
        c->result = out;
    } else {
        json_decref(out);
        s_fail(c, rc, why);
    }
}

static bool
s_net_txn(call_t *c)
{
    int rc = core_txn(c->api->core);
    if (rc != PARLEY_OK) {
        s_fail(c, rc, NULL);
        return false;
    }
    return true;
}

static bool
s_role_param(call_t *c, const char *name, bool required, uint8_t *role)
{
    const char *arg = NULL;
    if (api_param_str(c->req, name, required, &arg, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return false;
    }
    if (!arg || strcmp(arg, "member") == 0) {
        *role = ROSTER_ROLE_MEMBER;
    } else if (strcmp(arg, "admin") == 0) {
        *role = ROSTER_ROLE_ADMIN;
    } else {
        c->rpc_code = API_ERR_PARAMS;
        c->msg = "role must be member or admin";
        return false;
    }
    return true;
}

static void
m_network_show(call_t *c)
{
    c->result = network_show(c->api->network);
}

static void
m_network_create(call_t *c)
{
    const char *name = NULL, *my_name = NULL, *why = NULL;
    if (api_param_str(c->req, "name", true, &name, &c->msg) != 0
        || api_param_str(c->req, "my_name", false, &my_name, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = network_create(c->api->network, name, my_name, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_network_log(call_t *c)
{
    uint64_t limit = 100;
    if (api_param_uint(c->req, "limit", false, &limit, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    c->result = network_log(c->api->network, limit > ROSTER_EVENTS_MAX ? 0 : (size_t)limit);
}

static void
m_network_leave(call_t *c)
{
    const char *why = NULL;
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = network_leave(c->api->network, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_invite_create(call_t *c)
{
    const char *label = NULL, *why = NULL;
    uint64_t ttl = 24 * 3600 * 1000, uses = 1;
    uint8_t role = ROSTER_ROLE_MEMBER;
    if (api_param_str(c->req, "label", false, &label, &c->msg) != 0
        || api_param_uint(c->req, "expires_ms", false, &ttl, &c->msg) != 0
        || api_param_uint(c->req, "uses", false, &uses, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    if (!s_role_param(c, "role", false, &role)) {
        return;
    }
    if (ttl == 0 || ttl > 365 * NODE_DAY_MS || uses == 0 || uses > ROSTER_INVITE_USES_MAX) {
        c->rpc_code = API_ERR_PARAMS;
        c->msg = "expires_ms must be 1 ms to a year, uses 1 to 1000";
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = network_invite(c->api->network, label, role, ttl, (uint16_t)uses, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_invite_list(call_t *c)
{
    c->result = network_invites(c->api->network);
}

static void
m_invite_revoke(call_t *c)
{
    const char *arg = NULL, *why = NULL;
    if (api_param_str(c->req, "invite", true, &arg, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = network_revoke(c->api->network, arg, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_join(call_t *c)
{
    const char *code = NULL, *name = NULL, *why = NULL;
    if (api_param_str(c->req, "code", true, &code, &c->msg) != 0
        || api_param_str(c->req, "name", false, &name, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    json_t *out = NULL;
    int rc = network_join(c->api->network, code, name, &out, &why);
    s_net_done(c, rc, out, why);
}

static void
m_member_remove(call_t *c)
{
    uint8_t pk[32];
    const char *reason = NULL, *why = NULL;
    if (!s_peer_param(c, "peer", pk)) {
        return;
    }
    if (api_param_str(c->req, "reason", false, &reason, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = network_remove(c->api->network, pk, reason, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_member_role(call_t *c)
{
    uint8_t pk[32], role = 0;
    const char *why = NULL;
    if (!s_peer_param(c, "peer", pk) || !s_role_param(c, "role", true, &role)) {
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = network_set_role(c->api->network, pk, role, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_relay_set(call_t *c)
{
    uint8_t pk[32];
    bool on = true;
    const char *why = NULL;
    if (!s_peer_param(c, "peer", pk)) {
        return;
    }
    if (api_param_bool(c->req, "on", &on, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = network_set_relay(c->api->network, pk, on, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

/* ---- channels (channel.h) ---- */

static void
m_channel_create(call_t *c)
{
    const char *name = NULL, *topic = NULL, *history = NULL, *why = NULL;
    bool announce = false, network_wide = false;
    if (api_param_str(c->req, "name", true, &name, &c->msg) != 0
        || api_param_str(c->req, "topic", false, &topic, &c->msg) != 0
        || api_param_str(c->req, "history", false, &history, &c->msg) != 0
        || api_param_bool(c->req, "announce", &announce, &c->msg) != 0
        || api_param_bool(c->req, "network", &network_wide, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    if (history && strcmp(history, "shared") != 0 && strcmp(history, "from-join") != 0) {
        c->rpc_code = API_ERR_PARAMS;
        c->msg = "history must be shared or from-join";
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = channels_create(c->api->channels, name, topic,
                                 history && strcmp(history, "shared") == 0, announce, network_wide,
                                 &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_channel_list(call_t *c)
{
    c->result = channels_list(c->api->channels);
}

static bool
s_channel_param(call_t *c, const char **name)
{
    if (api_param_str(c->req, "channel", true, name, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return false;
    }
    return true;
}

static void
m_channel_info(call_t *c)
{
    const char *name = NULL, *why = NULL;
    json_t *out = NULL;
    if (s_channel_param(c, &name)) {
        int rc = channels_info(c->api->channels, name, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_channel_add(call_t *c)
{
    const char *name = NULL, *why = NULL;
    uint8_t pk[32];
    if (!s_channel_param(c, &name) || !s_peer_param(c, "peer", pk)) {
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = channels_add(c->api->channels, name, pk, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_channel_remove(call_t *c)
{
    const char *name = NULL, *why = NULL;
    uint8_t pk[32];
    if (!s_channel_param(c, &name) || !s_peer_param(c, "peer", pk)) {
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = channels_remove(c->api->channels, name, pk, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_channel_leave(call_t *c)
{
    const char *name = NULL, *why = NULL;
    json_t *out = NULL;
    if (s_channel_param(c, &name) && s_net_txn(c)) {
        int rc = channels_leave(c->api->channels, name, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_channel_rekey(call_t *c)
{
    const char *name = NULL, *why = NULL;
    json_t *out = NULL;
    if (s_channel_param(c, &name) && s_net_txn(c)) {
        int rc = channels_rekey(c->api->channels, name, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_channel_role(call_t *c)
{
    const char *name = NULL, *arg = NULL, *why = NULL;
    uint8_t pk[32];
    if (!s_channel_param(c, &name) || !s_peer_param(c, "peer", pk)) {
        return;
    }
    if (api_param_str(c->req, "role", true, &arg, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    uint8_t role = strcmp(arg, "admin") == 0    ? ROSTER_ROLE_ADMIN
                   : strcmp(arg, "member") == 0 ? ROSTER_ROLE_MEMBER
                   : strcmp(arg, "reader") == 0 ? ROSTER_ROLE_READER
                                                : 0;
    if (role == 0) {
        c->rpc_code = API_ERR_PARAMS;
        c->msg = "role must be admin, member or reader (the owner is who created the channel)";
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = channels_set_role(c->api->channels, name, pk, role, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_channel_topic(call_t *c)
{
    const char *name = NULL, *topic = NULL, *why = NULL;
    if (!s_channel_param(c, &name)) {
        return;
    }
    if (api_param_str(c->req, "topic", true, &topic, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = channels_topic(c->api->channels, name, topic, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_channel_read(call_t *c)
{
    const char *name = NULL, *why = NULL;
    json_t *out = NULL;
    if (s_channel_param(c, &name) && s_net_txn(c)) {
        int rc = channels_read(c->api->channels, name, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_channel_send(call_t *c)
{
    const char *name = NULL, *text = NULL, *why = NULL;
    if (!s_channel_param(c, &name)) {
        return;
    }
    if (api_param_str(c->req, "text", true, &text, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    json_t *out = NULL;
    if (s_net_txn(c)) {
        int rc = channels_send(c->api->channels, name, text, &out, &why);
        s_net_done(c, rc, out, why);
    }
}

static void
m_channel_history(call_t *c)
{
    const char *name = NULL, *why = NULL, *before = NULL;
    uint64_t limit = 50;
    if (!s_channel_param(c, &name)) {
        return;
    }
    if (api_param_uint(c->req, "limit", false, &limit, &c->msg) != 0
        || api_param_str(c->req, "before", false, &before, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    //  0 (all) is a page too: a client pages back with before.
    json_t *out = NULL;
    int rc = channels_history(
        c->api->channels, name, before,
        limit == 0 || limit > API_HISTORY_MAX ? API_HISTORY_MAX : (size_t)limit, &out, &why);
    s_net_done(c, rc, out, why);
}

typedef struct {
    const char *name;
    void (*fn)(call_t *c);
} method_t;

static const method_t s_methods[] = {
    { "id", m_id },
    { "status", m_status },
    { "send", m_send },
    { "read", m_read },
    { "history", m_history },
    { "conversations", m_conversations },
    { "peers", m_peers },
    { "peers.forget", m_peers_forget },
    { "contacts.add", m_contacts_add },
    { "contacts.list", m_contacts_list },
    { "contacts.remove", m_contacts_remove },
    { "contacts.verify", m_contacts_verify },
    { "safety", m_safety },
    { "subscribe", m_subscribe },
    { "doctor", m_doctor },
    { "network.show", m_network_show },
    { "network.create", m_network_create },
    { "network.log", m_network_log },
    { "network.leave", m_network_leave },
    { "invite.create", m_invite_create },
    { "invite.list", m_invite_list },
    { "invite.revoke", m_invite_revoke },
    { "join", m_join },
    { "member.remove", m_member_remove },
    { "member.role", m_member_role },
    { "relay.set", m_relay_set },
    { "channel.create", m_channel_create },
    { "channel.list", m_channel_list },
    { "channel.info", m_channel_info },
    { "channel.add", m_channel_add },
    { "channel.remove", m_channel_remove },
    { "channel.leave", m_channel_leave },
    { "channel.rekey", m_channel_rekey },
    { "channel.role", m_channel_role },
    { "channel.topic", m_channel_topic },
    { "channel.send", m_channel_send },
    { "channel.read", m_channel_read },
    { "channel.history", m_channel_history },
};

/* ---- dispatch ---- */

//  Runs one checked request (or answers its parse error); returns its
//  response, or NULL for a notification (no id), which JSON-RPC leaves
//  unanswered. Consumes req.
static json_t *
s_one(api_t *self, uint64_t client, api_req_t *req, int code, const char *msg)
{
    json_t *reply;
    call_t c;
    memset(&c, 0, sizeof c);
    const method_t *m = NULL;
    for (size_t i = 0; code == 0 && i < sizeof s_methods / sizeof s_methods[0]; i++) {
        if (strcmp(s_methods[i].name, req->method) == 0) {
            m = &s_methods[i];
        }
    }
    if (code != 0) {
        //  An invalid request is answered even without an id: the spec says
        //  so, and a client that sent one needs to hear why.
        reply = api_error(req->id, code, msg);
        api_req_free(req);
        return reply;
    }
    if (!m) {
        reply = api_error(req->id, API_ERR_METHOD, "method not found");
    } else {
        c.api = self;
        c.client = client;
        c.req = req;
        m->fn(&c);
        if (c.rpc_code) {
            reply = api_error(req->id, c.rpc_code, c.msg ? c.msg : "invalid params");
            json_decref(c.result);
        } else if (c.status != PARLEY_OK || !c.result) {
            if (c.status == PARLEY_ERR_CORRUPT && !c.msg) {
                c.msg = CORE_DAMAGED_HINT;
            } else if (c.status == PARLEY_ERR_IO && !c.msg && self->core->sync_failed) {
                c.msg = CORE_UNSYNCED_HINT;
            }
            reply = api_error_parley(req->id, c.status ? c.status : PARLEY_ERR_NOMEM, c.msg);
            json_decref(c.result);
        } else {
            reply = api_result(req->id, c.result);
        }
    }
    if (!req->id) {
        json_decref(reply);
        reply = NULL;
    }
    api_req_free(req);
    return reply;
}

//  A batch: each element is a request of its own, answered in one array in
//  the same order; notifications in it get nothing, and a batch of only
//  notifications gets no reply at all.
static json_t *
s_batch(api_t *self, uint64_t client, json_t *batch)
{
    size_t n = json_array_size(batch);
    if (n == 0) {
        return api_error(NULL, API_ERR_INVALID, "invalid request: an empty batch");
    }
    if (n > API_BATCH_MAX) {
        char msg[96];
        snprintf(msg, sizeof msg, "invalid request: a batch holds at most %u requests",
                 API_BATCH_MAX);
        return api_error(NULL, API_ERR_INVALID, msg);
    }
    json_t *replies = json_array();
    for (size_t i = 0; replies && i < n; i++) {
        api_req_t req;
        const char *msg = NULL;
        json_t *elem = json_incref(json_array_get(batch, i));
        int code = api_req_check(elem, &req, &msg);
        json_t *reply = s_one(self, client, &req, code, msg);
        if (reply) {
            json_array_append_new(replies, reply);
        }
    }
    if (replies && json_array_size(replies) == 0) {
        json_decref(replies);
        replies = NULL;
    }
    return replies;
}

void
api_handle(api_t *self, uint64_t client, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    json_t *reply;
    if (!root) {
        reply = api_error(NULL, API_ERR_PARSE, "parse error: not valid JSON");
    } else if (json_is_array(root)) {
        reply = s_batch(self, client, root);
        json_decref(root);
    } else {
        api_req_t req;
        const char *msg = NULL;
        int code = api_req_check(root, &req, &msg);
        reply = s_one(self, client, &req, code, msg);
    }
    //  The reply leaves after the commit, or as an error if the iteration
    //  rolls back.
    core_reply(self->core, client, reply);
}
