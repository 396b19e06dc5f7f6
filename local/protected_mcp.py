#!/usr/bin/env python3
"""An OAuth-protected example upstream MCP server, on the official Python SDK.

It is a resource server of its own (RFC 9728 metadata at
`/.well-known/oauth-protected-resource/mcp`, 401 with `WWW-Authenticate`
without a valid token), protected by `local/upstream_as.mjs`: the SDK's
bearer-token middleware checks every token by introspection (RFC 7662) at
that server, and accepts it only when it is active, bound to this server's
URL (`aud`, RFC 8707) and carries `mcp:tools`. So only a token that server
issued for this server, and for a user, gets through: never the gateway's
own token. `scripts/demo` puts it behind the gateway with the
`mcp-token-exchange-inbound` policy, so a newcomer sees the connect page.

Tools: `whoami()` (the user and client of the token, its audience and
scopes, as the server verified them) and `echo(text)`.

For tests, `GET /_test/stats` reports the SHA-256 of every bearer token
presented (never the tokens), the subjects that called, and how many
requests were refused.

Usage: `protected_mcp.py --port PORT --issuer http://127.0.0.1:ASPORT
[--introspection-secret S] [--refuse-subject USER]` prints `Running on
http://127.0.0.1:PORT/mcp`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import threading
from pathlib import Path
from typing import Any

import httpx2
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from example_mcp import serve  # noqa: E402

STATS: dict[str, Any] = {"token_sha256": [], "subjects": [], "refused": 0, "requests": 0}
LOCK = threading.Lock()


class IntrospectionVerifier:
    """The SDK's `TokenVerifier`: RFC 7662 introspection at the issuer."""

    def __init__(self, endpoint: str, secret: str, resource: str, refused: set[str]) -> None:
        self.endpoint = endpoint
        self.auth = ("protected-mcp", secret)
        self.resource = resource
        self.refused = refused

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        with LOCK:
            if digest not in STATS["token_sha256"]:
                STATS["token_sha256"].append(digest)
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(self.endpoint, data={"token": token}, auth=self.auth)
        body = response.json() if response.status_code == 200 else {}
        audience = body.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not body.get("active") or self.resource not in audiences or body.get("sub") in self.refused:
            with LOCK:
                STATS["refused"] += 1
            return None
        return AccessToken(
            token=token,
            client_id=body.get("client_id", ""),
            scopes=(body.get("scope") or "").split(),
            expires_at=body.get("exp"),
            resource=self.resource,
            subject=body.get("sub"),
        )


def build_server(issuer: str, resource: str, secret: str, refused: set[str]) -> MCPServer:
    verifier = IntrospectionVerifier(f"{issuer}/token/introspection", secret, resource, refused)
    server = MCPServer(
        name="cognigate-protected-example",
        version="1.0.0",
        token_verifier=verifier,
        auth=AuthSettings(
            issuer_url=issuer, resource_server_url=resource, required_scopes=["mcp:tools"], validate_token_resource=True
        ),
    )

    @server.tool()
    def whoami() -> dict[str, Any]:
        """Who this call runs as: the token's user, client, audience and scopes."""
        token = get_access_token()
        if token is None:
            return {}
        with LOCK:
            STATS["subjects"].append(token.subject)
        return {"sub": token.subject, "client_id": token.client_id, "aud": token.resource, "scopes": token.scopes}

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    return server


class Stats:
    """`GET /_test/stats`, in front of the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_test/stats":
            with LOCK:
                body = json.dumps(STATS).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            with LOCK:
                STATS["requests"] += 1
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser(description="OAuth-protected example upstream MCP server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--introspection-secret", default="introspection-secret")
    parser.add_argument("--refuse-subject", action="append", default=[],
                        help="refuse every token of this user, valid or not (an account the server has locked)")
    args = parser.parse_args()
    resource = f"http://{args.host}:{args.port}/mcp"
    server = build_server(args.issuer, resource, args.introspection_secret, set(args.refuse_subject))
    app = server.streamable_http_app(host=args.host)
    try:
        asyncio.run(serve(Stats(app), args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
