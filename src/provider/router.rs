//! `Providers`: the adapter for each endpoint of a run, built once per endpoint and shared by
//! its tasks (one HTTP client for the whole run), wrapped for `--record` or replaced for
//! `--replay`.

use super::anthropic::Anthropic;
use super::chat::ChatProvider;
use super::endpoint::{Endpoint, Protocol};
use super::http::HttpTransport;
use super::local::LocalEngine;
use super::ollama::Ollama;
use super::openai::OpenAi;
use super::record::{RecordFile, Recorder, Replay, Replayer};
use crate::redact::Redactor;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where calls go.
pub enum CallMode {
    /// To the providers.
    Live,
    /// To the providers, and every call appended to a recording.
    Record(Arc<RecordFile>),
    /// Nowhere: every call is answered from a recording.
    Replay(Arc<Replayer>),
}

pub struct Providers {
    transport: HttpTransport,
    local: LocalEngine,
    mode: CallMode,
    redactor: Arc<Redactor>,
    built: Mutex<HashMap<Endpoint, Arc<dyn ChatProvider>>>,
}

/// Hides the run's secrets in every reply and error a provider gives (a server may echo a key
/// back): the text, the tool calls' arguments and the error messages; and adds what to do to
/// the common failures (`hints`).
struct Redacting {
    inner: Arc<dyn ChatProvider>,
    redactor: Arc<Redactor>,
    endpoint: Endpoint,
    /// For a model listing after a 404 (none when replaying).
    transport: Option<HttpTransport>,
}

impl ChatProvider for Redacting {
    fn complete<'a>(
        &'a self,
        request: &'a super::ChatRequest,
        call: super::CallContext<'a>,
    ) -> futures::future::BoxFuture<'a, Result<super::ChatResponse, super::ProviderError>> {
        Box::pin(async move {
            match self.inner.complete(request, call).await {
                Ok(mut response) => {
                    // A key the model repeats never reaches a file, and never reaches a tool
                    // (a prompt-injected model cannot hand it to `http_get`).
                    if let std::borrow::Cow::Owned(clean) = self.redactor.redact(&response.text) {
                        response.text = clean;
                    }
                    for tool_call in &mut response.tool_calls {
                        self.redactor.redact_json(&mut tool_call.arguments);
                    }
                    Ok(response)
                }
                Err(mut error) => {
                    super::hints::explain(
                        &mut error,
                        &self.endpoint,
                        &request.model,
                        self.transport.as_ref(),
                    )
                    .await;
                    if let std::borrow::Cow::Owned(clean) = self.redactor.redact(&error.message) {
                        error.message = clean;
                    }
                    Err(error)
                }
            }
        })
    }
}

impl Providers {
    pub fn new(
        mode: CallMode,
        max_reply_bytes: usize,
        redactor: Redactor,
    ) -> Result<Providers, String> {
        Ok(Providers {
            transport: HttpTransport::new(max_reply_bytes)?,
            local: LocalEngine::default(),
            mode,
            redactor: Arc::new(redactor),
            built: Mutex::new(HashMap::new()),
        })
    }

    /// The provider for an endpoint, built on first use.
    pub fn for_endpoint(&self, endpoint: &Endpoint) -> Arc<dyn ChatProvider> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(provider) = built.get(endpoint) {
            return Arc::clone(provider);
        }
        tracing::debug!(
            provider = %endpoint.provider,
            protocol = ?endpoint.protocol,
            base_url = %crate::redact::redact_urls(&endpoint.base_url),
            "provider selected for an endpoint"
        );
        let live: Arc<dyn ChatProvider> = match endpoint.protocol {
            Protocol::Local => Arc::new(self.local.clone()),
            Protocol::OpenAi => Arc::new(OpenAi::new(self.transport.clone(), endpoint.clone())),
            Protocol::Ollama => Arc::new(Ollama::new(self.transport.clone(), endpoint.clone())),
            Protocol::Anthropic => {
                Arc::new(Anthropic::new(self.transport.clone(), endpoint.clone()))
            }
        };
        let provider: Arc<dyn ChatProvider> = match &self.mode {
            CallMode::Live => live,
            CallMode::Record(file) => {
                Arc::new(Recorder::new(live, &endpoint.provider, Arc::clone(file)))
            }
            CallMode::Replay(replayer) => {
                Arc::new(Replay::new(Arc::clone(replayer), &endpoint.provider))
            }
        };
        let provider: Arc<dyn ChatProvider> = Arc::new(Redacting {
            inner: provider,
            redactor: Arc::clone(&self.redactor),
            endpoint: endpoint.clone(),
            transport: match self.mode {
                CallMode::Replay(_) => None,
                _ => Some(self.transport.clone()),
            },
        });
        built.insert(endpoint.clone(), Arc::clone(&provider));
        provider
    }
}
