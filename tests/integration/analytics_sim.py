#!/usr/bin/env python3
"""analytics_sim: enrichment and the analytics views (sql/002_analytics.sql)
end to end, with `serve`, `produce` and `consume --exit-at-eof` as black boxes.

The simulator runs at --speed 6 for ~20 wall seconds (about 2 simulated
minutes) and writes its ground truth; `produce` streams vehicles,
predictions, schedules and routes into fresh topics; `consume` loads them
into schema A, then again from offset 0 with another group and another batch
size into an empty schema B.

Cases:
  replay_identical        every history table (ingested_at aside) and every
                          derived view of A equals B's, both ways (EXCEPT)
  enrichment_present      the per-event enrichment is there (not all NULL),
                          and NULL for first sightings
  arrivals_match_truth    every detected arrival is a simulator arrival of
                          the same vehicle, trip, stop and sequence, within
                          1 s, and every simulator arrival the stream could
                          show (reports of that trip before and after it)
                          is detected
  prediction_errors_match each prediction outcome equals what the simulator
                          did (its predicted time, its arrival), and every
                          loaded prediction of an arrived stop has one
  error_by_route          the aggregate view agrees with the outcomes
  ml_features_typed       the ML views expose no jsonb column and one row
                          per non-remove event

Tolerance of arrivals: the simulator reports a moving vehicle every
simulated second, and the report of the step in which it stops carries that
step's time as updated_at; the detector takes the first STOPPED_AT report,
so the error is 0 and at most the gap to the previous report (1 s), which
the view exposes as arrival_gap_s. We assert |detected - truth| <= 1 s and
arrival_gap_s <= 1 s.

Env: MBTA_STREAM, KAFKA_BROKERS, DATABASE_URL, TMOUT_MULTIPLIER; ANALYTICS_KEEP=1
keeps both schemas for inspection.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import BIN, BROKERS, DB, RUN, TM, exit_code, result, results, start_serve  # noqa: E402

SA, SB = "an_a_" + RUN, "an_b_" + RUN
TOPIC = "mbta.an%s" % RUN

def psql(sql):
    r = subprocess.run(["psql", "-qtAX", "-v", "ON_ERROR_STOP=1", "-F", "\t", DB, "-c", sql],
                       capture_output=True, text=True, timeout=120 * TM)
    if r.returncode != 0:
        raise RuntimeError("psql: %s: %s" % (sql[:80], r.stderr.strip()))
    return [ln.split("\t") for ln in r.stdout.splitlines() if ln != ""]


def ts(s):
    """PostgreSQL or ISO 8601 timestamp -> epoch seconds (float)."""
    s = s.replace(" ", "T")
    if s.endswith("+00"):
        s += ":00"
    return datetime.fromisoformat(s).astimezone(timezone.utc).timestamp()


def consume(schema, group, batch, log):
    return subprocess.run(
        [BIN, "consume", "-b", BROKERS, "--pg", DB, "--topics", "^" + TOPIC.replace(".", "\\.") + "\\..*",
         "--dead-letter-topic", TOPIC + ".dl", "--schema", schema, "--group", group,
         "--batch-size", str(batch), "--exit-at-eof", "--stats-interval", "0"],
        stdout=subprocess.DEVNULL, stderr=log, timeout=90 * TM).returncode


def cols(schema, rel):
    rows = psql("SELECT attname FROM pg_attribute WHERE attrelid = '%s.%s'::regclass AND attnum > 0"
                " AND NOT attisdropped AND attname <> 'ingested_at' ORDER BY attnum" % (schema, rel))
    return [r[0] for r in rows]


def main():
    if not BROKERS or not DB:
        return result("analytics_sim", False, "KAFKA_BROKERS and DATABASE_URL are required")
    tmp = tempfile.mkdtemp(prefix="analytics_")
    truth = os.path.join(tmp, "truth.jsonl")
    log = open(os.path.join(tmp, "log"), "w")
    clock = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    procs = []
    try:
        serve, url = start_serve(["--seed", "11", "--clock", clock, "--speed", "6",
                                  "--truth", truth], stderr=log)
        procs.append(serve)
        streams = ["vehicles=/vehicles@%s.vehicles",
                   "predictions=/predictions?filter[route_type]=0,1,2,3@%s.predictions",
                   "schedules=/schedules?filter[route_type]=0,1,2,3@%s.schedules",
                   "routes=/routes@%s.routes"]
        args = [BIN, "produce", "-b", BROKERS, "--api-url", url, "--stats-interval", "0",
                "--dead-letter-topic", TOPIC + ".dl"]
        for s in streams:
            args += ["-s", s % TOPIC]
        prod = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        procs.append(prod)
        time.sleep(20)
        prod.send_signal(signal.SIGTERM)
        prc = prod.wait(timeout=60 * TM)
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30 * TM)
        if prc != 0:
            result("produce", False, "exit %d" % prc)
        rca = consume(SA, "ga" + RUN, 5000, log)
        rcb = consume(SB, "gb" + RUN, 7, log)
        if rca != 0 or rcb != 0:
            result("consume", False, "exits %d %d (log %s)" % (rca, rcb, tmp))
            return
        check(truth)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        log.close()
        for s in (SA, SB) if not os.environ.get("ANALYTICS_KEEP") else ():
            try:
                psql("DROP SCHEMA IF EXISTS %s CASCADE" % s)
            except Exception:
                pass
        if all(results):
            subprocess.run(["rm", "-rf", tmp])


HISTORY = ["vehicle_history", "prediction_history", "schedule_history", "route_history",
           "alert_history", "trip_history", "stop_history", "resource_history", "dead_letters"]
VIEWS = ["route_types", "prediction_schedule_delay", "actual_arrivals", "prediction_outcomes",
         "prediction_error_by_route", "ml_vehicle_features", "ml_prediction_features"]


def check(truth_path):
    # --- replay_identical
    diffs, counts = [], {}
    for rel in HISTORY + VIEWS:
        c = [x for x in cols(SA, rel) if rel != "dead_letters" or x != "dead_letter_id"]
        sel = ", ".join('"%s"' % x for x in c)
        n = psql("SELECT (SELECT count(*) FROM %s.%s), (SELECT count(*) FROM %s.%s),"
                 " (SELECT count(*) FROM (SELECT %s FROM %s.%s EXCEPT ALL SELECT %s FROM %s.%s) d),"
                 " (SELECT count(*) FROM (SELECT %s FROM %s.%s EXCEPT ALL SELECT %s FROM %s.%s) d)"
                 % (SA, rel, SB, rel, sel, SA, rel, sel, SB, rel, sel, SB, rel, sel, SA, rel))[0]
        counts[rel] = int(n[0])
        if n[0] != n[1] or n[2] != "0" or n[3] != "0":
            diffs.append("%s: A %s rows, B %s, A-B %s, B-A %s" % (rel, n[0], n[1], n[2], n[3]))
    empty = [r for r in ["vehicle_history", "prediction_history", "schedule_history",
                         "route_history", "actual_arrivals", "prediction_outcomes",
                         "prediction_schedule_delay", "ml_vehicle_features"] if counts[r] == 0]
    result("replay_identical", not diffs and not empty,
           "; ".join(diffs) + (" empty: %s" % empty if empty else ""))

    # --- enrichment_present
    r = psql("SELECT count(*), count(ingest_lag_ms), count(prev_gap_s), count(implied_speed_mps),"
             " count(service_date), count(*) FILTER (WHERE prev_gap_s = 0)"
             " FROM %s.vehicle_history WHERE event <> 'remove'" % SA)[0]
    first = psql("SELECT count(*) FROM (SELECT DISTINCT ON (id) prev_gap_s FROM %s.vehicle_history"
                 " WHERE event <> 'remove' ORDER BY id, kafka_offset) f WHERE prev_gap_s IS NOT NULL" % SA)[0][0]
    p = psql("SELECT count(*), count(lead_time_s), count(drift_s),"
             " (SELECT count(schedule_delay_s) FROM %s.ml_prediction_features),"
             " (SELECT count(route_type) FROM %s.ml_vehicle_features)"
             " FROM %s.prediction_history WHERE event <> 'remove'" % (SA, SA, SA))[0]
    ok = (int(r[0]) > 0 and r[1] == r[0] and int(r[2]) > 0 and r[3] == r[2] and r[4] == r[0]
          and r[5] == "0" and first == "0" and int(p[1]) > 0 and int(p[2]) > 0 and int(p[3]) > 0
          and p[4] == r[0])
    result("enrichment_present", ok, "vehicles %s, predictions %s, first-sighting gaps %s" % (r, p, first))

    # --- truth
    arrivals = {}
    pred_events = set()
    with open(truth_path) as f:
        for ln in f:
            o = json.loads(ln)
            if o["t"] == "arrival":
                arrivals[(o["trip"], o["stop_sequence"])] = (o["vehicle"], o["stop"], ts(o["arrived_at"]))
            elif o["t"] == "event" and o["path"].startswith("/predictions") and o["event"] != "remove":
                d = json.loads(o["data"])
                for res in (d if isinstance(d, list) else [d]):
                    if res.get("type") == "prediction" and res["attributes"].get("arrival_time"):
                        pred_events.add((res["id"], ts(res["attributes"]["arrival_time"])))

    # --- arrivals_match_truth
    det = psql("SELECT vehicle_id, trip_id, stop_id, stop_sequence, arrived_at, arrival_gap_s"
               " FROM %s.actual_arrivals WHERE arrived_at IS NOT NULL" % SA)
    bad, maxerr = [], 0.0
    found = set()
    for v, trip, stop, seq, at, gap in det:
        t = arrivals.get((trip, int(seq)))
        if not t or t[0] != v or t[1] != stop:
            bad.append("detected %s %s/%s at %s not in truth" % (v, trip, seq, at))
            continue
        err = abs(ts(at) - t[2])
        maxerr = max(maxerr, err)
        if err > 1 or float(gap) > 1:
            bad.append("%s %s/%s: detected %s, truth %s, gap %s" % (v, trip, seq, at, t[2], gap))
        found.add((trip, int(seq)))
    seen = psql("SELECT trip_id, min(updated_at), max(updated_at) FROM %s.vehicle_history"
                " WHERE event <> 'remove' AND trip_id IS NOT NULL GROUP BY trip_id" % SA)
    span = {t: (ts(a), ts(b)) for t, a, b in seen}
    missed = [k for k, t in arrivals.items()
              if k[0] in span and span[k[0]][0] < t[2] <= span[k[0]][1] and k not in found]
    result("arrivals_match_truth", len(found) >= 5 and not bad and not missed,
           "%d detected, %d truth; %s; missed %s" % (len(found), len(arrivals), bad[:3], missed[:3]))

    # --- prediction_errors_match
    out = psql("SELECT prediction_id, predicted_arrival, actual_arrival, error_s, trip_id, stop_sequence"
               " FROM %s.prediction_outcomes" % SA)
    bad = []
    got = set()
    for pid, pa, aa, err, trip, seq in out:
        t = arrivals.get((trip, int(seq)))
        key = (pid, ts(pa))
        got.add(key)
        if key not in pred_events:
            bad.append("%s %s not sent by the simulator" % key)
        elif not t or abs(ts(aa) - t[2]) > 0 or abs(float(err) - (t[2] - ts(pa))) > 1e-6:
            bad.append("%s: error %s, simulator %s" % (pid, err, t and t[2] - ts(pa)))
    # A prediction forecasts an arrival only if it was received by then (the
    # view's definition): early in the run the simulated clock has not yet
    # pulled ahead of the wall clock, and a version received just after the
    # vehicle arrived is no forecast of that arrival.
    loaded = psql("SELECT DISTINCT id, arrival_time, trip_id, stop_sequence, received_at"
                  " FROM %s.prediction_history"
                  " WHERE event <> 'remove' AND arrival_time IS NOT NULL" % SA)
    want = set()
    for pid, pa, trip, seq, rcv in loaded:
        t = arrivals.get((trip, int(seq)))
        if (trip, int(seq)) in found and t and ts(rcv) <= t[2]:
            want.add((pid, ts(pa)))
    missing = want - got
    result("prediction_errors_match", len(out) >= 10 and not bad and not missing,
           "%d outcomes; %s; missing %s" % (len(out), bad[:3], sorted(missing)[:3]))

    # --- error_by_route
    agg = psql("SELECT route_id, lead_bucket, n, mean_abs_error_s, p90_abs_error_s"
               " FROM %s.prediction_error_by_route" % SA)
    rows = psql("SELECT route_id, lead_bucket, abs_error_s FROM %s.prediction_outcomes" % SA)
    groups = {}
    for rt, b, e in rows:
        groups.setdefault((rt, b), []).append(float(e))
    bad = []
    for rt, b, n, mae, p90 in agg:
        g = sorted(groups.get((rt, b), []))
        if len(g) != int(n) or abs(sum(g) / len(g) - float(mae)) > 1e-6:
            bad.append("%s %s: n %s mae %s vs %d %s" % (rt, b, n, mae, len(g), g and sum(g) / len(g)))
            continue
        k = 0.9 * (len(g) - 1)  # percentile_cont: linear interpolation
        lo = int(k)
        want90 = g[lo] + (g[min(lo + 1, len(g) - 1)] - g[lo]) * (k - lo)
        if abs(want90 - float(p90)) > 1e-6:
            bad.append("%s %s: p90 %s, expected %s" % (rt, b, p90, want90))
    result("error_by_route", len(agg) > 0 and len(agg) == len(groups) and not bad, "%s" % bad[:3])

    # --- ml_features_typed
    j = psql("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = '%s'"
             " AND table_name LIKE 'ml\\_%%' AND data_type IN ('jsonb', 'json', 'bytea')" % SA)
    n = psql("SELECT (SELECT count(*) FROM %s.ml_vehicle_features) = (SELECT count(*) FROM"
             " %s.vehicle_history WHERE event <> 'remove'), (SELECT count(*) FROM %s.ml_prediction_features)"
             " = (SELECT count(*) FROM %s.prediction_history WHERE event <> 'remove')" % (SA, SA, SA, SA))[0]
    result("ml_features_typed", not j and n == ["t", "t"], "raw columns %s, counts %s" % (j, n))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash is a failure, said in one line
        result("analytics_sim", False, repr(e))
    sys.exit(exit_code(need_any=False))
