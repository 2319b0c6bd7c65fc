/*  discovery/source.h — what the discovery actor (discovery.c) and its
 *  sources (mdns.c, local.c) share: the service type they publish and browse,
 *  and where their log lines go. Below all three, so none includes another's
 *  header to get these.
 */
#ifndef PARLEY_DISCOVERY_SOURCE_H
#define PARLEY_DISCOVERY_SOURCE_H

#define DISCOVERY_SERVICE "_parley._tcp"

/*  Where the sources' log lines go (the node's logger); called from the
 *  actor's thread. NULL: stderr, unadorned. */
typedef void(discovery_log_fn)(void *arg, const char *line);

#endif
