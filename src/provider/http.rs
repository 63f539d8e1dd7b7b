//! The HTTP transport the adapters share: one reqwest client per run, a POST with the
//! endpoint's credentials, error statuses turned into `ProviderError`s (with the server's own
//! message, `Retry-After` and rate hints), and the reply body read as SSE events or NDJSON lines
//! under a size cap, handed to the adapter's decoder. Never touches the workspace and never
//! logs a key.

use super::headers;
use super::types::{ErrorKind, ProviderError, RateHints, TokenSink};
use futures::StreamExt;
use std::time::Duration;

/// Error bodies are read up to this size for their message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// How much of a body an error message quotes.
const HEAD_BYTES: usize = 120;
/// The default cap on one reply's body (`SUPER_MAX_REPLY_BYTES` changes it).
pub const DEFAULT_MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// How an adapter's protocol frames its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events: `data:` lines (possibly several per event), blank line ends an event.
    Sse,
    /// One JSON object a line.
    Ndjson,
}

/// An adapter's reading of its protocol's events.
pub trait Decoder: Send {
    /// One event's data (an SSE event's joined `data:` lines, or one NDJSON line).
    fn event(&mut self, data: &str, on_token: TokenSink<'_>) -> Result<(), ProviderError>;
    /// A whole JSON body, from a server that ignored `stream: true`.
    fn whole(&mut self, body: &[u8], on_token: TokenSink<'_>) -> Result<(), ProviderError>;
    /// Whether the protocol's end of message was seen.
    fn complete(&self) -> bool;
    /// What was assembled, taken out once the body is read.
    fn take(&mut self) -> super::assemble::Assembler;
}

/// What the transport saw of a body, for error messages.
#[derive(Debug, Default)]
pub struct BodyInfo {
    pub bytes: usize,
    pub content_type: String,
    /// The first bytes of the body, escaped, for "what arrived" messages.
    pub head: String,
    pub events: usize,
}

impl BodyInfo {
    /// "HTTP 200, content-type text/html, 1234 bytes starting `<html>…`".
    pub fn describe(&self) -> String {
        if self.bytes == 0 {
            return format!(
                "an empty body (content-type `{}`)",
                if self.content_type.is_empty() {
                    "none"
                } else {
                    &self.content_type
                }
            );
        }
        format!(
            "{} bytes of content-type `{}` starting `{}`",
            self.bytes,
            if self.content_type.is_empty() {
                "none"
            } else {
                &self.content_type
            },
            self.head
        )
    }
}

/// The credential header of an endpoint.
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Header(&'static str, &'a str),
}

/// The header an endpoint's key goes in (`Authorization: Bearer`, `x-api-key`, Azure's `api-key`).
pub fn credentials(endpoint: &super::endpoint::Endpoint) -> Auth<'_> {
    use super::endpoint::Auth as Style;
    match (&endpoint.api_key, endpoint.auth) {
        (None, _) => Auth::None,
        (Some(key), Style::Bearer) => Auth::Bearer(key.expose()),
        (Some(key), Style::XApiKey) => Auth::Header("x-api-key", key.expose()),
        (Some(key), Style::AzureApiKey) => Auth::Header("api-key", key.expose()),
    }
}

/// One HTTP client for the run, shared by every endpoint; built on first use, and the system's
/// certificate store is loaded only for an `https` URL (a run against local servers never
/// reads it).
#[derive(Clone)]
pub struct HttpTransport {
    clients: std::sync::Arc<Clients>,
    max_reply_bytes: usize,
}

#[derive(Default)]
struct Clients {
    plain: std::sync::OnceLock<Result<reqwest::Client, String>>,
    tls: std::sync::OnceLock<Result<reqwest::Client, String>>,
}

/// The first `limit` bytes as text with control characters escaped.
pub fn escaped_head(bytes: &[u8], limit: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(limit)]);
    let mut out = String::new();
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if bytes.len() > limit {
        out.push('…');
    }
    out
}

impl HttpTransport {
    pub fn new(max_reply_bytes: usize) -> Result<HttpTransport, String> {
        Ok(HttpTransport {
            clients: std::sync::Arc::new(Clients::default()),
            max_reply_bytes,
        })
    }

    /// The client for `url`: with the system's trusted roots for `https`, without for `http`.
    fn client(&self, url: &str) -> Result<&reqwest::Client, ProviderError> {
        let tls = url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        let slot = if tls {
            &self.clients.tls
        } else {
            &self.clients.plain
        };
        slot.get_or_init(|| {
            reqwest::Client::builder()
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(15))
                .pool_idle_timeout(Duration::from_secs(60))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("super/", env!("CARGO_PKG_VERSION")))
                .tls_built_in_root_certs(tls)
                .build()
                .map_err(|e| format!("failed to build the HTTP client: {e}"))
        })
        .as_ref()
        .map_err(|e| ProviderError::new(ErrorKind::Connect, e.clone()))
    }

    /// One exchange of every adapter: encode the body, POST it, read the reply through the
    /// protocol's decoder, and assemble the response (an incomplete stream says what arrived).
    #[allow(clippy::too_many_arguments)]
    pub async fn exchange(
        &self,
        url: &str,
        auth: Auth<'_>,
        extra_headers: &[(&'static str, &str)],
        body: &impl serde::Serialize,
        framing: Framing,
        decoder: &mut dyn Decoder,
        protocol: &str,
        request: &super::types::ChatRequest,
        on_token: TokenSink<'_>,
    ) -> Result<super::types::ChatResponse, ProviderError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            ProviderError::new(
                ErrorKind::Malformed,
                format!("failed to encode the request: {e}"),
            )
        })?;
        let (response, rate) = self.post(url, auth, extra_headers, bytes).await?;
        let info = self.read(response, framing, decoder, on_token).await?;
        if !decoder.complete() {
            return Err(incomplete(&info, protocol));
        }
        let mut response = decoder.take().finish(request)?;
        response.rate = rate;
        Ok(response)
    }

    /// GETs a small JSON document (a model listing) within a few seconds; a failure is an
    /// error like a call's (status with the server's message, or what kept it from answering).
    pub async fn get_json(
        &self,
        url: &str,
        auth: Auth<'_>,
        extra_headers: &[(&'static str, &str)],
    ) -> Result<serde_json::Value, ProviderError> {
        let mut builder = self
            .client(url)?
            .get(url)
            .timeout(std::time::Duration::from_secs(5));
        builder = authorized(builder, auth, extra_headers);
        let response = builder.send().await.map_err(|e| transport_error(&e, url))?;
        let status = response.status();
        let text = read_limited(response).await;
        if !status.is_success() {
            return Err(ProviderError::new(
                ErrorKind::Status(status.as_u16()),
                provider_message(&text, status.canonical_reason()),
            ));
        }
        serde_json::from_str(&text).map_err(|e| {
            ProviderError::new(
                ErrorKind::Malformed,
                format!(
                    "`{}` did not answer JSON: {e}",
                    crate::redact::redact_urls(url)
                ),
            )
        })
    }

    /// POSTs a JSON body; a non-2xx status becomes an error carrying the server's message.
    pub async fn post(
        &self,
        url: &str,
        auth: Auth<'_>,
        extra_headers: &[(&'static str, &str)],
        body: Vec<u8>,
    ) -> Result<(reqwest::Response, RateHints), ProviderError> {
        let mut builder = self
            .client(url)?
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        builder = authorized(builder, auth, extra_headers);
        let response = builder.send().await.map_err(|e| transport_error(&e, url))?;
        let status = response.status();
        let rate = headers::rate_hints(response.headers());
        if !status.is_success() {
            let retry_after = headers::retry_after(response.headers());
            let text = read_limited(response).await;
            let mut error = ProviderError::new(
                ErrorKind::Status(status.as_u16()),
                provider_message(&text, status.canonical_reason()),
            )
            .with_retry_after(retry_after);
            error.rate = rate;
            return Err(error);
        }
        Ok((response, rate))
    }

    /// Reads the body through `decoder`: as one JSON document when the server answered
    /// `application/json` to a streaming request, else framed as SSE or NDJSON.
    pub async fn read(
        &self,
        response: reqwest::Response,
        framing: Framing,
        decoder: &mut dyn Decoder,
        on_token: TokenSink<'_>,
    ) -> Result<BodyInfo, ProviderError> {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut info = BodyInfo {
            content_type: content_type.clone(),
            ..BodyInfo::default()
        };
        let whole_json = content_type.starts_with("application/json") && framing == Framing::Sse;
        let mut stream = response.bytes_stream();
        let mut pending: Vec<u8> = Vec::new();
        let mut event = String::new();
        let mut body: Vec<u8> = Vec::new();
        let mut head: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| body_error(&e))?;
            if head.len() < HEAD_BYTES {
                head.extend_from_slice(&chunk[..chunk.len().min(HEAD_BYTES - head.len())]);
                info.head = escaped_head(&head, HEAD_BYTES);
            }
            info.bytes += chunk.len();
            if info.bytes > self.max_reply_bytes {
                return Err(ProviderError::new(
                    ErrorKind::TooLarge,
                    format!(
                        "the reply exceeded {} bytes (SUPER_MAX_REPLY_BYTES) and was cut off",
                        self.max_reply_bytes
                    ),
                ));
            }
            if whole_json {
                body.extend_from_slice(&chunk);
                continue;
            }
            pending.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(offset) = pending[start..].iter().position(|&b| b == b'\n') {
                let end = start + offset;
                let line = String::from_utf8_lossy(&pending[start..end]);
                self.line(framing, &line, &mut event, decoder, on_token, &mut info)?;
                start = end + 1;
            }
            pending.drain(..start);
        }
        if whole_json {
            decoder.whole(&body, on_token)?;
            info.events += 1;
            return Ok(info);
        }
        if !pending.is_empty() {
            let line = String::from_utf8_lossy(&pending).into_owned();
            self.line(framing, &line, &mut event, decoder, on_token, &mut info)?;
        }
        if !event.is_empty() {
            dispatch(&mut event, decoder, on_token, &mut info)?;
        }
        Ok(info)
    }

    fn line(
        &self,
        framing: Framing,
        raw: &str,
        event: &mut String,
        decoder: &mut dyn Decoder,
        on_token: TokenSink<'_>,
        info: &mut BodyInfo,
    ) -> Result<(), ProviderError> {
        let line = raw.trim_end_matches('\r');
        match framing {
            Framing::Ndjson => {
                if !line.trim().is_empty() {
                    decoder.event(line, on_token)?;
                    info.events += 1;
                }
                Ok(())
            }
            Framing::Sse => {
                if line.is_empty() {
                    return dispatch(event, decoder, on_token, info);
                }
                if line.starts_with(':') {
                    return Ok(());
                }
                // `event:`, `id:` and `retry:` carry nothing we need: the data says its type.
                let Some(data) = line.strip_prefix("data:") else {
                    return Ok(());
                };
                let data = data.strip_prefix(' ').unwrap_or(data);
                // Servers that omit the blank line between events: what came before this line
                // is an event of its own when it is a complete JSON value. Checked only then,
                // so a well-framed stream parses each event once (by its decoder).
                if !event.is_empty() {
                    if serde_json::from_str::<serde::de::IgnoredAny>(event).is_ok() {
                        dispatch(event, decoder, on_token, info)?;
                    } else {
                        event.push('\n');
                    }
                }
                event.push_str(data);
                if event.as_str() == "[DONE]" {
                    return dispatch(event, decoder, on_token, info);
                }
                Ok(())
            }
        }
    }
}

fn dispatch(
    event: &mut String,
    decoder: &mut dyn Decoder,
    on_token: TokenSink<'_>,
    info: &mut BodyInfo,
) -> Result<(), ProviderError> {
    if event.is_empty() {
        return Ok(());
    }
    info.events += 1;
    let result = decoder.event(event, on_token);
    // Emptied, its capacity kept for the next event.
    event.clear();
    result
}

/// A JSON parse failure of one event, saying what arrived.
pub fn malformed(data: &str, error: &serde_json::Error) -> ProviderError {
    ProviderError::new(
        ErrorKind::Malformed,
        format!(
            "malformed stream data from the provider ({error}): `{}`",
            escaped_head(data.as_bytes(), 120)
        ),
    )
}

/// An `error` member inside a 200 reply: the server's trouble, worth another try.
pub fn error_in_body(error: Option<&serde_json::Value>) -> Option<ProviderError> {
    let error = error.filter(|e| !e.is_null())?;
    let message = error
        .get("message")
        .and_then(serde_json::Value::as_str)
        .or_else(|| error.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| error.to_string());
    Some(ProviderError::new(
        ErrorKind::Malformed,
        format!("the provider answered 200 with an error in the body: {message}"),
    ))
}

/// The reply ended without the protocol's end: say what arrived.
pub fn incomplete(info: &BodyInfo, protocol: &str) -> ProviderError {
    if info.events == 0 {
        ProviderError::new(
            ErrorKind::Truncated,
            format!(
                "the provider's reply was not a {protocol} stream: {}",
                info.describe()
            ),
        )
    } else {
        ProviderError::new(
            ErrorKind::Truncated,
            format!(
                "the reply stream ended before it was complete ({} events, {} bytes)",
                info.events, info.bytes
            ),
        )
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
    let mut message = format!("failed to reach `{}`", crate::redact::redact_urls(url));
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

/// A request with the endpoint's credentials and extra headers.
fn authorized(
    builder: reqwest::RequestBuilder,
    auth: Auth<'_>,
    extra_headers: &[(&'static str, &str)],
) -> reqwest::RequestBuilder {
    let mut builder = match auth {
        Auth::None => builder,
        Auth::Bearer(key) => builder.bearer_auth(key),
        Auth::Header(name, key) => builder.header(name, key),
    };
    for (name, value) in extra_headers {
        builder = builder.header(*name, *value);
    }
    builder
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
pub fn provider_message(body: &str, reason: Option<&str>) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        let message = value
            .get("error")
            .and_then(|e| {
                e.get("message")
                    .and_then(serde_json::Value::as_str)
                    .or_else(|| e.as_str())
            })
            .or_else(|| value.get("message").and_then(serde_json::Value::as_str))
            .or_else(|| value.get("detail").and_then(serde_json::Value::as_str));
        if let Some(message) = message {
            return message.to_string();
        }
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        reason.unwrap_or("no message").to_string()
    } else {
        escaped_head(trimmed.as_bytes(), 500)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(provider_message("a\x1b[31mb", None), "a\\u{1b}[31mb");
    }
}
