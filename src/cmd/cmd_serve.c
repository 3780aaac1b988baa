/*
 * mbta-stream serve: an MBTA-compatible SSE simulator and replayer on
 * 127.0.0.1 (docs/SERVE.md). Prints "http://127.0.0.1:PORT" first on
 * stdout; SIGINT/SIGTERM end every connection (truth state lines written)
 * and exit 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/cmd_args.h"
#include "serve/serve_http.h"
#include "serve/sim.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/opt.h"
#include "util/sig.h"

int cmd_serve(int argc, char **argv)
{
    long port = 0, seed = 0, limit = 0, close_after = 0, bad_every = 0, oversize = 0;
    long oversize_bytes = 0, fstatus = 0, fcount = 0, drop = 0;
    double speed = 1, rate = 0, keepalive = 30, stall = 0;
    char *clock_str = NULL, *truth = NULL, *api_key = NULL, *replay = NULL, *log_level = NULL;
    int loop = 0, cr = 0, drip = 0;
    const struct opt opts[] = {
        {"port", 'p', OPT_INT, NULL, "0", 0, 65535, "N", "listen port on 127.0.0.1 (0: any free)",
         &port, 0},
        {"seed", 0, OPT_INT, NULL, "1", 0, 9e15, "N", "world seed: same seed, same world", &seed,
         0},
        {"speed", 0, OPT_DBL, NULL, "1", 0.001, 1e6, "X",
         "simulated seconds per wall second (replay: timing scale)", &speed, 0},
        {"clock", 0, OPT_STR, NULL, NULL, 0, 0, "ISO8601",
         "the world's start instant (default: now)", &clock_str, 0},
        {"rate", 0, OPT_DBL, NULL, "0", 0, 1e8, "R",
         "diff events per second per connection (0: world pace)", &rate, 0},
        {"limit", 0, OPT_INT, NULL, "0", 0, 1e15, "N",
         "after N diff events a connection gets keep-alives only (0: no limit)", &limit, 0},
        {"keepalive", 0, OPT_DBL, NULL, "30", 0.01, 86400, "SEC",
         "idle time before a ': keep-alive' line", &keepalive, 0},
        {"truth", 0, OPT_STR, NULL, NULL, 0, 0, "FILE",
         "write every event sent and each connection's final state (JSON lines)", &truth, 0},
        {"api-key", 0, OPT_STR, NULL, NULL, 0, 0, "K",
         "require this key (missing: 406, wrong: 403)", &api_key, OPT_F_SECRET},
        {"replay", 0, OPT_STR, NULL, NULL, 0, 0, "FILE", "play a recording instead of the world",
         &replay, 0},
        {"loop", 0, OPT_BOOL, NULL, NULL, 0, 0, NULL, "replay: start over at the end", &loop, 0},
        {"fault-close-after", 0, OPT_INT, NULL, "0", 0, 1e15, "N",
         "close each connection after N events", &close_after, 0},
        {"fault-stall", 0, OPT_DBL, NULL, "0", 0, 86400, "SEC",
         "after the reset, write nothing for SEC seconds (once per connection)", &stall, 0},
        {"fault-bad-every", 0, OPT_INT, NULL, "0", 0, 1e15, "N",
         "every Nth diff event carries malformed JSON", &bad_every, 0},
        {"fault-oversize", 0, OPT_INT, NULL, "0", 0, 1e15, "N",
         "the Nth event is padded past --fault-oversize-bytes", &oversize, 0},
        {"fault-oversize-bytes", 0, OPT_INT, NULL, "20971520", 16, 1 << 30, "BYTES",
         "size of the oversized event", &oversize_bytes, 0},
        {"fault-cr", 0, OPT_BOOL, NULL, NULL, 0, 0, NULL, "CR-only line ends", &cr, 0},
        {"fault-drip", 0, OPT_BOOL, NULL, NULL, 0, 0, NULL, "one-byte writes", &drip, 0},
        {"fault-status", 0, OPT_INT, NULL, "0", 0, 599, "CODE",
         "answer this HTTP status (403, 429, 500...) to the first --fault-count connections",
         &fstatus, 0},
        {"fault-count", 0, OPT_INT, NULL, "1", 0, 1e9, "K", "connections --fault-status applies to",
         &fcount, 0},
        {"fault-drop-vehicles", 0, OPT_INT, NULL, "0", 0, 64, "N",
         "each reconnect's reset misses N vehicles of the previous connection's state", &drop, 0},
        CMD_ARGS_LOG_LEVEL_OPT(&log_level),
        {NULL, 0, OPT_STR, NULL, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    char errstr[512];
    struct serve *srv = NULL;
    int rc = cmd_args_parse(opts, "serve", "[options]", argc, argv, NULL, &log_level);
    if (rc >= 0)
        goto out;
    rc = 2;
    struct serve_conf conf = {
        .port = (int)port,
        .seed = (uint64_t)seed,
        .speed = speed,
        .clock_s = clock_realtime_ns() / 1000000000,
        .rate = rate,
        .limit = limit,
        .keepalive_s = keepalive,
        .truth_path = truth,
        .api_key = api_key,
        .replay_path = replay,
        .loop = loop,
        .fault_close_after = close_after,
        .fault_bad_every = bad_every,
        .fault_oversize = oversize,
        .fault_oversize_bytes = (size_t)oversize_bytes,
        .fault_status = fstatus,
        .fault_count = fcount,
        .fault_drop_vehicles = drop,
        .fault_stall_s = stall,
        .fault_cr = cr,
        .fault_drip = drip,
    };
    if (clock_str && sim_parse_time(clock_str, &conf.clock_s, errstr, sizeof(errstr))) {
        fprintf(stderr, "mbta-stream serve: clock: \"%s\" is not an ISO 8601 instant: %s\n",
                clock_str, errstr);
        goto out;
    }
    if (fstatus && (fstatus < 100 || fstatus == 200)) {
        fprintf(stderr, "mbta-stream serve: fault-status: %ld is not an error status\n", fstatus);
        goto out;
    }
    sig_install();
    if (!(srv = serve_new(&conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "mbta-stream serve: %s\n", errstr);
        rc = 1;
        goto out;
    }
    printf("http://127.0.0.1:%d\n", serve_port(srv));
    fflush(stdout);
    log_info("listening on http://127.0.0.1:%d (%s)", serve_port(srv),
             replay ? "replay" : "simulator");
    while (!sig_stop)
        usleep(50 * 1000);
    log_info("stopping");
    rc = 0;
out:
    serve_destroy(srv);
    opt_free(opts);
    return rc;
}
