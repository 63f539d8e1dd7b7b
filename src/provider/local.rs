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
    // Tools: the model answers `{"tool": ..., "arguments": ...}` or `{"answer": ...}`, decoded
    // under a schema that admits exactly those, so every call it makes parses.
    let tool_schema = tool_turn_schema(request);
    let mut messages: Vec<super_local::ChatMessage> =
        request.messages.iter().map(chat_message).collect();
    if tool_schema.is_some() {
        let guide = tool_guide(request);
        match messages.iter_mut().find(|m| m.role == "system") {
            Some(system) => {
                system.content.push_str("\n\n");
                system.content.push_str(&guide);
            }
            None => messages.insert(0, super_local::ChatMessage::system(guide)),
        }
    }
    let schema = tool_schema
        .as_ref()
        .or(request.response_format.as_ref().map(|f| &f.schema));
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
    let generation = match schema {
        // Constrained decoding: every token keeps the reply a valid document's prefix.
        Some(schema) => {
            let key = schema.to_string();
            let cached = constraints
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(&key)
                .cloned();
            let constraint = match cached {
                Some(constraint) => constraint,
                None => {
                    let constraint = engine.compile_constraint(schema).map_err(local_error)?;
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
    let usage = Usage {
        input_tokens: generation.prompt_tokens as u64,
        output_tokens: generation.completion_tokens as u64,
    };
    let mut response = match tool_schema {
        Some(_) => tool_turn_response(&generation.text, usage)?,
        None => ChatResponse::text(generation.text, usage),
    };
    if response.finish_reason.as_deref() != Some("tool_calls") {
        response.finish_reason = Some(format!("{:?}", generation.stop).to_lowercase());
    }
    response.model = Some(super_local::DEFAULT_MODEL_NAME.to_string());
    Ok(response)
}

/// The schema of one turn with tools: a call of one of the offered tools (its name as a
/// constant, its arguments' schema) or the final answer (the task's own schema when it has
/// one, else a string). `None` when no tool may be called.
#[cfg(feature = "local")]
fn tool_turn_schema(request: &ChatRequest) -> Option<serde_json::Value> {
    use super::types::ToolChoice;
    use serde_json::json;
    if request.tools.is_empty() {
        return None;
    }
    let answer = request
        .response_format
        .as_ref()
        .map(|f| f.schema.clone())
        .unwrap_or_else(|| json!({"type": "string"}));
    let answer =
        json!({"type": "object", "properties": {"answer": answer}, "required": ["answer"]});
    if request.tool_choice == ToolChoice::None {
        // Tools are off for this turn (the loop's limit): only the answer may come.
        return Some(answer);
    }
    let mut branches: Vec<serde_json::Value> = request
        .tools
        .iter()
        .filter(|t| match &request.tool_choice {
            ToolChoice::Tool(name) => &t.name == name,
            _ => true,
        })
        .map(|t| {
            json!({
                "type": "object",
                "properties": {"tool": {"const": t.name}, "arguments": arguments_schema(&t.parameters)},
                "required": ["tool", "arguments"],
            })
        })
        .collect();
    if !matches!(
        request.tool_choice,
        ToolChoice::Required | ToolChoice::Tool(_)
    ) {
        branches.push(answer);
    }
    Some(json!({ "anyOf": branches }))
}

/// A tool's argument schema within what constrained decoding supports: as it is when it fits,
/// else reduced to its supported keywords (a `pattern` or `format` is dropped: the tool still
/// checks its own arguments), else any object.
#[cfg(feature = "local")]
fn arguments_schema(parameters: &serde_json::Value) -> serde_json::Value {
    if super_local::JsonConstraint::check(parameters).is_ok() {
        return parameters.clone();
    }
    let reduced = reduce_schema(parameters);
    if super_local::JsonConstraint::check(&reduced).is_ok() {
        reduced
    } else {
        serde_json::json!({"type": "object"})
    }
}

#[cfg(feature = "local")]
fn reduce_schema(schema: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const KEPT: &[&str] = &[
        "type",
        "properties",
        "required",
        "items",
        "enum",
        "const",
        "anyOf",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "description",
    ];
    let Value::Object(map) = schema else {
        return serde_json::json!({"type": "string"});
    };
    let mut out = serde_json::Map::new();
    for (key, value) in map {
        if !KEPT.contains(&key.as_str()) {
            continue;
        }
        let value = match (key.as_str(), value) {
            ("properties", Value::Object(props)) => Value::Object(
                props
                    .iter()
                    .map(|(k, v)| (k.clone(), reduce_schema(v)))
                    .collect(),
            ),
            ("items", v) => reduce_schema(v),
            ("anyOf", Value::Array(branches)) => {
                Value::Array(branches.iter().map(reduce_schema).collect())
            }
            (_, v) => v.clone(),
        };
        out.insert(key.clone(), value);
    }
    let typed = ["type", "enum", "const", "anyOf"]
        .iter()
        .any(|k| out.contains_key(*k));
    if !typed {
        let kind = if out.contains_key("properties") {
            "object"
        } else {
            "string"
        };
        out.insert("type".into(), kind.into());
    }
    Value::Object(out)
}

/// What the model is told about its tools (the chat template has no tool turns).
#[cfg(feature = "local")]
fn tool_guide(request: &ChatRequest) -> String {
    let mut guide = String::from(
        "You can use tools. To call one, reply with only {\"tool\": NAME, \"arguments\": {...}}; the result comes back in the next message. When you are done, reply with only {\"answer\": YOUR ANSWER}.\nTools:",
    );
    for tool in &request.tools {
        guide.push_str(&format!(
            "\n- {}: {} Arguments: {}",
            tool.name,
            tool.description.trim(),
            tool.parameters
        ));
    }
    guide
}

/// A constrained tool turn as a response: a tool call, or the answer as the text.
#[cfg(feature = "local")]
fn tool_turn_response(text: &str, usage: Usage) -> Result<ChatResponse, ProviderError> {
    let value: serde_json::Value = serde_json::from_str(text.trim()).map_err(|e| {
        ProviderError::new(
            ErrorKind::Malformed,
            format!("the embedded model's tool turn is not JSON: {e}"),
        )
    })?;
    if let Some(name) = value.get("tool").and_then(|t| t.as_str()) {
        let mut response = ChatResponse::text(String::new(), usage);
        response.tool_calls.push(super::types::ToolCall {
            id: format!("call_{}", usage.input_tokens),
            name: name.to_string(),
            arguments: value.get("arguments").cloned().unwrap_or_default(),
        });
        response.finish_reason = Some("tool_calls".into());
        return Ok(response);
    }
    let answer = match value.get("answer") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => text.to_string(),
    };
    Ok(ChatResponse::text(answer, usage))
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
            "The tool `{}` returned:\n{}\nUse this result: give your answer as {{\"answer\": ...}}, or call another tool.",
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

#[cfg(all(test, feature = "local"))]
mod tests {
    use super::*;
    use crate::provider::types::{ToolChoice, ToolDefinition};
    use serde_json::json;

    fn request(choice: ToolChoice) -> ChatRequest {
        let mut request = ChatRequest::new("m", "s", "u");
        request.tools = vec![
            ToolDefinition {
                name: "calculator".into(),
                description: "Arithmetic.".into(),
                parameters: json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
            },
            ToolDefinition {
                name: "fetch".into(),
                description: "An MCP tool with keywords decoding does not support.".into(),
                parameters: json!({"type": "object", "properties": {"url": {"type": "string", "format": "uri", "pattern": "^https"}, "headers": {"type": "object", "default": {}}}, "required": ["url"], "$schema": "x"}),
            },
        ];
        request.tool_choice = choice;
        request
    }

    #[test]
    fn a_tool_turn_admits_each_tool_or_the_answer_and_compiles() {
        let schema = tool_turn_schema(&request(ToolChoice::Auto)).expect("tools");
        let branches = schema["anyOf"].as_array().expect("anyOf");
        assert_eq!(branches.len(), 3);
        assert_eq!(branches[0]["properties"]["tool"]["const"], "calculator");
        assert_eq!(
            branches[1]["properties"]["arguments"]["properties"]["url"],
            json!({"type": "string"})
        );
        assert_eq!(branches[2]["required"], json!(["answer"]));
        super_local::JsonConstraint::check(&schema).unwrap_or_else(|e| panic!("{e}"));

        let none = tool_turn_schema(&request(ToolChoice::None)).expect("answer only");
        assert_eq!(none["required"], json!(["answer"]));
        let forced = tool_turn_schema(&request(ToolChoice::Tool("fetch".into()))).expect("one");
        assert_eq!(forced["anyOf"].as_array().map(Vec::len), Some(1));
        assert!(tool_turn_schema(&ChatRequest::new("m", "s", "u")).is_none());
    }

    #[test]
    fn a_decoded_turn_becomes_a_tool_call_or_the_answer() {
        let usage = Usage::default();
        let call = tool_turn_response(
            r#"{"tool": "calculator", "arguments": {"expression": "2*3"}}"#,
            usage,
        )
        .expect("a call");
        assert_eq!(call.tool_calls[0].name, "calculator");
        assert_eq!(call.tool_calls[0].arguments, json!({"expression": "2*3"}));
        assert!(call.text.is_empty());
        let answer = tool_turn_response(r#"{"answer": "6"}"#, usage).expect("an answer");
        assert!(answer.tool_calls.is_empty());
        assert_eq!(answer.text, "6");
        let object = tool_turn_response(r#"{"answer": {"n": 6}}"#, usage).expect("an object");
        assert_eq!(object.text, r#"{"n":6}"#);
    }
}

/// The real model under a forced tool call: whatever it prefers, the constrained turn is a call
/// of the offered tool whose arguments parse and fit the tool's schema.
#[cfg(all(test, feature = "local"))]
mod model_tests {
    use super::*;
    use crate::provider::types::{ToolChoice, ToolDefinition};

    #[tokio::test]
    async fn a_forced_tool_call_of_the_real_model_parses() {
        if let Some(why) = unavailable_reason() {
            let why = format!("{why} (scripts/fetch-model.sh)");
            assert!(
                std::env::var_os("CI").is_none_or(|v| v.is_empty()),
                "{why}, and CI is set"
            );
            eprintln!("SKIPPED: {why}");
            return;
        }
        let mut request = ChatRequest::new(
            "smollm2-135m-instruct",
            "You compute with tools.",
            "What is 17 times 23?",
        );
        request.tools = vec![ToolDefinition {
            name: "calculator".into(),
            description: "Evaluates an arithmetic expression.".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"expression": {"type": "string", "maxLength": 40}}, "required": ["expression"]}),
        }];
        request.tool_choice = ToolChoice::Required;
        request.sampling.max_tokens = Some(80);
        let sink = |_: &str| {};
        let engine = LocalEngine::default();
        let response = engine
            .complete(
                &request,
                CallContext {
                    task: "t",
                    on_token: &sink,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.tool_calls.len(), 1, "{response:?}");
        assert_eq!(response.tool_calls[0].name, "calculator");
        assert!(
            response.tool_calls[0].arguments["expression"].is_string(),
            "{response:?}"
        );
    }
}
