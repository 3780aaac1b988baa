/*
 * stream_spec: produce's `--stream NAME=/PATH?QUERY[@TOPIC]` argument into
 * the stream's name, path, topic (mbta.NAME unless @TOPIC) and URL (the
 * API base without trailing slashes, then the path).
 *
 * Pure: no I/O, no global; it checks the shape only (NAME and TOPIC of
 * [A-Za-z0-9._-], at most 100 bytes; the path starts with /), not that the
 * URL answers.
 */
#ifndef MBTA_STREAM_SPEC_H
#define MBTA_STREAM_SPEC_H

#include <stddef.h>

struct stream_spec {
    char *name, *path, *topic, *url; /* heap; freed by stream_spec_fini */
};

/* Parses spec against base into out (zeroed first). Returns 0, or -1 with
 * a one-line reason naming the spec in errstr (out then holds nothing). */
int stream_spec_parse(const char *spec, const char *base, struct stream_spec *out, char *errstr,
                      size_t errsz);
/* Frees what stream_spec_parse allocated; a zeroed spec is a no-op. */
void stream_spec_fini(struct stream_spec *s);

#endif
