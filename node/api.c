/*  node/api.c — the local API: JSON-RPC 2.0 over a Unix socket in the home.
 *
 *  api.sock is created mode 0600 (umask 077 around bind), so only the owner
 *  of the home can drive the node. Each client sends one request per line
 *  (at most PARLEY_API_LINE_MAX bytes; a longer line gets an error and the
 *  client is dropped) and receives one response line per request, in order.
 *  After "subscribe" it also receives notification lines: "message",
 *  "delivery", "peer", "warning". Output is buffered per client; a client that
 *  lets more than S_OUT_MAX bytes pile up is disconnected rather than letting
 *  it hold the node's memory. Methods are documented in README.md.
 *
 *  Replies are queued while the loop iteration's transaction is open and
 *  written by api_flush() after the commit: "send" answers only once the
 *  message is durable.
 */
#include "node_internal.h"

#include "../proto/b32.h"
#include "api_req.h"
#include "home.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#define S_CLIENTS_MAX 64u
#define S_OUT_MAX (64u * 1024u * 1024u)
#define S_READ_CHUNK 65536u

struct api_client {
    int fd;   /* connected socket, non-blocking */
    char *in; /* bytes received, not yet a whole line */
    size_t in_len;
    char *out; /* bytes to write */
    size_t out_len;
    size_t out_off;  /* written so far */
    bool subscribed; /* receives notifications */
    bool closing;    /* drop after the output drains */
    bool dead;       /* drop now */
};

/* ---- JSON views ---- */

const char *
node_state_name(int state)
{
    switch (state) {
    case MSG_STATE_QUEUED: return "queued";
    case MSG_STATE_STORED: return "stored";
    case MSG_STATE_RELAYED: return "relayed";
    case MSG_STATE_DELIVERED: return "delivered";
    case MSG_STATE_READ: return "read";
    case MSG_STATE_RECEIVED: return "received";
    case MSG_STATE_OPENED: return "opened";
    default: return "unknown";
    }
}

static json_t *
s_hex(const uint8_t *data, size_t n)
{
    char text[129];
    if (n > 64 || hex_encode(data, n, text, sizeof text) != PARLEY_OK) {
        return json_null();
    }
    return json_string(text);
}

static json_t *
s_id_json(const uint8_t pk[32])
{
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(pk, id);
    return json_string(id);
}

static json_t *
s_short_json(const uint8_t pk[32])
{
    char sid[PARLEY_SHORT_ID_STRLEN + 1];
    identity_short_id(pk, sid);
    return json_string(sid);
}

json_t *
node_msg_json(node_t *self, const store_msg_t *msg)
{
    const uint8_t *from = msg->outgoing ? identity_ed_pk(self->id) : msg->peer;
    store_contact_t contact;
    json_t *name = store_contact_by_pk(self->store, msg->peer, &contact) == PARLEY_OK
                       ? json_string(contact.name)
                       : json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:I, s:I, s:s, s:s}", "msg_id",
                     s_hex(msg->msg_id, sizeof msg->msg_id), "envelope_id",
                     msg->has_env ? s_hex(msg->env_id, 32) : json_null(), "peer",
                     s_id_json(msg->peer), "peer_short", s_short_json(msg->peer), "peer_name", name,
                     "from", s_id_json(from), "outgoing", msg->outgoing, "ts_ms",
                     (json_int_t)msg->ts_ms, "seq", (json_int_t)msg->seq, "state",
                     node_state_name(msg->state), "text", msg->text ? msg->text : "");
}

/* ---- peer names ---- */

static bool
s_prefix_of(const uint8_t pk[32], const char *arg, size_t len)
{
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(pk, id);
    return strncasecmp(id, arg, len) == 0;
}

int
node_resolve_peer(node_t *self, const char *arg, uint8_t pk[32], const char **why)
{
    size_t len = strlen(arg);
    //  A peer with a link was validated when the link was made: skip the
    //  point check (a field inversion) that parsing a new id costs.
    if (len == PARLEY_NODE_ID_STRLEN && b32_decode(arg, pk, 32) == PARLEY_OK
        && node_link_find(self, pk)) {
        return PARLEY_OK;
    }
    if (len == PARLEY_NODE_ID_STRLEN && identity_parse_node_id(arg, pk) == PARLEY_OK) {
        return PARLEY_OK;
    }
    store_contact_t c;
    if (store_contact_by_name(self->store, arg, &c) == PARLEY_OK) {
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
    if (store_peer_list(self->store, &peers, &n) == PARLEY_OK) {
        for (size_t i = 0; i < n; i++) {
            if (s_prefix_of(peers[i].pk, arg, len)
                && (matches == 0 || sodium_memcmp(found, peers[i].pk, 32) != 0)) {
                memcpy(found, peers[i].pk, 32);
                matches++;
            }
        }
        free(peers);
    }
    for (size_t i = 0; i < self->n_links; i++) {
        const uint8_t *lpk = self->links[i]->pk;
        if (s_prefix_of(lpk, arg, len) && (matches == 0 || sodium_memcmp(found, lpk, 32) != 0)) {
            memcpy(found, lpk, 32);
            matches++;
        }
    }
    store_contact_t *contacts = NULL;
    if (store_contact_list(self->store, &contacts, &n) == PARLEY_OK) {
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
    node_t *node;
    api_client_t *client;
    const api_req_t *req;
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
    int rc = node_resolve_peer(c->node, arg, pk, &why);
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
    node_t *self = c->node;
    char fp[50];
    identity_fingerprint(identity_ed_pk(self->id), fp);
    c->result = json_pack("{s:s, s:o, s:s}", "id", self->node_id, "short_id",
                          s_short_json(identity_ed_pk(self->id)), "fingerprint", fp);
}

static void
m_status(call_t *c)
{
    node_t *self = c->node;
    store_stats_t st;
    if (store_stats(self->store, &st) != PARLEY_OK) {
        s_fail(c, PARLEY_ERR_IO, "cannot read the database statistics");
        return;
    }
    json_t *rejected = json_object();
    for (int i = 0; i < C_COUNTERS; i++) {
        json_object_set_new(rejected, node_counter_names[i],
                            json_integer((json_int_t)self->counters[i]));
    }
    size_t online = 0;
    for (size_t i = 0; i < self->n_links; i++) {
        online += node_link_online(self, self->links[i]);
    }
    c->result = json_pack(
        "{s:s, s:o, s:[s], s:s, s:I, s:{s:i, s:i}, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:o}", "id",
        self->node_id, "short_id", s_short_json(identity_ed_pk(self->id)), "endpoints",
        self->endpoint, "home", self->home, "uptime_ms",
        (json_int_t)(node_now_ms() - self->started_ms), "peers", "online", (int)online, "known",
        (int)self->n_links, "log", "envelopes", (json_int_t)st.envelopes, "messages",
        (json_int_t)st.messages, "outbox", (json_int_t)st.outbox, "queued", (json_int_t)st.queued,
        "equivocations", (json_int_t)st.equivocations, "db_bytes", (json_int_t)st.db_bytes,
        "rejected", rejected);
    if (c->result) {
        json_object_set_new(c->result, "discovery",
                            json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "local", "state",
                                      self->disc_state[0][0] ? self->disc_state[0] : "off",
                                      "detail", self->disc_detail[0], "mdns", "state",
                                      self->disc_state[1][0] ? self->disc_state[1] : "off",
                                      "detail", self->disc_detail[1]));
        json_object_set_new(c->result, "sync", replica_status(self));
    }
}

//  Marks what peer sent us read; the peer hears of it unless read receipts
//  are off.
static void
m_read(call_t *c)
{
    uint8_t peer[32];
    if (!s_peer_param(c, "peer", peer)) {
        return;
    }
    size_t n = 0;
    int rc = node_mark_read(c->node, peer, &n);
    if (rc != PARLEY_OK) {
        s_fail(c, rc, NULL);
        return;
    }
    c->result = json_pack("{s:I, s:b}", "marked", (json_int_t)n, "receipts",
                          !c->node->cfg.no_read_receipts);
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
    int rc = node_send_text(c->node, peer, text, strlen(text), ttl_ms, &msg);
    if (rc == PARLEY_OK) {
        c->result = node_msg_json(c->node, &msg);
    } else if (rc == PARLEY_ERR_STATE) {
        s_fail(c, rc, "cannot send a message to yourself");
    } else if (rc == PARLEY_ERR_LIMIT) {
        s_fail(c, rc, "text must be 1 to 32766 bytes");
    } else if (rc == PARLEY_ERR_MALFORMED) {
        s_fail(c, rc, "text must be valid UTF-8 without NUL");
    } else {
        s_fail(c, rc, NULL);
    }
    free(msg.text);
}

static void
m_history(call_t *c)
{
    uint8_t peer[32];
    uint64_t limit = 50;
    if (!s_peer_param(c, "peer", peer)) {
        return;
    }
    if (api_param_uint(c->req, "limit", false, &limit, &c->msg) != 0) {
        c->rpc_code = API_ERR_PARAMS;
        return;
    }
    store_msg_t *msgs = NULL;
    size_t n = 0;
    int rc =
        store_history(c->node->store, peer, (size_t)(limit > 100000 ? 100000 : limit), &msgs, &n);
    if (rc != PARLEY_OK) {
        s_fail(c, rc, NULL);
        return;
    }
    c->result = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(c->result, node_msg_json(c->node, &msgs[i]));
    }
    store_msgs_free(msgs, n);
}

static void
m_peers(call_t *c)
{
    node_t *self = c->node;
    c->result = json_array();
    for (size_t i = 0; i < self->n_links; i++) {
        link_t *l = self->links[i];
        store_peer_t p;
        bool known = store_peer_get(self->store, l->pk, &p) == PARLEY_OK;
        store_contact_t contact;
        json_t *name = store_contact_by_pk(self->store, l->pk, &contact) == PARLEY_OK
                           ? json_string(contact.name)
                           : json_null();
        const char *ep = l->endpoint[0] ? l->endpoint : known ? p.endpoint : "";
        uint64_t last = l->last_seen ? l->last_seen : known ? p.last_seen_ms : 0;
        json_array_append_new(
            c->result, json_pack("{s:o, s:o, s:o, s:s, s:b, s:I, s:I, s:s, s:s, s:s}", "id",
                                 s_id_json(l->pk), "short_id", s_short_json(l->pk), "name", name,
                                 "endpoint", ep, "online", node_link_online(self, l),
                                 "connected_since", (json_int_t)l->connected_since, "last_seen",
                                 (json_int_t)last, "direction", l->dealer ? "outbound" : "inbound",
                                 "source", l->source[0] ? l->source : "inbound", "last_error",
                                 node_link_online(self, l) ? "" : l->last_error));
    }
}

static json_t *
s_contact_json(const store_contact_t *ct)
{
    return json_pack("{s:s, s:o, s:o, s:b, s:I}", "name", ct->name, "id", s_id_json(ct->pk),
                     "short_id", s_short_json(ct->pk), "verified", ct->verified, "added_ms",
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
    node_t *self = c->node;
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
    if (sodium_memcmp(pk, identity_ed_pk(self->id), 32) == 0) {
        s_fail(c, PARLEY_ERR_STATE, "that is your own id");
        return;
    }
    store_contact_t old;
    int rc = store_contact_by_name(self->store, name, &old);
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
    if (store_contact_by_pk(self->store, pk, &other) == PARLEY_OK && strcmp(other.name, name)) {
        snprintf(c->msgbuf, sizeof c->msgbuf, "that id is already your contact '%s'", other.name);
        s_fail(c, PARLEY_ERR_EXISTS, c->msgbuf);
        return;
    }
    bool verified = rc == PARLEY_OK && !changed && old.verified;
    if (node_txn(self) != PARLEY_OK
        || store_contact_put(self->store, name, pk, verified, node_now_ms()) != PARLEY_OK
        || store_contact_by_name(self->store, name, &old) != PARLEY_OK) {
        s_fail(c, PARLEY_ERR_IO, "cannot save the contact");
        return;
    }
    if (changed) {
        node_log(self, 0, "contact %s: key replaced by the user", name);
        node_notify(self, "warning",
                    json_pack("{s:s, s:s}", "kind", "key_changed", "contact", name));
    }
    c->result = s_contact_json(&old);
}

static void
m_contacts_list(call_t *c)
{
    store_contact_t *cts = NULL;
    size_t n = 0;
    int rc = store_contact_list(c->node->store, &cts, &n);
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
    int rc = node_txn(c->node);
    if (rc == PARLEY_OK) {
        rc = store_contact_remove(c->node->store, name);
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
    int rc = store_contact_by_pk(c->node->store, pk, &ct);
    if (rc == PARLEY_ERR_NOTFOUND) {
        s_fail(c, rc, "add the peer as a contact first (parley contacts add ID NAME)");
        return;
    }
    if (rc == PARLEY_OK) {
        rc = node_txn(c->node);
    }
    if (rc == PARLEY_OK) {
        rc = store_contact_set_verified(c->node->store, pk, true);
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
    if (identity_safety_number(identity_ed_pk(c->node->id), pk, digits) != PARLEY_OK) {
        s_fail(c, PARLEY_ERR_CRYPTO, NULL);
        return;
    }
    store_contact_t ct;
    bool verified = store_contact_by_pk(c->node->store, pk, &ct) == PARLEY_OK && ct.verified;
    c->result = json_pack("{s:o, s:s, s:b}", "peer", s_id_json(pk), "safety_number", digits,
                          "verified", verified);
}

static void
m_subscribe(call_t *c)
{
    c->client->subscribed = true;
    c->result = json_pack("{s:b}", "subscribed", 1);
}

/*  Multicast-capable interfaces that are up (mDNS runs on these unless
 *  Avahi's own allow-interfaces says otherwise), with their IPv4 addresses. */
static json_t *
s_interfaces(void)
{
    json_t *arr = json_array();
    node_iface_t ifs[32];
    size_t n = node_interfaces(ifs, 32);
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
    if (l->connected_since != 0) {
        return "connected";
    }
    if (!l->dealer) {
        return "seen only when it connected to us; no endpoint to dial it back (no seed, "
               "no discovery record)";
    }
    if (strncmp(l->last_error, "handshake", 9) == 0) {
        return "refused or key mismatch: the node at that endpoint does not hold the pinned "
               "key, or it refused us";
    }
    if (strcmp(l->last_error, "unreachable endpoint") == 0) {
        return "unreachable endpoint: nothing accepts connections there (node down, wrong "
               "address, or a firewall)";
    }
    if (strcmp(l->last_error, "connecting") == 0) {
        return "handshake timeout: connecting, no answer yet";
    }
    return l->last_error[0] ? l->last_error : "offline";
}

static json_t *
s_doctor_peer(node_t *self, const link_t *l)
{
    return json_pack("{s:o, s:o, s:s, s:s, s:b, s:s}", "id", s_id_json(l->pk), "short_id",
                     s_short_json(l->pk), "source", l->source[0] ? l->source : "inbound",
                     "endpoint", l->endpoint, "online", node_link_online(self, l), "reason",
                     s_reason(l));
}

static void
m_doctor(call_t *c)
{
    node_t *self = c->node;
    char instance[32];
    snprintf(instance, sizeof instance, "parley-%.16s", self->node_id);
    json_t *peers = json_array();
    for (size_t i = 0; i < self->n_links; i++) {
        json_array_append_new(peers, s_doctor_peer(self, self->links[i]));
    }
    c->result = json_pack("{s:s, s:[s], s:{s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:o}}, s:o}", "id",
                          self->node_id, "endpoints", self->endpoint, "discovery", "local", "state",
                          self->disc_state[0][0] ? self->disc_state[0] : "off", "detail",
                          self->disc_detail[0], "mdns", "state",
                          self->disc_state[1][0] ? self->disc_state[1] : "off", "detail",
                          self->disc_detail[1], "instance", instance, "service", DISCOVERY_SERVICE,
                          "interfaces", s_interfaces(), "peers", peers);
    const char *arg = NULL;
    if (c->result && api_param_str(c->req, "peer", false, &arg, &c->msg) == 0 && arg) {
        uint8_t pk[32];
        const char *why = NULL;
        json_t *verdict;
        if (node_resolve_peer(self, arg, pk, &why) != PARLEY_OK) {
            verdict = json_pack("{s:s, s:s}", "peer", arg, "reason", why);
        } else if (!node_link_find(self, pk)) {
            verdict = json_pack("{s:o, s:s}", "id", s_id_json(pk), "reason",
                                "never seen: no seed, mDNS record, host-local file or earlier "
                                "connection names it");
        } else {
            verdict = s_doctor_peer(self, node_link_find(self, pk));
        }
        json_object_set_new(c->result, "peer", verdict);
    }
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
    { "peers", m_peers },
    { "contacts.add", m_contacts_add },
    { "contacts.list", m_contacts_list },
    { "contacts.remove", m_contacts_remove },
    { "contacts.verify", m_contacts_verify },
    { "safety", m_safety },
    { "subscribe", m_subscribe },
    { "doctor", m_doctor },
};

/* ---- client I/O ---- */

static void
s_queue(api_client_t *cl, const json_t *obj)
{
    size_t len = 0;
    char *line = api_dump_line(obj, &len);
    if (!line) {
        cl->dead = true;
        return;
    }
    if (cl->out_len - cl->out_off + len > S_OUT_MAX) {
        cl->dead = true; // a reader this slow would hold the node's memory
        free(line);
        return;
    }
    if (cl->out_off > 0) {
        memmove(cl->out, cl->out + cl->out_off, cl->out_len - cl->out_off);
        cl->out_len -= cl->out_off;
        cl->out_off = 0;
    }
    char *grown = realloc(cl->out, cl->out_len + len);
    if (!grown) {
        cl->dead = true;
        free(line);
        return;
    }
    cl->out = grown;
    memcpy(cl->out + cl->out_len, line, len);
    cl->out_len += len;
    free(line);
}

static void
s_handle_line(node_t *self, api_client_t *cl, const char *line, size_t len)
{
    api_req_t req;
    const char *msg = NULL;
    int code = api_req_parse(line, len, &req, &msg);
    if (code != 0) {
        json_t *err = api_error(NULL, code, msg);
        s_queue(cl, err);
        json_decref(err);
        return;
    }
    call_t c;
    memset(&c, 0, sizeof c);
    c.node = self;
    c.client = cl;
    c.req = &req;
    const method_t *m = NULL;
    for (size_t i = 0; i < sizeof s_methods / sizeof s_methods[0]; i++) {
        if (strcmp(s_methods[i].name, req.method) == 0) {
            m = &s_methods[i];
        }
    }
    json_t *reply;
    if (!m) {
        reply = api_error(req.id, API_ERR_METHOD, "method not found");
    } else {
        m->fn(&c);
        if (c.rpc_code) {
            reply = api_error(req.id, c.rpc_code, c.msg ? c.msg : "invalid params");
        } else if (c.status != PARLEY_OK || !c.result) {
            reply = api_error_parley(req.id, c.status ? c.status : PARLEY_ERR_NOMEM, c.msg);
            json_decref(c.result);
        } else {
            reply = api_result(req.id, c.result);
        }
    }
    //  JSON-RPC: a notification (no id) gets no response.
    if (req.id && reply) {
        s_queue(cl, reply);
    }
    json_decref(reply);
    api_req_free(&req);
}

static void
s_read(node_t *self, api_client_t *cl)
{
    char chunk[S_READ_CHUNK];
    ssize_t r = read(cl->fd, chunk, sizeof chunk);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (r <= 0) {
        cl->closing = true; // peer closed: finish writing what it asked for
        return;
    }
    char *grown = realloc(cl->in, cl->in_len + (size_t)r);
    if (!grown) {
        cl->dead = true;
        return;
    }
    cl->in = grown;
    memcpy(cl->in + cl->in_len, chunk, (size_t)r);
    cl->in_len += (size_t)r;
    size_t start = 0;
    for (size_t i = 0; i < cl->in_len; i++) {
        if (cl->in[i] == '\n') {
            if (i > start) {
                s_handle_line(self, cl, cl->in + start, i - start);
            }
            start = i + 1;
        }
    }
    memmove(cl->in, cl->in + start, cl->in_len - start);
    cl->in_len -= start;
    if (cl->in_len > PARLEY_API_LINE_MAX) {
        json_t *err = api_error(NULL, API_ERR_INVALID, "request line too long");
        s_queue(cl, err);
        json_decref(err);
        cl->closing = true;
        cl->in_len = 0;
    }
}

static void
s_write(api_client_t *cl)
{
    while (cl->out_off < cl->out_len) {
        ssize_t w = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno == EAGAIN) {
            return;
        }
        if (w <= 0) {
            cl->dead = true;
            return;
        }
        cl->out_off += (size_t)w;
    }
    cl->out_off = cl->out_len = 0;
}

static void
s_client_free(api_client_t *cl)
{
    close(cl->fd);
    free(cl->in);
    free(cl->out);
    free(cl);
}

static void
s_accept(node_t *self)
{
    for (;;) {
        int fd = accept4(self->api_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        api_client_t *cl = NULL;
        api_client_t **grown = NULL;
        if (self->n_clients < S_CLIENTS_MAX) {
            cl = calloc(1, sizeof *cl);
            grown = cl ? realloc(self->clients, (self->n_clients + 1) * sizeof *grown) : NULL;
        }
        if (!grown) {
            free(cl);
            close(fd); // over the client limit (or out of memory): refuse this one
            continue;
        }
        cl->fd = fd;
        self->clients = grown;
        self->clients[self->n_clients++] = cl;
    }
}

int
api_listen(node_t *self)
{
    int rc = home_path(self->home, "api.sock", self->api_path, sizeof self->api_path);
    if (rc != PARLEY_OK) {
        return rc;
    }
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(self->api_path) >= sizeof addr.sun_path) {
        return PARLEY_ERR_LIMIT;
    }
    memcpy(addr.sun_path, self->api_path, strlen(self->api_path) + 1);
    //  We hold the daemon lock, so a socket file left here is a dead node's.
    unlink(self->api_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return PARLEY_ERR_IO;
    }
    mode_t old = umask(0077);
    int b = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (b != 0 || chmod(self->api_path, 0600) != 0 || listen(fd, 64) != 0) {
        close(fd);
        return PARLEY_ERR_IO;
    }
    self->api_fd = fd;
    return PARLEY_OK;
}

void
api_close(node_t *self)
{
    for (size_t i = 0; i < self->n_clients; i++) {
        s_client_free(self->clients[i]);
    }
    free(self->clients);
    self->clients = NULL;
    self->n_clients = 0;
    if (self->api_fd >= 0) {
        close(self->api_fd);
        unlink(self->api_path);
        self->api_fd = -1;
    }
}

size_t
api_poll_count(const node_t *self)
{
    return 1 + self->n_clients;
}

void
api_poll_fill(node_t *self, void *items_v)
{
    zmq_pollitem_t *items = items_v;
    items[0] = (zmq_pollitem_t){ NULL, self->api_fd, ZMQ_POLLIN, 0 };
    for (size_t i = 0; i < self->n_clients; i++) {
        api_client_t *cl = self->clients[i];
        short ev = cl->closing ? 0 : ZMQ_POLLIN;
        if (cl->out_len > cl->out_off) {
            ev |= ZMQ_POLLOUT;
        }
        items[1 + i] = (zmq_pollitem_t){ NULL, cl->fd, ev, 0 };
    }
}

void
api_poll_handle(node_t *self, const void *items_v)
{
    const zmq_pollitem_t *items = items_v;
    size_t n = self->n_clients; // clients accepted below are polled next round
    for (size_t i = 0; i < n; i++) {
        api_client_t *cl = self->clients[i];
        if (items[1 + i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
            s_read(self, cl);
        }
    }
    if (items[0].revents & ZMQ_POLLIN) {
        s_accept(self);
    }
}

void
api_broadcast(node_t *self, const json_t *note)
{
    for (size_t i = 0; i < self->n_clients; i++) {
        if (self->clients[i]->subscribed && !self->clients[i]->dead) {
            s_queue(self->clients[i], note);
        }
    }
}

void
api_flush(node_t *self)
{
    size_t keep = 0;
    for (size_t i = 0; i < self->n_clients; i++) {
        api_client_t *cl = self->clients[i];
        if (!cl->dead) {
            s_write(cl);
        }
        bool drained = cl->out_len == cl->out_off;
        if (cl->dead || (cl->closing && drained)) {
            s_client_free(cl);
        } else {
            self->clients[keep++] = cl;
        }
    }
    self->n_clients = keep;
}
