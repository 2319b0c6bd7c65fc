/*  node/api_server.h — the local API's transport: a Unix-socket server of
 *  newline-delimited lines, knowing nothing of the methods.
 *
 *  The socket is created mode 0600 (umask 077 around bind), so only the
 *  owner of the home can drive the node. Each complete line a client sends
 *  (at most PARLEY_API_LINE_MAX bytes; a longer one gets an error and the
 *  client is dropped) goes to the handler with the client's id. Output is
 *  buffered per client; a client that lets more than API_SERVER_OUT_MAX bytes
 *  of replies, or API_SERVER_NOTE_MAX bytes of notifications, pile up gets
 *  one error line naming the cap and is disconnected rather than letting it
 *  hold the node's memory. Past API_SERVER_CLIENTS_MAX a new connection gets
 *  one error line ("too many API clients") and is closed. A client that is
 *  not subscribed, has nothing queued and sends nothing for the idle time
 *  (API_SERVER_IDLE_MS) gets one error line and is closed, so idle
 *  connections cannot hold every place; one whose output has not moved for
 *  that long is dropped. The clock is the caller's (api_server_tick).
 *  Clients are named by ids that are never reused, so a reply queued for a
 *  client that left is dropped, never sent to another.
 */
#ifndef PARLEY_NODE_API_SERVER_H
#define PARLEY_NODE_API_SERVER_H

#include "../proto/errors.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_SERVER_CLIENTS_MAX 64u
#define API_SERVER_OUT_MAX (64u * 1024u * 1024u)
#define API_SERVER_NOTE_MAX (8u * 1024u * 1024u)
#define API_SERVER_IDLE_MS (5u * 60u * 1000u)

typedef struct api_server api_server_t;

/*  One request line from client (not NUL-terminated). */
typedef void(api_server_line_fn)(void *arg, uint64_t client, const char *line, size_t len);

/*  Listens on path (an old socket file there is removed: the caller holds
 *  the home's lock). */
int api_server_new(const char *path, api_server_line_fn *on_line, void *arg,
                   api_server_t **out) PARLEY_WUR;
/*  Closes every client and removes the socket file. */
void api_server_destroy(api_server_t **self_p);

/*  zmq_pollitem_t entries: how many, and filling them (listening socket
 *  first, then clients). */
size_t api_server_poll_count(const api_server_t *self);
void api_server_poll_fill(const api_server_t *self, void *items);
/*  Reads and accepts where items (same order as the fill) say. */
void api_server_poll_handle(api_server_t *self, const void *items);

/*  Queues one JSON line to client (dropped if it is gone). */
void api_server_send(api_server_t *self, uint64_t client, const json_t *obj);
/*  Queues one JSON line to every subscribed client. */
void api_server_broadcast(api_server_t *self, const json_t *obj);
/*  Marks client as a subscriber of notifications. */
void api_server_subscribe(api_server_t *self, uint64_t client);
/*  Writes what is queued; drops dead clients and drained closing ones. */
void api_server_flush(api_server_t *self);
/*  The caller's clock (ms; any origin, never going back): closes idle
 *  clients, drops stuck ones. Call it once per loop, before the flush. */
void api_server_tick(api_server_t *self, uint64_t now_ms);
/*  Overrides API_SERVER_IDLE_MS. */
void api_server_set_idle(api_server_t *self, uint64_t idle_ms);

#endif
