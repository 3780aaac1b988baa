/*
 * opt: see opt.h. Sources are applied lowest first (defaults, file,
 * environment, flags); a later source overwrites scalars and replaces lists,
 * except OPT_F_MERGE lists which accumulate (so -X adds to kafka.* keys).
 */
#include "util/opt.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };

void strlist_push(struct strlist *l, const char *s)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (!v)
        abort();
    l->v = v;
    l->v[l->n++] = strdup(s);
}

void strlist_fini(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!s || !*s || !strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
        !strcasecmp(s, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") ||
        !strcasecmp(s, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* Per-parse state: which source last set each list (to replace, not append). */
struct opt_state {
    int list_src[128];
};

static int opt_set(const struct opt *o, int idx, struct opt_state *st, int src, const char *val,
                   char *errstr, size_t errsz)
{
    char *end;
    switch (o->type) {
    case OPT_STR: {
        char **d = o->dst;
        free(*d);
        *d = val ? strdup(val) : NULL;
        return 0;
    }
    case OPT_INT: {
        errno = 0;
        long v = strtol(val, &end, 0);
        if (errno || end == val || *end) {
            snprintf(errstr, errsz, "%s: \"%s\" is not an integer", o->name, val);
            return -1;
        }
        if (o->min != o->max && (v < o->min || v > o->max)) {
            snprintf(errstr, errsz, "%s: %ld is out of range [%.0f, %.0f]", o->name, v, o->min,
                     o->max);
            return -1;
        }
        *(long *)o->dst = v;
        return 0;
    }
    case OPT_DBL: {
        errno = 0;
        double v = strtod(val, &end);
        if (errno || end == val || *end) {
            snprintf(errstr, errsz, "%s: \"%s\" is not a number", o->name, val);
            return -1;
        }
        if (o->min != o->max && (v < o->min || v > o->max)) {
            snprintf(errstr, errsz, "%s: %g is out of range [%g, %g]", o->name, v, o->min, o->max);
            return -1;
        }
        *(double *)o->dst = v;
        return 0;
    }
    case OPT_BOOL:
        if (parse_bool(val, o->dst) < 0) {
            snprintf(errstr, errsz, "%s: \"%s\" is not a boolean", o->name, val);
            return -1;
        }
        return 0;
    case OPT_LIST: {
        struct strlist *l = o->dst;
        if (idx < 128 && st->list_src[idx] != src && !(o->flags & OPT_F_MERGE))
            strlist_fini(l);
        if (idx < 128)
            st->list_src[idx] = src;
        strlist_push(l, val);
        return 0;
    }
    }
    return 0;
}

static const struct opt *opt_find(const struct opt *opts, const char *name, size_t len, int *idx)
{
    for (int i = 0; opts[i].name; i++)
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len)) {
            *idx = i;
            return &opts[i];
        }
    return NULL;
}

static const struct opt *opt_find_short(const struct opt *opts, int c, int *idx)
{
    for (int i = 0; opts[i].name; i++)
        if (opts[i].short_name == c) {
            *idx = i;
            return &opts[i];
        }
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int opt_load_file(const struct opt *opts, struct opt_state *st, const char *cmd,
                         const char *path, char *errstr, size_t errsz)
{
    FILE *fp = fopen(path, "r");
    char line[4096], section[64] = "";
    int lineno = 0, rc = 0;

    if (!fp) {
        snprintf(errstr, errsz, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        /* A '#' starts a comment when at the line start or after a blank. */
        for (char *p = line; *p; p++)
            if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
                *p = '\0';
                break;
            }
        char *s = trim(line);
        if (!*s)
            continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e) {
                snprintf(errstr, errsz, "%s:%d: unterminated section", path, lineno);
                rc = -1;
                break;
            }
            *e = '\0';
            snprintf(section, sizeof(section), "%s", trim(s + 1));
            continue;
        }
        if (*section && strcmp(section, cmd) != 0)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(errstr, errsz, "%s:%d: %s: expected key = value", path, lineno, s);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        const struct opt *o;
        int idx = -1;
        char kv[4096];
        if (!strncmp(key, "kafka.", 6) && (o = opt_find_short(opts, 'X', &idx))) {
            snprintf(kv, sizeof(kv), "%s=%s", key + 6, val);
            val = kv;
        } else if (!(o = opt_find(opts, key, strlen(key), &idx))) {
            if (*section) {
                snprintf(errstr, errsz, "%s:%d: %s: unknown option for %s", path, lineno, key, cmd);
                rc = -1;
                break;
            }
            continue;
        }
        char why[512];
        if (opt_set(o, idx, st, SRC_FILE, val, why, sizeof(why)) < 0) {
            snprintf(errstr, errsz, "%s:%d: %s", path, lineno, why);
            rc = -1;
            break;
        }
    }
    fclose(fp);
    return rc;
}

void opt_usage(FILE *fp, const char *cmd, const char *synopsis, const struct opt *opts)
{
    fprintf(fp, "usage: mbta-stream %s %s\n\noptions:\n", cmd, synopsis ? synopsis : "[options]");
    for (int i = 0; opts[i].name; i++) {
        const struct opt *o = &opts[i];
        char head[96];
        if (o->short_name && o->name[0] == o->short_name && !o->name[1])
            snprintf(head, sizeof(head), "-%c%s%s", o->short_name, o->arg ? " " : "",
                     o->arg ? o->arg : ""); /* kcat's -X: no long form worth showing */
        else if (o->short_name)
            snprintf(head, sizeof(head), "-%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(head, sizeof(head), "    --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(fp, "  %-34s %s", head, o->help);
        if (o->def && !(o->flags & OPT_F_SECRET))
            fprintf(fp, " [default: %s]", o->def);
        if (o->env)
            fprintf(fp, " [env: %s]", o->env);
        fputc('\n', fp);
    }
    fprintf(fp, "  %-34s %s\n", "-c, --config FILE", "config file [env: MBTA_STREAM_CONFIG]");
    fprintf(fp, "  %-34s %s\n", "-h, --help", "this help");
}

int opt_parse(const struct opt *opts, const char *cmd, const char *synopsis, int argc, char **argv,
              struct strlist *positional, char *errstr, size_t errsz)
{
    struct opt_state st;
    const char *config = getenv("MBTA_STREAM_CONFIG");
    int i;

    memset(&st, 0, sizeof(st));
    for (i = 0; opts[i].name; i++) {
        const struct opt *o = &opts[i];
        if (o->type == OPT_STR) {
            *(char **)o->dst = NULL;
        } else if (o->type == OPT_LIST) {
            struct strlist *l = o->dst;
            l->v = NULL;
            l->n = 0;
        } else if (o->type == OPT_BOOL) {
            *(int *)o->dst = 0;
        }
        if (o->def && opt_set(o, i, &st, SRC_DEFAULT, o->def, errstr, errsz) < 0)
            return -1;
    }

    /* The config file comes before the environment and the flags. */
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
            config = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    }
    if (config && *config && opt_load_file(opts, &st, cmd, config, errstr, errsz) < 0)
        return -1;

    for (i = 0; opts[i].name; i++) {
        const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
        if (v && *v) {
            char why[512];
            if (opt_set(&opts[i], i, &st, SRC_ENV, v, why, sizeof(why)) < 0) {
                snprintf(errstr, errsz, "%s (from $%s)", why, opts[i].env);
                return -1;
            }
        }
    }

    int dashdash = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        const struct opt *o = NULL;
        int idx = -1;

        if (dashdash || a[0] != '-' || a[1] == '\0') {
            if (!positional) {
                snprintf(errstr, errsz, "unexpected argument \"%s\" (see --help)", a);
                return -1;
            }
            strlist_push(positional, a);
            continue;
        }
        if (!strcmp(a, "--")) {
            dashdash = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            opt_usage(stdout, cmd, synopsis, opts);
            return 1;
        }
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9))
            continue;
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            o = opt_find(opts, a + 2, len, &idx);
            if (!o) {
                snprintf(errstr, errsz, "unknown option --%.*s (see --help)", (int)len, a + 2);
                return -1;
            }
            if (eq)
                val = eq + 1;
        } else {
            o = opt_find_short(opts, a[1], &idx);
            if (!o) {
                snprintf(errstr, errsz, "unknown option -%c (see --help)", a[1]);
                return -1;
            }
            if (a[2])
                val = a + 2;
        }
        if (!val && o->type != OPT_BOOL) {
            if (i + 1 >= argc) {
                snprintf(errstr, errsz, "--%s needs a value (%s)", o->name,
                         o->arg ? o->arg : "value");
                return -1;
            }
            val = argv[++i];
        }
        if (opt_set(o, idx, &st, SRC_FLAG, val, errstr, errsz) < 0)
            return -1;
    }
    return 0;
}

void opt_free(const struct opt *opts)
{
    for (int i = 0; opts[i].name; i++) {
        if (opts[i].type == OPT_STR) {
            free(*(char **)opts[i].dst);
            *(char **)opts[i].dst = NULL;
        } else if (opts[i].type == OPT_LIST) {
            strlist_fini(opts[i].dst);
        }
    }
}
