"""itest: what the Python integration tests (tests/integration/*.py) share.

It lives in tests/lib/, not tests/integration/, because tests/run executes
every *.py file there as a test. A test imports it with

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    from itest import ...  # noqa: E402

Standard library only. Each test is its own process, so the module-level
state (RUN, results) belongs to that one test.

The environment (set by tests/run):
  ROOT      the checkout (three levels above this file)
  BIN       $MBTA_STREAM, else ROOT/build/mbta-stream
  BROKERS   $KAFKA_BROKERS, else ""
  DB        $DATABASE_URL, else ""
  TM        $TMOUT_MULTIPLIER as a float (unset or empty: 1); every timeout
            below is multiplied by it
  RUN       "<pid>_<unix time>": names a run's topics, schemas and groups

Results: the lines tests/run counts.
  ok(name)                      prints "PASS name"
  ko(name, why)                 prints "FAIL name: why"
  result(name, passed, why="")  one or the other
  results                       the list of verdicts so far (True / False)
  exit_code(need_any=True)      0 when every verdict passed (and, with
                                need_any, there was at least one), else 1

PostgreSQL (psql on PATH, DB):
  sql(q)                 the output of one statement (-qtAX), stripped;
                         RuntimeError with psql's stderr on failure (60 s)
  sql_json(q)            the rows of a query as a list of dicts (json_agg)
  drop_schemas(schemas)  DROP SCHEMA ... CASCADE each, errors ignored
  history_dump(schema, tables, order)
                         every row of those tables as JSON text,
                         ingested_at aside, ORDER BY order, in table order

Processes and waiting:
  wait_for(cond, secs)   polls cond() every 0.3 s for secs * TM seconds
  stop(p, secs=60)       SIGTERM and wait: the exit code, "timeout" (then
                         SIGKILLed) when it did not end in secs * TM
  start_serve(args, stderr=None)
                         starts `BIN serve ARGS` and reads the URL it
                         prints: (Popen, url); RuntimeError (serve killed)
                         if the first line is not a URL
  read_truth(path)       the complete lines of serve's --truth file, parsed
  services(cmd)          sh scripts/services CMD: (exit code, last 300
                         characters of its output) (120 s)

Kafka:
  kcat_messages(topic)   every message of the topic (kcat -C -e -J), as
                         kcat's JSON objects, in kcat's order (60 s)
  For what kcat cannot do, a few requests of the Kafka protocol to the first
  broker (errors in the answers ignored):
  kafka_call(api_key, version, body)   one request (header v1): the body of
                         the response; the client id is the test's name
  kstr(s), Reader(b)     encode a protocol string; read a response
  group_offsets(group, topic, partitions)
                         the group's committed offsets (OffsetFetch v1):
                         {partition: offset}, -1 for none
  delete_groups(groups)  DeleteGroups v0  } cleanup: errors ignored, a broker
  delete_topic(topic)    DeleteTopics v1  } out of reach too (one line said)
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("MBTA_STREAM") or os.path.join(ROOT, "build", "mbta-stream")
BROKERS = os.environ.get("KAFKA_BROKERS", "")
DB = os.environ.get("DATABASE_URL", "")
TM = float(os.environ.get("TMOUT_MULTIPLIER", "1") or 1)
RUN = "%d_%d" % (os.getpid(), int(time.time()))

# ---- results ---------------------------------------------------------------

results = []


def ok(name):
    print("PASS " + name, flush=True)
    results.append(True)


def ko(name, why):
    print("FAIL %s: %s" % (name, why), flush=True)
    results.append(False)


def result(name, passed, why=""):
    if passed:
        ok(name)
    else:
        ko(name, why)


def exit_code(need_any=True):
    """0 when every verdict passed; with need_any, none at all is a failure."""
    return 0 if (results or not need_any) and all(results) else 1


# ---- PostgreSQL ------------------------------------------------------------


def sql(q):
    r = subprocess.run(["psql", "-qtAX", DB, "-c", q], capture_output=True, timeout=60 * TM)
    if r.returncode != 0:
        raise RuntimeError("psql: %s" % r.stderr.decode()[-300:])
    return r.stdout.decode().strip()


def sql_json(q):
    return json.loads(sql("SELECT coalesce(json_agg(x), '[]') FROM (%s) x" % q))


def drop_schemas(schemas):
    for s in schemas:
        try:
            sql("DROP SCHEMA IF EXISTS %s CASCADE" % s)
        except Exception:  # noqa: BLE001
            pass


def history_dump(schema, tables, order):
    """Every row of the tables as text, ingested_at aside, in a stable order."""
    out = []
    for h in tables:
        out += [r["j"] for r in sql_json(
            "SELECT (to_jsonb(t) - 'ingested_at')::text AS j FROM %s.%s t"
            " ORDER BY %s" % (schema, h, order))]
    return out


# ---- processes and waiting -------------------------------------------------


def wait_for(cond, secs):
    end = time.time() + secs * TM
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.3)
    return False


def stop(p, secs=60):
    if p.poll() is not None:
        return p.returncode
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=secs * TM)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return "timeout"


def start_serve(args, stderr=None):
    """`BIN serve ARGS`, its stdout a pipe: (Popen, the URL it printed)."""
    p = subprocess.Popen([BIN, "serve"] + list(args), stdout=subprocess.PIPE, stderr=stderr)
    url = p.stdout.readline().decode().strip()
    if not url.startswith("http"):
        p.kill()
        raise RuntimeError("serve printed %r" % url)
    return p, url


def read_truth(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out


def services(cmd):
    r = subprocess.run(["sh", os.path.join(ROOT, "scripts", "services"), cmd],
                       capture_output=True, timeout=120 * TM)
    return r.returncode, (r.stdout + r.stderr).decode()[-300:]


# ---- Kafka -----------------------------------------------------------------


def kcat_messages(topic):
    r = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", topic, "-e", "-J", "-q"],
                       capture_output=True, timeout=60 * TM)
    return [json.loads(line) for line in r.stdout.decode("utf-8").splitlines() if line.strip()]


def kafka_call(api_key, version, body):
    """One request (header v1) to the first broker; the response body."""
    host, port = BROKERS.split(",")[0].rsplit(":", 1)
    client = os.path.splitext(os.path.basename(sys.argv[0]))[0].encode() or b"itest"
    req = struct.pack(">hhih", api_key, version, 1, len(client)) + client + body
    with socket.create_connection((host, int(port)), timeout=30 * TM) as so:
        so.sendall(struct.pack(">i", len(req)) + req)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = so.recv(65536)
            if not chunk:
                raise RuntimeError("kafka: connection closed (api %d)" % api_key)
            buf += chunk
    return buf[8:]  # size, correlation id


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.i)
        self.i += struct.calcsize(fmt)
        return v[0]

    def str(self):
        n = self.take(">h")
        s = self.b[self.i:self.i + max(n, 0)].decode() if n >= 0 else None
        self.i += max(n, 0)
        return s


def group_offsets(group, topic, partitions):
    """The group's committed offsets of the topic (OffsetFetch v1):
    {partition: offset}, -1 for none."""
    body = kstr(group) + struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", len(partitions))
    body += b"".join(struct.pack(">i", p) for p in partitions)
    r = Reader(kafka_call(9, 1, body))
    out = {}
    for _ in range(r.take(">i")):
        name = r.str()
        for _ in range(r.take(">i")):
            p, off = r.take(">i"), r.take(">q")
            r.str()
            err = r.take(">h")
            if name == topic:
                out[p] = off if err == 0 else "error %d" % err
    return out


def _cleanup(what, api_key, version, body):
    """A cleanup request: its errors ignored, the broker's and a broker out
    of reach alike (said in one line): cleaning up is no verdict."""
    try:
        kafka_call(api_key, version, body)
    except (OSError, RuntimeError) as e:
        print("   (cleanup: %s: %s)" % (what, e), flush=True)


def delete_groups(groups):
    """DeleteGroups v0 (an empty group expires anyway); none: nothing sent."""
    if groups:
        _cleanup("delete groups", 42, 0,
                 struct.pack(">i", len(groups)) + b"".join(kstr(g) for g in groups))


def delete_topic(topic):
    """DeleteTopics v1."""
    _cleanup("delete topic " + topic, 20, 1,
             struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", int(30000 * TM)))
