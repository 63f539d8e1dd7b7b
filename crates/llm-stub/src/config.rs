//! Configuration of a stub server: the reply source, latency, scripted failures, the
//! content-matched failure rule and the auth requirement (`StubConfig`, `Step`, `Reply`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::record::RecordedRequest;

/// What one chat request gets, when taken from the script or a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The normal reply (the configured `Reply`).
    Ok,
    /// An error status in the protocol's own error JSON shape, with an optional
    /// `Retry-After` header. An empty `message` is replaced by a default one.
    Status {
        code: u16,
        retry_after: Option<String>,
        message: String,
    },
    /// `200` with a syntactically broken JSON body (non-streaming) or a broken
    /// SSE `data:` / NDJSON line in an otherwise well-framed stream (streaming).
    Malformed,
    /// Headers promising more than is sent (a `Content-Length` larger than the body
    /// written, or a chunked stream cut after its first events), then the socket closes.
    CloseMidBody,
    /// The normal reply after this extra delay (on top of `latency`). A client that
    /// disconnects meanwhile is noticed and the request is dropped.
    Delay(Duration),
    /// `200` with an empty content string.
    Empty,
    /// `200` with this exact content.
    Text(String),
    /// Exactly these bytes as the whole response (status line, headers, body, or nothing at
    /// all), then the connection closes: garbage, hostile headers, a reset before any byte.
    Raw(Vec<u8>),
}

impl Step {
    /// `Step::Status` with no `Retry-After` and the default message.
    pub fn status(code: u16) -> Step {
        Step::Status {
            code,
            retry_after: None,
            message: String::new(),
        }
    }

    /// `429` with this `Retry-After` header value.
    pub fn rate_limited(retry_after: impl Into<String>) -> Step {
        Step::Status {
            code: 429,
            retry_after: Some(retry_after.into()),
            message: String::new(),
        }
    }

    /// `Step::Text`.
    pub fn text(text: impl Into<String>) -> Step {
        Step::Text(text.into())
    }

    /// `Step::Raw`.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Step {
        Step::Raw(bytes.into())
    }
}

/// A reply function: computes the content from the recorded request.
pub type ReplyFn = Arc<dyn Fn(&RecordedRequest) -> String + Send + Sync>;

/// Where the content of a successful reply comes from.
#[derive(Clone, Default)]
pub enum Reply {
    /// [`crate::default_reply`]: `STUB-REPLY-{seq} for {model}: {first 80 chars of the last user message}`.
    #[default]
    Default,
    /// Always this text.
    Fixed(String),
    /// Computed per request.
    Func(ReplyFn),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Default => f.write_str("Default"),
            Reply::Fixed(s) => f.debug_tuple("Fixed").field(s).finish(),
            Reply::Func(_) => f.write_str("Func(..)"),
        }
    }
}

/// An exact header every request must carry, else `401`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRule {
    /// Header name, matched case-insensitively.
    pub header: String,
    /// Exact value.
    pub value: String,
}

/// A delay given either as a `Duration` or as a number of milliseconds.
pub trait IntoDelay {
    fn into_delay(self) -> Duration;
}

impl IntoDelay for Duration {
    fn into_delay(self) -> Duration {
        self
    }
}

impl IntoDelay for u64 {
    fn into_delay(self) -> Duration {
        Duration::from_millis(self)
    }
}

impl IntoDelay for u32 {
    fn into_delay(self) -> Duration {
        Duration::from_millis(u64::from(self))
    }
}

impl IntoDelay for usize {
    fn into_delay(self) -> Duration {
        Duration::from_millis(self as u64)
    }
}

/// Milliseconds; negative values mean no delay.
impl IntoDelay for i32 {
    fn into_delay(self) -> Duration {
        Duration::from_millis(u64::try_from(self).unwrap_or(0))
    }
}

/// How a stub server behaves. Build with `StubConfig::default()` and the builder methods.
///
/// For each chat request the answer is chosen in this order:
/// 1. `auth` not satisfied: `401` (any path; consumes nothing);
/// 2. body not a JSON object: `400` (consumes nothing);
/// 3. `fail_when_contains` matches the raw body: that step (consumes nothing);
/// 4. the next unconsumed `script` step, in arrival order;
/// 5. while fewer than `fail_first` requests have reached this point: `fail_status`
///    with `retry_after`;
/// 6. otherwise the normal reply.
///
/// `latency` is waited before every response's headers.
#[derive(Debug, Clone)]
pub struct StubConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Delay before the response headers of every request.
    pub latency: Duration,
    /// Delay between the events of a streamed response.
    pub chunk_delay: Duration,
    /// The first this-many requests reaching the default path get `fail_status`.
    pub fail_first: usize,
    pub fail_status: u16,
    /// `Retry-After` header value sent with the `fail_first` errors.
    pub retry_after: Option<String>,
    /// Steps consumed one per chat request, in arrival order.
    pub script: Vec<Step>,
    /// Any request whose raw body contains the substring gets the step, every time.
    pub fail_when_contains: Option<(String, Step)>,
    pub auth: Option<AuthRule>,
    pub reply: Reply,
    /// Keep every request for `StubServer::requests()` (default true). Counting and
    /// in-flight stats work either way.
    pub record_requests: bool,
}

impl Default for StubConfig {
    fn default() -> Self {
        StubConfig {
            port: 0,
            latency: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            fail_first: 0,
            fail_status: 500,
            retry_after: None,
            script: Vec::new(),
            fail_when_contains: None,
            auth: None,
            reply: Reply::Default,
            record_requests: true,
        }
    }
}

impl StubConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// Port to bind on 127.0.0.1 (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Delay before the response headers: a `Duration` or milliseconds.
    pub fn latency(mut self, latency: impl IntoDelay) -> Self {
        self.latency = latency.into_delay();
        self
    }

    /// Delay between streamed events: a `Duration` or milliseconds.
    pub fn chunk_delay(mut self, delay: impl IntoDelay) -> Self {
        self.chunk_delay = delay.into_delay();
        self
    }

    /// The first `count` requests reaching the default path get `status`.
    pub fn fail_first(mut self, count: usize, status: u16) -> Self {
        self.fail_first = count;
        self.fail_status = status;
        self
    }

    /// `Retry-After` header value for the `fail_first` errors.
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        self.retry_after = Some(value.into());
        self
    }

    /// Replaces the script.
    pub fn script(mut self, steps: Vec<Step>) -> Self {
        self.script = steps;
        self
    }

    /// Appends one step to the script.
    pub fn step(mut self, step: Step) -> Self {
        self.script.push(step);
        self
    }

    /// Every request whose raw body contains `needle` gets `step`.
    pub fn fail_when_contains(mut self, needle: impl Into<String>, step: Step) -> Self {
        self.fail_when_contains = Some((needle.into(), step));
        self
    }

    /// Require `Authorization: Bearer {key}`.
    pub fn require_bearer(self, key: impl AsRef<str>) -> Self {
        let value = format!("Bearer {}", key.as_ref());
        self.require_header("authorization", value)
    }

    /// Require `x-api-key: {key}`.
    pub fn require_api_key(self, key: impl Into<String>) -> Self {
        self.require_header("x-api-key", key)
    }

    /// Require an exact header (name case-insensitive, value exact).
    pub fn require_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.auth = Some(AuthRule {
            header: name.into().to_ascii_lowercase(),
            value: value.into(),
        });
        self
    }

    /// Always reply with this text.
    pub fn reply(mut self, text: impl Into<String>) -> Self {
        self.reply = Reply::Fixed(text.into());
        self
    }

    /// Keep (default) or skip the request log; long benchmarks may turn it off.
    pub fn record_requests(mut self, record: bool) -> Self {
        self.record_requests = record;
        self
    }

    /// Compute the reply from the recorded request.
    pub fn reply_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(&RecordedRequest) -> String + Send + Sync + 'static,
    {
        self.reply = Reply::Func(Arc::new(f));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_accept_millis_or_durations() {
        assert_eq!(
            StubConfig::default().latency(50).latency,
            Duration::from_millis(50)
        );
        assert_eq!(
            StubConfig::default().latency(7u64).latency,
            Duration::from_millis(7)
        );
        let d = Duration::from_micros(1500);
        assert_eq!(StubConfig::default().chunk_delay(d).chunk_delay, d);
        assert_eq!(StubConfig::default().latency(-5).latency, Duration::ZERO);
    }

    #[test]
    fn builder_sets_fields() {
        let c = StubConfig::default()
            .fail_first(2, 429)
            .retry_after("1")
            .script(vec![Step::Ok])
            .step(Step::Empty)
            .require_bearer("k")
            .reply("r");
        assert_eq!((c.fail_first, c.fail_status), (2, 429));
        assert_eq!(c.retry_after.as_deref(), Some("1"));
        assert_eq!(c.script, vec![Step::Ok, Step::Empty]);
        let auth = c.auth.unwrap();
        assert_eq!(
            (auth.header.as_str(), auth.value.as_str()),
            ("authorization", "Bearer k")
        );
        assert!(matches!(c.reply, Reply::Fixed(ref s) if s == "r"));
    }
}
