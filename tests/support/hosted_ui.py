#!/usr/bin/env python3
"""A stand-in for the Amazon Cognito hosted UI, backed by moto.

moto emulates the Cognito API but has no hosted UI (`/oauth2/*` answer 404), so
the gateway's browser leg needs something to talk to. This server plays the
three parts of the hosted UI that an OAuth relying party touches:

- `GET /oauth2/authorize` validates the request against moto's
  `DescribeUserPoolClient` the way Cognito does (client id, response type,
  allowed flows, scopes, exact callback URL, identity provider, PKCE method) and
  shows a login form. Like Cognito, it only redirects an error back to the
  client when the redirect URI is one the client registered; otherwise it shows
  an error page.
- `POST /login` checks the credentials with moto's `AdminInitiateAuth`
  (ADMIN_USER_PASSWORD_AUTH, with SECRET_HASH for a client with a secret) and
  redirects to the callback with a single-use code and the caller's state.
- `POST /oauth2/token` requires client authentication (client_secret_basic, or
  client_secret_post) for a client with a secret, checks the code's binding to
  client and redirect URI and the PKCE S256 verifier, and returns moto's real
  tokens. The ID token is decoded and given what the real hosted UI adds and
  moto does not (the authorize request's `nonce`, the user's `email` when the
  `email` scope was granted, `at_hash`), then re-signed with moto's shipped
  private key under the same kid, so a relying party verifying it against
  moto's JWKS does real verification.

Test knobs (not part of Cognito):

- `POST /_test/next-id-token` with a JSON mutation queues a crafted ID token for
  the next successful token response. Fields (all optional):
  `claims` (object merged into the payload; a null value deletes the claim),
  `exp_offset` (seconds from now for `exp`; `iat`/`auth_time` move with it),
  `kid` (header kid), `alg` (`"none"` for an unsigned token),
  `key` (`"moto"`, the default, or `"random"` for a key nobody publishes).
- `GET /_test/log` returns the requests seen, for assertions on how a client
  authenticated at the token endpoint.

Usage: `hosted_ui.py --moto http://127.0.0.1:PORT --pool-id us-east-1_x --port 0`
prints `Running on http://127.0.0.1:PORT` once it accepts connections.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import hmac
import html
import json
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit, parse_qsl

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from flask import Flask, Response, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CODE_TTL_SECONDS = 300  # Cognito's authorization codes live 5 minutes.
LOGIN_TTL_SECONDS = 600


@dataclass
class PendingLogin:
    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    created: float = field(default_factory=time.time)


@dataclass
class IssuedCode:
    client_id: str
    redirect_uri: str
    username: str
    scopes: list[str]
    nonce: str | None
    code_challenge: str | None
    tokens: dict[str, Any]
    created: float = field(default_factory=time.time)


class HostedUi:
    """The stand-in's state and its view of moto."""

    def __init__(self, moto_url: str, pool_id: str, region: str) -> None:
        self.pool_id = pool_id
        self.region = region
        self.idp = boto3.client(
            "cognito-idp",
            region_name=region,
            endpoint_url=moto_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )
        self.lock = threading.Lock()
        self.pending: dict[str, PendingLogin] = {}
        self.codes: dict[str, IssuedCode] = {}
        self.id_token_mutations: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.moto_key = RSAKey.import_key(json.loads(_moto_private_jwk()))

    def describe_client(self, client_id: str) -> dict[str, Any] | None:
        try:
            return self.idp.describe_user_pool_client(UserPoolId=self.pool_id, ClientId=client_id)[
                "UserPoolClient"
            ]
        except ClientError as err:
            if err.response["Error"]["Code"] in ("ResourceNotFoundException", "InvalidParameterException"):
                return None
            raise

    def record(self, **event: Any) -> None:
        with self.lock:
            self.log.append({"at": time.time(), **event})


def _moto_private_jwk() -> str:
    """moto's private signing key, shipped inside the moto package."""
    blob = resources.files("moto").joinpath("cognitoidp/resources/jwks-private.json.gz").read_bytes()
    return gzip.decompress(blob).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _secret_hash(username: str, client_id: str, client_secret: str) -> str:
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _error_page(message: str, status: int = 400) -> Response:
    body = (
        "<!doctype html><html><head><title>Error</title></head><body>"
        "<h1>An error was encountered with the requested page.</h1>"
        f"<p id=\"error\">{html.escape(message)}</p></body></html>"
    )
    return Response(body, status=status, mimetype="text/html")


def _token_error(error: str, status: int = 400, description: str | None = None) -> Response:
    body: dict[str, str] = {"error": error}
    if description:
        body["error_description"] = description
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def create_app(ui: HostedUi) -> Flask:
    app = Flask("hosted_ui")

    @app.get("/oauth2/authorize")
    @app.get("/login")
    def authorize() -> Response:
        args = request.args
        client_id = args.get("client_id", "")
        redirect_uri = args.get("redirect_uri", "")
        ui.record(endpoint="authorize", params=dict(args))
        if not client_id:
            return _error_page("invalid_request: client_id is required")
        client = ui.describe_client(client_id)
        if client is None:
            return _error_page("invalid_request: client does not exist")
        # Cognito only redirects back to a URL it knows belongs to the client;
        # anything else is `redirect_mismatch` on its own error page.
        if not redirect_uri or redirect_uri not in client.get("CallbackURLs", []):
            return _error_page("redirect_mismatch")

        state = args.get("state")

        def fail(error: str, description: str) -> Response:
            params = {"error": error, "error_description": description}
            if state is not None:
                params["state"] = state
            return redirect(_with_query(redirect_uri, params), code=302)

        response_type = args.get("response_type", "")
        if response_type not in ("code", "token"):
            return fail("unsupported_response_type", "response_type must be code or token")
        if not client.get("AllowedOAuthFlowsUserPoolClient"):
            return fail("unauthorized_client", "client is not enabled for OAuth flows")
        if response_type not in client.get("AllowedOAuthFlows", []):
            return fail("unauthorized_client", f"flow {response_type} is not allowed for this client")
        if "COGNITO" not in client.get("SupportedIdentityProviders", []):
            return fail("invalid_request", "identity provider COGNITO is not enabled for this client")
        allowed_scopes = client.get("AllowedOAuthScopes", [])
        requested = args.get("scope")
        scopes = requested.split() if requested else list(allowed_scopes)
        if any(scope not in allowed_scopes for scope in scopes):
            return fail("invalid_scope", "a requested scope is not allowed for this client")
        code_challenge = args.get("code_challenge")
        method = args.get("code_challenge_method")
        if code_challenge is not None and method != "S256":
            return fail("invalid_request", "code_challenge_method must be S256")
        if code_challenge is None and method is not None:
            return fail("invalid_request", "code_challenge_method without code_challenge")

        login_id = secrets.token_urlsafe(24)
        with ui.lock:
            ui.pending[login_id] = PendingLogin(
                client_id=client_id,
                redirect_uri=redirect_uri,
                scopes=scopes,
                state=state,
                nonce=args.get("nonce"),
                code_challenge=code_challenge,
            )
        return _login_form(login_id, client_id, error=None)

    @app.post("/login")
    def login() -> Response:
        login_id = request.form.get("login_id", "")
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        with ui.lock:
            pending = ui.pending.get(login_id)
        if pending is None or time.time() - pending.created > LOGIN_TTL_SECONDS:
            return _error_page("login session expired or unknown")
        client = ui.describe_client(pending.client_id)
        if client is None:
            return _error_page("invalid_request: client does not exist")
        auth_params = {"USERNAME": username, "PASSWORD": password}
        secret = client.get("ClientSecret")
        if secret:
            auth_params["SECRET_HASH"] = _secret_hash(username, pending.client_id, secret)
        try:
            result = ui.idp.admin_initiate_auth(
                UserPoolId=ui.pool_id,
                ClientId=pending.client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters=auth_params,
            )
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code in ("NotAuthorizedException", "UserNotFoundException"):
                ui.record(endpoint="login", ok=False, username=username)
                return _login_form(login_id, pending.client_id, error="Incorrect username or password.", status=200)
            raise
        if "AuthenticationResult" not in result:
            challenge = result.get("ChallengeName", "unknown")
            return _login_form(
                login_id, pending.client_id, error=f"This stand-in cannot answer the {challenge} challenge."
            )
        with ui.lock:
            ui.pending.pop(login_id, None)
        auth = result["AuthenticationResult"]
        code = secrets.token_urlsafe(32)
        issued = IssuedCode(
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            username=username,
            scopes=pending.scopes,
            nonce=pending.nonce,
            code_challenge=pending.code_challenge,
            tokens={
                "access_token": auth["AccessToken"],
                "id_token": auth["IdToken"],
                "refresh_token": auth.get("RefreshToken"),
                "expires_in": auth.get("ExpiresIn", 3600),
            },
        )
        with ui.lock:
            ui.codes[code] = issued
        ui.record(endpoint="login", ok=True, username=username)
        params = {"code": code}
        if pending.state is not None:
            params["state"] = pending.state
        return redirect(_with_query(pending.redirect_uri, params), code=302)

    @app.post("/oauth2/token")
    def token() -> Response:
        form = request.form
        auth_method, client_id, client_secret = _client_credentials()
        ui.record(endpoint="token", auth_method=auth_method, grant_type=form.get("grant_type"))
        if auth_method == "conflict":
            return _token_error("invalid_request", description="client id in body and header differ")
        if not client_id:
            return _token_error("invalid_client")
        client = ui.describe_client(client_id)
        if client is None:
            return _token_error("invalid_client")
        expected_secret = client.get("ClientSecret")
        if expected_secret:
            if client_secret is None or not hmac.compare_digest(client_secret, expected_secret):
                return _token_error("invalid_client")
        elif client_secret is not None:
            return _token_error("invalid_client")

        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return _authorization_code_grant(client_id)
        if grant_type == "refresh_token":
            return _refresh_grant(client_id, client)
        if grant_type in ("client_credentials",):
            return _token_error("unauthorized_client")
        return _token_error("unsupported_grant_type")

    def _client_credentials() -> tuple[str, str | None, str | None]:
        """(method, client_id, secret) from the Authorization header or the body."""
        form = request.form
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                raw_id, _, raw_secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                return "basic", None, None
            # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
            basic_id, basic_secret = unquote(raw_id.replace("+", " ")), unquote(raw_secret.replace("+", " "))
            if form.get("client_id") and form.get("client_id") != basic_id:
                return "conflict", None, None
            return "client_secret_basic", basic_id, basic_secret
        if form.get("client_secret") is not None:
            return "client_secret_post", form.get("client_id"), form.get("client_secret")
        return "none", form.get("client_id"), None

    def _authorization_code_grant(client_id: str) -> Response:
        form = request.form
        code = form.get("code", "")
        with ui.lock:
            issued = ui.codes.pop(code, None)  # single use, even when the rest fails
        if issued is None or time.time() - issued.created > CODE_TTL_SECONDS:
            return _token_error("invalid_grant")
        if issued.client_id != client_id or issued.redirect_uri != form.get("redirect_uri"):
            return _token_error("invalid_grant")
        if issued.code_challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                return _token_error("invalid_request", description="code_verifier is required")
            computed = _b64url(hashlib.sha256(verifier.encode()).digest())
            if not hmac.compare_digest(computed, issued.code_challenge):
                return _token_error("invalid_grant")
        elif form.get("code_verifier"):
            return _token_error("invalid_grant")

        tokens = issued.tokens
        body: dict[str, Any] = {
            "access_token": tokens["access_token"],
            "token_type": "Bearer",
            "expires_in": tokens["expires_in"],
        }
        if "openid" in issued.scopes:
            body["id_token"] = _hosted_ui_id_token(issued)
        if tokens.get("refresh_token"):
            body["refresh_token"] = tokens["refresh_token"]
        resp = jsonify(body)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def _refresh_grant(client_id: str, client: dict[str, Any]) -> Response:
        refresh_token = request.form.get("refresh_token", "")
        params = {"REFRESH_TOKEN": refresh_token}
        try:
            result = ui.idp.admin_initiate_auth(
                UserPoolId=ui.pool_id, ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters=params
            )
        except ClientError:
            return _token_error("invalid_grant")
        auth = result["AuthenticationResult"]
        resp = jsonify(
            {
                "access_token": auth["AccessToken"],
                "id_token": auth["IdToken"],
                "token_type": "Bearer",
                "expires_in": auth.get("ExpiresIn", 3600),
            }
        )
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def _hosted_ui_id_token(issued: IssuedCode) -> str:
        token = jwt.decode(issued.tokens["id_token"], ui.moto_key)
        claims = dict(token.claims)
        if issued.nonce is not None:
            claims["nonce"] = issued.nonce
        if "email" in issued.scopes:
            attrs = _user_attributes(issued.username)
            if "email" in attrs:
                claims["email"] = attrs["email"]
                claims["email_verified"] = attrs.get("email_verified", "false") == "true"
        digest = hashlib.sha256(issued.tokens["access_token"].encode()).digest()
        claims["at_hash"] = _b64url(digest[: len(digest) // 2])
        with ui.lock:
            mutation = ui.id_token_mutations.pop(0) if ui.id_token_mutations else None
        if mutation is not None:
            ui.record(endpoint="token", crafted_id_token=mutation)
            return _crafted(claims, mutation)
        return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, ui.moto_key)

    def _user_attributes(username: str) -> dict[str, str]:
        user = ui.idp.admin_get_user(UserPoolId=ui.pool_id, Username=username)
        return {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}

    def _crafted(claims: dict[str, Any], mutation: dict[str, Any]) -> str:
        claims = dict(claims)
        if "exp_offset" in mutation:
            now = int(time.time())
            claims["exp"] = now + int(mutation["exp_offset"])
            claims["iat"] = claims["auth_time"] = claims["exp"] - 3600
        for name, value in (mutation.get("claims") or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        kid = mutation.get("kid", "dummy")
        if mutation.get("alg") == "none":
            header = {"alg": "none", "typ": "JWT", "kid": kid}
            return (
                _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode()) + "."
            )
        key = ui.moto_key if mutation.get("key", "moto") == "moto" else RSAKey.generate_key(2048)
        return jwt.encode({"alg": "RS256", "kid": kid}, claims, key)

    @app.post("/_test/next-id-token")
    def next_id_token() -> Response:
        mutation = request.get_json(force=True)
        if not isinstance(mutation, dict):
            return _token_error("invalid_request", description="expected a JSON object")
        with ui.lock:
            ui.id_token_mutations.append(mutation)
        return jsonify({"queued": len(ui.id_token_mutations)})

    @app.get("/_test/log")
    def test_log() -> Response:
        with ui.lock:
            return jsonify(list(ui.log))

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"ok": True})

    return app


def _login_form(login_id: str, client_id: str, error: str | None, status: int = 200) -> Response:
    error_html = f'<p class="error" id="loginErrorMessage">{html.escape(error)}</p>' if error else ""
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Signin</title></head>
<body>
<h1>Sign in with your username and password</h1>
{error_html}
<form id="login" method="post" action="/login">
  <input type="hidden" name="login_id" value="{html.escape(login_id)}">
  <input type="hidden" name="client_id" value="{html.escape(client_id)}">
  <label>Username <input id="signInFormUsername" name="username" type="text" autocomplete="username"></label>
  <label>Password <input id="signInFormPassword" name="password" type="password" autocomplete="current-password"></label>
  <input name="signInSubmitButton" type="submit" value="Sign in">
</form>
</body></html>
"""
    return Response(body, status=status, mimetype="text/html")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moto", required=True, help="moto_server URL")
    parser.add_argument("--pool-id", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    ui = HostedUi(args.moto, args.pool_id, args.region)
    server = make_server(args.host, args.port, create_app(ui), threaded=True)
    print(f"Running on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
