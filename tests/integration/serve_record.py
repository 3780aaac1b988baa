#!/usr/bin/env python3
"""record: against serve with --fault-close-after, the recording holds every
connection (reconnects like tail) and its D bytes are exactly what serve sent
(checked against the truth file); then serve --replay plays them back."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import BIN, TM, exit_code, result, start_serve  # noqa: E402


def records(path):
    raw = open(path, "rb").read()
    assert raw.startswith(b"mbta-stream-recording 1\n")
    i, out = raw.index(b"\n") + 1, []
    while i < len(raw):
        nl = raw.index(b"\n", i)
        head = raw[i:nl]
        i = nl + 1
        if head.startswith(b"#"):
            continue
        f = head.split(b" ", 2)
        if f[0] == b"D":
            n = int(f[2])
            out.append(("D", int(f[1]), raw[i:i + n]))
            i += n + 1
        else:
            out.append((f[0].decode(), int(f[1]), f[2]))
    return out


d = tempfile.mkdtemp(prefix="record-")
# a bad URL: one usage line, exit 2, and no file left behind
bad = os.path.join(d, "bad.sse-rec")
r = subprocess.run([BIN, "record", "ftp://example.com/x", "--out", bad], capture_output=True, timeout=10 * TM)
errl = r.stderr.decode().strip().splitlines()
result("record_bad_url", r.returncode == 2 and len(errl) == 1 and "bad URL" in errl[0] and not os.path.exists(bad),
       "rc %d %r exists=%s" % (r.returncode, errl, os.path.exists(bad)))
truth, rec = os.path.join(d, "truth.jsonl"), os.path.join(d, "x.sse-rec")
srv, url = start_serve(["--log-level", "warn", "--clock", "2026-12-04T14:00:00Z", "--speed", "20",
                        "--fault-close-after", "6", "--truth", truth])
try:
    r = subprocess.run([BIN, "record", url + "/vehicles?api_key=hidden&filter[route_type]=1&Api_Key=hidden", "--out", rec,
                        "--duration", str(4 * TM), "--log-level", "warn"], timeout=60 * TM, capture_output=True)
    result("record_exit0", r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr[-300:]))
    recs = records(rec)
    conns = [x for x in recs if x[0] == "C"]
    result("record_reconnects", len(conns) >= 2, "%d connects" % len(conns))
    times = [x[1] for x in recs]
    result("record_times_monotonic", times == sorted(times), "times decrease")
    result("record_key_masked", b"hidden" not in open(rec, "rb").read(), "api key in the file")
    body = b"".join(x[2] for x in recs if x[0] == "D")
    lines = [json.loads(l) for l in open(truth)]
    want = b""
    for l in lines:
        if l["t"] == "event":
            want += ("event: %s\ndata: %s\n\n" % (l["event"], l["data"])).encode()
    # record stops mid-connection: the recording is a prefix of what was sent
    result("record_bytes_exact", len(body) > 0 and want.startswith(body) and body.count(b"event: reset\n") >= 2,
           "%d recorded vs %d sent" % (len(body), len(want)))
finally:
    srv.send_signal(signal.SIGTERM)
    srv.wait(timeout=10)
rp, rurl = start_serve(["--log-level", "warn", "--replay", rec, "--speed", "50"])
port = int(re.search(r":(\d+)", rurl).group(1))
import http.client
c = http.client.HTTPConnection("127.0.0.1", port, timeout=20 * TM)
c.request("GET", "/vehicles", headers={"Accept": "text/event-stream"})
got = c.getresponse().read()
rp.send_signal(signal.SIGTERM)
rp.wait(timeout=10)
result("record_replay_roundtrip", got == body, "%d vs %d bytes" % (len(got), len(body)))
sys.exit(exit_code(need_any=False))
