#!/usr/bin/env python3
"""An OTLP/HTTP trace receiver for the gateway's tracing tests.

`POST /v1/traces` takes an `ExportTraceServiceRequest` in protobuf (the
official `opentelemetry-proto` definitions decode it, as a collector would)
and keeps every span; `GET /_test/spans` returns them as JSON: ids in hex,
kind and status as numbers, attributes as a flat object, and the
resource's `service.name` (`GET /_test/count`: how many there are).
Anything else the gateway might send (JSON, gzip, another path) is answered
415/404 and counted under `GET /_test/refused`.

Usage: `otlp_receiver.py [--port 0]` prints `Running on http://127.0.0.1:PORT`
once it accepts connections.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SPANS: list[dict] = []
REFUSED: list[str] = []
LOCK = threading.Lock()


def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(item) for item in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def decode(body: bytes) -> list[dict]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "status_code": span.status.code,
                        "attributes": {kv.key: value(kv.value) for kv in span.attributes},
                        "service_name": resource.get("service.name"),
                        "scope": scope_spans.scope.name,
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                    }
                )
    return spans


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_args):
        pass

    def reply(self, status: int, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        content_type = self.headers.get("Content-Type", "")
        if self.path != "/v1/traces":
            with LOCK:
                REFUSED.append(f"path {self.path}")
            return self.reply(404, b"", "text/plain")
        if content_type != "application/x-protobuf" or self.headers.get("Content-Encoding"):
            with LOCK:
                REFUSED.append(f"content {content_type} {self.headers.get('Content-Encoding')}")
            return self.reply(415, b"", "text/plain")
        spans = decode(body)
        with LOCK:
            SPANS.extend(spans)
        self.reply(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

    def do_GET(self):
        with LOCK:
            if self.path == "/_test/spans":
                return self.reply(200, json.dumps(SPANS).encode(), "application/json")
            if self.path == "/_test/count":
                return self.reply(200, json.dumps(len(SPANS)).encode(), "application/json")
            if self.path == "/_test/refused":
                return self.reply(200, json.dumps(REFUSED).encode(), "application/json")
        self.reply(404, b"", "text/plain")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"Running on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
