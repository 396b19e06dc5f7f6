#!/usr/bin/env python3
"""The browser leg of the MCP OAuth flow, walked headlessly with a cookie jar.

Starting from an authorization URL at the gateway, this follows what a browser
would do: every redirect, the hosted UI's login form (posts the credentials),
the gateway's consent page (posts the consent form with the chosen decision and
every hidden field, e.g. `csrf_token` and `consent_id`), until a redirect to the
client's redirect URI, which is captured instead of followed (that is what the
client's loopback listener would receive).

Forms are found by parsing the HTML, not by assuming the gateway's markup: the
login form is the one with a password field; the consent form is the one with a
`decision` button.

As a library: `await walk(authorize_url, redirect_uri, username, password,
decision)` returns an `Outcome`. As a script it can also register a client at
the gateway and build the authorize URL itself, which the Rust tests use for the
ID-token rejection cases:

    browser_walk.py --gateway http://localhost:PORT --route /mcp/echo \
        --username U --password P [--decision approve|deny|stop]

prints one JSON object: the outcome (`redirect` with code/state/error, or
`page` with the status, URL and text of the page where the walk stopped).
With `--cases '[{"name": ..., "mutation": {...}}, ...]' --hosted-ui URL` it
runs one walk per case, each after queueing the case's ID-token mutation at the
login page (see local/login_page.py), and prints `{"results": [...]}`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import secrets
import sys
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx2

MAX_STEPS = 20


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)
    has_password: bool = False
    username_field: str | None = None
    password_field: str | None = None


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._skip = 0  # inside <style> or <script>
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag in ("style", "script"):
            self._skip += 1
            return
        if tag == "form":
            self._current = Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self.forms.append(self._current)
            return
        if self._current is None:
            return
        if tag == "input":
            kind = a.get("type", "text").lower()
            name = a.get("name")
            if kind in ("submit", "button", "image"):
                if name:
                    self._current.buttons.append((name, a.get("value", "")))
            elif name:
                if kind == "password":
                    self._current.has_password = True
                    self._current.password_field = name
                elif kind in ("text", "email") and self._current.username_field is None:
                    self._current.username_field = name
                if kind not in ("checkbox", "radio") or "checked" in a:
                    self._current.fields[name] = a.get("value", "")
        elif tag == "button":
            if a.get("name"):
                self._current.buttons.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip = max(0, self._skip - 1)
        if tag == "form":
            self._current = None

    def handle_data(self, data: str) -> None:
        if data.strip() and not self._skip:
            self.text.append(data.strip())


@dataclass
class Outcome:
    kind: str  # "redirect" (to the client's redirect URI) or "page" (the walk stopped on a page)
    url: str
    status: int
    params: dict[str, str] = field(default_factory=dict)
    text: str = ""
    steps: list[str] = field(default_factory=list)
    consent_text: str = ""

    @property
    def code(self) -> str | None:
        return self.params.get("code")

    def to_json(self) -> dict:
        return asdict(self)


def _redirect_target(location: str, redirect_uri: str) -> bool:
    loc, want = urlsplit(location), urlsplit(redirect_uri)
    return (loc.scheme, loc.netloc, loc.path) == (want.scheme, want.netloc, want.path)


async def walk(
    authorize_url: str,
    redirect_uri: str,
    username: str,
    password: str,
    decision: str = "approve",
    http: httpx2.AsyncClient | None = None,
) -> Outcome:
    """Walk from `authorize_url` to the redirect back to `redirect_uri`.

    `decision` is `approve`, `deny`, or `stop` (return the consent page itself).
    """
    own = http is None
    http = http or httpx2.AsyncClient(follow_redirects=False, timeout=30.0)
    steps: list[str] = []
    consent_text = ""
    try:
        method, url, data = "GET", authorize_url, None
        for _ in range(MAX_STEPS):
            steps.append(f"{method} {url.split('?')[0]}")
            resp = await http.request(method, url, data=data)
            if resp.status_code in (301, 302, 303, 307, 308):
                location = urljoin(url, resp.headers["location"])
                if _redirect_target(location, redirect_uri):
                    params = dict(parse_qsl(urlsplit(location).query))
                    return Outcome("redirect", location, resp.status_code, params, steps=steps,
                                   consent_text=consent_text)
                method, url, data = "GET", location, None
                continue
            parser = FormParser()
            parser.feed(resp.text)
            page_text = " ".join(parser.text)
            login = next((f for f in parser.forms if f.has_password), None)
            consent = next((f for f in parser.forms if any(n == "decision" for n, _ in f.buttons)), None)
            if resp.status_code == 200 and login is not None:
                fields = dict(login.fields)
                fields[login.username_field or "username"] = username
                fields[login.password_field or "password"] = password
                if "Incorrect username or password" in page_text and data is not None:
                    return Outcome("page", url, resp.status_code, text=page_text, steps=steps)
                method, url, data = login.method.upper(), urljoin(url, login.action or url), fields
                continue
            if resp.status_code == 200 and consent is not None:
                consent_text = page_text
                if decision == "stop":
                    return Outcome("page", url, resp.status_code, text=page_text, steps=steps,
                                   consent_text=consent_text)
                values = {v for n, v in consent.buttons if n == "decision"}
                if decision not in values:
                    raise RuntimeError(f"consent form has no decision={decision!r} button: {sorted(values)}")
                fields = dict(consent.fields)
                fields["decision"] = decision
                method, url, data = consent.method.upper(), urljoin(url, consent.action or url), fields
                continue
            return Outcome("page", url, resp.status_code, text=page_text[:2000] or resp.text[:2000],
                           steps=steps, consent_text=consent_text)
        raise RuntimeError(f"no redirect to {redirect_uri} after {MAX_STEPS} steps: {steps}")
    finally:
        if own:
            await http.aclose()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def _script(args: argparse.Namespace) -> dict:
    if args.cases is None:
        return await _one(args)
    # Several walks in one process (a Python start costs more than a walk): each case
    # first queues its ID-token mutation at the hosted UI stand-in, if it has one.
    results = []
    async with httpx2.AsyncClient(timeout=30.0) as http:
        for case in json.loads(args.cases):
            if case.get("mutation") is not None:
                queued = await http.post(args.hosted_ui.rstrip("/") + "/_test/next-id-token", json=case["mutation"])
                queued.raise_for_status()
            results.append({"name": case.get("name"), **await _one(args)})
    return {"results": results}


async def _one(args: argparse.Namespace) -> dict:
    gateway = args.gateway.rstrip("/")
    resource = gateway + args.route
    redirect_uri = args.redirect_uri
    async with httpx2.AsyncClient(follow_redirects=False, timeout=30.0) as http:
        meta = (await http.get(gateway + "/.well-known/oauth-authorization-server")).json()
        reg = await http.post(
            meta.get("registration_endpoint", gateway + "/oauth/register"),
            json={
                "client_name": args.client_name,
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            },
        )
        reg.raise_for_status()
        client_id = reg.json()["client_id"]
        verifier, challenge = _pkce()
        state = secrets.token_urlsafe(16)
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": resource,
        }
        if args.scope:
            query["scope"] = args.scope
        authorize = meta.get("authorization_endpoint", gateway + "/oauth/authorize") + "?" + urlencode(query)
        outcome = await walk(authorize, redirect_uri, args.username, args.password, args.decision, http)
        result = {"client_id": client_id, "state_sent": state, **outcome.to_json()}
        if args.exchange and outcome.code:
            tok = await http.post(
                meta.get("token_endpoint", gateway + "/oauth/token"),
                data={
                    "grant_type": "authorization_code",
                    "code": outcome.code,
                    "redirect_uri": redirect_uri,
                    "client_id": client_id,
                    "code_verifier": verifier,
                    "resource": resource,
                },
            )
            result["token_status"] = tok.status_code
            body = tok.json()
            result["token_fields"] = sorted(body)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Walk the gateway's browser leg headlessly")
    parser.add_argument("--gateway", required=True, help="the gateway's public URL")
    parser.add_argument("--route", default="/mcp/echo")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--decision", choices=["approve", "deny", "stop"], default="approve")
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:33418/callback")
    parser.add_argument("--client-name", default="cognigate e2e walker")
    parser.add_argument("--scope")
    parser.add_argument("--exchange", action="store_true", help="exchange the code at the token endpoint")
    parser.add_argument("--cases", help='JSON list of {"name", "mutation"}: one walk per case')
    parser.add_argument("--hosted-ui", help="the hosted UI stand-in, where --cases queue their mutations")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_script(args))), flush=True)


if __name__ == "__main__":
    sys.exit(main())
