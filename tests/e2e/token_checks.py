#!/usr/bin/env python3
"""The gateway's token rules, checked over plain HTTP after a real login.

The SDK clients show the happy path; this script pokes at the rules around it,
each after a login walked through the hosted UI stand-in and the consent page
(`browser_walk.walk`) and a code exchange with PKCE:

- a code is single-use;
- `/mcp/{slug}` without a token, or with a garbage one, is 401 with
  `WWW-Authenticate: Bearer resource_metadata=".../.well-known/oauth-protected-resource/mcp/{slug}"`;
- an access token works on its own route and is 401 on another route;
- refresh rotates; reusing a spent refresh token is `invalid_grant` and revokes
  the family: the rotated refresh token and the family's access tokens stop working;
- RFC 7009 revocation of a refresh token ends its family too.

    token_checks.py --gateway http://localhost:PORT --username U --password P \
        [--route /mcp/echo --other-route /mcp/other]

With `--save FILE` it only logs in and writes the client id and tokens to FILE;
with `--resume FILE` it only uses them (refresh, then a call): the gateway
restart test runs one, restarts the gateway, then runs the other.

Prints one JSON object of observed statuses; the Rust test asserts on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_walk import _pkce, walk  # noqa: E402

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "cognigate-e2e-token-checks", "version": "1.0.0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class Gateway:
    def __init__(self, http: httpx2.AsyncClient, base: str, meta: dict[str, Any]) -> None:
        self.http = http
        self.base = base
        self.meta = meta

    @classmethod
    async def discover(cls, http: httpx2.AsyncClient, base: str) -> "Gateway":
        meta = (await http.get(base + "/.well-known/oauth-authorization-server")).json()
        return cls(http, base, meta)

    async def register(self, redirect_uri: str) -> str:
        resp = await self.http.post(
            self.meta["registration_endpoint"],
            json={
                "client_name": "cognigate e2e token checks",
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            },
        )
        resp.raise_for_status()
        return resp.json()["client_id"]

    async def login(self, args: argparse.Namespace, client_id: str, route: str) -> dict[str, Any]:
        """Authorize (walked), then exchange: the code, the verifier and the token response."""
        verifier, challenge = _pkce()
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": args.redirect_uri,
            "state": "token-checks",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": self.base + route,
        }
        url = str(httpx2.URL(self.meta["authorization_endpoint"], params=params))
        outcome = await walk(url, args.redirect_uri, args.username, args.password, "approve", self.http)
        if not outcome.code:
            raise RuntimeError(f"login ended without a code: {outcome.to_json()}")
        exchange = {
            "grant_type": "authorization_code",
            "code": outcome.code,
            "redirect_uri": args.redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": self.base + route,
        }
        resp = await self.http.post(self.meta["token_endpoint"], data=exchange)
        if resp.status_code != 200:
            raise RuntimeError(f"code exchange failed: {resp.status_code} {resp.text}")
        return {"exchange": exchange, "tokens": resp.json()}

    async def token(self, data: dict[str, str]) -> tuple[int, dict[str, Any]]:
        resp = await self.http.post(self.meta["token_endpoint"], data=data)
        try:
            body = resp.json()
        except ValueError:
            body = {"raw": resp.text[:200]}
        return resp.status_code, body

    async def refresh(self, client_id: str, refresh_token: str, route: str) -> tuple[int, dict[str, Any]]:
        return await self.token(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": client_id,
                "resource": self.base + route,
            }
        )

    async def call(self, route: str, access_token: str | None) -> dict[str, Any]:
        headers = dict(MCP_HEADERS)
        if access_token is not None:
            headers["Authorization"] = f"Bearer {access_token}"
        resp = await self.http.post(self.base + route, headers=headers, json=INITIALIZE)
        return {
            "status": resp.status_code,
            "www_authenticate": resp.headers.get("www-authenticate"),
            "content_type": resp.headers.get("content-type"),
            "body": resp.text[:500],
        }


async def checks(args: argparse.Namespace) -> dict[str, Any]:
    base = args.gateway.rstrip("/")
    out: dict[str, Any] = {}
    async with httpx2.AsyncClient(follow_redirects=False, timeout=30.0) as http:
        gw = await Gateway.discover(http, base)

        if args.resume:
            saved = json.loads(Path(args.resume).read_text())
            out["old_access_on_route"] = await gw.call(args.route, saved["access_token"])
            status, body = await gw.refresh(saved["client_id"], saved["refresh_token"], args.route)
            out["refresh_status"] = status
            if status == 200:
                out["new_access_on_route"] = await gw.call(args.route, body["access_token"])
            else:
                out["refresh_body"] = body
            return out

        client_id = await gw.register(args.redirect_uri)
        first = await gw.login(args, client_id, args.route)
        tokens = first["tokens"]
        out["token_fields"] = sorted(tokens)
        out["token_type"] = tokens.get("token_type")
        out["expires_in"] = tokens.get("expires_in")

        if args.save:
            Path(args.save).write_text(json.dumps({
                "client_id": client_id,
                "access_token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"],
            }))
            out["access_on_route"] = await gw.call(args.route, tokens["access_token"])
            return out

        out["no_token"] = await gw.call(args.route, None)
        out["garbage_token"] = await gw.call(args.route, "not-a-token")
        out["access_on_route"] = await gw.call(args.route, tokens["access_token"])
        out["access_on_other_route"] = await gw.call(args.other_route, tokens["access_token"])

        status, rotated = await gw.refresh(client_id, tokens["refresh_token"], args.route)
        out["refresh"] = {"status": status, "rotated": rotated.get("refresh_token") not in (None, tokens["refresh_token"])}
        out["refreshed_access_on_route"] = await gw.call(args.route, rotated.get("access_token"))
        status, body = await gw.refresh(client_id, tokens["refresh_token"], args.route)
        out["refresh_reuse"] = {"status": status, "error": body.get("error")}
        status, body = await gw.refresh(client_id, rotated.get("refresh_token", ""), args.route)
        out["rotated_after_reuse"] = {"status": status, "error": body.get("error")}
        out["refreshed_access_after_reuse"] = await gw.call(args.route, rotated.get("access_token"))

        second_login = await gw.login(args, client_id, args.route)
        second = second_login["tokens"]
        # A replayed code fails, and revokes what its first use issued.
        status, body = await gw.token(second_login["exchange"])
        out["code_reuse"] = {"status": status, "error": body.get("error")}
        out["access_after_code_reuse"] = await gw.call(args.route, second["access_token"])
        revoke = await http.post(
            gw.meta.get("revocation_endpoint", base + "/oauth/revoke"),
            data={"token": second["refresh_token"], "token_type_hint": "refresh_token", "client_id": client_id},
        )
        out["revoke_status"] = revoke.status_code
        status, body = await gw.refresh(client_id, second["refresh_token"], args.route)
        out["refresh_after_revoke"] = {"status": status, "error": body.get("error")}
        out["access_after_revoke"] = await gw.call(args.route, second["access_token"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Check the gateway's token rules over plain HTTP")
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--route", default="/mcp/echo")
    parser.add_argument("--other-route", default="/mcp/other")
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:33423/callback")
    parser.add_argument("--save", help="log in only; write client id and tokens here")
    parser.add_argument("--resume", help="use the client id and tokens written by --save")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(checks(args))), flush=True)


if __name__ == "__main__":
    main()
