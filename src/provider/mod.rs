//! Providers: the `ChatProvider` seam, one canonical request and response, adapters for the
//! OpenAI-compatible, Ollama and Anthropic protocols and for the embedded model, and the
//! record / replay / scripted wrappers. Never touches the workspace.

pub mod anthropic;
pub mod assemble;
pub mod chat;
pub mod endpoint;
pub mod headers;
pub(crate) mod hints;
pub mod http;
pub mod local;
pub mod ollama;
pub mod openai;
pub mod record;
pub mod router;
#[cfg(test)]
pub mod scripted;
pub mod types;

pub use chat::{CallContext, ChatProvider};
pub use endpoint::{resolve, Endpoint, ModelChoice, ModelOverrides, Protocol, ResolveError};
pub use router::{CallMode, Providers};
pub use types::{
    ChatRequest, ChatResponse, ErrorKind, Message, ProviderError, RateHints, ResponseFormat, Role,
    Sampling, ToolChoice, ToolDefinition, Usage,
};
