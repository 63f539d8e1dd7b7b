//! The content-addressed task cache. A task's key hashes everything its output depends on:
//! provider, model and generation parameters, the rendered prompts, `expected_output` and the
//! hashes of its context tasks' outputs. Outputs live in `.cache/<key>.json`, so `--resume`
//! and `--from` reuse exactly the tasks whose inputs did not change.

use crate::provider::{ChatRequest, ModelChoice, Usage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The key of one task's call.
pub fn task_key(
    choice: &ModelChoice,
    request: &ChatRequest,
    expected_output: Option<&str>,
    context_hashes: &[String],
    inputs: &crate::inputs::InputValues,
) -> String {
    let mut canonical = serde_json::json!({
        "provider": choice.endpoint.provider,
        "model": request.model,
        "sampling": request.sampling,
        "messages": request.messages,
        "tools": request.tools,
        "response_format": request.response_format,
        "expected_output": expected_output,
        "context": context_hashes,
    });
    // The inputs the task uses (`--var`, `--vars`, defaults): a changed value runs it again.
    // Absent when it uses none, so the keys of tasks without inputs stay as they were.
    if !inputs.is_empty() {
        canonical["inputs"] = serde_json::json!(inputs);
    }
    sha256_hex(canonical.to_string().as_bytes())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CacheEntry {
    pub key: String,
    pub task: String,
    pub provider: String,
    pub model: String,
    pub output: String,
    pub usage: Usage,
}

#[derive(Debug, Clone)]
pub struct TaskCache {
    dir: PathBuf,
}

impl TaskCache {
    /// A cache in `dir` (written through the workspace writer).
    pub fn new(dir: &Path) -> TaskCache {
        TaskCache {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// A finished output for this key, if one is stored whole.
    pub fn get(&self, key: &str) -> Option<CacheEntry> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        (entry.key == key).then_some(entry)
    }

    /// The entry as a file to write (its path and bytes), for the workspace writer.
    pub fn entry_file(
        &self,
        entry: &CacheEntry,
    ) -> Result<(PathBuf, Vec<u8>), crate::workspace::WriteError> {
        let path = self.path(&entry.key);
        match serde_json::to_vec(entry) {
            Ok(bytes) => Ok((path, bytes)),
            Err(e) => Err(crate::workspace::WriteError {
                path,
                source: std::io::Error::other(e),
            }),
        }
    }
}
