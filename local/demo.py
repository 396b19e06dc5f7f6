#!/usr/bin/env python3
"""The Python steps of `scripts/demo` (the local mode), run with the demo's venv.

- `configure` turns what `cognigate up` wrote against the emulator into a
  stack a person can log in to: `COGNITO_USER_POOL_DOMAIN` in the env file
  points at the local login page (the file keeps mode 0600 and every other
  line, and is replaced atomically), the starter route's `rewritePattern`
  points at the example upstream, and a demo user is created in the pool
  (`AdminCreateUser` + `AdminSetUserPassword`, permanent, with an email and
  the group `mcp-users`, so the ID token carries `email` and `cognito:groups`).
  With `--protected-upstream`, it also adds the OAuth-protected example: an
  `mcp-token-exchange-inbound` policy and the route `/mcp/example-oauth`.
- `report` reads the JSON line of `tests/e2e/client.py --call …` (the official
  MCP Python SDK logging in through the gateway) on stdin and prints what it
  saw, step by step; exit 1 when the path did not complete.
- `report-connect` reads the JSON line of `tests/e2e/upstream_oauth_checks.py
  --phase call` on the OAuth example and prints its connect-required link.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

DEMO_GROUP = "mcp-users"


def _set_env_var(path: Path, name: str, value: str) -> None:
    """Replaces (or appends) NAME=value; the file stays 0600 and is swapped in atomically."""
    lines = path.read_text().splitlines()
    found = False
    for i, line in enumerate(lines):
        key, sep, _ = line.partition("=")
        if sep and key.strip() == name:
            lines[i] = f"{name}={value}"
            found = True
    if not found:
        lines.append(f"{name}={value}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _env_value(path: Path, name: str) -> str:
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            return value.strip()
    raise SystemExit(f"demo: {path} has no {name}; did `cognigate up` run?")


def _point_routes(routes_file: Path, upstream: str) -> list[str]:
    """Points every McpProxyHandler route at the example upstream; returns the route paths."""
    doc = json.loads(routes_file.read_text())
    paths = []
    for path, item in doc.get("paths", {}).items():
        for operation in item.values():
            route = operation.get("x-zuplo-route") if isinstance(operation, dict) else None
            if route and route.get("handler", {}).get("export") == "McpProxyHandler":
                route["handler"].setdefault("options", {})["rewritePattern"] = upstream
                if path not in paths:
                    paths.append(path)
    if not paths:
        raise SystemExit(f"demo: {routes_file} has no McpProxyHandler route to point at {upstream}")
    tmp = routes_file.with_name(f".{routes_file.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, routes_file)
    return paths


def _add_oauth_example(state: Path, upstream: str) -> str:
    """The OAuth-protected example: its `mcp-token-exchange-inbound` policy
    (Zuplo's shape) and a route `/mcp/example-oauth` behind it, after the
    OAuth policy. Returns the route's path."""
    policies_file = state / "config" / "policies.json"
    policies = json.loads(policies_file.read_text())
    oauth_policy = next(p["name"] for p in policies["policies"] if p.get("policyType") == "mcp-cognito-oauth-inbound")
    policies["policies"].append({
        "name": "example-oauth-upstream",
        "policyType": "mcp-token-exchange-inbound",
        "handler": {
            "module": "$import(@zuplo/runtime/mcp-gateway)",
            "export": "McpTokenExchangeInboundPolicy",
            "options": {"displayName": "Example OAuth upstream", "id": "example-oauth", "authMode": "user-oauth",
                        "scopes": [], "clientRegistration": {"mode": "auto"}},
        },
    })
    routes_file = state / "config" / "routes.oas.json"
    doc = json.loads(routes_file.read_text())
    template = next(iter(doc["paths"].values()))
    route = json.loads(json.dumps(template))
    for method, operation in route.items():
        if isinstance(operation, dict) and "x-zuplo-route" in operation:
            operation["operationId"] = f"mcp-example-oauth-{method}"
            operation["x-zuplo-route"]["handler"].setdefault("options", {})["rewritePattern"] = upstream
            operation["x-zuplo-route"]["policies"] = {"inbound": [oauth_policy, "example-oauth-upstream"]}
    doc["paths"]["/mcp/example-oauth"] = route
    for path, text in ((policies_file, json.dumps(policies, indent=2)), (routes_file, json.dumps(doc, indent=2))):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, path)
    return "/mcp/example-oauth"


def _create_user(moto: str, pool_id: str, username: str, password: str, email: str) -> None:
    import boto3
    from botocore.config import Config

    idp = boto3.client(
        "cognito-idp",
        region_name="us-east-1",
        endpoint_url=moto,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)
    idp.create_group(UserPoolId=pool_id, GroupName=DEMO_GROUP, Description="cognigate local mode")
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=DEMO_GROUP)


def configure(args: argparse.Namespace) -> int:
    state = Path(args.state)
    env_file = state / ".env"
    _set_env_var(env_file, "COGNITO_USER_POOL_DOMAIN", args.login_domain)
    routes = _point_routes(state / "config" / "routes.oas.json", args.upstream)
    pool_id = _env_value(env_file, "COGNITO_USER_POOL_ID")
    _create_user(args.moto, pool_id, args.username, args.password, args.email)
    print(f"  env file        COGNITO_USER_POOL_DOMAIN={args.login_domain} (the local login page)")
    print(f"  routes          {', '.join(routes)} -> {args.upstream}")
    if args.protected_upstream:
        route = _add_oauth_example(state, args.protected_upstream)
        print(f"                  {route} -> {args.protected_upstream} (OAuth-protected: mcp-token-exchange-inbound)")
    print(f"  demo user       created in {pool_id} (group {DEMO_GROUP}, email {args.email})")
    print(f"                  username: {args.username}")
    print(f"                  password: {args.password}")
    return 0


def _step_name(step: str) -> str:
    method, _, url = step.partition(" ")
    path = "/" + url.split("://", 1)[-1].partition("/")[2]
    what = {
        "/oauth/authorize": "gateway authorize",
        "/oauth2/authorize": "login page",
        "/login": "login page: sign in",
        "/oauth/callback": "gateway callback, consent page",
        "/oauth/consent": "consent: approve",
    }.get(path, path)
    return f"{method} {path} ({what})"


def report(_: argparse.Namespace) -> int:
    raw = sys.stdin.read()
    out = None
    for line in reversed(raw.splitlines()):
        try:
            out = json.loads(line)
            break
        except ValueError:
            continue
    if not isinstance(out, dict) or "call" not in out:
        print("  the MCP client did not complete the path; its output:", file=sys.stderr)
        print(raw[-4000:], file=sys.stderr)
        return 1
    call = out["call"]
    arguments = ", ".join(f"{k}={v!r}" for k, v in call["arguments"].items())
    print(f"  discovery       401 -> protected resource metadata -> authorization server metadata")
    print(f"  registration    client_id {out.get('client_id')}")
    print(f"  browser leg     {' -> '.join(_step_name(s) for s in out.get('steps', []))}")
    print(f"  token           {out.get('token_type')} access token"
          + (" + refresh token" if out.get("refresh_token") else ""))
    print(f"  initialize      {out.get('server_name')} (protocol {out.get('protocol_version')})")
    print(f"  tools/list      {', '.join(out.get('tools', []))}")
    print(f"  tools/call      {call['tool']}({arguments}) -> {call['text']}")
    return 1 if call.get("is_error") else 0


def report_connect(_: argparse.Namespace) -> int:
    """The OAuth example's first call: connect-required, with the link."""
    raw = sys.stdin.read()
    out = None
    for line in reversed(raw.splitlines()):
        try:
            out = json.loads(line)
            break
        except ValueError:
            continue
    error = (out or {}).get("first", {}).get("error") if isinstance(out, dict) else None
    link = None
    if error:
        for elicitation in (error.get("data") or {}).get("elicitations") or []:
            link = elicitation.get("url")
        link = link or (error.get("data") or {}).get("connectUrl")
    if not link:
        print("  the OAuth example did not answer connect-required; the client's output:", file=sys.stderr)
        print(raw[-4000:], file=sys.stderr)
        return 1
    print(f"  connect-required {error.get('code')} (URL elicitation): the user connects their upstream account at")
    print(f"                  {link}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("configure")
    p.add_argument("--state", required=True, help="the demo's state folder (.env and config/ from `up`)")
    p.add_argument("--moto", required=True)
    p.add_argument("--login-domain", required=True, help="127.0.0.1:PORT of the local login page")
    p.add_argument("--upstream", required=True, help="the example MCP server's URL")
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--protected-upstream", help="the OAuth-protected example MCP server's URL")
    p.set_defaults(run=configure)
    p = sub.add_parser("report")
    p.set_defaults(run=report)
    p = sub.add_parser("report-connect")
    p.set_defaults(run=report_connect)
    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
