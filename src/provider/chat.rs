//! The provider seam: `ChatProvider`, one async call from a canonical `ChatRequest` to a
//! `ChatResponse` or a `ProviderError`. Adapters (OpenAI-compatible, Ollama, Anthropic, the
//! embedded model) and wrappers (record, replay, the scripted fake of the tests) all implement
//! it; nothing outside `provider/` matches on a protocol.

use super::types::{ChatRequest, ChatResponse, ProviderError, TokenSink};
use futures::future::BoxFuture;

/// What the caller tells a provider about the call beside the request.
#[derive(Clone, Copy)]
pub struct CallContext<'a> {
    /// The task making the call (recordings and replays are grouped by it).
    pub task: &'a str,
    /// Streamed text, as it arrives.
    pub on_token: TokenSink<'a>,
}

pub trait ChatProvider: Send + Sync {
    /// One call. Dropping the future cancels it (the connection closes, the embedded model
    /// stops at the next token).
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        call: CallContext<'a>,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>>;
}
