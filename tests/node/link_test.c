/*  tests/node/link_test.c — link's self-test: the table and one link, at
 *  unit level over a core of its own (no store: link reads only the clock,
 *  the identity and the ban hook), on a clock the test sets by hand.
 *
 *  - links_get makes a link once (made callback, created flag), finds it by
 *    Ed25519 and by X25519 key, refuses a key that is no curve point;
 *  - eviction order (s_evict): past LINK_UNVERIFIED_MAX unverified links a
 *    new one evicts the unverified one idle longest (online or not), never
 *    a kept one nor a verified one; a full table evicts an offline verified one idle
 *    longest, never an online verified or kept one, and refuses a new key
 *    when nothing may go; removed links are told gone, then reaped;
 *  - dials past LINK_DIAL_MAX wait; one not up in LINK_DIAL_TIMEOUT_MS (no
 *    monitor is read here) is closed and retried, and an unverified link
 *    dropped after LINK_DIAL_TRIES, a kept one never;
 *  - link_set_online says when it changed the state; offline clears the
 *    route and keeps why; slots keep what each class put there;
 *  - strikes below the budget do not ban, reaching it calls core->ban once,
 *    the window restarts after it, a ban expires after LINK_BAN_MS;
 *  - a dial to a real node on loopback comes up (monitor event), carries a
 *    HELLO the node answers, and a ban closes it; a dial pinned to the wrong
 *    key never comes up and says why.
 *  link_check holds after every step.
 */
#include "testkit.h"

#include "../../node/core.h"
#include "../../node/link.h"
#include <sodium.h>
#include <string.h>
#include <zmq.h>

//  link.c's private budget (S_BAD_MAX, S_BAD_WINDOW_MS): mirrored here, so
//  a change to either fails this test until it is looked at.
#define S_BUDGET 512u
#define S_WINDOW_MS 60000u

typedef struct {
    core_t *core;
    size_t made;    /* links the table made */
    link_t *last;   /* the last one */
    size_t bans;    /* core->ban calls */
    link_t *banned; /* the last link banned */
    char why[64];   /* and why */
    size_t gone;    /* links removed (gone with a reason) */
    size_t reaped;  /* gone calls with no reason (about to be freed) */
    link_t *left;   /* the last link removed */
} s_seen_t;

static uint64_t
s_clock(void *arg)
{
    return *(const uint64_t *)arg;
}

static void
s_made(void *arg, link_t *link)
{
    s_seen_t *seen = arg;
    seen->made++;
    seen->last = link;
}

static void
s_gone(void *arg, link_t *link, const char *why)
{
    s_seen_t *seen = arg;
    if (why) {
        seen->gone++;
        seen->left = link;
        (void)link_set_online(link, false, why, core_now(seen->core));
    } else {
        seen->reaped++;
    }
}

//  What the node does (node.c s_ban): offline, then link_ban.
static void
s_ban(void *arg, link_t *link, const char *why)
{
    s_seen_t *seen = arg;
    seen->bans++;
    seen->banned = link;
    snprintf(seen->why, sizeof seen->why, "%s", why);
    (void)link_set_online(link, false, why, core_now(seen->core));
    link_ban(link, why, core_now(seen->core));
}

static void
s_check_all(const links_t *links)
{
    for (size_t i = 0; i < links_count(links); i++) {
        link_check(links_at(links, i));
    }
}

static void
s_key(uint8_t pk[32])
{
    uint8_t sk[64];
    crypto_sign_keypair(pk, sk);
    sodium_memzero(sk, sizeof sk);
}

static void
s_table(links_t *links, s_seen_t *seen)
{
    uint8_t a[32], b[32], ax[32], zero[32] = { 0 };
    s_key(a);
    s_key(b);
    CHECK(identity_ed_to_x(a, ax) == PARLEY_OK);
    CHECK(links_count(links) == 0);
    CHECK(links_find(links, a) == NULL && links_find_x(links, ax) == NULL);

    bool created = false;
    link_t *la = links_get(links, a, &created);
    CHECK(la && created && seen->made == 1 && seen->last == la);
    CHECK(memcmp(link_pk(la), a, 32) == 0 && memcmp(link_x_pk(la), ax, 32) == 0);
    //  Asked again: the same link, not made again.
    created = true;
    CHECK(links_get(links, a, &created) == la && !created && seen->made == 1);
    CHECK(links_find(links, a) == la && links_find_x(links, ax) == la);
    CHECK(links_find_x(links, a) == NULL); // an Ed25519 key is not its X25519 key

    link_t *lb = links_get(links, b, &created);
    CHECK(lb && lb != la && created && seen->made == 2);
    CHECK(links_count(links) == 2 && links_at(links, 0) == la && links_at(links, 1) == lb);

    //  No point on the curve: refused, nothing made.
    created = true;
    CHECK(links_get(links, zero, &created) == NULL && !created);
    CHECK(links_count(links) == 2 && seen->made == 2);

    //  A fresh link: offline, no DEALER, no route, no HELLO, source "inbound".
    CHECK(!link_online(la) && link_connected_since(la) == 0);
    CHECK(!link_dealer(la) && !link_monitor(la) && !link_dealer_up(la));
    const uint8_t any_rid[1] = { 1 };
    CHECK(!link_has_route(la) && !link_hello(la, any_rid, 1) && !link_caps_known(la));
    CHECK(strcmp(link_source(la), "inbound") == 0 && link_endpoint(la)[0] == '\0');
    link_set_source(la, "seed");
    link_set_source(la, "pex"); // the first source stays
    CHECK(strcmp(link_source(la), "seed") == 0);
    link_set_dealer_up(la, true); // no DEALER: cannot be up
    CHECK(!link_dealer_up(la));
    //  Nothing to send over: no DEALER, no route, no ROUTER.
    const uint8_t frame[2] = { PARLEY_PROTO_VERSION, 0 };
    CHECK(!links_send(links, la, frame, sizeof frame) && link_last_sent(la) == 0);
    s_check_all(links);
}

static void
s_online(link_t *l, uint64_t *now)
{
    CHECK(!link_set_online(l, false, "already", *now)); // offline → offline: no change
    CHECK(link_set_online(l, true, NULL, *now));
    CHECK(link_online(l) && link_connected_since(l) == *now && link_last_error(l)[0] == '\0');
    *now += 1000;
    CHECK(!link_set_online(l, true, NULL, *now));  // online → online: no change
    CHECK(link_connected_since(l) == *now - 1000); // and since stays
    uint8_t rid[LINK_ROUTE_MAX];
    memset(rid, 0xA5, sizeof rid);
    link_set_route(l, rid, sizeof rid); // the longest route fits
    CHECK(link_has_route(l));
    link_check(l);
    link_set_hello(l, rid, sizeof rid);
    link_set_caps(l, true);
    link_seen(l, *now);
    CHECK(link_hello(l, rid, sizeof rid) && link_caps_known(l) && link_relay(l)
          && link_last_seen(l) == *now);
    //  The HELLO belongs to its connection: another one (a prefix of the
    //  route, or one byte off) has not said it.
    CHECK(!link_hello(l, rid, sizeof rid - 1));
    uint8_t other[LINK_ROUTE_MAX];
    memcpy(other, rid, sizeof other);
    other[0] ^= 1;
    CHECK(!link_hello(l, other, sizeof other));

    CHECK(link_set_online(l, false, "ping timeout", *now));
    CHECK(!link_online(l) && link_connected_since(l) == 0);
    CHECK(strcmp(link_last_error(l), "ping timeout") == 0);
    CHECK(!link_has_route(l));             // that connection is not answered on any more
    CHECK(link_hello(l, rid, sizeof rid)); // its connection may have outlived the timeout
    CHECK(!link_set_online(l, false, "again", *now));
    CHECK(strcmp(link_last_error(l), "ping timeout") == 0);

    //  At time 0 a link online still reads online.
    CHECK(link_set_online(l, true, NULL, 0) && link_online(l) && link_connected_since(l) != 0);
    CHECK(link_set_online(l, false, "down", *now));
    link_check(l);
}

static void
s_slots(link_t *l)
{
    int a = 1, b = 2, c = 3;
    for (int s = 0; s < LINK_SLOTS; s++) {
        CHECK(link_slot(l, (link_slot_t)s) == NULL);
    }
    link_set_slot(l, LINK_SLOT_DELIVERY, &a);
    link_set_slot(l, LINK_SLOT_PEX, &b);
    link_set_slot(l, LINK_SLOT_REPLICA, &c);
    CHECK(link_slot(l, LINK_SLOT_DELIVERY) == &a && link_slot(l, LINK_SLOT_PEX) == &b
          && link_slot(l, LINK_SLOT_REPLICA) == &c);
    link_set_slot(l, LINK_SLOT_PEX, NULL);
    CHECK(link_slot(l, LINK_SLOT_PEX) == NULL && link_slot(l, LINK_SLOT_REPLICA) == &c);
    //  The table asserts every slot is freed before it frees a link.
    link_set_slot(l, LINK_SLOT_DELIVERY, NULL);
    link_set_slot(l, LINK_SLOT_REPLICA, NULL);
}

static void
s_strikes(links_t *links, link_t *l, s_seen_t *seen, uint64_t *now)
{
    size_t bans = seen->bans;
    //  Just under the budget in one window: no ban.
    links_strike(links, l, "bad frame", S_BUDGET - 2);
    *now += 1000;
    links_strike(links, l, "bad frame", 1);
    CHECK(seen->bans == bans && !link_banned(l, *now));
    //  The window restarts once S_WINDOW_MS passed since its first strike.
    *now += S_WINDOW_MS;
    links_strike(links, l, "bad frame", 2);
    CHECK(seen->bans == bans && !link_banned(l, *now));
    //  Reaching the budget bans, once: further bad input while banned does not
    //  call the ban again.
    links_strike(links, l, "bad frame", S_BUDGET - 4);
    CHECK(seen->bans == bans);
    uint64_t banned_at = *now;
    links_strike(links, l, "forged envelope", 2); // exactly S_BUDGET
    CHECK(seen->bans == bans + 1 && seen->banned == l && strcmp(seen->why, "forged envelope") == 0);
    CHECK(link_banned(l, *now) && !link_online(l));
    CHECK(strcmp(link_last_error(l), "banned: forged envelope") == 0);
    links_strike(links, l, "bad frame", S_BUDGET);
    *now += LINK_BAN_MS / 2;
    links_strike(links, l, "bad frame", S_BUDGET);
    CHECK(seen->bans == bans + 1);
    //  The ban lasts LINK_BAN_MS on the core's clock, not a millisecond more.
    CHECK(link_banned(l, banned_at + LINK_BAN_MS - 1));
    CHECK(!link_banned(l, banned_at + LINK_BAN_MS));
    *now = banned_at + LINK_BAN_MS + 1;
    CHECK(!link_banned(l, *now));
    //  After it, a fresh window: one small strike does not ban again...
    links_strike(links, l, "bad frame", 1);
    CHECK(seen->bans == bans + 1 && !link_banned(l, *now));
    //  ...but a full budget does.
    links_strike(links, l, "bad frame", S_BUDGET - 1);
    CHECK(seen->bans == bans + 2 && link_banned(l, *now));

    //  link_strike alone: the same accounting, on another link.
    uint8_t pk[32];
    s_key(pk);
    bool created = false;
    link_t *m = links_get(links, pk, &created);
    CHECK(m && created);
    CHECK(!link_strike(m, S_BUDGET - 1, *now));
    CHECK(link_strike(m, 1, *now));
    link_ban(m, "test", *now);
    CHECK(!link_strike(m, 1, *now));                          // banned: nothing more to do
    CHECK(!link_strike(m, S_BUDGET, *now + LINK_BAN_MS - 1)); // not counted while banned
    CHECK(!link_strike(m, 1, *now + LINK_BAN_MS));            // ban served: a new count
    CHECK(link_banned(m, *now) && strcmp(link_last_error(m), "banned: test") == 0);
    s_check_all(links);
}

//  A fresh key's link, made at *now (one ms later each, so idleness orders them).
static link_t *
s_new(links_t *links, uint64_t *now)
{
    uint8_t pk[32];
    s_key(pk);
    bool created = false;
    *now += 1;
    link_t *l = links_get(links, pk, &created);
    CHECK(l && created);
    return l;
}

static void
s_evict(links_t *links, s_seen_t *seen, uint64_t *now)
{
    core_t *core = seen->core;
    links_reap(links);
    for (size_t i = 0; i < links_count(links); i++) {
        link_set_verified(links_at(links, i));
    }
    //  Fill the unverified share: a kept one, an online one, then offline ones.
    link_t *kept = s_new(links, now);
    link_set_kept(kept, true);
    link_t *online = s_new(links, now);
    CHECK(link_set_online(online, true, "", *now));
    link_t *oldest = s_new(links, now);
    link_t *second = s_new(links, now);
    while (links_unverified(links) < LINK_UNVERIFIED_MAX) {
        (void)s_new(links, now);
    }
    link_seen(oldest, *now + 1); // they talked lately: second is now the one idle longest
    link_seen(online, *now + 1);
    *now += 1;
    size_t count = links_count(links);
    size_t gone = seen->gone;
    uint64_t evicted = core->counters[C_PEER_EVICTED];
    link_t *fresh = s_new(links, now);
    CHECK(links_count(links) == count && links_unverified(links) == LINK_UNVERIFIED_MAX);
    CHECK(seen->gone == gone + 1 && seen->left == second);
    CHECK(core->counters[C_PEER_EVICTED] == evicted + 1);
    CHECK(links_find(links, link_pk(second)) == NULL && links_find(links, link_pk(fresh)) == fresh);
    CHECK(links_find(links, link_pk(oldest)) == oldest && links_find(links, link_pk(kept)) == kept);
    size_t reaped = seen->reaped;
    links_reap(links);
    CHECK(seen->reaped == reaped + 1);
    //  Only unverified ones go while that share is full, idle longest first,
    //  online or not: as many new ones push out all made before but the kept
    //  one, and no verified one.
    size_t verified = links_count(links) - links_unverified(links);
    for (size_t k = 0; k < LINK_UNVERIFIED_MAX; k++) {
        (void)s_new(links, now);
    }
    CHECK(links_find(links, link_pk(online)) == NULL && links_find(links, link_pk(oldest)) == NULL);
    CHECK(links_find(links, link_pk(kept)) == kept);
    CHECK(links_count(links) - links_unverified(links) == verified);
    links_reap(links);

    //  A full table of verified links: an offline one idle longest goes,
    //  never an online verified or a kept one.
    for (size_t i = 0; i < links_count(links); i++) {
        link_t *l = links_at(links, i);
        if (l != kept) {
            link_set_verified(l);
        }
    }
    link_t *vonline = NULL, *voldest = NULL;
    while (links_count(links) < LINK_TABLE_MAX) {
        link_t *l = s_new(links, now);
        link_set_verified(l);
        if (!vonline) {
            vonline = l;
            CHECK(link_set_online(l, true, "", *now));
        }
    }
    //  The verified ones idle longest are the early ones of the table:
    //  keep them all busy but one.
    for (size_t i = 0; i < links_count(links); i++) {
        link_t *l = links_at(links, i);
        if (l != kept && !link_online(l) && !voldest) {
            voldest = l;
        } else {
            link_seen(l, *now + 10);
        }
    }
    *now += 20;
    CHECK(voldest);
    evicted = core->counters[C_PEER_EVICTED];
    fresh = s_new(links, now);
    CHECK(seen->left == voldest && core->counters[C_PEER_EVICTED] == evicted + 1);
    CHECK(links_count(links) == LINK_TABLE_MAX && links_find(links, link_pk(vonline)) == vonline);
    links_reap(links);
    //  The new one (unverified) is the next to go for another.
    link_t *fresh2 = s_new(links, now);
    CHECK(seen->left == fresh && links_find(links, link_pk(fresh2)) == fresh2);
    links_reap(links);

    //  Nothing may go: every verified one online, the rest kept. Refused.
    for (size_t i = 0; i < links_count(links); i++) {
        link_t *l = links_at(links, i);
        if (!link_verified(l)) {
            link_set_kept(l, true);
        }
        (void)link_set_online(l, true, "", *now);
    }
    uint8_t pk[32];
    s_key(pk);
    bool created = true;
    uint64_t refused = core->counters[C_PEER_REFUSED];
    CHECK(links_get(links, pk, &created) == NULL && !created);
    CHECK(core->counters[C_PEER_REFUSED] == refused + 1 && links_find(links, pk) == NULL);
    CHECK(links_count(links) == LINK_TABLE_MAX);
    s_check_all(links);
}

//  Dials to a closed port: LINK_DIAL_MAX connect at once, the rest wait;
//  each attempt is closed after LINK_DIAL_TIMEOUT_MS; unverified links go
//  after LINK_DIAL_TRIES, a kept one stays.
static void
s_dial_queue(links_t *links, s_seen_t *seen, uint64_t *now)
{
    core_t *core = seen->core;
    size_t base = links_dialling(links);
    CHECK(base == 0);
    link_t *kept = s_new(links, now);
    link_set_kept(kept, true);
    CHECK(links_dial(links, kept, "tcp://127.0.0.1:1") == PARLEY_OK);
    enum { N = LINK_DIAL_MAX + 8 };
    uint8_t pks[N][32];
    for (size_t i = 0; i < N; i++) {
        link_t *l = s_new(links, now);
        memcpy(pks[i], link_pk(l), 32);
        CHECK(links_dial(links, l, "tcp://127.0.0.1:1") == PARLEY_OK);
        CHECK(links_dialling(links) <= LINK_DIAL_MAX);
    }
    CHECK(links_dialling(links) == LINK_DIAL_MAX);
    uint64_t dropped = core->counters[C_DIAL_DROPPED];
    for (int round = 0; round < 200; round++) {
        *now += 1000;
        links_tick(links, *now);
        CHECK(links_dialling(links) <= LINK_DIAL_MAX && links_dealers(links) <= LINK_DEALER_MAX);
        s_check_all(links);
        links_reap(links);
    }
    CHECK(core->counters[C_DIAL_DROPPED] == dropped + N);
    for (size_t i = 0; i < N; i++) {
        CHECK(links_find(links, pks[i]) == NULL);
    }
    CHECK(links_find(links, link_pk(kept)) == kept);
    link_undial(kept);
}

//  The next monitor event that is not NONE or RETRIED within ms.
static link_event_t
s_next_event(link_t *l, int ms)
{
    uint64_t end = tk_ms() + (uint64_t)ms;
    while (tk_ms() < end) {
        zmq_pollitem_t item = { link_monitor(l), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&item, 1, 50) > 0) {
            link_event_t ev = link_monitor_recv(l);
            link_check(l);
            if (ev != LINK_EV_NONE && ev != LINK_EV_RETRIED) {
                return ev;
            }
        }
    }
    return LINK_EV_NONE;
}

//  A dial to a node on loopback, as its peer: our HELLO goes over the DEALER
//  and the node answers on it.
static void
s_dial(links_t *links, s_seen_t *seen, tk_node_t *n, uint64_t *now)
{
    const char *ep = parley_endpoint(n->node);
    bool created = false;
    link_t *l = links_get(links, n->pk, &created);
    CHECK(l && created);
    CHECK(links_dial(links, l, ep) == PARLEY_OK);
    void *dealer = link_dealer(l);
    CHECK(dealer && link_monitor(l) && !link_dealer_up(l));
    CHECK(strcmp(link_endpoint(l), ep) == 0 && strcmp(link_last_error(l), "connecting") == 0);
    CHECK(links_dial(links, l, ep) == PARLEY_OK && link_dealer(l) == dealer); // once
    link_check(l);
    CHECK(s_next_event(l, 10000) == LINK_EV_UP);
    CHECK(link_dealer_up(l));

    uint8_t buf[1024];
    size_t len = 0;
    const char *eps[1] = { "tcp://127.0.0.1:1" };
    CHECK(
        frame_encode_hello(identity_ed_pk(seen->core->id), 0, "open", eps, 1, buf, sizeof buf, &len)
        == PARLEY_OK);
    CHECK(links_send(links, l, buf, len));
    CHECK(link_last_sent(l) == *now);
    //  The node answers over the same connection: its HELLO, among others.
    bool hello = false;
    uint64_t end = tk_ms() + 10000;
    static uint8_t in[PARLEY_FRAME_MAX];
    while (!hello && tk_ms() < end) {
        zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&item, 1, 50) > 0) {
            int r = zmq_recv(dealer, in, sizeof in, ZMQ_DONTWAIT);
            frame_t f;
            hello = r > 0 && frame_decode(in, (size_t)r, &f) == PARLEY_OK && f.type == FRAME_HELLO
                    && memcmp(f.ed_pk, n->pk, 32) == 0;
        }
    }
    CHECK(hello);
    char me[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(seen->core->id), me);
    TK_WAIT(10000, tk_online(n, me));
    link_check(l);

    //  A ban closes our DEALER and its monitor; the link stays in the table.
    size_t count = links_count(links);
    link_ban(l, "test over", *now);
    CHECK(!link_dealer(l) && !link_monitor(l) && !link_dealer_up(l));
    CHECK(link_banned(l, *now) && links_count(links) == count && links_find(links, n->pk) == l);
    link_check(l);
    link_undial(l); // twice: harmless
    link_check(l);

    //  Pinned to a key the node does not hold: never up, and it says why.
    uint8_t other[32];
    s_key(other);
    link_t *w = links_get(links, other, &created);
    CHECK(w && created);
    CHECK(links_dial(links, w, ep) == PARLEY_OK);
    link_event_t ev = s_next_event(w, 10000);
    CHECK(ev == LINK_EV_DOWN || ev == LINK_EV_FAILED);
    CHECK(!link_dealer_up(w) && strncmp(link_last_error(w), "handshake", 9) == 0);
    CHECK(!links_send(links, w, buf, len));
    link_undial(w);
    link_check(w);
}

//  With a link policy (neighbours > 0) a new link is not wanted: a dial
//  only records where it is, until the policy wants it; a closed link keeps
//  its endpoint, and a send to it (links_use) dials it again at once.
static void
s_wanted(links_t *links, core_t *core)
{
    core->cfg.neighbours = 8;
    uint8_t pk[32];
    identity_t *id = identity_new();
    CHECK(id);
    memcpy(pk, identity_ed_pk(id), 32);
    bool created = false;
    link_t *l = links_get(links, pk, &created);
    CHECK(l && created && !link_wanted(l));
    const char *ep = "tcp://127.0.0.1:9";
    CHECK(links_dial(links, l, ep) == PARLEY_OK);
    CHECK(!link_dealer(l) && strcmp(link_dial_endpoint(l), ep) == 0);
    CHECK(strstr(link_last_error(l), "not linked"));
    links_tick(links, core_now(core));
    CHECK(!link_dealer(l)); // still not wanted
    link_set_wanted(l, true);
    links_tick(links, core_now(core));
    CHECK(link_dealer(l) && link_opened_ms(l) == core_now(core));
    link_set_wanted(l, false);
    link_close(l);
    CHECK(!link_dealer(l) && strcmp(link_dial_endpoint(l), ep) == 0);
    links_use(links, pk);
    CHECK(link_wanted(l) && link_dealer(l) && link_used_ms(l) == core_now(core));
    links_remove(links, l, "test over");
    links_reap(links);
    identity_destroy(&id);
    //  One connection per pair: a lower key online over its own connection
    //  to us (its route) is served, and a send does not dial it; a higher
    //  key is not served.
    for (int lower = 0; lower < 2; lower++) {
        do {
            identity_destroy(&id);
            id = identity_new();
            CHECK(id);
        } while ((memcmp(identity_ed_pk(id), identity_ed_pk(core->id), 32) < 0) != (lower == 1));
        l = links_get(links, identity_ed_pk(id), &created);
        CHECK(l && created);
        CHECK(links_dial(links, l, ep) == PARLEY_OK);
        CHECK(!links_served(links, l));
        const uint8_t rid[5] = { 0, 1, 2, 3, 4 };
        link_set_route(l, rid, sizeof rid);
        CHECK(!links_served(links, l)); // not online yet
        CHECK(link_set_online(l, true, "", core_now(core)));
        CHECK(links_served(links, l) == (lower == 1));
        links_use(links, identity_ed_pk(id));
        CHECK(link_wanted(l) == (lower == 0));
        CHECK((link_dealer(l) != NULL) == (lower == 0));
        links_remove(links, l, "test over");
        links_reap(links);
    }
    identity_destroy(&id);
    core->cfg.neighbours = 0;
}

void
link_test(bool verbose)
{
    char dir[256];
    tk_dir(dir, sizeof dir);
    uint64_t now = 1700000000000ull;
    node_config_t cfg;
    node_config_default(&cfg);
    cfg.home = dir;
    cfg.clock = s_clock;
    cfg.clock_arg = &now;
    cfg.neighbours = 0; // the table alone: every link wanted (s_wanted turns the policy on)
    core_t core;
    CHECK(core_init(&core, &cfg) == PARLEY_OK);
    CHECK(core_now(&core) == now);
    core.id = identity_new();
    CHECK(core.id);
    s_seen_t seen = { .core = &core };
    core.ban = s_ban;
    core.ban_arg = &seen;
    void *ctx = zmq_ctx_new();
    CHECK(ctx);
    links_t *links = links_new(&core, ctx, s_made, s_gone, &seen);
    CHECK(links);

    s_table(links, &seen);
    link_t *l = links_at(links, 0);
    s_online(l, &now);
    s_slots(l);
    s_strikes(links, l, &seen, &now);

    tk_opts_t opts = { .verbose = verbose };
    tk_node_t *n = tk_node_start(dir, "node", &opts);
    s_dial(links, &seen, n, &now);
    s_dial_queue(links, &seen, &now);
    s_wanted(links, &core);
    s_evict(links, &seen, &now);

    links_destroy(&links);
    CHECK(links == NULL);
    links_destroy(&links); // NULL-safe
    CHECK(zmq_ctx_term(ctx) == 0);
    tk_node_stop(&n);
    identity_destroy(&core.id);
    core_fini(&core);
    tk_dir_remove(dir);
}
