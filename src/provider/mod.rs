//! Providers: one canonical request and response, adapters for the OpenAI-compatible, Ollama
//! and Anthropic protocols and for the embedded model. Errors are data (`ProviderError`) with
//! `is_retryable()` and `retry_after`. Never touches the workspace.

pub mod endpoint;
pub mod http;
pub mod local;
pub mod types;

pub use endpoint::{
    resolve, Endpoint, ModelChoice, ModelOverrides, Protocol, ResolveError, Secret,
};
pub use types::{ChatRequest, ChatResponse, ErrorKind, ProviderError, RateHints, TokenSink, Usage};

/// Every provider a run may call, built once per run.
#[derive(Clone)]
pub struct Providers {
    http: http::HttpClient,
    local: local::LocalEngine,
}

impl Providers {
    pub fn new() -> Result<Providers, String> {
        Ok(Providers {
            http: http::HttpClient::new()?,
            local: local::LocalEngine::default(),
        })
    }

    pub async fn complete(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
        on_token: TokenSink<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        match endpoint.protocol {
            Protocol::Local => self.local.complete(request, on_token).await,
            _ => self.http.complete(endpoint, request, on_token).await,
        }
    }
}
