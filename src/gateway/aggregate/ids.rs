//! The ids that cross an aggregated route from a member to the client: a
//! request a member sends (sampling, elicitation, roots) gets an id that
//! names the member, so the client's reply goes back to it, and with the id
//! the member gave it, so the member recognises the reply. Nothing is stored:
//! the id itself says where it goes.
//!
//! The client's own request ids need no mapping: each request goes to one
//! member, which answers with the id it was given.

use serde_json::Value;

/// What starts an id the gateway made (`cg3~"abc"`: member 3, id `"abc"`).
const TAG: &str = "cg";

/// The id the client sees for the request `id` of member `member`.
pub(super) fn encode(member: usize, id: &Value) -> Value {
    Value::String(format!("{TAG}{member}~{id}"))
}

/// The member and its own id behind an id made by [`encode`].
pub(super) fn decode(id: &Value) -> Option<(usize, Value)> {
    let text = id.as_str()?.strip_prefix(TAG)?;
    let (member, original) = text.split_once('~')?;
    let member = member.parse().ok()?;
    let original: Value = serde_json::from_str(original).ok()?;
    matches!(original, Value::String(_) | Value::Number(_)).then_some((member, original))
}

/// Rewrites one message a member sends to the client: its requests get ids
/// that name the member, and so does a cancellation of one of them.
pub(super) fn outbound(member: usize, message: &mut Value) {
    let Some(object) = message.as_object_mut() else { return };
    let method = object.get("method").and_then(Value::as_str).map(str::to_owned);
    match (method.as_deref(), object.get("id").cloned()) {
        (Some(_), Some(id)) if !id.is_null() => {
            object.insert("id".into(), encode(member, &id));
            // The client reports progress on the member's request under
            // this token; it must lead back to the member too.
            if let Some(meta) = object.get_mut("params").and_then(|p| p.get_mut("_meta")).and_then(Value::as_object_mut)
                && let Some(token) = meta.get("progressToken").cloned()
            {
                meta.insert("progressToken".into(), encode(member, &token));
            }
        }
        (Some("notifications/cancelled"), None) => {
            if let Some(params) = object.get_mut("params").and_then(Value::as_object_mut)
                && let Some(id) = params.get("requestId").cloned()
            {
                params.insert("requestId".into(), encode(member, &id));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{decode, encode, outbound};

    #[test]
    fn an_id_made_for_a_member_request_leads_back_to_it() {
        for id in [json!(7), json!("abc"), json!("cg1~2")] {
            let made = encode(3, &id);
            assert_eq!(decode(&made), Some((3, id.clone())), "{made}");
        }
        for foreign in [json!(1), json!("abc"), json!("cgx~1"), json!("cg1~{}"), json!(null)] {
            assert_eq!(decode(&foreign), None, "{foreign}");
        }
    }

    #[test]
    fn member_requests_and_their_cancellations_are_mapped_the_rest_passes() {
        let mut request = json!({"jsonrpc": "2.0", "id": 5, "method": "sampling/createMessage",
            "params": {"_meta": {"progressToken": "t"}}});
        outbound(1, &mut request);
        assert_eq!(request["id"], json!("cg1~5"));
        assert_eq!(request["params"]["_meta"]["progressToken"], json!("cg1~\"t\""));
        let mut cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}});
        outbound(1, &mut cancel);
        assert_eq!(cancel["params"]["requestId"], json!("cg1~5"));
        let mut response = json!({"jsonrpc": "2.0", "id": 5, "result": {}});
        outbound(1, &mut response);
        assert_eq!(response["id"], json!(5));
        let mut progress =
            json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 9}});
        outbound(1, &mut progress);
        assert_eq!(progress["params"]["progressToken"], json!(9));
    }
}
