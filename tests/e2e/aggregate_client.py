#!/usr/bin/env python3
"""An MCP client on the official Python SDK against an aggregated route.

It logs in once (the same OAuth walk as `client.py`), opens the session in
the revision asked for (`--revision 2025-11-25`: `initialize`;
`--revision 2026-07-28`: the stateless `server/discover`), then lists every
page of tools, prompts, resources and resource templates, runs the calls
given (`--call NAME JSON`, `--read URI`, `--prompt NAME JSON`), and prints
one JSON line with what it saw. It answers sampling and elicitation
requests itself, so a member's request that reaches it comes back with
recognisable content.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx2
import mcp.types as types
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from mcp.shared.exceptions import MCPError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_walk import Outcome, walk  # noqa: E402
from client import MemoryStorage, _text  # noqa: E402

SAMPLED = "sampled by the aggregate test client"


async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    SEEN["sampling"].append(params.messages[0].content.text if params.messages else "")
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=SAMPLED), model="aggregate-test-model"
    )


async def elicitation(context: Any, params: Any) -> types.ElicitResult:
    SEEN["elicitation"].append(getattr(params, "message", ""))
    return types.ElicitResult(action="accept", content={"name": "Ada Lovelace"})


async def logging(params: Any) -> None:
    SEEN["logging"].append(str(getattr(params, "data", "")))


SEEN: dict[str, list[str]] = {"sampling": [], "elicitation": [], "logging": []}


async def every_page(fetch: Any, field: str) -> tuple[list[Any], int]:
    items: list[Any] = []
    pages = 0
    cursor = None
    while True:
        result = await fetch(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        pages += 1
        items.extend(getattr(result, field))
        cursor = result.next_cursor
        if not cursor or pages > 50:
            return items, pages


async def run(args: argparse.Namespace) -> dict[str, Any]:
    storage = MemoryStorage()
    walks: list[Outcome] = []

    async def redirect_handler(url: str) -> None:
        walks.append(await walk(url, args.redirect_uri, args.username, args.password, "approve"))

    async def callback_handler() -> AuthorizationCodeResult:
        outcome = walks[-1]
        if outcome.kind != "redirect" or not outcome.code:
            raise RuntimeError(f"browser leg did not end with a code: {outcome.to_json()}")
        return AuthorizationCodeResult(code=outcome.code, state=outcome.params.get("state"), iss=outcome.params.get("iss"))

    provider = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(
            client_name="cognigate aggregate test client",
            redirect_uris=[args.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    out: dict[str, Any] = {"revision": args.revision}
    async with httpx2.AsyncClient(auth=provider, timeout=60.0) as http:
        async with streamable_http_client(args.url, http_client=http) as streams:
            async with ClientSession(
                streams[0],
                streams[1],
                sampling_callback=sampling,
                elicitation_callback=elicitation,
                logging_callback=logging,
            ) as session:
                if args.revision == "2026-07-28":
                    discovered = await session.discover()
                    out["protocol_version"] = args.revision
                    info = (discovered.meta or {}).get("io.modelcontextprotocol/serverInfo") or {}
                    out["server_name"] = info.get("name")
                    out["supported_versions"] = list(discovered.supported_versions)
                else:
                    init = await session.initialize()
                    out["protocol_version"] = init.protocol_version
                    out["server_name"] = init.server_info.name
                tools, out["tool_pages"] = await every_page(session.list_tools, "tools")
                out["tools"] = sorted(tool.name for tool in tools)
                prompts, _ = await every_page(session.list_prompts, "prompts")
                out["prompts"] = sorted(prompt.name for prompt in prompts)
                templates, _ = await every_page(session.list_resource_templates, "resource_templates")
                out["templates"] = sorted(template.uri_template for template in templates)
                out["calls"] = {}
                out["progress"] = {}
                for name, arguments in args.call or []:
                    progress: list[float] = []

                    async def on_progress(value: float, total: float | None, message: str | None) -> None:
                        progress.append(value)

                    try:
                        result = await session.call_tool(name, json.loads(arguments), progress_callback=on_progress)
                        out["progress"][name] = progress
                        out["calls"][name] = {"is_error": bool(result.is_error), "text": _text(result)}
                    except MCPError as err:
                        out["calls"][name] = {"error": {"code": err.error.code, "message": err.error.message}}
                out["reads"] = {}
                for uri in args.read or []:
                    try:
                        result = await session.read_resource(uri)
                        out["reads"][uri] = "".join(getattr(c, "text", "") or "" for c in result.contents)
                    except MCPError as err:
                        out["reads"][uri] = {"error": {"code": err.error.code, "message": err.error.message}}
                out["prompt_results"] = {}
                for name, arguments in args.prompt or []:
                    try:
                        result = await session.get_prompt(name, json.loads(arguments))
                        out["prompt_results"][name] = [
                            getattr(m.content, "text", "") for m in result.messages
                        ]
                    except MCPError as err:
                        out["prompt_results"][name] = {"error": {"code": err.error.code, "message": err.error.message}}
                if args.wait_for_log:
                    for _ in range(100):
                        if SEEN["logging"]:
                            break
                        await asyncio.sleep(0.1)
    out["authorizations"] = len(walks)
    out["log_messages"] = SEEN["logging"]
    out["sampling_requests"] = SEEN["sampling"]
    out["elicitation_requests"] = SEEN["elicitation"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Python MCP SDK client for an aggregated route")
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:33419/callback")
    parser.add_argument("--revision", default="2025-11-25", choices=["2025-11-25", "2026-07-28"])
    parser.add_argument("--call", nargs=2, action="append", metavar=("TOOL", "JSON"))
    parser.add_argument("--read", action="append", metavar="URI")
    parser.add_argument("--prompt", nargs=2, action="append", metavar=("PROMPT", "JSON"))
    parser.add_argument("--wait-for-log", action="store_true", help="wait up to 10 s for a logging notification")
    print(json.dumps(asyncio.run(run(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
