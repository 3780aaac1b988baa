/*
 * bench_sse_parse: SSE parser throughput on a large generated stream of
 * MBTA-like events (vehicle `update`s of ~700 bytes, a `reset` array now and
 * then, `: keep-alive` comments), fed in network-sized chunks. Prints MB/s
 * and events/s; asserts nothing about time.
 *
 *   build/bench/bench_sse_parse [--mb N] [--chunk BYTES] [--rounds N]
 *   build/bench/bench_sse_parse --callgrind   (small stream, one round: run
 *       under valgrind with --toggle-collect=sse_parser_feed, see
 *       bench/sse_callgrind.sh, which prints instructions per event)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sse/sse_parser.h"
#include "util/buf.h"

static uint64_t bench_events, bench_bytes_data;

static int bench_on_event(void *opaque, const struct sse_event *ev)
{
    (void)opaque;
    bench_events++;
    bench_bytes_data += ev->data_len;
    return 0;
}

static void gen_vehicle(struct buf *b, unsigned i)
{
    buf_printf(b,
               "{\"attributes\":{\"bearing\":%u,\"carriages\":[{\"label\":\"%u\","
               "\"occupancy_percentage\":null,\"occupancy_status\":\"NO_DATA_AVAILABLE\"}],"
               "\"current_status\":\"IN_TRANSIT_TO\",\"current_stop_sequence\":%u,"
               "\"direction_id\":%u,\"label\":\"%u\",\"latitude\":42.3%05u,"
               "\"longitude\":-71.0%05u,\"occupancy_status\":null,\"revenue\":\"REVENUE\","
               "\"speed\":%u.5,\"updated_at\":\"2026-12-04T14:03:%02u-05:00\"},"
               "\"id\":\"y%u\",\"links\":{\"self\":\"/vehicles/y%u\"},\"relationships\":{"
               "\"route\":{\"data\":{\"id\":\"Red\",\"type\":\"route\"}},\"stop\":{\"data\":{"
               "\"id\":\"70%03u\",\"type\":\"stop\"}},\"trip\":{\"data\":{\"id\":\"6%07u\","
               "\"type\":\"trip\"}}},\"type\":\"vehicle\"}",
               i % 360, 1500 + i % 300, i % 30, i & 1, 1500 + i % 300, i % 99999, (i * 7) % 99999,
               i % 20, i % 60, i % 2000, i % 2000, i % 200, i);
}

/* Builds about `bytes` of stream; returns the number of events in it. */
static uint64_t gen_stream(struct buf *out, size_t bytes)
{
    struct buf v;
    uint64_t n = 0;
    unsigned i = 0;
    buf_init(&v, 1 << 20);
    while (out->len < bytes) {
        if (i % 5000 == 0) {
            /* a reset: an array of 200 vehicles on one data line */
            buf_append(out, "event: reset\ndata: [", 20);
            for (unsigned k = 0; k < 200; k++) {
                buf_reset(&v);
                gen_vehicle(&v, i + k);
                if (k)
                    buf_putc(out, ',');
                buf_append(out, v.data, v.len);
            }
            buf_append(out, "]\n\n", 3);
            n++;
        }
        if (i % 50 == 49)
            buf_append(out, ": keep-alive\n", 13);
        buf_reset(&v);
        gen_vehicle(&v, i);
        buf_append(out, "event: update\ndata: ", 20);
        buf_append(out, v.data, v.len);
        buf_append(out, "\n\n", 2);
        n++;
        i++;
    }
    buf_fini(&v);
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t mb = 64, chunk = 16384;
    int rounds = 5, callgrind = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            chunk = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--callgrind"))
            callgrind = 1;
        else {
            fprintf(stderr, "usage: %s [--mb N] [--chunk BYTES] [--rounds N] [--callgrind]\n",
                    argv[0]);
            return 2;
        }
    }
    if (callgrind) {
        mb = 4;
        rounds = 1;
    }
    if (!chunk || !mb || rounds < 1)
        return 2;

    struct buf s;
    buf_init(&s, (mb + 1) << 20);
    uint64_t want = gen_stream(&s, mb << 20);
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        struct sse_parser *p = sse_parser_new(NULL, bench_on_event, NULL, NULL);
        bench_events = 0;
        double t0 = now_s();
        for (size_t at = 0; at < s.len; at += chunk)
            sse_parser_feed(p, s.data + at, s.len - at < chunk ? s.len - at : chunk);
        double t = now_s() - t0;
        sse_parser_destroy(p);
        if (bench_events != want) {
            fprintf(stderr, "bench_sse_parse: parsed %llu events, generated %llu\n",
                    (unsigned long long)bench_events, (unsigned long long)want);
            return 1;
        }
        if (t < best)
            best = t;
    }
    if (callgrind)
        printf("events %llu bytes %zu\n", (unsigned long long)want, s.len);
    else
        printf("sse_parse: %.1f MB in %zu-byte chunks, %llu events (avg %.0f B): "
               "%.0f MB/s, %.0f events/s (best of %d)\n",
               s.len / 1e6, chunk, (unsigned long long)want, (double)s.len / (double)want,
               s.len / 1e6 / best, want / best, rounds);
    buf_fini(&s);
    return 0;
}
