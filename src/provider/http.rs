//! The HTTP adapters: OpenAI chat completions (and every compatible server), Ollama's native
//! `/api/chat`, and Anthropic's Messages API. Each streams (SSE or NDJSON) so tokens reach the
//! reporter as they arrive. One reqwest client is shared by the whole run. Never touches the
//! workspace and never logs a key.

use super::endpoint::{Auth, Endpoint, Protocol};
use super::types::{
    ChatRequest, ChatResponse, ErrorKind, ProviderError, RateHints, TokenSink, Usage,
};
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is used when the playbook sets none.
const ANTHROPIC_DEFAULT_MAX_TOKENS: u64 = 4096;
const ERROR_BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    pub fn new() -> Result<HttpClient, String> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(15))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("super/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("failed to build the HTTP client: {e}"))?;
        Ok(HttpClient { client })
    }

    pub async fn complete(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
        on_token: TokenSink<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        let (url, body) = match endpoint.protocol {
            Protocol::OpenAi => (endpoint.url("/chat/completions"), openai_body(request)),
            Protocol::Ollama => (endpoint.url("/api/chat"), ollama_body(request)),
            Protocol::Anthropic => {
                let base = endpoint.base_url.trim_end_matches("/v1");
                (format!("{base}/v1/messages"), anthropic_body(request))
            }
            Protocol::Local => {
                return Err(ProviderError::new(
                    ErrorKind::Local,
                    "the local model is not an HTTP provider",
                ))
            }
        };
        let mut builder = self.client.post(&url).json(&body);
        if let Some(key) = &endpoint.api_key {
            builder = match endpoint.auth {
                Auth::XApiKey => builder.header("x-api-key", key.expose()),
                Auth::AzureApiKey => builder.header("api-key", key.expose()),
                Auth::Bearer => builder.bearer_auth(key.expose()),
            };
        }
        if endpoint.protocol == Protocol::Anthropic {
            builder = builder.header("anthropic-version", ANTHROPIC_VERSION);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| transport_error(&e, &url))?;
        let status = response.status();
        let rate = rate_hints(response.headers());
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let text = read_limited(response).await;
            let mut error = ProviderError::new(
                ErrorKind::Status(status.as_u16()),
                provider_message(&text, status.canonical_reason()),
            );
            error.retry_after = retry_after;
            error.rate = rate;
            return Err(error);
        }
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.starts_with("application/json"))
            .unwrap_or(false);
        let mut parser = StreamParser::new(endpoint.protocol);
        if is_json && endpoint.protocol != Protocol::Ollama {
            // A server that ignored `stream: true` and sent one JSON body.
            let bytes = response.bytes().await.map_err(|e| body_error(&e))?;
            parser.whole_body(&bytes, on_token)?;
        } else {
            let mut stream = response.bytes_stream();
            let mut pending: Vec<u8> = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| body_error(&e))?;
                pending.extend_from_slice(&chunk);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    parser.line(&line, on_token)?;
                }
            }
            if !pending.is_empty() {
                let line = std::mem::take(&mut pending);
                parser.line(&line, on_token)?;
            }
        }
        let mut response = parser.finish(request)?;
        response.rate = rate;
        Ok(response)
    }
}

fn openai_body(request: &ChatRequest) -> Value {
    let mut body = json!({
        "model": request.model,
        "messages": [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.user},
        ],
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = request.max_tokens {
        body["max_tokens"] = json!(m);
    }
    if let Some(p) = request.top_p {
        body["top_p"] = json!(p);
    }
    if let Some(s) = request.seed {
        body["seed"] = json!(s);
    }
    body
}

fn ollama_body(request: &ChatRequest) -> Value {
    let mut options = serde_json::Map::new();
    if let Some(t) = request.temperature {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(m) = request.max_tokens {
        options.insert("num_predict".into(), json!(m));
    }
    if let Some(p) = request.top_p {
        options.insert("top_p".into(), json!(p));
    }
    if let Some(s) = request.seed {
        options.insert("seed".into(), json!(s));
    }
    json!({
        "model": request.model,
        "messages": [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.user},
        ],
        "stream": true,
        "options": options,
    })
}

fn anthropic_body(request: &ChatRequest) -> Value {
    let mut body = json!({
        "model": request.model,
        "system": request.system,
        "messages": [{"role": "user", "content": request.user}],
        "max_tokens": request.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS),
        "stream": true,
    });
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t.min(1.0));
    }
    if let Some(p) = request.top_p {
        body["top_p"] = json!(p);
    }
    body
}

/// Turns streamed lines of any of the three protocols into one response.
struct StreamParser {
    protocol: Protocol,
    text: String,
    usage: Option<Usage>,
    input_tokens: Option<u64>,
    finish_reason: Option<String>,
    done: bool,
    saw_data: bool,
}

impl StreamParser {
    fn new(protocol: Protocol) -> StreamParser {
        StreamParser {
            protocol,
            text: String::new(),
            usage: None,
            input_tokens: None,
            finish_reason: None,
            done: false,
            saw_data: false,
        }
    }

    fn line(&mut self, raw: &[u8], on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() || line.starts_with(':') {
            return Ok(());
        }
        let payload = match self.protocol {
            Protocol::Ollama => line,
            _ => match line.strip_prefix("data:") {
                Some(rest) => rest.trim_start(),
                // `event:`, `id:` and `retry:` lines carry nothing we need: the data says its type.
                None => return Ok(()),
            },
        };
        if payload == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let value: Value = serde_json::from_str(payload).map_err(|e| {
            ProviderError::new(
                ErrorKind::Malformed,
                format!("malformed stream data from the provider: {e}"),
            )
        })?;
        self.saw_data = true;
        self.event(&value, on_token)
    }

    fn event(&mut self, value: &Value, on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        if let Some(error) = value.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| error.as_str())
                .unwrap_or("the provider reported an error mid-stream");
            // An error inside a 200 stream is the server's trouble: worth another try.
            return Err(ProviderError::new(
                ErrorKind::Status(503),
                message.to_string(),
            ));
        }
        match self.protocol {
            Protocol::OpenAi => {
                if let Some(choice) = value.get("choices").and_then(|c| c.get(0)) {
                    let piece = choice
                        .get("delta")
                        .and_then(|d| d.get("content"))
                        .or_else(|| choice.get("message").and_then(|m| m.get("content")))
                        .and_then(Value::as_str);
                    if let Some(piece) = piece {
                        self.push(piece, on_token);
                    }
                    if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                        self.finish_reason = Some(reason.to_string());
                    }
                }
                if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
                    self.usage = Some(Usage {
                        input_tokens: usage
                            .get("prompt_tokens")
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                        output_tokens: usage
                            .get("completion_tokens")
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                    });
                }
            }
            Protocol::Ollama => {
                if let Some(piece) = value
                    .get("message")
                    .and_then(|m| m.get("content"))
                    .and_then(Value::as_str)
                {
                    self.push(piece, on_token);
                }
                if value.get("done").and_then(Value::as_bool) == Some(true) {
                    self.done = true;
                    self.finish_reason = value
                        .get("done_reason")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    self.usage = Some(Usage {
                        input_tokens: value
                            .get("prompt_eval_count")
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                        output_tokens: value.get("eval_count").and_then(Value::as_u64).unwrap_or(0),
                    });
                }
            }
            Protocol::Anthropic => match value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
            {
                "message_start" => {
                    self.input_tokens = value
                        .get("message")
                        .and_then(|m| m.get("usage"))
                        .and_then(|u| u.get("input_tokens"))
                        .and_then(Value::as_u64);
                }
                "content_block_delta" => {
                    if let Some(piece) = value
                        .get("delta")
                        .and_then(|d| d.get("text"))
                        .and_then(Value::as_str)
                    {
                        self.push(piece, on_token);
                    }
                }
                "message_delta" => {
                    if let Some(reason) = value
                        .get("delta")
                        .and_then(|d| d.get("stop_reason"))
                        .and_then(Value::as_str)
                    {
                        self.finish_reason = Some(reason.to_string());
                    }
                    let output = value
                        .get("usage")
                        .and_then(|u| u.get("output_tokens"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    self.usage = Some(Usage {
                        input_tokens: self.input_tokens.unwrap_or(0),
                        output_tokens: output,
                    });
                }
                "message_stop" => self.done = true,
                // A whole (non-streamed) message.
                "message" => {
                    if let Some(blocks) = value.get("content").and_then(Value::as_array) {
                        for block in blocks {
                            if let Some(piece) = block.get("text").and_then(Value::as_str) {
                                self.push(piece, on_token);
                            }
                        }
                    }
                    self.finish_reason = value
                        .get("stop_reason")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    if let Some(usage) = value.get("usage") {
                        self.usage = Some(Usage {
                            input_tokens: usage
                                .get("input_tokens")
                                .and_then(Value::as_u64)
                                .unwrap_or(0),
                            output_tokens: usage
                                .get("output_tokens")
                                .and_then(Value::as_u64)
                                .unwrap_or(0),
                        });
                    }
                    self.done = true;
                }
                _ => {}
            },
            Protocol::Local => {}
        }
        Ok(())
    }

    fn whole_body(&mut self, bytes: &[u8], on_token: TokenSink<'_>) -> Result<(), ProviderError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            ProviderError::new(
                ErrorKind::Malformed,
                format!("malformed JSON body from the provider: {e}"),
            )
        })?;
        self.saw_data = true;
        self.event(&value, on_token)?;
        self.done = true;
        Ok(())
    }

    fn push(&mut self, piece: &str, on_token: TokenSink<'_>) {
        if !piece.is_empty() {
            self.text.push_str(piece);
            on_token(piece);
        }
    }

    fn finish(self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        // OpenAI-compatible servers that do not send `[DONE]` still end with a finish reason.
        let complete =
            self.done || (self.protocol == Protocol::OpenAi && self.finish_reason.is_some());
        if !complete {
            let what = if self.saw_data {
                "the reply stream ended before it was complete"
            } else {
                "the provider sent an empty body"
            };
            return Err(ProviderError::new(ErrorKind::Truncated, what));
        }
        if self.text.trim().is_empty() {
            return Err(ProviderError::new(
                ErrorKind::Empty,
                format!(
                    "the model returned an empty reply (finish reason: {})",
                    self.finish_reason.as_deref().unwrap_or("none")
                ),
            ));
        }
        // Servers that report no usage get an estimate of about four characters a token.
        let usage = self
            .usage
            .filter(|u| u.total() > 0)
            .unwrap_or_else(|| Usage {
                input_tokens: estimate_tokens(&request.system) + estimate_tokens(&request.user),
                output_tokens: estimate_tokens(&self.text),
            });
        Ok(ChatResponse {
            text: self.text,
            usage,
            finish_reason: self.finish_reason,
            rate: RateHints::default(),
        })
    }
}

pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

fn transport_error(error: &reqwest::Error, url: &str) -> ProviderError {
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    let mut message = format!("failed to reach `{url}`");
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    ProviderError::new(kind, message)
}

/// A body that broke off while being read. We parse bytes ourselves, so reqwest's body errors
/// (including its "decode" ones) all mean the connection ended early.
fn body_error(error: &reqwest::Error) -> ProviderError {
    let mut message = String::from("the connection closed in the middle of the reply");
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    ProviderError::new(ErrorKind::Truncated, message)
}

async fn read_limited(response: reqwest::Response) -> String {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() > ERROR_BODY_LIMIT {
            body.truncate(ERROR_BODY_LIMIT);
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// The provider's own error message, from whichever error shape it uses.
fn provider_message(body: &str, reason: Option<&str>) -> String {
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        let message = value
            .get("error")
            .and_then(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .or_else(|| e.as_str())
            })
            .or_else(|| value.get("message").and_then(Value::as_str))
            .or_else(|| value.get("detail").and_then(Value::as_str));
        if let Some(message) = message {
            return message.to_string();
        }
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        reason.unwrap_or("no message").to_string()
    } else {
        trimmed.chars().take(500).collect()
    }
}

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `Retry-After` in seconds or as an HTTP date, or `retry-after-ms`.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    let value = header(headers, "retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return Some(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

fn rate_hints(headers: &reqwest::header::HeaderMap) -> RateHints {
    let number = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header(headers, n).and_then(|v| v.parse::<u64>().ok()))
    };
    let reset = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header(headers, n).and_then(parse_reset))
    };
    RateHints {
        remaining_requests: number(&[
            "x-ratelimit-remaining-requests",
            "anthropic-ratelimit-requests-remaining",
        ]),
        remaining_tokens: number(&[
            "x-ratelimit-remaining-tokens",
            "anthropic-ratelimit-tokens-remaining",
        ]),
        reset_requests: reset(&["x-ratelimit-reset-requests"]),
        reset_tokens: reset(&["x-ratelimit-reset-tokens"]),
    }
}

/// OpenAI's reset durations: `1s`, `6m0s`, `20ms`, `1.5s`.
fn parse_reset(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<f64>() {
        return Some(Duration::from_secs_f64(seconds.max(0.0)));
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let amount: f64 = number.parse().ok()?;
        number.clear();
        total += match c {
            'h' => amount * 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                amount / 1000.0
            }
            'm' => amount * 60.0,
            's' => amount,
            _ => return None,
        };
    }
    number.is_empty().then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reset_durations() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_reset("bad"), None);
    }

    #[test]
    fn finds_the_providers_message() {
        assert_eq!(
            provider_message(r#"{"error":{"message":"bad key","type":"x"}}"#, None),
            "bad key"
        );
        assert_eq!(
            provider_message(
                r#"{"type":"error","error":{"type":"x","message":"no"}}"#,
                None
            ),
            "no"
        );
        assert_eq!(
            provider_message(r#"{"error":"model not found"}"#, None),
            "model not found"
        );
        assert_eq!(provider_message("", Some("Not Found")), "Not Found");
    }

    #[test]
    fn a_stream_without_its_end_is_truncated() {
        let sink = |_: &str| {};
        let request = ChatRequest {
            model: "m".into(),
            system: "s".into(),
            user: "u".into(),
            temperature: None,
            max_tokens: None,
            top_p: None,
            seed: None,
        };
        let mut parser = StreamParser::new(Protocol::OpenAi);
        parser
            .line(br#"data: {"choices":[{"delta":{"content":"hel"}}]}"#, &sink)
            .expect("parses");
        let error = parser.finish(&request).expect_err("no end");
        assert_eq!(error.kind, ErrorKind::Truncated);
        assert!(error.is_retryable());

        let mut parser = StreamParser::new(Protocol::OpenAi);
        let error = parser
            .line(b"data: {not json", &sink)
            .expect_err("malformed");
        assert_eq!(error.kind, ErrorKind::Malformed);
    }
}
