//! `task_outputs/<task>_output.partial`: what a running task has streamed so far, so another
//! process (`super orchestra logs --follow`) can watch it. A background thread appends the
//! streamed text (and a line per failed attempt) as it arrives, from the moment the task has
//! run for half a second (quick tasks never get a file); the file is removed once the
//! task's own files are written, so a finished run holds none (one killed mid-task keeps what
//! streamed, filed with the run under `history/`). Text is written up to its last whitespace
//! and passes the workspace's redaction, so a secret split across chunks is still hidden.
//! Best effort: a failed append is never a failed task.

use crate::exec::RunEvent;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often streamed text reaches the file.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A task streaming for less than this never gets a file: a run of 10,000 quick tasks creates
/// and deletes no file for them, while anyone following a real model's stream (seconds long)
/// sees it from its first words (what streamed before is written when the file is created).
const CREATE_AFTER: Duration = Duration::from_millis(500);

/// The file a task's streamed text goes to while it runs.
pub fn partial_path(root: &std::path::Path, task: &str) -> PathBuf {
    root.join(super::files::TASK_OUTPUTS)
        .join(format!("{task}_output.partial"))
}

enum Message {
    /// A task started (when): its file is created once it has run for CREATE_AFTER.
    Start(String, Instant),
    Text(String, String),
    /// Written whole, after what is pending.
    Line(String, String),
    Done(String),
}

pub struct PartialLog {
    sender: Option<mpsc::Sender<Message>>,
    thread: Option<JoinHandle<()>>,
}

/// One task's file and the text not yet written (after its last whitespace).
struct Open {
    /// Created once the task has run for CREATE_AFTER, or at its first failed attempt.
    file: Option<std::fs::File>,
    path: PathBuf,
    started: Instant,
    pending: String,
    /// What was written last ended a line (or nothing was written).
    at_line_start: bool,
}

impl Open {
    /// The file, new: never opened through a link left in its place.
    fn create(&mut self) {
        if self.file.is_some() {
            return;
        }
        let _ = std::fs::remove_file(&self.path);
        self.file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
            .ok();
    }

    fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.create();
        self.at_line_start = text.ends_with('\n');
        if let Some(file) = &mut self.file {
            let clean = super::files::redact_text(text);
            let _ = file.write_all(clean.as_bytes());
        }
    }

    /// Writes what is pending up to its last whitespace (all of it when `all`).
    fn flush(&mut self, all: bool) {
        let cut = if all {
            self.pending.len()
        } else {
            match self.pending.rfind(char::is_whitespace) {
                Some(at) => at + self.pending[at..].chars().next().map_or(1, char::len_utf8),
                None => return,
            }
        };
        let text: String = self.pending.drain(..cut).collect();
        self.write(&text);
    }
}

/// One message, in the order sent.
fn receive(root: &std::path::Path, open: &mut HashMap<String, Open>, message: Message) {
    match message {
        Message::Start(task, started) => {
            let path = partial_path(root, &task);
            open.insert(
                task,
                Open {
                    file: None,
                    path,
                    started,
                    pending: String::new(),
                    at_line_start: true,
                },
            );
        }
        Message::Text(task, text) => {
            if let Some(o) = open.get_mut(&task) {
                o.pending.push_str(&text);
            }
        }
        Message::Line(task, line) => {
            if let Some(o) = open.get_mut(&task) {
                o.flush(true);
                let start = if o.at_line_start { "" } else { "\n" };
                o.write(&format!("{start}{line}\n"));
            }
        }
        Message::Done(task) => {
            // Everything written, then removed: a follower holding the file open reads to its
            // end once the name is gone.
            if let Some(mut o) = open.remove(&task) {
                if o.file.is_some() {
                    o.flush(true);
                    let path = o.path.clone();
                    drop(o);
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

impl PartialLog {
    /// Starts the writer for the workspace at `root` (its `task_outputs/` exists).
    pub fn start(root: &std::path::Path) -> PartialLog {
        let (sender, receiver) = mpsc::channel::<Message>();
        let root = root.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("super-partial".into())
            .spawn(move || {
                let mut open: HashMap<String, Open> = HashMap::new();
                let mut flushed = Instant::now();
                loop {
                    // The thread wakes on its own every FLUSH_EVERY (or when `stop` unparks
                    // it) and takes what queued meanwhile: a send never has to wake it, so a
                    // run of 10,000 tasks pays no system call per event for this file.
                    std::thread::park_timeout(FLUSH_EVERY);
                    let mut open_senders = true;
                    loop {
                        let message = match receiver.try_recv() {
                            Ok(message) => message,
                            Err(mpsc::TryRecvError::Empty) => break,
                            Err(mpsc::TryRecvError::Disconnected) => {
                                open_senders = false;
                                break;
                            }
                        };
                        receive(&root, &mut open, message);
                    }
                    if !open_senders {
                        break;
                    }
                    // What streamed is written at least every FLUSH_EVERY.
                    if flushed.elapsed() >= FLUSH_EVERY {
                        for task in open.values_mut() {
                            if task.started.elapsed() >= CREATE_AFTER {
                                task.create();
                                task.flush(false);
                            }
                        }
                        flushed = Instant::now();
                    }
                }
                for task in open.values_mut() {
                    task.flush(true);
                }
            })
            .ok();
        PartialLog {
            sender: thread.as_ref().map(|_| sender),
            thread,
        }
    }

    fn send(&self, message: Message) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(message);
        }
    }

    /// Follows the run's events: a started task gets its file, its streamed text and failed
    /// attempts are appended, and the file is removed when it finishes or is skipped (text of
    /// anything else, such as a manager's calls, is not kept).
    pub fn observe(&self, event: &RunEvent) {
        match event {
            RunEvent::TaskStarted { name, .. } => {
                self.send(Message::Start(name.clone(), Instant::now()))
            }
            RunEvent::Token { name, text } => self.send(Message::Text(name.clone(), text.clone())),
            RunEvent::AttemptFailed {
                name,
                attempt,
                attempts,
                error,
                retry_in,
                ..
            } => {
                let next = match retry_in {
                    Some(delay) => format!("; retrying in {:.1}s", delay.as_secs_f64()),
                    None => String::new(),
                };
                self.send(Message::Line(
                    name.clone(),
                    format!("[attempt {attempt}/{attempts} failed: {error}{next}]"),
                ));
            }
            RunEvent::TaskFinished { record } => self.send(Message::Done(record.name.clone())),
            RunEvent::TaskSkipped { name, .. } => self.send(Message::Done(name.clone())),
            _ => {}
        }
    }

    fn stop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Dropping it writes what is pending and stops the thread.
impl Drop for PartialLog {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_text_lands_in_the_file_and_goes_when_the_task_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("task_outputs")).expect("mkdir");
        // A link planted where a's file goes is replaced, never written through.
        let target = dir.path().join("elsewhere.txt");
        std::fs::write(&target, "keep").expect("write");
        std::os::unix::fs::symlink(&target, partial_path(dir.path(), "a")).expect("symlink");
        let log = PartialLog::start(dir.path());
        for name in ["a", "b"] {
            log.observe(&RunEvent::TaskStarted {
                name: name.into(),
                agent: "w".into(),
                model: "m".into(),
                number: 1,
                total: 2,
                tools: None,
            });
        }
        log.observe(&RunEvent::Token {
            name: "plan".into(),
            text: "not a task".into(),
        });
        for piece in ["Hello ", "wor", "ld"] {
            log.observe(&RunEvent::Token {
                name: "a".into(),
                text: piece.into(),
            });
        }
        log.observe(&RunEvent::Token {
            name: "b".into(),
            text: "kept".into(),
        });
        log.observe(&RunEvent::AttemptFailed {
            name: "a".into(),
            attempt: 1,
            attempts: 2,
            error: "HTTP 500".into(),
            retry_in: None,
            retryable: true,
        });
        log.observe(&RunEvent::TaskSkipped {
            name: "c".into(),
            reason: "r".into(),
        });
        drop(log);
        let a = std::fs::read_to_string(partial_path(dir.path(), "a")).expect("a");
        assert_eq!(a, "Hello world\n[attempt 1/2 failed: HTTP 500]\n");
        let b = std::fs::read_to_string(partial_path(dir.path(), "b")).expect("b");
        assert_eq!(b, "kept");
        assert!(!partial_path(dir.path(), "c").exists());
        assert!(!partial_path(dir.path(), "plan").exists());
        assert_eq!(std::fs::read_to_string(&target).expect("target"), "keep");
    }
}
