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
};

#endif
