/*  node/log.h — the one logger of the engine (node/ and, through a
 *  callback, the discovery actor).
 *
 *  One line per event on stderr: "STAMP parleyd[SHORTID] text". Levels are
 *  named; a node logs at LOG_LEVEL_INFO and below unless started verbose
 *  (LOG_LEVEL_DEBUG). Never a secret key; message bodies never above debug.
 *  Read-only after log_init, so threads (the discovery actor) may share it:
 *  stdio locks each line. The levels are not called LOG_INFO and LOG_DEBUG:
 *  <syslog.h> (which <czmq.h> includes) defines those as macros, 6 and 7,
 *  and every line of a file that includes both was silently dropped.
 */
#ifndef PARLEY_NODE_LOG_H
#define PARLEY_NODE_LOG_H

#include <stdbool.h>

typedef enum {
    LOG_LEVEL_ERROR = 0, /* the node cannot do something it should: the user must act */
    LOG_LEVEL_WARN = 1,  /* something is wrong and handled (a peer banned, a retry) */
    LOG_LEVEL_INFO = 2,  /* what a user wants to see: peers, discovery, new identity */
    LOG_LEVEL_DEBUG = 3  /* what a developer wants to see */
} log_level_t;

typedef struct {
    log_level_t level; /* lines above this level are dropped */
    char tag[16];      /* short id of the node, for the prefix */
} log_t;

void log_init(log_t *log, log_level_t level, const char *tag);
bool log_enabled(const log_t *log, log_level_t level);
void log_write(const log_t *log, log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
