/*
 * recfile: the recording format of `record` and `serve --replay`, a
 * line-oriented text file (docs/SERVE.md):
 *
 *     mbta-stream-recording 1
 *     # free comment lines (the URL, api key removed)
 *     C <ns since start> <http status>          a connection was established
 *     D <ns since start> <length>               a chunk of body bytes follows,
 *     <length raw bytes>                        then one "\n"
 *     X <ns since start> <reason text>          the connection ended
 *
 * The writer formats records; the reader parses them from a memory buffer
 * (no I/O). Neither owns a file.
 */
#ifndef MBTA_RECFILE_H
#define MBTA_RECFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RECFILE_MAGIC     "mbta-stream-recording 1\n"
#define RECFILE_MAX_CHUNK ((size_t)64 << 20)

struct recfile_rec {
    char kind;        /* 'C', 'D' or 'X' */
    int64_t ns;       /* since the start of the recording, >= 0 */
    long status;      /* 'C' */
    const char *data; /* 'D': the bytes; 'X': the reason (borrowed from the input) */
    size_t len;
};

/* Checks the magic line. Returns the offset after it, or -1. */
long recfile_check(const char *p, size_t n);
/*
 * Parses the record at *off (skipping comment lines) and advances *off.
 * Returns 1 with *rec filled, 0 at the end of input, -1 on a malformed
 * record with errstr ("offset N: why").
 */
int recfile_next(const char *p, size_t n, size_t *off, struct recfile_rec *rec, char *errstr,
                 size_t errsz);

/* Writers: return 0, or -1 on a write error (errno set). */
int recfile_write_header(FILE *fp, const char *comment);
int recfile_write_connect(FILE *fp, int64_t ns, long status);
int recfile_write_data(FILE *fp, int64_t ns, const char *buf, size_t n);
int recfile_write_close(FILE *fp, int64_t ns, const char *reason);

#endif
