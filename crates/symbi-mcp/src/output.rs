//! Turning a `tools/call` result into a value for the agent.
//!
//! * `structuredContent` (a tool with an output schema) is the value as it is;
//! * otherwise each content block becomes a value — text → string; image/audio →
//!   `{type, mimeType, data}`; embedded resource → `{type: "resource", uri, mimeType, text |
//!   blob}`; resource link → the link object — and one block is that value, several are a
//!   list, none is null.
//!
//! Text is never parsed as JSON behind the tool's back: a tool that returns JSON should
//! declare an output schema (and then sends `structuredContent`); an agent can still call
//! `parse_json` on a string.

use serde_json::{Map, Value, json};

/// The agent-facing value of a `CallToolResult` (see the module documentation).
///
/// ```
/// use serde_json::json;
/// let r = json!({"content": [{"type": "text", "text": "hi"}]});
/// assert_eq!(symbi_mcp::output::result_value(&r), json!("hi"));
/// let r = json!({"content": [{"type": "text", "text": "{\"a\":1}"}], "structuredContent": {"a": 1}});
/// assert_eq!(symbi_mcp::output::result_value(&r), json!({"a": 1}));
/// ```
pub fn result_value(result: &Value) -> Value {
    if let Some(s) = result.get("structuredContent").filter(|v| !v.is_null()) {
        return s.clone();
    }
    let blocks: Vec<Value> = result
        .get("content")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(block_value).collect())
        .unwrap_or_default();
    match blocks.len() {
        0 => Value::Null,
        1 => blocks.into_iter().next().expect("one"),
        _ => Value::Array(blocks),
    }
}

fn block_value(b: &Value) -> Value {
    match b.get("type").and_then(Value::as_str) {
        Some("text") => b.get("text").cloned().unwrap_or(Value::Null),
        Some(t @ ("image" | "audio")) => {
            json!({"type": t, "mimeType": b.get("mimeType"), "data": b.get("data")})
        }
        Some("resource") => {
            let mut m = Map::new();
            m.insert("type".into(), json!("resource"));
            if let Some(Value::Object(r)) = b.get("resource") {
                for (k, v) in r {
                    if k != "_meta" {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(m)
        }
        _ => {
            let mut b = b.clone();
            if let Value::Object(m) = &mut b {
                m.remove("_meta");
                m.remove("annotations");
            }
            b
        }
    }
}

/// The message of a failed call (`isError: true`): its text blocks, joined.
pub fn error_message(result: &Value) -> String {
    let text: Vec<&str> = result
        .get("content")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    if text.is_empty() {
        "the tool reported an error without a message".into()
    } else {
        text.join("\n")
    }
}

/// Whether the result reports failure.
pub fn is_error(result: &Value) -> bool {
    result
        .get("isError")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let r = json!({"content": [
            {"type": "text", "text": "a"},
            {"type": "image", "mimeType": "image/png", "data": "AAA", "annotations": {}},
            {"type": "resource", "resource": {"uri": "test://x", "mimeType": "text/plain", "text": "body"}}
        ]});
        assert_eq!(
            result_value(&r),
            json!(["a", {"type": "image", "mimeType": "image/png", "data": "AAA"},
                   {"type": "resource", "uri": "test://x", "mimeType": "text/plain", "text": "body"}])
        );
        assert_eq!(result_value(&json!({"content": []})), Value::Null);
        let e = json!({"isError": true, "content": [{"type": "text", "text": "boom"}, {"type": "text", "text": "again"}]});
        assert!(is_error(&e));
        assert_eq!(error_message(&e), "boom\nagain");
    }
}
