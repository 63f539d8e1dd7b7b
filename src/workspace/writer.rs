//! Writes off the runtime's thread, each atomic (temp file, then rename). A task's files are a
//! batch written in order by one of a few long-lived writer threads and awaited: its durable
//! record (a line of the cache's journal) lands before its output, so no finished output lacks its
//! record, and a failure fails the task. Run-level checkpoints (`run.json`) go through a thread
//! of their own in the order queued, fire-and-forget; their failures are returned by `finish`.
//!
//! Fixed threads rather than the runtime's blocking pool: a run of 10,000 tasks at 500 at once
//! would otherwise wake (and grow the pool to) dozens of threads, each with its own stack and
//! allocator arena, for writes that take microseconds.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

/// How many threads write task batches (the checkpoint thread comes on top).
const BATCH_THREADS: usize = 2;

/// Who writes task batches (see `RunSettings::writer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterKind {
    /// BATCH_THREADS threads of the writer's own.
    Threads,
    /// The runtime's blocking pool, one task per batch (virtual-time tests).
    BlockingPool,
}

/// A failed write: the path and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("failed to write `{}`: {source}", crate::source::display_path(path))]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

type Files = Vec<(PathBuf, Vec<u8>)>;

/// A task's batch and where its result goes.
struct Batch {
    /// A line appended to a journal before the files (the task cache's record).
    line: Option<(PathBuf, Vec<u8>)>,
    files: Files,
    done: tokio::sync::oneshot::Sender<Result<(), WriteError>>,
}

/// The journals appended to, each opened once per run and shared by the writer threads.
#[derive(Default)]
struct Journals(Mutex<std::collections::HashMap<PathBuf, Arc<std::fs::File>>>);

impl Journals {
    fn append(&self, path: &Path, line: &[u8]) -> Result<(), WriteError> {
        let fail = |source| WriteError {
            path: path.to_path_buf(),
            source,
        };
        let file = {
            let mut open = self
                .0
                .lock()
                .map_err(|_| fail(std::io::Error::other("a writer thread panicked")))?;
            match open.get(path) {
                Some(file) => Arc::clone(file),
                None => {
                    let file = Arc::new(super::files::open_append(path).map_err(fail)?);
                    open.insert(path.to_path_buf(), Arc::clone(&file));
                    file
                }
            }
        };
        super::files::append_line(&file, line).map_err(fail)
    }
}

fn write_batch(temp_dir: &Path, journals: &Journals, batch: Batch) {
    let result = match &batch.line {
        Some((path, line)) => journals.append(path, line),
        None => Ok(()),
    }
    .and_then(|()| write_all(temp_dir, batch.files));
    // Nobody waiting any more (the task was dropped) is not an error.
    let _ = batch.done.send(result);
}

pub struct BackgroundWriter {
    temp_dir: PathBuf,
    journals: Arc<Journals>,
    kind: WriterKind,
    batches: Option<mpsc::Sender<Batch>>,
    batch_threads: Vec<JoinHandle<()>>,
    /// Detached writes, in the order queued (a later `run.json` never lands before an earlier
    /// one).
    detached: Option<mpsc::Sender<Files>>,
    detached_thread: Option<JoinHandle<Vec<WriteError>>>,
}

/// A batch being written; await it to learn whether every file was written.
pub struct Pending(tokio::sync::oneshot::Receiver<Result<(), WriteError>>);

impl Pending {
    pub async fn wait(self) -> Result<(), WriteError> {
        self.0.await.unwrap_or_else(|_| {
            Err(WriteError {
                path: PathBuf::from("(the workspace writer)"),
                source: std::io::Error::other("the writer thread stopped"),
            })
        })
    }
}

fn write_all(temp_dir: &Path, files: Files) -> Result<(), WriteError> {
    for (path, bytes) in files {
        if let Err(source) = super::files::write_atomic_in(temp_dir, &path, &bytes) {
            return Err(WriteError { path, source });
        }
    }
    Ok(())
}

impl BackgroundWriter {
    /// Writes go through temp files in `temp_dir`.
    pub fn start(temp_dir: &Path, kind: WriterKind) -> BackgroundWriter {
        let (batches, receiver) = mpsc::channel::<Batch>();
        let receiver = Arc::new(Mutex::new(receiver));
        let journals = Arc::new(Journals::default());
        let threads = match kind {
            WriterKind::Threads => BATCH_THREADS,
            WriterKind::BlockingPool => 0,
        };
        let batch_threads: Vec<JoinHandle<()>> = (0..threads)
            .filter_map(|n| {
                let receiver = Arc::clone(&receiver);
                let journals = Arc::clone(&journals);
                let dir = temp_dir.to_path_buf();
                std::thread::Builder::new()
                    .name(format!("super-writer-{n}"))
                    .spawn(move || loop {
                        // The lock is held only while taking the next batch.
                        let next = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(batch) = next else { return };
                        write_batch(&dir, &journals, batch);
                    })
                    .ok()
            })
            .collect();
        let (detached, receiver) = mpsc::channel::<Files>();
        let dir = temp_dir.to_path_buf();
        let detached_thread = std::thread::Builder::new()
            .name("super-checkpoint".into())
            .spawn(move || {
                let mut failures = Vec::new();
                for files in receiver {
                    if let Err(error) = write_all(&dir, files) {
                        failures.push(error);
                    }
                }
                failures
            })
            .ok();
        BackgroundWriter {
            temp_dir: temp_dir.to_path_buf(),
            journals,
            kind,
            batches: (!batch_threads.is_empty()).then_some(batches),
            batch_threads,
            detached: detached_thread.as_ref().map(|_| detached),
            detached_thread,
        }
    }

    /// Writes files in order on a writer thread (never on the runtime's); the result can be
    /// awaited. Without a writer thread (the system refused one), writes at once.
    pub fn write(&self, files: Files) -> Pending {
        self.write_recorded(None, files)
    }

    /// Appends `line` to the journal at its path (opened once), then writes `files` in order,
    /// stopping at the first failure: a task's record lands before its output.
    pub fn write_recorded(&self, line: Option<(PathBuf, Vec<u8>)>, files: Files) -> Pending {
        let (done, receiver) = tokio::sync::oneshot::channel();
        let batch = Batch { line, files, done };
        if self.kind == WriterKind::BlockingPool {
            let dir = self.temp_dir.clone();
            let journals = Arc::clone(&self.journals);
            // A batch dropped unwritten (the runtime shutting down) is reported by `wait`.
            drop(tokio::task::spawn_blocking(move || {
                write_batch(&dir, &journals, batch)
            }));
            return Pending(receiver);
        }
        let batch = match &self.batches {
            Some(sender) => match sender.send(batch) {
                Ok(()) => return Pending(receiver),
                Err(mpsc::SendError(batch)) => batch,
            },
            None => batch,
        };
        // Written here and now; the result already waits in the channel.
        write_batch(&self.temp_dir, &self.journals, batch);
        Pending(receiver)
    }

    /// Queues a write nobody waits for; a failure is returned by `finish`.
    pub fn write_detached(&self, path: PathBuf, bytes: Vec<u8>) -> Option<WriteError> {
        let files = vec![(path, bytes)];
        match &self.detached {
            Some(sender) => match sender.send(files) {
                Ok(()) => None,
                Err(mpsc::SendError(files)) => write_all(&self.temp_dir, files).err(),
            },
            None => write_all(&self.temp_dir, files).err(),
        }
    }

    /// Waits for every queued write; returns the detached ones that failed.
    pub fn finish(mut self) -> Vec<WriteError> {
        self.stop()
    }

    fn stop(&mut self) -> Vec<WriteError> {
        self.batches.take();
        // A batch thread that panicked dropped the senders of its batches: their tasks
        // already failed with "the writer thread stopped".
        for thread in self.batch_threads.drain(..) {
            let _ = thread.join();
        }
        self.detached.take();
        match self.detached_thread.take().map(JoinHandle::join) {
            None => Vec::new(),
            Some(Ok(failures)) => failures,
            Some(Err(_)) => vec![WriteError {
                path: self.temp_dir.clone(),
                source: std::io::Error::other(
                    "the checkpoint writer stopped; a run.json checkpoint may be missing",
                ),
            }],
        }
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_a_failed_write_with_its_path() {
        for kind in [WriterKind::Threads, WriterKind::BlockingPool] {
            failed_write_is_reported(kind).await;
        }
    }

    async fn failed_write_is_reported(kind: WriterKind) {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = BackgroundWriter::start(dir.path(), kind);
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
