#!/usr/bin/env python3
"""sse_tail: `mbta-stream tail` against a local SSE server that misbehaves on
purpose (Python stdlib only, no Kafka or PostgreSQL needed).

Each case gives one URL path a script: what the server does on the 1st, 2nd,
... request to it. The test runs `mbta-stream tail` with short timeouts and
asserts on its stdout (the JSON lines), stderr (one clear line per problem),
exit code, and on what the server saw (request count, headers, timing).
Prints one PASS/FAIL line per case; exits non-zero if any failed.
"""
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import BIN, TM, exit_code, ko, ok  # noqa: E402

SECRET = "sEcReT-kEy-4242"

SCRIPTS = {}   # path -> function(handler, n) for the n-th request (0-based)
REQUESTS = {}  # path -> [(monotonic time, headers dict)]
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        with LOCK:
            reqs = REQUESTS.setdefault(path, [])
            n = len(reqs)
            reqs.append((time.monotonic(), {k.lower(): v for k, v in self.headers.items()},
                         self.path))
        fn = SCRIPTS.get(path)
        try:
            if fn is None:
                self.send_error(404)
            else:
                fn(self, n)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    # helpers for scripts
    def start_sse(self, extra=None):
        self.send_response(200)
        # What the MBTA (Phoenix) really sends: the media type with a charset.
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def hold(self, secs=30):
        """Keeps the stream open (with no byte) until the client goes."""
        end = time.monotonic() + secs
        while time.monotonic() < end:
            time.sleep(0.05)
            try:
                self.connection.settimeout(0.001)
                if self.connection.recv(1, socket.MSG_PEEK) == b"":
                    return
            except (socket.timeout, BlockingIOError):
                pass
            except OSError:
                return

    def drop(self):
        """Closes the TCP connection abruptly (no final chunk)."""
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    def status(self, code, body, headers=None):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.api+json")
        self.send_header("Content-Length", str(len(b)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(b)
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


SRV = Server(("127.0.0.1", 0), Handler)
PORT = SRV.server_address[1]
threading.Thread(target=SRV.serve_forever, daemon=True).start()


def url(path, query=""):
    return "http://127.0.0.1:%d%s%s" % (PORT, path, query)


def tail(path, *args, count=None, timeout=15, env=None, query=""):
    cmd = [BIN, "tail", "--backoff-base", "50", "--backoff-cap", "400", "--idle-timeout", "5000"]
    if count is not None:
        cmd += ["--count", str(count)]
    cmd += list(args) + [url(path, query)]
    e = dict(os.environ)
    e.pop("MBTA_API_KEY", None)
    e.update(env or {})
    p = subprocess.run(cmd, capture_output=True, timeout=timeout * TM, env=e)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def lines(out):
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def ev(event, data, id=""):
    return {"event": event, "data": data, "id": id}


class Fail(Exception):
    pass


def check(cond, what, rc=None, out=None, err=None):
    if not cond:
        ctx = ""
        if rc is not None:
            ctx = " [rc=%s stdout=%r stderr=%r]" % (rc, (out or "")[-400:], (err or "")[-600:])
        raise Fail(what + ctx)


# ---- cases ----

def case_drop_mid_event():
    path = "/drop"

    def script(h, n):
        h.start_sse()
        if n == 0:
            h.chunk('event: add\ndata: {"a":1}\n\n')
            h.chunk('event: add\ndata: {"partial')
            time.sleep(0.05)
            h.drop()
        else:
            h.chunk('event: add\ndata: {"b":2}\n\n')
            h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, count=2)
    check(rc == 0, "exit 0", rc, out, err)
    check(lines(out) == [ev("add", '{"a":1}'), ev("add", '{"b":2}')],
          "the partial event is dropped, the next connection's event printed", rc, out, err)
    check(len(REQUESTS[path]) == 2, "reconnected once")
    check("disconnected" in err, "the drop is logged", rc, out, err)


def case_stall_idle_timeout():
    path = "/stall"

    def script(h, n):
        h.start_sse()
        if n == 0:
            h.chunk('data: first\n\n')
            h.hold(20)  # stalls: no keep-alive, no byte
        else:
            h.chunk('data: second\n\n')
            h.hold()
    SCRIPTS[path] = script
    t0 = time.monotonic()
    rc, out, err = tail(path, "--idle-timeout", "600", count=2)
    took = time.monotonic() - t0
    check(rc == 0, "exit 0", rc, out, err)
    check(lines(out) == [ev("message", "first"), ev("message", "second")], "both events",
          rc, out, err)
    check("idle timeout" in err, "the idle timeout is named", rc, out, err)
    gap = REQUESTS[path][1][0] - REQUESTS[path][0][0]
    check(0.55 <= gap < 3 * TM, "reconnect after ~600 ms of silence (gap %.2fs)" % gap)
    check(took < 10 * TM, "did not wait for the server's stall")


def case_keepalive_is_not_idle():
    path = "/keepalive"

    def script(h, n):
        h.start_sse()
        h.chunk('data: a\n\n')
        for _ in range(6):
            time.sleep(0.2)
            h.chunk(': keep-alive\n')
        h.chunk('data: b\n\n')
        h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, "--idle-timeout", "600", count=2)
    check(rc == 0 and lines(out) == [ev("message", "a"), ev("message", "b")], "events",
          rc, out, err)
    check(len(REQUESTS[path]) == 1, "comments keep the connection alive (no reconnect)",
          rc, out, err)


def case_forbidden_403():
    path = "/forbidden"
    body = '{"errors":[{"status":"403","code":"forbidden","detail":"invalid key xyz"}]}'
    SCRIPTS[path] = lambda h, n: h.status(403, body)
    rc, out, err = tail(path, env={"MBTA_API_KEY": SECRET})
    check(rc == 1, "exit 1 on 403", rc, out, err)
    check(out == "", "nothing on stdout", rc, out, err)
    errl = [l for l in err.splitlines() if "403" in l]
    check(len(errl) == 1 and "invalid key xyz" in errl[0],
          "one stderr line names the status and the server's body", rc, out, err)
    check(len(REQUESTS[path]) == 1, "no retry after 403")
    check(SECRET not in err, "the key is not printed", rc, out, err)


def case_not_found_404_body():
    path = "/nope"
    SCRIPTS[path] = lambda h, n: h.status(404, '{"errors":[{"code":"not_found"}]}')
    rc, out, err = tail(path)
    check(rc == 1 and "HTTP 404" in err and "not_found" in err, "404 is fatal with its body",
          rc, out, err)


def case_wrong_content_type_is_fatal():
    path = "/html"

    def script(h, n):
        b = b"<html>captive portal</html>"
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(len(b)))
        h.end_headers()
        h.wfile.write(b)
    SCRIPTS[path] = script
    rc, out, err = tail(path)
    check(rc == 1 and "text/html" in err and "not text/event-stream" in err,
          "a 200 that is not text/event-stream stops with one clear line", rc, out, err)
    check(len(REQUESTS[path]) == 1, "no retry")

    # A media type that only starts like text/event-stream is not it.
    path = "/almost-sse"

    def script2(h, n):
        h.send_response(200)
        h.send_header("Content-Type", "text/event-streaming")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.chunk("data: x\n\n")
        h.end_chunks()
    SCRIPTS[path] = script2
    rc, out, err = tail(path)
    check(rc == 1 and out == "" and "not text/event-stream" in err,
          "text/event-streaming is refused", rc, out, err)


def case_key_echoed_in_error_body_masked():
    # A server (or a proxy) that echoes the request in its error body must
    # not make us print the key: the message is masked before it is logged.
    path = "/echo"

    def script(h, n):
        h.status(400, '{"errors":[{"detail":"bad request GET %s x-api-key: %s"}]}'
                 % (h.path, h.headers.get("x-api-key")))
    SCRIPTS[path] = script
    rc, out, err = tail(path, env={"MBTA_API_KEY": SECRET}, query="?api_key=" + SECRET)
    check(rc == 1 and "HTTP 400" in err and "bad request GET" in err,
          "the 400 and its body are logged", rc, out, err)
    check(SECRET not in err and SECRET not in out, "the echoed key is masked", rc, out, err)


def case_redirects():
    SCRIPTS["/moved"] = lambda h, n: h.status(301, "", {"Location": "/moved-here"})

    def script(h, n):
        h.start_sse()
        h.chunk("data: here\n\n")
        h.hold()
    SCRIPTS["/moved-here"] = script
    rc, out, err = tail("/moved", count=1, env={"MBTA_API_KEY": SECRET})
    check(rc == 0 and lines(out) == [ev("message", "here")], "same-host redirect followed",
          rc, out, err)
    check(REQUESTS["/moved-here"][0][1].get("x-api-key") == SECRET, "key kept on same host")
    SCRIPTS["/away"] = lambda h, n: h.status(
        302, "", {"Location": "http://localhost:%d/moved-here" % PORT})
    before = len(REQUESTS["/moved-here"])
    rc, out, err = tail("/away", env={"MBTA_API_KEY": SECRET})
    check(rc == 1 and "another host" in err, "a redirect to another host with a key stops",
          rc, out, err)
    check(len(REQUESTS["/moved-here"]) == before, "the key was not sent to the other host")


def case_backoff_resets_when_healthy():
    path = "/healthy"

    def script(h, n):
        h.start_sse()
        h.chunk("data: %d\n\n" % n)
        time.sleep(0.4)  # longer than --healthy: a healthy connection
        h.end_chunks()
    SCRIPTS[path] = script
    rc, out, err = tail(path, "--healthy", "300", "--backoff-base", "50", "--backoff-cap",
                        "5000", count=7)
    delays = [int(x) for x in re.findall(r"reconnecting in (\d+) ms", err)]
    check(rc == 0 and [e["data"] for e in lines(out)] == [str(i) for i in range(7)],
          "one event per connection", rc, out, err)
    # Without the reset the ceilings would be 100, 200, 400, ... ms: six
    # draws all under 50 ms would be a 1-in-4000 accident.
    check(len(delays) >= 6 and max(delays) < 50,
          "every reconnect after a healthy connection draws from [0, base): %r" % delays)


def case_rate_limited_429_retry_after():
    path = "/ratelimit"

    def script(h, n):
        if n == 0:
            h.status(429, '{"errors":[{"code":"rate_limited"}]}', {"Retry-After": "1"})
        else:
            h.start_sse()
            h.chunk('event: reset\ndata: []\n\n')
            h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, count=1)
    check(rc == 0 and lines(out) == [ev("reset", "[]")], "recovers after the wait",
          rc, out, err)
    gap = REQUESTS[path][1][0] - REQUESTS[path][0][0]
    check(gap >= 0.95, "waited for Retry-After: 1 (gap %.2fs)" % gap)
    check(gap < 3 * TM, "did not wait much longer than asked (gap %.2fs)" % gap)
    check("429" in err, "the 429 is logged", rc, out, err)


def case_retry_field_capped():
    # `retry: 86400000` (24 h, the most the parser keeps) then a clean close:
    # the reconnection waits --retry-after-cap (800 ms), not a day.
    path = "/retryfield"

    def script(h, n):
        h.start_sse()
        if n == 0:
            h.chunk('retry: 86400000\n\nevent: reset\ndata: []\n\n')
            h.end_chunks()
        else:
            h.chunk('event: reset\ndata: [1]\n\n')
            h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, "--retry-after-cap", "800", count=2)
    check(rc == 0 and lines(out) == [ev("reset", "[]"), ev("reset", "[1]")],
          "reconnects after the capped wait", rc, out, err)
    gap = REQUESTS[path][1][0] - REQUESTS[path][0][0]
    check(gap >= 0.75, "waited the cap, a floor like retry: (gap %.2fs)" % gap)
    check(gap < 3 * TM, "did not wait for the server's 24 h (gap %.2fs)" % gap)


def case_rate_limited_429_ratelimit_reset():
    path = "/ratelimit-reset"

    def script(h, n):
        if n == 0:
            h.status(429, "{}", {"x-ratelimit-reset": str(int(time.time()) + 2)})
        else:
            h.start_sse()
            h.chunk('data: ok\n\n')
            h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, count=1)
    check(rc == 0 and lines(out) == [ev("message", "ok")], "recovers", rc, out, err)
    gap = REQUESTS[path][1][0] - REQUESTS[path][0][0]
    check(0.95 <= gap < 4 * TM, "waited until x-ratelimit-reset (gap %.2fs)" % gap)


def case_server_error_500_then_recovery():
    path = "/flaky"

    def script(h, n):
        if n == 0:
            h.status(500, "boom")
        elif n == 1:
            h.status(503, "busy")
        else:
            h.start_sse()
            h.chunk('event: add\ndata: {"id":"1"}\n\n')
            h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, count=1)
    check(rc == 0 and lines(out) == [ev("add", '{"id":"1"}')], "recovers", rc, out, err)
    check(len(REQUESTS[path]) == 3, "retried twice")
    check("HTTP 500: boom" in err and "HTTP 503: busy" in err, "each failure logged", rc, out,
          err)


def case_gzip():
    path = "/gzip"
    events = ['event: reset\ndata: [{"id":"%d","type":"vehicle"}]\n\n' % i for i in range(50)]

    def script(h, n):
        h.start_sse({"Content-Encoding": "gzip"})
        z = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip wrapper
        for e in events:
            h.chunk(z.compress(e.encode()) + z.flush(zlib.Z_SYNC_FLUSH))
        h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, count=50)
    want = [ev("reset", '[{"id":"%d","type":"vehicle"}]' % i) for i in range(50)]
    check(rc == 0 and lines(out) == want, "gzip body decoded", rc, out, err)
    check("gzip" in REQUESTS[path][0][1].get("accept-encoding", ""), "Accept-Encoding has gzip")


def case_one_byte_drip():
    path = "/drip"
    body = (b"\xef\xbb\xbf: hi\r\nevent: add\r\ndata: {\"x\":\"\xc3\xa9\"}\r\n\r\n"
            b"data: line1\r\ndata: line2\r\n\r\nid: 9\revent: update\rdata: y\r\r")

    def script(h, n):
        h.start_sse()
        for i in range(len(body)):
            h.chunk(body[i:i + 1])
            time.sleep(0.001)
        h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, count=3)
    want = [ev("add", '{"x":"\u00e9"}'), ev("message", "line1\nline2"), ev("update", "y", "9")]
    check(rc == 0 and lines(out) == want, "same events one byte at a time", rc, out, err)


def case_cr_only_line_ends():
    path = "/cr"

    def script(h, n):
        h.start_sse()
        h.chunk("event: add\rdata: a\r\r")
        h.chunk("event: remove\r")
        h.chunk("data: b\r")
        h.chunk("\r")
        h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, count=2)
    check(rc == 0 and lines(out) == [ev("add", "a"), ev("remove", "b")], "CR-only framing",
          rc, out, err)


def case_headers_key_masked():
    path = "/headers"

    def script(h, n):
        h.start_sse()
        h.chunk("data: x\n\n")
        h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, "-v", "-H", "X-Test: yes", "-H", "X-Other: 2", count=1,
                       env={"MBTA_API_KEY": SECRET}, query="?api_key=" + SECRET + "&a=1")
    check(rc == 0 and lines(out) == [ev("message", "x")], "event", rc, out, err)
    hd = REQUESTS[path][0][1]
    check(hd.get("x-api-key") == SECRET, "x-api-key sent")
    check(hd.get("accept") == "text/event-stream", "Accept: text/event-stream")
    check(hd.get("x-test") == "yes" and hd.get("x-other") == "2", "-H headers sent")
    check("curl > GET" in err, "verbose output shown", rc, out, err)
    check(SECRET not in err and SECRET not in out, "the key never printed, even with -v",
          rc, out, err)
    check("x-api-key: ***" in err.lower() or "x-api-key:  ***" in err.lower(),
          "the header line is shown masked", rc, out, err)


def case_last_event_id_and_error_event():
    path = "/lastid"

    def script(h, n):
        h.start_sse()
        if n == 0:
            h.chunk("id: 42\ndata: a\n\n")
            h.chunk('event: error\ndata: {"errors":[{"code":"bad_filter"}]}\n\n')
            h.end_chunks()  # the server closes after event: error
        else:
            h.chunk("data: b\n\n")
            h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, count=3)
    want = [ev("message", "a", "42"), ev("error", '{"errors":[{"code":"bad_filter"}]}', "42"),
            ev("message", "b", "42")]
    check(rc == 0 and lines(out) == want, "events with the persisting id", rc, out, err)
    check(REQUESTS[path][1][1].get("last-event-id") == "42", "Last-Event-ID sent on reconnect")
    check("event: error" in err and "bad_filter" in err, "event: error logged with its body",
          rc, out, err)


def case_raw():
    path = "/raw"
    body = "event: add\r\ndata: 1\r\n\r\n: keep-alive\nevent: update\ndata: 2\n\n"

    def script(h, n):
        h.start_sse()
        h.chunk(body)
        h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, "--raw", count=2)
    check(rc == 0 and out == body, "raw bytes exactly as received", rc, out, err)


def case_oversized_event_skipped():
    path = "/big"

    def script(h, n):
        h.start_sse()
        h.chunk("data: " + "x" * 5000 + "\n\n")
        h.chunk("data: small\n\n")
        h.hold()
    SCRIPTS[path] = script
    rc, out, err = tail(path, "--max-event", "1000", count=1)
    check(rc == 0 and lines(out) == [ev("message", "small")], "big event skipped", rc, out, err)
    check("max_event" in err, "the skip is logged", rc, out, err)


def case_sigint_exits_0():
    path = "/forever"

    def script(h, n):
        h.start_sse()
        h.chunk("data: x\n\n")
        h.hold()
    SCRIPTS[path] = script
    p = subprocess.Popen([BIN, "tail", url(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(timeout=5 * TM)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Fail("did not exit on SIGINT")
    err = p.stderr.read().decode()
    p.stdout.close()
    p.stderr.close()
    check(json.loads(first) == ev("message", "x"), "printed before the signal")
    check(rc == 0, "exit 0 on SIGINT (rc=%s, stderr=%r)" % (rc, err[-300:]))


def case_connection_refused_retries():
    # A port with nobody listening: the tail keeps retrying (no exit) until SIGTERM.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen([BIN, "tail", "--backoff-base", "50", "--backoff-cap", "100",
                          "http://127.0.0.1:%d/x" % port], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(1.0)
    alive = p.poll() is None
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=5 * TM)
    err = p.stderr.read().decode()
    p.stdout.close()
    p.stderr.close()
    delays = [int(x) for x in re.findall(r"reconnecting in (\d+) ms", err)]
    check(alive, "still retrying after 1 s")
    check(delays and max(delays) <= 100, "backoff capped at --backoff-cap: %r" % delays)
    check(rc == 0, "exit 0 on SIGTERM")
    check(err.count("disconnected") >= 3, "several attempts, each logged: %r" % err[-300:])


def main():
    if not os.access(BIN, os.X_OK):
        ko("sse_tail", "%s is not built" % BIN)
        return 1
    cases = [(k, v) for k, v in sorted(globals().items()) if k.startswith("case_")]
    only = sys.argv[1:]
    for name, fn in cases:
        name = name[5:]
        if only and name not in only:
            continue
        try:
            fn()
            ok("sse_tail_" + name)
        except Fail as e:
            ko("sse_tail_" + name, e)
        except Exception as e:  # a broken test is a failure too
            ko("sse_tail_" + name, "%s: %s" % (type(e).__name__, e))
    SRV.shutdown()
    return exit_code(need_any=False)


if __name__ == "__main__":
    sys.exit(main())
