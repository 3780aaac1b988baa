/* stream_spec: see stream_spec.h. */
#include "cmd/stream_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kafka's legal topic characters; also what we allow in a stream name,
 * which becomes part of a topic name and of the marker keys. */
static int valid_name(const char *n, size_t len)
{
    if (!len || len > 100)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

int stream_spec_parse(const char *spec, const char *base, struct stream_spec *out, char *errstr,
                      size_t errsz)
{
    memset(out, 0, sizeof(*out));
    const char *eq = strchr(spec, '=');
    if (!eq || !valid_name(spec, (size_t)(eq - spec))) {
        snprintf(errstr, errsz,
                 "--stream %s: expected NAME=/PATH?QUERY[@TOPIC], NAME of [A-Za-z0-9._-]", spec);
        return -1;
    }
    const char *path = eq + 1;
    const char *at = strrchr(path, '@');
    size_t nlen = (size_t)(eq - spec), plen = at ? (size_t)(at - path) : strlen(path);
    if (!plen || path[0] != '/') {
        snprintf(errstr, errsz, "--stream %s: the path must start with /", spec);
        return -1;
    }
    if (at && !valid_name(at + 1, strlen(at + 1))) {
        snprintf(errstr, errsz, "--stream %s: bad topic name", spec);
        return -1;
    }
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    out->name = strndup(spec, nlen);
    out->path = strndup(path, plen);
    out->topic = at ? strdup(at + 1) : malloc(nlen + 6);
    out->url = malloc(bl + plen + 1);
    if (!out->name || !out->path || !out->topic || !out->url) {
        stream_spec_fini(out);
        snprintf(errstr, errsz, "--stream %s: out of memory", spec);
        return -1;
    }
    if (!at)
        snprintf(out->topic, nlen + 6, "mbta.%s", out->name);
    memcpy(out->url, base, bl);
    memcpy(out->url + bl, path, plen);
    out->url[bl + plen] = '\0';
    return 0;
}

void stream_spec_fini(struct stream_spec *s)
{
    free(s->name);
    free(s->path);
    free(s->topic);
    free(s->url);
    memset(s, 0, sizeof(*s));
}
