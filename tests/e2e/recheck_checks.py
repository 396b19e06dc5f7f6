#!/usr/bin/env python3
"""The gateway's re-check of the user at Cognito on refresh, over plain HTTP.

After a real login (hosted UI stand-in, consent page, code exchange), the
refresh token is used once; then the user is changed in moto (`--then
disable` with AdminDisableUser, `--then delete` with AdminDeleteUser, or
`none`), and the rotated refresh token is used again. What the gateway
answered, and whether the family's access token still works on the route, is
printed for the Rust test to assert on.

    recheck_checks.py --gateway URL --username U --password P --moto URL \
        --pool-id ID --then disable|delete|none

With `--save FILE` it logs in, refreshes once and writes the client id and the
rotated tokens to FILE; with `--resume FILE` it only refreshes with them and
calls the route (the Cognito-down test stops the stand-in between the two).
With `--replay` the spent refresh token is presented again right after the
first refresh (a second session within the grace window), and that is all.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import boto3
import httpx2
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from token_checks import Gateway  # noqa: E402


def _change_user(args: argparse.Namespace) -> None:
    idp = boto3.client(
        "cognito-idp",
        region_name="us-east-1",
        endpoint_url=args.moto,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
    if args.then == "disable":
        idp.admin_disable_user(UserPoolId=args.pool_id, Username=args.username)
    elif args.then == "delete":
        idp.admin_delete_user(UserPoolId=args.pool_id, Username=args.username)


def _answer(status: int, body: dict[str, Any], previous: str | None = None) -> dict[str, Any]:
    return {
        "status": status,
        "error": body.get("error"),
        "error_description": body.get("error_description"),
        "rotated": body.get("refresh_token") not in (None, previous),
    }


async def checks(args: argparse.Namespace) -> dict[str, Any]:
    base = args.gateway.rstrip("/")
    out: dict[str, Any] = {}
    async with httpx2.AsyncClient(follow_redirects=False, timeout=30.0) as http:
        gw = await Gateway.discover(http, base)

        if args.resume:
            saved = json.loads(Path(args.resume).read_text())
            resp = await http.post(
                gw.meta["token_endpoint"],
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": saved["refresh_token"],
                    "client_id": saved["client_id"],
                    "resource": base + args.route,
                },
            )
            body = resp.json()
            out["refresh"] = _answer(resp.status_code, body, saved["refresh_token"])
            out["refresh"]["retry_after"] = resp.headers.get("retry-after")
            out["access"] = (await gw.call(args.route, saved["access_token"]))["status"]
            return out

        client_id = await gw.register(args.redirect_uri)
        out["client_id"] = client_id
        tokens = (await gw.login(args, client_id, args.route))["tokens"]
        status, first = await gw.refresh(client_id, tokens["refresh_token"], args.route)
        out["first_refresh"] = _answer(status, first, tokens["refresh_token"])
        if status != 200:
            return out
        out["access_after_first_refresh"] = (await gw.call(args.route, first["access_token"]))["status"]
        if args.replay:
            # The spent token again, as a second session of the client would within the grace window.
            status, replayed = await gw.refresh(client_id, tokens["refresh_token"], args.route)
            out["replay"] = _answer(status, replayed, tokens["refresh_token"])
            out["replay"]["same_answer"] = replayed.get("refresh_token") == first["refresh_token"]
            return out

        if args.save:
            Path(args.save).write_text(
                json.dumps(
                    {
                        "client_id": client_id,
                        "access_token": first["access_token"],
                        "refresh_token": first["refresh_token"],
                    }
                )
            )
            return out

        _change_user(args)
        status, second = await gw.refresh(client_id, first["refresh_token"], args.route)
        out["second_refresh"] = _answer(status, second, first["refresh_token"])
        # The access token the family issued before the change.
        out["access_after_second_refresh"] = (await gw.call(args.route, first["access_token"]))["status"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Check the gateway re-checks the user at Cognito on refresh")
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--moto", required=True)
    parser.add_argument("--pool-id", required=True)
    parser.add_argument("--then", choices=["disable", "delete", "none"], default="none")
    parser.add_argument("--route", default="/mcp/echo")
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:33424/callback")
    parser.add_argument("--replay", action="store_true", help="present the spent refresh token again after the first refresh")
    parser.add_argument("--save", help="log in and refresh once only; write client id and tokens here")
    parser.add_argument("--resume", help="refresh with the tokens written by --save, and call the route")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(checks(args))), flush=True)


if __name__ == "__main__":
    main()
