/* recfile: see recfile.h. */
#include "serve/recfile.h"

#include <string.h>

long recfile_check(const char *p, size_t n)
{
    size_t m = strlen(RECFILE_MAGIC);
    if (n < m || memcmp(p, RECFILE_MAGIC, m) != 0)
        return -1;
    return (long)m;
}

/* Parses a non-negative decimal of at most 18 digits at p[*i]. */
static int num(const char *p, size_t n, size_t *i, int64_t *out)
{
    int64_t v = 0;
    size_t start = *i;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9' && *i - start < 18)
        v = v * 10 + (p[(*i)++] - '0');
    if (*i == start || (*i < n && p[*i] >= '0' && p[*i] <= '9'))
        return -1;
    *out = v;
    return 0;
}

int recfile_next(const char *p, size_t n, size_t *off, struct recfile_rec *rec, char *errstr,
                 size_t errsz)
{
    size_t i = *off;
    while (i < n && p[i] == '#') { /* comment lines */
        const char *nl = memchr(p + i, '\n', n - i);
        if (!nl) {
            snprintf(errstr, errsz, "offset %zu: unterminated comment", i);
            return -1;
        }
        i = (size_t)(nl - p) + 1;
    }
    if (i >= n)
        return 0;
    size_t at = i;
    char kind = p[i++];
    int64_t ns, v = 0;
    if ((kind != 'C' && kind != 'D' && kind != 'X') || i >= n || p[i++] != ' ' ||
        num(p, n, &i, &ns) || i >= n || p[i++] != ' ') {
        snprintf(errstr, errsz, "offset %zu: malformed record header", at);
        return -1;
    }
    memset(rec, 0, sizeof(*rec));
    rec->kind = kind;
    rec->ns = ns;
    if (kind == 'X') {
        const char *nl = memchr(p + i, '\n', n - i);
        if (!nl) {
            snprintf(errstr, errsz, "offset %zu: unterminated close record", at);
            return -1;
        }
        rec->data = p + i;
        rec->len = (size_t)(nl - (p + i));
        *off = (size_t)(nl - p) + 1;
        return 1;
    }
    if (num(p, n, &i, &v) || i >= n || p[i++] != '\n') {
        snprintf(errstr, errsz, "offset %zu: malformed record header", at);
        return -1;
    }
    if (kind == 'C') {
        rec->status = (long)v;
        *off = i;
        return 1;
    }
    if ((uint64_t)v > RECFILE_MAX_CHUNK || (size_t)v > n - i || n - i - (size_t)v < 1 ||
        p[i + (size_t)v] != '\n') {
        snprintf(errstr, errsz, "offset %zu: data record of %lld bytes truncated or too big", at,
                 (long long)v);
        return -1;
    }
    rec->data = p + i;
    rec->len = (size_t)v;
    *off = i + (size_t)v + 1;
    return 1;
}

int recfile_write_header(FILE *fp, const char *comment)
{
    if (fputs(RECFILE_MAGIC, fp) < 0)
        return -1;
    if (comment) {
        fputs("# ", fp);
        for (const char *c = comment; *c; c++)
            fputc(*c == '\n' || *c == '\r' ? ' ' : *c, fp);
        fputc('\n', fp);
    }
    return ferror(fp) ? -1 : 0;
}

int recfile_write_connect(FILE *fp, int64_t ns, long status)
{
    return fprintf(fp, "C %lld %ld\n", (long long)ns, status) < 0 ? -1 : 0;
}

int recfile_write_data(FILE *fp, int64_t ns, const char *buf, size_t n)
{
    if (fprintf(fp, "D %lld %zu\n", (long long)ns, n) < 0)
        return -1;
    if (n && fwrite(buf, 1, n, fp) != n)
        return -1;
    return fputc('\n', fp) == EOF ? -1 : 0;
}

int recfile_write_close(FILE *fp, int64_t ns, const char *reason)
{
    if (fprintf(fp, "X %lld ", (long long)ns) < 0)
        return -1;
    for (const char *c = reason ? reason : ""; *c; c++)
        fputc(*c == '\n' || *c == '\r' ? ' ' : *c, fp);
    return fputc('\n', fp) == EOF ? -1 : 0;
}
