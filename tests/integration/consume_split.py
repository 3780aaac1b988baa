#!/usr/bin/env python3
"""consume_split: a batch that PostgreSQL refuses for its data is split in
halves until the bad message is found (src/pg/sink.c write_split); that one
becomes a dead letter with PostgreSQL's error, everything else is committed.

The bad message: a vehicle (or an unknown type) whose JSON carries an
attribute we have no column for with the number 1e1000000. It passes every
check of the consumer (valid JSON: jscan does not bound exponents; the typed
columns are all in range; unknown attributes are only kept in `raw`), but
PostgreSQL's jsonb stores numbers as `numeric`, which refuses it: "value
overflows numeric format" (22003), so the COPY of the history rows fails.

With kcat, into a topic of 3 partitions: 200 good messages (9 vehicles and
6 resources of two types we have no table for, each facility with the id of
a parking, so that the generic current table must tell them apart by type;
each entity on one partition, many events each) and 4 bad ones: the first message of partition 0, two adjacent ones
(a vehicle and an unknown type) in the middle of partition 1, and the last
message of partition 2, which is also the last event of its vehicle.

  split_batch_<N>   consume --exit-at-eof into a fresh schema, with the
                    default batch size (one batch holds several bad
                    messages) and with --batch-size 10: every good message
                    exactly once in history, the current rows equal the last
                    good event of each entity, each bad message once in
                    dead_letters (coordinates, key, raw bytes, a reason with
                    PostgreSQL's error), the stored offsets (PostgreSQL)
                    and the group's committed offsets (Kafka) at the end of
                    every partition, the "splitting it to find the bad
                    message" line in the log
  same_history      both schemas hold the same history rows, enrichment
                    included (state across the halves comes from what the
                    first half committed)
  restart           consume again: nothing read again (final stats:
                    messages 0, skipped 0), no row and no dead letter added
  same_id_two_types facility:x1 and parking:x1 in one batch: both current
                    rows (the generic table's entity is type + id)

Schemas, topic and groups are named per run, and dropped or deleted at
the end (the Kafka ones with a few requests of the Kafka protocol: kcat
cannot). Env: MBTA_STREAM, KAFKA_BROKERS, DATABASE_URL, TMOUT_MULTIPLIER.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import (BIN, BROKERS, DB, RUN, TM, delete_groups, delete_topic,  # noqa: E402
                   drop_schemas, exit_code, group_offsets, history_dump, kcat_messages, ko, ok,
                   results, sql, sql_json)

TOPIC = "mbta.split%s.vehicles" % RUN
DLQ = "mbta.split%s.dead-letters" % RUN  # never written: keeps the default out
PARTS = 3
GOOD_PER_PART = (67, 67, 66)  # 200
BAD = "1e1000000"  # valid JSON, overflows PostgreSQL's numeric (jsonb)
SPLIT_LINE = "splitting it to find the bad message"
HIST = ("vehicle_history", "resource_history")
ORDER = "kafka_partition, kafka_offset"
schemas = []
groups = []


# ---- the messages ----------------------------------------------------------


def entities():
    """(type, id, partition): 9 vehicles and 6 of two types we have no table
    for, 5 per partition. Each facility shares its id with a parking: the
    generic table's entity is (type, id), not id alone."""
    out = []
    for i in range(15):
        if i % 5 >= 3:
            typ = "facility" if i % 5 == 4 else "parking"
            out.append((typ, "sx%d" % (i // 5), i % PARTS))
        else:
            out.append(("vehicle", "sv%d" % i, i % PARTS))
    return out


def value(typ, eid, n, bad=False):
    """One resource as the MBTA would send it; n makes every event unique."""
    extra = ',"odometer":%s' % BAD if bad else ""
    if typ != "vehicle":
        return ('{"type":"%s","id":"%s","attributes":{"name":"F%d","n":%d%s}}'
                % (typ, eid, n, n, extra))
    mm, ss = divmod(n, 60)
    return ('{"type":"vehicle","id":"%s","attributes":{"latitude":%.4f,"longitude":-71.06,'
            '"updated_at":"2026-12-04T14:%02d:%02d-05:00","current_status":"IN_TRANSIT_TO",'
            '"bearing":%d,"speed":null,"direction_id":%d,"label":"L%s","n":%d%s},'
            '"relationships":{"route":{"data":{"type":"route","id":"Red"}},"stop":{"data":null}}}'
            % (eid, 42.30 + n * 0.0001, mm % 60, ss, n % 360, n % 2, eid, n, extra))


def plan():
    """Per partition, the messages in order: (key, value, good)."""
    ents = entities()
    parts = []
    n = 0
    for p in range(PARTS):
        mine = [e for e in ents if e[2] == p]
        msgs = []
        for j in range(GOOD_PER_PART[p]):
            typ, eid, _ = mine[j % len(mine)]
            n += 1
            msgs.append(("%s:%s" % (typ, eid), value(typ, eid, n), True))
        parts.append(msgs)

    def bad(p, k):
        typ, eid, _ = [e for e in ents if e[2] == p][k]
        return ("%s:%s" % (typ, eid), value(typ, eid, 10000 + p * 10 + k, bad=True), False)

    # first message of partition 0
    parts[0].insert(0, bad(0, 1))
    # two adjacent in the middle of partition 1: a vehicle, an unknown type
    mid = len(parts[1]) // 2
    parts[1][mid:mid] = [bad(1, 0), bad(1, 1)]
    # last of partition 2, and the last event of that vehicle: its current
    # row must stay at its previous (good) event
    last_key = parts[2][-1][0]
    typ, eid = last_key.split(":")
    parts[2].append((last_key, value(typ, eid, 20000, bad=True), False))
    return parts


def produce(parts):
    now = time.time_ns()
    for p, msgs in enumerate(parts):
        data = "".join("%s\t%s\n" % (k, v) for k, v, _ in msgs).encode()
        r = subprocess.run(
            ["kcat", "-P", "-b", BROKERS, "-t", TOPIC, "-p", str(p), "-K", "\t",
             "-X", "enable.idempotence=true", "-H", "event=update", "-H", "stream=vehicles",
             "-H", "generation=1", "-H", "received-at=%d" % now, "-H", "seq=1"],
            input=data, capture_output=True, timeout=60 * TM)
        if r.returncode != 0:
            raise RuntimeError("kcat -P: %s" % r.stderr.decode()[-300:])


def topic_msgs():
    """Every message of the topic: {(partition, offset): (key, value)}."""
    return {(m["partition"], m["offset"]): (m["key"], m["payload"])
            for m in kcat_messages(TOPIC)}


# ---- consume and check -----------------------------------------------------


def consume(schema, group, log, extra=()):
    with open(log, "a") as f:
        p = subprocess.run(
            [BIN, "consume", "-b", BROKERS, "--pg", DB, "--topics", TOPIC,
             "--dead-letter-topic", DLQ, "--schema", schema, "--group", group,
             "--exit-at-eof", "--stats-interval", "0"] + list(extra),
            stdout=subprocess.DEVNULL, stderr=f, timeout=40 * TM)
    return p.returncode


def check(schema, msgs, good, bad, log):
    """None when the schema holds exactly what it should."""
    # History: every good message once, with its value.
    rows = []
    for h in ("vehicle_history", "resource_history"):
        rows += sql_json("SELECT kafka_partition AS p, kafka_offset AS o, raw FROM %s.%s"
                         " WHERE kafka_topic = '%s'" % (schema, h, TOPIC))
    got = sorted((r["p"], r["o"]) for r in rows)
    if got != sorted(good):
        return "history: %d rows for %d good messages (%d duplicated, missing %s, extra %s)" % (
            len(got), len(good), len(got) - len(set(got)), sorted(set(good) - set(got))[:5],
            sorted(set(got) - set(good))[:5])
    for r in rows:
        if r["raw"] != json.loads(msgs[(r["p"], r["o"])][1]):
            return "history row %d@%d: raw differs from the message" % (r["p"], r["o"])
    # Current: the last good event of each entity.
    want = {}
    for c in sorted(good):
        want[msgs[c][0]] = json.loads(msgs[c][1])
    cur = {}
    for r in sql_json("SELECT id, raw FROM %s.vehicles" % schema):
        cur["vehicle:" + r["id"]] = r["raw"]
    for r in sql_json("SELECT type, id, raw FROM %s.resources" % schema):
        cur["%s:%s" % (r["type"], r["id"])] = r["raw"]
    if set(cur) != set(want):
        return "current: %d rows for %d entities (extra %s, missing %s)" % (
            len(cur), len(want), sorted(set(cur) - set(want)), sorted(set(want) - set(cur)))
    for k in want:
        if cur[k] != want[k]:
            return "current %s: %s, want the last good event %s" % (
                k, json.dumps(cur[k])[:120], json.dumps(want[k])[:120])
    # Dead letters: each bad message once, with its coordinates and bytes.
    dl = sql_json("SELECT kafka_topic AS t, kafka_partition AS p, kafka_offset AS o, key,"
                  " encode(raw, 'hex') AS raw, reason FROM %s.dead_letters" % schema)
    got = sorted((r["p"], r["o"]) for r in dl)
    if got != sorted(bad) or any(r["t"] != TOPIC for r in dl):
        return "dead letters at %s, want %s" % (
            [(r["t"][-20:], r["p"], r["o"]) for r in dl], sorted(bad))
    for r in dl:
        key, val = msgs[(r["p"], r["o"])]
        if r["key"] != key or bytes.fromhex(r["raw"]) != val.encode():
            return "dead letter %d@%d: key or raw bytes differ" % (r["p"], r["o"])
        reason = r["reason"] or ""
        if not reason.startswith("refused by PostgreSQL"):
            return ("dead letter %d@%d: the consumer refused it itself (%r): it no longer reaches"
                    " PostgreSQL, so nothing is split; this test needs another value that only"
                    " PostgreSQL refuses" % (r["p"], r["o"], reason))
        if not ("refused by PostgreSQL" in reason and "value overflows numeric format" in reason
                and "22003" in reason):
            return "dead letter %d@%d: reason %r does not name PostgreSQL's error" % (
                r["p"], r["o"], reason)
    # Offsets: the end of every partition.
    ends = {}
    for p, o in msgs:
        ends[p] = max(ends.get(p, 0), o + 1)
    offs = {r["partition"]: r["next_offset"] for r in sql_json(
        "SELECT partition, next_offset FROM %s.offsets WHERE topic = '%s'" % (schema, TOPIC))}
    if offs != ends:
        return "stored offsets %s, partition ends %s" % (offs, ends)
    with open(log) as f:
        if SPLIT_LINE not in f.read():
            return "no %r line in the log (%s): no batch was split" % (SPLIT_LINE, log)
    return None


def final_stats(log):
    """The last "final stats" line of a log."""
    line = ""
    with open(log) as f:
        for x in f:
            if "final stats:" in x:
                line = x.strip()
    return line


def same_id_two_types(tmp):
    """Two resources of types we have no table for, with one id, in one
    batch: the generic current table keeps both (its entity is type + id)."""
    topic = TOPIC + ".same-id"
    schema = "split_same_id_%s" % RUN
    schemas.append(schema)
    group = "g-split-same-id-%s" % RUN
    groups.append(group)
    data = ('facility:x1\t{"type":"facility","id":"x1","attributes":{"a":1}}\n'
            'parking:x1\t{"type":"parking","id":"x1","attributes":{"a":2}}\n').encode()
    r = subprocess.run(["kcat", "-P", "-b", BROKERS, "-t", topic, "-p", "0", "-K", "\t",
                        "-H", "event=add", "-H", "stream=s", "-H", "generation=1",
                        "-H", "received-at=%d" % time.time_ns(), "-H", "seq=1"],
                       input=data, capture_output=True, timeout=60 * TM)
    if r.returncode != 0:
        raise RuntimeError("kcat -P: %s" % r.stderr.decode()[-300:])
    log = os.path.join(tmp, schema + ".log")
    with open(log, "a") as f:
        rc = subprocess.run(
            [BIN, "consume", "-b", BROKERS, "--pg", DB, "--topics", topic,
             "--dead-letter-topic", DLQ, "--schema", schema, "--group", group,
             "--exit-at-eof", "--stats-interval", "0"],
            stdout=subprocess.DEVNULL, stderr=f, timeout=40 * TM).returncode
    try:
        if rc != 0:
            ko("same_id_two_types", "consume exited %s (log %s)" % (rc, log))
            return
        got = sql("SELECT string_agg(type || ':' || id || '=' || (raw->'attributes'->>'a'), ' '"
                  " ORDER BY type) FROM %s.resources" % schema)
        if got != "facility:x1=1 parking:x1=2":
            ko("same_id_two_types", "current rows %r, want facility:x1=1 parking:x1=2" % got)
        else:
            ok("same_id_two_types")
    finally:
        delete_topic(topic)


def main():
    if not BROKERS or not DB:
        ko("consume_split", "KAFKA_BROKERS and DATABASE_URL are required")
        return 1
    tmp = tempfile.mkdtemp(prefix="consume_split.")
    t0 = time.time()
    try:
        produce(plan())
        msgs = topic_msgs()
        planned = plan()
        # The topic is new: partition p holds exactly plan()[p], in order.
        want = {(p, o): (k, v) for p, ms in enumerate(planned) for o, (k, v, _) in
                enumerate(ms)}
        if msgs != want:
            raise RuntimeError("the topic holds %d messages, %d produced (not in order?)"
                               % (len(msgs), len(want)))
        good = [(p, o) for p, ms in enumerate(planned) for o, m in enumerate(ms) if m[2]]
        bad = [(p, o) for p, ms in enumerate(planned) for o, m in enumerate(ms) if not m[2]]
        ends = {p: len(ms) for p, ms in enumerate(planned)}
        print("   (%d good, %d bad messages at %s)" % (len(good), len(bad), bad), flush=True)
        done = []
        for name, extra in (("default", ()), ("10", ("--batch-size", "10"))):
            s = "split_%s_%s" % (name, RUN)
            schemas.append(s)
            log = os.path.join(tmp, s + ".log")
            group = "g-split-%s-%s" % (name, RUN)
            groups.append(group)
            rc = consume(s, group, log, extra)
            if rc != 0:
                ko("split_batch_" + name, "consume exited %s (log %s)" % (rc, log))
                continue
            why = check(s, msgs, good, bad, log)
            if not why:
                # Kafka's committed offsets (for lag monitoring) too.
                koffs = group_offsets(group, TOPIC, list(range(PARTS)))
                if koffs != ends:
                    why = "the group's committed offsets %s, partition ends %s" % (koffs, ends)
            if why:
                ko("split_batch_" + name, why)
                continue
            print("   (%s: %s)" % (name, final_stats(log).split("final stats: ")[-1]),
                  flush=True)
            ok("split_batch_" + name)
            done.append((s, log, name))
        if len(done) == 2:
            a, b = history_dump(done[0][0], HIST, ORDER), history_dump(done[1][0], HIST, ORDER)
            if a != b:
                i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), 0)
                ko("same_history", "the history differs with the batch size (%d vs %d rows;"
                   " first at %d: %s vs %s)" % (len(a), len(b), i, a[i][:300] if a else "",
                                                b[i][:300] if b else ""))
            else:
                ok("same_history")
        if done:
            s, log, name = done[0]
            counts = ("SELECT (SELECT count(*) FROM %s.vehicle_history) || '/' ||"
                      " (SELECT count(*) FROM %s.resource_history) || '/' ||"
                      " (SELECT count(*) FROM %s.dead_letters)" % (s, s, s))
            before = sql(counts)
            log2 = os.path.join(tmp, s + ".restart.log")
            rc = consume(s, "g-split-%s-%s" % (name, RUN), log2)
            after = sql(counts)
            st = final_stats(log2)
            if rc != 0:
                ko("restart", "consume exited %s (log %s)" % (rc, log2))
            elif before != after:
                ko("restart", "rows/dead letters %s before, %s after" % (before, after))
            elif "messages 0," not in st or "skipped 0," not in st:
                ko("restart", "messages read again: %s" % st)
            else:
                why = check(s, msgs, good, bad, log)
                if why:
                    ko("restart", why)
                else:
                    ok("restart")
        same_id_two_types(tmp)
    except Exception as e:  # noqa: BLE001 (one verdict)
        ko("consume_split", "%s: %s (logs in %s)" % (type(e).__name__, e, tmp))
    finally:
        drop_schemas(schemas)
        delete_groups(groups)
        delete_topic(TOPIC)
        if results and all(results):
            shutil.rmtree(tmp, ignore_errors=True)
        print("   (%.1f s)" % (time.time() - t0), flush=True)
    return exit_code()


if __name__ == "__main__":
    sys.exit(main())
