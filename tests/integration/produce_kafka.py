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
  broker_restart  the broker stopped ~20 s mid-stream and started again:
                  nothing lost, nothing doubled, produce never exits by itself

Env: MBTA_STREAM, KAFKA_BROKERS, TMOUT_MULTIPLIER; MBTA_STATE_DIR is passed
to scripts/services for kafka-stop/kafka-start. Until `serve` exists
(MBTA_TEST_FAKE_SERVE=1 or serve lacking --truth), a small stdlib stand-in
with the same options and truth format is used.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("MBTA_STREAM", os.path.join(ROOT, "build", "mbta-stream"))
BROKERS = os.environ.get("KAFKA_BROKERS", "")
TM = float(os.environ.get("TMOUT_MULTIPLIER", "1") or 1)
RUN = "%d_%d" % (os.getpid(), int(time.time()))
PARTS = 3
CLOCK = "2026-03-02T08:00:00-05:00"
results = []


def ok(name):
    print("PASS " + name, flush=True)
    results.append(True)


def ko(name, why):
    print("FAIL %s: %s" % (name, why), flush=True)
    results.append(False)


# ---------------------------------------------------------------- the source
def fake_serve(argv):
    """A stand-in for `mbta-stream serve` (subset of its options)."""
    import http.server

    opts = {"--port": "0", "--seed": "1", "--limit": "0", "--rate": "200",
            "--truth": None, "--fault-close-after": "0", "--fault-bad-every": "0",
            "--fault-oversize": "0", "--fault-oversize-bytes": str(20 << 20), "--clock": ""}
    i = 0
    while i < len(argv):
        opts[argv[i]] = argv[i + 1]
        i += 2
    truth = open(opts["--truth"], "a") if opts["--truth"] else None
    lock = threading.Lock()
    conns = [0]

    def log(obj):
        if truth:
            with lock:
                truth.write(json.dumps(obj, separators=(",", ":")) + "\n")
                truth.flush()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            with lock:
                conns[0] += 1
                conn = conns[0]
            rnd = random.Random(int(opts["--seed"]) * 1000 + conn)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            ents = {}
            for k in range(8):
                ents["v%d" % k] = 0
            seq = 0
            close_after = int(opts["--fault-close-after"])
            bad_every = int(opts["--fault-bad-every"])
            oversize = int(opts["--fault-oversize"])
            ndiff = 0
            limit = int(opts["--limit"])
            gap = 1.0 / float(opts["--rate"])

            def res(i, v):
                return '{"attributes":{"label":"%s","n":%d, "x":"\\u00e9\xe9"},"id":"%s","type":"vehicle"}' % (i, v, i)

            def send(ev, data, bad=False):
                nonlocal seq
                seq += 1
                if oversize and seq == oversize:
                    data = data[:-1] + ',"pad":"' + "x" * int(opts["--fault-oversize-bytes"]) + '"}'
                    bad = True
                self.wfile.write(("event: %s\ndata: %s\n\n" % (ev, data)).encode())
                self.wfile.flush()
                log({"t": "event", "conn": conn, "path": self.path, "seq": seq, "event": ev,
                     "data": data, "bad": bad})
                return not (close_after and seq >= close_after)

            try:
                items = ",".join(res(k, v) for k, v in sorted(ents.items()))
                go = send("reset", "[" + items + "]")
                nextid = 8
                while go and (not limit or ndiff < limit):
                    time.sleep(gap)
                    ndiff += 1
                    r = rnd.random()
                    if r < 0.15:
                        i = "v%d" % nextid
                        nextid += 1
                        ents[i] = 0
                        ev, data = "add", res(i, 0)
                    elif r < 0.25 and ents:
                        i = rnd.choice(sorted(ents))
                        del ents[i]
                        ev, data = "remove", '{"id":"%s","type":"vehicle"}' % i
                    else:
                        i = rnd.choice(sorted(ents))
                        ents[i] += 1
                        ev, data = "update", res(i, ents[i])
                    bad = False
                    if bad_every and ndiff % bad_every == 0:
                        data, bad = data[: len(data) // 2], True
                    go = send(ev, data, bad)
                while go:
                    time.sleep(0.2)
                    self.wfile.write(b": keep-alive\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            log({"t": "close", "conn": conn, "reason": "end"})

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(opts["--port"])), H)
    srv.daemon_threads = True
    print("http://127.0.0.1:%d" % srv.server_address[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    srv.serve_forever()


def use_fake():
    if os.environ.get("MBTA_TEST_FAKE_SERVE") == "1":
        return True
    try:
        h = subprocess.run([BIN, "serve", "--help"], capture_output=True, timeout=10)
        return b"--truth" not in h.stdout + h.stderr
    except Exception:
        return True


FAKE = None


def start_source(tmp, name, extra):
    truth = os.path.join(tmp, name + ".truth")
    args = ["--port", "0", "--seed", "7", "--clock", CLOCK, "--truth", truth] + extra
    if FAKE:
        cmd = [sys.executable, os.path.abspath(__file__), "--fake-serve"] + args
    else:
        cmd = [BIN, "serve"] + args
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, name + ".serve.log"), "w"))
    url = p.stdout.readline().decode().strip()
    if not url.startswith("http"):
        p.kill()
        raise RuntimeError("serve printed %r" % url)
    return p, url, truth


def read_truth(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out


def start_produce(tmp, name, url, topic, extra):
    log = open(os.path.join(tmp, name + ".produce.log"), "w")
    cmd = [BIN, "produce", "-b", BROKERS, "--api-url", url,
           "--stream", "vehicles=/vehicles?filter[route_type]=0,1@" + topic,
           "--partitions", str(PARTS), "--stats-interval", "1"] + extra
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log), log.name


def consume(topic):
    """Every message of the topic: (partition, offset, key, value, headers)."""
    r = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", topic, "-e", "-J", "-q"],
                       capture_output=True, timeout=60 * TM)
    msgs = []
    for line in r.stdout.decode("utf-8").splitlines():
        if not line.strip():
            continue
        m = json.loads(line)
        h = m.get("headers") or []
        hd = {h[i]: h[i + 1] for i in range(0, len(h), 2)}
        msgs.append((m["partition"], m["offset"], m["key"], m["payload"], hd))
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


def wait_for(cond, secs):
    end = time.time() + secs * TM
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.3)
    return False


def stop(p, secs=60):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=secs * TM)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return "timeout"


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
        rc = stop(prod)
        src.send_signal(signal.SIGCONT)
        if rc != 0:
            return ko(name, "produce exited %s (log %s)" % (rc, plog))
        msgs = consume(topic)
        # Drop anything of a third connection (seq beyond conn 2's events).
        last = sum(1 for t in tr if t["t"] == "event")
        msgs = [m for m in msgs if int(m[4].get("seq", "0")) <= last]
        why = check_topic(msgs, tr, name, 2)
        if why:
            return ko(name, why)
        ok(name)
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


def services(cmd):
    env = dict(os.environ)
    r = subprocess.run(["sh", os.path.join(ROOT, "scripts", "services"), cmd],
                       capture_output=True, env=env, timeout=120 * TM)
    return r.returncode, (r.stdout + r.stderr).decode()[-300:]


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
        rc = stop(prod)
        src.send_signal(signal.SIGCONT)
        if rc != 0:
            return ko(name, "produce exited %s (log %s)" % (rc, plog))
        msgs = consume(topic)
        last = sum(1 for t in tr if t["t"] == "event")
        msgs = [m for m in msgs if int(m[4].get("seq", "0")) <= last]
        why = check_topic(msgs, tr, name, 1)
        if why:
            return ko(name, why)
        ok(name)
    finally:
        if not started:
            services("kafka-start")
        if prod.poll() is None:
            prod.kill()
        src.send_signal(signal.SIGCONT)
        stop(src, 10)


def main():
    global FAKE
    if len(sys.argv) > 1 and sys.argv[1] == "--fake-serve":
        return fake_serve(sys.argv[2:])
    if not BROKERS:
        ko("env", "KAFKA_BROKERS is not set")
        return 1
    FAKE = use_fake()
    if FAKE:
        print("# serve has no --truth yet: using the stdlib stand-in", flush=True)
    import tempfile
    tmp = tempfile.mkdtemp(prefix="produce_kafka.")
    only = os.environ.get("PRODUCE_CASES", "deterministic source_drop bad_events broker_restart").split()
    for c in only:
        try:
            globals()["case_" + c](tmp)
        except Exception as e:  # a crash in the test is a failure, not a pass
            ko(c, "exception: %r" % e)
    print("logs in " + tmp)
    return 0 if all(results) and results else 1


if __name__ == "__main__":
    sys.exit(main())
