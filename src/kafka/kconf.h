/*
 * kconf: librdkafka configuration from our options. We do not re-model
 * librdkafka's properties: `-X key=value` (and `kafka.key = value` in the
 * config file) go straight to rd_kafka_conf_set, in order, after our
 * defaults, so the user always wins.
 */
#ifndef MBTA_KCONF_H
#define MBTA_KCONF_H

#include <librdkafka/rdkafka.h>

#include "util/opt.h"

/*
 * Sets every "key=value" of kv on conf (after `defaults`, a NULL-terminated
 * list of "key", "value" pairs, may be NULL). Returns 0, or -1 with errstr
 * "-X key: reason". The value is never echoed (it may be a password).
 */
int kconf_apply(rd_kafka_conf_t *conf, const char *const *defaults, const struct strlist *kv,
                char *errstr, size_t errsz);

/* Whether kv sets key (so that a default can be skipped). */
int kconf_has(const struct strlist *kv, const char *key);

#endif
