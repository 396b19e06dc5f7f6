#!/usr/bin/env python3
"""Grants shared by gateway replicas on one Redis, checked over plain HTTP.

Logins go through the front (`--gateway`, the public URL every replica
announces); the checks address the replicas directly (`--replica`, given
two or more times):

- one authorization code redeemed at two replicas at the same moment:
  exactly one exchange succeeds, and the other, a replay, revokes what the
  first issued (its refresh token fails, its access token is refused on
  every replica), even when the winner had not stored it yet;
- a refresh token rotated on one replica and then reused on another:
  refused, and the whole family is revoked on every replica (the rotated
  refresh token is refused elsewhere, and its access token stops working on
  every replica once they have synced revocations);
- a refresh token revoked (RFC 7009) on one replica: its access token stops
  working on the others.

    replica_checks.py --gateway http://localhost:FRONT --replica http://127.0.0.1:A \
        --replica http://127.0.0.1:B [--replica ...] --username U --password P

Prints one JSON object of observed statuses; the Rust test asserts on it.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_walk import _pkce, walk  # noqa: E402
from token_checks import INITIALIZE, MCP_HEADERS  # noqa: E402

# How long a replica may take to learn of a revocation made on another (it
# re-reads revocations from the store every few seconds).
SYNC_WAIT = 30.0


async def login(http: httpx2.AsyncClient, meta: dict[str, Any], args: argparse.Namespace, client_id: str,
                resource: str) -> dict[str, str]:
    """Walks the browser leg through the front; returns the code exchange form (not sent)."""
    verifier, challenge = _pkce()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": args.redirect_uri,
        "state": "replica-checks",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": resource,
    }
    url = str(httpx2.URL(meta["authorization_endpoint"], params=params))
    outcome = await walk(url, args.redirect_uri, args.username, args.password, "approve", http)
    if not outcome.code:
        raise RuntimeError(f"login ended without a code: {outcome.to_json()}")
    return {
        "grant_type": "authorization_code",
        "code": outcome.code,
        "redirect_uri": args.redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
        "resource": resource,
    }


async def token(http: httpx2.AsyncClient, replica: str, data: dict[str, str]) -> tuple[int, dict[str, Any]]:
    resp = await http.post(replica + "/oauth/token", data=data)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, {"raw": resp.text[:200]}


async def call(http: httpx2.AsyncClient, replica: str, route: str, access_token: str) -> int:
    headers = dict(MCP_HEADERS, Authorization=f"Bearer {access_token}")
    return (await http.post(replica + route, headers=headers, json=INITIALIZE)).status_code


async def until_refused_everywhere(http: httpx2.AsyncClient, replicas: list[str], route: str,
                                   access_token: str) -> list[int]:
    """Each replica's status for the token once all refuse it (or when the wait is over)."""
    deadline = time.monotonic() + SYNC_WAIT
    while True:
        statuses = [await call(http, replica, route, access_token) for replica in replicas]
        if all(status == 401 for status in statuses) or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.25)


async def checks(args: argparse.Namespace) -> dict[str, Any]:
    front = args.gateway.rstrip("/")
    replicas = [r.rstrip("/") for r in args.replica]
    resource = front + args.route
    out: dict[str, Any] = {}
    async with httpx2.AsyncClient(follow_redirects=False, timeout=30.0) as http:
        meta = (await http.get(front + "/.well-known/oauth-authorization-server")).json()
        reg = await http.post(meta["registration_endpoint"], json={
            "client_name": "cognigate e2e replica checks",
            "redirect_uris": [args.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
        reg.raise_for_status()
        client_id = reg.json()["client_id"]

        # One code, two replicas, at once.
        exchange = await login(http, meta, args, client_id, resource)
        raced = await asyncio.gather(token(http, replicas[0], exchange), token(http, replicas[1], exchange))
        out["code_race"] = [{"status": s, "error": b.get("error")} for s, b in raced]
        winner = next((b for s, b in raced if s == 200), None)
        if winner is None:
            return out
        # The losing replica saw a replayed code, which revokes what its first
        # use issued (RFC 6749 4.1.2): on every replica, whichever won.
        refresh = {"grant_type": "refresh_token", "client_id": client_id, "resource": resource}
        status, body = await token(http, replicas[-1], dict(refresh, refresh_token=winner["refresh_token"]))
        out["winner_after_replay"] = {"status": status, "error": body.get("error")}
        out["winner_access_after_replay"] = await until_refused_everywhere(
            http, replicas, args.route, winner.get("access_token", ""))

        # Rotate on replica 1, reuse the spent token on the last replica.
        status, winner = await token(http, replicas[0], await login(http, meta, args, client_id, resource))
        out["fresh_login"] = status
        status, rotated = await token(http, replicas[1], dict(refresh, refresh_token=winner["refresh_token"]))
        out["rotate"] = {"status": status, "rotated": rotated.get("refresh_token") not in (None, winner["refresh_token"])}
        out["rotated_access"] = [await call(http, r, args.route, rotated.get("access_token", "")) for r in replicas]
        status, body = await token(http, replicas[-1], dict(refresh, refresh_token=winner["refresh_token"]))
        out["reuse_elsewhere"] = {"status": status, "error": body.get("error")}
        out["rotated_after_reuse"] = []
        for replica in replicas:
            status, body = await token(http, replica, dict(refresh, refresh_token=rotated.get("refresh_token", "")))
            out["rotated_after_reuse"].append({"status": status, "error": body.get("error")})
        out["rotated_access_after_reuse"] = await until_refused_everywhere(
            http, replicas, args.route, rotated.get("access_token", ""))

        # Revoke on replica 0; the others must stop honouring the access token.
        status, second = await token(http, replicas[0], await login(http, meta, args, client_id, resource))
        out["second_login"] = status
        out["second_access"] = [await call(http, r, args.route, second.get("access_token", "")) for r in replicas]
        revoke = await http.post(replicas[0] + "/oauth/revoke", data={
            "token": second.get("refresh_token", ""), "token_type_hint": "refresh_token", "client_id": client_id})
        out["revoke_status"] = revoke.status_code
        out["refresh_after_revoke"] = []
        for replica in replicas[1:]:
            status, body = await token(http, replica, dict(refresh, refresh_token=second.get("refresh_token", "")))
            out["refresh_after_revoke"].append({"status": status, "error": body.get("error")})
        out["access_after_revoke"] = await until_refused_everywhere(
            http, replicas[1:], args.route, second.get("access_token", ""))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Replica checks for cognigate e2e tests")
    parser.add_argument("--gateway", required=True, help="the public URL (the front over the replicas)")
    parser.add_argument("--replica", action="append", required=True, help="one replica's own URL (2 or more)")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--route", default="/mcp/echo")
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:33427/callback")
    args = parser.parse_args()
    if len(args.replica) < 2:
        parser.error("give at least two --replica URLs")
    print(json.dumps(asyncio.run(checks(args))), flush=True)


if __name__ == "__main__":
    main()
