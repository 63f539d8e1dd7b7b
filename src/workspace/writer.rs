//! Writes off the runtime's thread, each atomic (temp file, then rename). A task's files are a
//! batch written in order on the blocking pool and awaited: its durable record (the cache
//! entry) lands before its output, so no finished output ever lacks its record, and a failure
//! fails the task. Run-level checkpoints (`run.json`) go through one background thread in the
//! order queued, fire-and-forget; their failures are returned by `finish`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A failed write: the path and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("failed to write `{}`: {source}", crate::source::display_path(path))]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Detached writes, in the order queued (a later `run.json` never lands before an earlier one).
struct Job {
    files: Vec<(PathBuf, Vec<u8>)>,
}

pub struct BackgroundWriter {
    temp_dir: PathBuf,
    sender: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<Vec<WriteError>>>,
}

/// A batch being written on the blocking pool; await it to learn whether every file was
/// written.
pub struct Pending(tokio::task::JoinHandle<Result<(), WriteError>>);

impl Pending {
    pub async fn wait(self) -> Result<(), WriteError> {
        self.0.await.unwrap_or_else(|e| {
            Err(WriteError {
                path: PathBuf::from("(the workspace writer)"),
                source: std::io::Error::other(e.to_string()),
            })
        })
    }
}

fn write_all(temp_dir: &Path, files: Vec<(PathBuf, Vec<u8>)>) -> Result<(), WriteError> {
    for (path, bytes) in files {
        if let Err(source) = super::files::write_atomic_in(temp_dir, &path, &bytes) {
            return Err(WriteError { path, source });
        }
    }
    Ok(())
}

impl BackgroundWriter {
    /// Writes go through temp files in `temp_dir`.
    pub fn start(temp_dir: &Path) -> BackgroundWriter {
        let (sender, receiver) = mpsc::channel::<Job>();
        let dir = temp_dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("super-writer".into())
            .spawn(move || {
                let mut failures = Vec::new();
                for job in receiver {
                    if let Err(error) = write_all(&dir, job.files) {
                        failures.push(error);
                    }
                }
                failures
            })
            .ok();
        BackgroundWriter {
            temp_dir: temp_dir.to_path_buf(),
            sender: thread.as_ref().map(|_| sender),
            thread,
        }
    }

    /// Writes files in order on the runtime's blocking pool (never on its thread); the result
    /// can be awaited. Must be called inside the runtime.
    pub fn write(&self, files: Vec<(PathBuf, Vec<u8>)>) -> Pending {
        let dir = self.temp_dir.clone();
        Pending(tokio::task::spawn_blocking(move || write_all(&dir, files)))
    }

    /// Queues a write nobody waits for; a failure is returned by `finish`.
    pub fn write_detached(&self, path: PathBuf, bytes: Vec<u8>) -> Option<WriteError> {
        let files = vec![(path, bytes)];
        match &self.sender {
            Some(sender) => match sender.send(Job { files }) {
                Ok(()) => None,
                Err(mpsc::SendError(job)) => write_all(&self.temp_dir, job.files).err(),
            },
            None => write_all(&self.temp_dir, files).err(),
        }
    }

    /// Waits for every queued write; returns the detached ones that failed.
    pub fn finish(mut self) -> Vec<WriteError> {
        self.sender.take();
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_a_failed_write_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = BackgroundWriter::start(dir.path());
        let good = dir.path().join("a.txt");
        let bad = dir.path().join("missing/b.txt");
        writer
            .write(vec![(good.clone(), b"a".to_vec())])
            .wait()
            .await
            .expect("written");
        let error = writer
            .write(vec![
                (bad.clone(), b"b".to_vec()),
                (good.clone(), b"changed".to_vec()),
            ])
            .wait()
            .await
            .expect_err("no folder");
        assert_eq!(error.path, bad);
        assert_eq!(
            std::fs::read(&good).expect("read"),
            b"a",
            "the batch stopped at the failure"
        );
        assert!(writer.write_detached(bad.clone(), b"c".to_vec()).is_none());
        let failures = writer.finish();
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0].to_string().contains("missing/b.txt"),
            "{}",
            failures[0]
        );
    }
}
