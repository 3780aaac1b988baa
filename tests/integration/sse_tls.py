#!/usr/bin/env python3
"""sse_tls: the way to the real API, offline: HTTPS with certificate checks,
and HTTPS through an HTTP proxy (CONNECT), as api-v3.mbta.com is reached
from behind a corporate proxy.

A local SSE server speaks TLS with a certificate for IP 127.0.0.1 signed by
a test CA (tests/data/tls, made by its make.sh); a local CONNECT proxy
tunnels bytes and records what it was asked. `mbta-stream tail` and
`produce` connect to them. Python stdlib only; the produce case needs
Kafka (KAFKA_BROKERS) and is skipped without it.

What it shows: the certificate is checked by default (an unknown CA and a
wrong name are refused, each with libcurl's reason in the log, and retried
like any transport error); --cacert makes a private CA trusted; https_proxy
is honoured, the tunnel goes to the right host and port, and the API key
travels inside TLS only (the proxy never sees it); produce writes what came
through that way to Kafka byte for byte.
"""
import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import http.server

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import (BIN, BROKERS, ROOT, RUN, TM, delete_topic, exit_code,  # noqa: E402
                   kcat_messages, result)

TLS = os.path.join(ROOT, "tests", "data", "tls")
CA = os.path.join(TLS, "ca.pem")
SECRET = "tls-sEcReT-9137"

V1 = '{"attributes":{"label":"1700","latitude":42.35},"id":"y1700","type":"vehicle"}'
V2 = '{"attributes":{"label":"1701","latitude":42.36},"id":"y1701","type":"vehicle"}'
V1U = '{"attributes":{"label":"1700","latitude":42.37},"id":"y1700","type":"vehicle"}'
STREAM = ("event: reset\ndata: [" + V1 + "," + V2 + "]\n\n"
          "event: update\ndata: " + V1U + "\n\n")

REQUESTS = []  # (path, headers dict) the TLS server answered
CONNECTS = []  # the request head of every CONNECT the proxy got
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        with LOCK:
            REQUESTS.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(STREAM.encode())
            self.wfile.flush()
            # Keep-alives until the client goes (or 30 s), as the MBTA does.
            end = time.monotonic() + 30
            while time.monotonic() < end:
                time.sleep(0.2)
                self.wfile.write(b":\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        self.close_connection = True


class TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, handler, ctx):
        super().__init__(addr, handler)
        self.ctx = ctx

    def get_request(self):
        # The handshake in the handler's thread, not in accept(): a client
        # that refuses the certificate must not stall the server.
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return  # what the client thought of our certificate: its log says
        super().finish_request(request, client_address)


def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Proxy(socketserver.BaseRequestHandler):
    def handle(self):
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            d = self.request.recv(4096)
            if not d:
                return
            head += d
        text = head.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        with LOCK:
            CONNECTS.append(text)
        parts = text.split("\r\n", 1)[0].split()
        if len(parts) != 3 or parts[0] != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, port = parts[1].rsplit(":", 1)
        try:
            up = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        up.settimeout(None)
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        t = threading.Thread(target=pipe, args=(up, self.request), daemon=True)
        t.start()
        pipe(self.request, up)
        t.join(5)
        up.close()


class ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(TLS, "server.pem"), os.path.join(TLS, "server.key"))
ctx.set_alpn_protocols(["http/1.1"])
SRV = TLSServer(("127.0.0.1", 0), Handler, ctx)
PORT = SRV.server_address[1]
threading.Thread(target=SRV.serve_forever, daemon=True).start()
PRX = ProxyServer(("127.0.0.1", 0), Proxy)
PPORT = PRX.server_address[1]
threading.Thread(target=PRX.serve_forever, daemon=True).start()


def env(proxy=False):
    e = {k: v for k, v in os.environ.items()
         if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    e["MBTA_API_KEY"] = SECRET
    if proxy:
        e["https_proxy"] = "http://127.0.0.1:%d" % PPORT
    return e


def tail(host, *args, count=None, proxy=False, secs=None):
    """Runs tail on https://HOST:PORT/vehicles; with secs, stops it (SIGTERM)
    after that long. (rc, stdout, stderr)."""
    cmd = [BIN, "tail", "--backoff-base", "50", "--backoff-cap", "300", "--connect-timeout", "3000"]
    if count is not None:
        cmd += ["--count", str(count)]
    cmd += list(args) + ["https://%s:%d/vehicles?filter[route_type]=0,1" % (host, PORT)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(proxy))
    try:
        out, err = p.communicate(timeout=(secs or 20) * TM)
    except subprocess.TimeoutExpired:
        if not secs:
            p.kill()
        else:
            p.terminate()
        out, err = p.communicate()
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def events(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def ctxs(rc, out, err):
    return " [rc=%s stdout=%r stderr=%r]" % (rc, out[-300:], err[-500:])


def seen():
    with LOCK:
        return len(REQUESTS), len(CONNECTS)


# ---- cases ----

def case_verified_with_cacert():
    n0, _ = seen()
    rc, out, err = tail("127.0.0.1", "--cacert", CA, count=2)
    ev = events(out) if rc == 0 else []
    with LOCK:
        reqs = REQUESTS[n0:]
    if rc != 0 or [e["event"] for e in ev] != ["reset", "update"]:
        return "want reset, update and exit 0" + ctxs(rc, out, err)
    if ev[0]["data"] != "[" + V1 + "," + V2 + "]" or ev[1]["data"] != V1U:
        return "data differs from what the server sent: %r" % ev
    if len(reqs) != 1 or reqs[0][1].get("x-api-key") != SECRET:
        return "want one request carrying x-api-key, got %r" % [r[1].get("x-api-key") for r in reqs]
    if SECRET in err:
        return "the API key is in the log"
    return None


def case_unknown_ca_refused():
    # The system's CAs do not know the test CA: refused, said, retried.
    n0, _ = seen()
    rc, out, err = tail("127.0.0.1", secs=2.5)
    n1, _ = seen()
    tries = sum(1 for line in err.splitlines() if "SSL certificate problem" in line)
    if out.strip():
        return "events printed from an untrusted server" + ctxs(rc, out, err)
    if n1 != n0:
        return "an HTTP request reached the server through an unverified connection"
    if tries < 2:
        return "want libcurl's certificate error, logged at each of 2+ attempts" + ctxs(rc, out, err)
    return None


def case_wrong_name_refused():
    # Trusted CA, but the certificate is for 127.0.0.1, not "localhost".
    n0, _ = seen()
    rc, out, err = tail("localhost", "--cacert", CA, secs=2.5)
    n1, _ = seen()
    if out.strip() or n1 != n0:
        return "a certificate for another name was accepted" + ctxs(rc, out, err)
    if "localhost" not in err or "subject name" not in err:
        return "want libcurl's name mismatch error" + ctxs(rc, out, err)
    return None


def case_cacert_missing_is_usage_error():
    rc, out, err = tail("127.0.0.1", "--cacert", "/nonexistent/ca.pem", count=1)
    lines = err.strip().splitlines()
    if rc != 2 or len(lines) != 1 or "/nonexistent/ca.pem" not in lines[0] \
            or "No such file" not in lines[0]:
        return "want exit 2 and one line naming the file" + ctxs(rc, out, err)
    return None


def case_through_connect_proxy():
    n0, c0 = seen()
    rc, out, err = tail("127.0.0.1", "--cacert", CA, count=2, proxy=True)
    with LOCK:
        conns = CONNECTS[c0:]
        reqs = REQUESTS[n0:]
    if rc != 0 or [e["event"] for e in events(out)] != ["reset", "update"]:
        return "want reset, update through the proxy" + ctxs(rc, out, err)
    if len(conns) != 1 or not conns[0].startswith("CONNECT 127.0.0.1:%d HTTP/1.1" % PORT):
        return "want one CONNECT 127.0.0.1:%d, the proxy got %r" % (PORT, conns)
    if SECRET in conns[0]:
        return "the API key was sent to the proxy: %r" % conns[0]
    if len(reqs) != 1 or reqs[0][1].get("x-api-key") != SECRET:
        return "the server did not get the key through the tunnel"
    return None


def case_produce_through_proxy():
    if not BROKERS:
        return "skip"
    topic = "test.tls.%s" % RUN
    n0, c0 = seen()
    cmd = [BIN, "produce", "-b", BROKERS, "--api-url", "https://127.0.0.1:%d" % PORT,
           "--cacert", CA, "--stream", "vehicles=/vehicles?filter[route_type]=0,1@" + topic,
           "--partitions", "1", "--max-events", "2", "--stats-interval", "0"]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=60 * TM, env=env(proxy=True))
    except subprocess.TimeoutExpired:
        return "produce did not stop after --max-events 2"
    err = p.stderr.decode("utf-8", "replace")
    with LOCK:
        conns = CONNECTS[c0:]
    try:
        if p.returncode != 0:
            return "produce exited %d: %s" % (p.returncode, err[-500:])
        if not conns or not conns[0].startswith("CONNECT 127.0.0.1:%d " % PORT):
            return "produce did not go through the proxy: %r" % conns
        msgs = kcat_messages(topic)
        got = [(m.get("key"), m.get("payload")) for m in msgs]
        want = [("vehicle:y1700", V1), ("vehicle:y1701", V2)]
        if got[:2] != want or len(got) != 4 or got[3] != ("vehicle:y1700", V1U) \
                or not (got[2][0] or "").startswith("mbta-stream:reset-end:"):
            return "want the 2 reset items, the marker and the update, byte for byte: %r" % got
        return None
    finally:
        delete_topic(topic)


CASES = [
    ("verified_with_cacert", case_verified_with_cacert),
    ("unknown_ca_refused", case_unknown_ca_refused),
    ("wrong_name_refused", case_wrong_name_refused),
    ("cacert_missing_is_usage_error", case_cacert_missing_is_usage_error),
    ("through_connect_proxy", case_through_connect_proxy),
    ("produce_through_proxy", case_produce_through_proxy),
]

for name, fn in CASES:
    try:
        why = fn()
    except Exception as e:  # a crash in a case is that case's failure
        why = "%s: %s" % (type(e).__name__, e)
    if why == "skip":
        print("SKIP %s: no KAFKA_BROKERS" % name)
        continue
    result(name, why is None, why or "")
sys.exit(exit_code())
