/*  proto/frame_type.h — the frame type numbers, byte 1 of every frame.
 *  frame.h documents each payload; the codecs that write a whole frame of
 *  their own (sync_msg.c for RECONCILE) need only these numbers, not the
 *  frame codec, which in turn checks their payloads.
 */
#ifndef PARLEY_PROTO_FRAME_TYPE_H
#define PARLEY_PROTO_FRAME_TYPE_H

enum {
    FRAME_HELLO = 1,
    FRAME_PREKEY = 2,
    FRAME_ENVELOPES = 3,
    FRAME_ACK = 4,
    FRAME_PING = 5,
    FRAME_PONG = 6,
    FRAME_BYE = 7,
    FRAME_PEERS = 8,
    FRAME_RECONCILE = 9,
    FRAME_WANT = 10,
    FRAME_JOIN = 11,   /* the join exchange of a private network (SPEC §19.1) */
    FRAME_NETKEY = 12, /* a network secret of an epoch, member to member (SPEC §19.2) */
};

/*  JOIN's first payload byte: the step of the exchange. */
enum {
    FRAME_JOIN_ASK = 1,   /* joiner → member: network_id */
    FRAME_JOIN_HEADS = 2, /* member → joiner: the roster heads to name as parents */
    FRAME_JOIN_DONE = 3,  /* member → joiner: added or refused, with a reason */
};

/*  JOIN DONE's status byte. */
enum {
    FRAME_JOIN_ADDED = 0,
    FRAME_JOIN_REFUSED = 1,
};

#endif
