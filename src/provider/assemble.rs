//! Assembling one response from streamed pieces, shared by the HTTP adapters: text deltas,
//! tool calls whose arguments arrive in fragments (keyed by the protocol's index), usage and
//! the finish reason. A reply with neither text nor a tool call is an error, and servers that
//! report no usage get an estimate.

use super::http::estimate_tokens;
use super::types::{
    ChatRequest, ChatResponse, ErrorKind, ProviderError, TokenSink, ToolCall, Usage,
};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
    /// Arguments that arrived already parsed (Ollama sends objects).
    parsed: Option<serde_json::Value>,
}

#[derive(Debug, Default)]
pub struct Assembler {
    text: String,
    calls: BTreeMap<usize, PartialCall>,
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub model: Option<String>,
    /// The protocol's end of message was seen.
    pub done: bool,
}

impl Assembler {
    pub fn text(&mut self, piece: &str, on_token: TokenSink<'_>) {
        if !piece.is_empty() {
            self.text.push_str(piece);
            on_token(piece);
        }
    }

    /// A call starts (or, for protocols that repeat them, its id or name arrives).
    pub fn call(&mut self, index: usize, id: Option<&str>, name: Option<&str>) {
        let call = self.calls.entry(index).or_default();
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            call.id = id.to_string();
        }
        if let Some(name) = name.filter(|s| !s.is_empty()) {
            call.name.push_str(name);
        }
    }

    pub fn call_arguments(&mut self, index: usize, fragment: &str) {
        self.calls
            .entry(index)
            .or_default()
            .arguments
            .push_str(fragment);
    }

    pub fn call_parsed(&mut self, index: usize, arguments: serde_json::Value) {
        self.calls.entry(index).or_default().parsed = Some(arguments);
    }

    pub fn finish(self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_iter()
            .map(|(index, call)| {
                let arguments = match call.parsed {
                    Some(value) => value,
                    None if call.arguments.trim().is_empty() => {
                        serde_json::Value::Object(Default::default())
                    }
                    // Arguments that are not JSON are kept as text: the executor tells the model.
                    None => serde_json::from_str(&call.arguments)
                        .unwrap_or(serde_json::Value::String(call.arguments)),
                };
                ToolCall {
                    id: if call.id.is_empty() {
                        format!("call_{index}")
                    } else {
                        call.id
                    },
                    name: call.name,
                    arguments,
                }
            })
            .collect();
        if self.text.trim().is_empty() && tool_calls.is_empty() {
            return Err(ProviderError::new(
                ErrorKind::Empty,
                format!(
                    "the model returned an empty reply (finish reason: {})",
                    self.finish_reason.as_deref().unwrap_or("none")
                ),
            ));
        }
        let usage = self
            .usage
            .filter(|u| u.total() > 0)
            .unwrap_or_else(|| Usage {
                input_tokens: request.estimated_input_tokens(),
                output_tokens: estimate_tokens(&self.text),
            });
        Ok(ChatResponse {
            text: self.text,
            tool_calls,
            usage,
            finish_reason: self.finish_reason,
            model: self.model,
            note: None,
            rate: Default::default(),
        })
    }
}
