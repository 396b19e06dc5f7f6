//! Runs a route's response filters over what the upstream sends back: a JSON
//! body whole, an SSE stream event by event (re-framed across chunks), on
//! every stream of the route. A message no filter is concerned with passes
//! byte for byte; one that is gets parsed, rewritten and written back.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;

use super::ResponseFilter;
use crate::gateway::store::Identity;

/// A JSON response larger than this is not filtered but refused (502): it
/// has to be held whole to be filtered.
const MAX_FILTERED_JSON: usize = 16 * 1024 * 1024;

/// The upstream's answer with `filters` applied for `identity`.
pub(crate) async fn filter_body(
    response: Response,
    filters: Vec<Arc<dyn ResponseFilter>>,
    identity: Identity,
) -> Response {
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("text/event-stream"));
    let (parts, body) = response.into_parts();
    if is_sse {
        let mut events = SseFilter::default();
        let stream = body.into_data_stream().map(move |chunk| {
            chunk.map(|bytes| Bytes::from(events.push(&bytes, &|data| rewrite(data, &filters, &identity))))
        });
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    // Anything else is read as JSON whatever its content type says: a
    // client may parse it as JSON all the same.
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FILTERED_JSON).await else {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": null,
            "error": {"code": -32000, "message": "the upstream's response is too large to filter"}});
        return (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response();
    };
    let body = match rewrite(&bytes, &filters, &identity) {
        Some(rewritten) => Body::from(rewritten),
        None => Body::from(bytes),
    };
    let mut response = Response::from_parts(parts, body);
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

/// The JSON-RPC message(s) in `data` rewritten by the filters concerned with
/// them; `None` when none is (then `data` passes as it is).
fn rewrite(data: &[u8], filters: &[Arc<dyn ResponseFilter>], identity: &Identity) -> Option<Vec<u8>> {
    let concerned: Vec<&Arc<dyn ResponseFilter>> = filters.iter().filter(|filter| filter.concerns(data)).collect();
    if concerned.is_empty() {
        return None;
    }
    let mut value: Value = serde_json::from_slice(data).ok()?;
    let mut apply = |message: &mut Value| concerned.iter().for_each(|filter| filter.filter_message(message, identity));
    match &mut value {
        Value::Array(messages) => messages.iter_mut().for_each(&mut apply),
        message => apply(message),
    }
    serde_json::to_vec(&value).ok()
}

/// Re-frames an SSE stream event by event, filtering each event's data.
#[derive(Default)]
struct SseFilter {
    pending: Vec<u8>,
}

impl SseFilter {
    /// The complete events of `chunk` (with what was pending), filtered;
    /// an incomplete tail waits for the next chunk.
    fn push(&mut self, chunk: &[u8], filter: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(self.pending.len());
        while let Some((end, separator)) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end + separator).collect();
            out.extend_from_slice(&filter_event(&event[..end], filter));
            out.extend_from_slice(b"\n\n");
        }
        out
    }
}

/// Where the first event ends (a blank line), and the separator's length.
fn event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|at| (at, 2));
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| (at, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// One event with its `data:` lines joined, filtered and written back as one
/// line; other fields (`id:`, `event:`, comments) are kept.
fn filter_event(event: &[u8], filter: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
    let text = String::from_utf8_lossy(event);
    let mut fields = Vec::new();
    let mut data: Vec<&str> = Vec::new();
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        match line.strip_prefix("data:") {
            Some(value) => data.push(value.strip_prefix(' ').unwrap_or(value)),
            None => fields.push(line),
        }
    }
    let mut out = Vec::with_capacity(event.len());
    for field in fields {
        out.extend_from_slice(field.as_bytes());
        out.push(b'\n');
    }
    if !data.is_empty() {
        let joined = data.join("\n");
        let filtered = filter(joined.as_bytes()).unwrap_or_else(|| joined.into_bytes());
        // serde_json never writes a raw newline, but a non-JSON payload may
        // have one: keep it one `data:` line per line.
        for line in filtered.split(|b| *b == b'\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::SseFilter;

    #[test]
    fn sse_events_are_refiltered_across_chunks() {
        let mut sse = SseFilter::default();
        let upper = |data: &[u8]| Some(data.to_ascii_uppercase());
        let first = sse.push(b"event: message\ndata: {\"a\":", &upper);
        assert!(first.is_empty(), "incomplete event waits");
        let rest = sse.push(b"1}\n\nid: 7\ndata: x\r\n\r\n", &upper);
        assert_eq!(String::from_utf8(rest).unwrap(), "event: message\ndata: {\"A\":1}\n\nid: 7\ndata: X\n\n");
    }
}
