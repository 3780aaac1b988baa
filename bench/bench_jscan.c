/*
 * bench_jscan: jscan_object on one MBTA vehicle and one prediction resource
 * (tests/data/resources, as produce sees them: validate the object and pick
 * "type" and "id"), the fast scanner against the reference one
 * (jscan_object_scalar) in the same run. Prints ns per document, MB/s and
 * the ratio; asserts nothing about time, only that both give the same
 * answer.
 *
 *   build/bench/bench_jscan [--iters N] [--rounds N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/jscan_int.h"

static const char bench_vehicle[] =
    "{\"attributes\":{\"bearing\":135,\"carriages\":[{\"label\":\"1712\",\"occupancy_percentage"
    "\":null,\"occupancy_status\":\"NO_DATA_AVAILABLE\"},{\"label\":\"1713\",\"occupancy_percent"
    "age\":12,\"occupancy_status\":\"MANY_SEATS_AVAILABLE\"}],\"current_status\":\"IN_TRANSIT_TO"
    "\",\"current_stop_sequence\":60,\"direction_id\":0,\"label\":\"1712\",\"latitude\":42.35493"
    ",\"longitude\":-71.06019,\"occupancy_status\":null,\"revenue\":\"REVENUE\",\"speed\":null,"
    "\"updated_at\":\"2026-12-04T14:03:11-05:00\"},\"id\":\"R-5482E4F8\",\"links\":{\"self\":\"/"
    "vehicles/R-5482E4F8\"},\"relationships\":{\"route\":{\"data\":{\"id\":\"Red\",\"type\":\"ro"
    "ute\"}},\"stop\":{\"data\":{\"id\":\"70077\",\"type\":\"stop\"}},\"trip\":{\"data\":{\"id\""
    ":\"68608128\",\"type\":\"trip\"}}},\"type\":\"vehicle\"}";

static const char bench_prediction[] =
    "{\"attributes\":{\"arrival_time\":\"2026-12-04T14:05:00-05:00\",\"arrival_uncertainty\":60,"
    "\"departure_time\":null,\"departure_uncertainty\":null,\"direction_id\":1,\"last_trip\":fal"
    "se,\"revenue\":\"REVENUE\",\"schedule_relationship\":null,\"status\":null,\"stop_sequence\""
    ":130,\"update_type\":\"MID_TRIP\",\"new_attribute\":\"kept in raw\"},\"id\":\"prediction-68"
    "608128-70077-130\",\"relationships\":{\"route\":{\"data\":{\"id\":\"Red\",\"type\":\"route"
    "\"}},\"stop\":{\"data\":{\"id\":\"70077\",\"type\":\"stop\"}},\"trip\":{\"data\":{\"id\":\""
    "68608128\",\"type\":\"trip\"}},\"vehicle\":{\"data\":{\"id\":\"R-5482E4F8\",\"type\":\"vehi"
    "cle\"}}},\"type\":\"prediction\"}";

typedef int (*object_fn)(const char *, size_t, int, const char *const *, size_t, struct jscan_str *,
                         char *, size_t);

static const char *const bench_keys[] = {"type", "id"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ns per call of fn on doc over iters calls; exits on a refused document. */
static double bench_round(object_fn fn, const char *doc, size_t n, long iters)
{
    struct jscan_str out[2];
    char err[128];
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        if (fn(doc, n, 0, bench_keys, 2, out, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_jscan: refused: %s\n", err);
            exit(1);
        }
        /* The compiler must not drop or hoist the call. */
        __asm__ volatile("" : : "r"(out[0].raw.len + out[1].raw.off) : "memory");
    }
    return (now_s() - t0) / (double)iters * 1e9;
}

static int same_answer(const char *doc, size_t n)
{
    struct jscan_str a[2], b[2];
    int ra = jscan_object(doc, n, 0, bench_keys, 2, a, NULL, 0);
    int rb = jscan_object_scalar(doc, n, 0, bench_keys, 2, b, NULL, 0);
    return ra == rb && memcmp(a, b, sizeof(a)) == 0;
}

int main(int argc, char **argv)
{
    long iters = 50000;
    int rounds = 40;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atol(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--iters N] [--rounds N]\n", argv[0]);
            return 2;
        }
    }
    if (iters < 1 || rounds < 1)
        return 2;
    static const struct {
        const char *name, *doc;
        size_t n;
    } docs[] = {
        {"vehicle", bench_vehicle, sizeof(bench_vehicle) - 1},
        {"prediction", bench_prediction, sizeof(bench_prediction) - 1},
    };
    for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
        if (!same_answer(docs[d].doc, docs[d].n)) {
            fprintf(stderr, "bench_jscan: %s: fast and scalar answers differ\n", docs[d].name);
            return 1;
        }
        /* Rounds alternate between the two, and each keeps its best: the
         * machine's noise (other processes, frequency) hits both alike. */
        double fast = 1e30, ref = 1e30;
        for (int r = 0; r < rounds; r++) {
            double t = bench_round(jscan_object, docs[d].doc, docs[d].n, iters);
            fast = t < fast ? t : fast;
            t = bench_round(jscan_object_scalar, docs[d].doc, docs[d].n, iters);
            ref = t < ref ? t : ref;
        }
        printf("jscan_object %s (%zu B): fast %.0f ns/doc %.0f MB/s, scalar %.0f ns/doc "
               "%.0f MB/s, ratio %.2f (best of %d x %ld)\n",
               docs[d].name, docs[d].n, fast, docs[d].n / fast * 1e3, ref, docs[d].n / ref * 1e3,
               ref / fast, rounds, iters);
    }
    return 0;
}
