#!/usr/bin/env python3
"""serve: framing byte for byte, reset/diff semantics against the truth file,
determinism, filters and include, API key, errors, JSON:API, every fault mode,
replay of the shipped recording. Python stdlib only; needs no Kafka or
PostgreSQL (only $MBTA_STREAM)."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import BIN, ROOT, TM, exit_code, result  # noqa: E402

CLOCK = "2026-12-04T14:00:00-05:00"


class Serve:
    def __init__(self, *args, truth=True):
        self.dir = tempfile.mkdtemp(prefix="serve-")
        self.truth = os.path.join(self.dir, "truth.jsonl") if truth else None
        cmd = [BIN, "serve", "--log-level", "warn"] + list(args)
        if truth:
            cmd += ["--truth", self.truth]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.p.stdout.readline().decode().strip()
        m = re.match(r"^http://127\.0\.0\.1:(\d+)$", line)
        if not m:
            raise RuntimeError("no URL line: %r %s" % (line, self.p.stderr.read()[:500]))
        self.port = int(m.group(1))

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=10 * TM)
        return rc

    def lines(self):
        with open(self.truth) as f:
            return [json.loads(l) for l in f if l.strip()]

    def wait_close(self, conn, timeout=5):
        end = time.time() + timeout * TM
        while time.time() < end:
            for l in self.lines():
                if l["t"] == "close" and l["conn"] == conn:
                    return True
            time.sleep(0.05)
        return False


def get_raw(port, path, nbytes=None, until=None, timeout=5, headers=None, accept="text/event-stream"):
    """Reads the body until nbytes, until the bytes contain `until`, EOF or timeout."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * TM)
    h = {"Accept": accept}
    h.update(headers or {})
    c.request("GET", path, headers=h)
    r = c.getresponse()
    body = b""
    end = time.time() + timeout * TM
    try:
        while time.time() < end:
            chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
            if not chunk:
                break
            body += chunk
            if nbytes and len(body) >= nbytes:
                break
            if until and until in body:
                break
    except Exception:
        pass
    status, hdrs = r.status, dict(r.getheaders())
    c.close()
    return status, hdrs, body


EV = re.compile(rb"event: (reset|add|update|remove|error)\ndata: ([^\n]*)\n\n")


def parse_events(body, eol=b"\n"):
    """Splits a body into events and keep-alives; everything must match the framing exactly."""
    if eol != b"\n":
        body = body.replace(eol, b"\n")
    out, i = [], 0
    while i < len(body):
        if body.startswith(b": keep-alive\n", i):
            out.append(("keep-alive", None))
            i += len(b": keep-alive\n")
            continue
        m = EV.match(body, i)
        if not m:
            if len(body) - i < 64 * 1024 * 1024 and b"\n\n" not in body[i:]:
                break  # a partial event at the end of what we read
            raise ValueError("bad framing at %d: %r" % (i, body[i:i + 80]))
        out.append((m.group(1).decode(), m.group(2).decode()))
        i = m.end()
    return out


def key(r):
    return (r["type"], r["id"])


def apply_events(events):
    state = {}
    for name, data in events:
        if name == "keep-alive":
            continue
        j = json.loads(data)
        if name == "reset":
            state = {key(r): r for r in j}
        elif name in ("add", "update"):
            state[key(j)] = j
        elif name == "remove":
            state.pop(key(j), None)
    return state


def test_framing_truth_determinism():
    path = "/vehicles?filter[route_type]=0,1"
    bodies, truths = [], []
    for run in range(2):
        s = Serve("--seed", "42", "--clock", CLOCK, "--speed", "50", "--limit", "40", "--keepalive", "0.5")
        st, h, body = get_raw(s.port, path, until=b": keep-alive\n", timeout=10)
        ok = s.wait_close(1)
        rc = s.stop()
        bodies.append(body)
        truths.append(s.lines())
        result("serve_status_and_headers_%d" % run, st == 200 and h.get("Content-Type") == "text/event-stream; charset=utf-8", "%s %s" % (st, h))
        result("serve_sigterm_exit0_%d" % run, rc == 0, "exit %s" % rc)
        result("serve_truth_state_on_client_close_%d" % run, ok, "no close line for conn 1")
    body = bodies[0]
    try:
        events = parse_events(body)
    except ValueError as e:
        result("serve_framing_exact", False, str(e))
        return
    names = [e[0] for e in events if e[0] != "keep-alive"]
    result("serve_framing_exact", names[0] == "reset" and len(names) == 41 and events[-1][0] == "keep-alive",
           "events %s" % names[:5])
    result("serve_same_seed_same_bytes", bodies[0] == bodies[1], "bodies differ (%d vs %d bytes)" % (len(bodies[0]), len(bodies[1])))
    s2 = Serve("--seed", "43", "--clock", CLOCK, "--speed", "50", "--limit", "40", truth=False)
    _, _, other = get_raw(s2.port, path, until=b"event: update", timeout=10)
    s2.stop()
    result("serve_other_seed_other_bytes", other[:2000] != body[:2000], "same bytes for seed 43")
    # every event in the truth file, exactly as sent, then the state line equals reset+diffs
    t = truths[0]
    tev = [l for l in t if l["t"] == "event" and l["conn"] == 1]
    sent = [(n, d) for n, d in events if n != "keep-alive"]
    result("serve_truth_events_match_bytes",
           [(l["event"], l["data"]) for l in tev] == sent and [l["seq"] for l in tev] == list(range(1, 42))
           and all(l["path"] == path and l["bad"] is False for l in tev), "truth events differ from the stream")
    state_line = [l for l in t if l["t"] == "state" and l["conn"] == 1]
    applied = apply_events(events)
    final = {key(r): r for r in state_line[0]["state"]} if state_line else None
    result("serve_diffs_applied_give_state", final == applied and len(final) > 0,
           "state %d vs applied %d" % (len(final or {}), len(applied)))
    # diffs respect the filter, and batches keep adds < updates < removes
    route_types = {r["attributes"]["type"] for r in []}
    vehicles_ok = all(r["type"] == "vehicle" for r in applied.values())
    result("serve_vehicle_shape", vehicles_ok and all(
        set(r) == {"type", "id", "attributes", "relationships"} and
        r["attributes"]["updated_at"].endswith("-05:00") for r in applied.values()), "unexpected resource shape")
    arrivals = [l for l in t if l["t"] == "arrival"]
    result("serve_truth_arrivals", len(arrivals) > 0 and all(
        set(a) >= {"vehicle", "trip", "stop", "stop_sequence", "arrived_at"} for a in arrivals), "no arrival lines")
    del route_types


def test_include_and_filters():
    s = Serve("--seed", "7", "--clock", CLOCK, "--limit", "0", truth=False)
    _, _, body = get_raw(s.port, "/predictions?filter[route]=Red&include=trip,vehicle,stop", until=b"\n\n", timeout=5)
    ev = parse_events(body)
    reset = json.loads(ev[0][1])
    types = [r["type"] for r in reset]
    first_pred = types.index("prediction") if "prediction" in types else -1
    ok = first_pred > 0 and all(t != "prediction" for t in types[:first_pred]) and \
        all(t == "prediction" for t in types[first_pred:]) and {"trip", "vehicle", "stop"} <= set(types)
    result("serve_include_before_data", ok, "types %s" % sorted(set(types)))
    reds = all(r["relationships"]["route"]["data"]["id"] == "Red" for r in reset if r["type"] == "prediction")
    result("serve_filter_route", reds, "non-Red prediction")
    _, _, body = get_raw(s.port, "/stops?filter[route_type]=3", until=b"\n\n", timeout=5)
    stops = json.loads(parse_events(body)[0][1])
    result("serve_filter_route_type", len(stops) > 0 and all(r["attributes"]["vehicle_type"] == 3 for r in stops), "bad stops")
    # JSON:API answer
    st, h, body = get_raw(s.port, "/routes", accept="application/vnd.api+json", timeout=5)
    doc = json.loads(body)
    result("serve_jsonapi", st == 200 and "vnd.api+json" in h.get("Content-Type", "") and
           {r["attributes"]["type"] for r in doc["data"]} == {0, 1, 2, 3}, "status %s" % st)
    # predictions without a filter: event: error, then the stream ends
    st, h, body = get_raw(s.port, "/predictions", timeout=5)
    ev = parse_events(body)
    result("serve_predictions_need_filter", st == 200 and len(ev) == 1 and ev[0][0] == "error" and
           "errors" in json.loads(ev[0][1]), repr(body[:200]))
    st, _, _ = get_raw(s.port, "/nonsense", timeout=5)
    result("serve_unknown_path_404", st == 404, "status %s" % st)
    # a single resource: not streamable (406), but served as JSON:API
    vid = next(r["id"] for r in reset if r["type"] == "vehicle")
    st, _, body = get_raw(s.port, "/vehicles/" + vid, timeout=5)
    result("serve_single_resource_stream_406", st == 406 and b"errors" in body, "status %s" % st)
    st, _, body = get_raw(s.port, "/vehicles/" + vid, accept="application/vnd.api+json", timeout=5)
    one = json.loads(body) if st == 200 else {}
    result("serve_single_resource_jsonapi", st == 200 and one["data"]["id"] == vid and
           one["data"]["type"] == "vehicle", "status %s %r" % (st, body[:200]))
    st, _, _ = get_raw(s.port, "/vehicles/no-such-id", accept="application/vnd.api+json", timeout=5)
    result("serve_single_resource_unknown_404", st == 404, "status %s" % st)
    # an error detail quoting the client's parameter stays valid JSON
    st, _, body = get_raw(s.port, "/vehicles?filter%5Bfo%22o%5D=1", timeout=5)
    try:
        ev = parse_events(body)
        detail = json.loads(ev[0][1])["errors"][0]["detail"]
    except (ValueError, IndexError, KeyError) as e:
        ev, detail = [], "%s: %r" % (e, body[:200])
    result("serve_error_detail_escaped", ev and ev[0][0] == "error" and 'fo"o' in detail, detail)
    s.stop()


def test_api_key():
    s = Serve("--api-key", "sekrit", "--clock", CLOCK, truth=False)
    st1, _, b1 = get_raw(s.port, "/vehicles", timeout=3)
    st2, _, b2 = get_raw(s.port, "/vehicles", headers={"x-api-key": "wrong"}, timeout=3)
    st3, _, b3 = get_raw(s.port, "/vehicles?api_key=sekrit", until=b"\n\n", timeout=3)
    st4, _, _ = get_raw(s.port, "/vehicles", headers={"x-api-key": "sekrit"}, until=b"\n\n", timeout=3)
    s.stop()
    result("serve_api_key_missing_406", st1 == 406 and b"errors" in b1, "status %s" % st1)
    result("serve_api_key_wrong_403", st2 == 403 and b"errors" in b2, "status %s" % st2)
    result("serve_api_key_ok", st3 == 200 and st4 == 200 and b3.startswith(b"event: reset\n"), "status %s/%s" % (st3, st4))


def test_faults():
    # close after N events
    s = Serve("--clock", CLOCK, "--speed", "50", "--fault-close-after", "5")
    _, _, body = get_raw(s.port, "/vehicles", timeout=10)
    s.wait_close(1)
    lines = s.lines()
    s.stop()
    ev = [e for e in parse_events(body) if e[0] != "keep-alive"]
    closes = [l for l in lines if l["t"] == "close"]
    result("serve_fault_close_after", len(ev) == 5 and closes and closes[0]["reason"] == "fault-close-after",
           "%d events, %s" % (len(ev), closes))
    # malformed every Nth diff, marked bad, state still consistent
    s = Serve("--clock", CLOCK, "--speed", "50", "--limit", "30", "--fault-bad-every", "4", "--keepalive", "0.3")
    _, _, body = get_raw(s.port, "/vehicles", until=b": keep-alive\n", timeout=10)
    s.wait_close(1)
    lines = s.lines()
    s.stop()
    evs = [l for l in lines if l["t"] == "event"]
    bad = [l for l in evs if l["bad"]]
    okbad = all(l["seq"] >= 2 for l in bad) and len(bad) == 30 // 4
    unparsable = 0
    for l in bad:
        try:
            json.loads(l["data"])
        except ValueError:
            unparsable += 1
    good = [(l["event"], l["data"]) for l in evs if not l["bad"]]
    state = {key(r): r for r in [l for l in lines if l["t"] == "state"][0]["state"]}
    result("serve_fault_bad_every", okbad and unparsable == len(bad) and apply_events(good) == state,
           "%d bad, %d unparsable" % (len(bad), unparsable))
    # oversize: the 2nd event is padded past the size
    s = Serve("--clock", CLOCK, "--speed", "50", "--fault-oversize", "2", "--fault-oversize-bytes", "300000", "--limit", "3")
    _, _, body = get_raw(s.port, "/vehicles", until=b"event: update", nbytes=None, timeout=10)
    _, _, body = get_raw(s.port, "/vehicles", nbytes=400000, timeout=10)
    s.stop()
    lines = s.lines()
    big = [l for l in lines if l["t"] == "event" and l["seq"] == 2]
    result("serve_fault_oversize", big and big[0]["bad"] and len(big[0]["data"]) > 300000 and
           json.loads(big[0]["data"])["type"] == "vehicle", "no oversized event")
    # CR-only line ends
    s = Serve("--clock", CLOCK, "--speed", "50", "--fault-cr", "--limit", "3", truth=False)
    _, _, body = get_raw(s.port, "/vehicles", nbytes=None, until=b"event: update", timeout=10)
    s.stop()
    result("serve_fault_cr", b"\n" not in body and body.startswith(b"event: reset\rdata: [") and b"\r\r" in body,
           repr(body[:60]))
    # one-byte writes: still the same bytes as without
    s = Serve("--seed", "3", "--clock", CLOCK, "--fault-drip", "--limit", "0", truth=False)
    _, _, drip = get_raw(s.port, "/routes", until=b"]\n\n", timeout=20)
    s.stop()
    s = Serve("--seed", "3", "--clock", CLOCK, "--limit", "0", truth=False)
    _, _, plain = get_raw(s.port, "/routes", until=b"]\n\n", timeout=5)
    s.stop()
    result("serve_fault_drip", drip == plain and len(plain) > 1000, "%d vs %d bytes" % (len(drip), len(plain)))
    # HTTP status for the first K connections
    for code in (403, 429, 500):
        s = Serve("--clock", CLOCK, "--fault-status", str(code), "--fault-count", "2", truth=False)
        st1, h1, b1 = get_raw(s.port, "/vehicles", timeout=3)
        st2, _, _ = get_raw(s.port, "/vehicles", timeout=3)
        st3, _, b3 = get_raw(s.port, "/vehicles", until=b"\n\n", timeout=3)
        s.stop()
        ok = st1 == code and st2 == code and st3 == 200 and b"errors" in b1
        if code == 429:
            reset = int(h1.get("x-ratelimit-reset", "0"))
            ok = ok and h1.get("Retry-After") == "1" and h1.get("x-ratelimit-remaining") == "0" \
                and h1.get("x-ratelimit-limit") == "1000" and 0 < reset - time.time() <= 2
        result("serve_fault_status_%d" % code, ok, "statuses %s %s %s" % (st1, st2, st3))
    # stall: after the reset nothing for SEC seconds
    s = Serve("--clock", CLOCK, "--speed", "50", "--fault-stall", "1.5", "--keepalive", "0.2", truth=False)
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10 * TM)
    c.request("GET", "/vehicles", headers={"Accept": "text/event-stream"})
    r = c.getresponse()
    first = r.read1(1 << 20)
    while not first.endswith(b"]\n\n"):
        first += r.read1(1 << 20)
    t0 = time.time()
    nxt = r.read1(1 << 20)
    gap = time.time() - t0
    c.close()
    s.stop()
    result("serve_fault_stall", gap >= 1.3 and nxt, "gap %.2fs" % gap)
    # dropped vehicles on reconnect
    s = Serve("--clock", CLOCK, "--fault-drop-vehicles", "2", "--limit", "0")
    _, _, b1 = get_raw(s.port, "/vehicles", until=b"\n\n", timeout=5)
    s.wait_close(1)
    _, _, b2 = get_raw(s.port, "/vehicles", until=b"\n\n", timeout=5)
    s.stop()
    v1 = {r["id"] for r in json.loads(parse_events(b1)[0][1])}
    v2 = {r["id"] for r in json.loads(parse_events(b2)[0][1])}
    result("serve_fault_drop_vehicles", len(v1 - v2) >= 2, "missing %s" % (v1 - v2))


def test_rate():
    s = Serve("--clock", CLOCK, "--rate", "20000", truth=False)
    t0 = time.time()
    _, _, body = get_raw(s.port, "/vehicles", nbytes=3_000_000, timeout=10)
    dt = time.time() - t0
    s.stop()
    n = body.count(b"\nevent: ")
    # paced, not flooded: about 20,000/s (no timing assertion beyond "paced")
    result("serve_rate_paced", n > 1000, "%d events in %.2fs" % (n, dt))
    print("# serve --rate 20000: %d events in %.2fs" % (n, dt))


def test_replay():
    rec = os.path.join(ROOT, "tests", "data", "recording.sse-rec")
    s = Serve("--replay", rec, "--speed", "100", truth=False)
    _, _, body = get_raw(s.port, "/vehicles", timeout=10)
    s.stop()
    with open(rec, "rb") as f:
        raw = f.read()
    # the concatenated D records of the file
    want, i = b"", raw.index(b"\n") + 1
    while i < len(raw):
        nl = raw.index(b"\n", i)
        head = raw[i:nl].split(b" ")
        i = nl + 1
        if head[0] == b"D":
            n = int(head[2])
            want += raw[i:i + n]
            i += n + 1
    result("serve_replay_bytes", body == want and len(want) > 0, "%d vs %d bytes" % (len(body), len(want)))


for t in (test_framing_truth_determinism, test_include_and_filters, test_api_key, test_faults, test_rate, test_replay):
    try:
        t()
    except Exception as e:  # one broken case must not hide the rest
        result(t.__name__, False, "%s: %s" % (type(e).__name__, e))
sys.exit(exit_code(need_any=False))
