"""A counting HTTP proxy in front of moto, for the benchmarks.

Counts AWS operations (from X-Amz-Target) and records the upstream time of
each, so a benchmark can report calls per run and the latency floor of a chain
of dependent calls. Control endpoints: GET /_calls (JSON), POST /_reset.

Usage: counting_proxy.py UPSTREAM_URL  (prints "Running on http://127.0.0.1:PORT")
"""
import http.client
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

UPSTREAM = urlparse(sys.argv[1])
CALLS = []
LOCK = threading.Lock()
LOCAL = threading.local()


def upstream():
    conn = getattr(LOCAL, "conn", None)
    if conn is None:
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        LOCAL.conn = conn
    return conn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK add ~40 ms to every keep-alive call.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_calls":
            with LOCK:
                body = json.dumps(CALLS).encode()
            return self.reply(200, body, [("Content-Type", "application/json")])
        self.forward()

    def do_POST(self):
        if self.path == "/_reset":
            with LOCK:
                CALLS.clear()
            return self.reply(200, b"{}")
        self.forward()

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        target = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1] or "(none)"
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        started = time.perf_counter()
        for attempt in range(2):
            try:
                conn = upstream()
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                LOCAL.conn = None
                if attempt:
                    raise
        elapsed = time.perf_counter() - started
        with LOCK:
            CALLS.append({"op": target, "seconds": elapsed})
        passthrough = [(k, v) for k, v in response.getheaders() if k.lower() not in ("content-length", "transfer-encoding", "connection")]
        self.reply(response.status, data, passthrough)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"Running on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
