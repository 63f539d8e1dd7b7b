//! Paths inside the workspace and atomic writes (a temp file beside the target, then a rename),
//! so a crash at any moment leaves either the old file or the new one, never half of one.

use crate::names::TaskName;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub const TASK_OUTPUTS: &str = "task_outputs";
pub const INTERMEDIATE: &str = "intermediate";
pub const ARTIFACTS: &str = "intermediate/artifacts";
pub const FINAL_RESULTS: &str = "final_results";
pub const CACHE: &str = ".cache";
/// Temp files of atomic writes, so no other folder ever holds half a file.
pub const TEMP: &str = ".tmp";
pub const HISTORY: &str = "history";
pub const MANIFEST: &str = "run.json";
pub const METRICS: &str = "metrics.json";
pub const TRACE: &str = "trace.jsonl";
pub const SHARED_DATA: &str = "intermediate/shared_data.json";
pub const FINAL_OUTPUT: &str = "final_results/orchestra_output.txt";
/// One record per task run on its own (`super orchestra run-task`, one pod per task).
pub const TASKS: &str = "tasks";

/// What a run leaves at the top of the workspace, moved to `history/<run-id>/` by the next run.
const RUN_FILES: &[&str] = &[
    TASK_OUTPUTS,
    TASKS,
    INTERMEDIATE,
    FINAL_RESULTS,
    MANIFEST,
    METRICS,
    TRACE,
];

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
}

/// Writes `bytes` to `path` through a temp file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_in(path.parent().unwrap_or(Path::new(".")), path, bytes)
}

/// The secrets every later write of this process hides (see [`redact_writes`]).
static WRITE_REDACTOR: std::sync::OnceLock<crate::redact::Redactor> = std::sync::OnceLock::new();

/// From now on, every file written through this module (outputs, error files, `run.json`,
/// the cache, metrics, trace) has these secrets and every URL's userinfo replaced by `***`:
/// the last line of defence, at the one place all workspace writes pass. Set once per process
/// (the run's keys, from `Redactor::for_models`); URL userinfo is hidden even when unset.
pub fn redact_writes(redactor: crate::redact::Redactor) {
    let _ = WRITE_REDACTOR.set(redactor);
}

/// `text` with the secrets every workspace write hides (see [`redact_writes`]).
pub fn redact_text(text: &str) -> std::borrow::Cow<'_, str> {
    match WRITE_REDACTOR.get() {
        Some(redactor) => redactor.redact(text),
        None => crate::redact::redact_urls(text),
    }
}

/// `bytes` with secrets hidden, when they are text.
fn redacted(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return std::borrow::Cow::Borrowed(bytes);
    };
    match redact_text(text) {
        std::borrow::Cow::Borrowed(_) => std::borrow::Cow::Borrowed(bytes),
        std::borrow::Cow::Owned(text) => std::borrow::Cow::Owned(text.into_bytes()),
    }
}

/// Opens the append-only file `path` (created when missing), never through a link.
pub fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Appends one whole line to `file` (opened by [`open_append`]) in one write, secrets hidden
/// first ([`redact_writes`]). Appends of whole lines from several threads never interleave.
pub fn append_line(file: &std::fs::File, line: &[u8]) -> std::io::Result<()> {
    let line = redacted(line);
    let mut file = file;
    file.write_all(&line)
}

/// Writes `bytes` to `path` through a temp file in `temp_dir` (on the same file system) and a
/// rename, so the target's folder never holds a partial file, even after a kill -9. Secrets
/// are hidden first ([`redact_writes`]).
pub fn write_atomic_in(temp_dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let bytes = &*redacted(bytes);
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = temp_dir.join(format!(".{name}.{}.{sequence}.tmp", std::process::id()));
    let in_temp = |error: std::io::Error| {
        std::io::Error::new(
            error.kind(),
            format!(
                "the temp file `{}`: {error}",
                crate::source::display_path(&temp)
            ),
        )
    };
    let result = (|| {
        // A new file only: never opened through a link or over a file left by another process.
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&temp).map_err(in_temp)?;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&temp)
                    .map_err(in_temp)?
            }
            other => other.map_err(in_temp)?,
        };
        file.write_all(bytes).map_err(in_temp)?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Removes every entry of `dir`, which must be a real folder, never a link (its entries'
/// links are removed, not followed); returns how many.
pub fn clear_folder(dir: &Path) -> std::io::Result<usize> {
    if std::fs::symlink_metadata(dir)?.file_type().is_symlink() {
        return Err(std::io::Error::other(
            "it is a symbolic link; super never writes through a link",
        ));
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        removed += 1;
    }
    Ok(removed)
}

impl Workspace {
    pub fn new(root: PathBuf) -> Workspace {
        Workspace { root }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Writes a file of the workspace atomically, its temp file in `.tmp/`.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        write_atomic_in(&self.root.join(TEMP), path, bytes)
    }

    pub fn task_output(&self, task: &TaskName) -> PathBuf {
        self.root
            .join(TASK_OUTPUTS)
            .join(format!("{task}_output.txt"))
    }

    /// A structured task's validated object, pretty-printed.
    pub fn task_output_json(&self, task: &TaskName) -> PathBuf {
        self.root
            .join(TASK_OUTPUTS)
            .join(format!("{task}_output.json"))
    }

    pub fn task_prompt(&self, task: &TaskName) -> PathBuf {
        self.root
            .join(TASK_OUTPUTS)
            .join(format!("{task}_prompt.md"))
    }

    /// What a running task has streamed so far (removed when it ends; see `partial`).
    pub fn task_partial(&self, task: &str) -> PathBuf {
        super::partial::partial_path(&self.root, task)
    }

    /// Where a failed task's errors go (the seed's `failed_task_output.txt` idea, per task).
    pub fn task_error(&self, task: &TaskName) -> PathBuf {
        self.root
            .join(TASK_OUTPUTS)
            .join(format!("{task}_error.txt"))
    }

    /// `tasks/<task>.json`: the task's record when it ran on its own (`run-task`).
    pub fn task_record(&self, task: &TaskName) -> PathBuf {
        self.root.join(TASKS).join(format!("{task}.json"))
    }

    /// `tasks/.<task>.lock`: held (flock) by the one process running the task on its own.
    pub fn task_lock(&self, task: &TaskName) -> PathBuf {
        self.root.join(TASKS).join(format!(".{task}.lock"))
    }

    /// `.tmp/<task>/`: the temp files of a task run on its own, so the processes of different
    /// tasks never share a temp file, and the task's lock holder may clear what a killed
    /// process left.
    pub fn task_temp(&self, task: &TaskName) -> PathBuf {
        self.root.join(TEMP).join(task.as_str())
    }

    /// Creates the layout and removes what runs killed mid-write left in `.tmp/` (only this
    /// process, holding the lock, writes there now).
    pub fn create_layout(&self) -> std::io::Result<()> {
        for dir in [TASK_OUTPUTS, ARTIFACTS, FINAL_RESULTS, CACHE, TEMP] {
            std::fs::create_dir_all(self.root.join(dir))?;
        }
        self.clean_temp()?;
        Ok(())
    }

    /// Removes every entry of `.tmp/` (orphans of killed runs); returns how many.
    pub fn clean_temp(&self) -> std::io::Result<usize> {
        clear_folder(&self.root.join(TEMP))
    }

    /// Moves the previous run's files under `history/<run-id>/`, so a new run never silently
    /// destroys the last one. Returns the id they were filed under.
    pub fn archive_previous(&self) -> std::io::Result<Option<String>> {
        let present: Vec<&str> = RUN_FILES
            .iter()
            .copied()
            .filter(|f| {
                let path = self.root.join(f);
                path.is_file()
                    || std::fs::read_dir(&path)
                        .map(|mut d| d.next().is_some())
                        .unwrap_or(false)
            })
            .collect();
        if present.is_empty() {
            return Ok(None);
        }
        let previous_id = std::fs::read(self.root.join(MANIFEST))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|v| {
                v.get("run_id")
                    .and_then(|id| id.as_str())
                    .map(str::to_string)
            })
            .filter(|id| crate::names::unsafe_reason(id).is_none())
            .unwrap_or_else(|| format!("unknown-{}", crate::exec::ids::timestamp_id()));
        let mut target = self.root.join(HISTORY).join(&previous_id);
        let mut n = 1;
        while target.exists() {
            n += 1;
            target = self.root.join(HISTORY).join(format!("{previous_id}-{n}"));
        }
        std::fs::create_dir_all(&target)?;
        for name in present {
            std::fs::rename(self.root.join(name), target.join(name))?;
        }
        let id = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&previous_id)
            .to_string();
        Ok(Some(id))
    }
}
