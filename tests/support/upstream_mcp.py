#!/usr/bin/env python3
"""An upstream MCP server for the gateway's end-to-end tests.

The official Python SDK's streamable HTTP transport at `/mcp`, with three tools:

- `echo(text)` returns the text unchanged;
- `add(a, b)` returns the sum;
- `whoami_headers()` returns the HTTP request headers the server saw (names
  lower-cased), so a test can check what the gateway forwarded.

Every HTTP request is also recorded by a small ASGI middleware; `GET
/_test/stats` returns the counts, and in particular whether any request carried
an `Authorization` or `Cookie` header (the gateway must never forward either)
and whether `X-Forwarded-*` headers were added. With `--forbid-authorization`
a request carrying `Authorization` is answered 400 instead of being served.

Usage: `upstream_mcp.py [--port 0] [--json-response]` prints
`Running on http://127.0.0.1:PORT/mcp` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

# The port binding and readiness line are the local mode's example server's.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "local"))
from example_mcp import serve as serve_app  # noqa: E402


class HeaderRecorder:
    """ASGI middleware that records which sensitive headers reach the upstream."""

    def __init__(self, app: Any, forbid_authorization: bool) -> None:
        self.app = app
        self.forbid_authorization = forbid_authorization
        self.lock = threading.Lock()
        self.stats: dict[str, Any] = {
            "requests": 0,
            "mcp_requests": 0,
            "authorization_seen": 0,
            "cookie_seen": 0,
            "forwarded_seen": 0,
            "session_ids_seen": 0,
            "last_headers": {},
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/_test/stats":
            with self.lock:
                body = json.dumps({**self.stats, "tool_calls": dict(TOOL_CALLS)}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self.lock:
            self.stats["requests"] += 1
            if scope["path"].startswith("/mcp"):
                self.stats["mcp_requests"] += 1
            if "authorization" in headers:
                self.stats["authorization_seen"] += 1
            if "cookie" in headers:
                self.stats["cookie_seen"] += 1
            if any(name.startswith("x-forwarded-") for name in headers):
                self.stats["forwarded_seen"] += 1
            if "mcp-session-id" in headers:
                self.stats["session_ids_seen"] += 1
            self.stats["last_headers"] = headers
        if self.forbid_authorization and "authorization" in headers:
            body = b'{"error":"the upstream must never receive an Authorization header"}'
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


# Tool calls that reached this server, by tool name: a test checks that a call
# the gateway refused never got here.
TOOL_CALLS: dict[str, int] = {}


def _called(name: str) -> None:
    TOOL_CALLS[name] = TOOL_CALLS.get(name, 0) + 1


def build_server() -> MCPServer:
    server = MCPServer(name="cognigate-e2e-upstream", version="1.0.0")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        _called("echo")
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        _called("add")
        return a + b

    @server.tool()
    def whoami_headers(ctx: Context) -> dict[str, str]:
        """The HTTP request headers this server received for this call."""
        _called("whoami_headers")
        return {k.lower(): v for k, v in (ctx.headers or {}).items()}

    return server


async def serve(args: argparse.Namespace) -> None:
    app = build_server().streamable_http_app(json_response=args.json_response, host=args.host)
    wrapped = HeaderRecorder(app, forbid_authorization=args.forbid_authorization)
    await serve_app(wrapped, args.host, args.port)


def main() -> None:
    parser = argparse.ArgumentParser(description="Upstream MCP server for cognigate e2e tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--json-response", action="store_true", help="answer JSON instead of SSE")
    parser.add_argument("--forbid-authorization", action="store_true")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
