//! The OpenAI chat-completions protocol (and every compatible server: vLLM, LM Studio,
//! llama.cpp, Groq, ...): private wire types, a streamed SSE reply with text and tool-call
//! deltas, `response_format: json_schema` for structured outputs.

use super::assemble::Assembler;
use super::chat::{CallContext, ChatProvider};
use super::endpoint::Endpoint;
use super::http::{self, Decoder, Framing, HttpTransport};
use super::types::{ChatRequest, ChatResponse, ProviderError, Role, TokenSink, ToolChoice, Usage};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireResponseFormat<'a>>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    /// A JSON string, as the protocol wants.
    arguments: String,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

#[derive(Serialize)]
struct WireResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    json_schema: Option<WireJsonSchema<'a>>,
}

#[derive(Serialize)]
struct WireJsonSchema<'a> {
    name: &'a str,
    schema: &'a serde_json::Value,
    strict: bool,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    /// A whole (non-streamed) reply.
    #[serde(default)]
    message: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<DeltaToolCall>,
}

#[derive(Deserialize)]
struct DeltaToolCall {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<DeltaFunction>,
}

#[derive(Deserialize)]
struct DeltaFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// How a response format is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonMode {
    /// `json_schema` with `strict: true`: the server constrains the reply to the schema.
    Schema,
    /// `json_object`: for servers that refuse `json_schema`.
    Object,
}

fn body(request: &ChatRequest, format: JsonMode) -> Request<'_> {
    let messages = request
        .messages
        .iter()
        .map(|m| WireMessage {
            role: m.role.as_str(),
            content: if m.role == Role::Assistant
                && m.content.is_empty()
                && !m.tool_calls.is_empty()
            {
                None
            } else {
                Some(m.content.as_str())
            },
            tool_calls: m
                .tool_calls
                .iter()
                .map(|c| WireToolCall {
                    id: &c.id,
                    kind: "function",
                    function: WireFunctionCall {
                        name: &c.name,
                        arguments: c.arguments.to_string(),
                    },
                })
                .collect(),
            tool_call_id: m.tool_call_id.as_deref(),
        })
        .collect();
    let tool_choice = match (&request.tool_choice, request.tools.is_empty()) {
        (_, true) | (ToolChoice::Auto, _) => None,
        (ToolChoice::None, _) => Some(serde_json::json!("none")),
        (ToolChoice::Required, _) => Some(serde_json::json!("required")),
        (ToolChoice::Tool(name), _) => {
            Some(serde_json::json!({"type": "function", "function": {"name": name}}))
        }
    };
    Request {
        model: &request.model,
        messages,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        temperature: request.sampling.temperature,
        max_tokens: request.sampling.max_tokens,
        top_p: request.sampling.top_p,
        seed: request.sampling.seed,
        tools: request
            .tools
            .iter()
            .map(|t| WireTool {
                kind: "function",
                function: WireFunction {
                    name: &t.name,
                    description: &t.description,
                    parameters: &t.parameters,
                },
            })
            .collect(),
        tool_choice,
        response_format: request.response_format.as_ref().map(|f| match format {
            JsonMode::Schema => WireResponseFormat {
                kind: "json_schema",
                json_schema: Some(WireJsonSchema {
                    name: &f.name,
                    schema: &f.schema,
                    strict: true,
                }),
            },
            // The schema is in the system prompt; the server only guarantees JSON.
            JsonMode::Object => WireResponseFormat {
                kind: "json_object",
                json_schema: None,
            },
        }),
    }
}

#[derive(Default)]
struct OpenAiDecoder {
    out: Assembler,
}

impl OpenAiDecoder {
    fn chunk(&mut self, chunk: Chunk, on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        if let Some(error) = http::error_in_body(chunk.error.as_ref()) {
            return Err(error);
        }
        if chunk.model.is_some() {
            self.out.model = chunk.model;
        }
        for choice in chunk.choices {
            if let Some(delta) = choice.delta.or(choice.message) {
                if let Some(text) = &delta.content {
                    self.out.text(text, on_token);
                }
                for (position, call) in delta.tool_calls.iter().enumerate() {
                    let index = call.index.unwrap_or(position);
                    let function = call.function.as_ref();
                    self.out.call(
                        index,
                        call.id.as_deref(),
                        function.and_then(|f| f.name.as_deref()),
                    );
                    if let Some(arguments) = function.and_then(|f| f.arguments.as_deref()) {
                        self.out.call_arguments(index, arguments);
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.out.finish_reason = Some(reason);
            }
        }
        if let Some(usage) = chunk.usage {
            self.out.usage = Some(Usage {
                input_tokens: usage.prompt_tokens.unwrap_or(0),
                output_tokens: usage.completion_tokens.unwrap_or(0),
            });
        }
        Ok(())
    }
}

impl Decoder for OpenAiDecoder {
    fn event(&mut self, data: &str, on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        if data.trim() == "[DONE]" {
            self.out.done = true;
            return Ok(());
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| http::malformed(data, &e))?;
        self.chunk(chunk, on_token)
    }

    fn whole(&mut self, body: &[u8], on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        let chunk: Chunk = serde_json::from_slice(body)
            .map_err(|e| http::malformed(&String::from_utf8_lossy(body), &e))?;
        self.chunk(chunk, on_token)?;
        self.out.done = true;
        Ok(())
    }

    fn take(&mut self) -> Assembler {
        std::mem::take(&mut self.out)
    }

    fn complete(&self) -> bool {
        // Servers that do not send `[DONE]` still end with a finish reason.
        self.out.done || self.out.finish_reason.is_some()
    }
}

pub struct OpenAi {
    transport: HttpTransport,
    endpoint: Endpoint,
    /// The server refused `json_schema` once: ask for `json_object` from then on.
    json_object_only: std::sync::atomic::AtomicBool,
}

/// The record's note for a structured call answered through `json_object`.
const JSON_OBJECT_NOTE: &str = "the server refused `response_format: json_schema`; asked for `json_object` with the schema in the prompt";

/// Whether a 400 is the server refusing `json_schema` (a vLLM without guided decoding, an
/// older API, a model without structured outputs).
fn refuses_json_schema(error: &ProviderError) -> bool {
    let message = error.message.to_ascii_lowercase();
    error.status() == Some(400)
        && (message.contains("response_format")
            || message.contains("json_schema")
            || message.contains("structured output"))
}

impl OpenAi {
    pub fn new(transport: HttpTransport, endpoint: Endpoint) -> OpenAi {
        OpenAi {
            transport,
            endpoint,
            json_object_only: Default::default(),
        }
    }

    async fn call(
        &self,
        request: &ChatRequest,
        on_token: TokenSink<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        use std::sync::atomic::Ordering;
        let structured = request.response_format.is_some();
        if structured && !self.json_object_only.load(Ordering::Relaxed) {
            match self.send(request, JsonMode::Schema, on_token).await {
                Err(error) if refuses_json_schema(&error) => {
                    self.json_object_only.store(true, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        let mut response = self.send(request, JsonMode::Object, on_token).await?;
        if structured {
            response.note = Some(JSON_OBJECT_NOTE.into());
        }
        Ok(response)
    }

    async fn send(
        &self,
        request: &ChatRequest,
        format: JsonMode,
        on_token: TokenSink<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        self.transport
            .exchange(
                &self.endpoint.url("/chat/completions"),
                http::credentials(&self.endpoint),
                &[],
                &body(request, format),
                Framing::Sse,
                &mut OpenAiDecoder::default(),
                "chat-completions",
                request,
                on_token,
            )
            .await
    }
}

impl ChatProvider for OpenAi {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        call: CallContext<'a>,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(self.call(request, call.on_token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::types::{Message, ToolCall, ToolDefinition};

    fn feed(decoder: &mut OpenAiDecoder, lines: &[&str]) -> Result<(), ProviderError> {
        let sink = |_: &str| {};
        for line in lines {
            decoder.event(line, &sink)?;
        }
        Ok(())
    }

    #[test]
    fn assembles_tool_call_deltas() {
        let mut decoder = OpenAiDecoder::default();
        feed(
            &mut decoder,
            &[
                r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"calculator","arguments":""}}]}}]}"#,
                r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"expression\":"}}]}}]}"#,
                r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"2+2\"}"}}]}}]}"#,
                r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
                "[DONE]",
            ],
        )
        .expect("parses");
        let request = ChatRequest::new("m", "s", "u");
        let response = decoder.out.finish(&request).expect("complete");
        assert_eq!(response.tool_calls.len(), 1);
        assert_eq!(response.tool_calls[0].name, "calculator");
        assert_eq!(response.tool_calls[0].arguments["expression"], "2+2");
    }

    #[test]
    fn a_stream_without_its_end_is_incomplete() {
        let mut decoder = OpenAiDecoder::default();
        feed(
            &mut decoder,
            &[r#"{"choices":[{"delta":{"content":"hel"}}]}"#],
        )
        .expect("parses");
        assert!(!decoder.complete());
        let error = feed(&mut decoder, &["{not json"]).expect_err("malformed");
        assert_eq!(error.kind, crate::provider::ErrorKind::Malformed);
        assert!(error.is_retryable());
    }

    #[test]
    fn the_body_carries_tools_results_and_schema() {
        let mut request = ChatRequest::new("m", "sys", "user");
        let call = ToolCall {
            id: "c1".into(),
            name: "calculator".into(),
            arguments: serde_json::json!({"expression": "1+1"}),
        };
        request
            .messages
            .push(Message::assistant("", vec![call.clone()]));
        request.messages.push(Message::tool_result(&call, "2"));
        request.tools.push(ToolDefinition {
            name: "calculator".into(),
            description: "math".into(),
            parameters: serde_json::json!({"type": "object"}),
        });
        request.response_format = Some(crate::provider::types::ResponseFormat {
            name: "answer".into(),
            schema: serde_json::json!({"type": "object"}),
        });
        let json = serde_json::to_value(body(&request, JsonMode::Schema)).expect("encodes");
        assert_eq!(
            json["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"expression\":\"1+1\"}"
        );
        assert_eq!(json["messages"][2]["content"], serde_json::Value::Null);
        assert_eq!(json["messages"][3]["role"], "tool");
        assert_eq!(json["messages"][3]["tool_call_id"], "c1");
        assert_eq!(json["tools"][0]["function"]["name"], "calculator");
        assert_eq!(json["response_format"]["type"], "json_schema");
        assert_eq!(json["response_format"]["json_schema"]["strict"], true);
    }
}
