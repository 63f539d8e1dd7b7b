//! The embedded model as a provider: loaded once per process on first use, run on a blocking
//! thread, streaming tokens back over a channel. Dropping the call (a timeout, Ctrl-C) raises a
//! cancel flag that the generation loop checks after every token.

use super::chat::{CallContext, ChatProvider};
use super::types::{ChatRequest, ChatResponse, ErrorKind, ProviderError, TokenSink};
#[cfg(feature = "local")]
use super::types::{Role, Usage};
use futures::future::BoxFuture;
use std::path::PathBuf;
#[cfg(feature = "local")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct LocalEngine {
    #[cfg(feature = "local")]
    model: Arc<Mutex<Option<super_local::LocalModel>>>,
    #[cfg(not(feature = "local"))]
    model: Arc<Mutex<Option<()>>>,
    /// Compiled JSON Schema constraints, by schema text (masks are cached inside each).
    #[cfg(feature = "local")]
    constraints: Arc<Mutex<Constraints>>,
}

#[cfg(feature = "local")]
type Constraints = std::collections::HashMap<String, Arc<super_local::JsonConstraint>>;

/// Raises the cancel flag when the call is dropped before it ends.
#[cfg(feature = "local")]
struct CancelOnDrop(Arc<AtomicBool>);

#[cfg(feature = "local")]
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The model file a run would use.
pub fn model_path() -> PathBuf {
    #[cfg(feature = "local")]
    {
        super_local::default_model_path()
    }
    #[cfg(not(feature = "local"))]
    {
        PathBuf::from("(built without the `local` feature)")
    }
}

/// Why the local model cannot run here, if it cannot.
pub fn unavailable_reason() -> Option<String> {
    if !cfg!(feature = "local") {
        return Some(
            "this build of `super` has no embedded model (built without the `local` feature)"
                .into(),
        );
    }
    let path = model_path();
    (!path.is_file()).then(|| {
        format!(
            "the embedded model is not downloaded: `{}` does not exist",
            path.display()
        )
    })
}

impl ChatProvider for LocalEngine {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        call: CallContext<'a>,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(self.generate(request, call.on_token))
    }
}

impl LocalEngine {
    async fn generate(
        &self,
        request: &ChatRequest,
        on_token: TokenSink<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        #[cfg(not(feature = "local"))]
        {
            let _ = (request, on_token, &self.model);
            Err(ProviderError::new(
                ErrorKind::Local,
                "this build of `super` has no embedded model",
            ))
        }
        #[cfg(feature = "local")]
        {
            let cancel = Arc::new(AtomicBool::new(false));
            let _guard = CancelOnDrop(Arc::clone(&cancel));
            let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
            let model = Arc::clone(&self.model);
            let constraints = Arc::clone(&self.constraints);
            let request = request.clone();
            let flag = Arc::clone(&cancel);
            let job = tokio::task::spawn_blocking(move || {
                generate(&model, &constraints, &request, &flag, &sender)
            });
            // The sender lives in the job: the channel closes when generation ends. Dropping
            // this future (a timeout, Ctrl-C) raises `cancel`, checked after every token.
            while let Some(piece) = receiver.recv().await {
                on_token(&piece);
            }
            job.await.map_err(|e| {
                ProviderError::new(ErrorKind::Local, format!("the embedded model stopped: {e}"))
            })?
        }
    }
}

/// The 135M model loops under greedy decoding without a mild repeat penalty.
#[cfg(feature = "local")]
const REPEAT_PENALTY: f32 = 1.15;

#[cfg(feature = "local")]
fn generate(
    model: &Mutex<Option<super_local::LocalModel>>,
    constraints: &Mutex<Constraints>,
    request: &ChatRequest,
    cancel: &AtomicBool,
    sender: &tokio::sync::mpsc::UnboundedSender<String>,
) -> Result<ChatResponse, ProviderError> {
    use std::ops::ControlFlow;
    let mut slot = model
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if slot.is_none() {
        let path = super_local::default_model_path();
        let mut loaded = super_local::LocalModel::load(&path)
            .map_err(|e| ProviderError::new(ErrorKind::Local, e.to_string()))?;
        // For benchmarks and tests: generate exactly `max_tokens`, ignoring the end token.
        loaded.set_stop_on_eos(std::env::var_os("SUPER_LOCAL_IGNORE_EOS").is_none());
        *slot = Some(loaded);
    }
    let Some(engine) = slot.as_mut() else {
        return Err(ProviderError::new(
            ErrorKind::Local,
            "the embedded model failed to load",
        ));
    };
    let messages: Vec<super_local::ChatMessage> =
        request.messages.iter().map(chat_message).collect();
    let params = super_local::GenerateParams {
        max_tokens: request.sampling.max_tokens.unwrap_or(256) as usize,
        temperature: request.sampling.temperature.unwrap_or(0.0),
        top_p: request.sampling.top_p,
        seed: request.sampling.seed.unwrap_or(0),
        repeat_penalty: REPEAT_PENALTY,
    };
    let mut on_piece = |piece: &str| {
        if cancel.load(Ordering::Relaxed) {
            return ControlFlow::Break(());
        }
        let _ = sender.send(piece.to_string());
        ControlFlow::Continue(())
    };
    let local_error =
        |e: super_local::LocalError| ProviderError::new(ErrorKind::Local, e.to_string());
    let generation = match &request.response_format {
        // Constrained decoding: every token keeps the reply a valid document's prefix.
        Some(format) => {
            let key = format.schema.to_string();
            let cached = constraints
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(&key)
                .cloned();
            let constraint = match cached {
                Some(constraint) => constraint,
                None => {
                    let constraint = engine
                        .compile_constraint(&format.schema)
                        .map_err(local_error)?;
                    constraints
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .insert(key, Arc::clone(&constraint));
                    constraint
                }
            };
            engine.generate_json(&messages, &params, &constraint, &mut on_piece)
        }
        None => engine.generate(&messages, &params, &mut on_piece),
    }
    .map_err(local_error)?;
    if cancel.load(Ordering::Relaxed) {
        return Err(ProviderError::new(
            ErrorKind::Timeout,
            "generation was cancelled",
        ));
    }
    if generation.text.trim().is_empty() {
        return Err(ProviderError::new(
            ErrorKind::Empty,
            "the embedded model returned an empty reply",
        ));
    }
    let mut response = ChatResponse::text(
        generation.text,
        Usage {
            input_tokens: generation.prompt_tokens as u64,
            output_tokens: generation.completion_tokens as u64,
        },
    );
    response.finish_reason = Some(format!("{:?}", generation.stop).to_lowercase());
    response.model = Some(super_local::DEFAULT_MODEL_NAME.to_string());
    Ok(response)
}

/// The chat template knows system, user and assistant turns: tool calls are written into the
/// assistant's text and tool results become user turns.
#[cfg(feature = "local")]
fn chat_message(message: &super::types::Message) -> super_local::ChatMessage {
    match message.role {
        Role::System => super_local::ChatMessage::system(&message.content),
        Role::User => super_local::ChatMessage::user(&message.content),
        Role::Assistant => {
            let mut content = message.content.clone();
            for call in &message.tool_calls {
                if !content.is_empty() {
                    content.push('\n');
                }
                content.push_str(
                    &serde_json::json!({"tool": call.name, "arguments": call.arguments})
                        .to_string(),
                );
            }
            super_local::ChatMessage {
                role: "assistant".into(),
                content,
            }
        }
        Role::Tool => super_local::ChatMessage::user(format!(
            "Result of the tool `{}`:\n{}",
            message.name.as_deref().unwrap_or("tool"),
            message.content
        )),
    }
}

/// Counts prompts with the embedded model's tokenizer and chat template, read from the GGUF's
/// metadata only (no weights), for dry-run estimates.
pub struct PromptCounter {
    #[cfg(feature = "local")]
    counter: super_local::PromptCounter,
}

impl PromptCounter {
    /// `None` when the model file is absent or this build has no embedded model.
    pub fn load() -> Option<PromptCounter> {
        #[cfg(feature = "local")]
        {
            super_local::PromptCounter::from_gguf_file(&super_local::default_model_path())
                .ok()
                .map(|counter| PromptCounter { counter })
        }
        #[cfg(not(feature = "local"))]
        {
            None
        }
    }

    pub fn count(&self, request: &ChatRequest) -> Option<u64> {
        #[cfg(feature = "local")]
        {
            let messages: Vec<super_local::ChatMessage> =
                request.messages.iter().map(chat_message).collect();
            self.counter.count(&messages).ok().map(|n| n as u64)
        }
        #[cfg(not(feature = "local"))]
        {
            let _ = request;
            None
        }
    }
}
