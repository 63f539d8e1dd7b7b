//! Anthropic's Messages API: private wire types, SSE streaming with text and `tool_use` blocks
//! (arguments as `input_json_delta` fragments), tool results as `tool_result` blocks, and
//! structured outputs as one forced tool whose input is the answer.

use super::assemble::Assembler;
use super::chat::{CallContext, ChatProvider};
use super::endpoint::Endpoint;
use super::http::{self, Decoder, Framing, HttpTransport};
use super::types::{ChatRequest, ChatResponse, ProviderError, Role, TokenSink, ToolChoice, Usage};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub(crate) const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is used when the playbook sets none.
const DEFAULT_MAX_TOKENS: u64 = 4096;

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "String::is_empty")]
    system: String,
    messages: Vec<WireMessage<'a>>,
    max_tokens: u64,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Content<'a>,
}

/// One text block is sent as a plain string, as most clients do; anything else as blocks.
#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

impl<'a> Content<'a> {
    fn blocks(self) -> Vec<Block<'a>> {
        match self {
            Content::Text(text) => vec![Block::Text { text }],
            Content::Blocks(blocks) => blocks,
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a serde_json::Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a serde_json::Value,
}

#[derive(Serialize)]
struct WireToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    message: Option<EventMessage>,
    #[serde(default)]
    content_block: Option<EventBlock>,
    #[serde(default)]
    delta: Option<EventDelta>,
    #[serde(default)]
    usage: Option<EventUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    // A whole (non-streamed) message has these at the top.
    #[serde(default)]
    content: Vec<EventBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
struct EventMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<EventUsage>,
}

#[derive(Deserialize)]
struct EventBlock {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct EventDelta {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct EventUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

const ANSWER_DESCRIPTION: &str = "Give your final answer by calling this tool with it.";

fn body(request: &ChatRequest) -> Request<'_> {
    let mut system = String::new();
    let mut messages: Vec<WireMessage<'_>> = Vec::new();
    for message in &request.messages {
        let (role, blocks): (&'static str, Vec<Block<'_>>) = match message.role {
            Role::System => {
                if !system.is_empty() {
                    system.push_str("\n\n");
                }
                system.push_str(&message.content);
                continue;
            }
            Role::User => (
                "user",
                vec![Block::Text {
                    text: &message.content,
                }],
            ),
            Role::Assistant => {
                let mut blocks = Vec::new();
                if !message.content.is_empty() {
                    blocks.push(Block::Text {
                        text: &message.content,
                    });
                }
                for call in &message.tool_calls {
                    blocks.push(Block::ToolUse {
                        id: &call.id,
                        name: &call.name,
                        input: &call.arguments,
                    });
                }
                ("assistant", blocks)
            }
            Role::Tool => (
                "user",
                vec![Block::ToolResult {
                    tool_use_id: message.tool_call_id.as_deref().unwrap_or_default(),
                    content: &message.content,
                }],
            ),
        };
        // The API wants roles to alternate: consecutive messages of one role become one.
        match messages.last_mut() {
            Some(last) if last.role == role => {
                let mut merged =
                    std::mem::replace(&mut last.content, Content::Blocks(Vec::new())).blocks();
                merged.extend(blocks);
                last.content = Content::Blocks(merged);
            }
            _ => messages.push(WireMessage {
                role,
                content: match blocks.as_slice() {
                    [Block::Text { text }] => Content::Text(text),
                    _ => Content::Blocks(blocks),
                },
            }),
        }
    }
    let mut tools: Vec<WireTool<'_>> = request
        .tools
        .iter()
        .map(|t| WireTool {
            name: &t.name,
            description: &t.description,
            input_schema: &t.parameters,
        })
        .collect();
    let mut tool_choice = match (&request.tool_choice, request.tools.is_empty()) {
        (_, true) | (ToolChoice::Auto, _) => None,
        (ToolChoice::None, _) => Some(WireToolChoice {
            kind: "none",
            name: None,
        }),
        (ToolChoice::Required, _) => Some(WireToolChoice {
            kind: "any",
            name: None,
        }),
        (ToolChoice::Tool(name), _) => Some(WireToolChoice {
            kind: "tool",
            name: Some(name),
        }),
    };
    if let Some(format) = &request.response_format {
        tools.push(WireTool {
            name: &format.name,
            description: ANSWER_DESCRIPTION,
            input_schema: &format.schema,
        });
        tool_choice = Some(WireToolChoice {
            kind: "tool",
            name: Some(&format.name),
        });
    }
    Request {
        model: &request.model,
        system,
        messages,
        max_tokens: request.sampling.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        stream: true,
        temperature: request.sampling.temperature.map(|t| t.min(1.0)),
        top_p: request.sampling.top_p,
        tools,
        tool_choice,
    }
}

#[derive(Default)]
struct AnthropicDecoder {
    out: Assembler,
    input_tokens: Option<u64>,
}

impl AnthropicDecoder {
    fn block(&mut self, index: usize, block: EventBlock, on_token: TokenSink<'_>) {
        match block.kind.as_str() {
            "tool_use" => {
                self.out
                    .call(index, block.id.as_deref(), block.name.as_deref());
                // A streamed block starts with `input: {}`; a whole message has it complete.
                if let Some(input) = block
                    .input
                    .filter(|i| i.as_object().is_none_or(|o| !o.is_empty()))
                {
                    self.out.call_parsed(index, input);
                }
            }
            _ => {
                if let Some(text) = &block.text {
                    self.out.text(text, on_token);
                }
            }
        }
    }

    fn handle(&mut self, event: Event, on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        if let Some(error) = http::error_in_body(event.error.as_ref()) {
            return Err(error);
        }
        match event.kind.as_str() {
            "message_start" => {
                if let Some(message) = event.message {
                    self.out.model = message.model;
                    self.input_tokens = message.usage.and_then(|u| u.input_tokens);
                }
            }
            "content_block_start" => {
                if let Some(block) = event.content_block {
                    self.block(event.index.unwrap_or(0), block, on_token);
                }
            }
            "content_block_delta" => {
                let index = event.index.unwrap_or(0);
                if let Some(delta) = event.delta {
                    if let Some(text) = &delta.text {
                        self.out.text(text, on_token);
                    }
                    if let Some(fragment) = &delta.partial_json {
                        self.out.call_arguments(index, fragment);
                    }
                }
            }
            "message_delta" => {
                if let Some(reason) = event.delta.and_then(|d| d.stop_reason) {
                    self.out.finish_reason = Some(reason);
                }
                self.out.usage = Some(Usage {
                    input_tokens: self.input_tokens.unwrap_or(0),
                    output_tokens: event.usage.and_then(|u| u.output_tokens).unwrap_or(0),
                });
            }
            "message_stop" => self.out.done = true,
            "message" => {
                self.out.model = event.model;
                for (index, block) in event.content.into_iter().enumerate() {
                    self.block(index, block, on_token);
                }
                self.out.finish_reason = event.stop_reason;
                if let Some(usage) = event.usage {
                    self.out.usage = Some(Usage {
                        input_tokens: usage.input_tokens.unwrap_or(0),
                        output_tokens: usage.output_tokens.unwrap_or(0),
                    });
                }
                self.out.done = true;
            }
            _ => {}
        }
        Ok(())
    }
}

impl Decoder for AnthropicDecoder {
    fn event(&mut self, data: &str, on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        let event: Event = serde_json::from_str(data).map_err(|e| http::malformed(data, &e))?;
        self.handle(event, on_token)
    }

    fn whole(&mut self, body: &[u8], on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        let event: Event = serde_json::from_slice(body)
            .map_err(|e| http::malformed(&String::from_utf8_lossy(body), &e))?;
        self.handle(event, on_token)?;
        self.out.done = true;
        Ok(())
    }

    fn take(&mut self) -> Assembler {
        std::mem::take(&mut self.out)
    }

    fn complete(&self) -> bool {
        self.out.done
    }
}

pub struct Anthropic {
    transport: HttpTransport,
    endpoint: Endpoint,
}

impl Anthropic {
    pub fn new(transport: HttpTransport, endpoint: Endpoint) -> Anthropic {
        Anthropic {
            transport,
            endpoint,
        }
    }

    async fn call(
        &self,
        request: &ChatRequest,
        on_token: TokenSink<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        let base = self.endpoint.base_url.trim_end_matches("/v1");
        let mut response = self
            .transport
            .exchange(
                &format!("{base}/v1/messages"),
                http::credentials(&self.endpoint),
                &[("anthropic-version", ANTHROPIC_VERSION)],
                &body(request),
                Framing::Sse,
                &mut AnthropicDecoder::default(),
                "Messages",
                request,
                on_token,
            )
            .await?;
        // Structured output: the forced tool's input is the answer.
        if let Some(format) = &request.response_format {
            if let Some(position) = response
                .tool_calls
                .iter()
                .position(|c| c.name == format.name)
            {
                let call = response.tool_calls.remove(position);
                response.text = call.arguments.to_string();
            }
        }
        Ok(response)
    }
}

impl ChatProvider for Anthropic {
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
    use crate::provider::types::{Message, ToolCall};

    #[test]
    fn streams_tool_use_blocks() {
        let mut decoder = AnthropicDecoder::default();
        let sink = |_: &str| {};
        for line in [
            r#"{"type":"message_start","message":{"model":"claude","usage":{"input_tokens":12}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me add."}}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"calculator","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"expression\": \"1"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"+1\"}"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
            r#"{"type":"message_stop"}"#,
        ] {
            decoder.event(line, &sink).expect("parses");
        }
        let response = decoder
            .out
            .finish(&ChatRequest::new("m", "s", "u"))
            .expect("complete");
        assert_eq!(response.text, "Let me add.");
        assert_eq!(response.tool_calls[0].id, "toolu_1");
        assert_eq!(response.tool_calls[0].arguments["expression"], "1+1");
        assert_eq!(
            response.usage,
            Usage {
                input_tokens: 12,
                output_tokens: 9
            }
        );
    }

    #[test]
    fn tool_results_alternate_roles() {
        let mut request = ChatRequest::new("m", "sys", "user");
        let call = ToolCall {
            id: "t1".into(),
            name: "calculator".into(),
            arguments: serde_json::json!({"expression": "1+1"}),
        };
        request
            .messages
            .push(Message::assistant("thinking", vec![call.clone()]));
        request.messages.push(Message::tool_result(&call, "2"));
        let json = serde_json::to_value(body(&request)).expect("encodes");
        assert_eq!(json["system"], "sys");
        assert_eq!(json["messages"][1]["content"][1]["type"], "tool_use");
        assert_eq!(json["messages"][2]["role"], "user");
        assert_eq!(json["messages"][2]["content"][0]["type"], "tool_result");
        assert_eq!(json["messages"][2]["content"][0]["tool_use_id"], "t1");
    }
}
