#!/usr/bin/env python3
"""A throwaway Python model of cognigate-gateway, for checking the e2e peers only.

Never used by the gateway's end-to-end tests (those run the real
`cognigate-gateway` binary). It exists so the test clients, the browser walk and
the Playwright consent driver can be developed and debugged on their own: it
implements the same endpoints as DESIGN.md section 3, in the simplest way
(in-memory state, no expiry, one route), against the hosted UI stand-in and
moto's JWKS.

    fake_gateway.py --moto URL --hosted-ui URL --pool-id ID --client-id ID \
        --client-secret S --upstream URL [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import html
import secrets
import socket
import time
from urllib.parse import urlencode

import httpx2
import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def build(args: argparse.Namespace, base: str) -> Starlette:
    clients: dict[str, dict] = {}
    pending: dict[str, dict] = {}
    consents: dict[str, dict] = {}
    codes: dict[str, dict] = {}
    access: dict[str, dict] = {}
    refresh: dict[str, dict] = {}
    issuer = f"https://cognito-idp.us-east-1.amazonaws.com/{args.pool_id}"
    http = httpx2.AsyncClient(timeout=30.0)

    def resource_of(slug: str) -> str:
        return f"{base}/mcp/{slug}"

    async def prm(request: Request) -> Response:
        slug = request.path_params["slug"]
        return JSONResponse({"resource": resource_of(slug), "authorization_servers": [base],
                             "bearer_methods_supported": ["header"]})

    async def asm(request: Request) -> Response:
        return JSONResponse({
            "issuer": base, "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token", "registration_endpoint": f"{base}/oauth/register",
            "revocation_endpoint": f"{base}/oauth/revoke", "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
        })

    async def register(request: Request) -> Response:
        body = await request.json()
        client_id = secrets.token_urlsafe(16)
        clients[client_id] = body
        return JSONResponse({**body, "client_id": client_id, "client_id_issued_at": int(time.time()),
                             "token_endpoint_auth_method": "none"}, status_code=201)

    async def authorize(request: Request) -> Response:
        q = request.query_params
        client = clients.get(q.get("client_id", ""))
        if client is None or q.get("redirect_uri") not in client["redirect_uris"]:
            return HTMLResponse("bad client or redirect_uri", status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return HTMLResponse("PKCE S256 required", status_code=400)
        state, nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(16), secrets.token_urlsafe(48)
        pending[state] = {"q": dict(q), "nonce": nonce, "verifier": verifier}
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        params = {"response_type": "code", "client_id": args.client_id, "redirect_uri": f"{base}/oauth/callback",
                  "scope": "openid profile email", "state": state, "nonce": nonce,
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        return RedirectResponse(f"{args.hosted_ui}/oauth2/authorize?{urlencode(params)}", status_code=302)

    async def callback(request: Request) -> Response:
        q = request.query_params
        login = pending.pop(q.get("state", ""), None)
        if login is None:
            return HTMLResponse("unknown state", status_code=400)
        basic = base64.b64encode(f"{args.client_id}:{args.client_secret}".encode()).decode()
        resp = await http.post(f"{args.hosted_ui}/oauth2/token", headers={"Authorization": f"Basic {basic}"},
                               data={"grant_type": "authorization_code", "code": q.get("code", ""),
                                     "redirect_uri": f"{base}/oauth/callback", "code_verifier": login["verifier"]})
        if resp.status_code != 200:
            return HTMLResponse(f"token exchange failed: {resp.text}", status_code=502)
        jwks = KeySet.import_key_set((await http.get(f"{args.moto}/{args.pool_id}/.well-known/jwks.json")).json())
        try:
            claims = jwt.decode(resp.json()["id_token"], jwks, algorithms=["RS256"]).claims
        except Exception as err:  # noqa: BLE001
            return HTMLResponse(f"invalid id token: {err}", status_code=400)
        now = time.time()
        if (claims.get("iss") != issuer or claims.get("aud") != args.client_id or claims.get("token_use") != "id"
                or claims.get("exp", 0) < now or claims.get("nonce") != login["nonce"]):
            return HTMLResponse("invalid id token claims", status_code=400)
        consent_id, csrf = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        consents[consent_id] = {"q": login["q"], "csrf": csrf, "user": claims.get("email") or claims["sub"]}
        client = clients[login["q"]["client_id"]]
        page = f"""<!doctype html><html><head><title>Authorize access</title></head><body>
<h1>{html.escape(client.get('client_name', 'An application'))} wants to use {html.escape(login['q'].get('resource', ''))}</h1>
<p>Signed in as <strong>{html.escape(consents[consent_id]['user'])}</strong></p>
<form method="post" action="/oauth/consent">
<input type="hidden" name="consent_id" value="{consent_id}"><input type="hidden" name="csrf_token" value="{csrf}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></form></body></html>"""
        return HTMLResponse(page)

    async def consent(request: Request) -> Response:
        form = await request.form()
        c = consents.pop(str(form.get("consent_id", "")), None)
        if c is None or form.get("csrf_token") != c["csrf"]:
            return HTMLResponse("bad consent", status_code=400)
        q = c["q"]
        if form.get("decision") != "approve":
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'error': 'access_denied', 'state': q.get('state', ''), 'iss': base})}", 302)
        code = secrets.token_urlsafe(24)
        codes[code] = q
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', ''), 'iss': base})}", 302)

    def issue(resource: str) -> dict:
        at, rt = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        access[at] = {"resource": resource}
        refresh[rt] = {"resource": resource}
        return {"access_token": at, "token_type": "Bearer", "expires_in": 900, "refresh_token": rt}

    async def token(request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") == "authorization_code":
            q = codes.pop(str(form.get("code", "")), None)
            verifier = str(form.get("code_verifier", ""))
            if q is None or b64url(hashlib.sha256(verifier.encode()).digest()) != q["code_challenge"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(issue(q.get("resource", "")))
        if form.get("grant_type") == "refresh_token":
            r = refresh.pop(str(form.get("refresh_token", "")), None)
            if r is None:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(issue(r["resource"]))
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    async def mcp(request: Request) -> Response:
        slug = request.path_params["slug"]
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or access.get(auth[7:], {}).get("resource") != resource_of(slug):
            meta = f"{base}/.well-known/oauth-protected-resource/mcp/{slug}"
            return Response(status_code=401, headers={"WWW-Authenticate": f'Bearer resource_metadata="{meta}"'})
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("authorization", "cookie", "host", "content-length")}
        headers["x-forwarded-host"] = request.headers.get("host", "")
        upstream = http.build_request(request.method, args.upstream, headers=headers, content=await request.body())
        resp = await http.send(upstream, stream=True)
        out = {k: v for k, v in resp.headers.items() if k.lower() not in ("content-length", "transfer-encoding")}
        return StreamingResponse(resp.aiter_raw(), status_code=resp.status_code, headers=out,
                                 background=None)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[
        Route("/healthz", healthz),
        Route("/.well-known/oauth-protected-resource/mcp/{slug}", prm),
        Route("/.well-known/oauth-authorization-server", asm),
        Route("/oauth/register", register, methods=["POST"]),
        Route("/oauth/authorize", authorize),
        Route("/oauth/callback", callback),
        Route("/oauth/consent", consent, methods=["POST"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/mcp/{slug}", mcp, methods=["GET", "POST", "DELETE"]),
    ])


async def serve(args: argparse.Namespace) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    base = f"http://localhost:{port}"
    server = uvicorn.Server(uvicorn.Config(build(args, base), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    print(f"Running on {base}", flush=True)
    await task


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    for name in ("--moto", "--hosted-ui", "--pool-id", "--client-id", "--client-secret", "--upstream"):
        p.add_argument(name, required=True)
    p.add_argument("--port", type=int, default=0)
    asyncio.run(serve(p.parse_args()))
