//! Aggregated routes (`McpAggregateHandler`): one MCP endpoint over several
//! member routes. The gateway is the MCP server the client sees there: it
//! answers `initialize` with the union of the members' capabilities under a
//! session of its own, merges their lists ([`lists`]), routes each call to
//! the member that owns its name, and relays what members send the client
//! (notifications, and requests whose ids [`ids`] maps so replies find their
//! way back).
//!
//! Every message to a member goes through the member's own route
//! (`proxy::dispatch`): its capability filter, rate limit, headers and the
//! audit log apply to its part, and its upstream client carries it. The
//! aggregated route's own policies run first, on the client's request.
//!
//! Both protocol revisions are served: the sessions of 2025-11-25, and the
//! stateless requests of 2026-07-28 ([`stateless`]), each member spoken to
//! in the revision it agreed to.

mod call;
mod ids;
mod lists;
mod member;
pub(crate) mod session;
pub(crate) mod spec;
mod sse;
mod stateless;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use self::lists::Kind;
use self::member::{MemberError, Outgoing};
use self::session::{Session, Sessions, lock};
use self::spec::Aggregate;
use crate::gateway::claims::AccessClaims;
use crate::gateway::jsonrpc::{INVALID_REQUEST, PARSE_ERROR, Rpc, RpcError};
use crate::gateway::policy::ResponseFilter;
use crate::gateway::state::{AppState, RouteState};

pub(super) const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
pub(super) const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// The revisions of the stateful lifecycle this route speaks, newest first.
const STATEFUL_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// A client request's body is bounded by this.
const MAX_REQUEST: usize = 4 * 1024 * 1024;
/// JSON-RPC "method not found" and "invalid params".
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
/// A member could not serve the request (JSON-RPC server error range).
const MEMBER_UNAVAILABLE: i64 = -32003;

/// A boxed future borrowing the request's state.
pub(crate) type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an aggregated route's own policies asked of a request they let
/// through: headers for the member requests, filters for the answer.
pub(crate) struct OwnPolicies {
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) filters: Vec<Arc<dyn ResponseFilter>>,
}

/// The proxy's entry points an aggregated route uses, passed in by the
/// proxy (which calls this module): sending a request through a member's
/// route, and running the route's own policies.
pub(crate) struct Hooks {
    pub(crate) dispatch: Dispatch,
    pub(crate) own_policies: RunOwnPolicies,
}

/// Sends a request (its token checked) through a route's policies to its upstream.
pub(crate) type Dispatch =
    for<'a> fn(&'a AppState, &'a RouteState, Arc<AccessClaims>, Request, Option<IpAddr>) -> Pending<'a, Response>;

/// Runs a route's own policies over a request (headers, JSON-RPC view, client address).
pub(crate) type RunOwnPolicies = for<'a> fn(
    &'a AppState,
    &'a RouteState,
    &'a AccessClaims,
    &'a axum::http::request::Parts,
    Option<&'a [u8]>,
    Option<&'a Result<Rpc, RpcError>>,
    Option<IpAddr>,
) -> Pending<'a, Result<OwnPolicies, Response>>;

/// The server of one aggregated route (its spec and its sessions).
pub(crate) struct AggregateServer<'r> {
    spec: &'r Aggregate,
    sessions: &'r Sessions,
}

/// Serves one request of an aggregated route, whose token was checked.
pub(crate) async fn serve(
    hooks: &Hooks,
    state: &AppState,
    route: &RouteState,
    claims: Arc<AccessClaims>,
    request: Request,
    peer: Option<IpAddr>,
) -> Response {
    let (Some(spec), Some(sessions)) = (route.route.aggregate.as_deref(), route.sessions.as_ref()) else {
        return error_response(StatusCode::NOT_FOUND, Value::Null, INVALID_REQUEST, "no such MCP server");
    };
    AggregateServer { spec, sessions }.serve(hooks, state, route, claims, request, peer).await
}

/// What a request's handling shares.
pub(super) struct Ctx<'a> {
    pub(super) state: &'a AppState,
    pub(super) route: &'a RouteState,
    pub(super) spec: &'a Aggregate,
    pub(super) claims: Arc<AccessClaims>,
    pub(super) peer: Option<IpAddr>,
    /// Headers the aggregated route's own policies set on member requests.
    pub(super) headers: &'a [(HeaderName, HeaderValue)],
    pub(super) hooks: &'a Hooks,
}

impl AggregateServer<'_> {
    async fn serve(
        &self,
        hooks: &Hooks,
        state: &AppState,
        route: &RouteState,
        claims: Arc<AccessClaims>,
        request: Request,
        peer: Option<IpAddr>,
    ) -> Response {
        let (parts, body) = request.into_parts();
        let bytes = if parts.method == Method::POST {
            match axum::body::to_bytes(body, MAX_REQUEST).await {
                Ok(bytes) => Some(bytes),
                Err(_) => {
                    return error_response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        Value::Null,
                        INVALID_REQUEST,
                        "the request body is too large",
                    );
                }
            }
        } else {
            None
        };
        // A route with no policy of its own besides the token check (the
        // usual case) skips reading the body for them.
        let own = if route.route.inbound.is_empty() {
            OwnPolicies { headers: Vec::new(), filters: Vec::new() }
        } else {
            let rpc = bytes.as_ref().map(|bytes| Rpc::parse(bytes));
            let trusted = &state.security.trusted_proxies;
            let client_ip = crate::gateway::client_address::client_ip(trusted, &parts.headers, peer);
            match (hooks.own_policies)(state, route, &claims, &parts, bytes.as_deref(), rpc.as_ref(), client_ip).await {
                Ok(own) => own,
                Err(response) => return response,
            }
        };
        let ctx = Ctx { state, route, spec: self.spec, claims, peer, headers: &own.headers, hooks };
        let response = match (&parts.method, bytes) {
            (&Method::POST, Some(bytes)) => self.post(&ctx, &parts.headers, &bytes).await,
            (&Method::GET, _) => self.listen(&ctx, &parts.headers).await,
            (&Method::DELETE, _) => self.delete(&ctx, &parts.headers).await,
            _ => error_response(StatusCode::METHOD_NOT_ALLOWED, Value::Null, INVALID_REQUEST, "method not allowed"),
        };
        if own.filters.is_empty() {
            response
        } else {
            crate::gateway::policy::filter_body(response, own.filters, ctx.claims.identity()).await
        }
    }

    async fn post(&self, ctx: &Ctx<'_>, headers: &HeaderMap, bytes: &Bytes) -> Response {
        if let Some(call) = call::NamedCall::read(headers, bytes)
            && let Some(session) =
                headers.get(&MCP_SESSION_ID).and_then(|value| value.to_str().ok()).and_then(|id| self.sessions.get(id))
        {
            return self.named_call(ctx, &session, call, bytes).await;
        }
        let message: Value = match serde_json::from_slice(bytes) {
            Ok(message) => message,
            Err(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    Value::Null,
                    PARSE_ERROR,
                    "parse error: the body is not JSON",
                );
            }
        };
        if message.is_array() {
            return error_response(
                StatusCode::BAD_REQUEST,
                Value::Null,
                INVALID_REQUEST,
                "JSON-RPC batches are not part of MCP since 2025-06-18; send one message per request",
            );
        }
        let method = message.get("method").and_then(Value::as_str).map(str::to_owned);
        let id = message.get("id").cloned();
        if let Some(problem) = stateless::header_mismatch(headers, &message) {
            return error_response(
                StatusCode::BAD_REQUEST,
                id.unwrap_or(Value::Null),
                stateless::HEADER_MISMATCH,
                &problem,
            );
        }
        if stateless::is_stateless(headers, &message) {
            return stateless::serve(self, ctx, headers, message).await;
        }
        if method.as_deref() == Some("initialize") {
            return self.initialize(ctx, id.unwrap_or(Value::Null), &message).await;
        }
        let session_id = headers.get(&MCP_SESSION_ID).and_then(|value| value.to_str().ok());
        let Some(session_id) = session_id else {
            return error_response(
                StatusCode::BAD_REQUEST,
                id.unwrap_or(Value::Null),
                INVALID_REQUEST,
                "Mcp-Session-Id is required; send initialize first",
            );
        };
        let Some(session) = self.sessions.get(session_id) else {
            return error_response(
                StatusCode::NOT_FOUND,
                id.unwrap_or(Value::Null),
                INVALID_REQUEST,
                "session not found; initialize again",
            );
        };
        match (method, id) {
            (Some(method), Some(id)) => {
                let raw = bytes.clone();
                self.request(ctx, &session, &method, id, message, Some(raw)).await
            }
            (Some(method), None) => self.notification(ctx, &session, &method, message).await,
            (None, Some(_)) => self.reply(ctx, &session, message).await,
            (None, None) => {
                error_response(StatusCode::BAD_REQUEST, Value::Null, INVALID_REQUEST, "not a JSON-RPC message")
            }
        }
    }

    /// `initialize`: a session of the gateway's, linked to every member
    /// that answers (concurrently); one that does not is linked later.
    async fn initialize(&self, ctx: &Ctx<'_>, id: Value, message: &Value) -> Response {
        let params = message.get("params").cloned().unwrap_or_else(|| json!({}));
        let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or_default();
        let version = STATEFUL_VERSIONS.iter().find(|v| **v == asked).unwrap_or(&STATEFUL_VERSIONS[0]).to_string();
        let mut member_params = params.clone();
        member_params["protocolVersion"] = Value::String(version.clone());
        let session = Session::new(self.spec.members.len(), member_params, version.clone());
        let result = self.initialize_result(ctx, &session, &version).await;
        let session_id = self.sessions.insert(session);
        let mut response = result_response(id, result);
        if let Ok(value) = HeaderValue::from_str(&session_id) {
            response.headers_mut().insert(MCP_SESSION_ID, value);
        }
        response
    }

    /// Links `session` to every member and describes the union of them.
    async fn initialize_result(&self, ctx: &Ctx<'_>, session: &Session, version: &str) -> Value {
        let linked = futures_util::future::join_all(
            (0..self.spec.members.len())
                .map(|member| async move { (member, member::link(ctx, session, member).await) }),
        )
        .await;
        let mut capabilities = Vec::new();
        for (member, link) in linked {
            match link {
                Ok(link) => capabilities.push(link.capabilities.clone()),
                Err(err) => {
                    tracing::warn!(route = %ctx.route.route.path, member = %self.spec.members[member].path, error = %err, "a member did not initialize; it is linked on first use");
                }
            }
        }
        json!({
            "protocolVersion": version,
            "capabilities": union(&capabilities),
            "serverInfo": server_info(ctx),
        })
    }

    async fn request(
        &self,
        ctx: &Ctx<'_>,
        session: &Session,
        method: &str,
        id: Value,
        message: Value,
        raw: Option<Bytes>,
    ) -> Response {
        match self.answer(ctx, session, method, id.clone(), message, raw).await {
            Answer::Result(result) => result_response(id, result),
            Answer::Error(code, text) => error_response(StatusCode::OK, id, code, &text),
            Answer::Relayed(response) => response,
        }
    }

    /// What a client request gets: a result of the gateway's, an error, or a
    /// member's response relayed.
    /// `raw`: the client's bytes of `message`, sent as they are when the
    /// member's names are the client's.
    async fn answer(
        &self,
        ctx: &Ctx<'_>,
        session: &Session,
        method: &str,
        id: Value,
        mut message: Value,
        raw: Option<Bytes>,
    ) -> Answer {
        if method == "ping" {
            return Answer::Result(json!({}));
        }
        if let Some(kind) = Kind::of(method) {
            let cursor = message.pointer("/params/cursor").and_then(Value::as_str);
            return match lists::list(ctx, session, kind, cursor).await {
                Ok(result) => Answer::Result(Value::Object(result)),
                Err(err) => Answer::Error(INVALID_PARAMS, err.to_string()),
            };
        }
        if method == "logging/setLevel" {
            let params = message.get("params").cloned().unwrap_or_else(|| json!({}));
            for (member, link) in session.links() {
                if link.capabilities.get("logging").is_some()
                    && let Err(err) = member::call(ctx, session, member, method, params.clone()).await
                {
                    tracing::warn!(member = %self.spec.members[member].path, error = %err, "logging/setLevel failed at a member");
                }
            }
            return Answer::Result(json!({}));
        }
        let owner = match self.owner(ctx, session, method, &message).await {
            Ok(owner) => owner,
            Err(answer) => return answer,
        };
        let (member, own_name) = owner;
        let mut raw = raw;
        if let (Some(own_name), Some(params)) = (own_name, message.get_mut("params").and_then(Value::as_object_mut))
            && rename(method, params, own_name)
        {
            raw = None;
        }
        self.route_to(ctx, session, member, &id, Outgoing::of(&message, raw)).await
    }

    /// A `tools/call` or `prompts/get` of the stateful revision, read by
    /// [`call::NamedCall`]: the same answer [`Self::answer`] gives, without
    /// parsing the message into values when the member's name is the
    /// client's (the client's bytes then go on as they are).
    async fn named_call(&self, ctx: &Ctx<'_>, session: &Session, call: call::NamedCall<'_>, bytes: &Bytes) -> Response {
        let kind = if call.method == "tools/call" { Kind::Tools } else { Kind::Prompts };
        let answer = match self.named_owner(ctx, session, &call.method, kind, Some(&call.name)).await {
            Err(answer) => answer,
            Ok((member, own)) if own == call.name => {
                let outgoing = Outgoing::request(bytes.clone(), &call.method, &call.name);
                self.route_to(ctx, session, member, &call.id, outgoing).await
            }
            Ok((member, own)) => match serde_json::from_slice::<Value>(bytes) {
                Ok(mut message) => {
                    if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
                        rename(&call.method, params, own);
                    }
                    self.route_to(ctx, session, member, &call.id, Outgoing::of(&message, None)).await
                }
                Err(_) => Answer::Error(PARSE_ERROR, "parse error: the body is not JSON".into()),
            },
        };
        match answer {
            Answer::Result(result) => result_response(call.id, result),
            Answer::Error(code, text) => error_response(StatusCode::OK, call.id, code, &text),
            Answer::Relayed(response) => response,
        }
    }

    /// Sends a routed request to `member`, remembering which member serves
    /// it (for a cancellation); the member's answer relayed.
    async fn route_to(
        &self,
        ctx: &Ctx<'_>,
        session: &Session,
        member: usize,
        id: &Value,
        message: Outgoing<'_>,
    ) -> Answer {
        session.started(id, member);
        match member::send_linked(ctx, session, member, message).await {
            Ok(response) => Answer::Relayed(sse::relay(member, response)),
            Err(err) => Answer::Error(MEMBER_UNAVAILABLE, self.member_failure(ctx, member, &err)),
        }
    }

    /// Which member a routed request goes to, and the member's own name for
    /// what it names (when the route renamed it).
    async fn owner(
        &self,
        ctx: &Ctx<'_>,
        session: &Session,
        method: &str,
        message: &Value,
    ) -> Result<(usize, Option<String>), Answer> {
        let params = message.get("params");
        let text = |pointer: &str| params.and_then(|p| p.pointer(pointer)).and_then(Value::as_str).map(str::to_owned);
        let named = match method {
            "tools/call" => Some((Kind::Tools, text("/name"))),
            "prompts/get" => Some((Kind::Prompts, text("/name"))),
            "completion/complete" if text("/ref/type").as_deref() == Some("ref/prompt") => {
                Some((Kind::Prompts, text("/ref/name")))
            }
            _ => None,
        };
        if let Some((kind, name)) = named {
            return self
                .named_owner(ctx, session, method, kind, name.as_deref())
                .await
                .map(|(member, own)| (member, Some(own)));
        }
        let uri = match method {
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => text("/uri"),
            "completion/complete" => text("/ref/uri"),
            _ => return Err(Answer::Error(METHOD_NOT_FOUND, format!("method not found: {method}"))),
        };
        let Some(uri) = uri else {
            return Err(Answer::Error(INVALID_PARAMS, format!("{method} needs a uri")));
        };
        let known = { lists::resource_owner(&lock(&session.names), &uri) };
        let found = match known {
            Some(member) => Some(member),
            None => {
                self.refresh(ctx, session, Kind::Resources).await;
                self.refresh(ctx, session, Kind::Templates).await;
                lists::resource_owner(&lock(&session.names), &uri)
            }
        };
        // URIs are not always listed (a server may serve any under a scheme
        // of its own): the only member with resources serves them.
        let found = found.or_else(|| {
            let links = session.links();
            let mut serving = links.iter().filter(|(_, link)| link.capabilities.get("resources").is_some());
            match (serving.next(), serving.next()) {
                (Some((member, _)), None) => Some(*member),
                _ => None,
            }
        });
        match found {
            Some(member) => Ok((member, None)),
            None => Err(Answer::Error(
                INVALID_PARAMS,
                format!("unknown resource `{uri}`: no member of this route lists it or a template matching it"),
            )),
        }
    }

    /// The member owning the tool or prompt the client knows as `name`, and
    /// the member's own name for it.
    async fn named_owner(
        &self,
        ctx: &Ctx<'_>,
        session: &Session,
        method: &str,
        kind: Kind,
        name: Option<&str>,
    ) -> Result<(usize, String), Answer> {
        let Some(name) = name else {
            return Err(Answer::Error(INVALID_PARAMS, format!("{method} needs a name")));
        };
        let known = { lists::owner(ctx.spec, &lock(&session.names), kind, name) };
        let found = match known {
            Some(found) => Some(found),
            None => {
                self.refresh(ctx, session, kind).await;
                lists::owner(ctx.spec, &lock(&session.names), kind, name)
            }
        };
        // A route of one member lets it answer for names it does not
        // list (hidden ones, or names it handles without listing them).
        let found = found.or_else(|| (self.spec.members.len() == 1).then(|| (0, name.to_owned())));
        found.ok_or_else(|| {
            let what = if kind == Kind::Tools { "tool" } else { "prompt" };
            Answer::Error(
                INVALID_PARAMS,
                format!("unknown {what} `{name}`: no member of this route lists it (see {})", kind.method()),
            )
        })
    }

    /// Reads every page of a list, so the session's table knows every name.
    async fn refresh(&self, ctx: &Ctx<'_>, session: &Session, kind: Kind) {
        let mut cursor: Option<String> = None;
        // Bounded: a member that never stops paginating must not hold the call.
        for _ in 0..64 {
            let Ok(page) = lists::list(ctx, session, kind, cursor.as_deref()).await else { return };
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_owned()),
                None => return,
            }
        }
    }

    /// The client's message for the member, logged; what the client is told.
    fn member_failure(&self, ctx: &Ctx<'_>, member: usize, err: &MemberError) -> String {
        let path = &self.spec.members[member].path;
        tracing::warn!(route = %ctx.route.route.path, member = %path, error = %err, "a member could not serve a request");
        match err {
            MemberError::Refused { status, message } if *status == StatusCode::TOO_MANY_REQUESTS => {
                format!("{path} refused the request: {message}")
            }
            MemberError::Refused { message, .. } => format!("{path} refused the request: {message}"),
            _ => format!("the MCP server {path} behind this route is unavailable; try again later"),
        }
    }

    /// A client notification: a cancellation goes to the member serving the
    /// request; progress on a member's request to that member; the rest to
    /// every linked member.
    async fn notification(&self, ctx: &Ctx<'_>, session: &Session, method: &str, mut message: Value) -> Response {
        if method == "notifications/initialized" {
            return accepted();
        }
        let target = match method {
            "notifications/cancelled" => message.pointer("/params/requestId").and_then(|id| session.serving(id)),
            "notifications/progress" => {
                let token = message.pointer("/params/progressToken").cloned().unwrap_or(Value::Null);
                match ids::decode(&token) {
                    Some((member, original)) => {
                        message["params"]["progressToken"] = original;
                        Some(member)
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let targets: Vec<usize> = match target {
            Some(member) => vec![member],
            None => session.links().into_iter().map(|(member, _)| member).collect(),
        };
        for member in targets {
            match member::send_linked(ctx, session, member, Outgoing::of(&message, None)).await {
                Ok(response) => drain(response).await,
                Err(err) => {
                    tracing::debug!(member = %self.spec.members[member].path, error = %err, "a notification did not reach a member")
                }
            }
        }
        accepted()
    }

    /// The client's reply to a member's request: to that member, under its id.
    async fn reply(&self, ctx: &Ctx<'_>, session: &Session, mut message: Value) -> Response {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let Some((member, original)) = ids::decode(&id) else {
            return error_response(
                StatusCode::BAD_REQUEST,
                Value::Null,
                INVALID_REQUEST,
                "this reply answers no request of this route",
            );
        };
        message["id"] = original;
        match member::send_linked(ctx, session, member, Outgoing::of(&message, None)).await {
            Ok(response) => {
                drain(response).await;
                accepted()
            }
            Err(err) => {
                let text = self.member_failure(ctx, member, &err);
                error_response(StatusCode::BAD_GATEWAY, Value::Null, MEMBER_UNAVAILABLE, &text)
            }
        }
    }

    /// `GET`: the members' own streams, merged, for the session's
    /// server-initiated messages (list changes, logging, requests).
    async fn listen(&self, ctx: &Ctx<'_>, headers: &HeaderMap) -> Response {
        let Some(session) =
            headers.get(&MCP_SESSION_ID).and_then(|v| v.to_str().ok()).and_then(|id| self.sessions.get(id))
        else {
            return error_response(
                StatusCode::BAD_REQUEST,
                Value::Null,
                INVALID_REQUEST,
                "Mcp-Session-Id of an initialized session is required",
            );
        };
        let mut streams = Vec::new();
        for (member, link) in session.links() {
            match member::send(ctx, member, Some(&link), Method::GET, None).await {
                Ok(response) if member::is_sse(&response) => {
                    streams.push(Box::pin(sse::relayed_events(member, response.into_body())));
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!(member = %self.spec.members[member].path, error = %err, "a member offers no stream")
                }
            }
        }
        if streams.is_empty() {
            return error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                Value::Null,
                INVALID_REQUEST,
                "no member of this route offers a server stream",
            );
        }
        let merged = futures_util::stream::select_all(streams);
        let mut response = Response::new(Body::from_stream(merged));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// `DELETE`: ends the session and the member sessions it holds.
    async fn delete(&self, ctx: &Ctx<'_>, headers: &HeaderMap) -> Response {
        let Some(session) =
            headers.get(&MCP_SESSION_ID).and_then(|v| v.to_str().ok()).and_then(|id| self.sessions.remove(id))
        else {
            return error_response(StatusCode::NOT_FOUND, Value::Null, INVALID_REQUEST, "session not found");
        };
        for (member, link) in session.links() {
            if let Ok(response) = member::send(ctx, member, Some(&link), Method::DELETE, None).await {
                drain(response).await;
            }
        }
        StatusCode::OK.into_response()
    }
}

/// What a request gets.
enum Answer {
    Result(Value),
    Error(i64, String),
    Relayed(Response),
}

/// Puts the member's own name in a routed request; whether it changed.
fn rename(method: &str, params: &mut Map<String, Value>, own: String) -> bool {
    let holder = match method {
        "completion/complete" => params.get_mut("ref").and_then(Value::as_object_mut),
        _ => Some(params),
    };
    let Some(holder) = holder else { return false };
    if holder.get("name").and_then(Value::as_str) == Some(own.as_str()) {
        return false;
    }
    holder.insert("name".into(), Value::String(own));
    true
}

/// The union of the members' capabilities: each kind present if a member
/// has it, each flag on if a member's is.
fn union(capabilities: &[Value]) -> Value {
    let mut out = Map::new();
    for kind in ["tools", "prompts", "resources", "logging", "completions"] {
        let present: Vec<&Map<String, Value>> =
            capabilities.iter().filter_map(|c| c.get(kind)).filter_map(Value::as_object).collect();
        if present.is_empty() {
            continue;
        }
        let mut merged = Map::new();
        for flag in ["listChanged", "subscribe"] {
            if present.iter().any(|c| c.get(flag) == Some(&Value::Bool(true))) {
                merged.insert(flag.into(), Value::Bool(true));
            }
        }
        out.insert(kind.into(), Value::Object(merged));
    }
    Value::Object(out)
}

fn server_info(ctx: &Ctx<'_>) -> Value {
    json!({
        "name": format!("cognigate {}", ctx.route.route.path),
        "title": ctx.route.route.title.clone().unwrap_or_else(|| format!("MCP servers behind {}", ctx.route.route.path)),
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// Reads a response to its end (its connection then goes back to the pool).
async fn drain(response: Response) {
    let _ = axum::body::to_bytes(response.into_body(), 1024 * 1024).await;
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

fn result_response(id: Value, result: Value) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

fn error_response(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    (status, axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})))
        .into_response()
}
