/*  proto/limits.h — every size and time limit of the protocol, in one place.
 *
 *  Decoders check lengths from the wire against these before allocating.
 *  Changing a limit changes what peers accept: bump PARLEY_PROTO_VERSION.
 */
#ifndef PARLEY_PROTO_LIMITS_H
#define PARLEY_PROTO_LIMITS_H

#define PARLEY_PROTO_VERSION 1

/* Envelope */
#define PARLEY_ENVELOPE_VERSION 1
#define PARLEY_ENVELOPE_MAX 65536u     /* whole encoded envelope, bytes */
#define PARLEY_ENVELOPE_HEADER_LEN 94u /* see proto/envelope.h */
#define PARLEY_SIG_LEN 64u
#define PARLEY_BODY_MAX (PARLEY_ENVELOPE_MAX - PARLEY_ENVELOPE_HEADER_LEN - PARLEY_SIG_LEN)
#define PARLEY_FUTURE_SKEW_MS 600000ull /* ts more than 10 min ahead: rejected */

/* Keys and ids */
#define PARLEY_KEY_LEN 32u        /* Ed25519 / X25519 public key */
#define PARLEY_ID_LEN 32u         /* envelope id, BLAKE2b-256 */
#define PARLEY_NODE_ID_STRLEN 52u /* base32 of 32 bytes, no padding */
#define PARLEY_SHORT_ID_STRLEN 8u
#define PARLEY_SAFETY_DIGITS 60u

/* Direct messages */
#define PARLEY_DM_HEADER_LEN 68u /* ek 32 | spk_id 4 | day0 4 | day 4 | nonce 24 */
#define PARLEY_AEAD_TAG_LEN 16u
#define PARLEY_PAD_BLOCK_MIN 64u /* smallest padding bucket */
/* Largest plaintext content: the biggest bucket that fits in a body. */
#define PARLEY_CONTENT_MAX 32768u
#define PARLEY_TEXT_MAX (PARLEY_CONTENT_MAX - 1u - 1u) /* type byte + pad marker */
#define PARLEY_RECEIPT_MAX_IDS 256u

/* Frames */
#define PARLEY_FRAME_MAX (1024u * 1024u) /* one ZeroMQ message, also ZMQ_MAXMSGSIZE */
#define PARLEY_BATCH_MAX 64u             /* envelopes per ENVELOPES frame */
#define PARLEY_ACK_MAX 1024u             /* ids per ACK frame */
#define PARLEY_NETTAG_MAX 64u
#define PARLEY_ENDPOINT_MAX 255u
#define PARLEY_HELLO_ENDPOINTS_MAX 8u
#define PARLEY_PEERS_MAX 16u /* address records per PEERS frame */

/* Reconciliation: RECONCILE and WANT frames (proto/sync_msg.c, SPEC §15).
 * The names keep the sync prefix of the code that reads them. */
#define SYNC_FP_LEN 16u        /* range fingerprint, bytes */
#define SYNC_PREFIX_LEN 16u    /* id prefix in IDS lists and WANT, bytes */
#define SYNC_IDS_MAX 1024u     /* ids in one IDS range */
#define SYNC_RANGES_MAX 32768u /* ranges in one scope block */
#define SYNC_BLOCKS_MAX 4096u  /* scope blocks in one RECONCILE */
#define SYNC_HINTS_MAX 2u      /* authors hinted per block */
#define SYNC_WANT_MAX 4096u    /* prefixes in one WANT frame */

/* Private networks: roster events (proto/roster.c, SPEC §17) */
#define ROSTER_PARENTS_MAX 16u       /* parent ids in one event */
#define ROSTER_NAME_MAX 64u          /* network, founder, member names; invite labels */
#define ROSTER_REASON_MAX 200u       /* REMOVE reason */
#define ROSTER_INVITE_USES_MAX 1000u /* JOINs one invite admits */
#define ROSTER_EVENTS_MAX 65536u     /* events one roster holds */
#define ROSTER_MEMBERS_MAX 10000u    /* current members of one network */
#define ROSTER_INVITES_MAX 4096u     /* INVITE events one roster holds */

/* Invite codes (proto/invite.c, SPEC §18) */
#define INVITE_ENDPOINTS_MAX 4u /* endpoints in one invite code */
#define INVITE_CODE_MAX 2048u   /* one code's text with its NUL; the longest is 2040 */

/* Local API */
#define PARLEY_API_LINE_MAX (256u * 1024u) /* one JSON-RPC request line */

#endif
