//! The canonical request, response, usage and error every provider adapter speaks: a whole
//! conversation (system, user, assistant and tool messages), tool definitions and tool calls,
//! a requested response format (a JSON Schema) and the sampling parameters. Wire formats stay
//! private to the adapters.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// A tool the model asked to call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as a JSON value (an object when the model behaved).
    pub arguments: serde_json::Value,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// Calls the assistant made in this message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool result: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a tool result: the tool's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    fn plain(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }

    pub fn system(content: impl Into<String>) -> Message {
        Message::plain(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message::plain(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Message {
        Message {
            tool_calls,
            ..Message::plain(Role::Assistant, content)
        }
    }

    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Message {
        Message {
            tool_call_id: Some(call.id.clone()),
            name: Some(call.name.clone()),
            ..Message::plain(Role::Tool, content)
        }
    }
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// The arguments' JSON Schema.
    pub parameters: serde_json::Value,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    #[default]
    Auto,
    None,
    Required,
    Tool(String),
}

/// A reply that must be JSON valid for this schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFormat {
    pub name: String,
    pub schema: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    #[serde(default, skip_serializing_if = "is_auto")]
    pub tool_choice: ToolChoice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    #[serde(flatten)]
    pub sampling: Sampling,
}

fn is_auto(choice: &ToolChoice) -> bool {
    *choice == ToolChoice::Auto
}

impl ChatRequest {
    /// A one-turn conversation: a system and a user message.
    pub fn new(
        model: impl Into<String>,
        system: impl Into<String>,
        user: impl Into<String>,
    ) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages: vec![Message::system(system), Message::user(user)],
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            response_format: None,
            sampling: Sampling::default(),
        }
    }

    /// Every non-system message's text, for estimates.
    pub fn conversation_text_len(&self) -> usize {
        self.messages
            .iter()
            .map(|m| {
                m.content.len()
                    + m.tool_calls
                        .iter()
                        .map(|c| c.name.len() + c.arguments.to_string().len())
                        .sum::<usize>()
            })
            .sum()
    }

    /// About four characters a token, for budgets and rate limits before the call.
    pub fn estimated_input_tokens(&self) -> u64 {
        let tools: usize = self
            .tools
            .iter()
            .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
            .sum();
        ((self.conversation_text_len() + tools) as u64).div_ceil(4)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// What the provider said about its rate limits, from `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHints {
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_requests: Option<Duration>,
    pub reset_tokens: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// The model the server says answered, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// What the adapter changed about the request to get an answer (a server that refused
    /// `json_schema` was asked for `json_object`), for the call's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip)]
    pub rate: RateHints,
}

impl ChatResponse {
    pub fn text(text: impl Into<String>, usage: Usage) -> ChatResponse {
        ChatResponse {
            text: text.into(),
            tool_calls: Vec::new(),
            usage,
            finish_reason: Some("stop".into()),
            model: None,
            note: None,
            rate: RateHints::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The server answered with an error status.
    Status(u16),
    /// No connection could be made, or it broke before a reply.
    Connect,
    /// The attempt ran past its deadline.
    Timeout,
    /// The body could not be parsed.
    Malformed,
    /// The body ended early.
    Truncated,
    /// A reply with no text.
    Empty,
    /// A reply that is not JSON valid for the requested schema, even after a repair call.
    InvalidOutput,
    /// A reply larger than the cap.
    TooLarge,
    /// The embedded model failed.
    Local,
    /// A replayed run has no recording for this request.
    NotRecorded,
    /// A file the call needed could not be written (the recording).
    Io,
}

/// A failed call, as data: what went wrong, whether it is worth another try, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub message: String,
    retry_after: Option<Duration>,
    pub rate: RateHints,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError {
            kind,
            message: message.into(),
            retry_after: None,
            rate: RateHints::default(),
        }
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> ProviderError {
        self.retry_after = retry_after;
        self
    }

    /// How long the server asked us to wait before the next try, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// 429, 5xx, 408, connection errors, timeouts and broken bodies are worth another try;
    /// 400, 401, 403, 404, empty or oversized replies are not.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Status(code) => code == 429 || code == 408 || code == 409 || code >= 500,
            ErrorKind::Connect
            | ErrorKind::Timeout
            | ErrorKind::Malformed
            | ErrorKind::Truncated
            | ErrorKind::InvalidOutput => true,
            ErrorKind::Empty
            | ErrorKind::TooLarge
            | ErrorKind::Local
            | ErrorKind::NotRecorded
            | ErrorKind::Io => false,
        }
    }

    /// The HTTP status, when the server sent one.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Status(code) => Some(code),
            _ => None,
        }
    }
}

impl ErrorKind {
    /// A short code for records: `http_status`, `timeout`, `invalid_output`, ...
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::Status(_) => "http_status",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Truncated => "truncated",
            ErrorKind::Empty => "empty",
            ErrorKind::InvalidOutput => "invalid_output",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Local => "local",
            ErrorKind::NotRecorded => "not_recorded",
            ErrorKind::Io => "io",
        }
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            ErrorKind::Status(code) => write!(f, "HTTP {code}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Receives streamed text as it arrives.
pub type TokenSink<'a> = &'a (dyn Fn(&str) + Send + Sync);
