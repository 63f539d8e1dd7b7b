//! The three wire protocols' payloads (OpenAI chat completions, Ollama `/api/chat`,
//! Anthropic Messages): complete bodies, streamed events, broken variants and error JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::record::split_pieces;

/// A chat protocol, chosen by the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Ollama,
    Anthropic,
}

/// Everything a successful reply body needs.
#[derive(Debug)]
pub struct Completion<'a> {
    pub seq: usize,
    pub model: &'a str,
    /// The content, already cut to the request's token limit.
    pub text: &'a str,
    pub input_tokens: usize,
    pub output_tokens: usize,
    /// True when the content was cut by the request's token limit.
    pub truncated: bool,
    /// Nanoseconds since the request was read (for Ollama's durations).
    pub elapsed_ns: u64,
}

impl Protocol {
    /// The value of an absent `stream` field: true for Ollama only.
    pub fn stream_default(self) -> bool {
        matches!(self, Protocol::Ollama)
    }

    pub fn stream_content_type(self) -> &'static str {
        match self {
            Protocol::Ollama => "application/x-ndjson",
            _ => "text/event-stream",
        }
    }

    /// The request's output token limit, if it sets one.
    pub fn max_tokens(self, body: &Value) -> Option<usize> {
        let v = match self {
            Protocol::OpenAi => body
                .get("max_completion_tokens")
                .filter(|v| !v.is_null())
                .or_else(|| body.get("max_tokens")),
            Protocol::Anthropic => body.get("max_tokens"),
            Protocol::Ollama => body.get("options").and_then(|o| o.get("num_predict")),
        }?;
        v.as_u64().filter(|n| *n > 0).map(|n| n as usize)
    }

    fn finish_reason(self, truncated: bool) -> &'static str {
        match (self, truncated) {
            (Protocol::Anthropic, false) => "end_turn",
            (Protocol::Anthropic, true) => "max_tokens",
            (_, false) => "stop",
            (_, true) => "length",
        }
    }

    /// The error JSON of this protocol.
    pub fn error_body(self, status: u16, message: &str) -> String {
        let v = match self {
            Protocol::OpenAi => {
                let (kind, code) = match status {
                    400 => ("invalid_request_error", "invalid_request"),
                    401 => ("invalid_request_error", "invalid_api_key"),
                    403 => ("permission_error", "permission_denied"),
                    404 => ("invalid_request_error", "not_found"),
                    429 => ("rate_limit_error", "rate_limit_exceeded"),
                    500..=599 => ("server_error", "server_error"),
                    _ => ("invalid_request_error", "error"),
                };
                json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            }
            Protocol::Anthropic => {
                let kind = match status {
                    400 => "invalid_request_error",
                    401 => "authentication_error",
                    403 => "permission_error",
                    404 => "not_found_error",
                    413 => "request_too_large",
                    429 => "rate_limit_error",
                    529 | 503 => "overloaded_error",
                    _ => "api_error",
                };
                json!({"type": "error", "error": {"type": kind, "message": message}})
            }
            Protocol::Ollama => json!({ "error": message }),
        };
        v.to_string()
    }

    /// The complete (non-streaming) reply body.
    pub fn body(self, c: &Completion<'_>) -> String {
        let finish = self.finish_reason(c.truncated);
        let v = match self {
            Protocol::OpenAi => json!({
                "id": format!("chatcmpl-stub-{}", c.seq),
                "object": "chat.completion",
                "created": unix_secs(),
                "model": c.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": c.text},
                    "logprobs": null,
                    "finish_reason": finish
                }],
                "usage": {
                    "prompt_tokens": c.input_tokens,
                    "completion_tokens": c.output_tokens,
                    "total_tokens": c.input_tokens + c.output_tokens
                }
            }),
            Protocol::Ollama => json!({
                "model": c.model,
                "created_at": rfc3339_now(),
                "message": {"role": "assistant", "content": c.text},
                "done": true,
                "done_reason": finish,
                "total_duration": c.elapsed_ns,
                "load_duration": 0,
                "prompt_eval_count": c.input_tokens,
                "prompt_eval_duration": 0,
                "eval_count": c.output_tokens,
                "eval_duration": c.elapsed_ns
            }),
            Protocol::Anthropic => json!({
                "id": format!("msg_stub_{}", c.seq),
                "type": "message",
                "role": "assistant",
                "model": c.model,
                "content": [{"type": "text", "text": c.text}],
                "stop_reason": finish,
                "stop_sequence": null,
                "usage": {"input_tokens": c.input_tokens, "output_tokens": c.output_tokens}
            }),
        };
        v.to_string()
    }

    /// A 200 body that is not valid JSON: the real body cut in half.
    pub fn malformed_body(self, c: &Completion<'_>) -> String {
        let full = self.body(c);
        let cut = floor_boundary(&full, full.len() / 2);
        format!("{}<<llm-stub malformed", &full[..cut])
    }

    /// The events of a streamed reply, each ready to send as one chunk.
    pub fn stream_events(self, c: &Completion<'_>, include_usage: bool) -> Vec<String> {
        let pieces = split_pieces(c.text);
        let mut events = Vec::with_capacity(pieces.len() + 6);
        match self {
            Protocol::OpenAi => {
                events.push(sse_data(&self.openai_chunk(
                    c,
                    json!({"role": "assistant", "content": ""}),
                    None,
                )));
                for p in &pieces {
                    events.push(sse_data(&self.openai_chunk(
                        c,
                        json!({ "content": p }),
                        None,
                    )));
                }
                let finish = self.finish_reason(c.truncated);
                events.push(sse_data(&self.openai_chunk(c, json!({}), Some(finish))));
                if include_usage {
                    let usage = json!({
                        "id": format!("chatcmpl-stub-{}", c.seq),
                        "object": "chat.completion.chunk",
                        "created": unix_secs(),
                        "model": c.model,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": c.input_tokens,
                            "completion_tokens": c.output_tokens,
                            "total_tokens": c.input_tokens + c.output_tokens
                        }
                    });
                    events.push(sse_data(&usage));
                }
                events.push("data: [DONE]\n\n".to_string());
            }
            Protocol::Ollama => {
                for p in &pieces {
                    events.push(ndjson(&self.ollama_piece(c, p)));
                }
                events.push(ndjson(&self.ollama_done(c)));
            }
            Protocol::Anthropic => {
                events.push(sse_event("message_start", &self.anthropic_start(c)));
                events.push(sse_event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ));
                events.push(sse_event("ping", &json!({"type": "ping"})));
                for p in &pieces {
                    events.push(sse_event("content_block_delta", &anthropic_delta(p)));
                }
                events.push(sse_event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": 0}),
                ));
                events.push(sse_event("message_delta", &self.anthropic_message_delta(c)));
                events.push(sse_event("message_stop", &json!({"type": "message_stop"})));
            }
        }
        events
    }

    /// A well-framed stream in which one data line is broken JSON.
    pub fn malformed_stream_events(self, c: &Completion<'_>) -> Vec<String> {
        let broken = |v: &Value| {
            let s = v.to_string();
            let cut = floor_boundary(&s, s.len() / 2);
            format!("{}<<llm-stub malformed", &s[..cut])
        };
        let first = split_pieces(c.text)
            .first()
            .copied()
            .unwrap_or("broken")
            .to_string();
        match self {
            Protocol::OpenAi => vec![
                sse_data(&self.openai_chunk(c, json!({"role": "assistant", "content": ""}), None)),
                format!(
                    "data: {}\n\n",
                    broken(&self.openai_chunk(c, json!({ "content": first }), None))
                ),
                sse_data(&self.openai_chunk(c, json!({}), Some("stop"))),
                "data: [DONE]\n\n".to_string(),
            ],
            Protocol::Ollama => vec![
                format!("{}\n", broken(&self.ollama_piece(c, &first))),
                ndjson(&self.ollama_done(c)),
            ],
            Protocol::Anthropic => vec![
                sse_event("message_start", &self.anthropic_start(c)),
                sse_event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
                format!(
                    "event: content_block_delta\ndata: {}\n\n",
                    broken(&anthropic_delta(&first))
                ),
                sse_event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": 0}),
                ),
                sse_event("message_delta", &self.anthropic_message_delta(c)),
                sse_event("message_stop", &json!({"type": "message_stop"})),
            ],
        }
    }

    fn openai_chunk(self, c: &Completion<'_>, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": format!("chatcmpl-stub-{}", c.seq),
            "object": "chat.completion.chunk",
            "created": unix_secs(),
            "model": c.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        })
    }

    fn ollama_piece(self, c: &Completion<'_>, piece: &str) -> Value {
        json!({
            "model": c.model,
            "created_at": rfc3339_now(),
            "message": {"role": "assistant", "content": piece},
            "done": false
        })
    }

    fn ollama_done(self, c: &Completion<'_>) -> Value {
        json!({
            "model": c.model,
            "created_at": rfc3339_now(),
            "message": {"role": "assistant", "content": ""},
            "done": true,
            "done_reason": self.finish_reason(c.truncated),
            "total_duration": c.elapsed_ns,
            "load_duration": 0,
            "prompt_eval_count": c.input_tokens,
            "prompt_eval_duration": 0,
            "eval_count": c.output_tokens,
            "eval_duration": c.elapsed_ns
        })
    }

    fn anthropic_start(self, c: &Completion<'_>) -> Value {
        json!({
            "type": "message_start",
            "message": {
                "id": format!("msg_stub_{}", c.seq),
                "type": "message",
                "role": "assistant",
                "model": c.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": c.input_tokens, "output_tokens": 1}
            }
        })
    }

    fn anthropic_message_delta(self, c: &Completion<'_>) -> Value {
        json!({
            "type": "message_delta",
            "delta": {"stop_reason": self.finish_reason(c.truncated), "stop_sequence": null},
            "usage": {"output_tokens": c.output_tokens}
        })
    }
}

fn anthropic_delta(piece: &str) -> Value {
    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
}

fn sse_data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

fn sse_event(name: &str, v: &Value) -> String {
    format!("event: {name}\ndata: {v}\n\n")
}

fn ndjson(v: &Value) -> String {
    format!("{v}\n")
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        now.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn malformed_bodies_do_not_parse() {
        let c = Completion {
            seq: 1,
            model: "m",
            text: "hello world",
            input_tokens: 1,
            output_tokens: 2,
            truncated: false,
            elapsed_ns: 0,
        };
        for p in [Protocol::OpenAi, Protocol::Ollama, Protocol::Anthropic] {
            assert!(serde_json::from_str::<Value>(&p.malformed_body(&c)).is_err());
            assert!(serde_json::from_str::<Value>(&p.body(&c)).is_ok());
        }
    }
}
