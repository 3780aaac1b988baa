#!/usr/bin/env python3
"""produce_kafka: `mbta-stream produce` against a real broker, `serve` as the
source, each case checked against serve's ground-truth event log (--truth):

  deterministic   the topic's messages equal the truth events: keys, values
                  byte for byte (reset items sliced), headers, per-key order,
                  one reset-end marker per partition; exit 0 on SIGTERM
  source_drop     --fault-close-after: a second connection, a new reset with
                  a newer generation and its own markers, nothing lost
  bad_events      --fault-bad-every/--fault-oversize: bad events land in the
                  dead-letter topic with a reason, the rest arrives, exit 0
  backpressure    a fast source and a librdkafka queue of 10 messages: the
                  stream is paused and resumed (log and pauses= count), every
                  event still arrives exactly once, in per-key order
  fatal_status    the source answers 403: one error line with the status,
                  exit 1 once every stream is stopped, no reconnect
  broker_restart  the broker stopped ~20 s mid-stream and started again:
                  nothing lost, nothing doubled, produce never exits by itself

Env: MBTA_STREAM, KAFKA_BROKERS, TMOUT_MULTIPLIER; MBTA_STATE_DIR is passed
to scripts/services for kafka-stop/kafka-start. PRODUCE_CASES picks cases.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import (BIN, BROKERS, RUN, TM, delete_topic, exit_code, kcat_messages,  # noqa: E402
                   ko, ok, read_truth, services, start_serve, stop, wait_for)

PARTS = 3
CLOCK = "2026-03-02T08:00:00-05:00"


# ---------------------------------------------------------------- the source
def start_source(tmp, name, extra):
    truth = os.path.join(tmp, name + ".truth")
    args = ["--port", "0", "--seed", "7", "--clock", CLOCK, "--truth", truth] + extra
    p, url = start_serve(args, stderr=open(os.path.join(tmp, name + ".serve.log"), "w"))
    return p, url, truth


TOPICS = []  # deleted at the end (a ".dlq" that was never made: an error, ignored)


def start_produce(tmp, name, url, topic, extra):
    TOPICS.extend([topic, topic + ".dlq"])
    log = open(os.path.join(tmp, name + ".produce.log"), "w")
    cmd = [BIN, "produce", "-b", BROKERS, "--api-url", url,
           "--stream", "vehicles=/vehicles?filter[route_type]=0,1@" + topic,
           "--partitions", str(PARTS), "--stats-interval", "1"] + extra
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log), log.name


def consume(topic):
    """Every message of the topic: (partition, offset, key, value, headers,
    timestamp ms)."""
    msgs = []
    for m in kcat_messages(topic):
        h = m.get("headers") or []
        hd = {h[i]: h[i + 1] for i in range(0, len(h), 2)}
        msgs.append((m["partition"], m["offset"], m["key"], m["payload"], hd, m.get("ts")))
    msgs.sort(key=lambda x: (x[0], x[1]))
    return msgs


def slice_array(s):
    """The exact text of each element of a JSON array (independent of jscan)."""
    dec = json.JSONDecoder()
    i = s.index("[") + 1
    out = []
    ws = " \t\r\n"
    while True:
        while s[i] in ws:
            i += 1
        if s[i] == "]":
            return out
        _, end = dec.raw_decode(s, i)
        out.append(s[i:end])
        i = end
        while s[i] in ws:
            i += 1
        if s[i] == ",":
            i += 1


def expected(truth, conn=None):
    """Expected keyed messages in truth order: (key, value, event, seq)."""
    exp = []
    seq = epoch = 0
    for t in truth:
        if t["t"] != "event" or (conn and t["conn"] != conn):
            continue
        seq += 1
        if t["bad"]:
            continue
        d = t["data"]
        if t["event"] == "reset":
            epoch += 1  # the generation in force changes with every reset
            for item in slice_array(d):
                o = json.loads(item)
                exp.append(("%s:%s" % (o["type"], o["id"]), item, "reset", seq, epoch))
        else:
            o = json.loads(d)
            val = None if t["event"] == "remove" else d
            exp.append(("%s:%s" % (o["type"], o["id"]), val, t["event"], seq, epoch))
    return exp


def count_resets(truth):
    return sum(1 for t in truth if t["t"] == "event" and t["event"] == "reset" and not t["bad"])


def check_topic(msgs, truth, name, nconns):
    """Compares the topic with the truth; returns a reason or None. nconns:
    the connections the truth must show (each begins with a reset)."""
    exp = expected(truth)
    conns = {t["conn"] for t in truth if t["t"] == "event"}
    if len(conns) != nconns:
        return "truth shows %d connections, expected %d" % (len(conns), nconns)
    nresets = count_resets(truth)
    data = [m for m in msgs if m[4].get("event") != "reset-end"]
    marks = [m for m in msgs if m[4].get("event") == "reset-end"]
    if len(data) != len(exp):
        return "%d data messages, expected %d" % (len(data), len(exp))
    # per key, in partition order == truth order
    got_by_key, exp_by_key = {}, {}
    for m in data:
        got_by_key.setdefault(m[2], []).append(m)
    for e in exp:
        exp_by_key.setdefault(e[0], []).append(e)
    if set(got_by_key) != set(exp_by_key):
        return "keys differ: %s" % sorted(set(got_by_key) ^ set(exp_by_key))[:5]
    gens = {}
    for k, es in exp_by_key.items():
        gs = got_by_key[k]
        if len({g[0] for g in gs}) != 1:
            return "key %s in several partitions" % k
        for g, e in zip(gs, es):
            if g[3] != e[1]:
                return "key %s value %r != %r" % (k, (g[3] or "")[:80], (e[1] or "")[:80])
            h = g[4]
            if h.get("event") != e[2] or h.get("stream") != "vehicles":
                return "key %s headers %s, expected event %s" % (k, h, e[2])
            if h.get("seq") != str(e[3]):
                return "key %s seq %s, expected %d" % (k, h.get("seq"), e[3])
            if not h.get("received-at", "").isdigit() or not h.get("generation", "").isdigit():
                return "key %s bad received-at/generation %s" % (k, h)
            if g[5] != int(h["received-at"]) // 1000000:
                return "key %s timestamp %s, expected received-at in ms %s" % (
                    k, g[5], int(h["received-at"]) // 1000000)
            gens.setdefault(e[4], set()).add(int(h["generation"]))
    if len(gens) > nresets or any(len(v) != 1 for v in gens.values()):
        return "generations by reset: %s" % gens
    g = [gens[c].pop() for c in sorted(gens)]
    if g != sorted(set(g)):
        return "generations not increasing: %s" % g
    # one marker per partition per reset, after that reset's items
    for gen in g:
        ms = [m for m in marks if m[4].get("generation") == str(gen)]
        if sorted(m[0] for m in ms) != list(range(PARTS)):
            return "generation %d: markers on partitions %s" % (gen, [m[0] for m in ms])
        body = json.loads(ms[0][3])
        if body.get("stream") != "vehicles" or body.get("generation") != gen:
            return "marker body %s" % ms[0][3]
        if ms[0][2] != "mbta-stream:reset-end:vehicles":
            return "marker key %s" % ms[0][2]
    if len(marks) != nresets * PARTS:
        return "%d markers for %d resets" % (len(marks), nresets)
    return None


# ---------------------------------------------------------------- cases
def case_deterministic(tmp):
    name = "deterministic"
    topic = "t.produce.det.%s" % RUN
    src, url, truth = start_source(tmp, name, ["--limit", "150", "--rate", "500"])
    prod, plog = start_produce(tmp, name, url, topic, ["--dead-letter-topic", topic + ".dlq"])
    try:
        done = wait_for(lambda: sum(1 for t in read_truth(truth) if t["t"] == "event") >= 151, 60)
        if not done:
            return ko(name, "serve wrote fewer than 151 events")
        n = len(expected(read_truth(truth))) + PARTS
        wait_for(lambda: len(consume(topic)) >= n, 60)
        rc = stop(prod)
        if rc != 0:
            return ko(name, "produce exited %s (log %s)" % (rc, plog))
        why = check_topic(consume(topic), read_truth(truth), name, 1)
        if why:
            return ko(name, why)
        if consume(topic + ".dlq"):
            return ko(name, "dead letters from a clean source")
        log = open(plog).read()
        if "totals:" not in log or "delivered=%d" % n not in log:
            return ko(name, "no final totals with delivered=%d in %s" % (n, plog))
        ok(name)
    finally:
        if prod.poll() is None:
            prod.kill()
        stop(src, 10)


def case_source_drop(tmp):
    name = "source_drop"
    topic = "t.produce.drop.%s" % RUN
    src, url, truth = start_source(tmp, name, ["--limit", "60", "--rate", "500",
                                               "--fault-close-after", "40"])
    prod, plog = start_produce(tmp, name, url, topic, [])
    try:
        def two_conns():
            ev = [t for t in read_truth(truth) if t["t"] == "event"]
            return len([t for t in ev if t["conn"] == 2]) >= 40
        if not wait_for(two_conns, 60):
            return ko(name, "serve saw no second full connection")
        # Take exactly connections 1 and 2 (a third may have started).
        tr = [t for t in read_truth(truth) if t.get("conn") in (1, 2)]
        n = len(expected(tr)) + 2 * PARTS
        wait_for(lambda: len(consume(topic)) >= n, 60)
        src.send_signal(signal.SIGSTOP)  # no third connection while we stop
        finish(name, prod, plog, src, topic, tr, 2)
    finally:
        if prod.poll() is None:
            prod.kill()
        stop(src, 10)


def case_bad_events(tmp):
    name = "bad_events"
    topic = "t.produce.bad.%s" % RUN
    dlq = topic + ".dlq"
    src, url, truth = start_source(tmp, name, ["--limit", "100", "--rate", "500",
                                               "--fault-bad-every", "7", "--fault-oversize", "20",
                                               "--fault-oversize-bytes", "300000"])
    prod, plog = start_produce(tmp, name, url, topic, ["--dead-letter-topic", dlq,
                                                        "--max-event", "200000"])
    try:
        if not wait_for(lambda: sum(1 for t in read_truth(truth) if t["t"] == "event") >= 101, 60):
            return ko(name, "serve wrote fewer than 101 events")
        tr = read_truth(truth)
        bad = [t for t in tr if t["t"] == "event" and t["bad"]]
        n = len(expected(tr)) + PARTS
        wait_for(lambda: len(consume(topic)) >= n and len(consume(dlq)) >= len(bad), 60)
        rc = stop(prod)
        if rc != 0:
            return ko(name, "produce exited %s (log %s)" % (rc, plog))
        why = check_topic(consume(topic), tr, name, 1)
        if why:
            return ko(name, why)
        dl = consume(dlq)
        if len(bad) < 10 or len(dl) != len(bad):
            return ko(name, "%d dead letters for %d bad events" % (len(dl), len(bad)))
        seqs = sorted(int(m[4]["seq"]) for m in dl)
        if seqs != sorted(t["seq"] for t in bad):
            return ko(name, "dead-letter seqs %s != truth %s" % (seqs, [t["seq"] for t in bad]))
        for m in dl:
            if not m[4].get("reason") or m[2] != "vehicles":
                return ko(name, "dead letter without reason or key: %s" % (m,))
        by_seq = {t["seq"]: t for t in bad}
        for m in dl:
            t = by_seq[int(m[4]["seq"])]
            if len(t["data"]) < 200000 and m[3] != t["data"]:
                return ko(name, "dead letter value %r != %r" % (m[3][:60], t["data"][:60]))
        log = open(plog).read()
        if "bad=%d" % len(bad) not in log:
            return ko(name, "stats do not count bad=%d" % len(bad))
        ok(name)
    finally:
        if prod.poll() is None:
            prod.kill()
        stop(src, 10)


def case_backpressure(tmp):
    name = "backpressure"
    topic = "t.produce.bp.%s" % RUN
    limit = 2000
    src, url, truth = start_source(tmp, name, ["--limit", str(limit), "--rate", "50000",
                                               "--keepalive", "600"])
    # 10 messages fit in librdkafka's queue: a reset (~15-20 items) alone
    # overflows it, and the source is far faster than 10 per round trip.
    prod, plog = start_produce(tmp, name, url, topic, [
        "-X", "queue.buffering.max.messages=10", "--log-level", "debug"])
    try:
        if not wait_for(lambda: sum(1 for t in read_truth(truth) if t["t"] == "event") >= limit + 1,
                        60):
            return ko(name, "serve wrote fewer than %d events" % (limit + 1))
        tr = read_truth(truth)
        n = len(expected(tr)) + PARTS * count_resets(tr)
        wait_for(lambda: len(consume(topic)) >= n, 90)
        rc = stop(prod)
        if rc != 0:
            return ko(name, "produce exited %s (log %s)" % (rc, plog))
        why = check_topic(consume(topic), tr, name, 1)
        if why:
            return ko(name, why)
        log = open(plog).read()
        if "pausing the stream" not in log or "backlog drained, resuming" not in log:
            return ko(name, "no pause/resume in %s" % plog)
        totals = [l for l in log.splitlines() if " totals: " in l]
        pauses = [int(w.split("=")[1]) for l in totals for w in l.split() if w.startswith("pauses=")]
        if not pauses or pauses[0] < 1:
            return ko(name, "totals without pauses>=1: %s" % totals)
        if "delivered=%d " % n not in totals[0] or "failed=0 " not in totals[0]:
            return ko(name, "totals do not show delivered=%d failed=0: %s" % (n, totals[0]))
        ok(name)
    finally:
        if prod.poll() is None:
            prod.kill()
        stop(src, 10)


def case_fatal_status(tmp):
    name = "fatal_status"
    topic = "t.produce.fatal.%s" % RUN
    src, url, truth = start_source(tmp, name, ["--fault-status", "403", "--fault-count", "1000"])
    prod, plog = start_produce(tmp, name, url, topic, [])
    try:
        try:
            rc = prod.wait(timeout=30 * TM)
        except subprocess.TimeoutExpired:
            return ko(name, "produce still running 30 s after a 403 (log %s)" % plog)
        if rc != 1:
            return ko(name, "produce exited %s, expected 1 (log %s)" % (rc, plog))
        log = open(plog).read().splitlines()
        lines = [l for l in log if "403" in l and "ERROR" in l]
        if len(lines) != 1 or "vehicles: stopped: HTTP 403" not in lines[0]:
            return ko(name, "expected one error line with the 403, got %s" % lines)
        if not any("all streams stopped" in l for l in log):
            return ko(name, "no 'all streams stopped' line")
        closes = [t for t in read_truth(truth) if t["t"] == "close"]
        if len(closes) != 1 or closes[0]["reason"] != "status 403":
            return ko(name, "serve saw %s (a reconnect after a fatal status?)" % closes)
        if consume(topic):
            return ko(name, "messages in the topic")
        ok(name)
    finally:
        if prod.poll() is None:
            prod.kill()
        stop(src, 10)


def finish(name, prod, plog, src, topic, tr, nconns):
    """Stops produce while the source is frozen (SIGSTOP), thaws it, and
    checks the topic against the truth tr taken while frozen: messages of
    events after it (seq beyond tr's events) are left out."""
    rc = stop(prod)
    src.send_signal(signal.SIGCONT)
    if rc != 0:
        return ko(name, "produce exited %s (log %s)" % (rc, plog))
    last = sum(1 for t in tr if t["t"] == "event")
    msgs = [m for m in consume(topic) if int(m[4].get("seq", "0")) <= last]
    why = check_topic(msgs, tr, name, nconns)
    if why:
        return ko(name, why)
    ok(name)


def case_broker_restart(tmp):
    name = "broker_restart"
    topic = "t.produce.restart.%s" % RUN
    src, url, truth = start_source(tmp, name, ["--limit", "6000", "--rate", "100"])
    prod, plog = start_produce(tmp, name, url, topic, [])
    started = False
    try:
        if not wait_for(lambda: len(consume(topic)) > 100, 60):
            return ko(name, "nothing produced before the restart")
        rc, out = services("kafka-stop")
        if rc != 0:
            return ko(name, "kafka-stop failed: " + out)
        before = sum(1 for t in read_truth(truth) if t["t"] == "event")
        time.sleep(20)
        during = sum(1 for t in read_truth(truth) if t["t"] == "event") - before
        if during < 100:
            services("kafka-start")
            return ko(name, "only %d events arrived while the broker was down" % during)
        if prod.poll() is not None:
            services("kafka-start")
            return ko(name, "produce exited %s while the broker was down" % prod.returncode)
        rc, out = services("kafka-start")
        started = True
        if rc != 0:
            return ko(name, "kafka-start failed: " + out)
        time.sleep(5)
        src.send_signal(signal.SIGSTOP)  # freeze the source: a fixed truth
        time.sleep(1)
        tr = read_truth(truth)
        n = len(expected(tr)) + PARTS
        wait_for(lambda: len(consume(topic)) >= n, 90)
        if prod.poll() is not None:
            return ko(name, "produce exited %s by itself" % prod.returncode)
        finish(name, prod, plog, src, topic, tr, 1)
    finally:
        if not started:
            services("kafka-start")
        if prod.poll() is None:
            prod.kill()
        src.send_signal(signal.SIGCONT)
        stop(src, 10)


def main():
    if not BROKERS:
        ko("env", "KAFKA_BROKERS is not set")
        return 1
    import tempfile
    tmp = tempfile.mkdtemp(prefix="produce_kafka.")
    only = os.environ.get("PRODUCE_CASES", "deterministic source_drop bad_events backpressure "
                          "fatal_status broker_restart").split()
    try:
        for c in only:
            try:
                globals()["case_" + c](tmp)
            except Exception as e:  # a crash in the test is a failure, not a pass
                ko(c, "exception: %r" % e)
    finally:
        for t in TOPICS:
            delete_topic(t)
    print("logs in " + tmp)
    return exit_code()


if __name__ == "__main__":
    sys.exit(main())
