/* kconf: see kconf.h. */
#include "kafka/kconf.h"

#include <stdio.h>
#include <string.h>

static int kconf_set1(rd_kafka_conf_t *conf, const char *key, const char *val, char *errstr,
                      size_t errsz)
{
    char why[512];
    if (rd_kafka_conf_set(conf, key, val, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errsz, "-X %s: %s", key, why);
        return -1;
    }
    return 0;
}

int kconf_apply(rd_kafka_conf_t *conf, const char *const *defaults, const struct strlist *kv,
                char *errstr, size_t errsz)
{
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        if (kconf_set1(conf, defaults[i], defaults[i + 1], errstr, errsz) < 0)
            return -1;
    for (size_t i = 0; kv && i < kv->n; i++) {
        char key[256];
        const char *eq = strchr(kv->v[i], '=');
        if (!eq || eq == kv->v[i] || (size_t)(eq - kv->v[i]) >= sizeof(key)) {
            snprintf(errstr, errsz, "-X %s: expected key=value", kv->v[i]);
            return -1;
        }
        memcpy(key, kv->v[i], (size_t)(eq - kv->v[i]));
        key[eq - kv->v[i]] = '\0';
        if (kconf_set1(conf, key, eq + 1, errstr, errsz) < 0)
            return -1;
    }
    return 0;
}

int kconf_has(const struct strlist *kv, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; kv && i < kv->n; i++)
        if (!strncmp(kv->v[i], key, n) && kv->v[i][n] == '=')
            return 1;
    return 0;
}
