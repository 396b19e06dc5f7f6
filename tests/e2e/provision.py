#!/usr/bin/env python3
"""Provision moto the way `cognigate up` does, and add a user.

The end-to-end tests provision with `cognigate up` itself and use this script
only for what `up` does not do: the test user (permanent password, email
attribute) and extra app clients for the hosted UI stand-in's own checks.
`stack` does by hand what `up` does (a user pool, a prefix domain and a
confidential app client: client secret, code flow, `openid profile email`,
COGNITO, the given callback URLs), for running the peers without the CLI.

Sub-commands (each prints one JSON object on stdout):

- `stack --moto URL --name NAME --callback URL [--callback URL ...]`
  → `{"pool_id", "client_id", "client_secret", "domain"}`
- `client --moto URL --pool-id ID --name NAME [--flows code] [--scopes ...]
  [--callback URL ...] [--logout-url URL ...] [--no-secret] [--no-oauth] [--idp COGNITO]`
  → `{"client_id", "client_secret"}`: an extra client for the stand-in's checks
- `user --moto URL --pool-id ID --username U --password P --email E`
  → `{"username", "sub"}`
"""

from __future__ import annotations

import argparse
import json

import boto3
from botocore.config import Config


def _idp(moto: str):
    return boto3.client(
        "cognito-idp",
        region_name="us-east-1",
        endpoint_url=moto,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def _client(idp, pool_id: str, name: str, *, secret: bool, oauth: bool, flows, scopes, callbacks, idps, logouts=()):
    params = {
        "UserPoolId": pool_id,
        "ClientName": name,
        "GenerateSecret": secret,
        "SupportedIdentityProviders": idps,
        "ReadAttributes": ["email", "email_verified", "name"],
    }
    if oauth:
        params.update(
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=flows,
            AllowedOAuthScopes=scopes,
            CallbackURLs=callbacks,
        )
        if logouts:
            params["LogoutURLs"] = list(logouts)
    client = idp.create_user_pool_client(**params)["UserPoolClient"]
    return {"client_id": client["ClientId"], "client_secret": client.get("ClientSecret")}


def stack(args) -> dict:
    idp = _idp(args.moto)
    pool = idp.create_user_pool(
        PoolName=args.name,
        UserPoolTags={"cognigate:stack": args.name, "cognigate:managed": "true"},
        AutoVerifiedAttributes=["email"],
    )["UserPool"]
    domain = f"{args.name}-{pool['Id'].split('_')[1].lower()}"[:63]
    idp.create_user_pool_domain(Domain=domain, UserPoolId=pool["Id"])
    client = _client(
        idp,
        pool["Id"],
        args.name,
        secret=True,
        oauth=True,
        flows=["code"],
        scopes=["openid", "profile", "email"],
        callbacks=args.callback,
        idps=["COGNITO"],
    )
    return {"pool_id": pool["Id"], "domain": f"{domain}.auth.us-east-1.amazoncognito.com", **client}


def client(args) -> dict:
    return _client(
        _idp(args.moto),
        args.pool_id,
        args.name,
        secret=not args.no_secret,
        oauth=not args.no_oauth,
        flows=args.flows,
        scopes=args.scopes,
        callbacks=args.callback,
        idps=args.idp,
        logouts=args.logout_url,
    )


def user(args) -> dict:
    idp = _idp(args.moto)
    created = idp.admin_create_user(
        UserPoolId=args.pool_id,
        Username=args.username,
        UserAttributes=[
            {"Name": "email", "Value": args.email},
            {"Name": "email_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )["User"]
    idp.admin_set_user_password(
        UserPoolId=args.pool_id, Username=args.username, Password=args.password, Permanent=True
    )
    for group in args.group:
        try:
            idp.create_group(UserPoolId=args.pool_id, GroupName=group)
        except idp.exceptions.GroupExistsException:
            pass
        idp.admin_add_user_to_group(UserPoolId=args.pool_id, Username=args.username, GroupName=group)
    sub = next((a["Value"] for a in created.get("Attributes", []) if a["Name"] == "sub"), None)
    return {"username": args.username, "sub": sub, "groups": args.group}


def main() -> None:
    parser = argparse.ArgumentParser(description="Provision moto like `cognigate up`, plus a user")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("stack")
    p.add_argument("--moto", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--callback", action="append", required=True)
    p.set_defaults(run=stack)

    p = sub.add_parser("client")
    p.add_argument("--moto", required=True)
    p.add_argument("--pool-id", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--flows", nargs="+", default=["code"])
    p.add_argument("--scopes", nargs="+", default=["openid", "profile", "email"])
    p.add_argument("--callback", action="append", default=[])
    p.add_argument("--idp", nargs="+", default=["COGNITO"])
    p.add_argument("--no-secret", action="store_true")
    p.add_argument("--no-oauth", action="store_true")
    p.add_argument("--logout-url", action="append", default=[], help="a sign-out URL (LogoutURLs)")
    p.set_defaults(run=client)

    p = sub.add_parser("user")
    p.add_argument("--moto", required=True)
    p.add_argument("--pool-id", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--group", action="append", default=[], help="a group to put the user in (created if missing)")
    p.set_defaults(run=user)

    args = parser.parse_args()
    print(json.dumps(args.run(args)), flush=True)


if __name__ == "__main__":
    main()
