/*
 * log: one line per event to stderr, level checked before formatting.
 *
 *   2026-12-04T19:51:32.123Z produce INFO: vehicles: connected (200)
 *
 * The caller stamps context (stream, topic, partition, offset) into the
 * message. stdout is never written here: it carries data only.
 * Not thread-safe beyond what a single fprintf gives (one line per call).
 */
#ifndef MBTA_LOG_H
#define MBTA_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_level_current;

/* Sets the component name printed on every line (borrowed; keep it alive). */
void log_init(const char *component, int level);

/* Parses "error|warn|info|debug" or a digit; returns the level or -1. */
int log_level_parse(const char *s);

void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)                                                                              \
    do {                                                                                           \
        if (log_level_current >= LOG_WARN)                                                         \
            log_write(LOG_WARN, __VA_ARGS__);                                                      \
    } while (0)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_level_current >= LOG_INFO)                                                         \
            log_write(LOG_INFO, __VA_ARGS__);                                                      \
    } while (0)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_level_current >= LOG_DEBUG)                                                        \
            log_write(LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
