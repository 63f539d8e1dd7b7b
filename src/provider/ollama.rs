//! Ollama's native `/api/chat`: private wire types, NDJSON streaming with text and tool calls
//! (whose arguments arrive as objects), `format: <schema>` for structured outputs.

use super::assemble::Assembler;
use super::chat::{CallContext, ChatProvider};
use super::endpoint::Endpoint;
use super::http::{self, Decoder, Framing, HttpTransport};
use super::types::{ChatRequest, ChatResponse, ProviderError, TokenSink, Usage};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a serde_json::Value>,
    options: Options,
}

#[derive(Serialize, Default)]
struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    function: WireCalledFunction<'a>,
}

#[derive(Serialize)]
struct WireCalledFunction<'a> {
    name: &'a str,
    arguments: &'a serde_json::Value,
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

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<LineToolCall>,
}

#[derive(Deserialize)]
struct LineToolCall {
    function: LineFunction,
}

#[derive(Deserialize)]
struct LineFunction {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: serde_json::Value,
}

fn body(request: &ChatRequest) -> Request<'_> {
    Request {
        model: &request.model,
        messages: request
            .messages
            .iter()
            .map(|m| WireMessage {
                role: m.role.as_str(),
                content: &m.content,
                tool_calls: m
                    .tool_calls
                    .iter()
                    .map(|c| WireToolCall {
                        function: WireCalledFunction {
                            name: &c.name,
                            arguments: &c.arguments,
                        },
                    })
                    .collect(),
                tool_name: m.name.as_deref(),
            })
            .collect(),
        stream: true,
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
        format: request.response_format.as_ref().map(|f| &f.schema),
        options: Options {
            temperature: request.sampling.temperature,
            num_predict: request.sampling.max_tokens,
            top_p: request.sampling.top_p,
            seed: request.sampling.seed,
        },
    }
}

#[derive(Default)]
struct OllamaDecoder {
    out: Assembler,
    calls: usize,
}

impl OllamaDecoder {
    fn line(&mut self, line: Line, on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        if let Some(error) = http::error_in_body(line.error.as_ref()) {
            return Err(error);
        }
        if line.model.is_some() {
            self.out.model = line.model;
        }
        if let Some(message) = line.message {
            if let Some(text) = &message.content {
                self.out.text(text, on_token);
            }
            for call in message.tool_calls {
                let index = self.calls;
                self.calls += 1;
                self.out.call(index, None, Some(&call.function.name));
                self.out.call_parsed(index, call.function.arguments);
            }
        }
        if line.done {
            self.out.done = true;
            self.out.finish_reason = line.done_reason;
            self.out.usage = Some(Usage {
                input_tokens: line.prompt_eval_count.unwrap_or(0),
                output_tokens: line.eval_count.unwrap_or(0),
            });
        }
        Ok(())
    }
}

impl Decoder for OllamaDecoder {
    fn event(&mut self, data: &str, on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        let line: Line = serde_json::from_str(data).map_err(|e| http::malformed(data, &e))?;
        self.line(line, on_token)
    }

    fn whole(&mut self, body: &[u8], on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        let line: Line = serde_json::from_slice(body)
            .map_err(|e| http::malformed(&String::from_utf8_lossy(body), &e))?;
        self.line(line, on_token)
    }

    fn take(&mut self) -> Assembler {
        std::mem::take(&mut self.out)
    }

    fn complete(&self) -> bool {
        self.out.done
    }
}

pub struct Ollama {
    transport: HttpTransport,
    endpoint: Endpoint,
}

impl Ollama {
    pub fn new(transport: HttpTransport, endpoint: Endpoint) -> Ollama {
        Ollama {
            transport,
            endpoint,
        }
    }

    async fn call(
        &self,
        request: &ChatRequest,
        on_token: TokenSink<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        self.transport
            .exchange(
                &self.endpoint.url("/api/chat"),
                http::credentials(&self.endpoint),
                &[],
                &body(request),
                Framing::Ndjson,
                &mut OllamaDecoder::default(),
                "Ollama",
                request,
                on_token,
            )
            .await
    }
}

impl ChatProvider for Ollama {
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

    #[test]
    fn reads_tool_calls_with_object_arguments() {
        let mut decoder = OllamaDecoder::default();
        let sink = |_: &str| {};
        decoder
            .event(
                r#"{"model":"m","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"calculator","arguments":{"expression":"6*7"}}}]},"done":false}"#,
                &sink,
            )
            .expect("parses");
        decoder
            .event(
                r#"{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":5,"eval_count":3}"#,
                &sink,
            )
            .expect("parses");
        let response = decoder
            .out
            .finish(&ChatRequest::new("m", "s", "u"))
            .expect("complete");
        assert_eq!(response.tool_calls[0].arguments["expression"], "6*7");
        assert_eq!(response.usage.output_tokens, 3);
    }
}
