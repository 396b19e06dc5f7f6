#!/usr/bin/env python3
"""cognigate's local login page: the Amazon Cognito hosted UI, for a user pool in moto.

moto emulates the Cognito API but has no hosted UI (`/oauth2/*` answer 404),
so without this page nobody could log in to a gateway provisioned against the
emulator. `scripts/demo` runs it for the local mode, and the tests run it
wherever the real hosted UI would be. Point `COGNITO_USER_POOL_DOMAIN` at it
(`127.0.0.1:PORT`: the gateway reaches a loopback domain over http).

It plays the parts of the hosted UI that an OAuth relying party and a person
touch, with the checks Cognito makes:

- `GET /oauth2/authorize` (and `GET /login`) validates the request against
  moto's `DescribeUserPoolClient`: client id, response type, allowed flows,
  scopes, exact callback URL, identity provider, PKCE method. Like Cognito, it
  only redirects an error back to a callback URL the client registered; an
  unknown client or callback gets an error page that says what is wrong and
  how to fix it. A browser that signed in before (the `cognito` session
  cookie) gets its code straight away unless `prompt=login` is sent.
- `POST /login` checks the credentials with moto's `AdminInitiateAuth`
  (ADMIN_USER_PASSWORD_AUTH, with SECRET_HASH for a client with a secret),
  shows "Incorrect username or password." on a miss, and otherwise redirects
  to the callback with a single-use code and the caller's state.
- `POST /oauth2/token` requires client authentication (client_secret_basic, or
  client_secret_post) for a client with a secret, checks the code's binding to
  client and redirect URI and the PKCE S256 verifier, and returns moto's real
  tokens. The ID token is decoded and given what the real hosted UI adds and
  moto does not (the authorize request's `nonce`, the user's `email` when the
  `email` scope was granted, `at_hash`), then re-signed with moto's shipped
  private key under the same kid, so a relying party verifying it against
  moto's JWKS does real verification. `cognito:groups` comes from moto.
  `grant_type=refresh_token` answers new access and ID tokens (no nonce, the
  e-mail as at sign-in) while the user may sign in, and `invalid_grant`
  ("User is disabled.", "User does not exist.") once the user is disabled or
  deleted, as Cognito does; moto alone would keep refreshing a disabled user.
  `grant_type=client_credentials` (machine-to-machine) is answered for a
  client with a secret whose only flow is `client_credentials`
  (`unauthorized_client` otherwise), with custom scopes it is allowed (all of
  them when none are asked for, `invalid_scope` for any other): an access
  token signed with moto's key, `sub` and `client_id` the client's id,
  `token_use: access`, and nothing else, as Cognito answers. A deleted client
  or a wrong secret is `invalid_client`.
- `GET /logout` ends the session (server side and the cookie) and, given
  `client_id` and a `logout_uri` among the client's sign-out URLs, redirects
  there; an unknown `logout_uri` gets the error page.

Test knobs (not part of Cognito, off unless `--test-knobs` is given):

- `POST /_test/next-id-token` with a JSON mutation queues a crafted ID token for
  the next successful token response. Fields (all optional):
  `claims` (object merged into the payload; a null value deletes the claim),
  `exp_offset` (seconds from now for `exp`; `iat`/`auth_time` move with it),
  `kid` (header kid), `alg` (`"none"` for an unsigned token),
  `key` (`"moto"`, the default, or `"random"` for a key nobody publishes).
- `GET /_test/log` returns the requests seen, for assertions on how a client
  authenticated at the token endpoint.
- The token endpoint accepts every secret a client holds during a rotation:
  the strict Cognito peer in front of moto lists them at
  `/strict/client-secrets` (moto has no rotation API).
- `GET /_test/refresh-tokens` returns the refresh tokens `/oauth2/token` has
  handed out, so a test can check a relying party does not store them in
  the clear.

Usage: `login_page.py --moto http://127.0.0.1:PORT --pool-id us-east-1_x [--port 0]`
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
import urllib.request
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
# Cognito's hosted UI session cookie lasts an hour; a browser that signed in
# within it is not asked again (unless the client sends prompt=login).
SESSION_TTL_SECONDS = 3600
SESSION_COOKIE = "cognito"


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
class Session:
    """A browser that signed in: who, and a refresh token per client to mint fresh tokens."""

    username: str
    refresh_tokens: dict[str, str] = field(default_factory=dict)
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

    def __init__(self, moto_url: str, pool_id: str, region: str, test_knobs: bool = False) -> None:
        self.pool_id = pool_id
        self.moto_url = moto_url.rstrip("/")
        self.region = region
        self.test_knobs = test_knobs
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
        self.sessions: dict[str, Session] = {}
        self.id_token_mutations: list[dict[str, Any]] = []
        # Whose each refresh token handed out at /oauth2/token is, with the scopes it was granted.
        self.issued_refresh: dict[str, tuple[str, list[str]]] = {}
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

    def client_secrets(self, client_id: str, described: str) -> list[str]:
        """Every secret the client holds. Cognito keeps up to two during a
        rotation, and DescribeUserPoolClient shows one; moto has no rotation
        API, so with the test knobs on, the strict Cognito peer in front of
        moto (which emulates it) is asked for the others."""
        if not self.test_knobs:
            return [described]
        query = urlencode({"pool": self.pool_id, "client": client_id})
        try:
            with urllib.request.urlopen(f"{self.moto_url}/strict/client-secrets?{query}", timeout=5) as answer:
                listed = json.loads(answer.read())
        except (OSError, ValueError):
            return [described]
        return [described] + [s for s in listed if isinstance(s, str)]

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


# What each error page says, and how to fix it (Cognito shows the bare code;
# a person running this locally deserves the reason).
ERROR_HINTS = {
    "invalid_request": "The sign-in link is incomplete or malformed. Start the sign-in again from your app.",
    "client_not_found": "No app client with this client_id exists in the user pool. Check COGNITO_CLIENT_ID "
    "in the gateway's env file (`cognigate outputs` rewrites it).",
    "redirect_mismatch": "The redirect_uri is not one of the app client's callback URLs (they match exactly). "
    "Add it with `cognigate up --gateway-url URL` or `--callback-url URL`.",
    "logout_mismatch": "The logout_uri is not one of the app client's sign-out URLs.",
    "session_expired": "This sign-in page has expired. Go back to your app and start the sign-in again.",
}


def _error_page(error: str, description: str | None = None, status: int = 400) -> Response:
    """Cognito's error page ("An error was encountered with the requested page."), with a hint."""
    hint = ERROR_HINTS.get(error, "")
    detail = f'<p class="detail">{html.escape(description)}</p>' if description else ""
    body = _page(
        "Error",
        f"""<h1>An error was encountered with the requested page.</h1>
<p class="error" id="error"><code>{html.escape(error)}</code></p>
{detail}
<p class="hint">{html.escape(hint)}</p>""",
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
    app = Flask("login_page")

    @app.get("/oauth2/authorize")
    @app.get("/login")
    def authorize() -> Response:
        args = request.args
        client_id = args.get("client_id", "")
        redirect_uri = args.get("redirect_uri", "")
        ui.record(endpoint="authorize", params=dict(args))
        if not client_id:
            return _error_page("invalid_request", "client_id is required")
        client = ui.describe_client(client_id)
        if client is None:
            return _error_page("client_not_found", f"client_id {client_id} does not exist in {ui.pool_id}")
        # Cognito only redirects back to a URL it knows belongs to the client;
        # anything else is `redirect_mismatch` on its own error page.
        if not redirect_uri or redirect_uri not in client.get("CallbackURLs", []):
            return _error_page("redirect_mismatch", f"redirect_uri {redirect_uri or '(none)'} is not registered")

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

        pending = PendingLogin(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=state,
            nonce=args.get("nonce"),
            code_challenge=code_challenge,
        )
        prompts = set(args.get("prompt", "").split())
        if "login" not in prompts:
            reused = _code_from_session(pending)
            if reused is not None:
                return reused
        if "none" in prompts:
            return fail("login_required", "the user is not signed in")
        login_id = secrets.token_urlsafe(24)
        with ui.lock:
            ui.pending[login_id] = pending
        return _login_form(login_id, _client_label(client), error=None)

    def _session() -> tuple[str, Session] | None:
        session_id = request.cookies.get(SESSION_COOKIE, "")
        with ui.lock:
            session = ui.sessions.get(session_id)
            if session is None:
                return None
            if time.time() - session.created > SESSION_TTL_SECONDS:
                ui.sessions.pop(session_id, None)
                return None
        return session_id, session

    def _code_from_session(pending: PendingLogin) -> Response | None:
        """A code for a browser that signed in to this client before, or None (show the form)."""
        found = _session()
        refresh = found[1].refresh_tokens.get(pending.client_id) if found else None
        if found is None or refresh is None:
            return None
        # A user disabled or deleted since signing in gets the form (where
        # Cognito refuses them), not a code from the old session.
        try:
            user = ui.idp.admin_get_user(UserPoolId=ui.pool_id, Username=found[1].username)
        except ClientError:
            return None
        if not user.get("Enabled", True):
            return None
        try:
            result = ui.idp.admin_initiate_auth(
                UserPoolId=ui.pool_id,
                ClientId=pending.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": refresh},
            )
        except ClientError:
            return None  # the refresh token went stale: ask for the password again
        auth = result.get("AuthenticationResult")
        if not auth:
            return None
        auth.setdefault("RefreshToken", refresh)
        ui.record(endpoint="authorize", session=True, username=found[1].username)
        return _redirect_with_code(pending, found[1].username, auth)

    def _redirect_with_code(pending: PendingLogin, username: str, auth: dict[str, Any]) -> Response:
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
        params = {"code": code}
        if pending.state is not None:
            params["state"] = pending.state
        return redirect(_with_query(pending.redirect_uri, params), code=302)

    @app.post("/login")
    def login() -> Response:
        login_id = request.form.get("login_id", "")
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        with ui.lock:
            pending = ui.pending.get(login_id)
        if pending is None or time.time() - pending.created > LOGIN_TTL_SECONDS:
            return _error_page("session_expired", "the login session expired or is unknown")
        client = ui.describe_client(pending.client_id)
        if client is None:
            return _error_page("client_not_found", f"client_id {pending.client_id} does not exist")
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
                return _login_form(
                    login_id, _client_label(client), error="Incorrect username or password.", username=username
                )
            raise
        if "AuthenticationResult" not in result:
            challenge = result.get("ChallengeName", "unknown")
            return _login_form(
                login_id,
                _client_label(client),
                error=f"The local login page cannot answer the {challenge} challenge: "
                "set a permanent password (AdminSetUserPassword with Permanent=true).",
                username=username,
            )
        with ui.lock:
            ui.pending.pop(login_id, None)
        auth = result["AuthenticationResult"]
        ui.record(endpoint="login", ok=True, username=username)
        response = _redirect_with_code(pending, username, auth)
        _remember(response, username, pending.client_id, auth.get("RefreshToken"))
        return response

    def _remember(response: Response, username: str, client_id: str, refresh_token: str | None) -> None:
        """Starts (or extends) the browser's session after a successful sign-in."""
        found = _session()
        if found is not None and found[1].username == username:
            session_id, session = found
        else:
            session_id, session = secrets.token_urlsafe(32), Session(username=username)
        if refresh_token:
            session.refresh_tokens[client_id] = refresh_token
        with ui.lock:
            ui.sessions[session_id] = session
        response.set_cookie(
            SESSION_COOKIE, session_id, max_age=SESSION_TTL_SECONDS, httponly=True, samesite="Lax", path="/"
        )

    @app.get("/logout")
    def logout() -> Response:
        args = request.args
        logout_uri = args.get("logout_uri")
        client_id = args.get("client_id", "")
        target: str | None = None
        if logout_uri is not None:
            # Cognito only sends the browser on to a sign-out URL the client registered.
            client = ui.describe_client(client_id) if client_id else None
            if client is None:
                return _error_page("client_not_found", f"client_id {client_id or '(none)'} does not exist")
            if logout_uri not in client.get("LogoutURLs", []):
                return _error_page("logout_mismatch", f"logout_uri {logout_uri} is not registered")
            target = logout_uri
        found = _session()
        if found is not None:
            with ui.lock:
                ui.sessions.pop(found[0], None)
        ui.record(endpoint="logout", had_session=found is not None)
        if target is not None:
            response = redirect(target, code=302)
        else:
            response = Response(
                _page("Signed out", '<h1>You are signed out.</h1><p id="signedOut">You can close this window.</p>'),
                mimetype="text/html",
            )
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

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
            if client_secret is None or not any(
                hmac.compare_digest(client_secret, secret) for secret in ui.client_secrets(client_id, expected_secret)
            ):
                return _token_error("invalid_client")
        elif client_secret is not None:
            return _token_error("invalid_client")

        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return _authorization_code_grant(client_id)
        if grant_type == "refresh_token":
            return _refresh_grant(client_id, client)
        if grant_type == "client_credentials":
            return _client_credentials_grant(client_id, client)
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

    def _client_credentials_grant(client_id: str, client: dict[str, Any]) -> Response:
        """Cognito's machine-to-machine grant: a confidential client whose flows
        are `client_credentials`, asking for custom scopes it is allowed (all
        of them when it names none), gets an access token and nothing else."""
        allowed_flows = client.get("AllowedOAuthFlows") or []
        if not client.get("ClientSecret") or "client_credentials" not in allowed_flows:
            ui.record(endpoint="token", grant_type="client_credentials", ok=False, reason="unauthorized_client")
            return _token_error("unauthorized_client")
        if not client.get("AllowedOAuthFlowsUserPoolClient"):
            return _token_error("unauthorized_client")
        allowed = [s for s in client.get("AllowedOAuthScopes") or [] if "/" in s]
        asked = (request.form.get("scope") or "").split()
        if any(scope not in allowed for scope in asked):
            ui.record(endpoint="token", grant_type="client_credentials", ok=False, reason="invalid_scope")
            return _token_error("invalid_scope")
        granted = asked or allowed
        if not granted:
            return _token_error("invalid_scope")
        now = int(time.time())
        claims = {
            "sub": client_id,
            "token_use": "access",
            "scope": " ".join(granted),
            "auth_time": now,
            "iss": f"https://cognito-idp.{ui.region}.amazonaws.com/{ui.pool_id}",
            "exp": now + 3600,
            "iat": now,
            "version": 2,
            "jti": secrets.token_hex(16),
            "client_id": client_id,
        }
        ui.record(endpoint="token", grant_type="client_credentials", ok=True, client_id=client_id)
        resp = jsonify(
            {
                "access_token": jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, ui.moto_key),
                "expires_in": 3600,
                "token_type": "Bearer",
            }
        )
        resp.headers["Cache-Control"] = "no-store"
        return resp

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
            with ui.lock:
                ui.issued_refresh[tokens["refresh_token"]] = (issued.username, issued.scopes)
        resp = jsonify(body)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def _refresh_grant(client_id: str, client: dict[str, Any]) -> Response:
        """Cognito's refresh grant: new tokens only while the user may still sign in.

        moto's REFRESH_TOKEN_AUTH mints tokens for a disabled user (it checks
        `Enabled` on password sign-in only), so the user is looked up with
        AdminGetUser as Cognito does: disabled or deleted is `invalid_grant`.
        A token issued to another app client is refused too.
        """
        refresh_token = request.form.get("refresh_token", "")
        params = {"REFRESH_TOKEN": refresh_token}

        def refused(description: str) -> Response:
            ui.record(endpoint="token", grant_type="refresh_token", ok=False, reason=description)
            return _token_error("invalid_grant", description=description)

        def user_or_refusal(username: str) -> tuple[dict[str, Any] | None, str | None]:
            try:
                user = ui.idp.admin_get_user(UserPoolId=ui.pool_id, Username=username)
            except ClientError as err:
                if err.response["Error"]["Code"] == "UserNotFoundException":
                    return None, "User does not exist."
                raise
            return user, None if user.get("Enabled", True) else "User is disabled."

        with ui.lock:
            username, scopes = ui.issued_refresh.get(refresh_token, (None, []))
        # A deleted user's token makes moto fail with a 500, so the user of a
        # token this process handed out is looked up first; another's (from
        # before a restart) after moto named its user in the ID token.
        if username is not None:
            _, refusal = user_or_refusal(username)
            if refusal:
                return refused(refusal)
        try:
            result = ui.idp.admin_initiate_auth(
                UserPoolId=ui.pool_id, ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters=params
            )
        except ClientError:
            return refused("Invalid Refresh Token")
        auth = result["AuthenticationResult"]
        claims = dict(jwt.decode(auth["IdToken"], ui.moto_key).claims)
        if claims.get("aud") != client_id:
            return refused("Invalid Refresh Token")
        user, refusal = user_or_refusal(claims["cognito:username"])
        if user is None or refusal:
            return refused(refusal or "User does not exist.")
        # Like the login's, the refreshed ID token carries the e-mail when the
        # sign-in was granted the email scope.
        if "email" in scopes:
            attrs = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
            if "email" in attrs:
                claims["email"] = attrs["email"]
                claims["email_verified"] = attrs.get("email_verified", "false") == "true"
        ui.record(endpoint="token", grant_type="refresh_token", ok=True)
        resp = jsonify(
            {
                "access_token": auth["AccessToken"],
                "id_token": jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, ui.moto_key),
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

    @app.before_request
    def knobs_only_when_asked() -> Response | None:
        if request.path.startswith("/_test/") and not ui.test_knobs:
            return Response("not found\n", status=404, mimetype="text/plain")
        return None

    @app.post("/_test/next-id-token")
    def next_id_token() -> Response:
        mutation = request.get_json(force=True)
        if not isinstance(mutation, dict):
            return _token_error("invalid_request", description="expected a JSON object")
        with ui.lock:
            ui.id_token_mutations.append(mutation)
        return jsonify({"queued": len(ui.id_token_mutations)})

    @app.get("/_test/refresh-tokens")
    def issued_refresh_tokens() -> Response:
        with ui.lock:
            return jsonify(list(ui.issued_refresh))

    @app.get("/_test/log")
    def test_log() -> Response:
        with ui.lock:
            return jsonify(list(ui.log))

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"ok": True})

    return app


def _client_label(client: dict[str, Any]) -> str:
    return str(client.get("ClientName") or client.get("ClientId") or "your app")


STYLE = """
:root { color-scheme: light; --accent: #ec7211; --ink: #16191f; --muted: #5f6b7a; }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: #f2f3f3; }
main { width: min(420px, 92vw); background: #fff; border-radius: 10px; padding: 32px 32px 24px;
  box-shadow: 0 1px 3px rgba(0,0,0,.12), 0 8px 24px rgba(0,0,0,.06); }
h1 { font-size: 20px; margin: 0 0 4px; }
.sub { color: var(--muted); margin: 0 0 20px; }
label { display: block; font-weight: 600; margin: 14px 0 6px; }
input[type=text], input[type=password] { width: 100%; padding: 10px 12px; font: inherit;
  border: 1px solid #aab7b8; border-radius: 6px; }
input:focus { outline: 2px solid #0073bb; outline-offset: 1px; border-color: #0073bb; }
button { width: 100%; margin-top: 22px; padding: 11px; font: inherit; font-weight: 700; color: #fff;
  background: var(--accent); border: 0; border-radius: 6px; cursor: pointer; }
button:hover { background: #eb5f07; }
.error { background: #fdf3f1; border: 1px solid #d13212; color: #d13212; border-radius: 6px;
  padding: 10px 12px; margin: 0 0 8px; }
.hint, .detail, footer { color: var(--muted); }
footer { font-size: 12px; margin-top: 22px; border-top: 1px solid #eaeded; padding-top: 12px; }
code { font-size: 14px; }
"""


def _page(title: str, content: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body><main>
{content}
<footer>cognigate local login page &middot; stands in for the Amazon Cognito hosted UI;
users and passwords live in the local emulator.</footer>
</main></body></html>
"""


def _login_form(login_id: str, client_label: str, error: str | None, username: str = "") -> Response:
    error_html = f'<p class="error" id="loginErrorMessage" role="alert">{html.escape(error)}</p>' if error else ""
    content = f"""<h1>Sign in</h1>
<p class="sub">with your username and password to continue to <strong>{html.escape(client_label)}</strong></p>
{error_html}
<form id="login" method="post" action="/login">
  <input type="hidden" name="login_id" value="{html.escape(login_id)}">
  <label for="signInFormUsername">Username</label>
  <input id="signInFormUsername" name="username" type="text" autocomplete="username" autocapitalize="none"
    value="{html.escape(username)}" required autofocus>
  <label for="signInFormPassword">Password</label>
  <input id="signInFormPassword" name="password" type="password" autocomplete="current-password" required>
  <button name="signInSubmitButton" type="submit" value="Sign in">Sign in</button>
</form>"""
    # A page holding a form with a one-time login id must not be cached or framed.
    return Response(
        _page("Sign in", content),
        status=200,
        mimetype="text/html",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                 "Content-Security-Policy": "frame-ancestors 'none'"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moto", required=True, help="moto_server URL")
    parser.add_argument("--pool-id", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--test-knobs", action="store_true", help="serve /_test/* (crafted ID tokens, request log)")
    args = parser.parse_args()

    ui = HostedUi(args.moto, args.pool_id, args.region, test_knobs=args.test_knobs)
    server = make_server(args.host, args.port, create_app(ui), threaded=True)
    print(f"Running on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
