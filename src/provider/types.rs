//! The canonical request, response, usage and error every provider adapter speaks. Wire
//! formats stay private to the adapters.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatResponse {
    pub text: String,
    pub usage: Usage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(skip)]
    pub rate: RateHints,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
    /// The embedded model failed.
    Local,
    /// A replayed run has no recording for this request.
    NotRecorded,
    /// A budget forbids the call.
    Budget,
}

/// A failed call, as data: what went wrong, whether it is worth another try, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub message: String,
    pub retry_after: Option<Duration>,
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

    /// 429, 5xx, 408, connection errors, timeouts and broken bodies are worth another try;
    /// 400, 401, 403, 404 and empty replies are not.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Status(code) => code == 429 || code == 408 || code == 409 || code >= 500,
            ErrorKind::Connect
            | ErrorKind::Timeout
            | ErrorKind::Malformed
            | ErrorKind::Truncated => true,
            ErrorKind::Empty | ErrorKind::Local | ErrorKind::NotRecorded | ErrorKind::Budget => {
                false
            }
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
