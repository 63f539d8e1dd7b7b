//! The request log entry (`RecordedRequest`) and the deterministic derivations from a
//! request body: message text extraction, word-count token numbers and the default reply.

use std::time::{Duration, Instant};

use serde_json::Value;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// 1-based arrival number; `requests()[i].seq == i + 1`.
    pub seq: usize,
    pub method: String,
    /// The request target as sent (including any query string).
    pub path: String,
    /// Headers as sent, in order.
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body, or `Value::String` of the raw body when it is not JSON.
    pub body: Value,
    /// When the request was fully read.
    pub received_at: Instant,
    /// `received_at` relative to the server start.
    pub since_start: Duration,
}

impl RecordedRequest {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `model` field of the body, if any.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    /// The `stream` field of the body, if present.
    pub fn stream(&self) -> Option<bool> {
        self.body.get("stream").and_then(Value::as_bool)
    }

    /// Text of the last message with role `user`.
    pub fn last_user_message(&self) -> Option<String> {
        last_user_message(&self.body)
    }

    /// Whitespace-separated words of all message contents and the system prompt.
    pub fn input_tokens(&self) -> usize {
        count_input_tokens(&self.body)
    }
}

/// Number of whitespace-separated words.
pub fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The text of a message `content` (a string, or an array of parts / blocks whose
/// `text` fields, and nested `content` of tool results, are joined with newlines).
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            let mut out = String::new();
            for part in parts {
                let piece = match part {
                    Value::String(s) => s.clone(),
                    Value::Object(map) => {
                        if let Some(t) = map.get("text").and_then(Value::as_str) {
                            t.to_string()
                        } else if let Some(c) = map.get("content") {
                            content_text(c)
                        } else {
                            continue;
                        }
                    }
                    _ => continue,
                };
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&piece);
            }
            out
        }
        _ => String::new(),
    }
}

/// Text of the last message with role `user` in `body.messages`.
pub fn last_user_message(body: &Value) -> Option<String> {
    body.get("messages")?
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| m.get("content").map(content_text).unwrap_or_default())
}

/// Input token count: words of every message content plus a top-level `system`.
pub fn count_input_tokens(body: &Value) -> usize {
    let mut n = 0;
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for m in messages {
            if let Some(c) = m.get("content") {
                n += count_content_words(c);
            }
        }
    }
    if let Some(system) = body.get("system") {
        n += count_content_words(system);
    }
    n
}

fn count_content_words(content: &Value) -> usize {
    match content {
        Value::String(s) => count_words(s),
        other => count_words(&content_text(other)),
    }
}

/// The default reply: `STUB-REPLY-{seq} for {model}: {snippet}` where the snippet is the
/// first 80 characters of the last user message with newlines replaced by spaces and
/// `model` is the request's model (or `unknown`).
pub fn default_reply(req: &RecordedRequest) -> String {
    let model = req.model().unwrap_or("unknown");
    let snippet: String = req
        .last_user_message()
        .unwrap_or_default()
        .chars()
        .take(80)
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("STUB-REPLY-{} for {}: {}", req.seq, model, snippet)
}

/// Splits text into streaming pieces, one per word, each with its leading whitespace,
/// so that the pieces concatenate to the original text exactly.
pub fn split_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                pieces.push(&text[start..i]);
                start = i;
                in_word = false;
            }
        } else {
            in_word = true;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pieces_concatenate_to_text() {
        for text in ["", "a", " a  b\nc ", "hello world", "  ", "één twee"] {
            let pieces = split_pieces(text);
            assert_eq!(pieces.concat(), text);
        }
        assert_eq!(split_pieces("a b  c"), vec!["a", " b", "  c"]);
    }

    #[test]
    fn input_tokens_count_all_contents_and_system() {
        let body = json!({
            "system": "be brief",
            "messages": [
                {"role": "system", "content": "one two"},
                {"role": "user", "content": [{"type": "text", "text": "three four five"}]},
                {"role": "assistant", "content": null}
            ]
        });
        assert_eq!(count_input_tokens(&body), 7);
        assert_eq!(last_user_message(&body).as_deref(), Some("three four five"));
    }
}
