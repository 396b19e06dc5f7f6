#!/usr/bin/env python3
"""An example upstream MCP server for the local mode, on the official Python SDK.

`scripts/demo` puts it behind the gateway's starter route, so a client that
logs in through the gateway has something real to call. It speaks streamable
HTTP at `/mcp` and has four tools:

- `echo(text)` returns the text unchanged;
- `add(a, b)` returns the sum;
- `roll_dice(sides=6, count=1)` rolls dice;
- `server_time()` returns the server's clock in UTC (ISO 8601).

`serve()` is also how the tests' upstream (`tests/support/upstream_mcp.py`)
binds its port and announces itself, so both print the same readiness line.

Usage: `example_mcp.py [--port 0]` prints `Running on http://127.0.0.1:PORT/mcp`
once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
from datetime import datetime, timezone
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer


def build_server() -> MCPServer:
    server = MCPServer(name="cognigate-example", version="1.0.0")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def roll_dice(sides: int = 6, count: int = 1) -> list[int]:
        """Roll `count` dice with `sides` sides each (at most 100 dice of 2 to 1000 sides)."""
        if not 2 <= sides <= 1000 or not 1 <= count <= 100:
            raise ValueError("sides must be 2..1000 and count 1..100")
        return [random.randint(1, sides) for _ in range(count)]

    @server.tool()
    def server_time() -> str:
        """The server's current time in UTC, ISO 8601."""
        return datetime.now(timezone.utc).isoformat(timespec="seconds")

    return server


async def serve(app: Any, host: str, port: int, path: str = "/mcp") -> None:
    """Serves an ASGI app on host:port (0 = any free port) and prints the readiness line.

    The socket is bound here rather than by uvicorn so the line can name the
    port actually taken, and is printed only once uvicorn accepts connections.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # re-raise the startup failure
            return
        await asyncio.sleep(0.01)
    print(f"Running on http://{host}:{bound}{path}", flush=True)
    await task


def main() -> None:
    parser = argparse.ArgumentParser(description="Example upstream MCP server (streamable HTTP at /mcp)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    app = build_server().streamable_http_app(host=args.host)
    try:
        asyncio.run(serve(app, args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
