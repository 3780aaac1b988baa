/*
 * Fuzz target for the text parsers of the command line: the config file
 * (util/opt: sections, key = value, comments, kafka.* keys, numbers with
 * bounds, booleans, lists) and produce's stream specs (cmd/stream_spec).
 *
 * Invariants: no crash, no leak, an error always comes with a one-line
 * reason; a parsed spec has a name, a path starting with '/' and a topic.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/stream_spec.h"
#include "util/opt.h"

static char *s_str;
static long s_int;
static double s_dbl;
static int s_bool;
static struct strlist s_list, s_x;

static const struct opt opts[] = {
    {"brokers", 'b', OPT_STR, NULL, "localhost:9092", 0, 0, "HOST:PORT", "", &s_str, 0},
    {"batch-size", 0, OPT_INT, NULL, "10", 1, 100000, "N", "", &s_int, 0},
    {"ratio", 0, OPT_DBL, NULL, "0.5", 0, 1, "X", "", &s_dbl, 0},
    {"verbose", 'v', OPT_BOOL, NULL, NULL, 0, 0, NULL, "", &s_bool, 0},
    {"stream", 's', OPT_LIST, NULL, NULL, 0, 0, "SPEC", "", &s_list, 0},
    {"X", 'X', OPT_LIST, NULL, NULL, 0, 0, "K=V", "", &s_x, OPT_F_MERGE},
    {NULL, 0, OPT_STR, NULL, NULL, 0, 0, NULL, NULL, NULL, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    char err[512];

    if (!path[0]) {
        snprintf(path, sizeof(path), "/tmp/fuzz_config.%d", (int)getpid());
        unsetenv("MBTA_STREAM_CONFIG");
    }
    FILE *fp = fopen(path, "wb");
    if (!fp)
        abort();
    fwrite(data, 1, size, fp);
    fclose(fp);

    char *argv[] = {"produce", "-c", path};
    err[0] = '\0';
    int rc = opt_parse(opts, "produce", NULL, 3, argv, NULL, err, sizeof(err));
    if (rc < 0 && (!err[0] || strchr(err, '\n')))
        abort(); /* an error must say why, on one line */
    opt_free(opts);

    /* The same bytes as one stream spec (up to the first NUL). */
    char *spec = malloc(size + 1);
    if (!spec)
        abort();
    memcpy(spec, data, size);
    spec[size] = '\0';
    struct stream_spec ss;
    err[0] = '\0';
    if (stream_spec_parse(spec, "http://127.0.0.1:1", &ss, err, sizeof(err)) == 0) {
        if (!ss.name || !ss.name[0] || !ss.path || ss.path[0] != '/' || !ss.topic || !ss.url)
            abort();
        stream_spec_fini(&ss);
    } else if (!err[0]) {
        abort();
    }
    free(spec);
    return 0;
}
