//! Record and replay. `--record FILE` appends every call as a JSON line (key, task, canonical
//! request, response, usage). `--replay FILE` answers every call from such a file with no
//! network; a call missing from it fails closed, naming the task and showing how its request
//! differs from the nearest recorded one.

use crate::provider::{ChatRequest, ChatResponse, ErrorKind, ProviderError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    pub key: String,
    pub task: String,
    pub provider: String,
    pub request: ChatRequest,
    pub response: ChatResponse,
}

pub struct Recorder {
    file: Mutex<std::fs::File>,
}

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Ok(Recorder {
            file: Mutex::new(file),
        })
    }

    pub fn append(&self, recording: &Recording) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(recording).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line: a crash leaves whole lines only, bar the last.
        file.write_all(&line)
    }
}

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

    pub fn answer(
        &self,
        key: &str,
        task: &str,
        request: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        if let Some(recording) = self.by_key.get(key) {
            return Ok(recording.response.clone());
        }
        let nearest = self.all.iter().rev().find(|r| r.task == task).or_else(|| {
            self.all
                .iter()
                .min_by_key(|r| strsim::levenshtein(&r.request.user, &request.user))
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

fn request_text(request: &ChatRequest) -> String {
    let mut text = format!(
        "model: {}\ntemperature: {:?}\nmax_tokens: {:?}\ntop_p: {:?}\nseed: {:?}\n[system]\n",
        request.model, request.temperature, request.max_tokens, request.top_p, request.seed
    );
    text.push_str(&request.system);
    text.push_str("\n[user]\n");
    text.push_str(&request.user);
    text
}

/// A unified-style line diff: `-` recorded, `+` now.
pub fn diff_requests(recorded: &ChatRequest, now: &ChatRequest) -> String {
    let old = request_text(recorded);
    let new = request_text(now);
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
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
