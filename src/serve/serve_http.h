/*
 * serve_http: the HTTP side of `mbta-stream serve`, on libmicrohttpd with a
 * thread per connection. Each streaming connection runs its own copy of the
 * deterministic world (sim + feed), started where the shared world clock is
 * (the first connection starts exactly at --clock), so one connection's
 * bytes depend only on the seed, the clock, its path and the options.
 * Also: JSON:API answers, API-key checks, the ground-truth file, fault
 * injection and replay of a recording (recfile).
 *
 * It does not parse arguments or handle signals: cmd_serve does.
 */
#ifndef MBTA_SERVE_HTTP_H
#define MBTA_SERVE_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct serve_conf {
    int port; /* 0: any free port on 127.0.0.1 */
    uint64_t seed;
    double speed;       /* simulated seconds per wall second */
    int64_t clock_s;    /* the world's start instant (Unix seconds) */
    double rate;        /* > 0: diff events per second, the world runs as fast as needed */
    long limit;         /* > 0: diff events per connection, then keep-alives only */
    double keepalive_s; /* idle time before ": keep-alive" */
    const char *truth_path;
    const char *api_key;
    const char *replay_path;
    int loop;
    long fault_close_after, fault_bad_every, fault_oversize, fault_status, fault_count;
    long fault_drop_vehicles;
    double fault_stall_s;
    size_t fault_oversize_bytes;
    int fault_cr, fault_drip;
};

struct serve;

/* Starts listening (threads run at once). NULL with errstr on failure. */
struct serve *serve_new(const struct serve_conf *conf, char *errstr, size_t errsz);
int serve_port(const struct serve *s);
/* Ends every connection (their truth state lines are written), stops the
 * server and frees it. NULL is a no-op. */
void serve_destroy(struct serve *s);

#endif
