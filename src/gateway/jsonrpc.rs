//! The JSON-RPC view of an MCP request body, as far as policies look at it:
//! each message's `id`, `method`, the item it names (`params.name` or
//! `params.uri`) and a completion's `params.ref`. The rest of the body (a tool
//! call's arguments above all) is skipped by the parser without being built.
//!
//! The reader is strict where a lenient one would let the gateway and the
//! upstream see two different requests:
//! - an `id` is a string or an integer (JSON-RPC 2.0 section 4); `1.0`,
//!   `1e0` and `-0` are refused, since serde keeps them as floats while an
//!   upstream may answer with the integer, and ids in a batch are unique;
//! - `method`, `params`, `name`, `uri`, `ref` (and `id`, `type`) appear once
//!   and in lower case: Go's `encoding/json` matches keys case-insensitively
//!   and others keep the first of two, so `{"name":"echo","NAME":"add"}`
//!   could call `add` past a filter that read `echo`.

use std::borrow::Cow;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// JSON-RPC "parse error": the body is not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC "invalid request": JSON, but not a request the gateway forwards.
pub(crate) const INVALID_REQUEST: i64 = -32600;

/// Why a body was refused, as a JSON-RPC error code and a message for the
/// client saying what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
}

/// One JSON-RPC message of the request.
#[derive(Debug, Default)]
pub(crate) struct Message {
    /// A string or an integer; `None` for a notification.
    pub(crate) id: Option<Value>,
    pub(crate) method: Option<String>,
    /// `params.name` (tools/call, prompts/get) or `params.uri` (resources/*).
    pub(crate) name: Option<String>,
    /// `completion/complete`'s `params.ref`: its `type` and its name or uri.
    pub(crate) reference: Option<(String, String)>,
}

/// The parsed request body: one message, or a batch.
#[derive(Debug, Default)]
pub(crate) struct Rpc {
    pub(crate) messages: Vec<Message>,
    pub(crate) batch: bool,
}

impl Rpc {
    /// The messages of a JSON-RPC body (one object or a batch), or why it
    /// cannot be forwarded past a policy that reads it.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, RpcError> {
        let rpc = serde_json::from_slice::<Rpc>(body).map_err(|err| match err.classify() {
            serde_json::error::Category::Data => {
                RpcError { code: INVALID_REQUEST, message: format!("invalid request: {err}") }
            }
            _ => RpcError { code: PARSE_ERROR, message: "parse error: the body is not JSON-RPC".to_owned() },
        })?;
        let ids: Vec<&Value> = rpc.messages.iter().filter_map(|message| message.id.as_ref()).collect();
        if let Some(twice) = ids.iter().enumerate().find_map(|(at, id)| ids[..at].contains(id).then_some(*id)) {
            return Err(RpcError {
                code: INVALID_REQUEST,
                message: format!(
                    "invalid request: the id {twice} appears twice in the batch; give each request its own id"
                ),
            });
        }
        Ok(rpc)
    }

    pub(crate) fn first(&self) -> Option<&Message> {
        self.messages.first()
    }
}

/// The keys read strictly, with the bit each one has in a "seen" mask.
const WATCHED: [&str; 7] = ["id", "method", "params", "name", "uri", "ref", "type"];

/// The watched key `key` stands for (compared without case), checked: a
/// case variant, or a key seen before in this object, is an error.
fn watched<E: de::Error>(key: &str, seen: &mut u8) -> Result<Option<&'static str>, E> {
    let Some(at) = WATCHED.iter().position(|name| name.eq_ignore_ascii_case(key)) else {
        return Ok(None);
    };
    let name = WATCHED[at];
    if name != key {
        return Err(E::custom(format_args!(
            "the key `{key}` differs from `{name}` only in case; send `{name}` in lower case, once"
        )));
    }
    let bit = 1u8 << at;
    if *seen & bit != 0 {
        return Err(E::custom(format_args!("the key `{name}` appears twice in one object; send it once")));
    }
    *seen |= bit;
    Ok(Some(name))
}

/// Visitor methods for the JSON values a lenient reader takes as "nothing
/// here" (`$empty`): scalars are dropped, arrays skipped whole.
macro_rules! skip_other_values {
    ($empty:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($empty)
        }
    };
}

/// Strings, where an object is expected: nothing there either.
macro_rules! skip_strings {
    ($empty:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($empty)
        }
    };
}

impl<'de> Deserialize<'de> for Rpc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Body;
        impl<'de> Visitor<'de> for Body {
            type Value = Rpc;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC message or batch")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Rpc, A::Error> {
                Ok(Rpc { messages: vec![Peek.visit_map(map)?], batch: false })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Rpc, A::Error> {
                let mut messages = Vec::new();
                while let Some(message) = seq.next_element::<Message>()? {
                    messages.push(message);
                }
                Ok(Rpc { messages, batch: true })
            }
        }
        deserializer.deserialize_any(Body)
    }
}

/// Reads one message (any JSON value; what is not an object has no fields).
struct Peek;

impl<'de> Visitor<'de> for Peek {
    type Value = Message;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let (mut id, mut method, mut params) = (None, None, Params::default());
        let mut seen = 0u8;
        while let Some(Text(Some(key))) = map.next_key::<Text<'de>>()? {
            match watched(&key, &mut seen)? {
                Some("id") => id = Some(map.next_value::<RequestId>()?.0),
                Some("method") => method = map.next_value::<Text<'de>>()?.into_string(),
                Some("params") => params = map.next_value::<Params>()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let name = match method.as_deref() {
            Some("tools/call" | "prompts/get") => params.name,
            Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => params.uri,
            _ => None,
        };
        Ok(Message { id, method, name, reference: params.reference })
    }
    skip_other_values!(Message::default());
    skip_strings!(Message::default());
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Peek)
    }
}

/// A request id: a string or an integer, nothing else.
struct RequestId(Value);

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = RequestId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an id that is a string or an integer (not a fraction, exponent or -0)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RequestId, E> {
                Ok(RequestId(Value::String(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RequestId, E> {
                Ok(RequestId(Value::String(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RequestId, E> {
                Ok(RequestId(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RequestId, E> {
                Ok(RequestId(Value::from(v)))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// The `params` fields policies read (`name`, `uri`, and `ref`, itself read
/// as params with its `type`); params that are not an object have none.
#[derive(Default)]
struct Params {
    name: Option<String>,
    uri: Option<String>,
    kind: Option<String>,
    reference: Option<(String, String)>,
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Params;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON-RPC params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut params = Params::default();
                let mut seen = 0u8;
                while let Some(Text(Some(key))) = map.next_key::<Text<'de>>()? {
                    match watched(&key, &mut seen)? {
                        Some("name") => params.name = map.next_value::<Text<'de>>()?.into_string(),
                        Some("uri") => params.uri = map.next_value::<Text<'de>>()?.into_string(),
                        Some("type") => params.kind = map.next_value::<Text<'de>>()?.into_string(),
                        Some("ref") => {
                            let reference = map.next_value::<Params>()?;
                            params.reference = reference.kind.zip(reference.name.or(reference.uri));
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(params)
            }
            skip_other_values!(Params::default());
            skip_strings!(Params::default());
        }
        deserializer.deserialize_any(Fields)
    }
}

/// A JSON string (borrowed from the body when it has no escapes), or `None`
/// for any other value, which is skipped.
struct Text<'de>(Option<Cow<'de, str>>);

impl Text<'_> {
    fn into_string(self) -> Option<String> {
        self.0.map(Cow::into_owned)
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyText;
        impl<'de> Visitor<'de> for AnyText {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            skip_other_values!(Text(None));
        }
        deserializer.deserialize_any(AnyText)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{INVALID_REQUEST, PARSE_ERROR, Rpc};

    #[test]
    fn the_body_is_read_for_the_fields_policies_use() {
        let call = br#"{"params":{"arguments":{"name":"not this","NAME":"nor this","deep":[{"uri":1}]},"name":"ec\u0068o"},"id":7,"method":"tools/call","jsonrpc":"2.0"}"#;
        let rpc = Rpc::parse(call).unwrap();
        let message = rpc.first().unwrap();
        assert!(!rpc.batch);
        assert_eq!((message.method.as_deref(), message.name.as_deref()), (Some("tools/call"), Some("echo")));
        assert_eq!(message.id, Some(json!(7)));

        let batch = br#"[{"id":"a","method":"resources/read","params":{"uri":"file:///x","name":"n"}}, 3, "x", null,
            {"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}},
            {"method":7,"params":[1,2]}, {"id":-5,"method":"tools/list","params":"name"}]"#;
        let rpc = Rpc::parse(batch).unwrap();
        assert!(rpc.batch);
        assert_eq!(rpc.messages.len(), 7);
        assert_eq!(rpc.messages[0].name.as_deref(), Some("file:///x"), "resources are named by their uri");
        assert!(rpc.messages[1..4].iter().all(|m| m.method.is_none() && m.id.is_none()), "non-objects have no fields");
        assert_eq!(rpc.messages[4].reference, Some(("ref/prompt".to_owned(), "p".to_owned())));
        assert_eq!((rpc.messages[5].method.as_deref(), rpc.messages[5].name.as_deref()), (None, None));
        assert_eq!(rpc.messages[6].id, Some(json!(-5)));

        for bad in [&b"not json"[..], b"7", b"\"tools/call\"", br#"{"method":"tools/call"} trailing"#] {
            let err = Rpc::parse(bad).unwrap_err();
            assert!(
                err.code == PARSE_ERROR || err.code == INVALID_REQUEST,
                "{}: {err:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn ids_are_strings_or_integers_and_unique_in_a_batch() {
        for id in ["-0", "1.0", "1e0", "0.5", "null", "true", "[1]", "{\"a\":1}"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
            let err = Rpc::parse(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, INVALID_REQUEST, "{id}: {err:?}");
            assert!(err.message.contains("string or an integer"), "{id}: {}", err.message);
        }
        for id in ["0", "-1", "18446744073709551615", "\"a\""] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
            assert!(Rpc::parse(body.as_bytes()).is_ok(), "{id}");
        }
        let err =
            Rpc::parse(br#"[{"id":1,"method":"tools/list"},{"id":1,"method":"tools/call","params":{"name":"a"}}]"#)
                .unwrap_err();
        assert!(err.code == INVALID_REQUEST && err.message.contains("appears twice"), "{err:?}");
        assert!(
            Rpc::parse(br#"[{"id":1,"method":"a"},{"id":"1","method":"b"},{"method":"c"},{"method":"d"}]"#).is_ok()
        );
    }

    #[test]
    fn watched_keys_come_once_and_in_lower_case() {
        for body in [
            r#"{"id":1,"method":"tools/call","params":{"name":"echo","NAME":"add"}}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":"echo","name":"add"}}"#,
            r#"{"id":1,"method":"tools/call","Method":"tools/list","params":{"name":"echo"}}"#,
            r#"{"id":1,"method":"tools/call","method":"tools/list"}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":"echo"},"Params":{"name":"add"}}"#,
            r#"{"id":1,"method":"resources/read","params":{"uri":"a://x","Uri":"a://y"}}"#,
            r#"{"id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"REF":{}}}"#,
            r#"{"id":1,"Id":2,"method":"tools/list"}"#,
        ] {
            let err = Rpc::parse(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, INVALID_REQUEST, "{body}");
            assert!(err.message.contains("once"), "{body}: {}", err.message);
        }
    }
}
