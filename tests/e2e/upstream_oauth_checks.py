#!/usr/bin/env python3
"""A route whose upstream is OAuth-protected (mcp-token-exchange-inbound),
driven by the official Python SDK as the MCP client.

The SDK logs in to the gateway (`OAuthClientProvider`, browser leg walked
headlessly by `browser_walk.walk`), then calls the upstream's `whoami` tool.

- `--phase connect`: the first call must get connect-required; the connect
  URL it carries is walked in headless Chromium (`connect.mjs`: gateway
  sign-in, connect page, the upstream's login and consent), then the same
  call is made again.
- `--phase call`: one call, reported as it went (result or error).
- `--phase race --replicas URL,URL --wait SECONDS --as-events URL`: a
  session on each replica (initialized while the upstream token is fresh),
  then, after the wait, one `whoami` on each at the same moment; reports how
  many refresh grants the upstream's authorization server answered meanwhile.

`--elicitation` makes the client declare URL-mode elicitation (it passes an
elicitation callback); without it the client declares none. Prints one JSON
line; `gateway_token_sha256` lets the test check that the gateway's own token
never reached the upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from mcp.shared.exceptions import MCPError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from browser_walk import Outcome, walk  # noqa: E402
from client import MemoryStorage  # noqa: E402


def provider_for(args: argparse.Namespace, url: str, storage: MemoryStorage) -> OAuthClientProvider:
    walks: list[Outcome] = []

    async def redirect_handler(authorize_url: str) -> None:
        walks.append(await walk(authorize_url, args.redirect_uri, args.username, args.password, "approve"))

    async def callback_handler() -> AuthorizationCodeResult:
        outcome = walks[-1]
        if outcome.kind != "redirect" or not outcome.code:
            raise RuntimeError(f"browser leg did not end with a code: {outcome.to_json()}")
        return AuthorizationCodeResult(code=outcome.code, state=outcome.params.get("state"), iss=outcome.params.get("iss"))

    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="cognigate e2e upstream-oauth client",
            redirect_uris=[args.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


async def elicitation_callback(_ctx: Any, _params: Any) -> Any:
    raise RuntimeError("no server-initiated elicitation is expected here")


def session(args: argparse.Namespace, read: Any, write: Any) -> ClientSession:
    if args.elicitation:
        return ClientSession(read, write, elicitation_callback=elicitation_callback)
    return ClientSession(read, write)


def error_of(err: MCPError) -> dict[str, Any]:
    return {"code": err.error.code, "message": err.error.message, "data": err.error.data}


async def attempt(args: argparse.Namespace, http: httpx2.AsyncClient, url: str) -> dict[str, Any]:
    """initialize + whoami on a fresh session: the result, or the error."""
    try:
        async with streamable_http_client(url, http_client=http) as streams:
            async with session(args, streams[0], streams[1]) as client:
                await client.initialize()
                result = await client.call_tool("whoami", {})
                return {"ok": True, "whoami": result.structured_content, "is_error": bool(result.is_error)}
    except MCPError as err:
        return {"ok": False, "error": error_of(err)}
    except BaseException as err:  # the transport wraps errors in exception groups
        inner = err
        while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
            inner = inner.exceptions[0]
        if isinstance(inner, MCPError):
            return {"ok": False, "error": error_of(inner)}
        raise


def connect_url(error: dict[str, Any]) -> str | None:
    data = error.get("data") or {}
    for elicitation in data.get("elicitations") or []:
        if elicitation.get("mode") == "url":
            return elicitation.get("url")
    found = re.search(r"https?://\S+/oauth/upstream/connect\?ticket=[\w-]+", error.get("message", ""))
    return found.group(0) if found else None


def walk_connect(args: argparse.Namespace, url: str) -> dict[str, Any]:
    cmd = ["node", str(HERE / "connect.mjs"), "--url", url, "--username", args.username, "--password", args.password,
           "--upstream-login", args.upstream_login, "--decision", args.decision]
    if args.screenshot:
        cmd += ["--screenshot", args.screenshot]
    done = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, timeout=90)
    if done.returncode != 0:
        raise RuntimeError(f"connect.mjs failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


async def race(args: argparse.Namespace, storage: MemoryStorage) -> dict[str, Any]:
    urls = args.replicas.split(",")
    # One HTTP client (and OAuth provider) per replica, sharing the tokens:
    # a provider serializes the requests it authorizes, and these two must
    # reach the replicas at the same moment.
    async with httpx2.AsyncClient(auth=provider_for(args, urls[0], storage), timeout=60.0) as http_one, \
            httpx2.AsyncClient(auth=provider_for(args, urls[1], storage), timeout=60.0) as http_two:
        async with streamable_http_client(urls[0], http_client=http_one) as first, \
                streamable_http_client(urls[1], http_client=http_two) as second:
            async with session(args, first[0], first[1]) as one, session(args, second[0], second[1]) as two:
                await one.initialize()
                await two.initialize()
                await asyncio.sleep(args.wait)
                before = await refreshes(args.as_events)
                results = await asyncio.gather(one.call_tool("whoami", {}), two.call_tool("whoami", {}),
                                               return_exceptions=True)
                after = await refreshes(args.as_events)
    return {"results": [r.structured_content if not isinstance(r, BaseException) else {"error": repr(r)}
                        for r in results],
            "refreshes_during_race": after - before}


async def refreshes(events_url: str) -> int:
    """The refresh grants the upstream's authorization server answered so far."""
    async with httpx2.AsyncClient(timeout=10) as http:
        events = (await http.get(events_url)).json()
    return sum(1 for event in events if event.get("grant_type") == "refresh_token" and "error" not in event)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    storage = MemoryStorage()
    out: dict[str, Any] = {}
    async with httpx2.AsyncClient(auth=provider_for(args, args.url, storage), timeout=60.0) as http:
        if args.phase == "race":
            # Signed in to the gateway first, through the public URL.
            out["first"] = await attempt(args, http, args.url)
            out.update(await race(args, storage))
        else:
            out["first"] = await attempt(args, http, args.url)
            if args.phase == "connect" and not out["first"]["ok"]:
                url = connect_url(out["first"]["error"])
                out["connect_url"] = url
                if url:
                    out["connect"] = walk_connect(args, url)
                    out["second"] = await attempt(args, http, args.url)
    token = storage.tokens.access_token if storage.tokens else ""
    out["gateway_token_sha256"] = hashlib.sha256(token.encode()).hexdigest() if token else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="mcp-token-exchange-inbound checks with the Python MCP SDK")
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--upstream-login", default="upstream-user")
    parser.add_argument("--phase", choices=["connect", "call", "race"], default="connect")
    parser.add_argument("--decision", choices=["approve", "deny"], default="approve")
    parser.add_argument("--elicitation", action="store_true")
    parser.add_argument("--screenshot")
    parser.add_argument("--replicas", default="")
    parser.add_argument("--wait", type=float, default=0.0)
    parser.add_argument("--as-events", default="")
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:33431/callback")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
