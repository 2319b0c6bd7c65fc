/*  node/log.c — see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void
log_init(log_t *log, log_level_t level, const char *tag)
{
    log->level = level;
    snprintf(log->tag, sizeof log->tag, "%.8s", tag ? tag : "");
}

bool
log_enabled(const log_t *log, log_level_t level)
{
    return level <= log->level;
}

void
log_write(const log_t *log, log_level_t level, const char *fmt, ...)
{
    if (!log_enabled(log, level)) {
        return;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    time_t t = time(NULL);
    struct tm tm;
    char stamp[32];
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s parleyd[%s] %s\n", stamp, log->tag, line);
}
