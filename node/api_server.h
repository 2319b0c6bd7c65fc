/*  node/api_server.h — the local API's transport: a Unix-socket server of
 *  newline-delimited lines, knowing nothing of the methods.
 *
 *  The socket is created mode 0600 (umask 077 around bind), so only the
 *  owner of the home can drive the node. Each complete line a client sends
 *  (at most PARLEY_API_LINE_MAX bytes; a longer one gets an error and the
 *  client is dropped) goes to the handler with the client's id. Output is
 *  buffered per client; a client that lets more than API_SERVER_OUT_MAX bytes
 *  pile up is disconnected rather than letting it hold the node's memory.
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

#endif
