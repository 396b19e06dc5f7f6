"""A strict Cognito in front of moto: what real Cognito refuses, this refuses too.

moto accepts nearly any request, so a provisioning test that passes against it
can still fail for the first user with an AWS account. Every Cognito request of
the integration tests goes through this proxy, which:

- validates the request body against the `cognito-idp` service model botocore
  ships (required members, lengths, patterns, enums, list and map sizes, nested
  structures), loaded with botocore's own loader;
- enforces the rules of the service that the model cannot express and moto
  lacks (DefaultRedirectURI among the callback URLs, the callback URL rules, no
  DeleteUserPool while a domain exists or deletion protection is on);
- makes UpdateUserPool and UpdateUserPoolClient reset what they are not sent,
  as Cognito does (moto merges), by filling the omitted members with Cognito's
  defaults before forwarding;
- on request (`GET /strict/linger-domains` in a scope), answers the first
  DeleteUserPool after a domain deletion as Cognito sometimes does while the
  deletion propagates ("It has a domain configured");
- keeps each domain's ManagedLoginVersion (an UpdateUserPoolDomain without
  one puts the domain back on version 1, the classic hosted UI) and emulates
  the managed login branding API per app client, both of which moto lacks;
- emulates the client secret API (AddUserPoolClientSecret and friends, which
  moto lacks) with Cognito's limit of two secrets per app client;
- keeps resource servers itself (moto has no Update/DeleteResourceServer):
  at most 25 per pool (LimitExceededException, Cognito's quota), scope
  names as the model allows, an identifier unique in its pool; and checks
  app clients against them as Cognito does: `client_credentials` never
  beside `code` or `implicit`, only with a client secret, and only with
  custom scopes (`identifier/name` of a scope that exists), never `openid`,
  `profile`, `email`, `phone` or `aws.cognito.signin.user.admin`
  (InvalidOAuthFlowException, ScopeDoesNotExistException);
- on request (`GET /strict/throttle` in a scope), holds the scope to Cognito's
  default request rate quotas, a token bucket per operation category, and
  answers TooManyRequestsException past them as Cognito does;
- knows what moto does not about pools and users: usernames that ignore case
  when a pool was created with `UsernameConfiguration.CaseSensitive` false
  (the admin user operations see the lowercase name), the pool's feature plan
  (`UserPoolTier`, Essentials when not given) and managed login refused on
  Lite (FeatureUnavailableInTierException), e-mail-shaped usernames refused on
  a pool with the `email` alias, a permanent password equal to the user's
  current one refused on a pool with a password history
  (PasswordHistoryPolicyViolationException), the deprecated
  `UnusedAccountValidityDays` refused beside the password policy's
  `TemporaryPasswordValidityDays`, and a pool opened to self sign-up
  without auto-verified e-mail refused (Cognito takes it, but its users can
  never confirm: a pool cognigate must not make).

A violation is answered like Cognito answers it (HTTP 400,
InvalidParameterException naming the operation and the member) and recorded,
so a test that shrugs the error off still fails: the Rust harness reads
`GET /strict/violations` at the end of each test.

Requests are grouped by scope: an endpoint `http://HOST/scope/NAME` puts its
requests (and its violations) under NAME; the prefix is stripped before moto
sees the request.

Usage: python strict_cognito.py UPSTREAM_URL  (prints "strict listening on URL")
"""

import http.client
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.loaders
import botocore.model
import regex  # Java-style \p{L} classes, which the `re` module lacks

TARGET_PREFIX = "AWSCognitoIdentityProviderService."
MODEL = botocore.model.ServiceModel(
    botocore.loaders.Loader().load_service_model("cognito-idp", "service-2"), "cognito-idp"
)

# The model's pattern for `Domain` allows a prefix only, yet Cognito takes a
# custom domain (a host name) in the same member; its 63-character limit holds.
CUSTOM_DOMAIN = regex.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+")
DOMAIN_OPERATIONS = {"CreateUserPoolDomain", "UpdateUserPoolDomain", "DescribeUserPoolDomain", "DeleteUserPoolDomain"}

# What UpdateUserPoolClient sets a member to when the request omits it
# (the API reference: "If you don't provide a value for an attribute, Amazon
# Cognito sets it to its default value").
CLIENT_DEFAULTS = {
    "RefreshTokenValidity": 30,
    "AccessTokenValidity": 60,
    "IdTokenValidity": 60,
    "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"},
    "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_CUSTOM_AUTH", "ALLOW_USER_SRP_AUTH"],
    "SupportedIdentityProviders": [],
    "CallbackURLs": [],
    "LogoutURLs": [],
    "DefaultRedirectURI": None,
    "AllowedOAuthFlows": [],
    "AllowedOAuthScopes": [],
    "AllowedOAuthFlowsUserPoolClient": False,
    "AnalyticsConfiguration": None,
    "PreventUserExistenceErrors": "LEGACY",
    "EnableTokenRevocation": True,
    "EnablePropagateAdditionalUserContextData": False,
    "AuthSessionValidity": 3,
    "RefreshTokenRotation": None,
}

# UpdateUserPool: moto already restarts from its defaults for most members;
# these are the ones it would otherwise keep or leave out.
POOL_DEFAULTS = {
    "DeletionProtection": "INACTIVE",
    "MfaConfiguration": "OFF",
    "LambdaConfig": {},
    "AutoVerifiedAttributes": [],
    "UserPoolTier": "ESSENTIALS",
}

MAX_CLIENT_SECRETS = 2
# Cognito's quota of resource servers per user pool.
MAX_RESOURCE_SERVERS = 25
# The scopes Cognito reserves for sign-ins of people.
RESERVED_SCOPES = {"openid", "profile", "email", "phone", "aws.cognito.signin.user.admin"}

# Cognito's default request rate quotas (requests per second, per account and
# region) by category, for the operations cognigate calls.
QUOTA_CATEGORIES = {
    "UserPoolRead": (15, {"DescribeUserPool", "ListUserPools", "DescribeUserPoolDomain", "ListGroups", "GetGroup",
                          "DescribeManagedLoginBrandingByClient"}),
    "UserPoolUpdate": (15, {"CreateUserPool", "UpdateUserPool", "DeleteUserPool", "CreateUserPoolDomain",
                            "UpdateUserPoolDomain", "DeleteUserPoolDomain", "CreateGroup",
                            "CreateManagedLoginBranding"}),
    "UserPoolClientRead": (15, {"DescribeUserPoolClient", "ListUserPoolClients", "ListUserPoolClientSecrets"}),
    "UserPoolResourceServerRead": (20, {"DescribeResourceServer", "ListResourceServers"}),
    "UserPoolResourceServerUpdate": (5, {"CreateResourceServer", "UpdateResourceServer", "DeleteResourceServer"}),
    "UserPoolClientUpdate": (15, {"CreateUserPoolClient", "UpdateUserPoolClient", "DeleteUserPoolClient",
                                  "AddUserPoolClientSecret", "DeleteUserPoolClientSecret"}),
    "UserList": (30, {"ListUsers", "ListUsersInGroup"}),
    "UserRead": (120, {"AdminGetUser", "AdminListGroupsForUser"}),
    "UserUpdate": (25, {"AdminSetUserPassword", "AdminDeleteUser", "AdminAddUserToGroup",
                        "AdminRemoveUserFromGroup"}),
    "UserCreation": (50, {"AdminCreateUser"}),
}
CATEGORY_OF = {op: (name, rate) for name, (rate, ops) in QUOTA_CATEGORIES.items() for op in ops}


class Bucket:
    """Cognito counts a category's requests per second: a bucket of one
    second's worth, refilled continuously."""

    def __init__(self, rate):
        self.rate = rate
        self.tokens = float(rate)
        self.refilled = time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


# Codes that always mean cognigate sent what it must not (recorded as violations).
VIOLATION_CODES = {
    "InvalidParameterException",
    "InvalidOAuthFlowException",
    "ScopeDoesNotExistException",
    "FeatureUnavailableInTierException",
    "PasswordHistoryPolicyViolationException",
}

# The admin operations that name a user by `Username`.
USER_OPERATIONS = {
    "AdminCreateUser",
    "AdminSetUserPassword",
    "AdminDeleteUser",
    "AdminGetUser",
    "AdminListGroupsForUser",
    "AdminAddUserToGroup",
    "AdminRemoveUserFromGroup",
    "AdminDisableUser",
    "AdminEnableUser",
    "AdminUpdateUserAttributes",
}

EMAIL_SHAPED = regex.compile(r"[^@\s]+@[^@\s]+")


class Refusal(Exception):
    """A request Cognito would refuse: answered with `code` and recorded."""

    def __init__(self, code, message, status=400, rule=True):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        # False for an answer Cognito gives to a valid request (a transient
        # state): not a violation of cognigate's.
        self.rule = rule


class State:
    def __init__(self, upstream):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.lock = threading.RLock()
        self.violations = {}  # scope -> [{"operation", "code", "message"}]
        self.secrets = {}  # (pool, client) -> [{"id", "value", "created"}]
        self.login_versions = {}  # domain -> ManagedLoginVersion (moto keeps none)
        self.brandings = {}  # (pool, client) -> the CreateManagedLoginBranding request
        self.linger_scopes = set()  # scopes where a deleted domain lingers once
        self.lingering = set()  # pools whose next DeleteUserPool still sees a domain
        self.case_insensitive = set()  # pools created with CaseSensitive false
        self.throttled = {}  # scope -> {category: Bucket}, for scopes held to the quotas
        self.throttle_rate = {}  # scope -> requests/s for every category, where a test set one
        self.throttled_count = {}  # scope -> TooManyRequestsException answers given
        self.passwords = {}  # (pool, username) -> the user's current password (history of one)
        self.resource_servers = {}  # pool -> {identifier: {"Identifier", "Name", "Scopes", "UserPoolId"}}

    def record(self, scope, operation, refusal):
        with self.lock:
            self.violations.setdefault(scope, []).append(
                {"operation": operation, "code": refusal.code, "message": refusal.message}
            )


# ---------------------------------------------------------------- validation


def _pattern(text):
    return regex.compile(text)


_PATTERNS = {}


def _matches(pattern, value):
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = _pattern(pattern)
    return compiled.fullmatch(value) is not None


def _shown(shape, value):
    if shape.metadata.get("sensitive"):
        return "(sensitive)"
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate(operation, shape, value, path, errors):
    """Appends "member: reason" for every constraint `value` breaks."""
    meta = shape.metadata
    kind = shape.type_name
    if value is None:
        return
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(f"{path or 'body'}: must be an object")
            return
        for name in meta.get("required", []):
            if value.get(name) is None:
                errors.append(f"{_join(path, name)}: is required")
        for name, member in value.items():
            if name not in shape.members:
                errors.append(f"{_join(path, name)}: is not a member of {shape.name}")
                continue
            validate(operation, shape.members[name], member, _join(path, name), errors)
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"{path}: must be a list")
            return
        _size(path, len(value), meta, "items", errors)
        for index, item in enumerate(value):
            validate(operation, shape.member, item, f"{path}[{index}]", errors)
    elif kind == "map":
        if not isinstance(value, dict):
            errors.append(f"{path}: must be a map")
            return
        _size(path, len(value), meta, "entries", errors)
        for key, item in value.items():
            validate(operation, shape.key, key, f"{path}.key({key!r})", errors)
            validate(operation, shape.value, item, f"{path}[{key!r}]", errors)
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(f"{path}: must be a string")
            return
        _size(path, len(value), meta, "characters", errors)
        enum = meta.get("enum")
        if enum and value not in enum:
            errors.append(f"{path}: value {_shown(shape, value)} is not one of {enum}")
        pattern = meta.get("pattern")
        if pattern and not _matches(pattern, value):
            if path == "Domain" and operation in DOMAIN_OPERATIONS and CUSTOM_DOMAIN.fullmatch(value):
                if value.count(".") < 2:
                    errors.append(f"{path}: custom domain {value!r} needs at least three labels")
            else:
                errors.append(
                    f"{path}: value {_shown(shape, value)} does not match the pattern {pattern}"
                )
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: must be an integer")
            return
        if "min" in meta and value < meta["min"]:
            errors.append(f"{path}: {value} is below the minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            errors.append(f"{path}: {value} is above the maximum {meta['max']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: must be a boolean")


def _size(path, size, meta, unit, errors):
    if "min" in meta and size < meta["min"]:
        errors.append(f"{path}: {size} {unit}, fewer than the minimum {meta['min']}")
    if "max" in meta and size > meta["max"]:
        errors.append(f"{path}: {size} {unit}, more than the maximum {meta['max']}")


def _join(path, name):
    return f"{path}.{name}" if path else name


def check_model(operation, body):
    if operation not in MODEL.operation_names:
        raise Refusal("UnknownOperationException", f"{operation} is not an operation of cognito-idp")
    shape = MODEL.operation_model(operation).input_shape
    errors = []
    if shape is not None:
        validate(operation, shape, body, "", errors)
    if errors:
        raise Refusal(
            "InvalidParameterException",
            f"{operation}: {len(errors)} validation error(s) detected: " + "; ".join(errors),
        )


# ------------------------------------------------------- rules beyond the model


def callback_url_errors(member, url):
    """Cognito's callback URL rules: absolute, no fragment, HTTPS unless it is
    http://localhost (the app client reference, CallbackURLs)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or not (parts.netloc or parts.scheme not in ("http", "https")):
        return [f"{member}: {url!r} is not an absolute URL"]
    if parts.fragment or "#" in url:
        return [f"{member}: {url!r} has a fragment"]
    if parts.scheme == "http" and parts.hostname != "localhost":
        return [f"{member}: {url!r} uses http; only http://localhost may, everything else needs https"]
    return []


def check_client_rules(operation, body):
    errors = []
    callbacks = body.get("CallbackURLs") or []
    for index, url in enumerate(callbacks):
        errors += callback_url_errors(f"CallbackURLs[{index}]", url)
    redirect = body.get("DefaultRedirectURI")
    if redirect is not None:
        errors += callback_url_errors("DefaultRedirectURI", redirect)
        if redirect not in callbacks:
            errors.append(f"DefaultRedirectURI: {redirect!r} is not one of the CallbackURLs")
    if errors:
        raise Refusal("InvalidParameterException", f"{operation}: " + "; ".join(errors))


def check_pool_rules(operation, body, opens_signup=True):
    """`opens_signup`: the pool is not open to self sign-up yet (an update that
    only sends back a pool's own open setting is not cognigate making it)."""
    config = body.get("AdminCreateUserConfig") or {}
    policy = (body.get("Policies") or {}).get("PasswordPolicy") or {}
    errors = []
    if "UnusedAccountValidityDays" in config and "TemporaryPasswordValidityDays" in policy:
        errors.append(
            "AdminCreateUserConfig.UnusedAccountValidityDays: please use TemporaryPasswordValidityDays in "
            "PasswordPolicy instead of UnusedAccountValidityDays"
        )
    opened = opens_signup and config.get("AllowAdminCreateUserOnly") is False
    if opened and "email" not in (body.get("AutoVerifiedAttributes") or []):
        errors.append(
            "AutoVerifiedAttributes: a pool open to self sign-up without auto-verified email leaves every "
            "user who signs up UNCONFIRMED (no code is sent)"
        )
    if errors:
        raise Refusal("InvalidParameterException", f"{operation}: " + "; ".join(errors))


# ----------------------------------------------------------------- the proxy


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State = None  # set by main

    def log_message(self, *args):
        pass

    def _scope(self):
        path = self.path
        if path.startswith("/scope/"):
            rest = path[len("/scope/") :]
            name, _, tail = rest.partition("/")
            return name, "/" + tail.lstrip("/") if tail else "/"
        return "-", path

    def _body(self):
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        scope, path = self._scope()
        if path.startswith("/strict/violations"):
            with self.state.lock:
                found = list(self.state.violations.get(scope, []))
            return self._answer(200, json.dumps(found).encode(), "application/json")
        if path.startswith("/strict/throttled"):
            with self.state.lock:
                count = self.state.throttled_count.get(scope, 0)
            return self._answer(200, json.dumps({"throttled": count}).encode(), "application/json")
        if path.startswith("/strict/throttle"):
            # `?rate=N` holds every category to N requests/s instead of its
            # quota, so a test of the buckets themselves does not depend on how
            # fast this machine answers.
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            with self.state.lock:
                self.state.throttled.setdefault(scope, {})
                if "rate" in query:
                    self.state.throttle_rate[scope] = float(query["rate"][0])
            return self._answer(200, b"{}", "application/json")
        if path.startswith("/strict/client-secrets"):
            # The values of an app client's secrets while the secret API is
            # emulated (the hosted UI stand-in accepts each, as Cognito does
            # during a rotation); empty for a client moto alone knows.
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            key = (query.get("pool", [""])[0], query.get("client", [""])[0])
            with self.state.lock:
                held = [s["value"] for s in self.state.secrets.get(key, [])]
            return self._answer(200, json.dumps(held).encode(), "application/json")
        if path.startswith("/strict/linger-domains"):
            # Cognito is eventually consistent: right after a domain is gone,
            # DeleteUserPool may still answer "has a domain configured". In
            # this scope, it does so once per deleted domain's pool.
            with self.state.lock:
                self.state.linger_scopes.add(scope)
            return self._answer(200, b"{}", "application/json")
        return self._pass(scope, path, b"")

    def do_POST(self):
        scope, path = self._scope()
        body = self._body()
        target = self.headers.get("x-amz-target") or ""
        if not target.startswith(TARGET_PREFIX):
            return self._pass(scope, path, body)
        operation = target[len(TARGET_PREFIX) :]
        try:
            request = json.loads(body or b"{}")
            self._throttle(scope, operation)
            check_model(operation, request)
            if operation in USER_OPERATIONS and "Username" in request:
                request = self._username_case(request)
                body = json.dumps(request).encode()
            handler = getattr(self, "op_" + operation, None)
            if handler is not None:
                return handler(scope, path, request)
            return self._pass(scope, path, body)
        except Refusal as refusal:
            if refusal.rule and refusal.status == 400 and refusal.code in VIOLATION_CODES:
                self.state.record(scope, operation, refusal)
            return self._error(refusal)
        except ValueError as e:
            refusal = Refusal("SerializationException", f"{operation}: the body is not JSON: {e}")
            self.state.record(scope, operation, refusal)
            return self._error(refusal)

    do_PUT = do_POST
    do_DELETE = do_POST

    # -- operations with rules

    def op_CreateUserPoolClient(self, scope, path, request):
        check_client_rules("CreateUserPoolClient", request)
        self._check_machine_client("CreateUserPoolClient", request, bool(request.get("GenerateSecret")))
        status, headers, data = self._call(path, "CreateUserPoolClient", request)
        return self._answer(status, self._with_secret(data, "UserPoolClient"), headers=headers)

    def op_UpdateUserPoolClient(self, scope, path, request):
        filled = {**CLIENT_DEFAULTS, **request}
        check_client_rules("UpdateUserPoolClient", filled)
        if "client_credentials" in (filled.get("AllowedOAuthFlows") or []):
            _, _, described = self._call(
                path, "DescribeUserPoolClient", {"UserPoolId": request["UserPoolId"], "ClientId": request["ClientId"]}
            )
            has_secret = bool((json.loads(described or b"{}").get("UserPoolClient") or {}).get("ClientSecret"))
            self._check_machine_client("UpdateUserPoolClient", filled, has_secret)
        status, headers, data = self._call(path, "UpdateUserPoolClient", filled)
        return self._answer(status, self._with_secret(data, "UserPoolClient"), headers=headers)

    def op_DescribeUserPoolClient(self, scope, path, request):
        status, headers, data = self._call(path, "DescribeUserPoolClient", request)
        return self._answer(status, self._with_secret(data, "UserPoolClient"), headers=headers)

    def op_UpdateUserPool(self, scope, path, request):
        filled = {**POOL_DEFAULTS, **request}
        current = self._describe_pool(path, request["UserPoolId"]).get("AdminCreateUserConfig") or {}
        check_pool_rules("UpdateUserPool", filled, opens_signup=current.get("AllowAdminCreateUserOnly") is True)
        status, headers, data = self._call(path, "UpdateUserPool", filled)
        return self._answer(status, data, headers=headers)

    def _check_machine_client(self, operation, request, has_secret):
        """Cognito's rules for the client credentials flow and custom scopes."""
        flows = request.get("AllowedOAuthFlows") or []
        scopes = request.get("AllowedOAuthScopes") or []
        if "client_credentials" in flows:
            if "code" in flows or "implicit" in flows:
                raise Refusal(
                    "InvalidOAuthFlowException",
                    f"{operation}: client_credentials flow can not be selected along with code flow or implicit flow.",
                )
            if not has_secret:
                raise Refusal(
                    "InvalidOAuthFlowException",
                    f"{operation}: client_credentials flow can not be selected if client does not have a client "
                    "secret.",
                )
            for name in scopes:
                if name in RESERVED_SCOPES:
                    raise Refusal(
                        "InvalidOAuthFlowException",
                        f"{operation}: {name} is not supported with client_credentials flow.",
                    )
        custom = [name for name in scopes if name not in RESERVED_SCOPES]
        with self.state.lock:
            servers = self.state.resource_servers.get(request.get("UserPoolId"), {})
            known = {
                f"{identifier}/{scope['ScopeName']}"
                for identifier, server in servers.items()
                for scope in server.get("Scopes") or []
            }
        for name in custom:
            if name not in known:
                raise Refusal("ScopeDoesNotExistException", f"{operation}: Invalid scope requested: {name}")

    # -- resource servers, kept here (moto cannot update or delete them)

    def _resource_server(self, request):
        with self.state.lock:
            server = self.state.resource_servers.get(request["UserPoolId"], {}).get(request["Identifier"])
        if server is None:
            raise Refusal("ResourceNotFoundException", f"Resource server {request['Identifier']} does not exist.")
        return server

    def _check_pool(self, path, pool_id):
        status, _, _ = self._call(path, "DescribeUserPool", {"UserPoolId": pool_id})
        if status != 200:
            raise Refusal("ResourceNotFoundException", f"User pool {pool_id} does not exist.")

    @staticmethod
    def _check_scopes(operation, request):
        names = [scope["ScopeName"] for scope in request.get("Scopes") or []]
        if len(names) != len(set(names)):
            raise Refusal("InvalidParameterException", f"{operation}: Scopes: a scope name appears twice")

    def op_CreateResourceServer(self, scope, path, request):
        pool_id = request["UserPoolId"]
        self._check_pool(path, pool_id)
        self._check_scopes("CreateResourceServer", request)
        with self.state.lock:
            servers = self.state.resource_servers.setdefault(pool_id, {})
            if request["Identifier"] in servers:
                # Not a violation by itself: two concurrent runs of one stack
                # both see none and both create; the loser converges.
                raise Refusal(
                    "InvalidParameterException",
                    f"CreateResourceServer: {request['Identifier']} already exists in user pool {pool_id}.",
                    rule=False,
                )
            if len(servers) >= MAX_RESOURCE_SERVERS:
                refusal = Refusal(
                    "LimitExceededException",
                    f"CreateResourceServer: user pool {pool_id} already has {MAX_RESOURCE_SERVERS} resource servers, "
                    "the quota per user pool",
                )
                self.state.record(scope, "CreateResourceServer", refusal)
                raise refusal
            server = {"UserPoolId": pool_id, "Identifier": request["Identifier"], "Name": request["Name"],
                      "Scopes": request.get("Scopes") or []}
            servers[request["Identifier"]] = server
        return self._answer(200, json.dumps({"ResourceServer": server}).encode())

    def op_DescribeResourceServer(self, scope, path, request):
        return self._answer(200, json.dumps({"ResourceServer": self._resource_server(request)}).encode())

    def op_ListResourceServers(self, scope, path, request):
        self._check_pool(path, request["UserPoolId"])
        with self.state.lock:
            servers = list(self.state.resource_servers.get(request["UserPoolId"], {}).values())
        return self._answer(200, json.dumps({"ResourceServers": servers}).encode())

    def op_UpdateResourceServer(self, scope, path, request):
        self._resource_server(request)
        self._check_scopes("UpdateResourceServer", request)
        server = {"UserPoolId": request["UserPoolId"], "Identifier": request["Identifier"], "Name": request["Name"],
                  "Scopes": request.get("Scopes") or []}
        with self.state.lock:
            self.state.resource_servers[request["UserPoolId"]][request["Identifier"]] = server
        return self._answer(200, json.dumps({"ResourceServer": server}).encode())

    def op_DeleteResourceServer(self, scope, path, request):
        self._resource_server(request)
        with self.state.lock:
            del self.state.resource_servers[request["UserPoolId"]][request["Identifier"]]
        return self._answer(200, b"{}")

    def _throttle(self, scope, operation):
        with self.state.lock:
            buckets = self.state.throttled.get(scope)
            if buckets is None or operation not in CATEGORY_OF:
                return
            category, rate = CATEGORY_OF[operation]
            bucket = buckets.setdefault(category, Bucket(self.state.throttle_rate.get(scope, rate)))
            if bucket.take():
                return
            self.state.throttled_count[scope] = self.state.throttled_count.get(scope, 0) + 1
        raise Refusal("TooManyRequestsException", f"{operation}: Too many requests ({category})", rule=False)

    # -- pools and users: what moto does not know

    def op_CreateUserPool(self, scope, path, request):
        check_pool_rules("CreateUserPool", request)
        status, headers, data = self._call(path, "CreateUserPool", request)
        if status == 200 and (request.get("UsernameConfiguration") or {}).get("CaseSensitive") is False:
            pool_id = json.loads(data)["UserPool"]["Id"]
            with self.state.lock:
                self.state.case_insensitive.add(pool_id)
        return self._answer(status, self._pool_view(data), headers=headers)

    def op_DescribeUserPool(self, scope, path, request):
        status, headers, data = self._call(path, "DescribeUserPool", request)
        return self._answer(status, self._pool_view(data) if status == 200 else data, headers=headers)

    def _pool_view(self, data):
        """Cognito always reports the feature plan and the username case rule."""
        document = json.loads(data)
        pool = document.get("UserPool") or {}
        if pool.get("Id"):
            pool.setdefault("UserPoolTier", "ESSENTIALS")
            with self.state.lock:
                insensitive = pool["Id"] in self.state.case_insensitive
            pool["UsernameConfiguration"] = {"CaseSensitive": not insensitive}
        return json.dumps(document).encode()

    def _describe_pool(self, path, pool_id):
        status, _, data = self._call(path, "DescribeUserPool", {"UserPoolId": pool_id})
        return json.loads(data).get("UserPool", {}) if status == 200 else {}

    def _username_case(self, request):
        """On a pool whose usernames ignore case, every spelling is one user."""
        with self.state.lock:
            insensitive = request.get("UserPoolId") in self.state.case_insensitive
        if insensitive and isinstance(request.get("Username"), str):
            return {**request, "Username": request["Username"].lower()}
        return request

    def op_AdminCreateUser(self, scope, path, request):
        pool = self._describe_pool(path, request["UserPoolId"])
        if "email" in (pool.get("AliasAttributes") or []) and EMAIL_SHAPED.fullmatch(request["Username"]):
            raise Refusal(
                "InvalidParameterException",
                "Username cannot be of email format, since user pool is configured for email alias.",
            )
        status, headers, data = self._call(path, "AdminCreateUser", request)
        if status == 200 and request.get("TemporaryPassword"):
            with self.state.lock:
                self.state.passwords[(request["UserPoolId"], request["Username"])] = request["TemporaryPassword"]
        return self._answer(status, data, headers=headers)

    def op_AdminSetUserPassword(self, scope, path, request):
        pool = self._describe_pool(path, request["UserPoolId"])
        history = ((pool.get("Policies") or {}).get("PasswordPolicy") or {}).get("PasswordHistorySize") or 0
        key = (request["UserPoolId"], request["Username"])
        with self.state.lock:
            current = self.state.passwords.get(key)
        if history > 0 and current is not None and current == request.get("Password"):
            raise Refusal(
                "PasswordHistoryPolicyViolationException",
                "The password was used before; the pool's password history does not allow it again.",
            )
        status, headers, data = self._call(path, "AdminSetUserPassword", request)
        if status == 200:
            with self.state.lock:
                self.state.passwords[key] = request.get("Password")
        return self._answer(status, data, headers=headers)

    def _check_tier(self, operation, path, request):
        if request.get("ManagedLoginVersion") != 2:
            return
        tier = self._describe_pool(path, request["UserPoolId"]).get("UserPoolTier") or "ESSENTIALS"
        if tier == "LITE":
            raise Refusal(
                "FeatureUnavailableInTierException",
                f"{operation}: managed login (ManagedLoginVersion 2) is not available on the Lite feature plan",
            )

    # -- managed login, which moto lacks

    def op_CreateUserPoolDomain(self, scope, path, request):
        self._check_tier("CreateUserPoolDomain", path, request)
        forwarded = {k: v for k, v in request.items() if k not in ("ManagedLoginVersion", "Routing")}
        status, headers, data = self._call(path, "CreateUserPoolDomain", forwarded)
        if status == 200 and "ManagedLoginVersion" in request:
            with self.state.lock:
                self.state.login_versions[request["Domain"]] = request["ManagedLoginVersion"]
        return self._answer(status, data, headers=headers)

    def op_UpdateUserPoolDomain(self, scope, path, request):
        self._check_tier("UpdateUserPoolDomain", path, request)
        forwarded = {k: v for k, v in request.items() if k not in ("ManagedLoginVersion", "Routing")}
        status, headers, data = self._call(path, "UpdateUserPoolDomain", forwarded)
        if status == 200:
            with self.state.lock:
                self.state.login_versions[request["Domain"]] = request.get("ManagedLoginVersion", 1)
        return self._answer(status, data, headers=headers)

    def op_DescribeUserPoolDomain(self, scope, path, request):
        status, headers, data = self._call(path, "DescribeUserPoolDomain", request)
        with self.state.lock:
            version = self.state.login_versions.get(request["Domain"])
        if status == 200 and version is not None:
            document = json.loads(data)
            description = document.get("DomainDescription") or {}
            if description.get("UserPoolId"):
                description["ManagedLoginVersion"] = version
                data = json.dumps(document).encode()
        return self._answer(status, data, headers=headers)

    def op_DescribeManagedLoginBrandingByClient(self, scope, path, request):
        with self.state.lock:
            found = self.state.brandings.get((request["UserPoolId"], request["ClientId"]))
        if found is None:
            raise Refusal("ResourceNotFoundException", "no managed login branding for this app client")
        return self._answer(200, json.dumps({"ManagedLoginBranding": found}).encode())

    def op_CreateManagedLoginBranding(self, scope, path, request):
        key = (request["UserPoolId"], request["ClientId"])
        if not request.get("UseCognitoProvidedValues") and not request.get("Settings"):
            raise Refusal(
                "InvalidParameterException",
                "CreateManagedLoginBranding: either UseCognitoProvidedValues or Settings is required",
            )
        with self.state.lock:
            if key in self.state.brandings:
                raise Refusal("ManagedLoginBrandingExistsException", "this app client already has a branding style")
            branding = {
                "ManagedLoginBrandingId": secrets.token_hex(16),
                "UserPoolId": key[0],
                "UseCognitoProvidedValues": bool(request.get("UseCognitoProvidedValues")),
            }
            self.state.brandings[key] = branding
        return self._answer(200, json.dumps({"ManagedLoginBranding": branding}).encode())

    def op_DeleteUserPoolDomain(self, scope, path, request):
        status, headers, data = self._call(path, "DeleteUserPoolDomain", request)
        if status == 200:
            with self.state.lock:
                if scope in self.state.linger_scopes:
                    self.state.lingering.add(request["UserPoolId"])
        return self._answer(status, data, headers=headers)

    def op_DeleteUserPool(self, scope, path, request):
        pool_id = request["UserPoolId"]
        with self.state.lock:
            lingers = pool_id in self.state.lingering
            self.state.lingering.discard(pool_id)
        if lingers:
            raise Refusal(
                "InvalidParameterException",
                "User pool cannot be deleted. It has a domain configured that should be deleted first.",
                rule=False,
            )
        status, _, data = self._call(path, "DescribeUserPool", {"UserPoolId": pool_id})
        if status == 200:
            pool = json.loads(data).get("UserPool", {})
            if pool.get("DeletionProtection") == "ACTIVE":
                raise Refusal(
                    "InvalidParameterException",
                    f"DeleteUserPool: the user pool {pool_id} cannot be deleted while its deletion protection is "
                    "ACTIVE",
                )
            if pool.get("Domain") or pool.get("CustomDomain"):
                raise Refusal(
                    "InvalidParameterException",
                    "DeleteUserPool: user pool cannot be deleted. It has a domain configured that should be deleted "
                    "first.",
                )
        status, headers, data = self._call(path, "DeleteUserPool", request)
        if status == 200:
            with self.state.lock:
                for key in [k for k in self.state.secrets if k[0] == pool_id]:
                    del self.state.secrets[key]
                self.state.resource_servers.pop(pool_id, None)
        return self._answer(status, data, headers=headers)

    # -- the client secret API, which moto lacks

    def _secrets(self, path, pool_id, client_id):
        """The secrets of a client, seeded with the one moto generated."""
        key = (pool_id, client_id)
        with self.state.lock:
            if key in self.state.secrets:
                return self.state.secrets[key]
        status, _, data = self._call(
            path, "DescribeUserPoolClient", {"UserPoolId": pool_id, "ClientId": client_id}
        )
        if status != 200:
            raise Refusal("ResourceNotFoundException", f"app client {client_id} does not exist", status=400)
        client = json.loads(data).get("UserPoolClient", {})
        if not client.get("ClientSecret"):
            raise Refusal("InvalidParameterException", f"app client {client_id} has no client secret")
        created = client.get("CreationDate") or time.time()
        with self.state.lock:
            return self.state.secrets.setdefault(
                key, [{"id": f"{client_id}--original", "value": client["ClientSecret"], "created": created}]
            )

    def _with_secret(self, data, member):
        """While the secret API is emulated, Describe shows the oldest secret."""
        try:
            document = json.loads(data)
        except ValueError:
            return data
        client = document.get(member) if isinstance(document, dict) else None
        if not client or "ClientSecret" not in client:
            return data
        with self.state.lock:
            held = self.state.secrets.get((client.get("UserPoolId"), client.get("ClientId")))
            if held:
                client["ClientSecret"] = held[0]["value"]
        return json.dumps(document).encode()

    def op_AddUserPoolClientSecret(self, scope, path, request):
        held = self._secrets(path, request["UserPoolId"], request["ClientId"])
        with self.state.lock:
            if len(held) >= MAX_CLIENT_SECRETS:
                refusal = Refusal(
                    "LimitExceededException",
                    f"AddUserPoolClientSecret: app client {request['ClientId']} already has {MAX_CLIENT_SECRETS} "
                    "client secrets; delete one first",
                )
                self.state.record(scope, "AddUserPoolClientSecret", refusal)
                raise refusal
            value = request.get("ClientSecret") or secrets.token_urlsafe(39).replace("-", "a").replace("_", "b")[:52]
            entry = {"id": secrets.token_hex(16), "value": value, "created": time.time()}
            held.append(entry)
        descriptor = {"ClientSecretId": entry["id"], "ClientSecretCreateDate": entry["created"]}
        if not request.get("ClientSecret"):
            descriptor["ClientSecretValue"] = value
        return self._answer(200, json.dumps({"ClientSecretDescriptor": descriptor}).encode())

    def op_ListUserPoolClientSecrets(self, scope, path, request):
        held = self._secrets(path, request["UserPoolId"], request["ClientId"])
        with self.state.lock:
            listed = [{"ClientSecretId": s["id"], "ClientSecretCreateDate": s["created"]} for s in held]
        return self._answer(200, json.dumps({"ClientSecrets": listed}).encode())

    def op_DeleteUserPoolClientSecret(self, scope, path, request):
        held = self._secrets(path, request["UserPoolId"], request["ClientId"])
        with self.state.lock:
            match = [s for s in held if s["id"] == request["ClientSecretId"]]
            if not match:
                raise Refusal("ResourceNotFoundException", f"client secret {request['ClientSecretId']} does not exist")
            if len(held) == 1:
                raise Refusal(
                    "InvalidParameterException",
                    "DeleteUserPoolClientSecret: the last remaining secret of an app client cannot be deleted",
                )
            held.remove(match[0])
        return self._answer(200, b"{}")

    # -- plumbing

    def _call(self, path, operation, request):
        """One request to moto, with this request's headers but `operation`."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        headers["X-Amz-Target"] = TARGET_PREFIX + operation
        return self._upstream("POST", path, json.dumps(request).encode(), headers)

    def _upstream(self, method, path, body, headers):
        upstream = self.state.upstream
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            kept = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date")
            ]
            return response.status, kept, data
        finally:
            connection.close()

    def _pass(self, scope, path, body):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        status, kept, data = self._upstream(self.command, path, body, headers)
        return self._answer(status, data, headers=kept)

    def _error(self, refusal):
        body = json.dumps({"__type": refusal.code, "message": refusal.message}).encode()
        return self._answer(
            refusal.status, body, "application/x-amz-json-1.1", [("x-amzn-ErrorType", refusal.code)]
        )

    def _answer(self, status, body, content_type=None, headers=None):
        self.send_response(status)
        sent_type = False
        for name, value in headers or []:
            if name.lower() == "content-type":
                sent_type = True
            self.send_header(name, value)
        if not sent_type:
            self.send_header("Content-Type", content_type or "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    Handler.state = State(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"strict listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
