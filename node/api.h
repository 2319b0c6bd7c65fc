/*  node/api.h — the local API's methods (JSON-RPC 2.0, one request per
 *  line; documented in README.md): id, status, send, read, history, peers,
 *  contacts.*, safety, subscribe, doctor.
 *
 *  Every reply goes through the after-commit queue (core.h): "send" answers
 *  only once the message is durable, and a rolled-back iteration answers
 *  every call in it with an error instead.
 */
#ifndef PARLEY_NODE_API_H
#define PARLEY_NODE_API_H

#include "api_server.h"
#include "channel.h"
#include "core.h"
#include "delivery.h"
#include "link.h"
#include "network.h"
#include "replica.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  history: messages per call at most (limit 0 means this), and about how
 *  many bytes of text one page holds before it is cut short. */
#define API_HISTORY_MAX 1000u
#define API_HISTORY_BYTES (4u * 1024u * 1024u)
#define API_CONVERSATIONS_MAX 1000u /* conversations one `conversations` call lists */

typedef struct api api_t;

api_t *api_new(core_t *core, links_t *links, delivery_t *delivery, replica_t *replica,
               network_t *network, channels_t *channels, api_server_t *server);
void api_destroy(api_t **self_p);
/*  One request line from client: the method runs, its reply is queued. */
void api_handle(api_t *self, uint64_t client, const char *line, size_t len);

#endif
