//! Record and replay, as wrappers around a provider. `--record FILE` appends every call as a
//! JSON line (key, task, provider, the whole canonical request, the response); `--replay FILE`
//! answers every call from such a file with no network. A call's key hashes the provider and
//! the whole request (conversation, tools, response format, sampling), so every call of a
//! multi-call task has its own entry. A call missing from the recording fails closed, naming
//! the task and showing how its request differs from the nearest recorded one.

use super::chat::{CallContext, ChatProvider};
use super::types::{ChatRequest, ChatResponse, ErrorKind, ProviderError};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    pub key: String,
    pub task: String,
    pub provider: String,
    pub request: ChatRequest,
    pub response: ChatResponse,
}

/// The key of one call.
pub fn call_key(provider: &str, request: &ChatRequest) -> String {
    let canonical = serde_json::json!({"provider": provider, "request": request});
    crate::exec::cache::sha256_hex(canonical.to_string().as_bytes())
}

/// The recording file, shared by every endpoint's wrapper.
pub struct RecordFile {
    file: Mutex<std::fs::File>,
}

impl RecordFile {
    pub fn create(path: &Path) -> std::io::Result<RecordFile> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Ok(RecordFile {
            file: Mutex::new(file),
        })
    }

    fn append(&self, recording: &Recording) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(recording).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line: a crash leaves whole lines only, bar the last.
        file.write_all(&line)
    }
}

/// Records every successful call of the provider it wraps.
pub struct Recorder {
    inner: Arc<dyn ChatProvider>,
    provider: String,
    file: Arc<RecordFile>,
}

impl Recorder {
    pub fn new(inner: Arc<dyn ChatProvider>, provider: &str, file: Arc<RecordFile>) -> Recorder {
        Recorder {
            inner,
            provider: provider.to_string(),
            file,
        }
    }
}

impl ChatProvider for Recorder {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        call: CallContext<'a>,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            let response = self.inner.complete(request, call).await?;
            let recording = Recording {
                key: call_key(&self.provider, request),
                task: call.task.to_string(),
                provider: self.provider.clone(),
                request: request.clone(),
                response: response.clone(),
            };
            self.file.append(&recording).map_err(|e| {
                ProviderError::new(
                    ErrorKind::Io,
                    format!("failed to append the call to the recording: {e}"),
                )
            })?;
            Ok(response)
        })
    }
}

/// Every call of a recording, by key.
pub struct Replayer {
    by_key: HashMap<String, Recording>,
    all: Vec<Recording>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("failed to read the recording `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` line {line} is not a recorded call: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
}

impl Replayer {
    pub fn open(path: &Path) -> Result<Replayer, ReplayError> {
        let shown = crate::source::display_path(path);
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut by_key = HashMap::new();
        let mut all = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let recording: Recording =
                serde_json::from_str(line).map_err(|e| ReplayError::Parse {
                    path: shown.clone(),
                    line: number + 1,
                    message: e.to_string(),
                })?;
            by_key.insert(recording.key.clone(), recording.clone());
            all.push(recording);
        }
        Ok(Replayer { by_key, all })
    }

    /// The tools a task was offered in the recorded run (those of its first recorded call that
    /// had any), so a replay offers the same definitions without starting a server.
    pub fn tool_definitions(&self, task: &str) -> Option<Vec<super::types::ToolDefinition>> {
        self.all
            .iter()
            .find(|r| r.task == task && !r.request.tools.is_empty())
            .map(|r| r.request.tools.clone())
    }

    /// The result the recorded run handed the model for a call of `tool` with `arguments`:
    /// the tool message answering such a call in a later recorded request of the task.
    pub fn tool_result(
        &self,
        task: &str,
        tool: &str,
        arguments: &serde_json::Value,
    ) -> Option<String> {
        use super::types::Role;
        self.all.iter().filter(|r| r.task == task).find_map(|r| {
            let messages = &r.request.messages;
            messages
                .iter()
                .filter(|m| m.role == Role::Assistant)
                .flat_map(|m| &m.tool_calls)
                .filter(|c| c.name == tool && &c.arguments == arguments)
                .find_map(|c| {
                    messages
                        .iter()
                        .find(|m| {
                            m.role == Role::Tool && m.tool_call_id.as_deref() == Some(c.id.as_str())
                        })
                        .map(|m| m.content.clone())
                })
        })
    }

    pub fn answer(
        &self,
        provider: &str,
        task: &str,
        request: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        if let Some(recording) = self.by_key.get(&call_key(provider, request)) {
            return Ok(recording.response.clone());
        }
        let now = request_text(request);
        let nearest = self
            .all
            .iter()
            .filter(|r| r.task == task)
            .min_by_key(|r| strsim::levenshtein(&request_text(&r.request), &now))
            .or_else(|| {
                self.all
                    .iter()
                    .min_by_key(|r| strsim::levenshtein(&request_text(&r.request), &now))
            });
        let message = match nearest {
            Some(recorded) => format!(
                "task `{task}`: no recorded call matches this request (replay fails closed); nearest recorded request is task `{}`, differing as follows:\n{}",
                recorded.task,
                diff_requests(&recorded.request, request)
            ),
            None => format!("task `{task}`: the recording holds no calls (replay fails closed)"),
        };
        Err(ProviderError::new(ErrorKind::NotRecorded, message))
    }
}

/// Answers one endpoint's calls from the recording.
pub struct Replay {
    replayer: Arc<Replayer>,
    provider: String,
}

impl Replay {
    pub fn new(replayer: Arc<Replayer>, provider: &str) -> Replay {
        Replay {
            replayer,
            provider: provider.to_string(),
        }
    }
}

impl ChatProvider for Replay {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        call: CallContext<'a>,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        let answer = self.replayer.answer(&self.provider, call.task, request);
        Box::pin(async move {
            let response = answer?;
            (call.on_token)(&response.text);
            Ok(response)
        })
    }
}

fn request_text(request: &ChatRequest) -> String {
    let sampling = &request.sampling;
    let mut text = format!(
        "model: {}\ntemperature: {:?}\nmax_tokens: {:?}\ntop_p: {:?}\nseed: {:?}\n",
        request.model, sampling.temperature, sampling.max_tokens, sampling.top_p, sampling.seed
    );
    for message in &request.messages {
        text.push_str(&format!(
            "[{}]\n{}\n",
            message.role.as_str(),
            message.content
        ));
        for call in &message.tool_calls {
            text.push_str(&format!("(call {} {})\n", call.name, call.arguments));
        }
    }
    for tool in &request.tools {
        text.push_str(&format!("[tool {}] {}\n", tool.name, tool.parameters));
    }
    if let Some(format) = &request.response_format {
        text.push_str(&format!(
            "[response format {}] {}\n",
            format.name, format.schema
        ));
    }
    text
}

/// A unified-style line diff: `-` recorded, `+` now.
pub fn diff_requests(recorded: &ChatRequest, now: &ChatRequest) -> String {
    let old = request_text(recorded);
    let new = request_text(now);
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        // Too large for a line diff: name the first line that differs.
        let first = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        return format!(
            "  - (recorded: {} lines) + (now: {} lines); first difference at line {}\n  - {}\n  + {}\n",
            a.len(),
            b.len(),
            first + 1,
            a.get(first).unwrap_or(&""),
            b.get(first).unwrap_or(&"")
        );
    }
    // Longest common subsequence table; prompts are small.
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || table[i][j + 1] >= table[i + 1][j]) {
            out.push_str(&format!("  + {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("  - {}\n", a[i]));
            i += 1;
        }
    }
    out
}
