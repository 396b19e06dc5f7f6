//! The hot request of an aggregated route, a `tools/call` or `prompts/get`,
//! read without building the message's values: its method, id and
//! `params.name` are borrowed from the bytes and the rest (the arguments) is
//! only scanned, so the bytes can go to the member as they came.
//!
//! Anything this reader does not settle (another method, a stateless
//! request, `_meta`, routing headers to check, a body that is not one JSON
//! object of the expected types) is left to the general path, which parses
//! the message whole: what is answered never depends on which path read it.

use std::borrow::Cow;
use std::fmt;

use axum::http::HeaderMap;
use serde::Deserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::{MCP_PROTOCOL_VERSION, STATEFUL_VERSIONS};

/// A client's named request of the stateful revision.
pub(super) struct NamedCall<'a> {
    pub(super) id: Value,
    pub(super) method: Cow<'a, str>,
    pub(super) name: Cow<'a, str>,
}

impl<'a> NamedCall<'a> {
    /// The request in `bytes`, when it is a named request this reader settles.
    pub(super) fn read(headers: &HeaderMap, bytes: &'a [u8]) -> Option<Self> {
        // Routing headers are checked against the whole message, and other
        // revisions are served by their own path.
        if headers.contains_key("mcp-method") || headers.contains_key("mcp-name") {
            return None;
        }
        if let Some(version) = headers.get(&MCP_PROTOCOL_VERSION)
            && !version.to_str().is_ok_and(|version| STATEFUL_VERSIONS.contains(&version))
        {
            return None;
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let envelope = deserializer.deserialize_map(EnvelopeVisitor).ok()?;
        deserializer.end().ok()?;
        let method = envelope.method?;
        if !matches!(method.as_ref(), "tools/call" | "prompts/get") {
            return None;
        }
        let params = envelope.params?;
        if params.has_meta {
            return None;
        }
        Some(Self { id: envelope.id?, method, name: params.name? })
    }
}

/// The top-level fields read; a later duplicate wins, as when parsed whole.
#[derive(Default)]
struct Envelope<'a> {
    id: Option<Value>,
    method: Option<Cow<'a, str>>,
    params: Option<Params<'a>>,
}

#[derive(Default)]
struct Params<'a> {
    name: Option<Cow<'a, str>>,
    has_meta: bool,
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                // `null` is an id of its own, not a missing one.
                "id" => envelope.id = Some(map.next_value::<Value>()?),
                "method" => envelope.method = Some(map.next_value::<Cow<'de, str>>()?),
                "params" => envelope.params = Some(map.next_value_seed(ParamsSeed)?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// Reads `params`, only as an object.
struct ParamsSeed;

impl<'de> serde::de::DeserializeSeed<'de> for ParamsSeed {
    type Value = Params<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(ParamsVisitor)
    }
}

struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Params<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("params as an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut params = Params::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "name" => params.name = Some(map.next_value::<Cow<'de, str>>()?),
                "_meta" => {
                    params.has_meta = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};
    use serde_json::json;

    use super::NamedCall;

    fn read(body: &str) -> Option<(serde_json::Value, String, String)> {
        NamedCall::read(&HeaderMap::new(), body.as_bytes())
            .map(|call| (call.id, call.method.into_owned(), call.name.into_owned()))
    }

    #[test]
    fn a_named_call_is_read_and_the_rest_left_to_the_general_path() {
        let call =
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1,{"b":2}]}}}"#;
        assert_eq!(read(call), Some((json!(7), "tools/call".into(), "echo".into())));
        // Escapes are read as the whole parse reads them; a later duplicate wins.
        let escaped = r#"{"id":"x","method":"prompts\/get","params":{"name":"a","name":"b\u0041"}}"#;
        assert_eq!(read(escaped), Some((json!("x"), "prompts/get".into(), "bA".into())));
        // `null` is an id (the whole parse sees a request too).
        let null_id = r#"{"id":null,"method":"tools/call","params":{"name":"echo"}}"#;
        assert_eq!(read(null_id), Some((json!(null), "tools/call".into(), "echo".into())));
        for general in [
            r#"{"id":1,"method":"tools/list","params":{"name":"echo"}}"#,
            r#"{"method":"tools/call","params":{"name":"echo"}}"#,
            r#"{"id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":3}}"#,
            r#"{"id":1,"method":"tools/call","params":["echo"]}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":1}}}"#,
            r#"[1,"tools/call",{"name":"echo"}]"#,
            r#"{"id":1,"method":"tools/call","params":{"name":"echo"}} trailing"#,
            "not json",
        ] {
            assert_eq!(read(general), None, "{general}");
        }
        let mut headers = HeaderMap::new();
        headers.insert("mcp-protocol-version", HeaderValue::from_static("2026-07-28"));
        assert!(NamedCall::read(&headers, call.as_bytes()).is_none());
        headers.insert("mcp-protocol-version", HeaderValue::from_static("2025-11-25"));
        assert!(NamedCall::read(&headers, call.as_bytes()).is_some());
        headers.insert("mcp-name", HeaderValue::from_static("echo"));
        assert!(NamedCall::read(&headers, call.as_bytes()).is_none());
    }
}
