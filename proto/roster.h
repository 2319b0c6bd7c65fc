/*  proto/roster.h — a private network's roster: signed network events and
 *  the deterministic fold of them into members, roles, relays and invites.
 *
 *  An event is the PLAINTEXT body of an envelope of kind ENVELOPE_KIND_NET
 *  whose scope is the 32-byte network id; the envelope's author signs it.
 *  Only members can connect to hold the events, but nothing in a body is
 *  secret: names, labels and reasons are readable by any holder.
 *  Integers are big-endian; str8 = u8 length, then that many bytes of valid
 *  UTF-8 holding no C0 control, DEL or C1 control.
 *
 *    u8 version (ROSTER_VERSION = 1) | u8 type | u8 n_parents (0..16) |
 *    n_parents × 32-byte envelope ids, strictly ascending | type fields:
 *
 *    CREATE 1  salt[16] | str8 network_name (1..64) | str8 founder_name (0..64)
 *    INVITE 2  invite_pk[32] | u8 role | u64 expires_ms | u16 uses (1..1000)
 *              | str8 label (0..64)
 *    REVOKE 3  invite_pk[32]
 *    JOIN   4  invite_pk[32] | str8 name (0..64) | proof[64]
 *    ADD    5  member_pk[32] | u8 role | str8 name (0..64)
 *    REMOVE 6  member_pk[32] | str8 reason (0..200)
 *    ROLE   7  member_pk[32] | u8 role
 *    RELAY  8  member_pk[32] | u8 on (0|1)
 *    CHANNEL 9 salt[16] | u8 flags (ROSTER_CHAN_*; other bits 0)
 *    REKEY  10 (nothing)
 *
 *  Roles: 1 member, 2 admin, 3 reader (a channel's only). Network id =
 * BLAKE2b-256("parley/network/v1\0"
 *  || founder Ed25519 pk || salt). JOIN proof = Ed25519 detached signature
 *  by the invite's secret key over "parley/join/v1\0" || network_id ||
 *  joiner pk || u8 name_len || name.
 *
 *  roster_t folds a set of events of ONE network into its state; every node
 *  that holds the same events computes the same state, whatever the order
 *  they arrived in. The order and every rule: proto/SPEC.md §17.
 *
 *  A channel's control log is the same fold under a channel profile
 *  (roster_new_channel, SPEC §21.4): CHANNEL instead of CREATE (channel id =
 *  chan_id(creator, salt)), no INVITE, REVOKE, JOIN or RELAY, readers, and
 *  REKEY by an admin; the creator is the owner (rank 0).
 */
#ifndef PARLEY_PROTO_ROSTER_H
#define PARLEY_PROTO_ROSTER_H

#include "envelope.h"
#include "errors.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROSTER_VERSION 1u
#define ROSTER_NETID_DOMAIN "parley/network/v1" /* hashed with its terminating NUL */
#define ROSTER_JOIN_DOMAIN "parley/join/v1"     /* signed with its terminating NUL */
#define ROSTER_SALT_LEN 16u
#define ROSTER_PROOF_LEN 64u
/*  The longest body: INVITE/REMOVE/JOIN with 16 parents stay well below. */
#define ROSTER_BODY_MAX (3u + ROSTER_PARENTS_MAX * 32u + 32u + 1u + ROSTER_REASON_MAX + 64u)

enum {
    ROSTER_CREATE = 1,
    ROSTER_INVITE = 2,
    ROSTER_REVOKE = 3,
    ROSTER_JOIN = 4,
    ROSTER_ADD = 5,
    ROSTER_REMOVE = 6,
    ROSTER_ROLE = 7,
    ROSTER_RELAY = 8,
    ROSTER_CHANNEL = 9,
    ROSTER_REKEY = 10,
};

/*  CHANNEL flags (SPEC §21.4). */
enum {
    ROSTER_CHAN_SHARED = 0x01,   /* history shared: new members get earlier epochs' keys */
    ROSTER_CHAN_ANNOUNCE = 0x02, /* ADD of a member makes a reader */
    ROSTER_CHAN_NETWORK = 0x04,  /* network-wide: every network member is in it */
};
#define ROSTER_CHAN_FLAGS 0x07u

enum {
    ROSTER_ROLE_NONE = 0,   /* not a current member */
    ROSTER_ROLE_MEMBER = 1, /* member */
    ROSTER_ROLE_ADMIN = 2,  /* admin */
    ROSTER_ROLE_READER = 3, /* a channel's member that may read, not post */
};

/*  Rank of a key that is not an admin. */
#define ROSTER_RANK_NONE UINT32_MAX

/*  One decoded event body. Decoded: parents and text are VIEWS into the
 *  decoded buffer. To encode, the caller points them at its own bytes. The
 *  fields a type does not use are ignored by the encoder and zero after
 *  decoding. */
typedef struct {
    uint8_t type;                    /* ROSTER_CREATE..ROSTER_RELAY */
    size_t n_parents;                /* 0..ROSTER_PARENTS_MAX */
    const uint8_t *parents;          /* n_parents × 32 bytes, strictly ascending */
    uint8_t salt[ROSTER_SALT_LEN];   /* CREATE */
    uint8_t key[32];                 /* invite_pk (INVITE, REVOKE, JOIN) or member_pk */
    uint8_t role;                    /* INVITE, ADD, ROLE: 1 or 2 */
    uint8_t on;                      /* RELAY: 0 or 1 */
    uint8_t flags;                   /* CHANNEL: ROSTER_CHAN_* */
    uint64_t expires_ms;             /* INVITE */
    uint16_t uses;                   /* INVITE: 1..ROSTER_INVITE_USES_MAX */
    const uint8_t *text;             /* network_name, label, name or reason */
    size_t text_len;                 /* its length */
    const uint8_t *text2;            /* CREATE: founder_name */
    size_t text2_len;                /* its length */
    uint8_t proof[ROSTER_PROOF_LEN]; /* JOIN */
} roster_event_t;

/*  Decodes a body of exactly len bytes into *ev (views into buf).
 *  PARLEY_ERR_UNSUPPORTED for another version, _MALFORMED for anything
 *  else wrong (unknown type, unsorted or duplicate parents, a bad role or
 *  on, a length out of range, bad text, trailing bytes), _LIMIT when len
 *  exceeds ROSTER_BODY_MAX. On failure *ev is zeroed. */
int roster_event_decode(const uint8_t *buf, size_t len, roster_event_t *ev) PARLEY_WUR;

/*  True if the len bytes at p are the text a str8 of §17.2 may hold: strict
 *  UTF-8 (content_utf8_decode) without C0, DEL or C1 controls. The one
 *  check for names and reasons of private networks (JOIN DONE's reason too). */
bool roster_text_valid(const uint8_t *p, size_t len);

/*  Encodes ev into out (cap bytes; ROSTER_BODY_MAX always fits), *len the
 *  length. Refuses what roster_event_decode would reject (same codes);
 *  _LIMIT if cap is too small. *len is 0 on failure. */
int roster_event_encode(const roster_event_t *ev, uint8_t *out, size_t cap, size_t *len) PARLEY_WUR;

/*  The network id of founder_pk with salt. */
void roster_network_id(const uint8_t founder_pk[32], const uint8_t salt[ROSTER_SALT_LEN],
                       uint8_t id[32]);

/*  Signs a JOIN proof with the invite's 64-byte Ed25519 secret key.
 *  _MALFORMED if name_len > ROSTER_NAME_MAX, _CRYPTO if libsodium refuses. */
int roster_join_proof_sign(const uint8_t invite_sk[64], const uint8_t network_id[32],
                           const uint8_t joiner_pk[32], const uint8_t *name, size_t name_len,
                           uint8_t proof[ROSTER_PROOF_LEN]) PARLEY_WUR;
/*  Verifies a JOIN proof: 0 or PARLEY_ERR_AUTH (_MALFORMED for a too long
 *  name). */
int roster_join_proof_verify(const uint8_t invite_pk[32], const uint8_t network_id[32],
                             const uint8_t joiner_pk[32], const uint8_t *name, size_t name_len,
                             const uint8_t proof[ROSTER_PROOF_LEN]) PARLEY_WUR;

/* ------------------------------------------------------------------ fold */

typedef struct _roster_t roster_t;

/*  One current member. name points into the roster and is valid until the
 *  next roster_add/roster_fold. */
typedef struct {
    uint8_t pk[32];        /* Ed25519 key */
    const uint8_t *name;   /* view, not NUL-terminated */
    size_t name_len;       /* its length */
    uint8_t role;          /* ROSTER_ROLE_MEMBER or _ADMIN */
    uint32_t rank;         /* 0 founder, 1.. admins, ROSTER_RANK_NONE others */
    bool relay;            /* a designated relay */
    uint8_t added_by[32];  /* author of the ADD, of the INVITE joined, or founder */
    uint64_t added_ts;     /* ts_ms of the event that made it a member */
    bool via_invite;       /* joined with an invite */
    uint8_t invite_pk[32]; /* that invite, if via_invite */
} roster_member_t;

/*  One invite as folded. */
typedef struct {
    uint8_t invite_pk[32]; /* names the invite */
    uint8_t author[32];    /* the admin who created it */
    uint8_t role;          /* role a joiner gets */
    uint64_t expires_ms;   /* JOINs with a later ts_ms are void */
    uint16_t uses;         /* JOINs it admits */
    uint16_t used;         /* JOINs applied */
    bool revoked;          /* a REVOKE was applied */
} roster_invite_t;

/*  One folded event, in linearized order. reason is a static string, NULL
 *  for an applied event. */
typedef struct {
    uint8_t id[32];     /* envelope id */
    uint8_t type;       /* ROSTER_* */
    uint8_t author[32]; /* envelope author */
    uint8_t target[32]; /* key field (CREATE: the author) */
    uint64_t ts_ms;     /* envelope ts_ms */
    bool applied;       /* false: void */
    const char *reason; /* why void */
} roster_log_entry_t;

/*  A new, empty fold for network_id. Owned by the caller; NULL on NOMEM. */
roster_t *roster_new(const uint8_t network_id[32]);
/*  A new, empty fold of the control log of channel_id (SPEC §21.4). Its
 *  events come by roster_add_event. Owned by the caller; NULL on NOMEM. */
roster_t *roster_new_channel(const uint8_t channel_id[32]);
void roster_destroy(roster_t **self_p);

/*  Adds the event of a decoded, VERIFIED envelope (the caller ran
 *  envelope_check) and folds. The id is BLAKE2b-256 of env->bytes; the body
 *  is copied. _UNSUPPORTED for another kind (NET, or CHAN for a channel), _STATE for another
 * network, the decoder's codes for a bad body, _DUPLICATE for an id held already, _LIMIT past
 * ROSTER_EVENTS_MAX events or ROSTER_INVITES_MAX invites, _NOMEM; on these the roster is unchanged.
 * _NOMEM can also come from the fold after the event was added: the event is then held and the
 * state is empty until a roster_fold succeeds. */
int roster_add(roster_t *self, const envelope_t *env) PARLEY_WUR;
/*  Adds one event from its parts without folding (the caller calls
 *  roster_fold once after a batch). Same checks as roster_add. */
int roster_add_event(roster_t *self, const uint8_t id[32], const uint8_t author[32], uint64_t ts_ms,
                     const uint8_t *body, size_t body_len) PARLEY_WUR;
/*  Recomputes the state from every event held. 0 or _NOMEM (the previous
 *  state is then empty). */
int roster_fold(roster_t *self) PARLEY_WUR;

/*  Queries, on the last fold. */
size_t roster_event_count(const roster_t *self);    /* held, pending included */
size_t roster_pending_count(const roster_t *self);  /* held, not linearized */
bool roster_created(const roster_t *self);          /* a valid CREATE applied */
bool roster_is_channel(const roster_t *self);       /* made by roster_new_channel */
uint8_t roster_channel_flags(const roster_t *self); /* the applied CHANNEL's, or 0 */
/*  Applied REMOVE and REKEY events: a channel's epoch (SPEC §21.5). */
uint32_t roster_epoch(const roster_t *self);
const uint8_t *roster_founder(const roster_t *self);           /* NULL before CREATE */
const uint8_t *roster_name(const roster_t *self, size_t *len); /* network name view */
uint8_t roster_role(const roster_t *self, const uint8_t pk[32]);
uint32_t roster_rank(const roster_t *self, const uint8_t pk[32]);
bool roster_is_removed(const roster_t *self, const uint8_t pk[32]);
bool roster_was_admin(const roster_t *self, const uint8_t pk[32]); /* now or before */
bool roster_is_relay(const roster_t *self, const uint8_t pk[32]);
size_t roster_member_count(const roster_t *self);
/*  i < roster_member_count: members in the order they first became members. */
int roster_member_at(const roster_t *self, size_t i, roster_member_t *out) PARLEY_WUR;
size_t roster_admin_count(const roster_t *self);
const uint8_t *roster_admin_at(const roster_t *self, size_t i); /* rank order */
size_t roster_relay_count(const roster_t *self);
const uint8_t *roster_relay_at(const roster_t *self, size_t i);
size_t roster_invite_count(const roster_t *self);
int roster_invite_at(const roster_t *self, size_t i, roster_invite_t *out) PARLEY_WUR;
/*  Exists, not revoked, now_ms <= expires_ms and used < uses. */
bool roster_invite_live(const roster_t *self, const uint8_t invite_pk[32], uint64_t now_ms);
size_t roster_log_count(const roster_t *self); /* linearized events */
int roster_log_at(const roster_t *self, size_t i, roster_log_entry_t *out) PARLEY_WUR;
/*  The DAG heads among linearized events (named as parent by none), sorted;
 *  at most ROSTER_PARENTS_MAX: when there are more, applied events are
 *  chosen before void ones, each kind smallest id first. */
size_t roster_heads(const roster_t *self, uint8_t out[ROSTER_PARENTS_MAX][32]);
/*  Encodes ev, by author (NULL: unknown), with the current heads as its
 *  parents (ev's own parents are ignored); an admin's event also names the
 *  event that made it an admin unless a head descends from it (§17.4).
 *  Same codes as roster_event_encode. */
int roster_event_build(roster_t *self, const uint8_t author[32], const roster_event_t *ev,
                       uint8_t *out, size_t cap, size_t *len) PARLEY_WUR;

void roster_test(bool verbose);

#endif
