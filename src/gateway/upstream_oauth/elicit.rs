//! The connect-required answer: what a request gets instead of the
//! upstream's 401 when its user has not connected the upstream (or the grant
//! ended upstream).
//!
//! It carries a connect URL: the gateway's own page, keyed by a single-use
//! ticket that names the user and the upstream. A client that declared
//! URL-mode elicitation at `initialize` (MCP 2025-11-25, SEP-1036) gets the
//! URL-elicitation-required error (`-32042`, `data.elicitations[]` of mode
//! `url`) and shows the link itself; any other client gets a JSON-RPC error
//! whose message carries the URL, for a person to open.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Upstream, UpstreamAuthError, keys};
use crate::gateway::crypto::random_token;
use crate::gateway::store::{StoreError, StoreHandle, now};

/// The JSON-RPC error code of URL elicitation required (MCP 2025-11-25).
pub(crate) const URL_ELICITATION_REQUIRED: i64 = -32042;
/// How long a connect link works.
pub(crate) const TICKET_TTL: i64 = 600;

/// A connect link's ticket as stored: whose connection it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ticket {
    pub(crate) subject: String,
    pub(crate) upstream: String,
    /// The route whose identity provider proves who opens the link.
    pub(crate) slug: String,
    pub(crate) expires_at: i64,
}

/// Who asks, and about what, for a connect-required answer.
pub(crate) struct Asking<'a> {
    pub(crate) subject: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) slug: &'a str,
    /// The JSON-RPC id the answer answers (`null` for none).
    pub(crate) id: Value,
    pub(crate) http_post: bool,
}

impl Upstream {
    /// A new connect URL for `subject` (a ticket stored for
    /// [`TICKET_TTL`]).
    pub(crate) async fn connect_url(
        &self,
        store: &StoreHandle,
        subject: &str,
        slug: &str,
    ) -> Result<(String, String), UpstreamAuthError> {
        let ticket = random_token(32);
        let record = Ticket {
            subject: subject.to_owned(),
            upstream: self.id.clone(),
            slug: slug.to_owned(),
            expires_at: now() + TICKET_TTL,
        };
        let text = serde_json::to_string(&record).map_err(StoreError::from)?;
        let key = keys::ticket(&ticket);
        let expires_at = record.expires_at;
        store.run(move |store| store.put_record(&key, &text, Some(expires_at))).await?;
        let url = format!("{}/oauth/upstream/connect?ticket={ticket}", self.runtime()?.public_url);
        Ok((url, ticket))
    }

    /// The connect-required answer for `asking`.
    pub(crate) async fn connect_required(&self, store: &StoreHandle, asking: &Asking<'_>) -> Response {
        Upstream::count(&self.counters.connect_required);
        let (url, ticket) = match self.connect_url(store, asking.subject, asking.slug).await {
            Ok(made) => made,
            Err(err) => {
                tracing::warn!(upstream = %self.id, error = %err, "cannot make a connect link");
                return rpc_answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    asking.id.clone(),
                    -32000,
                    &format!(
                        "{} needs you to connect your account, and the gateway cannot make a link right now; try again",
                        self.display_name
                    ),
                    None,
                    asking.http_post,
                );
            }
        };
        tracing::info!(upstream = %self.id, sub = %asking.subject, "connect required; link issued");
        let message = format!(
            "This MCP server needs your {} account. Open this link to connect it, then try again: {url}",
            self.display_name
        );
        if self.declared_url_elicitation(store, asking.subject, asking.client_id).await {
            let data = json!({"elicitations": [{
                "mode": "url",
                "elicitationId": ticket,
                "url": url,
                "message": format!("Connect your {} account to continue.", self.display_name),
            }]});
            return rpc_answer(
                StatusCode::OK,
                asking.id.clone(),
                URL_ELICITATION_REQUIRED,
                &message,
                Some(data),
                asking.http_post,
            );
        }
        rpc_answer(
            StatusCode::OK,
            asking.id.clone(),
            -32001,
            &message,
            Some(json!({"connectUrl": url})),
            asking.http_post,
        )
    }
}

/// A JSON-RPC error answer. A `POST` gets it as the JSON-RPC response
/// (HTTP 200, as MCP's transport answers errors); another method (the SSE
/// stream's `GET`) gets it with 424, a status MCP clients do not take for an
/// authorization challenge of their own.
fn rpc_answer(
    status: StatusCode,
    id: Value,
    code: i64,
    message: &str,
    data: Option<Value>,
    http_post: bool,
) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let (Some(data), Some(object)) = (data, error.as_object_mut()) {
        object.insert("data".into(), data);
    }
    let status = if http_post { status } else { StatusCode::FAILED_DEPENDENCY };
    (status, axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": error}))).into_response()
}

/// The answer when the upstream's authorization server cannot be reached.
pub(crate) fn unavailable(upstream: &Upstream, id: Value, http_post: bool) -> Response {
    rpc_answer(
        StatusCode::BAD_GATEWAY,
        id,
        -32000,
        &format!("{}'s authorization server is unavailable; try again in a moment", upstream.display_name),
        None,
        http_post,
    )
}
