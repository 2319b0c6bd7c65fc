/*  discovery/local.h — host-local discovery: nodes on one machine find each
 *  other through a directory of endpoint files, without Avahi (the default
 *  for test swarms on one host).
 *
 *  Each node writes DIR/NODE_ID (proto/endpoint.h format: its loopback
 *  endpoint and its PID), atomically (temp file + rename), and removes it on
 *  exit. A scan reports every other valid file whose PID is alive as SEEN,
 *  and files that vanished, or whose process died (a kill -9 leaves its file
 *  behind), as GONE. DIR is created mode 0700; one that is not ours, or not a
 *  directory, is refused. The directory is watched (inotify): a scan runs
 *  when it changes, and on a slow timer for processes that died without
 *  removing their file. A file already read under the same inode is not
 *  read again (only renamed over, a record never changes in place): the
 *  slow timer's scan costs a kill(pid, 0) per known node.
 */
#ifndef PARLEY_DISCOVERY_LOCAL_H
#define PARLEY_DISCOVERY_LOCAL_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define LOCAL_MAX_PEERS 4096u

typedef struct _local_t local_t;

/*  Publishes our file. NULL (with *why set) if the directory is unusable. */
local_t *local_new(const char *dir, const char *node_id, uint16_t port, const char **why);
void local_destroy(local_t **self_p);
/*  Scans the directory and sends SEEN/GONE reports to out. */
void local_scan(local_t *self, zsock_t *out);
/*  A descriptor that is readable when the directory changed (inotify), or
 *  -1 when there is none: then only a timer can tell. local_changed drains
 *  it and says whether anything changed since the last call. */
int local_fd(const local_t *self);
bool local_changed(local_t *self);

void local_test(bool verbose);

#endif
