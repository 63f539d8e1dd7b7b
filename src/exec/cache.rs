//! The content-addressed task cache. A task's key hashes everything its output depends on:
//! provider, model and generation parameters, the rendered prompts, `expected_output` and the
//! hashes of its context tasks' outputs, so `--resume` and `--from` reuse exactly the tasks
//! whose inputs did not change.
//!
//! A run's task outputs are appended, one JSON line per entry, to `.cache/journal.jsonl` (one
//! open file per run, no file per task); the manager's decisions and `agent evaluate`'s
//! answers, and caches written before the journal, are files `.cache/<key>.json`. A lookup
//! reads the journal's keys once (`load`), remembering where each line starts, and reads an
//! entry's line only when asked; the last line of a key wins; a line that does not parse (a
//! write cut short by a full disk) is skipped. `load` also rewrites a journal that holds more
//! repeated lines than distinct keys (runs with `--fresh` of the same tasks), before any task
//! runs.

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

/// The journal of task outputs in the cache folder.
pub const JOURNAL: &str = "journal.jsonl";

/// Where each key's last line sits in the journal.
type Index = std::collections::HashMap<String, (u64, usize)>;

#[derive(Debug, Clone)]
pub struct TaskCache {
    dir: PathBuf,
    /// The journal's lines by key, read by `load` (empty until then).
    index: std::sync::Arc<std::sync::OnceLock<Index>>,
}

impl TaskCache {
    /// A cache in `dir` (written through the workspace writer).
    pub fn new(dir: &Path) -> TaskCache {
        TaskCache {
            dir: dir.to_path_buf(),
            index: std::sync::Arc::default(),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The journal's path.
    pub fn journal(&self) -> PathBuf {
        self.dir.join(JOURNAL)
    }

    /// Reads the journal's keys (for a run that reuses outputs), compacting it first when most
    /// of its lines repeat a key. Call before any task of the run appends; without it, lookups
    /// see only the `<key>.json` files.
    pub fn load(&self) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        let path = self.journal();
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Set once: a second `load` keeps the first index.
                let _ = self.index.set(Index::new());
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        // Read line by line: the journal of many runs is never held whole.
        let (mut index, lines) = index_lines(std::io::BufReader::new(&file))?;
        if lines > 2 * index.len() && lines > 64 {
            // Keep each key's last line, in the order they were written.
            let mut kept: Vec<(u64, usize)> = index.values().copied().collect();
            kept.sort_unstable();
            let mut compacted = Vec::with_capacity(kept.iter().map(|(_, n)| n + 1).sum());
            for (start, len) in kept {
                let at = compacted.len();
                compacted.resize(at + len, 0);
                file.read_exact_at(&mut compacted[at..], start)?;
                compacted.push(b'\n');
            }
            crate::workspace::files::write_atomic(&path, &compacted)?;
            index = index_lines(compacted.as_slice())?.0;
        }
        let _ = self.index.set(index);
        Ok(())
    }

    /// A finished output for this key, if one is stored whole.
    pub fn get(&self, key: &str) -> Option<CacheEntry> {
        if let Some(&(start, len)) = self.index.get().and_then(|index| index.get(key)) {
            if let Some(entry) = self.read_line(start, len).filter(|e| e.key == key) {
                return Some(entry);
            }
        }
        let bytes = std::fs::read(self.path(key)).ok()?;
        let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        (entry.key == key).then_some(entry)
    }

    fn read_line(&self, start: u64, len: usize) -> Option<CacheEntry> {
        use std::os::unix::fs::FileExt as _;
        let file = std::fs::File::open(self.journal()).ok()?;
        let mut line = vec![0; len];
        file.read_exact_at(&mut line, start).ok()?;
        serde_json::from_slice(&line).ok()
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

    /// The entry as a line of the journal (its path and bytes), for the workspace writer.
    pub fn journal_line(
        &self,
        entry: &CacheEntry,
    ) -> Result<(PathBuf, Vec<u8>), crate::workspace::WriteError> {
        let path = self.journal();
        match serde_json::to_vec(entry) {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                Ok((path, bytes))
            }
            Err(e) => Err(crate::workspace::WriteError {
                path,
                source: std::io::Error::other(e),
            }),
        }
    }
}

/// The journal's keys with where their last whole line starts and its length, and how many
/// lines parsed.
fn index_lines(mut reader: impl std::io::BufRead) -> std::io::Result<(Index, usize)> {
    #[derive(Deserialize)]
    struct Key {
        key: String,
    }
    let mut index = Index::new();
    let mut lines = 0;
    let mut start = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        let here = start;
        start += read as u64;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.is_empty() {
            continue;
        }
        if let Ok(Key { key }) = serde_json::from_slice::<Key>(text) {
            lines += 1;
            index.insert(key, (here, text.len()));
        }
    }
    Ok((index, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, output: &str) -> CacheEntry {
        CacheEntry {
            key: key.into(),
            task: "t".into(),
            provider: "openai".into(),
            model: "m".into(),
            output: output.into(),
            usage: Usage::default(),
        }
    }

    fn append(cache: &TaskCache, entry: &CacheEntry) {
        let (path, line) = cache.journal_line(entry).expect("line");
        let file = crate::workspace::files::open_append(&path).expect("open");
        crate::workspace::files::append_line(&file, &line).expect("append");
    }

    #[test]
    fn the_last_line_of_a_key_wins_and_a_cut_line_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = TaskCache::new(dir.path());
        append(&cache, &entry("a", "first"));
        append(&cache, &entry("b", "bee"));
        append(&cache, &entry("a", "second"));
        // A write cut short by a full disk, then a whole line after it.
        let (path, line) = cache.journal_line(&entry("c", "cut")).expect("line");
        let file = crate::workspace::files::open_append(&path).expect("open");
        crate::workspace::files::append_line(&file, &line[..line.len() / 2]).expect("append");
        crate::workspace::files::append_line(&file, b"\n").expect("append");
        append(&cache, &entry("d", "after"));
        assert!(cache.get("a").is_none(), "nothing read before `load`");
        cache.load().expect("load");
        assert_eq!(cache.get("a").map(|e| e.output), Some("second".into()));
        assert_eq!(cache.get("b").map(|e| e.output), Some("bee".into()));
        assert_eq!(cache.get("c"), None);
        assert_eq!(cache.get("d").map(|e| e.output), Some("after".into()));
    }

    #[test]
    fn a_journal_of_mostly_repeated_keys_is_compacted_on_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = TaskCache::new(dir.path());
        for round in 0..40 {
            for key in ["a", "b", "c"] {
                append(&cache, &entry(key, &format!("{key}{round}")));
            }
        }
        cache.load().expect("load");
        let text = std::fs::read_to_string(cache.journal()).expect("journal");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert_eq!(cache.get("b").map(|e| e.output), Some("b39".into()));
        let fresh = TaskCache::new(dir.path());
        fresh.load().expect("load");
        assert_eq!(fresh.get("c").map(|e| e.output), Some("c39".into()));
    }

    #[test]
    fn entries_written_as_files_are_still_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = TaskCache::new(dir.path());
        let (path, bytes) = cache.entry_file(&entry("k", "old")).expect("file");
        std::fs::write(path, bytes).expect("write");
        cache.load().expect("load");
        assert_eq!(cache.get("k").map(|e| e.output), Some("old".into()));
    }
}
