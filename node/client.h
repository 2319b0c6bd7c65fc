/*  node/client.h — a blocking client of the local API (for the CLI, the
 *  benchmark and tests). One request at a time, or pipelined with
 *  client_send + client_recv. Not for use inside parleyd.
 */
#ifndef PARLEY_NODE_CLIENT_H
#define PARLEY_NODE_CLIENT_H

#include "../proto/errors.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct _client_t client_t;

/*  Connects to HOME/api.sock. PARLEY_ERR_NOTFOUND when no daemon listens. */
int client_connect(const char *home, client_t **out) PARLEY_WUR;
void client_destroy(client_t **self_p);
/*  Sends a request (steals params; may be NULL) with a fresh id. */
int client_send(client_t *self, const char *method, json_t *params) PARLEY_WUR;
/*  Reads the next line as JSON (response or notification); timeout_ms < 0
 *  waits forever. PARLEY_ERR_IO when the daemon went away, PARLEY_ERR_STATE on
 *  timeout. Caller owns *out. */
int client_recv(client_t *self, int timeout_ms, json_t **out) PARLEY_WUR;
/*  send + wait for the matching response. On success *result is the result
 *  (owned); on a JSON-RPC error returns PARLEY_ERR_* from the error's data
 *  when present, and *errmsg gets the message (owned, free()). */
int client_call(client_t *self, const char *method, json_t *params, json_t **result,
                char **errmsg) PARLEY_WUR;
/*  As client_call on a subscribed connection: the notifications that come
 *  before the response are appended to the array notes (in order) rather
 *  than dropped. */
int client_call_keep(client_t *self, const char *method, json_t *params, json_t **result,
                     char **errmsg, json_t *notes) PARLEY_WUR;
/*  The socket, to poll for input beside other descriptors. */
int client_fd(const client_t *self);
/*  Whether a whole line is buffered already (poll would not show it). */
bool client_buffered(const client_t *self);

#endif
