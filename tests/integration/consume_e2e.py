#!/usr/bin/env python3
"""consume_e2e: serve -> produce -> Kafka -> consume -> PostgreSQL, checked
against serve's ground truth (--truth) and the topic itself (kcat):

  deterministic  after the run, the current tables equal the simulator's
                 final state (raw JSON equal), each history table holds
                 exactly one row per keyed message of the topic (no gap, no
                 duplicate), dead letters = the producer's dead-letter topic
  replay         the same topic into a second schema with other batch sizes:
                 every history row identical, enrichment included
  kill9          consume SIGKILLed at five random moments and restarted
  pg_restart     PostgreSQL stopped and started mid-stream (scripts/services)
  group          two consumers in one group, one SIGKILLed mid-run
  source_drop    serve --fault-close-after/--fault-drop-vehicles: vehicles
                 missing from the new reset are gone from the current table

Env: MBTA_STREAM, KAFKA_BROKERS, DATABASE_URL, TMOUT_MULTIPLIER;
MBTA_STATE_DIR is passed on to scripts/services for pg-stop/pg-start.
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import (BIN, BROKERS, DB, RUN, TM, delete_groups, delete_topic,  # noqa: E402
                   drop_schemas, exit_code, history_dump, kcat_messages, ko, ok, read_truth,
                   services, sql, sql_json, start_serve, stop, wait_for)

TOPICS, GROUPS = [], set()  # deleted at the end

PARTS = 3
CLOCK = "2026-03-02T08:00:00-05:00"
HIST = ["vehicle_history", "prediction_history", "alert_history", "trip_history",
        "stop_history", "route_history", "schedule_history", "resource_history"]
# Two topics in a schema (the stream's and its dead letters'): the topic first.
ORDER = "kafka_topic, kafka_partition, kafka_offset"
CUR = {"vehicles": "vehicle", "predictions": "prediction", "alerts": "alert", "trips": "trip",
       "stops": "stop", "routes": "route", "schedules": "schedule"}
schemas = []


def final_state(truth):
    """The client's state after applying every (good) event of every connection."""
    state = {}
    for t in truth:
        if t["t"] != "event" or t["bad"]:
            continue
        d = json.loads(t["data"])
        if t["event"] == "reset":
            state = {"%s:%s" % (o["type"], o["id"]): o for o in d}
        elif t["event"] == "remove":
            state.pop("%s:%s" % (d["type"], d["id"]), None)
        else:
            state["%s:%s" % (d["type"], d["id"])] = d
    return state


def count_expected(truth):
    """Messages the producer writes for these events (markers included)."""
    n = 0
    for t in truth:
        if t["t"] != "event" or t["bad"]:
            continue
        n += len(json.loads(t["data"])) + PARTS if t["event"] == "reset" else 1
    return n


def topic_msgs(topic):
    return [(m["partition"], m["offset"], m["key"]) for m in kcat_messages(topic)]


class Source:
    """serve + produce writing the vehicles stream into `topic`."""

    def __init__(self, tmp, name, serve_args):
        self.truth = os.path.join(tmp, name + ".truth")
        self.topic = "mbta.e2e%s.%s" % (RUN, name)
        self.dlq = "mbta.e2e%s.%s-dead" % (RUN, name)
        TOPICS.extend([self.topic, self.dlq])
        self.serve, url = start_serve(
            ["--port", "0", "--seed", "11", "--clock", CLOCK, "--truth", self.truth] + serve_args,
            stderr=open(os.path.join(tmp, name + ".serve.log"), "w"))
        self.prodlog = os.path.join(tmp, name + ".produce.log")
        self.produce = subprocess.Popen(
            [BIN, "produce", "-b", BROKERS, "--api-url", url, "--stream",
             "vehicles=/vehicles?filter[route_type]=0,1@" + self.topic,
             "--dead-letter-topic", self.dlq, "--partitions", str(PARTS),
             "--stats-interval", "0"], stdout=subprocess.DEVNULL,
            stderr=open(self.prodlog, "w"))

    def settle(self, cond, secs=60):
        """Waits for cond(truth), freezes serve, waits for the topic to hold
        every message of the truth, stops produce. Returns the truth."""
        if not wait_for(lambda: cond(read_truth(self.truth)), secs):
            raise RuntimeError("serve did not get there (truth %s)" % self.truth)
        self.serve.send_signal(signal.SIGSTOP)
        truth = read_truth(self.truth)
        n = count_expected(truth)
        if not wait_for(lambda: len(topic_msgs(self.topic)) >= n, 60):
            raise RuntimeError("topic has %d of %d messages (log %s)" %
                               (len(topic_msgs(self.topic)), n, self.prodlog))
        rc = stop(self.produce)
        if rc != 0:
            raise RuntimeError("produce exited %s" % rc)
        self.serve.send_signal(signal.SIGCONT)
        stop(self.serve, 10)
        self.truth_rows = truth
        self.state = final_state(truth)
        self.msgs = topic_msgs(self.topic)
        self.dead = topic_msgs(self.dlq) if any(t.get("bad") for t in truth) else []
        return truth

    def close(self):
        for p in (self.produce, self.serve):
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()


def consume_cmd(src, schema, group, extra=()):
    GROUPS.add(group)
    return [BIN, "consume", "-b", BROKERS, "--pg", DB, "--topics",
            "%s,%s" % (src.topic, src.dlq), "--dead-letter-topic", src.dlq, "--schema", schema,
            "--group", group, "--stats-interval", "0",
            # A SIGKILLed member leaves the group after this, not 45 s.
            "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"] + list(extra)


def run_consume(tmp, src, schema, group, extra=(), secs=90):
    log = os.path.join(tmp, "%s.consume.log" % schema)
    p = subprocess.run(consume_cmd(src, schema, group, ["--exit-at-eof"] + list(extra)),
                       stdout=subprocess.DEVNULL, stderr=open(log, "a"), timeout=secs * TM)
    return p.returncode, log


def new_schema(name):
    s = "e2e_%s_%s" % (name, RUN)
    schemas.append(s)
    return s


def check(src, schema):
    """None when the schema holds exactly the topic and the truth's state."""
    coords = []
    for h in HIST:
        coords += [(r["kafka_partition"], r["kafka_offset"]) for r in sql_json(
            "SELECT kafka_partition, kafka_offset FROM %s.%s WHERE kafka_topic = '%s'"
            % (schema, h, src.topic))]
    want = sorted((p, o) for p, o, k in src.msgs if not (k or "").startswith("mbta-stream:"))
    got = sorted(coords)
    if got != want:
        dup = len(got) - len(set(got))
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        return "history: %d rows for %d messages (%d duplicated, missing %s, extra %s)" % (
            len(got), len(want), dup, missing, extra)
    cur = {}
    for table, typ in CUR.items():
        for r in sql_json("SELECT id, raw FROM %s.%s" % (schema, table)):
            cur["%s:%s" % (typ, r["id"])] = r["raw"]
    for r in sql_json("SELECT type, id, raw FROM %s.resources" % schema):
        cur["%s:%s" % (r["type"], r["id"])] = r["raw"]
    if set(cur) != set(src.state):
        return "current: %d rows, truth %d (extra %s, missing %s)" % (
            len(cur), len(src.state), sorted(set(cur) - set(src.state))[:5],
            sorted(set(src.state) - set(cur))[:5])
    for k, v in src.state.items():
        if cur[k] != v:
            return "current %s differs from the truth" % k
    nd = int(sql("SELECT count(*) FROM %s.dead_letters" % schema))
    if nd != len(src.dead):
        return "dead letters: %d, dead-letter topic holds %d" % (nd, len(src.dead))
    return None


def case_deterministic(tmp, src):
    s = new_schema("det")
    rc, log = run_consume(tmp, src, s, "g-det-" + RUN)
    if rc != 0:
        return ko("deterministic", "consume exited %s (log %s)" % (rc, log))
    why = check(src, s)
    if why:
        return ko("deterministic", why)
    if not src.dead:
        return ko("deterministic", "the source made no bad events: the case proves nothing")
    n = int(sql("SELECT count(*) FROM %s.vehicle_history WHERE prev_distance_m IS NOT NULL" % s))
    if n == 0:
        return ko("deterministic", "no vehicle row has a previous position")
    ok("deterministic")
    s2 = new_schema("replay")
    rc, log = run_consume(tmp, src, s2, "g-replay-" + RUN, ["--batch-size", "7"])
    if rc != 0:
        return ko("replay", "consume exited %s (log %s)" % (rc, log))
    a, b = history_dump(s, HIST, ORDER), history_dump(s2, HIST, ORDER)
    if a != b:
        diff = next(i for i in range(min(len(a), len(b))) if a[i] != b[i]) if a and b else 0
        return ko("replay", "history differs (%d vs %d rows; first at %d: %s vs %s)" % (
            len(a), len(b), diff, a[diff][:200] if a else "", b[diff][:200] if b else ""))
    ok("replay")


def loaded(schema):
    try:
        return int(sql("SELECT coalesce(sum(next_offset), 0) FROM %s.offsets" % schema))
    except RuntimeError:
        return 0


def progress(schema, than, secs):
    """Waits (polling fast) until more than `than` messages are loaded."""
    end = time.time() + secs * TM
    while time.time() < end and loaded(schema) <= than:
        time.sleep(0.02)


def log_has(path, since, text):
    with open(path) as f:
        f.seek(since)
        return text in f.read()


def case_kill9(tmp, src):
    s = new_schema("kill")
    g = "g-kill-" + RUN
    log = os.path.join(tmp, s + ".consume.log")
    open(log, "w").close()
    rnd = random.Random()
    total = len(src.msgs) + len(src.dead)
    at = []
    for i in range(5):
        size = os.path.getsize(log)
        # A new group each time: positions come from PostgreSQL, not from
        # the group, and the next start need not wait for the dead member's
        # session to time out.
        p = subprocess.Popen(consume_cmd(src, s, "%s-%d" % (g, i),
                                         ["--batch-size", "1", "--batch-ms", "1"]),
                             stdout=subprocess.DEVNULL, stderr=open(log, "a"))
        # A random moment after it started loading (joining and the first
        # fetch take a while; a kill before that proves little).
        before = loaded(s)
        wait_for(lambda: log_has(log, size, "assigned"), 30)
        progress(s, before, 10)
        time.sleep(rnd.uniform(0.0, 0.2) * TM)
        p.send_signal(signal.SIGKILL)
        p.wait()
        at.append(loaded(s))
    rc, log = run_consume(tmp, src, s, g)
    if rc != 0:
        return ko("kill9", "consume exited %s (log %s)" % (rc, log))
    why = check(src, s)
    if why:
        return ko("kill9", why)
    if not any(0 < n < total for n in at):
        return ko("kill9", "no kill landed mid-stream (loaded %s of %d)" % (at, total))
    print("   (kill9: loaded %s of %d at the kills)" % (at, total), flush=True)
    ok("kill9")


def case_pg_restart(tmp, src):
    s = new_schema("pgr")
    g = "g-pgr-" + RUN
    log = os.path.join(tmp, s + ".consume.log")
    # The schema first, so that the consumer is past its start when PG goes.
    subprocess.run([BIN, "migrate", "--pg", DB, "--schema", s], capture_output=True)
    p = subprocess.Popen(consume_cmd(src, s, g, ["--batch-size", "2", "--batch-ms", "5"]),
                         stdout=subprocess.DEVNULL, stderr=open(log, "a"))
    try:
        wait_for(lambda: int(sql("SELECT coalesce(sum(next_offset), 0) FROM %s.offsets" % s)) > 0,
                 30)
        rc, out = services("pg-stop")
        if rc != 0:
            return ko("pg_restart", "pg-stop: " + out)
        time.sleep(3 * TM)
        if p.poll() is not None:
            services("pg-start")
            return ko("pg_restart", "consume exited %s while PostgreSQL was down" % p.returncode)
        rc, out = services("pg-start")
        if rc != 0:
            return ko("pg_restart", "pg-start: " + out)
        total = len(src.msgs) + len(src.dead)
        if not wait_for(lambda: int(sql("SELECT count(*) FROM %s.offsets" % s)) > 0 and
                        int(sql("SELECT coalesce(sum(next_offset), 0) FROM %s.offsets" % s)) >=
                        total, 90):
            return ko("pg_restart", "not everything loaded after the restart (log %s)" % log)
        rc = stop(p)
        if rc != 0:
            return ko("pg_restart", "consume exited %s on SIGTERM" % rc)
        why = check(src, s)
        if why:
            return ko("pg_restart", why)
        if "not committed" not in open(log).read():
            return ko("pg_restart", "no batch was ever retried: PostgreSQL went down too late")
        ok("pg_restart")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def case_group(tmp, src):
    s = new_schema("grp")
    g = "g-grp-" + RUN
    subprocess.run([BIN, "migrate", "--pg", DB, "--schema", s], capture_output=True)
    extra = ["--batch-size", "1", "--batch-ms", "1"]
    logs = [os.path.join(tmp, s + ".%s.consume.log" % x) for x in "ab"]
    a = subprocess.Popen(consume_cmd(src, s, g, extra), stdout=subprocess.DEVNULL,
                         stderr=open(logs[0], "w"))
    b = subprocess.Popen(consume_cmd(src, s, g, extra), stdout=subprocess.DEVNULL,
                         stderr=open(logs[1], "w"))
    total = len(src.msgs) + len(src.dead)
    try:
        wait_for(lambda: log_has(logs[0], 0, "assigned") and log_has(logs[1], 0, "assigned"), 30)
        progress(s, 0, 10)
        a.send_signal(signal.SIGKILL)
        a.wait()
        at = loaded(s)
        if not 0 < at < total:
            return ko("group", "the kill did not land mid-stream (%d of %d loaded)" % (at, total))
        if not wait_for(lambda: loaded(s) >= total, 90):
            return ko("group", "the survivor did not load everything (logs %s)" % logs)
        rc = stop(b)
        if rc != 0:
            return ko("group", "consume exited %s on SIGTERM" % rc)
        why = check(src, s)
        if why:
            return ko("group", why)
        if "assigned" not in open(logs[0]).read():
            return ko("group", "the killed consumer never had a partition")
        ok("group")
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()


def case_source_drop(tmp):
    src = Source(tmp, "drop", ["--limit", "100", "--rate", "400", "--fault-close-after", "30",
                               "--fault-drop-vehicles", "3"])
    try:
        src.settle(lambda tr: sum(1 for t in tr if t["t"] == "event" and t["conn"] == 2) >= 30)
        first = set()
        for t in src.truth_rows:
            if t["t"] == "event" and t["conn"] == 1 and t["event"] == "reset":
                first = {"%s:%s" % (o["type"], o["id"]) for o in json.loads(t["data"])}
        gone = first - set(src.state)
        if not gone:
            return ko("source_drop", "no vehicle vanished across the reconnect")
        s = new_schema("drop")
        rc, log = run_consume(tmp, src, s, "g-drop-" + RUN)
        if rc != 0:
            return ko("source_drop", "consume exited %s (log %s)" % (rc, log))
        why = check(src, s)
        if why:
            return ko("source_drop", why)
        ok("source_drop")
    finally:
        src.close()


def main():
    if not BROKERS or not DB:
        ko("consume_e2e", "KAFKA_BROKERS and DATABASE_URL are required")
        return 1
    tmp = tempfile.mkdtemp(prefix="consume_e2e.")
    try:
        src = Source(tmp, "det", ["--limit", "1500", "--rate", "1500", "--fault-bad-every", "97"])
        try:
            src.settle(lambda tr: sum(1 for t in tr if t["t"] == "event") >= 1501)
        finally:
            src.close()
        for case in (case_deterministic, case_kill9, case_pg_restart, case_group):
            t0 = time.time()
            try:
                case(tmp, src)
            except Exception as e:  # noqa: BLE001 (one case, one verdict)
                ko(case.__name__[5:], "%s: %s" % (type(e).__name__, e))
            print("   (%s: %.1f s)" % (case.__name__[5:], time.time() - t0), flush=True)
        try:
            case_source_drop(tmp)
        except Exception as e:  # noqa: BLE001
            ko("source_drop", "%s: %s" % (type(e).__name__, e))
    except Exception as e:  # noqa: BLE001
        ko("consume_e2e", "%s: %s (logs in %s)" % (type(e).__name__, e, tmp))
    finally:
        drop_schemas(schemas)
        delete_groups(sorted(GROUPS))
        for t in TOPICS:
            delete_topic(t)
    return exit_code()


if __name__ == "__main__":
    sys.exit(main())
