#!/usr/bin/env python3
"""A machine client on the official Python SDK: no browser, no person.

`mcp.client.auth.extensions.client_credentials.ClientCredentialsOAuthProvider`
does the OAuth work: it gets the 401, discovers the protected resource
metadata and the authorization server metadata (whose issuer must be the one
given), and runs the client_credentials grant at the gateway's token endpoint
with the Cognito app client's id and secret. Then it lists the tools and calls
`echo` and `whoami_headers` (or only `--call TOOL --arguments JSON`, what
`scripts/demo` runs), and prints one JSON line with what the Rust test asserts on. A refusal
(a 403 for a route the client has no scope for, a deleted client) is reported
in the line instead of raised.

    machine_client.py --url http://localhost:PORT/mcp/echo --issuer http://localhost:PORT \
        --client-id ID --client-secret SECRET [--auth-method client_secret_post] [--scope mcp:route.echo]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx2
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client import MemoryStorage  # noqa: E402


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def _failure(err: BaseException) -> dict[str, Any]:
    """The HTTP status of the first refusal inside an exception (group)."""
    stack: list[BaseException] = [err]
    while stack:
        current = stack.pop()
        response = getattr(current, "response", None)
        if response is not None and getattr(response, "status_code", None):
            return {"status": response.status_code, "body": response.text[:300], "kind": type(current).__name__}
        stack.extend(getattr(current, "exceptions", ()) or ())
        if current.__cause__ is not None:
            stack.append(current.__cause__)
        if current.__context__ is not None:
            stack.append(current.__context__)
    return {"status": None, "kind": type(err).__name__, "message": str(err)[:300]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    storage = MemoryStorage()
    provider = ClientCredentialsOAuthProvider(
        server_url=args.url,
        storage=storage,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_endpoint_auth_method=args.auth_method,
        scope=args.scope,
        issuer=args.issuer,
    )
    out: dict[str, Any] = {"client": "python", "provider": "ClientCredentialsOAuthProvider"}
    # What the MCP server answered, request by request: a refusal (403) ends
    # in an exception whose shape is the SDK's business; the status is not.
    seen: list[list[Any]] = []

    async def record(response: Any) -> None:
        seen.append([response.request.method, response.request.url.path, response.status_code])

    try:
        async with httpx2.AsyncClient(auth=provider, timeout=30.0, event_hooks={"response": [record]}) as http:
            async with streamable_http_client(args.url, http_client=http) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = await session.list_tools()
                    out["tools"] = sorted(t.name for t in tools.tools)
                    if args.call:
                        arguments = json.loads(args.arguments)
                        try:
                            result = await session.call_tool(args.call, arguments)
                            out["call"] = {"tool": args.call, "arguments": arguments, "text": _text(result),
                                           "structured": result.structured_content,
                                           "is_error": bool(result.is_error)}
                        except MCPError as err:
                            # A JSON-RPC error answer (-32601 for a tool the gateway hides).
                            out["call"] = {"tool": args.call, "arguments": arguments,
                                           "error": {"code": err.error.code, "message": err.error.message}}
                    else:
                        result = await session.call_tool("echo", {"text": args.text})
                        out["echo"] = _text(result)
                        whoami = await session.call_tool("whoami_headers", {})
                        out["upstream_headers"] = whoami.structured_content or json.loads(_text(whoami) or "{}")
    except BaseException as err:  # noqa: BLE001 - reported to the test, which decides
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        out["failure"] = _failure(err)
        mcp = [status for _, path, status in seen if path.startswith("/mcp/")]
        if out["failure"].get("status") is None and mcp:
            out["failure"]["status"] = mcp[-1]
    out["responses"] = seen
    token = storage.tokens
    out["token"] = {
        "access_token": token.access_token if token else None,
        "refresh_token": bool(token and token.refresh_token),
        "scope": token.scope if token else None,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--auth-method", default="client_secret_basic")
    parser.add_argument("--scope", default=None)
    parser.add_argument("--text", default="from a machine")
    parser.add_argument("--call", help="only this tool (with --arguments), instead of echo and whoami_headers")
    parser.add_argument("--arguments", default="{}")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    sys.exit(main())
