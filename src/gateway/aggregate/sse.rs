//! Server-sent events between the members and the client: a reader that
//! turns a member's stream into JSON-RPC messages, and the relay that passes
//! a member's stream to the client with its requests' ids mapped (see
//! [`super::ids`]). Event ids are left out: each member numbers its own
//! stream, so one of them would resume another's.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::Value;

use super::ids;

/// Splits a stream into events and yields the JSON in their `data` fields.
#[derive(Default)]
pub(super) struct EventReader {
    pending: Vec<u8>,
}

impl EventReader {
    /// The messages of the events `chunk` completes.
    pub(super) fn push(&mut self, chunk: &[u8]) -> Vec<Value> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some((end, separator)) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end + separator).collect();
            if let Some(message) = data(&event[..end]) {
                out.push(message);
            }
        }
        out
    }
}

/// Where the first event ends (a blank line), and the separator's length.
fn event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = memchr::memmem::find(buffer, b"\n\n").map(|at| (at, 2));
    let crlf = memchr::memmem::find(buffer, b"\r\n\r\n").map(|at| (at, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The JSON of an event's `data` lines, joined.
fn data(event: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(event).ok()?;
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.trim_end_matches('\r'))
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|value| value.strip_prefix(' ').unwrap_or(value))
        .collect();
    if lines.is_empty() {
        return None;
    }
    serde_json::from_str(&lines.join("\n")).ok()
}

/// Whether a response is an SSE stream.
pub(super) fn is_sse(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("text/event-stream"))
}

/// One message as an SSE event.
pub(super) fn event(message: &Value) -> Bytes {
    let mut out = b"event: message\ndata: ".to_vec();
    out.extend_from_slice(&serde_json::to_vec(message).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// A member's SSE body as events for the client, ids mapped.
pub(super) fn relayed_events(
    member: usize,
    body: Body,
) -> impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Send + 'static {
    let mut reader = EventReader::default();
    body.into_data_stream().map(move |chunk| {
        chunk.map(|chunk| {
            let mut out = Vec::new();
            for mut message in reader.push(&chunk) {
                ids::outbound(member, &mut message);
                out.extend_from_slice(&event(&message));
            }
            Bytes::from(out)
        })
    })
}

/// A member's response for the client: an SSE stream relayed event by
/// event; a JSON answer as it is (it answers the client's own id).
pub(super) fn relay(member: usize, response: Response) -> Response {
    let sse = is_sse(&response);
    let (mut parts, body) = response.into_parts();
    // The member's session is the gateway's business, never the client's.
    parts.headers.remove(super::MCP_SESSION_ID);
    if !sse {
        return Response::from_parts(parts, body);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Response::from_parts(parts, Body::from_stream(relayed_events(member, body)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::EventReader;

    #[test]
    fn events_split_across_chunks_are_read_whole() {
        let mut reader = EventReader::default();
        assert!(reader.push(b"event: message\nid: 1\ndata: {\"a\":").is_empty());
        let messages = reader.push(b"1}\n\n: keep-alive\n\ndata: {\"b\":2}\r\n\r\n");
        assert_eq!(messages, [json!({"a": 1}), json!({"b": 2})]);
    }
}
