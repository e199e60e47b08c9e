//! Errors the front door itself gives on the MCP routes are JSON-RPC 2.0 error objects, the
//! shape MCP clients show to their users ("Server returned an error response" is all they
//! can say about any other body). The request's id is echoed when the body was a small
//! JSON-RPC request; a notification, an unreadable or large body gets `id: null`.

use serde_json::Value;

/// A batch longer than this is answered with one error (`id: null`), not one per entry.
pub const MAX_BATCH: usize = 32;

/// The ids of the JSON-RPC request(s) in a body.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcIds {
    /// Not known (body not read, not JSON-RPC, too large) or a notification.
    Unknown,
    /// One request's id.
    One(Value),
    /// A batch: the ids of its requests (notifications have none).
    Batch(Vec<Value>),
}

/// A JSON-RPC id is a string or a number; anything else is not echoed.
fn id_of(msg: &Value) -> Option<Value> {
    msg.get("method")?;
    match msg.get("id")? {
        v @ (Value::String(_) | Value::Number(_)) => Some(v.clone()),
        _ => None,
    }
}

/// The ids of the request(s) in `body` (already bounded by the caller).
pub fn ids_of(body: &[u8]) -> RpcIds {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_BATCH => {
            RpcIds::Batch(items.iter().filter_map(id_of).collect())
        }
        Ok(msg @ Value::Object(_)) => id_of(&msg).map_or(RpcIds::Unknown, RpcIds::One),
        _ => RpcIds::Unknown,
    }
}

/// The response body: one error object, or for a batch one per request in it (an all-
/// notification batch still gets one, with `id: null`, so the client has a reason to show).
pub fn error_body(ids: &RpcIds, code: i64, message: &str, data: Value) -> String {
    let one = |id: Value| {
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": code, "message": message, "data": data },
        })
    };
    match ids {
        RpcIds::Batch(ids) if !ids.is_empty() => {
            Value::Array(ids.iter().cloned().map(one).collect()).to_string()
        }
        RpcIds::One(id) => one(id.clone()).to_string(),
        _ => one(Value::Null).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_of_requests_notifications_and_batches() {
        let ids = |s: &str| ids_of(s.as_bytes());
        assert_eq!(
            ids(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#),
            RpcIds::One(json!(7))
        );
        assert_eq!(
            ids(r#"{"jsonrpc":"2.0","id":"a-1","method":"initialize","params":{}}"#),
            RpcIds::One(json!("a-1"))
        );
        assert_eq!(
            ids(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            RpcIds::Unknown
        );
        assert_eq!(
            ids(r#"{"jsonrpc":"2.0","id":{"x":1},"method":"m"}"#),
            RpcIds::Unknown
        );
        assert_eq!(
            ids(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            RpcIds::Unknown
        );
        assert_eq!(ids("not json"), RpcIds::Unknown);
        assert_eq!(
            ids(r#"[{"id":1,"method":"a"},{"method":"n"},{"id":"z","method":"b"}]"#),
            RpcIds::Batch(vec![json!(1), json!("z")])
        );
        let big = format!(
            "[{}]",
            vec![r#"{"id":1,"method":"a"}"#; MAX_BATCH + 1].join(",")
        );
        assert_eq!(ids(&big), RpcIds::Unknown);
    }

    #[test]
    fn error_bodies_echo_the_ids() {
        let body = error_body(&RpcIds::One(json!(3)), -32001, "m", json!({"reason": "r"}));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"m","data":{"reason":"r"}}})
        );
        let body = error_body(&RpcIds::Batch(vec![json!(1), json!(2)]), -1, "m", json!({}));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["id"], json!(2));
        let body = error_body(&RpcIds::Unknown, -1, "m", json!({}));
        assert!(body.contains(r#""id":null"#), "{body}");
    }
}
