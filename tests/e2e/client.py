#!/usr/bin/env python3
"""An MCP client on the official Python SDK that logs in through the gateway.

`mcp.client.auth.OAuthClientProvider` does all of the OAuth work: it gets the
401, discovers the protected resource metadata from `resource_metadata`, then
the authorization server metadata, registers dynamically, builds the authorize
URL with PKCE S256, state and `resource`, and exchanges the code. Its redirect
handler is the only thing supplied here: it walks the browser leg headlessly
(`browser_walk.walk`: gateway → hosted UI login → gateway consent → approve)
and hands the code, state and `iss` from the final redirect to the callback
handler.

Then it lists the tools, calls `echo`, `add` and `whoami_headers` through the
gateway, forces a refresh (marks the access token as expired, so the SDK itself
runs the refresh_token grant before the next request), calls `add` again, and
prints one JSON line with what the Rust test asserts on.

    client.py --url http://localhost:PORT/mcp/echo --username U --password P

With `--call TOOL --arguments JSON` it does only the login, `tools/list` and
that one call (what `scripts/demo` runs to prove the local mode), and reports
the browser leg's steps and the tool's result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_walk import Outcome, walk  # noqa: E402


class MemoryStorage:
    """Token storage that also remembers every token set it was given."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.history: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.history.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    storage = MemoryStorage()
    walks: list[Outcome] = []
    authorize_urls: list[str] = []

    async def redirect_handler(url: str) -> None:
        authorize_urls.append(url)
        walks.append(await walk(url, args.redirect_uri, args.username, args.password, "approve"))

    async def callback_handler() -> AuthorizationCodeResult:
        outcome = walks[-1]
        if outcome.kind != "redirect" or not outcome.code:
            raise RuntimeError(f"browser leg did not end with a code: {outcome.to_json()}")
        return AuthorizationCodeResult(
            code=outcome.code, state=outcome.params.get("state"), iss=outcome.params.get("iss")
        )

    provider = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(
            client_name=args.client_name,
            redirect_uris=[args.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )

    out: dict[str, Any] = {"client": "python", "sdk": "mcp"}
    async with httpx2.AsyncClient(auth=provider, timeout=30.0) as http:
        async with streamable_http_client(args.url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                out["protocol_version"] = init.protocol_version
                out["server_name"] = init.server_info.name
                tools = await session.list_tools()
                out["tools"] = sorted(t.name for t in tools.tools)
                if args.call:
                    arguments = json.loads(args.arguments)
                    try:
                        result = await session.call_tool(args.call, arguments)
                        out["call"] = {"tool": args.call, "arguments": arguments,
                                       "is_error": bool(result.is_error), "text": _text(result),
                                       "structured": result.structured_content}
                    except MCPError as err:
                        # A JSON-RPC error answer (e.g. -32601 for a tool the gateway hides).
                        out["call"] = {"tool": args.call, "arguments": arguments,
                                       "error": {"code": err.error.code, "message": err.error.message}}
                    out["steps"] = walks[0].steps if walks else []
                    out["client_id"] = storage.client_info.client_id if storage.client_info else None
                    out["token_type"] = storage.tokens.token_type if storage.tokens else None
                    out["refresh_token"] = bool(storage.tokens and storage.tokens.refresh_token)
                    return out
                out["echo"] = _text(await session.call_tool("echo", {"text": args.text}))
                out["add"] = _text(await session.call_tool("add", {"a": 2, "b": 40}))
                headers = await session.call_tool("whoami_headers", {})
                out["upstream_headers"] = headers.structured_content or json.loads(_text(headers) or "{}")

                first = storage.tokens
                # Expire the access token in the SDK's eyes: before its next request the
                # provider runs the refresh_token grant against the gateway by itself.
                provider.context.token_expiry_time = time.time() - 1
                out["add_after_refresh"] = _text(await session.call_tool("add", {"a": 1, "b": 1}))
                second = storage.tokens

    out["authorizations"] = len(walks)
    out["authorize_url"] = authorize_urls[0] if authorize_urls else None
    out["consent_text"] = walks[0].consent_text if walks else ""
    out["token_sets"] = len(storage.history)
    out["token_type"] = first.token_type if first else None
    out["refreshed"] = bool(
        first and second and first.access_token != second.access_token and len(storage.history) >= 2
    )
    out["refresh_token_rotated"] = bool(
        first and second and first.refresh_token and second.refresh_token
        and first.refresh_token != second.refresh_token
    )
    out["client_id"] = storage.client_info.client_id if storage.client_info else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Python MCP SDK client for cognigate e2e tests")
    parser.add_argument("--url", required=True, help="the gateway's /mcp/{slug} URL")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:33419/callback")
    parser.add_argument("--client-name", default="cognigate e2e python client")
    parser.add_argument("--text", default="hello from python")
    parser.add_argument("--call", help="only list the tools and call this one")
    parser.add_argument("--arguments", default="{}", help="JSON arguments for --call")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
