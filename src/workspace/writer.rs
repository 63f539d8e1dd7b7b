//! Writes off the dispatcher's thread. Task outputs, prompts and error files go through a
//! background thread (each still atomic: temp file, then rename), so the next request is not
//! held up by the file system. The task cache entry is the durable record and stays
//! synchronous; `finish` waits for every queued write.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

pub struct BackgroundWriter {
    temp_dir: PathBuf,
    sender: Option<mpsc::Sender<(PathBuf, Vec<u8>)>>,
    thread: Option<JoinHandle<Vec<(PathBuf, std::io::Error)>>>,
}

impl BackgroundWriter {
    /// Writes go through temp files in `temp_dir`.
    pub fn start(temp_dir: &Path) -> BackgroundWriter {
        let (sender, receiver) = mpsc::channel::<(PathBuf, Vec<u8>)>();
        let dir = temp_dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("super-writer".into())
            .spawn(move || {
                let mut failures = Vec::new();
                for (path, bytes) in receiver {
                    if let Err(error) = super::files::write_atomic_in(&dir, &path, &bytes) {
                        failures.push((path, error));
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

    /// Queues a write; written at once on this thread if the writer could not start.
    pub fn write(&self, path: PathBuf, bytes: Vec<u8>) {
        match &self.sender {
            Some(sender) => {
                if let Err(mpsc::SendError((path, bytes))) = sender.send((path, bytes)) {
                    let _ = super::files::write_atomic_in(&self.temp_dir, &path, &bytes);
                }
            }
            None => {
                let _ = super::files::write_atomic_in(&self.temp_dir, &path, &bytes);
            }
        }
    }

    /// Waits for every queued write; returns the ones that failed.
    pub fn finish(mut self) -> Vec<(PathBuf, std::io::Error)> {
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
