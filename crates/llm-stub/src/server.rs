//! The server itself: `StubServer` (start, stop, stats, request log), the accept loop, and
//! per-connection HTTP/1.1 handling that turns each request into a planned response.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::config::{Reply, Step, StubConfig};
use crate::http::{self, ConnHeader, Head, HeadError, HeadSpec, MAX_HEAD};
use crate::protocol::{Completion, Protocol};
use crate::record::{
    count_input_tokens, count_words, default_reply, split_pieces, RecordedRequest,
};

/// Bytes read ahead (pipelined requests) while a response is delayed, before reading stops.
const READ_AHEAD_LIMIT: usize = 1024 * 1024;

/// A running stub server on 127.0.0.1. Dropping it stops it.
pub struct StubServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop_tx: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for StubServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StubServer")
            .field("addr", &self.addr)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: StubConfig,
    /// Whether `requests()` keeps every request.
    record: bool,
    script: Mutex<VecDeque<Step>>,
    log: Mutex<Vec<RecordedRequest>>,
    count: AtomicUsize,
    fail_first_seen: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn new(mut config: StubConfig) -> Arc<Shared> {
        let script = std::mem::take(&mut config.script).into();
        Arc::new(Shared {
            record: config.record_requests,
            config,
            script: Mutex::new(script),
            log: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            fail_first_seen: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            started: Instant::now(),
        })
    }

    fn record(
        &self,
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body: Value,
        received_at: Instant,
    ) -> RecordedRequest {
        let mut rec = RecordedRequest {
            seq: 0,
            method,
            path,
            headers,
            body,
            received_at,
            since_start: received_at.saturating_duration_since(self.started),
        };
        if self.record {
            let mut log = lock(&self.log);
            rec.seq = self.count.fetch_add(1, Ordering::SeqCst) + 1;
            log.push(rec.clone());
        } else {
            rec.seq = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        }
        rec
    }

    /// The step of a chat request that passed auth and JSON checks.
    fn choose_step(&self, raw_rule_hit: Option<Step>) -> Step {
        if let Some(step) = raw_rule_hit {
            return step;
        }
        if let Some(step) = lock(&self.script).pop_front() {
            return step;
        }
        let k = self.config.fail_first;
        if k > 0
            && self.fail_first_seen.load(Ordering::SeqCst) < k
            && self.fail_first_seen.fetch_add(1, Ordering::SeqCst) < k
        {
            return Step::Status {
                code: self.config.fail_status,
                retry_after: self.config.retry_after.clone(),
                message: String::new(),
            };
        }
        Step::Ok
    }

    fn reply_text(&self, rec: &RecordedRequest) -> String {
        match &self.config.reply {
            Reply::Default => default_reply(rec),
            Reply::Fixed(s) => s.clone(),
            Reply::Func(f) => f(rec),
        }
    }
}

/// Counts a request as in flight while alive.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn bind(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(1024)
}

impl StubServer {
    /// Starts the server on the current tokio runtime.
    pub async fn start(config: StubConfig) -> io::Result<StubServer> {
        let listener = bind(config.port)?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(config);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        Ok(StubServer {
            shared,
            addr,
            stop_tx: Some(stop_tx),
            task: Some(task),
            thread: None,
        })
    }

    /// Starts the server on its own thread and single-threaded runtime; usable from
    /// synchronous code. Returns once the listener is bound.
    pub fn start_background(config: StubConfig) -> io::Result<StubServer> {
        let port = config.port;
        let shared = Shared::new(config);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<SocketAddr>>();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("llm-stub".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match bind(port).and_then(|l| l.local_addr().map(|a| (l, a))) {
                        Ok((l, addr)) => {
                            let _ = ready_tx.send(Ok(addr));
                            l
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    accept_loop(listener, thread_shared, stop_rx).await;
                });
            })?;
        let addr = match ready_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other("llm-stub server thread died"));
            }
        };
        Ok(StubServer {
            shared,
            addr,
            stop_tx: Some(stop_tx),
            task: None,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` (the base for Ollama and Anthropic clients).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// `http://127.0.0.1:PORT/v1` (the base for OpenAI clients).
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.base_url())
    }

    /// `base_url()` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// Every request so far, in arrival order (empty if recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).clone()
    }

    /// Number of requests fully read so far.
    pub fn request_count(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// Requests currently between fully read and fully answered (or client gone).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Highest `in_flight()` seen.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Appends a step to the script while running.
    pub fn push_step(&self, step: Step) {
        lock(&self.shared.script).push_back(step);
    }

    /// Script steps not consumed yet.
    pub fn remaining_steps(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// Stops accepting, closes the listener and drops open connections. In background
    /// mode this waits for the server thread; otherwise it only signals the server task.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    /// Like `shutdown`, but waits until the listener is closed (either mode).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = Conn { stream, buf: Vec::with_capacity(8192), shared: shared.clone() };
                    conns.spawn(conn.run());
                }
                // Out of descriptors or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

/// What to answer, decided before any waiting.
enum Plan {
    /// A complete response with a fixed body.
    Simple {
        status: u16,
        content_type: &'static str,
        body: String,
        retry_after: Option<String>,
    },
    /// A chat reply built after the wait.
    Chat { proto: Protocol, kind: ChatKind },
    /// These bytes, then close.
    Raw(Vec<u8>),
}

enum ChatKind {
    /// `None`: the configured reply.
    Reply(Option<String>),
    Malformed,
    CloseMidBody,
}

fn route(path: &str) -> Option<Protocol> {
    match path {
        "/v1/chat/completions" | "/chat/completions" => Some(Protocol::OpenAi),
        // Azure OpenAI: `/openai/deployments/{deployment}/chat/completions?api-version=...`.
        azure
            if azure.starts_with("/openai/deployments/")
                && azure.ends_with("/chat/completions") =>
        {
            Some(Protocol::OpenAi)
        }
        "/api/chat" => Some(Protocol::Ollama),
        "/v1/messages" => Some(Protocol::Anthropic),
        _ => None,
    }
}

fn error_plan(proto: Protocol, status: u16, message: &str, retry_after: Option<String>) -> Plan {
    let message = if message.is_empty() {
        format!("llm-stub: simulated {} {}", status, http::reason(status))
    } else {
        message.to_string()
    };
    Plan::Simple {
        status,
        content_type: "application/json",
        body: proto.error_body(status, &message),
        retry_after,
    }
}

fn json_plan(body: Value) -> Plan {
    Plan::Simple {
        status: 200,
        content_type: "application/json",
        body: body.to_string(),
        retry_after: None,
    }
}

/// Whether the raw body contains the needle, as written or JSON-escaped.
fn body_contains(raw: &str, needle: &str) -> bool {
    if raw.contains(needle) {
        return true;
    }
    let escaped = Value::String(needle.to_string()).to_string();
    let escaped = &escaped[1..escaped.len() - 1];
    escaped != needle && raw.contains(escaped)
}

/// Cuts `text` after its `max`-th word.
fn truncate_words(text: &str, max: usize) -> (&str, bool) {
    if count_words(text) <= max {
        return (text, false);
    }
    let mut end = 0;
    let mut words = 0;
    for piece in split_pieces(text) {
        if words == max {
            break;
        }
        end += piece.len();
        if !piece.trim().is_empty() {
            words += 1;
        }
    }
    (&text[..end], true)
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    shared: Arc<Shared>,
}

impl Conn {
    async fn run(mut self) {
        while let Some((head, body)) = self.read_request().await {
            if !self.serve(head, body).await {
                break;
            }
        }
        let _ = self.stream.shutdown().await;
    }

    /// Reads more bytes into `buf`; false on EOF or error.
    async fn fill(&mut self) -> bool {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        matches!(self.stream.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }

    /// Answers a request that could not be parsed, then the connection closes.
    async fn reject(&mut self, status: u16, message: &str) {
        let body = Protocol::OpenAi.error_body(status, message);
        let mut out = Vec::with_capacity(256 + body.len());
        http::write_head(
            &mut out,
            &HeadSpec {
                status,
                content_type: "application/json",
                content_length: Some(body.len()),
                retry_after: None,
                request_id: 0,
                conn: ConnHeader::Close,
            },
        );
        out.extend_from_slice(body.as_bytes());
        let _ = self.stream.write_all(&out).await;
    }

    async fn read_request(&mut self) -> Option<(Head, Vec<u8>)> {
        let mut scanned = 0;
        let end = loop {
            if let Some(end) = http::find_head_end(&self.buf, scanned) {
                break end;
            }
            if self.buf.len() > MAX_HEAD {
                self.reject(431, "llm-stub: request head too large").await;
                return None;
            }
            scanned = self.buf.len();
            if !self.fill().await {
                return None;
            }
        };
        let head = match http::parse_head(&self.buf, end) {
            Ok(h) => h,
            Err(HeadError::TooLarge) => {
                self.reject(413, "llm-stub: request body too large").await;
                return None;
            }
            Err(HeadError::Bad) => {
                self.reject(400, "llm-stub: malformed HTTP request").await;
                return None;
            }
        };
        if head.chunked {
            self.reject(501, "llm-stub: chunked request bodies are not supported")
                .await;
            return None;
        }
        let total = end + head.content_length;
        if head.expect_continue
            && self.buf.len() < total
            && self
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return None;
        }
        while self.buf.len() < total {
            if !self.fill().await {
                return None;
            }
        }
        let body = self.buf[end..total].to_vec();
        self.buf.drain(..total);
        Some((head, body))
    }

    /// Sleeps, watching the socket: false if the client went away meanwhile. Bytes the
    /// client sends meanwhile (a pipelined request) are kept in `buf`.
    async fn wait_or_gone(&mut self, delay: Duration, eof_is_gone: bool) -> bool {
        // tokio's timer ticks in whole milliseconds and rounds up, which would add ~1 ms to
        // every reply and show up in benchmarks as the client's overhead: sleep coarsely to
        // just before the deadline, then yield until it.
        let deadline = std::time::Instant::now() + delay;
        let sleep = tokio::time::sleep(delay.saturating_sub(TIMER_SLACK));
        tokio::pin!(sleep);
        let mut watching = true;
        loop {
            if !watching || self.buf.len() >= READ_AHEAD_LIMIT {
                sleep.await;
                finish_precisely(deadline).await;
                return true;
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(8192);
            }
            tokio::select! {
                _ = &mut sleep => {
                    finish_precisely(deadline).await;
                    return true;
                }
                read = self.stream.read_buf(&mut self.buf) => match read {
                    Ok(0) if !eof_is_gone => watching = false,
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                },
            }
        }
    }

    /// Answers one request; false when the connection must close.
    async fn serve(&mut self, mut head: Head, body: Vec<u8>) -> bool {
        let shared = self.shared.clone();
        let _in_flight = InFlight::enter(&shared);
        let received_at = Instant::now();

        let raw = match String::from_utf8(body) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        let parsed: Option<Value> = serde_json::from_str(&raw).ok();
        let rule_hit = match &shared.config.fail_when_contains {
            Some((needle, step)) if body_contains(&raw, needle) => Some(step.clone()),
            _ => None,
        };
        let is_object = parsed.as_ref().is_some_and(Value::is_object);
        let body_value = parsed.unwrap_or(Value::String(raw));
        let headers = std::mem::take(&mut head.headers);
        let rec = shared.record(
            head.method.clone(),
            head.target.clone(),
            headers,
            body_value,
            received_at,
        );

        let conn = if !head.keep_alive {
            ConnHeader::Close
        } else if head.http10 {
            ConnHeader::KeepAlive
        } else {
            ConnHeader::None
        };
        let path = head.path();
        let proto = route(path);
        let mut extra_delay = Duration::ZERO;

        let auth_ok = match &shared.config.auth {
            Some(rule) => rec.header(&rule.header) == Some(rule.value.as_str()),
            None => true,
        };
        let plan = if !auth_ok {
            let header = shared
                .config
                .auth
                .as_ref()
                .map(|r| r.header.as_str())
                .unwrap_or("");
            error_plan(
                proto.unwrap_or(Protocol::OpenAi),
                401,
                &format!("llm-stub: missing or wrong {header} header"),
                None,
            )
        } else if let Some(proto) = proto {
            if head.method != "POST" {
                error_plan(proto, 405, "llm-stub: use POST", None)
            } else if !is_object {
                error_plan(
                    proto,
                    400,
                    "llm-stub: request body is not a JSON object",
                    None,
                )
            } else {
                match shared.choose_step(rule_hit) {
                    Step::Ok => Plan::Chat {
                        proto,
                        kind: ChatKind::Reply(None),
                    },
                    Step::Delay(d) => {
                        extra_delay = d;
                        Plan::Chat {
                            proto,
                            kind: ChatKind::Reply(None),
                        }
                    }
                    Step::Empty => Plan::Chat {
                        proto,
                        kind: ChatKind::Reply(Some(String::new())),
                    },
                    Step::Text(t) => Plan::Chat {
                        proto,
                        kind: ChatKind::Reply(Some(t)),
                    },
                    Step::Malformed => Plan::Chat {
                        proto,
                        kind: ChatKind::Malformed,
                    },
                    Step::CloseMidBody => Plan::Chat {
                        proto,
                        kind: ChatKind::CloseMidBody,
                    },
                    Step::Status {
                        code,
                        retry_after,
                        message,
                    } => error_plan(proto, code, &message, retry_after),
                    Step::Raw(bytes) => Plan::Raw(bytes),
                }
            }
        } else {
            match (head.method.as_str(), path) {
                ("GET", "/v1/models" | "/models") => json_plan(json!({
                    "object": "list",
                    "data": [{"id": "stub-model", "object": "model", "created": 0, "owned_by": "llm-stub"}]
                })),
                ("GET", "/api/tags") => json_plan(json!({
                    "models": [{"name": "stub-model", "model": "stub-model", "size": 0, "digest": "stub"}]
                })),
                ("GET", "/api/version") => json_plan(json!({"version": "0.0.0-llm-stub"})),
                ("GET", "/") => Plan::Simple {
                    status: 200,
                    content_type: "text/plain; charset=utf-8",
                    body: "Ollama is running".to_string(),
                    retry_after: None,
                },
                _ => error_plan(
                    Protocol::OpenAi,
                    404,
                    &format!("llm-stub: no route for {path}"),
                    None,
                ),
            }
        };

        let delay = shared.config.latency + extra_delay;
        if !delay.is_zero() && !self.wait_or_gone(delay, head.keep_alive).await {
            return false;
        }

        let keep_alive = head.keep_alive;
        match plan {
            Plan::Simple {
                status,
                content_type,
                body,
                retry_after,
            } => {
                let mut out = Vec::with_capacity(256 + body.len());
                http::write_head(
                    &mut out,
                    &HeadSpec {
                        status,
                        content_type,
                        content_length: Some(body.len()),
                        retry_after: retry_after.as_deref(),
                        request_id: rec.seq,
                        conn,
                    },
                );
                out.extend_from_slice(body.as_bytes());
                self.stream.write_all(&out).await.is_ok() && keep_alive
            }
            Plan::Chat { proto, kind } => {
                self.write_chat(&shared, &rec, proto, kind, conn, received_at)
                    .await
                    && keep_alive
            }
            Plan::Raw(bytes) => {
                let _ = self.stream.write_all(&bytes).await;
                let _ = self.stream.shutdown().await;
                false
            }
        }
    }

    async fn write_chat(
        &mut self,
        shared: &Shared,
        rec: &RecordedRequest,
        proto: Protocol,
        kind: ChatKind,
        conn: ConnHeader,
        received_at: Instant,
    ) -> bool {
        let full_text = match &kind {
            ChatKind::Reply(Some(t)) => t.clone(),
            _ => shared.reply_text(rec),
        };
        let (text, truncated) = match proto.max_tokens(&rec.body) {
            Some(max) => truncate_words(&full_text, max),
            None => (full_text.as_str(), false),
        };
        let model = rec.model().unwrap_or("unknown");
        let completion = Completion {
            seq: rec.seq,
            model,
            text,
            input_tokens: count_input_tokens(&rec.body),
            output_tokens: count_words(text),
            truncated,
            elapsed_ns: received_at.elapsed().as_nanos() as u64,
        };
        let stream = rec
            .body
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(proto.stream_default());

        if !stream {
            let body = match kind {
                ChatKind::Malformed => proto.malformed_body(&completion),
                _ => proto.body(&completion),
            };
            let mut out = Vec::with_capacity(256 + body.len());
            http::write_head(
                &mut out,
                &HeadSpec {
                    status: 200,
                    content_type: "application/json",
                    content_length: Some(body.len()),
                    retry_after: None,
                    request_id: rec.seq,
                    conn,
                },
            );
            if matches!(kind, ChatKind::CloseMidBody) {
                let mut cut = body.len() / 2;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.extend_from_slice(&body.as_bytes()[..cut]);
                let _ = self.stream.write_all(&out).await;
                return false;
            }
            out.extend_from_slice(body.as_bytes());
            return self.stream.write_all(&out).await.is_ok();
        }

        let include_usage = rec
            .body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut events = match kind {
            ChatKind::Malformed => proto.malformed_stream_events(&completion),
            _ => proto.stream_events(&completion, include_usage),
        };
        let close_mid = matches!(kind, ChatKind::CloseMidBody);
        if close_mid {
            // Keep the opening events and the first content piece, drop the rest.
            let keep = match proto {
                Protocol::OpenAi => 2,
                Protocol::Ollama => 1,
                Protocol::Anthropic => 4,
            };
            events.truncate(keep.min(events.len().saturating_sub(1)).max(1));
        }

        let mut out = Vec::with_capacity(512);
        http::write_head(
            &mut out,
            &HeadSpec {
                status: 200,
                content_type: proto.stream_content_type(),
                content_length: None,
                retry_after: None,
                request_id: rec.seq,
                conn,
            },
        );
        let chunk_delay = shared.config.chunk_delay;
        let last = events.len() - 1;
        for (i, event) in events.iter().enumerate() {
            if i > 0 && !chunk_delay.is_zero() {
                if !out.is_empty() {
                    if self.stream.write_all(&out).await.is_err() {
                        return false;
                    }
                    out.clear();
                }
                if !self
                    .wait_or_gone(chunk_delay, conn != ConnHeader::Close)
                    .await
                {
                    return false;
                }
            }
            http::write_chunk(&mut out, event.as_bytes());
            if i == last && !close_mid {
                out.extend_from_slice(http::LAST_CHUNK);
            }
            if self.stream.write_all(&out).await.is_err() {
                return false;
            }
            out.clear();
        }
        !close_mid
    }
}

/// How far before a deadline the coarse timer hands over to [`finish_precisely`].
const TIMER_SLACK: Duration = Duration::from_micros(1500);

/// Yields until `deadline`, so a delay ends within microseconds of when it should.
async fn finish_precisely(deadline: std::time::Instant) {
    while std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_at_word_limit() {
        assert_eq!(truncate_words("a b c d", 2), ("a b", true));
        assert_eq!(truncate_words("a b", 2), ("a b", false));
        assert_eq!(truncate_words("  a  b c", 1), ("  a", true));
    }

    #[test]
    fn contains_matches_escaped_form() {
        assert!(body_contains(r#"{"a":"x\"y"}"#, "x\"y"));
        assert!(body_contains(r#"{"a":"line1\nline2"}"#, "1\nline"));
        assert!(!body_contains(r#"{"a":"b"}"#, "zzz"));
    }
}
